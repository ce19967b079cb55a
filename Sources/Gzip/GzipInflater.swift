import CZlib

/// Why a gzip stream could not be read to a clean end.
public enum GzipError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The input ended inside a member: no CRC and length trailer was seen.
  case truncated
  /// zlib rejected the data (bad header, bad block, CRC or length mismatch, trailing garbage).
  case corrupt(String)

  public var description: String {
    switch self {
    case .truncated: "gzip stream is truncated"
    case .corrupt(let message): "gzip stream is corrupt: \(message)"
    }
  }
}

/// A streaming gzip decoder that reads every member of a concatenated gzip file.
///
/// zlib checks each member's CRC-32 and length; a stream only ends cleanly when the last member's
/// trailer checks out, which `finish()` reports.
public final class GzipInflater {
  private let stream: UnsafeMutablePointer<z_stream>
  /// True while a member has started but its trailer has not been read.
  private var insideMember = false
  private var chunk = [UInt8](repeating: 0, count: 256 * 1024)

  public init() {
    stream = .allocate(capacity: 1)
    stream.initialize(to: z_stream())
    // 16 + MAX_WBITS: gzip wrapper only, so a missing magic is an error rather than raw deflate.
    let status = inflateInit2_(stream, 16 + MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
    precondition(status == Z_OK, "inflateInit2 failed: \(status)")
  }

  deinit {
    inflateEnd(stream)
    stream.deinitialize(count: 1)
    stream.deallocate()
  }

  /// Decompresses `input`, appending what it yields to `output`.
  ///
  /// Output produced before an error has already been appended, so callers keep the good
  /// data in front of damage.
  public func inflate(_ input: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(GzipError) {
    guard let base = input.baseAddress, input.count > 0 else { return }
    stream.pointee.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
    stream.pointee.avail_in = uInt(input.count)
    defer {
      stream.pointee.next_in = nil
      stream.pointee.avail_in = 0
    }
    while stream.pointee.avail_in > 0 {
      if !insideMember {
        insideMember = true
      }
      var status: Int32 = Z_OK
      var produced = 0
      chunk.withUnsafeMutableBytes { out in
        stream.pointee.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = uInt(out.count)
        status = CZlib.inflate(stream, Z_NO_FLUSH)
        produced = out.count - Int(stream.pointee.avail_out)
      }
      if produced > 0 {
        output.append(contentsOf: chunk[0..<produced])
      }
      switch status {
      case Z_OK, Z_BUF_ERROR:
        if status == Z_BUF_ERROR && produced == 0 && stream.pointee.avail_in > 0 {
          throw .corrupt("no progress")
        }
      case Z_STREAM_END:
        insideMember = false
        inflateReset(stream)
      default:
        let message = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(status)"
        throw .corrupt(message)
      }
    }
  }

  /// Declares the end of input; throws `.truncated` when a member was left unfinished.
  public func finish() throws(GzipError) {
    if insideMember { throw .truncated }
  }

  /// Whether `bytes` start with the gzip magic number `1f 8b`.
  public static func hasMagic(_ bytes: some Collection<UInt8>) -> Bool {
    var iterator = bytes.makeIterator()
    return iterator.next() == 0x1f && iterator.next() == 0x8b
  }
}
