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
  /// A gzip file is inflated on a thread of its own, a few chunks ahead of the reader; a plain
  /// file is read there when `enableReadAhead` asked for it.
  private var ahead: ReadAhead?
  private var spare: [UInt8]?
  /// A plain file is read ahead (until its thread first reaches the end of the file).
  private var readsPlainAhead = false
  /// What the read-ahead thread scans lines with, if anything.
  private var scan: ScanSetup?
  /// Lines of the chunk read last, with what was scanned of them.
  private var chunkLines: ChunkLines? {
    didSet { unretainedChunkLines = chunkLines.map { .passUnretained($0) } }
  }
  /// `chunkLines`, for the lookups made for every line: through the optional reference, each
  /// one retained and released the object.
  private var unretainedChunkLines: Unmanaged<ChunkLines>?
  /// Lines before this stream offset are not scanned (they are skipped: `skip(to:)`).
  private var scanFrom: Int64 = 0
  /// Where the read-ahead's buffers and scanned lines go when this file is done, for the next.
  private var pool: ReadAheadPool?

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
    if let pool {
      if let spare = spare.take() { pool.give(buffer: spare) }
      if let lines = chunkLines.take() { pool.give(lines: lines) }
    }
    close(fd)
  }

  /// Reads ahead on a thread of its own, a few chunks ahead of the reader: a gzip file always
  /// (it is inflated there), a plain file with `plainFiles`, until that thread first reaches
  /// the end of the file (what is appended later is read in line). With a `scanner`, the thread
  /// also scans each complete line of its chunks, and `scannedLine` hands the results out.
  /// Call before the first read or skip. `pool`: where the thread's buffers and scanned lines
  /// come from and go back to, shared by the files of one source (`ReadAheadPool`).
  public func enableReadAhead(
    plainFiles: Bool, scanner: (any LineScanner)?, maxLineBytes: Int, waits: WaitTally? = nil,
    pool: ReadAheadPool? = nil
  ) {
    precondition(ahead == nil, "read-ahead is set up before reading")
    if let waits { self.waits = waits }
    self.pool = pool
    readsPlainAhead = plainFiles && !isGzip
    scan = scanner.map { ScanSetup(scanner: $0, maxLineBytes: maxLineBytes) }
  }

  /// What the read-ahead thread scanned of the line at `offset` of `length` bytes (as
  /// `LineCursor` hands it out), if that line lies in the chunk read last. Lines are asked for
  /// in stream order; lines before `offset` are passed over.
  @inline(__always) public func scannedLine(offset: Int64, length: Int) -> ScannedLine? {
    unretainedChunkLines?._withUnsafeGuaranteedRef { lines in
      lines.find(offset: offset, length: length).map { ScannedLine(batch: lines.batch, index: $0) }
    }
  }

  /// The length of the line at `offset` (one trailing CR not counted) as the read-ahead thread
  /// split it, if that line lies in the chunk read last and was scanned: where its newline is,
  /// without looking for it again. The bytes the reader handed out at `offset` are the ones
  /// the thread split (a reader whose file changed under it is dropped: `LineCursor`'s
  /// `invalidated`).
  /// Also the line's time if its scanner said it may be passed over (else `Int64.min`).
  @inline(__always) func scannedLength(at offset: Int64) -> (length: Int, passTime: Int64)? {
    unretainedChunkLines?._withUnsafeGuaranteedRef { $0.length(at: offset) }
  }

  /// Whether the next bytes come as whole chunks from the read-ahead thread (`takeChunk`):
  /// a gzip file or a plain one read ahead, with no bytes pending from `skip`.
  public var readsChunks: Bool { !atEnd && pending.isEmpty && (isGzip || readsPlainAhead) }

  /// The next chunk read ahead, handed over, not copied: the data is its first `count` bytes
  /// (0 at the end of the file). Give the buffer back with `recycle` once done with it, and
  /// before taking the next one, holding no other reference to it: the read-ahead thread
  /// then refills it in place. Only when `readsChunks`.
  public func takeChunk() -> (buffer: [UInt8], count: Int) {
    startReadAhead()
    var recycled: [UInt8]? = nil
    swap(&recycled, &spare)
    var lines: ChunkLines? = nil
    swap(&lines, &chunkLines)
    let chunk = ahead!.next(recycling: consume recycled, lines: consume lines, waits: waits)
    fileBytesRead += chunk.fileBytes
    if chunk.bufferWasCopied { readAheadBufferCopies += 1 }
    chunkLines = chunk.lines
    offset += Int64(chunk.count)
    if chunk.end {
      if isGzip || chunk.damage != nil {
        damage = chunk.damage
        atEnd = true
      } else {
        // A plain file's thread reached the end of the file: what it grows by is read in line.
        ahead!.stop()
        ahead = nil
        readsPlainAhead = false
      }
    }
    return (chunk.buffer, chunk.count)
  }

  /// Starts the read-ahead thread now instead of at the first `takeChunk`, so that the first
  /// chunks are ready when they are asked for (replay opens the next file while the chunks of
  /// the one before are still being taken: `SourceTailer`). Call after any `skip`.
  ///
  /// `untilTaken`: how many chunks the thread reads before the first is taken (then up to
  /// `ReadAhead.depth`). A file opened ahead holds its chunks while the one before still holds
  /// its own: bounding the first keeps the two files' chunks from adding up.
  public func startReadAhead(untilTaken: Int = ReadAhead.depth) {
    if ahead == nil && readsChunks {
      ahead = ReadAhead(
        fd: fd, inflater: inflater, base: offset, scan: scan, scanFrom: scanFrom, untilTaken: untilTaken, pool: pool)
    }
  }

  /// Whether this file's read-ahead thread has read it to its end: what is left of it is in
  /// chunks already read (and scanned).
  public var readAheadReachedEnd: Bool { ahead?.hasReadToEnd ?? false }

  /// Chunks the read-ahead thread has read and not handed out yet.
  public var chunksReadAhead: Int { ahead?.queued ?? 0 }

  /// Gives back a buffer `takeChunk` handed out.
  public func recycle(_ buffer: consuming [UInt8]) {
    spare = buffer
  }

  /// Appends the next decompressed bytes to `buffer`; returns how many (0 at the end of
  /// what the file holds now).
  @discardableResult
  public func read(into buffer: inout [UInt8]) -> Int {
    guard !atEnd else { return 0 }
    if isGzip || readsPlainAhead {
      let chunk = takeChunk()
      chunk.buffer.withUnsafeBytes { buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[0..<chunk.count])) }
      recycle(chunk.buffer)
      return chunk.count
    }
    chunkLines = nil
    // Plain files are read in line unless read ahead: a read is cheap next to what is done
    // with the lines.
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
    scanFrom = target
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

  /// How often and how long `takeChunk` waited for the read-ahead thread (shared by the files
  /// of a source: `SourceTailer.inputWaits`).
  public private(set) var waits = WaitTally()

  /// Chunk buffers the read-ahead thread had to copy before filling them because they were
  /// still shared with this reader (tests: recycled buffers must be filled in place).
  public private(set) var readAheadBufferCopies = 0

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

/// Reads a file on a thread of its own, up to `depth` chunks ahead of its reader, so that
/// reading (inflating a gzip file) and scanning lines overlap with processing them on two cores.
///
/// A gzip file is read to the end of what it holds, then the gzip stream must have ended (a
/// truncated or corrupt stream ends the data with its error). A plain file is read until its
/// end as it is then; its reader reads on in line. With a `ScanSetup`, each chunk comes with
/// its complete lines (`ChunkLines`), scanned.
///
/// `@unchecked Sendable`: the producer's state (`raw`, `inflater`, `base`, `atLineStart`) is
/// used by one thread only (the worker, or `next` when there is none); `ready` and `spares`,
/// and the chunks, buffers and `ChunkLines` in them, move between the threads only under `lock`
/// and are used by one thread at a time (`ChunkLines`).
public final class ReadAhead: @unchecked Sendable {
  struct Chunk {
    /// The data is its first `count` bytes: a buffer is `chunkBytes` long, and recycled as it
    /// is, so it is read and inflated into in place, never resized or zeroed again.
    var buffer: [UInt8]
    var count: Int
    /// The buffer was not the producer's alone when it was filled, so it was copied first.
    var bufferWasCopied = false
    /// Bytes read from the file for it (compressed bytes for gzip).
    var fileBytes: Int64
    /// The last chunk: the file's data ends here (with `damage` if the stream was bad), or,
    /// for a plain file, the thread ends here.
    var end: Bool
    var damage: GzipError?
    /// Its complete lines, scanned (when scanning).
    var lines: ChunkLines?
  }

  /// Chunks read (and scanned) ahead. The cost of a chunk varies (its mix of predictions,
  /// clicks and ignored lines), and with 3 the two threads took turns waiting for each other.
  /// Measured on the benchmark's replay (`ab_threads.py --runs 8`, 3 against 8 and 16 in one
  /// run, wall time over the CPU time of all threads, which the machine's changing speed moves
  /// far less than either): 0.592 with 3, 0.582 with 8, 0.579 with 16, so about 2% less wall
  /// time for the same work. Each chunk of 512 KiB, with its scanned lines, cost about 1.1 MB
  /// of peak RSS (60.6 MB with 3, 66.2 MB with 8, 74.6 MB with 16). Those were 8 chunks of
  /// 512 KiB; now 4 of 1 MiB (`chunkBytes`), the same bytes ahead.
  public static let depth = 4
  /// Chunks a file opened ahead (`SourceTailer`) reads before its first is taken. The
  /// pipeline takes the chunks of the file before it for about 10 ms after that file's thread
  /// has read its end (all `depth` of them, 4 MiB, on the benchmark), and with that much read
  /// ahead for the next file too, peak RSS went up by 7 MB (66.9 to 74.1 MB,
  /// `memory_scaling.py`). A quarter of it is read in about a quarter of that time, and the
  /// thread then goes on as the first chunk is taken, faster than the pipeline takes them.
  public static let depthOpenedAhead = 1
  /// What `top -H` and `/proc/PID/task/*/comm` show for the thread of a gzip file.
  public static let inflateThreadName = "inflate-ahead"
  /// The same for a plain file.
  public static let readThreadName = "read-ahead"
  /// A chunk's bytes. 1 MiB chunks, 4 ahead, against 512 KiB ones, 8 ahead (the same bytes
  /// ahead, the same peak RSS: 69.4 / 69.2 against 68.7 / 69.1 MB, `memory_scaling.py
  /// --predictions 1000000`): half the hand-overs between the threads (each a lock, and a
  /// wake-up when the other waits) and half the calls into ISA-L, each of which copies its
  /// history window (`callgrind.py replay`: 5,227 -> 5,214 instructions a line). Three rounds
  /// of `ab_threads.py --runs 10`: wall lower in 8, 8 and 7 of 10, the CPU of all threads in
  /// 9, 7 and 8 of 10 (medians 1-2% lower).
  static let chunkBytes = 1024 * 1024
  /// Compressed bytes read at a time.
  static let readBytes = 64 * 1024

  private let fd: Int32
  private let inflater: GzipInflater?
  private let scan: ScanSetup?
  private let scanFrom: Int64
  private let pool: ReadAheadPool?
  /// Only the producer (the thread, or `next` when there is none) uses these.
  /// A gzip file's compressed bytes, read `readBytes` at a time; `raw[rawStart..<rawEnd]` is
  /// what the inflater has not taken yet (a chunk ends when its buffer is full).
  private var raw: [UInt8]
  private var rawStart = 0
  private var rawEnd = 0
  /// Stream offset of the next chunk's first byte.
  private var base: Int64
  /// Whether the next chunk starts a line.
  private var atLineStart = true
  private let lock = ConditionLock()
  // Guarded by `lock`.
  private var ready: [Chunk] = []
  private var spares: [[UInt8]] = []
  private var spareLines: [ChunkLines] = []
  private var stopping = false
  private var running = true
  /// Chunks read ahead at most: `untilTaken` until the first is taken, then `depth`.
  private var limit: Int
  private var worker: WorkerThread?

  /// `inflater` nil: a plain file. `base`: the stream offset the descriptor is at.
  /// `untilTaken`: chunks read ahead before the first is taken (at most `depth`).
  init(
    fd: Int32, inflater: GzipInflater?, base: Int64, scan: ScanSetup?, scanFrom: Int64, untilTaken: Int = depth,
    pool: ReadAheadPool? = nil
  ) {
    limit = max(1, min(untilTaken, Self.depth))
    self.pool = pool
    self.fd = fd
    self.inflater = inflater
    self.base = base
    self.scan = scan
    self.scanFrom = scanFrom
    raw = inflater == nil ? [] : [UInt8](repeating: 0, count: Self.readBytes)
    worker = WorkerThread(name: inflater == nil ? Self.readThreadName : Self.inflateThreadName) { [self] in
      produce()
    }
    // No thread: `next` produces each chunk in line instead (and scans nothing ahead).
    if worker == nil { running = false }
  }

  /// The next chunk, waiting for it if needed; `recycling` and `lines` give back what the
  /// reader is done with.
  func next(recycling: consuming [UInt8]?, lines: ChunkLines?, waits: WaitTally) -> Chunk {
    lock.lock()
    // Moved in, and this reference dropped before the lock is: a buffer the producer takes
    // while its reader still holds it is not unique, and writing it copied it (512 KiB, and
    // every page of the copy faulted in: 120k page faults per replay of the benchmark).
    if let buffer = recycling.take() { spares.append(buffer) }
    if let lines { spareLines.append(lines) }
    if !running && ready.isEmpty {
      lock.unlock()
      return makeChunk(into: [], lines: nil)
    }
    lock.wait(while: { ready.isEmpty }, counting: waits)
    let chunk = ready.removeFirst()
    limit = Self.depth
    lock.broadcast()
    lock.unlock()
    return chunk
  }

  /// Whether the thread has read the file to its end (its last chunks may still wait to be
  /// taken), or stopped.
  var hasReadToEnd: Bool { lock.withLock { !running } }

  /// Chunks read and not taken yet.
  var queued: Int { lock.withLock { ready.count } }

  /// Stops the thread (before the file is closed) and waits for it; its buffers and scanned
  /// lines go to the pool, if any.
  func stop() {
    lock.withLock {
      stopping = true
      lock.broadcast()
    }
    worker?.join()
    guard let pool else { return }
    // Popped, so each buffer goes to the pool with no other reference to it.
    lock.withLock {
      while let buffer = spares.popLast() { pool.give(buffer: buffer) }
      while let lines = spareLines.popLast() { pool.give(lines: lines) }
      while let chunk = ready.popLast() {
        pool.give(buffer: chunk.buffer)
        if let lines = chunk.lines { pool.give(lines: lines) }
      }
    }
  }

  private func produce() {
    while true {
      lock.lock()
      while ready.count >= limit && !stopping { lock.wait() }
      if stopping {
        running = false
        lock.broadcast()
        lock.unlock()
        return
      }
      let buffer = spares.popLast() ?? pool?.takeBuffer() ?? []
      let lines = scan.map { spareLines.popLast() ?? pool?.takeLines() ?? ChunkLines(batch: $0.scanner.makeBatch()) }
      lock.unlock()
      let chunk = makeChunk(into: consume buffer, lines: lines)
      let done = lock.withLock {
        ready.append(chunk)
        if chunk.end { running = false }
        lock.broadcast()
        return chunk.end
      }
      if done { return }
    }
  }

  /// Reads (and inflates) `chunkBytes` (less at the end of the file) straight into `buffer`,
  /// and scans its complete lines into `lines`.
  /// `buffer` is taken over (not copied), so a recycled buffer is refilled in place: a copy
  /// would make a fresh one per chunk, and every page of it fault in anew (measured: 250k
  /// page faults per GB read). Reading and inflating into it directly, not into a buffer of
  /// their own first, saves copying every byte once more.
  private func makeChunk(into buffer: consuming [UInt8], lines: ChunkLines?) -> Chunk {
    var out = consume buffer
    if out.count != Self.chunkBytes { out = [UInt8](repeating: 0, count: Self.chunkBytes) }
    var chunk = Chunk(buffer: [], count: 0, fileBytes: 0, end: false, damage: nil, lines: nil)
    var filled = 0
    let before = out.withUnsafeBytes { $0.baseAddress }
    out.withUnsafeMutableBytes { all in
      let memory = all.baseAddress!
      chunk.bufferWasCopied = UnsafeRawPointer(memory) != before
      while filled < Self.chunkBytes {
        guard let inflater else {
          let n = systemRead(fd, memory + filled, Self.chunkBytes - filled)
          if n < 0 {
            if errno == EINTR { continue }
            chunk.damage = .corrupt("read error: \(String(cString: strerror(errno)))")
            chunk.end = true
            return
          }
          if n == 0 {
            chunk.end = true
            return
          }
          chunk.fileBytes += Int64(n)
          filled += n
          continue
        }
        if rawStart == rawEnd {
          let n = raw.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, Self.readBytes) }
          if n < 0 {
            if errno == EINTR { continue }
            chunk.damage = .corrupt("read error: \(String(cString: strerror(errno)))")
            chunk.end = true
            return
          }
          rawStart = 0
          rawEnd = n
          chunk.fileBytes += Int64(n)
        }
        // With no input left (the end of the file), this yields what the inflater may still hold.
        let step = raw.withUnsafeBytes {
          inflater.inflate(
            UnsafeRawBufferPointer(rebasing: $0[rawStart..<rawEnd]),
            into: UnsafeMutableRawBufferPointer(start: memory + filled, count: Self.chunkBytes - filled))
        }
        rawStart += step.consumed
        filled += step.produced
        if let error = step.error {
          chunk.damage = error
          chunk.end = true
          return
        }
        if rawStart == rawEnd && rawEnd == 0 && step.produced == 0 {
          do throws(GzipError) {
            try inflater.finish()
          } catch {
            chunk.damage = error
          }
          chunk.end = true
          return
        }
      }
    }
    if let lines, let scan {
      out.withUnsafeBytes {
        lines.fill(
          UnsafeRawBufferPointer(rebasing: $0[0..<filled]), base: base, from: scanFrom,
          maxLineBytes: scan.maxLineBytes, atLineStart: &atLineStart)
      }
      chunk.lines = lines
    }
    base += Int64(filled)
    chunk.buffer = out
    chunk.count = filled
    return chunk
  }
}

/// Chunk buffers and scanned lines handed from the read-ahead of one file to that of the next
/// file of the same source, instead of being freed with one and made anew for the other. A
/// replay reads file after file: each file's thread made its `depth` + 1 buffers of
/// `chunkBytes` and its scanned-line batches from nothing, and every page of them was faulted
/// in again (a replay of the benchmark: 31,000-32,500 minor page faults before the pool,
/// 19,600-19,800 with it; on a VM that hands freed memory back to its host, a fresh page
/// costs several microseconds). A live
/// tailer keeps none (it would hold them for the next rotation, maybe hours away).
///
/// The scanned lines must all come from one scanner (a source's). Any thread.
public final class ReadAheadPool: @unchecked Sendable {
  /// What one file's read-ahead holds at most: `depth` chunks ready, one being read, one
  /// with the reader.
  static let capacity = ReadAhead.depth + 2
  private let lock = ConditionLock()
  // Guarded by `lock`.
  private var buffers: [[UInt8]] = []
  private var lines: [ChunkLines] = []
  private var buffersTaken = 0
  private var linesTaken = 0

  public init() {}

  /// Buffers and scanned-line batches taken from the pool so far (tests).
  public var taken: (buffers: Int, lines: Int) { lock.withLock { (buffersTaken, linesTaken) } }

  func takeBuffer() -> [UInt8]? {
    lock.withLock {
      guard let buffer = buffers.popLast() else { return nil }
      buffersTaken += 1
      return buffer
    }
  }

  func takeLines() -> ChunkLines? {
    lock.withLock {
      guard let batch = lines.popLast() else { return nil }
      linesTaken += 1
      return batch
    }
  }

  /// Keeps `buffer` if it is a whole chunk's and there is room (moved in: a reference kept
  /// elsewhere would make the next writer copy it).
  func give(buffer: consuming [UInt8]) {
    guard buffer.count == ReadAhead.chunkBytes else { return }
    lock.lock()
    if buffers.count < Self.capacity { buffers.append(buffer) }
    lock.unlock()
  }

  func give(lines batch: ChunkLines) {
    lock.withLock { if lines.count < Self.capacity { lines.append(batch) } }
  }
}
