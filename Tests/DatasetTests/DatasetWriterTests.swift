import Dataset
import Foundation
import Gzip
import Labeling
import LogFormats
import TestSupport
import Testing

let hour: Int64 = 3_600_000_000_000
let t0: Int64 = 1_796_029_200_000_000_000  // 2026-11-30T09:00:00Z

func tempDir() throws -> String {
  try Scratch.directory("dataset")
}

func layout(
  _ dir: String, format: OutputFormat = .jsonl, maxBytes: Int = 1 << 30, maxAge: Int64 = 1 << 60
) -> DatasetLayout {
  DatasetLayout(
    name: "ctr", directory: dir, format: format,
    columns: [(name: "score", path: "score"), (name: "category", path: "features.category")],
    labels: [.init(name: "clicked", type: "int64", describe: [])], rollMaxBytes: maxBytes, rollMaxAge: maxAge,
    maxWindow: hour / 2)
}

func row(
  _ key: String, at time: Int64, score: String = "0.5", category: JSONValue = .string("shoes"), clicked: Bool = false
) -> LabeledRow {
  LabeledRow(
    dataset: 0, key: key, predictedAt: time, finalizeAt: time + hour / 2,
    columns: .array([.number(score), category]),
    labels: [LabelOutcome(value: .number(clicked ? "1" : "0"), at: clicked ? time + 1_000_000_000 : nil)])
}

func files(_ dir: String) -> [String] {
  (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String] ?? []).filter {
    !$0.hasSuffix("/")
      && (try? FileManager.default.attributesOfItem(atPath: dir + "/" + $0)[.type] as? FileAttributeType)
        == .typeRegular
  }.sorted()
}

/// How many of the file's pages are in the page cache (`mincore` over a mapping of it, which
/// reads nothing), of how many.
func residentPages(_ path: String) throws -> (resident: Int, total: Int) {
  let fd = open(path, O_RDONLY)
  guard fd >= 0 else { throw CocoaError(.fileNoSuchFile) }
  defer { close(fd) }
  var st = stat()
  guard fstat(fd, &st) == 0, st.st_size > 0 else { return (0, 0) }
  let size = Int(st.st_size)
  let page = Int(sysconf(Int32(_SC_PAGESIZE)))
  guard let map = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), map != MAP_FAILED else {
    throw CocoaError(.fileReadUnknown)
  }
  defer { munmap(map, size) }
  var vector = [UInt8](repeating: 0, count: (size + page - 1) / page)
  guard mincore(map, size, &vector) == 0 else { throw CocoaError(.fileReadUnknown) }
  return (vector.filter { $0 & 1 != 0 }.count, vector.count)
}

func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

@Suite struct DatasetWriterTests {
  @Test func rowsBecomeVisibleOnlyAfterCommitAndRoll() throws {
    let dir = try tempDir()
    let writer = try DatasetWriter(layout: layout(dir), recovering: DatasetCheckpoint())
    try writer.append(row("a", at: t0, clicked: true), ageClock: 0)
    #expect(files(dir) == ["_schema.json", "date=2026-11-30/hour=09/.part-000000.jsonl.inprogress"])
    _ = try writer.prepareCommit()
    try writer.afterCommit()
    #expect(files(dir).contains("date=2026-11-30/hour=09/.part-000000.jsonl.inprogress"))
    try writer.sealAll()
    _ = try writer.prepareCommit()
    try writer.afterCommit()
    #expect(files(dir) == ["_schema.json", "date=2026-11-30/hour=09/part-000000.jsonl"])
    #expect(
      text(dir + "/date=2026-11-30/hour=09/part-000000.jsonl")
        == "{\"key\":\"a\",\"predicted_at\":\"2026-11-30T09:00:00.000Z\",\"score\":0.5,\"category\":\"shoes\",\"clicked\":1,\"clicked_at\":\"2026-11-30T09:00:01.000Z\"}\n"
    )
  }

  /// Rows written between `prepareCommit` and `afterCommit` (a replay's commit whose SQL runs
  /// in the background) are not covered by the commit: a segment they sealed stays hidden, and
  /// its partition gets no `_SUCCESS`, until the next commit covers them.
  @Test func aSegmentSealedAfterTheCommitsCutWaitsForTheNextCommit() throws {
    let dir = try tempDir()
    let writer = try DatasetWriter(layout: layout(dir, maxAge: 60_000_000_000), recovering: DatasetCheckpoint())
    try writer.append(row("a", at: t0), ageClock: 0)
    let checkpoint = try writer.prepareCommit()
    #expect(checkpoint.segments.map(\.sealed) == [false])
    // After the cut: one more row, then the segment rolls by age and the watermark passes the
    // partition's end and window.
    try writer.append(row("b", at: t0 + 1_000_000_000), ageClock: 0)
    try writer.advance(watermark: t0 + 2 * hour, ageClock: 60_000_000_000)
    #expect(try writer.afterCommit() == [])
    #expect(files(dir) == ["_schema.json", "date=2026-11-30/hour=09/.part-000000.jsonl.inprogress"])
    // The next commit covers both rows: published, and the partition complete.
    _ = try writer.prepareCommit()
    #expect(try writer.afterCommit() == ["date=2026-11-30/hour=09"])
    #expect(
      files(dir) == ["_schema.json", "date=2026-11-30/hour=09/_SUCCESS", "date=2026-11-30/hour=09/part-000000.jsonl"])
    #expect(text(dir + "/date=2026-11-30/hour=09/part-000000.jsonl").split(separator: "\n").count == 2)
  }

  /// Sealing a segment does not wait for the disk (it is synced on a thread of its own), but
  /// the commit that records it as sealed does: with the disk held shut, rows go on being
  /// written, and `prepareCommit` returns only once both sealed segments are synced.
  @Test func sealingDoesNotWaitForTheDiskButTheCommitDoes() throws {
    let dir = try tempDir()
    let gate = Gate()
    let writer = try DatasetWriter(
      layout: layout(dir, maxAge: 60_000_000_000), recovering: DatasetCheckpoint(),
      syncSegment: { fd, path in
        gate.pass()
        try FileSystem.sync(fd, path: path)
      })
    try writer.append(row("a", at: t0), ageClock: 0)
    try writer.append(row("b", at: t0 + hour), ageClock: 0)
    // Seals both segments while the disk is held shut.
    try writer.advance(watermark: t0, ageClock: 60_000_000_000)
    try writer.append(row("c", at: t0 + 1_000_000_000), ageClock: 60_000_000_000)
    #expect(gate.waitUntilEntered(1))
    #expect(writer.sealedSegmentsSynced == 0)
    let opener = Thread {
      usleep(500_000)
      gate.open()
    }
    opener.start()
    let start = Date()
    let checkpoint = try writer.prepareCommit()
    #expect(Date().timeIntervalSince(start) >= 0.1, "the commit did not wait for the disk")
    #expect(writer.sealedSegmentsSynced == 2)
    #expect(writer.commitWaits.count == 1, "the commit's wait for the disk, counted")
    #expect(checkpoint.segments.filter(\.sealed).count == 2)
    #expect(!gate.timedOut, "sealing waited for the disk")
    try writer.afterCommit()
    #expect(files(dir).contains("date=2026-11-30/hour=09/part-000000.jsonl"))
  }

  /// A segment sealed by `roll.max_age` is fsynced when sealed (on the writer's thread in the
  /// daemon), so the commit that publishes it fsyncs only the open segments.
  @Test func sealedSegmentsAreDurableBeforeTheCommit() throws {
    let dir = try tempDir()
    let writer = try DatasetWriter(layout: layout(dir, maxAge: 60_000_000_000), recovering: DatasetCheckpoint())
    try writer.append(row("a", at: t0), ageClock: 0)
    try writer.append(row("b", at: t0 + hour), ageClock: 0)
    try writer.advance(watermark: t0, ageClock: 60_000_000_000)
    try writer.append(row("c", at: t0 + 1_000_000_000), ageClock: 60_000_000_000)
    let checkpoint = try writer.prepareCommit()
    #expect(checkpoint.segments.filter(\.sealed).count == 2)
    #expect(writer.commitSyncs == 1)
    try writer.afterCommit()
    #expect(
      files(dir) == [
        "_schema.json", "date=2026-11-30/hour=09/.part-000002.jsonl.inprogress",
        "date=2026-11-30/hour=09/part-000000.jsonl", "date=2026-11-30/hour=10/part-000001.jsonl",
      ])
  }

  /// A sealed segment, once synced, leaves the page cache (`SegmentSyncer.dropCachedPages`):
  /// nothing reads it soon, and its pages are better used by the next segments. An open one,
  /// synced by the commit and still being written, stays.
  @Test func aSyncedSealedSegmentLeavesThePageCache() throws {
    let dir = try tempDir()
    let writer = try DatasetWriter(layout: layout(dir, maxAge: 60_000_000_000), recovering: DatasetCheckpoint())
    let padding = JSONValue.string(String(repeating: "x", count: 300))
    // About 350 KB in each of two partitions: the first's segment sealed by age, the second's open.
    for i in 0..<1000 { try writer.append(row("a\(i)", at: t0 + Int64(i) * 1_000_000, category: padding), ageClock: 0) }
    try writer.advance(watermark: t0, ageClock: 60_000_000_000)
    for i in 0..<1000 {
      try writer.append(row("b\(i)", at: t0 + hour + Int64(i) * 1_000_000, category: padding), ageClock: 60_000_000_000)
    }
    // Waits for the sealed segment's sync, and syncs the open one.
    let checkpoint = try writer.prepareCommit()
    #expect(checkpoint.segments.map(\.sealed) == [false, true])
    let open = try residentPages(dir + "/date=2026-11-30/hour=10/.part-000001.jsonl.inprogress")
    let sealed = try residentPages(dir + "/date=2026-11-30/hour=09/.part-000000.jsonl.inprogress")
    #expect(open.total > 50 && sealed.total > 50)
    #expect(open.resident == open.total, "the open segment's pages were dropped")
    #expect(sealed.resident == 0, "the sealed segment's pages are still cached: \(sealed)")
  }

  @Test func successMarksPartitionsTheWatermarkHasPassed() throws {
    let dir = try tempDir()
    let writer = try DatasetWriter(layout: layout(dir), recovering: DatasetCheckpoint())
    try writer.append(row("a", at: t0), ageClock: 0)
    try writer.append(row("b", at: t0 + hour), ageClock: 0)
    try writer.advance(watermark: t0 + hour + hour / 2 - 1, ageClock: 0)
    _ = try writer.prepareCommit()
    try writer.afterCommit()
    #expect(!FileManager.default.fileExists(atPath: dir + "/date=2026-11-30/hour=09/_SUCCESS"))
    try writer.advance(watermark: t0 + hour + hour / 2, ageClock: 0)
    _ = try writer.prepareCommit()
    let done = try writer.afterCommit()
    #expect(done == ["date=2026-11-30/hour=09"])
    #expect(FileManager.default.fileExists(atPath: dir + "/date=2026-11-30/hour=09/_SUCCESS"))
    #expect(FileManager.default.fileExists(atPath: dir + "/date=2026-11-30/hour=09/part-000000.jsonl"))
    #expect(!FileManager.default.fileExists(atPath: dir + "/date=2026-11-30/hour=10/_SUCCESS"))
  }

  @Test func segmentsRollBySizeAndAge() throws {
    let dir = try tempDir()
    let writer = try DatasetWriter(layout: layout(dir, maxBytes: 300, maxAge: 100), recovering: DatasetCheckpoint())
    for i in 0..<5 { try writer.append(row("k\(i)", at: t0), ageClock: 0) }
    try writer.advance(watermark: t0, ageClock: 10)
    _ = try writer.prepareCommit()
    try writer.afterCommit()
    let visible = files(dir).filter { $0.contains("/part-") }
    // About 115 bytes a row: the third row crosses 300 bytes and seals the first segment;
    // rows 4 and 5 start the second, which is too young to roll by age.
    #expect(visible == ["date=2026-11-30/hour=09/part-000000.jsonl"])
    #expect(text(dir + "/" + visible[0]).split(separator: "\n").count == 3)
    try writer.append(row("late", at: t0), ageClock: 50)
    try writer.advance(watermark: t0, ageClock: 200)
    _ = try writer.prepareCommit()
    try writer.afterCommit()
    #expect(files(dir).filter { $0.contains(".inprogress") }.isEmpty)
    #expect(files(dir).filter { $0.contains("/part-") }.count == 2)
    let all = files(dir).filter { $0.contains("/part-") }.map { text(dir + "/" + $0) }.joined()
    #expect(all.split(separator: "\n").count == 6)
  }

  @Test func recoveryCutsUncommittedBytesAndFiles() throws {
    let dir = try tempDir()
    var checkpoint: DatasetCheckpoint
    do {
      let writer = try DatasetWriter(layout: layout(dir), recovering: DatasetCheckpoint())
      try writer.append(row("a", at: t0), ageClock: 0)
      checkpoint = try writer.prepareCommit()
      try writer.afterCommit()
      // Written after the commit, then the process dies.
      try writer.append(row("b", at: t0), ageClock: 0)
      try writer.append(row("c", at: t0 + 5 * hour), ageClock: 0)
      _ = try writer.prepareCommit()
    }
    let writer = try DatasetWriter(layout: layout(dir), recovering: checkpoint)
    #expect(files(dir).count == 2)
    try writer.append(row("b", at: t0), ageClock: 0)
    try writer.sealAll()
    _ = try writer.prepareCommit()
    try writer.afterCommit()
    let content = text(dir + "/date=2026-11-30/hour=09/part-000000.jsonl")
    #expect(
      content.split(separator: "\n").map { $0.contains("\"key\":\"a\"") || $0.contains("\"key\":\"b\"") } == [
        true, true,
      ])
    #expect(files(dir).count == 2)
  }

  @Test func sealedButUnrenamedSegmentIsPublishedOnRecovery() throws {
    let dir = try tempDir()
    let checkpoint: DatasetCheckpoint
    do {
      let writer = try DatasetWriter(layout: layout(dir), recovering: DatasetCheckpoint())
      try writer.append(row("a", at: t0), ageClock: 0)
      try writer.sealAll()
      checkpoint = try writer.prepareCommit()
      // crash between the commit and the rename
    }
    _ = try DatasetWriter(layout: layout(dir), recovering: checkpoint)
    #expect(files(dir) == ["_schema.json", "date=2026-11-30/hour=09/part-000000.jsonl"])
  }

  @Test func gzipSegmentsAreMultiMemberAndReadWhole() throws {
    let dir = try tempDir()
    let writer = try DatasetWriter(layout: layout(dir, format: .jsonlGz), recovering: DatasetCheckpoint())
    for i in 0..<3 {
      try writer.append(row("k\(i)", at: t0), ageClock: 0)
      _ = try writer.prepareCommit()
      try writer.afterCommit()
    }
    try writer.sealAll()
    _ = try writer.prepareCommit()
    try writer.afterCommit()
    let bytes = [UInt8](
      try Data(contentsOf: URL(fileURLWithPath: dir + "/date=2026-11-30/hour=09/part-000000.jsonl.gz")))
    let plain = String(decoding: try GzipInflater.decompress(bytes), as: UTF8.self)
    #expect(plain.split(separator: "\n").count == 3)
  }

  @Test func csvQuotesAndNests() throws {
    let dir = try tempDir()
    let writer = try DatasetWriter(layout: layout(dir, format: .csv), recovering: DatasetCheckpoint())
    try writer.append(row("a,\"b\"", at: t0, category: .object([.init(key: "x", value: .number("1"))])), ageClock: 0)
    try writer.sealAll()
    _ = try writer.prepareCommit()
    try writer.afterCommit()
    #expect(
      text(dir + "/date=2026-11-30/hour=09/part-000000.csv")
        == "key,predicted_at,score,category,clicked,clicked_at\n\"a,\"\"b\"\"\",2026-11-30T09:00:00.000Z,0.5,\"{\"\"x\"\":1}\",0,\n"
    )
  }

  @Test func schemaDescribesColumnsAndIsRewrittenOnlyOnChange() throws {
    let dir = try tempDir()
    _ = try DatasetWriter(layout: layout(dir), recovering: DatasetCheckpoint())
    let schema = try JSONValue.parse(text(dir + "/_schema.json"))
    guard case .array(let columns)? = schema["columns"] else {
      Issue.record("no columns")
      return
    }
    #expect(
      columns.compactMap { $0["name"]?.keyText } == [
        "key", "predicted_at", "score", "category", "clicked", "clicked_at",
      ])
    let before = try FileManager.default.attributesOfItem(atPath: dir + "/_schema.json")[.modificationDate] as? Date
    Thread.sleep(forTimeInterval: 0.02)
    _ = try DatasetWriter(layout: layout(dir), recovering: DatasetCheckpoint())
    let after = try FileManager.default.attributesOfItem(atPath: dir + "/_schema.json")[.modificationDate] as? Date
    #expect(before == after)
  }

  @Test func partitionNamesComeFromUTCTime() {
    #expect(DatasetLayout.partition(of: t0 + 59 * 60_000_000_000).name == "date=2026-11-30/hour=09")
    #expect(DatasetLayout.partition(of: t0 + 15 * hour).name == "date=2026-12-01/hour=00")
    #expect(DatasetLayout.partition(of: -1).name == "date=1969-12-31/hour=23")
  }
}

/// The writer on its own thread must write exactly what the writer in line writes.
@Suite struct BackgroundWriterTests {
  @Test(arguments: OutputFormat.allCases)
  func writesWhatTheInlineWriterWrites(format: OutputFormat) throws {
    let direct = try tempDir()
    let threaded = try tempDir()
    let inline = try DatasetWriter(layout: layout(direct, format: format, maxBytes: 20_000), recovering: .init())
    let background = BackgroundWriter(
      try DatasetWriter(layout: layout(threaded, format: format, maxBytes: 20_000), recovering: .init()))
    defer { background.stop() }
    var checkpoints: [(DatasetCheckpoint, DatasetCheckpoint)] = []
    var rng = SystemRandomNumberGenerator()
    var time = t0
    for i in 0..<5000 {
      time += Int64.random(in: 0...(hour / 200), using: &rng)
      // Now and then a row larger than a whole batch, and keys and values that need escaping.
      let category: JSONValue =
        i % 1000 == 500 ? .string(String(repeating: "big \"row\", ", count: 20_000)) : .string("cat\n\(i % 5)é")
      let r = row(
        i % 3 == 0 ? "k\(i)" : "k\"\(i)\\,\u{1}", at: time, score: "0.\(i % 97)", category: category,
        clicked: i % 7 == 0)
      try inline.append(r, ageClock: time)
      background.append(r, ageClock: time)
      if i % 300 == 0 {
        try inline.advance(watermark: time - hour / 2, ageClock: time)
        background.advance(watermark: time - hour / 2, ageClock: time)
      }
      if i % 1000 == 999 {
        let a = try inline.prepareCommit()
        let b = try background.sync { try $0.prepareCommit() }
        checkpoints.append((a, b))
        try inline.afterCommit()
        if i % 2000 == 999 {
          _ = try background.sync { try $0.afterCommit() }
        } else {
          // Published on the thread, in order with the rows: once synced, the same files.
          background.publishAfterCommit()
          background.append(r, ageClock: time)
          try inline.append(r, ageClock: time)
          try background.sync { _ in }
          #expect(files(direct) == files(threaded), "after publishing in the background (row \(i))")
        }
      }
    }
    try inline.sealAll()
    try background.sync { try $0.sealAll() }
    checkpoints.append((try inline.prepareCommit(), try background.sync { try $0.prepareCommit() }))
    try inline.afterCommit()
    _ = try background.sync { try $0.afterCommit() }
    for (a, b) in checkpoints { #expect(a == b) }
    #expect(files(direct) == files(threaded))
    #expect(files(direct).count > 5, "the rows should span several segments and partitions")
    for name in files(direct) {
      let same =
        FileManager.default.contents(atPath: direct + "/" + name)
        == FileManager.default.contents(atPath: threaded + "/" + name)
      #expect(same, "\(name) differs")
    }
  }

  /// A commit's cut asked of the thread (`requestCommit`: a replay's background commit) is
  /// where the rows handed over before it end, whatever is appended after; the engine's
  /// thread does not wait for it, and gets its state only once the disk holds it (here held
  /// shut: rows go on being written meanwhile). The state is the one the inline writer
  /// records at the same rows, and publishing it shows the same files.
  @Test func aCommitsCutIsMadeOnTheThreadAndGivenOnlyOnceOnDisk() throws {
    let direct = try tempDir()
    let threaded = try tempDir()
    let gate = Gate()
    let inline = try DatasetWriter(layout: layout(direct, maxAge: 60_000_000_000), recovering: .init())
    let background = BackgroundWriter(
      try DatasetWriter(
        layout: layout(threaded, maxAge: 60_000_000_000), recovering: .init(),
        syncSegment: { fd, path in
          gate.pass()
          try FileSystem.sync(fd, path: path)
        }))
    defer { background.stop() }
    let first = [row("a", at: t0), row("b", at: t0 + hour), row("c", at: t0 + 2_000_000_000)]
    for r in first {
      try inline.append(r, ageClock: 0)
      background.append(r, ageClock: 0)
    }
    let expected = try inline.prepareCommit()
    background.requestCommit()
    // After the cut: more rows into the same segments, and one seals by age.
    let after = [row("d", at: t0 + 3_000_000_000), row("e", at: t0 + hour + 1)]
    for r in after { background.append(r, ageClock: 0) }
    background.advance(watermark: t0, ageClock: 120_000_000_000)
    try background.sync { _ in }
    #expect(gate.waitUntilEntered(1), "the cut's segments were not handed to the disk")
    #expect(try background.preparedCommit(wait: false) == nil, "given before the disk held it")
    gate.open()
    let cut = try background.preparedCommit(wait: true)
    #expect(cut == expected, "the cut is not where the rows handed over before it end")
    #expect(!gate.timedOut, "the writer's thread waited for the disk")
    // Published in order with the rows, as the inline writer publishes its commit.
    try inline.afterCommit()
    background.publishAfterCommit()
    for r in after { try inline.append(r, ageClock: 0) }
    try inline.advance(watermark: t0, ageClock: 120_000_000_000)
    try background.sync { _ in }
    #expect(files(direct) == files(threaded))
    #expect(try inline.prepareCommit() == (try background.sync { try $0.prepareCommit() }))
    for name in files(direct) {
      #expect(
        FileManager.default.contents(atPath: direct + "/" + name)
          == FileManager.default.contents(atPath: threaded + "/" + name), "\(name) differs")
    }
  }

  /// Publishing in the background that fails (a sealed segment is gone) is thrown by the
  /// next `sync`, and what it published before the failure is visible.
  @Test func aFailedBackgroundPublishIsThrownAtTheNextSync() throws {
    let dir = try tempDir()
    let background = BackgroundWriter(try DatasetWriter(layout: layout(dir), recovering: .init()))
    defer { background.stop() }
    background.append(row("a", at: t0), ageClock: 0)
    try background.sync { try $0.sealAll() }
    _ = try background.sync { try $0.prepareCommit() }
    background.publishAfterCommit()
    try background.sync { _ in }
    #expect(files(dir) == ["_schema.json", "date=2026-11-30/hour=09/part-000000.jsonl"])
    background.append(row("b", at: t0 + hour), ageClock: 0)
    try background.sync { try $0.sealAll() }
    _ = try background.sync { try $0.prepareCommit() }
    try FileManager.default.removeItem(atPath: dir + "/date=2026-11-30/hour=10/.part-000001.jsonl.inprogress")
    background.publishAfterCommit()
    #expect(throws: (any Error).self) { try background.sync { _ in } }
  }

  /// A write that fails on the thread is thrown by the next `sync`: nothing after it commits.
  @Test func aFailedWriteIsThrownAtTheNextSync() throws {
    let dir = try tempDir()
    let background = BackgroundWriter(try DatasetWriter(layout: layout(dir), recovering: .init()))
    defer { background.stop() }
    background.append(row("a", at: t0), ageClock: 0)
    _ = try background.sync { try $0.prepareCommit() }
    // The next partition's directory cannot be made: a file stands where it would go.
    try FileManager.default.removeItem(atPath: dir + "/date=2026-11-30")
    try Data().write(to: URL(fileURLWithPath: dir + "/date=2026-11-30"))
    background.append(row("b", at: t0 + hour), ageClock: 0)
    #expect(throws: (any Error).self) { _ = try background.sync { try $0.prepareCommit() } }
  }
}

/// Holds every caller of `pass` until `open` (or 5 s, then `timedOut`).
final class Gate: @unchecked Sendable {
  private let condition = NSCondition()
  private var isOpen = false
  private var entered = 0
  private(set) var timedOut = false

  func pass() {
    condition.lock()
    defer { condition.unlock() }
    entered += 1
    condition.broadcast()
    let deadline = Date().addingTimeInterval(5)
    while !isOpen {
      if !condition.wait(until: deadline) {
        timedOut = true
        isOpen = true
      }
    }
  }

  func open() {
    condition.lock()
    isOpen = true
    condition.broadcast()
    condition.unlock()
  }

  /// Whether `count` callers reached `pass` within 5 s.
  func waitUntilEntered(_ count: Int) -> Bool {
    condition.lock()
    defer { condition.unlock() }
    let deadline = Date().addingTimeInterval(5)
    while entered < count {
      if !condition.wait(until: deadline) { return entered >= count }
    }
    return true
  }
}
