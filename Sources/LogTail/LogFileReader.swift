import Gzip

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
  read(fd, buffer, count)
}

public struct LogTailError: Error, Sendable, CustomStringConvertible {
  public let path: String
  public let message: String
  public init(path: String, message: String) {
    self.path = path
    self.message = message
  }
  public var description: String { "\(path): \(message)" }
}

/// Reads a log file's decompressed content, plain or gzip, whatever its name says.
///
/// Compression is detected from the magic bytes `1f 8b`. Offsets count decompressed bytes,
/// so a position saved while a file was plain stays valid after it was gzipped.
public final class LogFileReader {
  public let path: String
  public let isGzip: Bool
  /// Decompressed bytes delivered so far.
  public private(set) var offset: Int64 = 0
  /// Bytes read from the file itself (compressed size for gzip).
  public private(set) var fileBytesRead: Int64 = 0
  /// Set when a gzip stream turned out truncated or corrupt; no more data follows it.
  public private(set) var damage: GzipError?
  public private(set) var atEnd = false

  private let fd: Int32
  var descriptor: Int32 { fd }
  private let inflater: GzipInflater?
  private var raw: [UInt8]

  public init(path: String, chunkSize: Int = 256 * 1024) throws(LogTailError) {
    self.path = path
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw LogTailError(path: path, message: String(cString: strerror(errno))) }
    self.fd = fd
    raw = [UInt8](repeating: 0, count: chunkSize)
    var magic: [UInt8] = [0, 0]
    let n = pread(fd, &magic, 2, 0)
    isGzip = n == 2 && GzipInflater.hasMagic(magic)
    inflater = isGzip ? GzipInflater() : nil
  }

  deinit {
    close(fd)
  }

  /// Appends the next decompressed bytes to `buffer`; returns how many (0 at the end of
  /// what the file holds now).
  @discardableResult
  public func read(into buffer: inout [UInt8]) -> Int {
    guard !atEnd else { return 0 }
    while true {
      let n = raw.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
      if n < 0 {
        if errno == EINTR { continue }
        damage = .corrupt("read error: \(String(cString: strerror(errno)))")
        atEnd = true
        return 0
      }
      if n == 0 {
        if let inflater {
          do throws(GzipError) {
            try inflater.finish()
          } catch {
            damage = error
          }
          atEnd = true
        }
        return 0
      }
      fileBytesRead += Int64(n)
      guard let inflater else {
        buffer.append(contentsOf: raw[0..<n])
        offset += Int64(n)
        return n
      }
      let before = buffer.count
      let failure: GzipError? = raw.withUnsafeBytes { all in
        do throws(GzipError) {
          try inflater.inflate(UnsafeRawBufferPointer(rebasing: all[0..<n]), into: &buffer)
          return nil
        } catch {
          return error
        }
      }
      if let failure {
        damage = failure
        atEnd = true
      }
      let produced = buffer.count - before
      offset += Int64(produced)
      if produced > 0 || atEnd { return produced }
    }
  }

  /// Moves forward to decompressed `target` (a saved position), discarding what lies before.
  /// Returns false if the file holds less than that.
  public func skip(to target: Int64) -> Bool {
    if !isGzip {
      let size = lseek(fd, 0, SEEK_END)
      guard size >= target else {
        _ = lseek(fd, 0, SEEK_SET)
        return false
      }
      _ = lseek(fd, off_t(target), SEEK_SET)
      offset = target
      fileBytesRead = target
      return true
    }
    var scratch: [UInt8] = []
    scratch.reserveCapacity(1 << 20)
    while offset < target {
      scratch.removeAll(keepingCapacity: true)
      let before = offset
      let n = read(into: &scratch)
      if n == 0 { return false }
      if offset > target {
        // Keep the tail beyond the target: hand it back through the pending buffer.
        let keep = Int(offset - target)
        pending = Array(scratch[(Int(target - before))...])
        precondition(pending.count == keep)
        offset = target
        return true
      }
    }
    return true
  }

  /// Bytes decompressed past a skip target, handed out by the next `read`.
  private var pending: [UInt8] = []

  /// Like `read(into:)`, first returning anything left over from `skip(to:)`.
  public func readNext(into buffer: inout [UInt8]) -> Int {
    if !pending.isEmpty {
      let n = pending.count
      buffer.append(contentsOf: pending)
      pending = []
      offset += Int64(n)
      return n
    }
    return read(into: &buffer)
  }

  /// The file's current size on disk (compressed size for gzip).
  public func fileSize() -> Int64 {
    var st = stat()
    guard fstat(fd, &st) == 0 else { return -1 }
    return Int64(st.st_size)
  }
}
