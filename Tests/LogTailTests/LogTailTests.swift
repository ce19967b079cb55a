import Foundation
import Gzip
import LogTail
import TestSupport
import Testing
import Threads

func tempDir() throws -> String {
  try Scratch.directory("logtail")
}

func write(_ path: String, _ bytes: [UInt8]) throws {
  try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Every line a cursor hands out, as strings; over-long ones as "<too long>".
func readAll(
  _ path: String, from offset: Int64 = 0, max: Int = 1 << 20, flush: Bool = true
) throws -> (
  [String], LineCursor
) {
  let cursor = try LineCursor(path: path, from: offset, maxLineBytes: max)
  var lines: [String] = []
  while try cursor.step(
    maxLines: 3, flushPartial: flush,
    { item in
      switch item {
      case .line(let bytes, _, _): lines.append(String(decoding: bytes, as: UTF8.self))
      case .tooLong: lines.append("<too long>")
      case .passed(let passed): Issue.record("\(passed) passed over with no scanner")
      }
    }) == .more
  {}
  return (lines, cursor)
}

@Suite struct RotationOrderTests {
  @Test func numberedSiblingsOldestFirstLiveLast() {
    let paths = ["/l/app.log", "/l/app.log.1", "/l/app.log.10.gz", "/l/app.log.2.gz", "/l/app.log.3.gz"]
    #expect(
      rotationOrdered(paths.shuffled()) == [
        "/l/app.log.10.gz", "/l/app.log.3.gz", "/l/app.log.2.gz", "/l/app.log.1", "/l/app.log",
      ])
  }

  @Test func datedSiblingsAscendingLiveLast() {
    let paths = [
      "/l/app.log", "/l/app.log-20261130.gz", "/l/app.log-20261128.gz", "/l/app.log-20261129",
      "/l/app.log-20261130-2.gz", "/l/app.log-20261130-1.gz",
    ]
    #expect(
      rotationOrdered(paths.shuffled()) == [
        "/l/app.log-20261128.gz", "/l/app.log-20261129", "/l/app.log-20261130.gz", "/l/app.log-20261130-1.gz",
        "/l/app.log-20261130-2.gz", "/l/app.log",
      ])
  }

  @Test func namesAreParsed() {
    #expect(RotationName(path: "/l/app.log.2.gz").kind == .numbered(2))
    #expect(RotationName(path: "/l/app.log.2.gz").family == "/l/app.log")
    #expect(RotationName(path: "/l/app.log-2026113009.gz").kind == .dated("2026113009", 0))
    #expect(RotationName(path: "/l/app.log.2026-11-30").kind == .dated("20261130", 0))
    #expect(RotationName(path: "/l/app.log").kind == .live)
    #expect(RotationName(path: "/l/app.log").family == "/l/app.log")
  }

  @Test func globsMatchRegularFilesOnly() throws {
    let dir = try tempDir()
    try write(dir + "/app.log", Array("a\n".utf8))
    try write(dir + "/app.log.1", Array("b\n".utf8))
    try FileManager.default.createDirectory(atPath: dir + "/app.log.d", withIntermediateDirectories: true)
    try FileManager.default.createSymbolicLink(atPath: dir + "/current.log", withDestinationPath: dir + "/app.log")
    #expect(Set(expandGlobs([dir + "/app.log*"])) == [dir + "/app.log", dir + "/app.log.1"])
    #expect(expandGlobs([dir + "/current.log"]) == [dir + "/current.log"])
  }
}

@Suite struct LineCursorTests {
  @Test func partialLastLineIsHeldUntilItsNewline() throws {
    let dir = try tempDir()
    let file = dir + "/app.log"
    try write(file, Array("one\ntwo\nthr".utf8))
    let (lines, cursor) = try readAll(file, flush: false)
    #expect(lines == ["one", "two"])
    #expect(cursor.position == 8)
    #expect(cursor.heldBytes == 3)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
    handle.seekToEndOfFile()
    handle.write(Data("ee\nfour\n".utf8))
    try handle.close()
    let (rest, _) = try readAll(file, from: cursor.position, flush: false)
    #expect(rest == ["three", "four"])
  }

  @Test func rotatedFileFlushesItsUnterminatedLastLine() throws {
    let dir = try tempDir()
    try write(dir + "/a", Array("x\ny".utf8))
    #expect(try readAll(dir + "/a", flush: true).0 == ["x", "y"])
  }

  @Test func crlfIsStripped() throws {
    let dir = try tempDir()
    try write(dir + "/a", Array("x\r\ny\r\n".utf8))
    #expect(try readAll(dir + "/a").0 == ["x", "y"])
  }

  @Test func overLongLinesAreSkippedWholeAndReadingGoesOn() throws {
    let dir = try tempDir()
    let long = String(repeating: "z", count: 3_000_000)
    try write(dir + "/a", Array("short\n\(long)\nafter\n\(long)".utf8))
    let (lines, cursor) = try readAll(dir + "/a", max: 1000)
    #expect(lines == ["short", "<too long>", "after", "<too long>"])
    #expect(cursor.position == Int64(6 + long.count + 1 + 6 + long.count))
  }

  @Test func gzipIsDetectedByMagicNotName() throws {
    let dir = try tempDir()
    let text = Array((0..<1000).map { "line \($0)\n" }.joined().utf8)
    try write(dir + "/no-extension", GzipDeflater.compress(text))
    try write(dir + "/fake.gz", text)
    let (a, ca) = try readAll(dir + "/no-extension")
    let (b, cb) = try readAll(dir + "/fake.gz")
    #expect(a.count == 1000)
    #expect(a == b)
    #expect(ca.reader.isGzip && !cb.reader.isGzip)
  }

  @Test func resumeInsideGzipAtDecompressedOffset() throws {
    let dir = try tempDir()
    let text = Array((0..<50_000).map { "line \($0)\n" }.joined().utf8)
    try write(dir + "/plain", text)
    let firstPart = try LineCursor(path: dir + "/plain", from: 0, maxLineBytes: 1 << 20)
    _ = try firstPart.step(maxLines: 12_345, flushPartial: false) { _ in }
    let saved = firstPart.position
    // Rotated and compressed (as several members) while the daemon was down.
    try write(
      dir + "/plain.1.gz",
      GzipDeflater.compress(Array(text[0..<100_000])) + GzipDeflater.compress(Array(text[100_000...])))
    let (rest, _) = try readAll(dir + "/plain.1.gz", from: saved)
    #expect(rest.first == "line 12345")
    #expect(rest.count == 50_000 - 12_345)
  }

  @Test func truncatedGzipKeepsCompleteLinesBeforeTheDamage() throws {
    let dir = try tempDir()
    let text = Array((0..<20_000).map { "line \($0)\n" }.joined().utf8)
    let gz = GzipDeflater.compress(text)
    try write(dir + "/t.gz", Array(gz[0..<(gz.count * 2 / 3)]))
    let (lines, cursor) = try readAll(dir + "/t.gz")
    #expect(cursor.reader.damage == .truncated)
    #expect(!lines.isEmpty && lines.count < 20_000)
    #expect(lines == (0..<lines.count).map { "line \($0)" })
  }

  @Test func corruptGzipIsReportedWithGoodLinesKept() throws {
    let dir = try tempDir()
    let text = Array((0..<20_000).map { "line \($0)\n" }.joined().utf8)
    var gz = GzipDeflater.compress(Array(text[0..<50_000])) + GzipDeflater.compress(Array(text[50_000...]))
    let secondMember = GzipDeflater.compress(Array(text[0..<50_000])).count
    for i in (secondMember + 30)..<(secondMember + 90) { gz[i] ^= 0x5A }
    try write(dir + "/c.gz", gz)
    let (lines, cursor) = try readAll(dir + "/c.gz")
    guard case .corrupt? = cursor.reader.damage else {
      Issue.record("expected corrupt, got \(String(describing: cursor.reader.damage))")
      return
    }
    // Everything in the intact first member is kept. (Bytes inflated from the damaged
    // member before the damage was noticed are passed on too; they fail JSON decoding downstream.)
    let intact = String(decoding: text[0..<50_000], as: UTF8.self).split(separator: "\n").count
    #expect(lines.count >= intact)
    #expect(Array(lines[0..<intact]) == (0..<intact).map { "line \($0)" })
  }

  @Test func emptyFilesHaveNoLinesAndNoIdentity() throws {
    let dir = try tempDir()
    try write(dir + "/empty", [])
    try write(dir + "/empty.gz", GzipDeflater.compress([]))
    #expect(try readAll(dir + "/empty").0 == [])
    #expect(try readAll(dir + "/empty.gz").0 == [])
    #expect(try Fingerprint.of(path: dir + "/empty", isComplete: true) == nil)
    #expect(try Fingerprint.of(path: dir + "/empty.gz", isComplete: true) == nil)
  }
}

@Suite struct FingerprintTests {
  @Test func sameContentSameIdentityWhateverTheNameOrCompression() throws {
    let dir = try tempDir()
    let text = Array((0..<2000).map { "{\"n\":\($0)}\n" }.joined().utf8)
    try write(dir + "/app.log", text)
    try write(dir + "/app.log.1.gz", GzipDeflater.compress(text + Array("more\n".utf8)))
    let a = try Fingerprint.of(path: dir + "/app.log", isComplete: false)
    let b = try Fingerprint.of(path: dir + "/app.log.1.gz", isComplete: true)
    #expect(a != nil && a == b)
  }

  @Test func differentFirstLinesDiffer() throws {
    #expect(
      Fingerprint.of(head: Array("a\n".utf8), isComplete: false)
        != Fingerprint.of(head: Array("b\n".utf8), isComplete: false))
  }

  @Test func growingFileWithoutNewlineIsNotYetIdentified() {
    #expect(Fingerprint.of(head: Array("partial".utf8), isComplete: false) == nil)
    #expect(Fingerprint.of(head: Array("partial".utf8), isComplete: true) != nil)
    #expect(Fingerprint.of(head: [UInt8](repeating: 65, count: 2000), isComplete: false) != nil)
  }

  /// An open file's fingerprint (read through its descriptor, at most `headBytes` of a plain
  /// file) is the one its path gives, plain or gzip, complete or not: empty, a partial first
  /// line, a first line just under, at and over `headBytes`, one longer than the old 16 KB
  /// read, one line of many.
  @Test(arguments: [0, 1, 7, 1022, 1023, 1024, 1025, 2047, 20_000])
  func anOpenFilesHeadIsItsPathsFingerprint(firstLine: Int) throws {
    let dir = try tempDir()
    let first = Array(repeating: UInt8(ascii: "a"), count: firstLine)
    for (name, text) in [
      ("partial", first), ("line", first + [UInt8(ascii: "\n")]),
      ("lines", first + Array("\n{\"n\":1}\n{\"n\":2}\n".utf8)),
    ] {
      for gzip in [false, true] {
        let path = dir + "/\(name).log" + (gzip ? ".gz" : "")
        try write(path, gzip ? GzipDeflater.compress(text) : text)
        let reader = try LogFileReader(path: path)
        for complete in [false, true] {
          let open = reader.contentFingerprint(isComplete: complete)
          #expect(open == (try Fingerprint.of(path: path, isComplete: complete)), "\(path) complete: \(complete)")
          #expect(open == Fingerprint.of(head: text, isComplete: complete), "\(path) complete: \(complete)")
        }
        if !gzip { #expect(reader.headFingerprint() == (try Fingerprint.of(path: path, isComplete: false))) }
      }
    }
  }

  @Test func identityIgnoresBytesAfterTheFirstLine() {
    #expect(
      Fingerprint.of(head: Array("head\nx".utf8), isComplete: false)
        == Fingerprint.of(head: Array("head\nyy\n".utf8), isComplete: false))
  }
}

/// Gzip files are inflated on a thread of their own, a few chunks ahead of the reader.
@Suite struct ReadAheadTests {
  /// Many chunks (and several gzip members) come out whole and in order, with the compressed
  /// byte count of the whole file.
  @Test func manyChunksArriveInOrder() throws {
    let dir = try tempDir()
    var text: [UInt8] = []
    var rng = SystemRandomNumberGenerator()
    for i in 0..<300_000 { text += Array("line \(i) \(UInt64.random(in: 0...UInt64.max, using: &rng))\n".utf8) }
    let gz = GzipDeflater.compress(Array(text[0..<3_000_000])) + GzipDeflater.compress(Array(text[3_000_000...]))
    try write(dir + "/big.gz", gz)
    let reader = try LogFileReader(path: dir + "/big.gz")
    var out: [UInt8] = []
    var reads = 0
    while reader.read(into: &out) > 0 { reads += 1 }
    #expect(reader.atEnd && reader.damage == nil)
    #expect(reads > 4, "the file should span several chunks")
    #expect(out == text)
    #expect(reader.offset == Int64(text.count))
    #expect(reader.fileBytesRead == Int64(gz.count))
  }

  /// A read-ahead started with a bound for its first chunks (a file replay opens ahead) reads
  /// that many and waits; once the first is taken it reads on to its full depth.
  @Test func readAheadStartedAheadReadsOnlyItsFirstChunksUntilOneIsTaken() throws {
    let dir = try tempDir()
    // About 10 chunks of the read-ahead.
    let text = Array((0..<700_000).map { "line \($0) \(String(repeating: "z", count: $0 % 13))\n" }.joined().utf8)
    let path = dir + "/app.log.1.gz"
    try write(path, GzipDeflater.compress(text))
    /// The chunks read ahead once the thread has stopped reading (at most `bound`).
    func settled(_ reader: LogFileReader, _ bound: Int) -> Int {
      for _ in 0..<400 where reader.chunksReadAhead < bound { usleep(5_000) }
      // Time for a thread that did not stop to read more.
      usleep(100_000)
      return reader.chunksReadAhead
    }
    let bounded = try LogFileReader(path: path)
    bounded.startReadAhead(untilTaken: ReadAhead.depthOpenedAhead)
    #expect(settled(bounded, ReadAhead.depthOpenedAhead) == ReadAhead.depthOpenedAhead)
    var out: [UInt8] = []
    let first = bounded.takeChunk()
    out += first.buffer[0..<first.count]
    bounded.recycle(first.buffer)
    #expect(settled(bounded, ReadAhead.depth) == ReadAhead.depth)
    while bounded.readsChunks {
      let chunk = bounded.takeChunk()
      out += chunk.buffer[0..<chunk.count]
      bounded.recycle(chunk.buffer)
    }
    #expect(out == text)
    // Without the bound, the thread reads its full depth at once.
    let unbounded = try LogFileReader(path: path)
    unbounded.startReadAhead()
    #expect(settled(unbounded, ReadAhead.depth) == ReadAhead.depth)
    #expect(ReadAhead.depthOpenedAhead < ReadAhead.depth)
  }

  /// Readers dropped halfway (a file given up, a shutdown) stop their thread before the file
  /// is closed; many in a row leave no thread or descriptor behind. (Only this test's file and
  /// threads are counted: other tests run at the same time.)
  @Test func droppingAReaderHalfwayStopsItsThread() throws {
    let dir = try tempDir()
    let text = Array((0..<400_000).map { "line \($0)\n" }.joined().utf8)
    let path = dir + "/big.gz"
    try write(path, GzipDeflater.compress(text))
    func openDescriptors() throws -> Int {
      try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").filter {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0)) == path
      }.count
    }
    func inflatingThreads() throws -> Int {
      try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").filter {
        let comm = (try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8)) ?? ""
        return comm.hasPrefix(ReadAhead.inflateThreadName)
      }.count
    }
    for _ in 0..<50 {
      let reader = try LogFileReader(path: path)
      var out: [UInt8] = []
      #expect(reader.read(into: &out) > 0)
      #expect(Array(out.prefix(7)) == Array("line 0\n".utf8))
      #expect(try openDescriptors() == 1)
    }
    #expect(try openDescriptors() == 0)
    #expect(
      try inflatingThreads() <= 3, "inflating threads must end with their readers (other tests may read gzip now)")
  }
}

/// A scanner that keeps a copy of every line it is given: what a line's scan was made from.
/// With `passing`, it has the cursor pass over the lines `passTime` gives a time.
struct CopyScanner: LineScanner {
  var passing = false

  final class Batch: LineScanBatch {
    let passing: Bool
    var lines: [[UInt8]] = []
    init(passing: Bool) { self.passing = passing }
    func removeAll() { lines.removeAll() }
    func append(_ line: UnsafeRawBufferPointer) -> Int64? {
      lines.append(Array(line))
      return passing ? CopyScanner.passTime(Array(line)) : nil
    }
  }
  func makeBatch() -> any LineScanBatch { Batch(passing: passing) }

  /// A line whose first number is not divisible by 4 is passed over, with that number as its
  /// time: numbered lines come in runs of three passed over and one handed out.
  static func passTime(_ line: [UInt8]) -> Int64? {
    let digits = line.drop { !(0x30...0x39).contains($0) }.prefix { (0x30...0x39).contains($0) }
    guard let n = Int64(String(decoding: digits, as: UTF8.self)), n % 4 != 0 else { return nil }
    return n
  }
}

/// Lines scanned on the read-ahead thread are handed out exactly for the lines they were
/// scanned from, whatever the chunk boundaries, line endings, lengths and start position.
@Suite struct ScanAheadTests {
  /// Lines of every kind: long ones spanning chunk boundaries, CRLF and CR CR LF endings,
  /// blank lines, lines over `max`, and (when `partial`) an unterminated last line.
  static func corpus(seed: UInt64, partial: Bool) -> [UInt8] {
    var state = seed
    func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    var text: [UInt8] = []
    var i = 0
    while text.count < 3_000_000 {
      let kind = next() % 100
      let length: Int =
        kind < 2 ? Int(next() % 700_000) : kind < 10 ? 0 : kind < 15 ? 400 + Int(next() % 200) : Int(next() % 250)
      text += Array("\(i) ".utf8)
      for _ in 0..<length { text.append(UInt8(ascii: "a") + UInt8(next() % 26)) }
      if kind % 7 == 0 { text.append(0x0D) }
      if kind % 11 == 0 { text += [0x0D, 0x0D] }
      text.append(0x0A)
      i += 1
    }
    if partial { text += Array("{\"last\":\"no newline\"}\r".utf8) }
    return text
  }

  struct Item: Equatable {
    var text: [UInt8]?
    var offset: Int64
    var end: Int64
  }

  /// Every item a cursor hands out; with `scanAhead`, also how many lines came with a scan.
  static func items(
    _ path: String, from: Int64, scanAhead: Bool, maxLines: Int = 1000
  ) throws -> (
    [Item], scanned: Int
  ) {
    let reader = try LogFileReader(path: path)
    if scanAhead { reader.enableReadAhead(plainFiles: true, scanner: CopyScanner(), maxLineBytes: 500) }
    let cursor = try LineCursor(reader: reader, from: from, maxLineBytes: 500)
    var items: [Item] = []
    var scanned = 0
    while try cursor.step(
      maxLines: maxLines, flushPartial: true,
      { item in
        switch item {
        case .line(let bytes, let offset, let end):
          items.append(Item(text: Array(bytes), offset: offset, end: end))
          if let hit = reader.scannedLine(offset: offset, length: bytes.count) {
            scanned += 1
            #expect((hit.batch as! CopyScanner.Batch).lines[hit.index] == Array(bytes), "line at \(offset)")
          }
        case .tooLong(let offset, let end):
          items.append(Item(text: nil, offset: offset, end: end))
        case .passed(let passed):
          Issue.record("\(passed) passed over by a scanner that passes nothing")
        }
      }) == .more
    {}
    #expect(reader.damage == nil)
    return (items, scanned)
  }

  @Test(arguments: [false, true], [false, true])
  func scansMatchTheirLines(gzip: Bool, partial: Bool) throws {
    let dir = try tempDir()
    let text = Self.corpus(seed: gzip ? 7 : 11, partial: partial)
    let path = dir + (gzip ? "/app.log.gz" : "/app.log")
    try write(path, gzip ? GzipDeflater.compress(text) : text)
    // From the start, and from a saved position in the middle (a line end).
    let middle = Int64(text[1_500_000...].firstIndex(of: 0x0A)! + 1)
    for from in [Int64(0), middle] {
      let (inline, none) = try Self.items(path, from: from, scanAhead: false)
      let (ahead, scanned) = try Self.items(path, from: from, scanAhead: true)
      #expect(none == 0)
      #expect(inline == ahead)
      #expect(inline.last?.end == Int64(text.count))
      // Only lines across chunk boundaries (and the partial last line) are not scanned ahead.
      let lines = inline.filter { $0.text != nil }.count
      #expect(scanned > lines - 20, "\(scanned) of \(lines) lines scanned ahead")
    }
  }

  /// Lines passed over are told of exactly: each `PassedLines` stands for the lines a cursor
  /// reading without a scanner hands out from its `offset` to its `end` (CRLF endings, lines
  /// cut by a chunk's end, which are handed out, and a start in the middle included), all of
  /// them lines the scanner passes, their count, bytes and latest time; every other line is
  /// handed out as before, and `step`'s line budget counts the passed ones.
  @Test(arguments: [false, true])
  func passedLinesStandForExactlyTheirLines(gzip: Bool) throws {
    let dir = try tempDir()
    let text = Self.corpus(seed: gzip ? 17 : 19, partial: true)
    let path = dir + (gzip ? "/app.log.gz" : "/app.log")
    try write(path, gzip ? GzipDeflater.compress(text) : text)
    let middle = Int64(text[1_500_000...].firstIndex(of: 0x0A)! + 1)
    for from in [Int64(0), middle] {
      let (inline, _) = try Self.items(path, from: from, scanAhead: false)
      let reader = try LogFileReader(path: path)
      reader.enableReadAhead(plainFiles: true, scanner: CopyScanner(passing: true), maxLineBytes: 500)
      let cursor = try LineCursor(reader: reader, from: from, maxLineBytes: 500)
      var next = 0  // the index in `inline` of the next line to account for
      var passedLines = 0
      var failures: [String] = []
      /// Checks `passed` against the lines of `inline` it stands for, and moves past them.
      func account(_ passed: PassedLines) {
        guard !passed.isEmpty else { return }
        let lines = inline[next..<min(inline.count, next + passed.count)]
        let times = lines.compactMap { $0.text.flatMap(CopyScanner.passTime) }
        if lines.count != passed.count || times.count != passed.count || lines.first?.offset != passed.offset
          || lines.last?.end != passed.end || passed.latest != times.max()
          || passed.bytes != lines.reduce(0, { $0 + Int64($1.text!.count + 1) })
        {
          failures.append("\(passed) at line \(next)")
        }
        next += passed.count
        passedLines += passed.count
      }
      var step: LineCursor.Step
      repeat {
        let before = next
        step = try cursor.step(maxLines: 100, flushPartial: true) { item in
          switch item {
          case .line(let bytes, let offset, let end):
            account(cursor.passed)
            if next < inline.count, inline[next] != Item(text: Array(bytes), offset: offset, end: end) {
              failures.append("line at \(offset)")
            }
            next += 1
          case .tooLong(let offset, let end):
            if next < inline.count, inline[next] != Item(text: nil, offset: offset, end: end) {
              failures.append("too long at \(offset)")
            }
            next += 1
          case .passed(let passed):
            account(passed)
          }
        }
        if step == .more && next - before != 100 { failures.append("a step of \(next - before) lines, not 100") }
      } while step == .more
      #expect(failures.isEmpty, "\(failures.prefix(5))")
      #expect(next == inline.count)
      #expect(cursor.position == Int64(text.count))
      let passable = inline.filter { $0.text.flatMap(CopyScanner.passTime) != nil }.count
      #expect(passedLines > passable - 20, "\(passedLines) of \(passable) passable lines passed over")
    }
  }

  /// The read-ahead thread refills the buffers its reader hands back in place: a buffer it
  /// takes while the reader still holds a reference to it is copied first (and every page of
  /// the copy faults in), which handing it back used to race into for most chunks. And the
  /// cursor does not copy the chunks (it copied all of each into its buffer, 1 GB per GB).
  @Test(arguments: [false, true])
  func readAheadRefillsRecycledBuffersInPlace(gzip: Bool) throws {
    let dir = try tempDir()
    let text = Array(
      (0..<300_000).map { "{\"n\":\($0),\"pad\":\"\(String(repeating: "y", count: $0 % 61))\"}\n" }.joined().utf8)
    let path = dir + (gzip ? "/app.log.1.gz" : "/app.log.1")
    try write(path, gzip ? GzipDeflater.compress(text) : text)
    let reader = try LogFileReader(path: path)
    reader.enableReadAhead(plainFiles: true, scanner: CopyScanner(), maxLineBytes: 500)
    let cursor = try LineCursor(reader: reader, from: 0, maxLineBytes: 500)
    var lines = 0
    while try cursor.step(
      maxLines: 1000, flushPartial: true,
      { item in
        if case .line = item { lines += 1 }
      }) == .more
    {}
    #expect(lines == 300_000)
    #expect(text.count > 20 * 512 * 1024)
    #expect(reader.readAheadBufferCopies == 0)
    // The cursor hands the chunks' lines out where they lie: it copies only the lines cut by
    // a chunk's end.
    #expect(cursor.bytesCopied < Int64(text.count / 1000), "\(cursor.bytesCopied) of \(text.count) bytes copied")
  }

  /// The reader counts the times it waited for its read-ahead thread, and only those: the
  /// first chunk (the thread has just started inflating it), then none while the reader
  /// takes its time over each chunk and the thread stays ahead.
  @Test func readerCountsOnlyTheWaitsForItsReadAheadThread() throws {
    let dir = try tempDir()
    let text = Array(
      (0..<120_000).map { "{\"n\":\($0),\"pad\":\"\(String(repeating: "w", count: $0 % 41))\"}\n" }.joined().utf8)
    let path = dir + "/app.log.1.gz"
    try write(path, GzipDeflater.compress(text))
    let waits = WaitTally()
    let reader = try LogFileReader(path: path)
    reader.enableReadAhead(plainFiles: true, scanner: nil, maxLineBytes: 500, waits: waits)
    var bytes = 0
    var chunks = 0
    while reader.readsChunks {
      let chunk = reader.takeChunk()
      bytes += chunk.count
      chunks += 1
      reader.recycle(chunk.buffer)
      // Time enough for the thread to inflate the next chunks before they are asked for.
      usleep(200_000)
    }
    #expect(bytes == text.count)
    #expect(chunks >= 4 && chunks <= 8, "\(chunks) chunks")
    #expect(waits.count == 1, "\(waits.count) waits in \(chunks) chunks of \(text.count) bytes")
    #expect(waits.nanoseconds > 0)
  }

  /// A gzip file cut short: read ahead (inflated straight into chunk buffers that fill and
  /// leave input for the next chunk) it yields the same lines as read in line, then the damage.
  @Test func truncatedGzipReadAheadYieldsWhatReadingInLineYields() throws {
    let dir = try tempDir()
    let text = Array(
      (0..<200_000).map { "{\"n\":\($0),\"pad\":\"\(String(repeating: "x", count: $0 % 97))\"}\n" }.joined().utf8)
    let compressed = GzipDeflater.compress(text)
    let path = dir + "/app.log.1.gz"
    try write(path, Array(compressed[0..<(compressed.count * 3 / 5)]))
    var runs: [[String]] = []
    for ahead in [false, true] {
      let reader = try LogFileReader(path: path)
      if ahead { reader.enableReadAhead(plainFiles: true, scanner: CopyScanner(), maxLineBytes: 500) }
      let cursor = try LineCursor(reader: reader, from: 0, maxLineBytes: 500)
      var lines: [String] = []
      while try cursor.step(
        maxLines: 1000, flushPartial: true,
        { item in
          guard case .line(let bytes, _, _) = item else { return }
          lines.append(String(decoding: bytes, as: UTF8.self))
        }) == .more
      {}
      #expect(reader.damage == .truncated)
      runs.append(lines)
    }
    #expect(runs[0].count > 100_000)
    #expect(runs[0].count == runs[1].count)
    #expect(runs[0] == runs[1] ? true : false)
  }

  /// A step may stop anywhere in a chunk read ahead (or right at its end): however few lines
  /// a step hands out, the items are those of reading in line, and scans still match them.
  @Test(arguments: [1, 2, 7, 333])
  func stepsOfAnySizeYieldTheSameItems(maxLines: Int) throws {
    let dir = try tempDir()
    let text = Self.corpus(seed: 5, partial: true)
    let path = dir + "/app.log.gz"
    try write(path, GzipDeflater.compress(text))
    let (inline, _) = try Self.items(path, from: 0, scanAhead: false)
    let (ahead, scanned) = try Self.items(path, from: 0, scanAhead: true, maxLines: maxLines)
    #expect(inline.count == ahead.count)
    #expect(inline == ahead)
    #expect(scanned > inline.filter { $0.text != nil }.count - 20)
  }

  /// A plain file's read-ahead thread ends at the end of the file; what is appended later is
  /// read in line.
  @Test func plainFileGrowingAfterItsThreadEnded() throws {
    let dir = try tempDir()
    let path = dir + "/app.log"
    try write(path, Array((0..<100_000).map { "line \($0)\n" }.joined().utf8))
    let reader = try LogFileReader(path: path)
    reader.enableReadAhead(plainFiles: true, scanner: CopyScanner(), maxLineBytes: 1000)
    let cursor = try LineCursor(reader: reader, from: 0, maxLineBytes: 1000)
    var lines: [String] = []
    var scanned = 0
    func drain() throws {
      while try cursor.step(
        maxLines: 100, flushPartial: false,
        { item in
          guard case .line(let bytes, let offset, _) = item else { return }
          lines.append(String(decoding: bytes, as: UTF8.self))
          if reader.scannedLine(offset: offset, length: bytes.count) != nil { scanned += 1 }
        }) == .more
      {}
    }
    try drain()
    #expect(lines.count == 100_000)
    #expect(scanned > 99_900)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    handle.seekToEndOfFile()
    handle.write(Data("appended 1\nappended 2\npart".utf8))
    try handle.close()
    try drain()
    #expect(lines.suffix(2) == ["appended 1", "appended 2"])
    #expect(cursor.heldBytes == 4)
  }
}
