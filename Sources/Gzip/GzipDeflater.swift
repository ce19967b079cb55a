import CZlib

/// A streaming gzip encoder that writes one complete member per `finish()`.
///
/// Each member is a valid gzip file on its own, and a file made of several members is read
/// whole by gzip, zlib, pandas, DuckDB and Spark alike.
public final class GzipDeflater {
  private let stream: UnsafeMutablePointer<z_stream>
  private let level: Int32
  private var chunk = [UInt8](repeating: 0, count: 64 * 1024)

  public init(level: Int32 = 6) {
    self.level = level
    stream = .allocate(capacity: 1)
    stream.initialize(to: z_stream())
    let status = deflateInit2_(
      stream, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
      Int32(MemoryLayout<z_stream>.size))
    precondition(status == Z_OK, "deflateInit2 failed: \(status)")
  }

  deinit {
    deflateEnd(stream)
    stream.deinitialize(count: 1)
    stream.deallocate()
  }

  /// Compresses `input`, appending compressed bytes to `output`.
  public func compress(_ input: UnsafeRawBufferPointer, into output: inout [UInt8]) {
    run(input, flush: Z_NO_FLUSH, into: &output)
  }

  /// Ends the current member (writing its CRC and length) and starts a new one.
  public func finish(into output: inout [UInt8]) {
    run(UnsafeRawBufferPointer(start: nil, count: 0), flush: Z_FINISH, into: &output)
    deflateReset(stream)
  }

  private func run(_ input: UnsafeRawBufferPointer, flush: Int32, into output: inout [UInt8]) {
    stream.pointee.next_in = input.baseAddress.map {
      UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self))
    }
    stream.pointee.avail_in = uInt(input.count)
    defer {
      stream.pointee.next_in = nil
      stream.pointee.avail_in = 0
    }
    while true {
      var status: Int32 = Z_OK
      var produced = 0
      chunk.withUnsafeMutableBytes { out in
        stream.pointee.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = uInt(out.count)
        status = deflate(stream, flush)
        produced = out.count - Int(stream.pointee.avail_out)
      }
      output.append(contentsOf: chunk[0..<produced])
      precondition(status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR, "deflate failed: \(status)")
      if flush == Z_FINISH {
        if status == Z_STREAM_END { return }
      } else if stream.pointee.avail_in == 0 && stream.pointee.avail_out > 0 {
        return
      }
    }
  }
}

extension GzipDeflater {
  /// Compresses `bytes` into one complete gzip member.
  public static func compress(_ bytes: [UInt8], level: Int32 = 6) -> [UInt8] {
    let deflater = GzipDeflater(level: level)
    var output: [UInt8] = []
    bytes.withUnsafeBytes { deflater.compress($0, into: &output) }
    deflater.finish(into: &output)
    return output
  }
}

extension GzipInflater {
  /// Decompresses a whole gzip file held in memory.
  public static func decompress(_ bytes: [UInt8]) throws(GzipError) -> [UInt8] {
    let inflater = GzipInflater()
    var output: [UInt8] = []
    let failure: GzipError? = bytes.withUnsafeBytes { raw in
      do throws(GzipError) {
        try inflater.inflate(raw, into: &output)
        return nil
      } catch {
        return error
      }
    }
    if let failure { throw failure }
    try inflater.finish()
    return output
  }
}
