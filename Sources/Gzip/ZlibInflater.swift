import CZlib

/// zlib's streaming inflate of a multi-member gzip stream into a caller's buffer, as
/// `GzipInflater.inflate(_:through:_:)` does with ISA-L. Not used to read logs: it is the
/// reference the ISA-L reader is measured against (`feedbackd-bench run`, the floor with zlib)
/// and compared with (the gzip fuzz target).
public final class ZlibInflater {
  /// On the heap: zlib keeps the stream's address and checks it on every call.
  private let stream: UnsafeMutablePointer<z_stream>
  /// True while a member has started but its trailer has not been read (truncated if it ends so).
  public private(set) var insideMember = false

  public init() {
    stream = .allocate(capacity: 1)
    stream.initialize(to: z_stream())
    let status = inflateInit2_(stream, 16 + MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
    precondition(status == Z_OK, "inflateInit2 failed: \(status)")
  }

  deinit {
    inflateEnd(stream)
    stream.deinitialize(count: 1)
    stream.deallocate()
  }

  /// Inflates all of `input` through `buffer`, handing each filled part to `body`; the error, if any.
  public func inflate(
    _ input: UnsafeRawBufferPointer, through buffer: UnsafeMutableRawBufferPointer,
    _ body: (UnsafeRawBufferPointer) -> Void
  ) -> String? {
    guard let inBase = input.baseAddress, let outBase = buffer.baseAddress else { return nil }
    stream.pointee.next_in = UnsafeMutablePointer(mutating: inBase.assumingMemoryBound(to: Bytef.self))
    stream.pointee.avail_in = uInt(input.count)
    while true {
      if stream.pointee.avail_in > 0 { insideMember = true }
      stream.pointee.next_out = outBase.assumingMemoryBound(to: Bytef.self)
      stream.pointee.avail_out = uInt(buffer.count)
      let status = CZlib.inflate(stream, Z_NO_FLUSH)
      let produced = buffer.count - Int(stream.pointee.avail_out)
      if produced > 0 { body(UnsafeRawBufferPointer(rebasing: buffer[0..<produced])) }
      switch status {
      case Z_STREAM_END:
        insideMember = false
        inflateReset(stream)
        if stream.pointee.avail_in == 0 { return nil }
      case Z_OK, Z_BUF_ERROR:
        // Input used up and zlib holds nothing back (the buffer was not filled): done for now.
        if stream.pointee.avail_in == 0 && produced < buffer.count { return nil }
        if produced == 0 && status == Z_BUF_ERROR { return "no progress" }
      default:
        return stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(status)"
      }
    }
  }
}
