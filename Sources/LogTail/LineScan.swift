import CPrefetch
#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Work done for every complete line on a reader's read-ahead thread ("scan-ahead"), so that
/// the thread handing the lines out finds it done (see `LogFileReader.enableReadAhead`).
///
/// What a scanner computes must be a pure function of the line's bytes: the reader hands a
/// result out only for a line at the same offset with the same length, i.e. the same bytes.
public protocol LineScanner: Sendable {
  /// An empty batch, for the lines of one chunk; reused chunk after chunk.
  func makeBatch() -> any LineScanBatch
}

/// What a `LineScanner` computed for the lines of one chunk, line after line.
///
/// One thread at a time uses a batch: the read-ahead thread fills it, hands it over with its
/// chunk (under the read-ahead lock) to the reader's thread, which only reads it until it gives
/// it back for reuse with the next chunk it asks for.
public protocol LineScanBatch: AnyObject {
  /// Forgets every line (before the batch is filled again).
  func removeAll()
  /// Adds the next line: its bytes as `LineCursor` hands them out (without the newline; one
  /// trailing CR dropped). Returns the line's time if whoever takes the lines needs nothing
  /// else of it (an event that matches no rule needs only its time, to move event time on):
  /// `LineCursor` then passes over the line instead of handing it out, and tells of it in the
  /// `PassedLines` before the next line it hands out. Nil: the line is handed out.
  func append(_ line: UnsafeRawBufferPointer) -> Int64?
}

/// Lines a `LineCursor` passed over (their scanner said only their times matter), told of
/// with the next line it hands out (`LineCursor.passed`) or on their own (`LineItem.passed`).
public struct PassedLines: Sendable, Equatable {
  /// How many lines.
  public var count = 0
  /// Their bytes, each line counted as `LineCursor` hands lines out (no trailing CR) plus one
  /// for its newline.
  public var bytes: Int64 = 0
  /// The latest of their times.
  public var latest: Int64 = .min
  /// Where the first of them starts: a position to read them again from.
  public var offset: Int64 = 0
  /// Just past the newline of the last of them.
  public var end: Int64 = 0

  public init() {}

  public var isEmpty: Bool { count == 0 }

  /// Adds the line at `offset` of `length` bytes (no trailing CR) ending at `end`.
  @inline(__always)
  mutating func add(offset: Int64, length: Int, end: Int64, time: Int64) {
    if count == 0 { self.offset = offset }
    count &+= 1
    bytes &+= Int64(length) &+ 1
    self.end = end
    if time > latest { latest = time }
  }
}

/// A line's precomputed result: line `index` of `batch`.
///
/// The batch is not retained (handing a line out would otherwise cost an atomic retain and
/// release): it is valid only during the `TailDelegate.line` call that receives it, while
/// the reader holds the chunk it belongs to.
public struct ScannedLine {
  private let unretainedBatch: Unmanaged<AnyObject>
  public let index: Int

  public init(batch: any LineScanBatch, index: Int) {
    unretainedBatch = Unmanaged.passUnretained(batch)
    self.index = index
  }

  /// The batch (retained: for tests and slow paths).
  public var batch: any LineScanBatch { unretainedBatch.takeUnretainedValue() as! any LineScanBatch }

  /// Calls `body` with the batch, which the caller knows to be a `Batch` (the type its own
  /// scanner makes), without retaining it.
  @inline(__always)
  public func withBatch<Batch: LineScanBatch, R>(as type: Batch.Type, _ body: (Batch) throws -> R) rethrows -> R {
    try Unmanaged<Batch>.fromOpaque(unretainedBatch.toOpaque())._withUnsafeGuaranteedRef(body)
  }
}

/// How a reader scans ahead: with what, and from where.
struct ScanSetup: Sendable {
  var scanner: any LineScanner
  /// Longer lines are handed out as `tooLong`: not worth scanning.
  var maxLineBytes: Int
}

/// The complete lines of one chunk (where they are in the stream) and, if a scanner is set,
/// what it found in each. Owned like a `LineScanBatch`: by one thread at a time.
final class ChunkLines {
  /// Where a line starts in the stream, and its length as `LineCursor` hands it out (one
  /// trailing CR dropped).
  struct Line {
    var offset: Int64
    var length: Int64
    /// The line's time if it may be passed over (`LineScanBatch.append`), else `Int64.min`.
    var passTime: Int64
  }
  /// `count` lines in stream order, in plain memory (room for `capacity`) that this object
  /// owns. They are written on the read-ahead thread and looked up in order on the reader's,
  /// which prefetches those a few ahead: read from arrays, the lookup's first load missed the
  /// cache for most lines (a third of `LineCursor.step`'s samples).
  private var lines: UnsafeMutablePointer<Line>
  private(set) var count = 0
  private var capacity = 1024
  let batch: any LineScanBatch
  /// The reader's thread: index of the next line to look up (lines are asked for in order).
  var next = 0

  init(batch: any LineScanBatch) {
    self.batch = batch
    lines = .allocate(capacity: capacity)
  }

  deinit {
    lines.deallocate()
  }

  private func append(offset: Int64, length: Int, passTime: Int64?) {
    if count == capacity {
      let grown = UnsafeMutablePointer<Line>.allocate(capacity: 2 * capacity)
      grown.moveInitialize(from: lines, count: count)
      lines.deallocate()
      lines = grown
      capacity *= 2
    }
    (lines + count).initialize(to: Line(offset: offset, length: Int64(length), passTime: passTime ?? .min))
    count += 1
  }

  /// Splits `bytes` (the stream from `base` on) into lines and scans those that are complete
  /// and start at or after `from`. `atLineStart` says whether `bytes` starts a line; on
  /// return, whether the next chunk does. A line may be split differently than the reader's
  /// cursor splits it (a guess after a skip, a partial first line): lookups then simply miss.
  func fill(
    _ bytes: UnsafeRawBufferPointer, base: Int64, from: Int64, maxLineBytes: Int, atLineStart: inout Bool
  ) {
    count = 0
    batch.removeAll()
    next = 0
    guard let all = bytes.baseAddress, bytes.count > 0 else { return }
    var start = 0
    if !atLineStart {
      // The first bytes end a line that started in an earlier chunk.
      guard let newline = memchr(all, 0x0A, bytes.count) else { return }
      start = all.distance(to: UnsafeRawPointer(newline)) + 1
    }
    while start < bytes.count, let found = memchr(all + start, 0x0A, bytes.count - start) {
      let newline = all.distance(to: UnsafeRawPointer(found))
      var length = newline - start
      let offset = base + Int64(start)
      if length <= maxLineBytes && offset >= from {
        if length > 0 && bytes[newline - 1] == 0x0D { length -= 1 }
        let passTime = batch.append(UnsafeRawBufferPointer(start: all + start, count: length))
        append(offset: offset, length: length, passTime: passTime)
      }
      start = newline + 1
    }
    atLineStart = start == bytes.count
  }

  /// The length of the scanned line at `offset` (one trailing CR not counted), if one starts
  /// there, and its time if it may be passed over (else `Int64.min`); lines before it are
  /// passed, the line itself is not (`find` looks it up next).
  @inline(__always) func length(at offset: Int64) -> (length: Int, passTime: Int64)? {
    // Under three lines a cache line: the one holding the line 16 on.
    if next &+ 16 < count { feedbackd_prefetch(lines + (next &+ 16)) }
    while next < count, lines[next].offset < offset { next += 1 }
    guard next < count, lines[next].offset == offset else { return nil }
    return (Int(lines[next].length), lines[next].passTime)
  }

  /// The line at `offset` of `length` bytes, if it was scanned; lines before it are passed.
  @inline(__always) func find(offset: Int64, length: Int) -> Int? {
    while next < count {
      let candidate = lines[next]
      if candidate.offset > offset { return nil }
      next += 1
      if candidate.offset == offset { return Int(candidate.length) == length ? next - 1 : nil }
    }
    return nil
  }
}
