import Foundation
import GRDB
import Labeling
import LogFormats
import Testing

@testable import FeedbackDaemon

final class Recorder: EngineOutput {
  var log: [String] = []
  func write(_ row: LabeledRow) {
    log.append(
      "row \(row.dataset) \(row.key) \(row.predictedAt) \(row.columns.jsonText) \(row.labels.map { "\($0.value.jsonText)@\($0.at ?? -1)" })"
    )
  }
  func side(_ record: SideRecord) { log.append("side \(record)") }
}

/// A small deterministic generator (SplitMix64), so failures reproduce.
struct SplitMix {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

func path(_ s: String) -> FieldPath { try! FieldPath(parsing: s) }

let second: Int64 = 1_000_000_000

let rules = Rules(
  prediction: EventRule(matches: [FieldMatch(path: path("e"), value: .string("p"))], key: path("k")),
  feedbackTypes: [
    FeedbackType(
      name: "click", rule: EventRule(matches: [FieldMatch(path: path("e"), value: .string("c"))], key: path("k"))),
    FeedbackType(
      name: "buy", rule: EventRule(matches: [FieldMatch(path: path("e"), value: .string("b"))], key: path("k")),
      dedupeBy: path("o")),
  ],
  labels: [
    LabelSpec(name: "clicked", feedbackType: 0, window: 60 * second),
    LabelSpec(name: "clicks", feedbackType: 0, window: 60 * second, value: .count),
    LabelSpec(name: "spent", feedbackType: 1, window: 300 * second, value: .sum(path("v"))),
    LabelSpec(name: "firstOrder", feedbackType: 1, window: 300 * second, value: .first(path("o"))),
  ],
  datasets: [
    DatasetSpec(name: "a", labels: [0, 1], columns: [ColumnSpec(path: path("s"), name: "s")]),
    DatasetSpec(name: "b", labels: [2, 3], columns: nil),
  ],
  clockSkew: 2 * second, maxOutOfOrder: 3 * second)

/// Random events with out-of-order times, repeated keys, duplicate lines and late arrivals.
func randomEvents(seed: UInt64, count: Int) -> [(Event, UInt64)] {
  var rng = SplitMix(state: seed)
  var events: [(Event, UInt64)] = []
  var clock: Int64 = 1_796_029_200 * second
  for i in 0..<count {
    clock += Int64(rng.below(4)) * second / 2
    // Usually within max_out_of_order; now and then far behind it (late events).
    let jitter = rng.below(40) == 0 ? -90 * second : Int64(rng.below(10)) * second - 5 * second
    let key = "k\(rng.below(count / 10 + 1))"
    let kind = ["p", "p", "c", "c", "c", "b", "x"][rng.below(7)]
    let text =
      "{\"e\":\"\(kind)\",\"k\":\"\(key)\",\"s\":\(rng.below(100)),\"o\":\"o\(rng.below(3))\",\"v\":\(rng.below(50))}"
    let hash = rng.below(10) == 0 && i > 0 ? events[i - 1].1 : rng.next()
    events.append((Event(time: clock + jitter, object: try! JSONValue.parse(text)), hash))
  }
  return events
}

@Suite struct SQLiteStateStoreTests {
  /// The SQLite store must make exactly the decisions of the obviously-correct in-memory one.
  @Test(arguments: [1, 2, 3, 4] as [UInt64])
  func engineOnSQLiteMatchesEngineInMemory(seed: UInt64) throws {
    let events = randomEvents(seed: seed, count: 3000)
    let memoryOutput = Recorder()
    let memory = try LabelEngine(rules: rules, store: InMemoryStateStore(), output: memoryOutput, sources: 1)
    for (event, hash) in events { try memory.process(event, source: 0, lineHash: hash) }
    try memory.flush()

    let queue = try DatabaseQueue()
    let sqliteOutput = Recorder()
    try queue.inDatabase { db in
      try SQLiteStateStore.migrate(db)
      try db.beginTransaction()
      let store = SQLiteStateStore(db: db)
      let engine = try LabelEngine(rules: rules, store: store, output: sqliteOutput, sources: 1)
      for (event, hash) in events { try engine.process(event, source: 0, lineHash: hash) }
      try engine.flush()
      #expect(try store.pendingPredictionCount() == 0)
      #expect(engine.counters == memory.counters)
      try db.commit()
    }
    #expect(memoryOutput.log.count > 500)
    #expect(memoryOutput.log == sqliteOutput.log)
    #expect(memory.counters.orphans.reduce(0, +) > 0, "the input should exercise orphans")
    #expect(memory.counters.duplicatePredictions > 0)
  }

  /// State committed halfway and reopened in a new engine continues as if never interrupted.
  @Test func engineResumesFromCommittedState() throws {
    let events = randomEvents(seed: 9, count: 2000)
    let straight = Recorder()
    let engine = try LabelEngine(rules: rules, store: InMemoryStateStore(), output: straight, sources: 1)
    for (event, hash) in events { try engine.process(event, source: 0, lineHash: hash) }

    let file = FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID().uuidString).sqlite").path
    let resumed = Recorder()
    var saved: (Int64, Int64, [Int64?]) = (0, 0, [])
    try DatabaseQueue(path: file).inDatabase { db in
      try SQLiteStateStore.migrate(db)
      try db.beginTransaction()
      let first = try LabelEngine(rules: rules, store: SQLiteStateStore(db: db), output: resumed, sources: 1)
      for (event, hash) in events.prefix(1000) { try first.process(event, source: 0, lineHash: hash) }
      saved = (first.seq, first.watermark, first.sourceMaxTime)
      try db.commit()
    }
    try DatabaseQueue(path: file).inDatabase { db in
      try db.beginTransaction()
      let second = try LabelEngine(rules: rules, store: SQLiteStateStore(db: db), output: resumed, sources: 1)
      second.restore(seq: saved.0, watermark: saved.1, sourceMaxTime: saved.2)
      for (event, hash) in events.dropFirst(1000) { try second.process(event, source: 0, lineHash: hash) }
      try db.commit()
    }
    #expect(straight.log.count > 200)
    #expect(straight.log == resumed.log)
  }
}
