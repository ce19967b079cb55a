import CPrefetch
import Gzip

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// One line handed out by a `LineCursor`.
public enum LineItem {
  /// A complete line without its newline. `end` is the offset just past the newline: a
  /// position that is safe to save.
  case line(UnsafeRawBufferPointer, offset: Int64, end: Int64)
  /// A line longer than `maxLineBytes`, skipped whole.
  case tooLong(offset: Int64, end: Int64)
  /// Lines passed over (`LineScanBatch.append` returned their times) that no `line` item
  /// told of (`LineCursor.passed`): the last ones before a `tooLong`, or before `step`
  /// returns. They end where the next item starts (or at `position`).
  case passed(PassedLines)
}

/// Splits one file's decompressed content into lines, holding a partial last line back.
///
/// The saved position (`position`) always sits at a line end, as Fluentd's in_tail does:
/// the read position minus the buffered partial line.
public final class LineCursor {
  public let reader: LogFileReader
  public let maxLineBytes: Int
  /// Offset just past the last line handed out.
  public private(set) var position: Int64

  /// Bytes read in line (and the partial last line of a chunk), copied here.
  private var buffer: [UInt8] = []
  /// Index in `buffer` of the first byte not yet handed out; `buffer[start...]` starts at `position`.
  private var start = 0
  /// The read-ahead chunk being handed out (`LogFileReader.takeChunk`): its lines are handed
  /// out where they lie, not copied. Its data is `chunk[..<chunkCount]`; `chunk[chunkStart...]`
  /// comes after `buffer[start...]`.
  private var chunk: [UInt8] = []
  private var chunkStart = 0
  private var chunkCount = 0
  /// Inside a line that outgrew `maxLineBytes`: its bytes are dropped until its newline.
  private var skippingFrom: Int64?
  /// Bytes copied into `buffer` so far: all that is read in line, and of chunks read ahead
  /// only the lines cut by a chunk's end.
  public private(set) var bytesCopied: Int64 = 0
  /// While a `line` item is handed out: the lines passed over right before it (empty if
  /// none). A line whose scanner found that only its time matters (`LineScanBatch.append`)
  /// is not handed out: a log's lines that match no rule took as long to hand out one by one
  /// as a prediction's.
  public private(set) var passed = PassedLines()

  public convenience init(path: String, from offset: Int64, maxLineBytes: Int) throws(LogTailError) {
    try self.init(reader: try LogFileReader(path: path), from: offset, maxLineBytes: maxLineBytes)
  }

  /// Reads through a descriptor already open (and identified) by the caller.
  public init(reader: LogFileReader, from offset: Int64, maxLineBytes: Int) throws(LogTailError) {
    self.reader = reader
    let path = reader.path
    self.maxLineBytes = maxLineBytes
    position = 0
    if offset > 0 {
      guard reader.skip(to: offset) else {
        throw LogTailError(path: path, message: "holds fewer than \(offset) bytes (saved position)")
      }
      position = offset
    }
    buffer.reserveCapacity(512 * 1024)
  }

  /// Bytes held back as an unterminated last line.
  public var heldBytes: Int { buffer.count - start + chunkCount - chunkStart }

  /// Where the newline is among the `count` bytes at `base` if the line is `length` bytes
  /// long without one trailing CR: at `length`, or at `length + 1` after a CR; nil otherwise.
  @inline(__always)
  private static func newline(in base: UnsafeRawPointer, _ count: Int, after length: Int) -> Int? {
    guard length < count else { return nil }
    switch base.load(fromByteOffset: length, as: UInt8.self) {
    case 0x0A: return length
    case 0x0D where length + 1 < count && base.load(fromByteOffset: length + 1, as: UInt8.self) == 0x0A:
      return length + 1
    default: return nil
    }
  }

  public enum Step {
    case more
    case endOfData
    /// `validate` said the bytes just read cannot be trusted (the file was truncated and
    /// rewritten under the reader); nothing of them was handed out.
    case invalidated
  }

  /// Hands out the complete lines of `all[from...]` (`from` moves on), while fewer than
  /// `maxLines` have been. Returns an error `body` threw.
  @inline(__always)
  private func handOut(
    _ all: UnsafeRawBufferPointer, from: inout Int, handed: inout Int, maxLines: Int,
    _ body: (LineItem) throws -> Void
  ) -> (any Error)? {
    while handed < maxLines, from < all.count {
      let base = all.baseAddress! + from
      // The lines a few ahead (four cache lines, about a line's worth, 1 KiB on): read from
      // where the read-ahead thread wrote them.
      for cacheLine in 0..<4 { feedbackd_prefetch(base + 1024 + 64 * cacheLine) }
      let remaining = all.count - from
      let newline: Int
      // Where the read-ahead thread found this line's newline (checked: it is there, after
      // at most the one CR its length leaves out), or found by looking for it.
      if skippingFrom == nil, let scanned = reader.scannedLength(at: position),
        let end = Self.newline(in: base, remaining, after: scanned.length)
      {
        newline = from + end
        if scanned.passTime != .min && scanned.length <= maxLineBytes {
          let lineEnd = position + Int64(end + 1)
          passed.add(offset: position, length: scanned.length, end: lineEnd, time: scanned.passTime)
          position = lineEnd
          from = newline + 1
          handed += 1
          continue
        }
      } else {
        guard let p = memchr(base, 0x0A, remaining) else { break }
        newline = base.distance(to: UnsafeRawPointer(p)) + from
      }
      let length = newline - from
      let lineOffset = position
      let end = position + Int64(length + 1)
      do {
        if let skipStart = skippingFrom {
          skippingFrom = nil
          try handOutPassed(body)
          try body(.tooLong(offset: skipStart, end: end))
        } else if length > maxLineBytes {
          try handOutPassed(body)
          try body(.tooLong(offset: lineOffset, end: end))
        } else {
          var line = UnsafeRawBufferPointer(rebasing: all[from..<newline])
          if line.last == 0x0D { line = UnsafeRawBufferPointer(rebasing: line[0..<(line.count - 1)]) }
          defer { if !passed.isEmpty { passed = PassedLines() } }
          try body(.line(line, offset: lineOffset, end: end))
        }
      } catch {
        return error
      }
      position = end
      from = newline + 1
      handed += 1
    }
    do {
      try handOutPassed(body)
    } catch {
      return error
    }
    return nil
  }

  /// Tells of the lines passed over since the last item, if any, in an item of their own.
  @inline(__always)
  private func handOutPassed(_ body: (LineItem) throws -> Void) throws {
    guard !passed.isEmpty else { return }
    let lines = passed
    passed = PassedLines()
    try body(.passed(lines))
  }

  /// Hands up to `maxLines` lines to `body`. At the end of the data, an unterminated last line
  /// is handed out too when `flushPartial` is set (the file will never grow again). Errors from
  /// `body` are carried out of `withUnsafeBytes` by hand, not rethrown through it.
  ///
  /// The lines of a read-ahead chunk are handed out where they lie; only a line cut by the
  /// chunk's end is copied (into `buffer`, where the next chunk's first bytes complete it).
  public func step(
    maxLines: Int, flushPartial: Bool, validate: (() -> Bool)? = nil, _ body: (LineItem) throws -> Void
  ) throws -> Step {
    var handed = 0
    while handed < maxLines {
      // First the bytes copied to `buffer`, then the chunk's, which come after them.
      var failure: (any Error)?
      if start < buffer.count {
        buffer.withUnsafeBytes { all in
          failure = handOut(all, from: &start, handed: &handed, maxLines: maxLines, body)
        }
        if let failure { throw failure }
        if handed >= maxLines { break }
        if start < buffer.count && chunkStart < chunkCount {
          // A partial line in `buffer`: the chunk's bytes up to its first newline complete it.
          let tail = chunk.withUnsafeBytes { all -> Int in
            let rest = UnsafeRawBufferPointer(rebasing: all[chunkStart..<chunkCount])
            guard let p = memchr(rest.baseAddress!, 0x0A, rest.count) else { return chunkCount }
            return chunkStart + rest.baseAddress!.distance(to: UnsafeRawPointer(p)) + 1
          }
          buffer.append(contentsOf: chunk[chunkStart..<tail])
          bytesCopied += Int64(tail - chunkStart)
          chunkStart = tail
          continue
        }
      }
      if start == buffer.count && start > 0 {
        buffer.removeAll(keepingCapacity: true)
        start = 0
      }
      if start == buffer.count && chunkStart < chunkCount {
        chunk.withUnsafeBytes { all in
          failure = handOut(
            UnsafeRawBufferPointer(rebasing: all[0..<chunkCount]), from: &chunkStart, handed: &handed,
            maxLines: maxLines, body)
        }
        if let failure { throw failure }
        if handed >= maxLines { break }
        // A line cut by the chunk's end: kept until the next chunk completes it.
        buffer.append(contentsOf: chunk[chunkStart..<chunkCount])
        bytesCopied += Int64(chunkCount - chunkStart)
        chunkStart = chunkCount
      }
      // No newline in what is held: drop an over-long partial, then read more.
      if heldBytes > maxLineBytes {
        if skippingFrom == nil { skippingFrom = position }
        position += Int64(heldBytes)
        buffer.removeAll(keepingCapacity: true)
        start = 0
      } else if start > 0 {
        buffer.removeSubrange(0..<start)
        start = 0
      }
      // The chunk goes back (all of it is out or copied) before the next is taken.
      if !chunk.isEmpty {
        var done: [UInt8] = []
        swap(&done, &chunk)
        reader.recycle(done)
        chunkStart = 0
        chunkCount = 0
      }
      if reader.readsChunks {
        let next = reader.takeChunk()
        if next.count > 0, let validate, !validate() {
          reader.recycle(next.buffer)
          return .invalidated
        }
        if next.count > 0 {
          chunk = next.buffer
          chunkCount = next.count
          continue
        }
        reader.recycle(next.buffer)
      } else {
        let before = buffer.count
        let got = reader.readNext(into: &buffer)
        bytesCopied += Int64(got)
        if got > 0, let validate, !validate() {
          buffer.removeSubrange(before...)
          return .invalidated
        }
        if got > 0 { continue }
      }
      // The end of the data. Bytes cut off by damage are not a line: only a clean end
      // completes the last line.
      if flushPartial, reader.damage == nil, heldBytes > 0 || skippingFrom != nil {
        let end = position + Int64(heldBytes)
        if let skipStart = skippingFrom {
          skippingFrom = nil
          try body(.tooLong(offset: skipStart, end: end))
        } else {
          let offset = position
          buffer.withUnsafeBytes { all in
            do {
              try body(.line(UnsafeRawBufferPointer(rebasing: all[start...]), offset: offset, end: end))
            } catch { failure = error }
          }
          if let failure { throw failure }
        }
        position = end
        buffer.removeAll(keepingCapacity: true)
        start = 0
      }
      return .endOfData
    }
    return .more
  }
}
