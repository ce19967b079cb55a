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
      if ahead == nil { ahead = InflateAhead(fd: fd, inflater: inflater, chunkSize: InflateAhead.readBytes) }
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

/// Inflates a gzip file on a thread of its own, up to `depth` chunks ahead of its reader, so
/// that inflating and processing the lines overlap on two cores.
///
/// It reads exactly as `LogFileReader.read` did inline: to the end of what the file holds,
/// then checks that the gzip stream ended (a truncated or corrupt stream ends the data with
/// its error).
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
  private let chunkSize: Int
  // Guarded by `mutex`.
  private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
  private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
  private var ready: [Chunk] = []
  private var spares: [[UInt8]] = []
  private var stopping = false
  private var running = true
  private var thread = pthread_t()

  init(fd: Int32, inflater: GzipInflater, chunkSize: Int) {
    self.fd = fd
    self.inflater = inflater
    self.chunkSize = chunkSize
    pthread_mutex_init(mutex, nil)
    pthread_cond_init(changed, nil)
    let context = Unmanaged.passRetained(self).toOpaque()
    let created = pthread_create(
      &thread, nil,
      { context in
        let me = Unmanaged<InflateAhead>.fromOpaque(context!).takeRetainedValue()
        nameThisThread(InflateAhead.threadName)
        me.produce()
        return nil
      }, context)
    if created != 0 {
      // No thread: produce everything inline on the first `next` instead.
      Unmanaged<InflateAhead>.fromOpaque(context).release()
      thread = pthread_t()
      running = false
    }
  }

  deinit {
    pthread_cond_destroy(changed)
    pthread_mutex_destroy(mutex)
    changed.deallocate()
    mutex.deallocate()
  }

  private func locked<T>(_ body: () -> T) -> T {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    return body()
  }

  /// The next chunk, waiting for it if needed; `recycling` gives a consumed buffer back.
  func next(recycling: [UInt8]?) -> Chunk {
    pthread_mutex_lock(mutex)
    if let recycling { spares.append(recycling) }
    if !running && ready.isEmpty {
      pthread_mutex_unlock(mutex)
      return makeChunk(into: [])
    }
    while ready.isEmpty { pthread_cond_wait(changed, mutex) }
    let chunk = ready.removeFirst()
    pthread_cond_broadcast(changed)
    pthread_mutex_unlock(mutex)
    return chunk
  }

  /// Stops the thread (before the file is closed) and waits for it.
  func stop() {
    locked {
      stopping = true
      pthread_cond_broadcast(changed)
    }
    if thread != pthread_t() { pthread_join(thread, nil) }
    thread = pthread_t()
  }

  private func produce() {
    while true {
      pthread_mutex_lock(mutex)
      while ready.count >= Self.depth && !stopping { pthread_cond_wait(changed, mutex) }
      if stopping {
        running = false
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
        return
      }
      let buffer = spares.popLast() ?? []
      pthread_mutex_unlock(mutex)
      let chunk = makeChunk(into: buffer)
      let done = locked {
        ready.append(chunk)
        if chunk.end { running = false }
        pthread_cond_broadcast(changed)
        return chunk.end
      }
      if done { return }
    }
  }

  private var raw: [UInt8] = []

  /// Reads and inflates about `chunkBytes` (less at the end of the file).
  private func makeChunk(into buffer: [UInt8]) -> Chunk {
    var out = buffer
    out.removeAll(keepingCapacity: true)
    if raw.count != chunkSize { raw = [UInt8](repeating: 0, count: chunkSize) }
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

/// Names the calling thread (Linux: `/proc/thread-self/comm`, at most 15 bytes); best effort.
func nameThisThread(_ name: String) {
  let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
  guard fd >= 0 else { return }
  _ = Array(name.utf8.prefix(15)).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
  close(fd)
}
