import Gzip

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

struct LogGenError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// One output file: plain, or gzip (one member, or a member per ~`memberBytes` with `multiMember`).
final class FileSink {
  let path: String
  private let fd: Int32
  private let deflater: GzipDeflater?
  private let memberBytes: Int
  private var memberFill = 0
  private var compressed: [UInt8] = []
  private(set) var rawBytes = 0
  private(set) var diskBytes = 0

  init(path: String, gzip: Bool, level: Int32, memberBytes: Int) throws {
    self.path = path
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    if fd < 0 { throw LogGenError("cannot create \(path): \(String(cString: strerror(errno)))") }
    deflater = gzip ? GzipDeflater(level: level) : nil
    self.memberBytes = memberBytes
    compressed.reserveCapacity(1 << 20)
  }

  /// Takes the buffered bytes (whole lines) and empties the buffer.
  func write(_ buffer: ByteBuffer) throws {
    let bytes = buffer.bytes
    rawBytes += bytes.count
    if let deflater {
      deflater.compress(bytes, into: &compressed)
      memberFill += bytes.count
      if memberFill >= memberBytes {
        deflater.finish(into: &compressed)
        memberFill = 0
      }
      try flushCompressed()
    } else {
      try writeAll(bytes)
    }
    buffer.count = 0
  }

  func close() throws {
    if let deflater {
      // Always end the last member; an empty file still gets one (empty) member.
      if memberFill > 0 || diskBytes == 0 || !compressed.isEmpty {
        deflater.finish(into: &compressed)
      }
      try flushCompressed()
    }
    if posixClose(fd) != 0 { throw LogGenError("cannot close \(path)") }
  }

  private func flushCompressed() throws {
    guard !compressed.isEmpty else { return }
    // Errors leave withUnsafeBytes as a value: rethrowing through it miscompiled in debug builds.
    var failure: (any Error)?
    compressed.withUnsafeBytes { bytes in
      do { try writeAll(bytes) } catch { failure = error }
    }
    if let failure { throw failure }
    compressed.removeAll(keepingCapacity: true)
  }

  private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
    var offset = 0
    while offset < bytes.count {
      let n = posixWrite(fd, bytes.baseAddress! + offset, bytes.count - offset)
      if n < 0 {
        if errno == EINTR { continue }
        throw LogGenError("cannot write \(path): \(String(cString: strerror(errno)))")
      }
      offset += n
    }
    diskBytes += bytes.count
  }
}

private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
  write(fd, buffer, count)
}

private func posixClose(_ fd: Int32) -> Int32 {
  close(fd)
}
