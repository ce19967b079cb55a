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
    let error = chunk.withUnsafeMutableBytes { buffer in
      inflate(input, through: buffer) { output.append(contentsOf: $0) }
    }
    if let error { throw error }
  }

  /// Decompresses all of `input` through `buffer`, handing each filled part of it to `body`,
  /// until the input is used up and zlib holds nothing back. Returns the error that stopped
  /// it, if any; what came before the damage was handed out.
  public func inflate(
    _ input: UnsafeRawBufferPointer, through buffer: UnsafeMutableRawBufferPointer,
    _ body: (UnsafeRawBufferPointer) throws -> Void
  ) rethrows -> GzipError? {
    var rest = input
    while true {
      let step = inflate(rest, into: buffer)
      if step.produced > 0 { try body(UnsafeRawBufferPointer(rebasing: buffer[0..<step.produced])) }
      if let error = step.error { return error }
      rest = UnsafeRawBufferPointer(rebasing: rest[step.consumed...])
      // A full buffer may leave output in zlib: ask again, with no input if none is left.
      if rest.isEmpty && step.produced < buffer.count { return nil }
    }
  }

  /// What one `inflate(_:into:)` into a buffer did.
  public struct Step: Sendable {
    /// Bytes of the input used; the rest is to be passed again.
    public var consumed: Int
    /// Bytes written to the front of the output buffer (good data, even with an error).
    public var produced: Int
    public var error: GzipError?
  }

  /// Decompresses from `input` straight into `output` until the input is used up or the
  /// output is full. What is left of the input goes to the next call; zlib may also hold
  /// decoded bytes back when the output fills, which the next call yields (with more input
  /// or none).
  public func inflate(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Step {
    guard let outBase = output.baseAddress, output.count > 0 else {
      return Step(consumed: 0, produced: 0, error: nil)
    }
    stream.pointee.next_in = input.baseAddress.map {
      UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self))
    }
    stream.pointee.avail_in = uInt(input.count)
    stream.pointee.next_out = outBase.assumingMemoryBound(to: Bytef.self)
    stream.pointee.avail_out = uInt(output.count)
    defer {
      stream.pointee.next_in = nil
      stream.pointee.avail_in = 0
      stream.pointee.next_out = nil
      stream.pointee.avail_out = 0
    }
    var error: GzipError?
    while stream.pointee.avail_out > 0 {
      let inBefore = stream.pointee.avail_in
      let outBefore = stream.pointee.avail_out
      if inBefore > 0 {
        insideMember = true
      } else if !insideMember {
        break
      }
      let status = CZlib.inflate(stream, Z_NO_FLUSH)
      let progressed = stream.pointee.avail_in != inBefore || stream.pointee.avail_out != outBefore
      if status == Z_OK || status == Z_BUF_ERROR {
        if progressed { continue }
        // No progress with input left cannot be fixed by calling again; without input, more is needed.
        if stream.pointee.avail_in > 0 { error = .corrupt("no progress") }
        break
      }
      if status == Z_STREAM_END {
        insideMember = false
        inflateReset(stream)
        if stream.pointee.avail_in == 0 { break }
        continue
      }
      error = .corrupt(stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(status)")
      break
    }
    return Step(
      consumed: input.count - Int(stream.pointee.avail_in), produced: output.count - Int(stream.pointee.avail_out),
      error: error)
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
