import Foundation
import Gzip
import LogTail
import Testing

/// Records what a tailer hands out, with positions kept in memory like a checkpoint.
final class RecordingDelegate: TailDelegate {
  var lines: [String] = []
  var positions: [Fingerprint: TailPosition] = [:]
  var events: [String] = []
  /// Lines that came with a scan done ahead (`CopyScanner`), and those whose scan was not of
  /// their bytes (must stay 0).
  var scannedAhead = 0
  var scannedWrong = 0
  func position(of fingerprint: Fingerprint) -> TailPosition? { positions[fingerprint] }
  func save(_ position: TailPosition, of fingerprint: Fingerprint, path: String) { positions[fingerprint] = position }
  func line(
    _ bytes: UnsafeRawBufferPointer, file: String, fingerprint: Fingerprint, offset: Int64, scanned: ScannedLine?,
    passed: PassedLines
  ) {
    if !passed.isEmpty { self.passed(passed, file: file, fingerprint: fingerprint) }
    lines.append(String(decoding: bytes, as: UTF8.self))
    if let scanned {
      scannedAhead += 1
      if (scanned.batch as! CopyScanner.Batch).lines[scanned.index] != Array(bytes) { scannedWrong += 1 }
    }
  }
  func tooLong(file: String, fingerprint: Fingerprint, offset: Int64, end: Int64) { lines.append("<too long>") }
  /// Lines passed over (`CopyScanner(passing: true)`): `expandingPassed` checks them.
  func passed(_ lines: PassedLines, file: String, fingerprint: Fingerprint) {
    self.lines.append("<passed \(lines.count) \(lines.latest) \(lines.bytes)>")
  }

  /// `lines` with each run of lines passed over replaced by the lines of `expected` it stands
  /// for, if they are lines `CopyScanner` passes over, the last one the latest; nil if not.
  func expandingPassed(_ expected: [String]) -> [String]? {
    var out: [String] = []
    for line in lines {
      guard line.hasPrefix("<passed ") else {
        out.append(line)
        continue
      }
      let fields = line.dropFirst(8).dropLast().split(separator: " ").compactMap { Int($0) }
      let run = expected[min(out.count, expected.count)..<min(out.count + fields[0], expected.count)]
      guard run.count == fields[0], run.allSatisfy({ CopyScanner.passTime(Array($0.utf8)) != nil }),
        run.last.flatMap({ CopyScanner.passTime(Array($0.utf8)) }) == Int64(fields[1]),
        run.reduce(0, { $0 + $1.utf8.count + 1 }) == fields[2]
      else { return nil }
      out += run
    }
    return out
  }
  func note(_ event: TailEvent) { events.append("\(event)") }
}

/// A log written and rotated the ways logrotate does, step by step, in a temp directory.
struct RotatingLog {
  let dir: String
  var next = 0
  var rotations = 0
  var live: FileHandle

  init() throws {
    dir = try tempDir()
    _ = FileManager.default.createFile(atPath: dir + "/app.log", contents: nil)
    live = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/app.log"))
  }

  var path: String { dir + "/app.log" }

  mutating func write(_ count: Int) {
    for _ in 0..<count {
      live.seekToEndOfFile()
      live.write(Data("line \(next) \(String(repeating: "x", count: next % 7))\n".utf8))
      next += 1
    }
  }

  func shift() throws {
    let fm = FileManager.default
    let names = try fm.contentsOfDirectory(atPath: dir).compactMap { name -> (Int, String)? in
      let parts = name.split(separator: ".")
      guard parts.count >= 3, parts[0] == "app", parts[1] == "log", let n = Int(parts[2]) else { return nil }
      return (n, name)
    }.sorted { $0.0 > $1.0 }
    for (n, name) in names {
      let suffix = name.hasSuffix(".gz") ? ".gz" : ""
      try fm.moveItem(atPath: dir + "/" + name, toPath: dir + "/app.log.\(n + 1)\(suffix)")
    }
  }

  static func gzipInPlace(_ path: String) throws {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    try Data(GzipDeflater.compress([UInt8](data))).write(to: URL(fileURLWithPath: path + ".gz"))
    try FileManager.default.removeItem(atPath: path)
  }

  mutating func rotate(_ style: String) throws {
    rotations += 1
    try shift()
    switch style {
    case "copytruncate":
      try FileManager.default.copyItem(atPath: path, toPath: dir + "/app.log.1")
      try live.truncate(atOffset: 0)
    default:
      try live.close()
      try FileManager.default.moveItem(atPath: path, toPath: dir + "/app.log.1")
      _ = FileManager.default.createFile(atPath: path, contents: nil)
      live = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    }
    if style == "compress" { try Self.gzipInPlace(dir + "/app.log.1") }
    if style == "delaycompress", FileManager.default.fileExists(atPath: dir + "/app.log.2") {
      try Self.gzipInPlace(dir + "/app.log.2")
    }
  }
}

@Suite struct SourceTailerTests {
  static let styles = ["rename", "copytruncate", "compress", "delaycompress"]

  /// Every style, with 0 to 3 rotations between polls: the lines come out exactly once, in order.
  /// With `scanAhead`, every file is read ahead and its lines scanned there (a copy of each
  /// line): a line handed out with a scan was scanned from exactly its bytes, also when its
  /// file was truncated and written again under the read-ahead thread.
  @Test(arguments: [0, 1, 2, 3], [false, true])
  func everyRotationStyleYieldsEachLineOnceInOrder(rotationsPerPoll: Int, scanAhead: Bool) throws {
    try Self.rotateAndTail(rotationsPerPoll: rotationsPerPoll, scanAhead: scanAhead, reuseListing: false)
  }

  /// The same with three lines in four passed over on the read-ahead thread: each run of
  /// them is told of in order, for exactly the lines it stands for, and a poll's budget counts
  /// them (a poll that took fewer lines than its budget moves on to the next file, which
  /// would let a newer file's lines come before an older one's).
  @Test(arguments: [0, 1, 2, 3])
  func linesPassedOverComeInOrderThroughEveryRotationStyle(rotationsPerPoll: Int) throws {
    try Self.rotateAndTail(rotationsPerPoll: rotationsPerPoll, scanAhead: true, reuseListing: false, passing: true)
  }

  /// The same, with the listing reused until inotify reports a name change, as the live
  /// daemon does (`reusesListing`; the clock moves a nanosecond a poll, so only the hints and
  /// the tailer's own checks make it list again). Without rotations it lists about once.
  @Test(arguments: [0, 1, 2, 3])
  func everyRotationStyleYieldsEachLineOnceInOrderWithAReusedListing(rotationsPerPoll: Int) throws {
    let (polls, discoveries) = try Self.rotateAndTail(
      rotationsPerPoll: rotationsPerPoll, scanAhead: false, reuseListing: true)
    if rotationsPerPoll == 0 {
      #expect(discoveries <= 3, "\(discoveries) listings for \(polls) polls")
    } else {
      #expect(discoveries < polls, "\(discoveries) listings for \(polls) polls")
    }
  }

  /// Writes 24 rounds of 40 lines with `rotationsPerPoll` rotations between polls, tails them,
  /// and checks every line came out once, in order. Returns the polls made and the listings.
  @discardableResult
  static func rotateAndTail(
    rotationsPerPoll: Int, scanAhead: Bool, reuseListing: Bool, passing: Bool = false
  ) throws -> (Int, Int) {
    var log = try RotatingLog()
    let delegate = RecordingDelegate()
    let tailer = SourceTailer(
      patterns: [log.dir + "/app.log*"], maxLineBytes: 1 << 20, live: true, rotateWait: 0, delegate: delegate,
      scanner: scanAhead ? CopyScanner(passing: passing) : nil)
    if scanAhead { tailer.readAheadBacklog = 0 }
    let watcher = reuseListing ? DirectoryWatcher(patterns: tailer.patterns) : nil
    tailer.reusesListing = reuseListing
    var clock: Int64 = 1
    var polls = 0
    func poll(_ budget: Int) throws -> Int {
      if let watcher {
        watcher.wait(timeoutMilliseconds: 0)
        if watcher.takeNamesChanged() { tailer.namesMayHaveChanged() }
      }
      polls += 1
      return try tailer.poll(budget: budget, now: clock)
    }
    for round in 0..<24 {
      log.write(40)
      for k in 0..<rotationsPerPoll {
        try log.rotate(Self.styles[(round + k) % Self.styles.count])
        log.write(40)
      }
      while try poll(37) > 0 { clock += 1 }
      clock += 1
    }
    while try poll(1000) > 0 { clock += 1 }
    let expected = (0..<log.next).map { "line \($0) \(String(repeating: "x", count: $0 % 7))" }
    let lines = try #require(delegate.expandingPassed(expected), "lines passed over that are not the next ones")
    if passing { #expect(delegate.lines.contains { $0.hasPrefix("<passed ") }, "no line was passed over") }
    #expect(lines.count == expected.count, "\(delegate.events.suffix(20))")
    let firstBad = zip(lines, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
    #expect(
      firstBad == nil,
      "first difference at \(firstBad ?? -1): \(firstBad.map { Array(lines[max(0, $0 - 2)..<min(lines.count, $0 + 3)]) } ?? []) \(delegate.events)"
    )
    #expect(delegate.scannedWrong == 0)
    if scanAhead { #expect(delegate.scannedAhead > 0) }
    return (polls, tailer.discoveries)
  }

  /// A reused listing is made again when the owner says names may have changed, or once it is
  /// `relistInterval` old; until then a new file is not seen (only latency: the file it
  /// rotated from is still read through its descriptor).
  @Test func aReusedListingIsMadeAgainOnAHintOrWhenOld() throws {
    var log = try RotatingLog()
    let delegate = RecordingDelegate()
    let tailer = SourceTailer(
      patterns: [log.dir + "/app.log*"], maxLineBytes: 1 << 20, live: true, rotateWait: 0, delegate: delegate)
    tailer.reusesListing = true
    tailer.relistInterval = 1_000
    /// Polls at `now` until nothing is left; the lines and listings so far.
    func drain(at now: Int64) throws -> (lines: Int, listings: Int) {
      while try tailer.poll(budget: 100, now: now) > 0 {}
      return (delegate.lines.count, tailer.discoveries)
    }
    log.write(10)
    #expect(try drain(at: 10) == (10, 1))
    log.write(10)
    #expect(try drain(at: 20) == (20, 1))
    try log.rotate("rename")
    log.write(5)
    #expect(try drain(at: 30) == (20, 1), "the new live file is not listed yet")
    tailer.namesMayHaveChanged()
    #expect(try drain(at: 40) == (25, 2))
    try log.rotate("rename")
    log.write(5)
    #expect(try drain(at: 500) == (25, 2))
    #expect(try drain(at: 1_100) == (30, 3), "listed again: the listing was older than relistInterval")
    #expect(delegate.lines == (0..<30).map { "line \($0) \(String(repeating: "x", count: $0 % 7))" })
  }

  /// A log of two files, app.log.1 (1000 lines) and app.log (`newer` lines), and a replay's
  /// (not live) tailer over them.
  static func replayOfTwoFiles(newer: Int) throws -> (RotatingLog, RecordingDelegate, SourceTailer) {
    var log = try RotatingLog()
    log.write(1000)
    try log.rotate("create")
    log.write(newer)
    let delegate = RecordingDelegate()
    let tailer = SourceTailer(
      patterns: [log.dir + "/app.log*"], maxLineBytes: 1 << 20, live: false, delegate: delegate)
    return (log, delegate, tailer)
  }

  /// Replay (not live) lists the files only when a poll did not take its whole budget: reading
  /// on inside a file needs no new listing (it was 3% of the pipeline thread). A file that
  /// appears meanwhile is still found before the source reports nothing left, and a rotation
  /// under a reused listing loses and repeats nothing.
  @Test func replayListsFilesOnlyWhenAPollComesUpShort() throws {
    var (log, delegate, tailer) = try Self.replayOfTwoFiles(newer: 500)
    var polls = 0
    while try tailer.poll(budget: 100, now: 0) > 0 {
      polls += 1
      if polls == 3 {
        // Mid-replay: the log rotates again and more lines come.
        try log.rotate("create")
        log.write(300)
      }
    }
    let expected = (0..<log.next).map { "line \($0) \(String(repeating: "x", count: $0 % 7))" }
    let firstBad = zip(delegate.lines, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
    #expect(
      delegate.lines.count == expected.count && firstBad == nil,
      "\(delegate.lines.count) lines, first difference at \(firstBad ?? -1); \(delegate.events)")
    #expect(polls >= 18)
    #expect(tailer.discoveries <= 6, "\(tailer.discoveries) listings for \(polls) polls")
  }

  /// A replay opens the next file, and starts its read-ahead, as soon as the read-ahead of
  /// the one it reads has read that to its end: the next file's first chunks are read while
  /// the last ones of the file before are taken. Lines still come out once each, in order.
  @Test func replayOpensTheNextFileWhileTheLastChunksOfOneAreTaken() throws {
    let dir = try tempDir()
    func lines(_ range: Range<Int>) -> [String] { range.map { "line \($0) \(String(repeating: "y", count: 60))" } }
    // About 1.5 MB each, 3 chunks of the read-ahead.
    let oldest = lines(0..<20000)
    let older = lines(20000..<40000)
    let live = lines(40000..<40010)
    func text(_ lines: [String]) -> [UInt8] { Array(lines.map { $0 + "\n" }.joined().utf8) }
    try Data(GzipDeflater.compress(text(oldest))).write(to: URL(fileURLWithPath: dir + "/app.log.2.gz"))
    try Data(text(older)).write(to: URL(fileURLWithPath: dir + "/app.log.1"))
    try Data(text(live)).write(to: URL(fileURLWithPath: dir + "/app.log"))
    let delegate = RecordingDelegate()
    let tailer = SourceTailer(
      patterns: [dir + "/app.log*"], maxLineBytes: 1 << 20, live: false, delegate: delegate)
    // Small polls with a pause between them: each file's read-ahead reads it to its end long
    // before its lines are all taken.
    while try tailer.poll(budget: 200, now: 0) > 0 { usleep(500) }
    #expect(delegate.lines == oldest + older + live)
    func index(_ kind: String, _ name: String) -> Int {
      delegate.events.firstIndex { $0.hasPrefix(kind) && $0.contains("\"\(dir)/\(name)\"") } ?? -1
    }
    for (file, next) in [("app.log.2.gz", "app.log.1"), ("app.log.1", "app.log")] {
      #expect(index("opened", file) >= 0)
      #expect(
        index("finished", file) > index("opened", next), "\(next) opened after \(file) finished: \(delegate.events)")
      #expect(index("opened", next) > index("opened", file))
    }
  }

  /// A replay hands the read-ahead buffers and scanned lines of a file it finished to the
  /// next file's read-ahead instead of making new ones (`ReadAheadPool`); the lines, and what
  /// was scanned of each, are those of the file read now. A live tailer keeps none.
  @Test func replayPassesReadAheadBuffersFromFileToFile() throws {
    let dir = try tempDir()
    func lines(_ range: Range<Int>) -> [String] { range.map { "line \($0) \(String(repeating: "z", count: 60))" } }
    // About 2.3 MB each: 3 chunks of the read-ahead per file.
    let files = [lines(0..<30000), lines(30000..<60000), lines(60000..<90000)]
    func text(_ lines: [String]) -> [UInt8] { Array(lines.map { $0 + "\n" }.joined().utf8) }
    for (i, name) in ["app.log.3.gz", "app.log.2.gz", "app.log.1.gz"].enumerated() {
      try Data(GzipDeflater.compress(text(files[i]))).write(to: URL(fileURLWithPath: dir + "/" + name))
    }
    let delegate = RecordingDelegate()
    let tailer = SourceTailer(
      patterns: [dir + "/app.log*"], maxLineBytes: 1 << 20, live: false, delegate: delegate, scanner: CopyScanner())
    while try tailer.poll(budget: 1000, now: 0) > 0 {}
    #expect(delegate.lines == files.joined().map { $0 })
    #expect(delegate.scannedAhead > 80000)
    #expect(delegate.scannedWrong == 0)
    let taken = try #require(tailer.readAheadPool).taken
    #expect(taken.buffers >= 2, "the later files' read-ahead made new buffers")
    #expect(taken.lines >= 2, "the later files' read-ahead made new scanned-line batches")
    let live = SourceTailer(patterns: [dir + "/app.log*"], maxLineBytes: 1 << 20, live: true, delegate: delegate)
    #expect(live.readAheadPool == nil)
  }

  /// A replay lets go of a file it finished (its descriptor, and with it the read-ahead
  /// buffers) while it reads on in the next: the listing it reuses keeps no reader.
  @Test func replayClosesAFinishedFileWhileReadingTheNext() throws {
    let (log, delegate, tailer) = try Self.replayOfTwoFiles(newer: 1000)
    for _ in 0..<15 { _ = try tailer.poll(budget: 100, now: 0) }
    #expect(delegate.lines.count == 1500)
    let rotated = log.dir + "/app.log.1"
    let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    let stillOpen = descriptors.filter {
      (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0)) == rotated
    }
    #expect(stillOpen.isEmpty, "\(rotated) is still open after it was read to its end")
    while try tailer.poll(budget: 100, now: 0) > 0 {}
    #expect(delegate.lines.count == 2000)
  }

  @Test func fileDeletedWhileOpenIsReadToItsEnd() throws {
    var log = try RotatingLog()
    let delegate = RecordingDelegate()
    let tailer = SourceTailer(
      patterns: [log.dir + "/app.log*"], maxLineBytes: 1 << 20, live: true, rotateWait: 0, delegate: delegate)
    log.write(10)
    _ = try tailer.poll(budget: 5, now: 1)
    log.write(10)
    try FileManager.default.removeItem(atPath: log.path)
    while try tailer.poll(budget: 100, now: 2) > 0 {}
    #expect(delegate.lines.count == 20)
  }

  @Test func rotatedFileIsFinishedOnlyAfterItSettles() throws {
    var log = try RotatingLog()
    let delegate = RecordingDelegate()
    let tailer = SourceTailer(
      patterns: [log.dir + "/app.log*"], maxLineBytes: 1 << 20, live: true, rotateWait: 100, delegate: delegate)
    log.write(3)
    _ = try tailer.poll(budget: 100, now: 0)
    try FileManager.default.moveItem(atPath: log.path, toPath: log.dir + "/app.log.1")
    // The writer has not reopened yet: it still appends to the renamed file.
    log.live.seekToEndOfFile()
    log.live.write(Data("late line\n".utf8))
    _ = try tailer.poll(budget: 100, now: 50)
    #expect(delegate.positions.values.allSatisfy { !$0.finished })
    _ = try tailer.poll(budget: 100, now: 200)
    #expect(delegate.lines.last == "late line")
    #expect(delegate.positions.values.contains { $0.finished })
  }
}

@Suite struct DirectoryWatcherTests {
  @Test func wakesOnAWriteInAWatchedDirectory() throws {
    let dir = try tempDir()
    let watcher = DirectoryWatcher(patterns: [dir + "/app.log*"])
    #expect(watcher.watched == [dir])
    #expect(!watcher.wait(timeoutMilliseconds: 50))
    try Data("x\n".utf8).write(to: URL(fileURLWithPath: dir + "/app.log"))
    #expect(watcher.wait(timeoutMilliseconds: 2000))
    #expect(!watcher.wait(timeoutMilliseconds: 50))
  }

  /// A file's growth is not a name change; a file created, renamed or deleted is. A watcher
  /// that cannot see every directory by name always says names may have changed.
  @Test func tellsNameChangesFromWrites() throws {
    let dir = try tempDir()
    try Data("x\n".utf8).write(to: URL(fileURLWithPath: dir + "/app.log"))
    let watcher = DirectoryWatcher(patterns: [dir + "/app.log*"])
    #expect(watcher.takeNamesChanged(), "at first")
    #expect(!watcher.takeNamesChanged())
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/app.log"))
    handle.seekToEndOfFile()
    handle.write(Data("y\n".utf8))
    #expect(watcher.wait(timeoutMilliseconds: 2000))
    #expect(!watcher.takeNamesChanged(), "a write")
    try FileManager.default.moveItem(atPath: dir + "/app.log", toPath: dir + "/app.log.1")
    #expect(watcher.wait(timeoutMilliseconds: 2000))
    #expect(watcher.takeNamesChanged(), "a rename")
    #expect(!watcher.takeNamesChanged())
    _ = FileManager.default.createFile(atPath: dir + "/app.log", contents: nil)
    #expect(watcher.wait(timeoutMilliseconds: 2000))
    #expect(watcher.takeNamesChanged(), "a new file")
    try FileManager.default.removeItem(atPath: dir + "/app.log.1")
    #expect(watcher.wait(timeoutMilliseconds: 2000))
    #expect(watcher.takeNamesChanged(), "a deletion")
    try handle.close()

    let missing = DirectoryWatcher(patterns: [dir + "/app.log*", "/nonexistent-\(UUID().uuidString)/app.log*"])
    #expect(missing.takeNamesChanged() && missing.takeNamesChanged())
    let globbed = DirectoryWatcher(patterns: [dir.dropLast() + "*/app.log*"])
    #expect(globbed.takeNamesChanged() && globbed.takeNamesChanged())
  }

  @Test func missingDirectoriesAreNotWatchedButWaitingStillWorks() {
    let watcher = DirectoryWatcher(patterns: ["/nonexistent-\(UUID().uuidString)/app.log*"])
    #expect(watcher.watched.isEmpty)
    let start = Date()
    #expect(!watcher.wait(timeoutMilliseconds: 100))
    #expect(Date().timeIntervalSince(start) >= 0.09)
  }
}

@Suite struct SymlinkTests {
  /// The live file is a symlink that is re-pointed at a new file on rotation.
  @Test func symlinkedLiveFileFollowsItsTarget() throws {
    let dir = try tempDir()
    try Data("a1\na2\n".utf8).write(to: URL(fileURLWithPath: dir + "/app-1.data"))
    try FileManager.default.createSymbolicLink(atPath: dir + "/current.log", withDestinationPath: dir + "/app-1.data")
    let delegate = RecordingDelegate()
    let tailer = SourceTailer(
      patterns: [dir + "/current.log"], maxLineBytes: 1 << 20, live: true, rotateWait: 0, delegate: delegate)
    _ = try tailer.poll(budget: 100, now: 1)
    // More lines, then rotation: a new target, and the link re-pointed.
    let old = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/app-1.data"))
    old.seekToEndOfFile()
    old.write(Data("a3\n".utf8))
    try old.close()
    try Data("b1\n".utf8).write(to: URL(fileURLWithPath: dir + "/app-2.data"))
    try FileManager.default.removeItem(atPath: dir + "/current.log")
    try FileManager.default.createSymbolicLink(atPath: dir + "/current.log", withDestinationPath: dir + "/app-2.data")
    while try tailer.poll(budget: 100, now: 2) > 0 {}
    #expect(delegate.lines == ["a1", "a2", "a3", "b1"])
  }
}
