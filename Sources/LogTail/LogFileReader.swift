import Gzip
import Threads

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
  /// A gzip file is inflated on a thread of its own, a few chunks ahead of the reader.
  private var ahead: InflateAhead?
  private var spare: [UInt8]?

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
    ahead?.stop()
    close(fd)
  }

  /// Appends the next decompressed bytes to `buffer`; returns how many (0 at the end of
  /// what the file holds now).
  @discardableResult
  public func read(into buffer: inout [UInt8]) -> Int {
    guard !atEnd else { return 0 }
    if let inflater {
      if ahead == nil { ahead = InflateAhead(fd: fd, inflater: inflater) }
      // Handed back without a second reference, so the producer refills it in place.
      var recycled: [UInt8]? = nil
      swap(&recycled, &spare)
      let chunk = ahead!.next(recycling: consume recycled)
      fileBytesRead += chunk.fileBytes
      buffer.append(contentsOf: chunk.bytes)
      spare = chunk.bytes
      offset += Int64(chunk.bytes.count)
      if chunk.end {
        damage = chunk.damage
        atEnd = true
      }
      return chunk.bytes.count
    }
    // Plain files are read in line: a read is cheap next to what is done with the lines.
    while true {
      let n = raw.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
      if n < 0 {
        if errno == EINTR { continue }
        damage = .corrupt("read error: \(String(cString: strerror(errno)))")
        atEnd = true
        return 0
      }
      if n == 0 { return 0 }
      fileBytesRead += Int64(n)
      buffer.append(contentsOf: raw[0..<n])
      offset += Int64(n)
      return n
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

/// Inflates a gzip file on a thread of its own, up to `depth` chunks ahead of its reader, so
/// that inflating and processing the lines overlap on two cores.
///
/// It reads to the end of what the file holds, then checks that the gzip stream ended (a
/// truncated or corrupt stream ends the data with its error).
public final class InflateAhead: @unchecked Sendable {
  struct Chunk {
    var bytes: [UInt8]
    /// Compressed bytes read for it.
    var fileBytes: Int64
    /// The last chunk: the file's data ends here (with `damage` if the stream was bad).
    var end: Bool
    var damage: GzipError?
  }

  static let depth = 3
  /// What `top -H` and `/proc/PID/task/*/comm` show for the thread.
  public static let threadName = "inflate-ahead"
  static let chunkBytes = 512 * 1024
  /// Compressed bytes read at a time (a chunk ends at most one read's output past `chunkBytes`).
  static let readBytes = 64 * 1024

  private let fd: Int32
  private let inflater: GzipInflater
  /// Only the producer (the thread, or `next` when there is none) reads into it.
  private var raw = [UInt8](repeating: 0, count: readBytes)
  private let lock = ConditionLock()
  // Guarded by `lock`.
  private var ready: [Chunk] = []
  private var spares: [[UInt8]] = []
  private var stopping = false
  private var running = true
  private var worker: WorkerThread?

  init(fd: Int32, inflater: GzipInflater) {
    self.fd = fd
    self.inflater = inflater
    worker = WorkerThread(name: Self.threadName) { [self] in produce() }
    // No thread: `next` produces each chunk in line instead.
    if worker == nil { running = false }
  }

  /// The next chunk, waiting for it if needed; `recycling` gives a consumed buffer back.
  func next(recycling: [UInt8]?) -> Chunk {
    lock.lock()
    if let recycling { spares.append(recycling) }
    if !running && ready.isEmpty {
      lock.unlock()
      return makeChunk(into: [])
    }
    while ready.isEmpty { lock.wait() }
    let chunk = ready.removeFirst()
    lock.broadcast()
    lock.unlock()
    return chunk
  }

  /// Stops the thread (before the file is closed) and waits for it.
  func stop() {
    lock.withLock {
      stopping = true
      lock.broadcast()
    }
    worker?.join()
  }

  private func produce() {
    while true {
      lock.lock()
      while ready.count >= Self.depth && !stopping { lock.wait() }
      if stopping {
        running = false
        lock.broadcast()
        lock.unlock()
        return
      }
      let buffer = spares.popLast() ?? []
      lock.unlock()
      let chunk = makeChunk(into: buffer)
      let done = lock.withLock {
        ready.append(chunk)
        if chunk.end { running = false }
        lock.broadcast()
        return chunk.end
      }
      if done { return }
    }
  }

  /// Reads and inflates about `chunkBytes` (less at the end of the file).
  private func makeChunk(into buffer: [UInt8]) -> Chunk {
    var out = buffer
    out.removeAll(keepingCapacity: true)
    var chunk = Chunk(bytes: [], fileBytes: 0, end: false, damage: nil)
    while out.count < Self.chunkBytes {
      let n = raw.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
      if n < 0 {
        if errno == EINTR { continue }
        chunk.damage = .corrupt("read error: \(String(cString: strerror(errno)))")
        chunk.end = true
        break
      }
      if n == 0 {
        do throws(GzipError) {
          try inflater.finish()
        } catch {
          chunk.damage = error
        }
        chunk.end = true
        break
      }
      chunk.fileBytes += Int64(n)
      let failure: GzipError? = raw.withUnsafeBytes { all in
        do throws(GzipError) {
          try inflater.inflate(UnsafeRawBufferPointer(rebasing: all[0..<n]), into: &out)
          return nil
        } catch {
          return error
        }
      }
      if let failure {
        chunk.damage = failure
        chunk.end = true
        break
      }
    }
    chunk.bytes = out
    return chunk
  }
}
