import Foundation
import GRDB
import Labeling
import LogFormats
import TestSupport
import Testing

@testable import FeedbackDaemon

/// The first place two decision logs differ, or nil: keeps failure messages short.
func firstDifference(_ a: [String], _ b: [String]) -> String? {
  for i in 0..<max(a.count, b.count) where i >= a.count || i >= b.count || a[i] != b[i] {
    return "entry \(i): \(i < a.count ? a[i] : "<end>") vs \(i < b.count ? b[i] : "<end>")"
  }
  return nil
}

final class Recorder: EngineOutput {
  var log: [String] = []
  func write(parts: RowParts) {
    let row = parts.labeledRow
    log.append(
      "row \(row.dataset) \(row.key) \(row.predictedAt) \(row.columns.jsonText) \(row.labels.map { "\($0.value.jsonText)@\($0.at ?? -1)" })"
    )
  }
  func side(_ record: SideRecord) { log.append("side \(record)") }
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

/// The rows and side records of one engine over the reference store, flushed at the end.
func referenceRun(_ events: [(Event, UInt64)], rules ruleSet: Rules = rules) throws -> Recorder {
  let output = Recorder()
  let engine = try LabelEngine(rules: ruleSet, store: InMemoryStateStore(), output: output, sources: 1)
  for (event, hash) in events { try engine.process(event, source: 0, lineHash: hash) }
  try engine.flush()
  return output
}

/// A migrated state file in the temporary directory (what survives a restart).
func stateFile() throws -> DatabaseQueue {
  let path = Scratch.path("state", suffix: ".sqlite")
  let queue = try DatabaseQueue(path: path)
  try queue.inDatabase { try SQLiteStateStore.migrate($0) }
  return queue
}

/// What a daemon's commit does to the join state: the journal and expired finished keys go to
/// SQLite and are committed, then the state is evicted.
func commitState(
  _ memory: MemoryStateStore, to sqlite: SQLiteStateStore, in db: Database, watermark: Int64,
  keepingDueBefore soon: Int64 = .min
) throws {
  memory.pruneFinished(expiredBy: watermark)
  try sqlite.apply(memory.takeJournal(), pruneFinishedBy: watermark)
  try expectKeyIndexMatchesPredictions(db)
  try db.commit()
  try db.beginTransaction()
  try memory.evict(keepingDueBefore: soon)
}

/// The predictions' key index holds exactly one entry per stored prediction, its key's hash:
/// a checkpoint that deleted a prediction under a wrong hash (`DeletedPrediction`) would leave
/// an entry behind, which no lookup notices (it joins on the seq).
func expectKeyIndexMatchesPredictions(_ db: Database, sourceLocation: SourceLocation = #_sourceLocation) throws {
  let predictions = try Row.fetchAll(db, sql: "SELECT seq, key FROM predictions").map {
    [$0[0] as Int64, SQLiteStateStore.keyHash($0[1] as String)]
  }
  let keys = try Row.fetchAll(db, sql: "SELECT seq, hash FROM prediction_keys").map {
    [$0[0] as Int64, $0[1] as Int64]
  }
  #expect(keys.count == predictions.count, sourceLocation: sourceLocation)
  #expect(Set(keys) == Set(predictions), sourceLocation: sourceLocation)
}

/// Random events with out-of-order times, repeated keys, duplicate lines and late arrivals.
func randomEvents(seed: UInt64, count: Int) -> [(Event, UInt64)] {
  var rng = SplitMix64(seed: seed)
  var events: [(Event, UInt64)] = []
  var clock: Int64 = 1_796_029_200 * second
  for i in 0..<count {
    clock += Int64(rng.below(4)) * second / 2
    // Usually within max_out_of_order; now and then far behind it (late events).
    let jitter = rng.below(40) == 0 ? -90 * second : Int64(rng.below(10)) * second - 5 * second
    let n = rng.below(count / 10 + 1)
    // Some keys are longer than `JoinKey` holds inline.
    let key = n % 5 == 0 ? "k\(n)-" + String(repeating: "L", count: JoinKey.inlineCapacity) : "k\(n)"
    let kind = ["p", "p", "c", "c", "c", "b", "x"][rng.below(7)]
    let text =
      "{\"e\":\"\(kind)\",\"k\":\"\(key)\",\"s\":\(rng.below(100)),\"o\":\"o\(rng.below(3))\",\"v\":\(rng.below(50))}"
    let hash = rng.below(10) == 0 && i > 0 ? events[i - 1].1 : rng.next()
    events.append((Event(time: clock + jitter, object: try! JSONValue.parse(text)), hash))
  }
  return events
}

/// `rules` with a third dataset whose rows are due with dataset a's: a prediction's rows in
/// a and c share their `finalizeAt` and `seq`, and only the dataset orders them.
let sharedWindowRules = Rules(
  prediction: rules.prediction, feedbackTypes: rules.feedbackTypes, labels: rules.labels,
  datasets: rules.datasets + [DatasetSpec(name: "c", labels: [0], columns: nil)],
  clockSkew: 2 * second, maxOutOfOrder: 3 * second)

/// `count` predictions logged with one timestamp (a third of them clicked a second later),
/// then one prediction far enough later that all their windows close before the flush.
func predictionsAtOneTime(count: Int) -> [(Event, UInt64)] {
  let time: Int64 = 1_796_029_200 * second
  var events: [(Event, UInt64)] = []
  for i in 0..<count {
    let text = "{\"e\":\"p\",\"k\":\"k\(i)\",\"s\":\(i % 100)}"
    events.append((Event(time: time, object: try! JSONValue.parse(text)), UInt64(events.count + 1)))
  }
  for i in stride(from: 0, to: count, by: 3) {
    let text = "{\"e\":\"c\",\"k\":\"k\(i)\"}"
    events.append((Event(time: time + second, object: try! JSONValue.parse(text)), UInt64(events.count + 1)))
  }
  let last = "{\"e\":\"p\",\"k\":\"last\",\"s\":1}"
  events.append((Event(time: time + 1000 * second, object: try! JSONValue.parse(last)), UInt64(events.count + 1)))
  return events
}

@Suite struct StateStoreTests {
  /// The journaled in-memory store must make exactly the decisions of the obviously-correct
  /// reference store.
  @Test(arguments: [1, 2, 3, 4] as [UInt64])
  func memoryStoreMatchesReference(seed: UInt64) throws {
    let events = randomEvents(seed: seed, count: 3000)
    let referenceOutput = Recorder()
    let reference = try LabelEngine(rules: rules, store: InMemoryStateStore(), output: referenceOutput, sources: 1)
    for (event, hash) in events { try reference.process(event, source: 0, lineHash: hash) }
    try reference.flush()

    let output = Recorder()
    let store = MemoryStateStore()
    let engine = try LabelEngine(rules: rules, store: store, output: output, sources: 1)
    for (event, hash) in events { try engine.process(event, source: 0, lineHash: hash) }
    try engine.flush()
    #expect(store.pendingPredictionCount() == 0)
    #expect(engine.counters == reference.counters)
    #expect(referenceOutput.log.count > 500)
    #expect(firstDifference(referenceOutput.log, output.log) == nil)
    #expect(reference.counters.orphans.reduce(0, +) > 0, "the input should exercise orphans")
    #expect(reference.counters.duplicatePredictions > 0)
  }

  /// One engine over SQLite with a tiny memory budget: predictions, feedback, due rows and
  /// finished keys are evicted at every checkpoint and read back when needed, and every
  /// decision stays the reference store's.
  /// With a byte budget instead (`maxBytes`), the state stays within it after every
  /// checkpoint's eviction. `deferring`: the checkpoints go into the journal log.
  @Test(
    arguments: [
      (7, 8, .max, 16 << 20, false), (8, 40, .max, 16 << 20, false), (9, 3, .max, 16 << 20, false),
      (10, 1_000_000, 16 << 10, 16 << 20, false), (12, 1_000_000, 24 << 10, 16 << 20, false),
      // A filter of one block: almost every new key is looked up in the cold tier and found empty.
      (13, 8, .max, 64, false),
      // Checkpoints deferred into the log (`JournalLogTests`): every read applies it first.
      (31, 8, .max, 16 << 20, true), (32, 1_000_000, 16 << 10, 16 << 20, true),
    ] as [(UInt64, Int, Int, Int, Bool)])
  func evictingToSQLiteChangesNoDecision(
    seed: UInt64, maxInMemory: Int, maxBytes: Int, filterBytes: Int, deferring: Bool
  ) throws {
    let events = randomEvents(seed: seed, count: 3000)
    let straight = try referenceRun(events)

    let queue = try DatabaseQueue()
    let cached = Recorder()
    var evictions = 0
    var compactions = 0
    var lookups = 0
    var records = 0
    try queue.inDatabase { db in
      try SQLiteStateStore.migrate(db)
      try db.beginTransaction()
      let sqlite = SQLiteStateStore(db: db)
      let memory = try MemoryStateStore(
        cold: sqlite, maxInMemory: maxInMemory, maxBytes: maxBytes, compactAt: 16, coldFilterMaxBytes: filterBytes)
      let engine = try LabelEngine(rules: rules, store: memory, output: cached, sources: 1)
      for (i, (event, hash)) in events.enumerated() {
        try engine.process(event, source: 0, lineHash: hash)
        if i % 97 == 0 {
          memory.pruneFinished(expiredBy: engine.watermark)
          let journal = memory.takeJournal()
          try sqlite.apply(journal, deferring: deferring)
          records += try logRecords(db)
          try expectKeyIndexMatchesPredictions(db)
          try db.commit()
          try db.beginTransaction()
          let before = (memory.pendingPredictionCount(), memory.stateBytes)
          try memory.evict()
          if before.0 > maxInMemory || before.1 > maxBytes { evictions += 1 }
          #expect(memory.stateBytes <= maxBytes, "state \(memory.stateBytes) bytes after evicting, budget \(maxBytes)")
        }
      }
      try engine.flush()
      #expect(memory.pendingPredictionCount() == 0)
      compactions = memory.compactions
      lookups = memory.coldKeyLookups
      try db.commit()
    }
    #expect(evictions > 5, "the budget should force evictions")
    #expect(deferring ? records > 10 : records == 0)
    #expect(compactions > 0, "evicting should leave the entry array to compact")
    if filterBytes <= 64 { #expect(lookups > 1000, "the one-block filter should send most keys to SQLite") }
    #expect(straight.log.count > 500)
    #expect(firstDifference(straight.log, cached.log) == nil)
  }

  /// Many predictions with one timestamp, over a byte budget that evicts nearly all their due
  /// rows to SQLite: the rows come back in batches that all share one `finalizeAt` (and, for
  /// datasets a and c, one `seq` too), so paging must go by (finalizeAt, seq, dataset), not by
  /// time alone. With `settleCheckpoints`, checkpoints (with eviction) also interrupt the
  /// writing of the rows, as the daemon's do. Every row must be written exactly as the
  /// reference writes it: the reference store up to 3000 predictions (it takes quadratic
  /// time), beyond that the all-in-memory store (which `memoryStoreMatchesReference` checks
  /// against it). `dueBatch` nil: the daemon's batch size (4096).
  @Test(
    arguments: [
      (2100, nil, false), (10_000, nil, false), (10_000, nil, true), (300, 7, false), (300, 7, true), (300, 64, true),
    ] as [(Int, Int?, Bool)])
  func dueRowsSharingOneTimeAreAllReadBack(predictions: Int, dueBatch: Int?, settleCheckpoints: Bool) throws {
    let events = predictionsAtOneTime(count: predictions)
    let expected: Recorder
    if predictions <= 3000 {
      expected = try referenceRun(events, rules: sharedWindowRules)
    } else {
      expected = Recorder()
      let engine = try LabelEngine(rules: sharedWindowRules, store: MemoryStateStore(), output: expected, sources: 1)
      for (event, hash) in events { try engine.process(event, source: 0, lineHash: hash) }
      try engine.flush()
    }

    let queue = try DatabaseQueue()
    let cached = Recorder()
    try queue.inDatabase { db in
      try SQLiteStateStore.migrate(db)
      try db.beginTransaction()
      let sqlite = SQLiteStateStore(db: db)
      let memory =
        if let dueBatch {
          try MemoryStateStore(cold: sqlite, maxBytes: 16 << 10, dueBatch: dueBatch)
        } else {
          try MemoryStateStore(cold: sqlite, maxBytes: 16 << 10)
        }
      let engine = try LabelEngine(rules: sharedWindowRules, store: memory, output: cached, sources: 1)
      func checkpoint() throws { try commitState(memory, to: sqlite, in: db, watermark: engine.watermark) }
      if settleCheckpoints {
        engine.checkpointEvery = predictions / 10
        engine.checkpointHook = { try checkpoint() }
      }
      for (i, (event, hash)) in events.enumerated() {
        try engine.process(event, source: 0, lineHash: hash)
        if i % 97 == 0 { try checkpoint() }
      }
      try engine.flush()
      try checkpoint()
      #expect(memory.pendingPredictionCount() == 0)
      #expect(try sqlite.pendingPredictionCount() == 0)
      #expect(memory.evictions > 2, "the budget should force evictions")
      // Rows at the first finalizeAt (datasets a and c): twice the predictions, all read back.
      #expect(memory.dueBatchesRead > 2 * predictions / memory.dueBatch, "the rows should come back in many batches")
      try db.commit()
    }
    #expect(expected.log.count == 3 * predictions + 3)
    #expect(cached.log.count == expected.log.count)
    #expect(firstDifference(expected.log, cached.log) == nil)
  }

  /// Paging through the cold tier's due rows with the last row of each page as the cursor
  /// reads every row once, in order, whatever the page size: rows sharing one `finalizeAt`
  /// (one time, equal offsets) and one `seq` (datasets 0 and 1) included. `earliestDue` after
  /// each cursor is the next row's `finalizeAt`.
  @Test func dueRowsPageByRowNotByTime() throws {
    let queue = try DatabaseQueue()
    try queue.inDatabase { db in
      try SQLiteStateStore.migrate(db)
      let store = SQLiteStateStore(db: db)
      var journal = StateJournal()
      for seq in 1...40 as ClosedRange<Int64> {
        // Most at one time; some pending in only some datasets.
        let time: Int64 = seq % 8 == 0 ? 2000 : 1000
        let pending: UInt64 = seq % 5 == 0 ? 0b101 : seq % 7 == 0 ? 0b010 : 0b111
        journal.predictions.append(
          StoredPrediction(seq: seq, key: "k\(seq)", time: time, payload: [], datasets: 0b111, pending: pending))
      }
      try store.apply(journal)
      let offsets: [Int64] = [100, 100, 500]
      let all = try store.dueRows(after: .beforeAll, through: .max, limit: 1000, offsets: offsets).map(\.row)
      #expect(all.count == 40 * 3 - 8 - 2 * 4)
      #expect(all == all.sorted())
      #expect(Set(all).count == all.count)
      for limit in [1, 2, 3, 7, 16, 41] {
        var paged: [DueRow] = []
        var cursor = DueRow.beforeAll
        while true {
          #expect(try store.earliestDue(after: cursor, offsets: offsets) == all.first { $0 > cursor }?.finalizeAt)
          let page = try store.dueRows(after: cursor, through: .max, limit: limit, offsets: offsets).map(\.row)
          paged += page
          guard page.count == limit else { break }
          cursor = page[page.count - 1]
        }
        #expect(paged == all, "pages of \(limit)")
      }
      // Up to a time: the rows due by it, after the cursor.
      let cursor = all[30]
      #expect(
        try store.dueRows(after: cursor, through: 1100, limit: 1000, offsets: offsets).map(\.row)
          == all.filter { $0 > cursor && $0.finalizeAt <= 1100 })
    }
  }

  /// A checkpoint writes its rows in batches (`SQLiteStateStore.batchRows` a statement) and
  /// the rest one by one: around the batch size, every row is stored with its own values
  /// (a value bound to the wrong row's parameter would show here), and deletes take exactly
  /// the rows named.
  @Test(arguments: [SQLiteStateStore.batchRows - 1, SQLiteStateStore.batchRows, 2 * SQLiteStateStore.batchRows + 3])
  func writesAndDeletesRowsInBatchesAndOneByOne(count: Int) throws {
    let queue = try DatabaseQueue()
    try queue.inDatabase { db in
      try SQLiteStateStore.migrate(db)
      let store = SQLiteStateStore(db: db)
      let n = Int64(count)
      func prediction(_ i: Int64) -> StoredPrediction {
        StoredPrediction(
          seq: i, key: "p\(i)", time: 1000 + 7 * i, payload: i % 3 == 0 ? [] : [UInt8(i & 0xff), 1, 2],
          datasets: UInt64(i % 4 + 1), pending: UInt64(i % 2 + 1))
      }
      func feedback(_ i: Int64) -> StoredFeedback {
        StoredFeedback(
          seq: n + i, key: "f\(i)", type: Int(i % 2), time: 5000 + i, lineHash: UInt64(i) &* 0x9E37_79B9,
          dedupe: i % 2 == 0 ? "\"o\(i)\"" : nil, fields: [UInt8(i & 0xff)])
      }
      func finished(_ i: Int64) -> FinishedKey { FinishedKey(key: "d\(i)", time: 9000 + i, expiresAt: 20_000 + 3 * i) }
      var journal = StateJournal()
      // Out of seq order: the store sorts them.
      journal.predictions = (1...n).reversed().map(prediction)
      journal.feedback = (1...n).map(feedback)
      journal.finished = (1...n).map(finished)
      try store.apply(journal)
      for i in 1...n {
        #expect(try store.prediction(key: "p\(i)") == prediction(i))
        #expect(try store.prediction(seq: i) == prediction(i))
        #expect(try store.feedback(key: "f\(i)") == [feedback(i)])
        let f = try store.finished(key: "d\(i)")
        #expect(f?.time == 9000 + i && f?.expiresAt == 20_000 + 3 * i)
      }
      #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM prediction_keys") == count)
      #expect(
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM feedback WHERE key_hash = 0") == 0,
        "every feedback row has its key's hash")

      // Every odd prediction goes (by seq, with its key's index entry), every feedback row
      // but the first, and the finished keys after the first two.
      var deletes = StateJournal()
      let odd = stride(from: 1, through: n, by: 2).map { $0 }
      deletes.deletedPredictions = odd.map { DeletedPrediction(seq: $0, keyHash: SQLiteStateStore.keyHash("p\($0)")) }
      deletes.deletedFeedback = (2...n).map { n + $0 }
      deletes.deletedFinished = (3...n).map { "d\($0)" }
      try store.apply(deletes)
      for i in 1...n {
        #expect(try store.prediction(key: "p\(i)") == (i % 2 == 1 ? nil : prediction(i)))
        #expect(try store.feedback(key: "f\(i)") == (i == 1 ? [feedback(i)] : []))
        #expect((try store.finished(key: "d\(i)") != nil) == (i <= 2))
      }
      #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM prediction_keys") == count - odd.count)
      #expect(try store.pendingPredictionCount() == count - odd.count)
    }
  }

  /// A journal's keys (`JoinKey`s) are written as the text of their `String`s
  /// (`description`): an ASCII key from its own bytes, any other through its `String`, which
  /// repairs invalid UTF-8. So every key is found again by its text and its hash, as when the
  /// journal held `String`s (binding a key's raw bytes would lose the one with invalid UTF-8),
  /// and deleted again by the hash the engine names it with.
  @Test func journalKeysAreWrittenAsTheirText() throws {
    let queue = try DatabaseQueue()
    try queue.inDatabase { db in
      try SQLiteStateStore.migrate(db)
      let store = SQLiteStateStore(db: db)
      let invalid: [UInt8] = [0x72, 0x2D, 0xFF, 0xFE, 0x41]
      let keys = [
        JoinKey("r-3c1b3b92f91ad839"), JoinKey("r-é-ü"), invalid.withUnsafeBytes { JoinKey($0) },
        JoinKey(String(repeating: "x", count: 40)), JoinKey(""),
      ]
      var journal = StateJournal()
      for (i, key) in keys.enumerated() {
        let seq = Int64(i + 1)
        journal.predictions.append(
          StoredPrediction(seq: seq, joinKey: key, time: 1000, payload: [1], datasets: 1, pending: 1))
        journal.finished.append(FinishedKey(joinKey: key, time: 5, expiresAt: 9 + seq))
        journal.feedback.append(
          StoredFeedback(seq: 100 + seq, joinKey: key, type: 0, time: 7, lineHash: 1, dedupe: nil, fields: []))
      }
      try store.apply(journal)
      for (i, key) in keys.enumerated() {
        let seq = Int64(i + 1)
        let text = key.description
        #expect(try store.prediction(key: text)?.seq == seq, "\(text)")
        #expect(try store.finished(key: text)?.expiresAt == 9 + seq, "\(text)")
        #expect(try store.feedback(key: text).map(\.seq) == [100 + seq], "\(text)")
        #expect(
          try Int64.fetchOne(db, sql: "SELECT hash FROM prediction_keys WHERE seq = ?", arguments: [seq])
            == SQLiteStateStore.keyHash(text))
      }
      // Deleted by the hash the engine names them with (`ColdTier.keyHash` of the `JoinKey`),
      // every key's index row goes too: hashing the raw bytes left the invalid one's behind.
      var deletes = StateJournal()
      deletes.deletedPredictions = keys.enumerated().map {
        DeletedPrediction(seq: Int64($0.offset + 1), keyHash: store.keyHash($0.element))
      }
      try store.apply(deletes)
      #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM prediction_keys") == 0)
      #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM predictions") == 0)
    }
  }

  /// Checkpoints written to SQLite and loaded by a new engine (a restart after every
  /// checkpoint) continue exactly as one uninterrupted engine.
  /// `deferring`: each checkpoint goes into the journal log, and the next run's store applies
  /// what the last left there.
  @Test(arguments: [(5, false), (6, false), (5, true), (6, true)] as [(UInt64, Bool)])
  func restartingFromEveryCheckpointChangesNothing(seed: UInt64, deferring: Bool) throws {
    let events = randomEvents(seed: seed, count: 3000)
    let straight = try referenceRun(events)

    let queue = try stateFile()
    let resumed = Recorder()
    var saved: (seq: Int64, watermark: Int64, max: [Int64?]) = (0, .min, [nil])
    var offset = 0
    var records = 0
    while offset < events.count {
      try queue.inDatabase { db in
        try db.beginTransaction()
        let sqlite = SQLiteStateStore(db: db)
        let memory = try MemoryStateStore(cold: sqlite, maxInMemory: 16)
        let engine = try LabelEngine(rules: rules, store: memory, output: resumed, sources: 1)
        engine.restore(seq: saved.seq, watermark: saved.watermark, sourceMaxTime: saved.max)
        for (event, hash) in events[offset..<min(offset + 250, events.count)] {
          try engine.process(event, source: 0, lineHash: hash)
        }
        offset += 250
        if offset >= events.count { try engine.flush() }
        memory.pruneFinished(expiredBy: engine.watermark)
        let journal = memory.takeJournal()
        try sqlite.apply(journal, deferring: deferring)
        records += try logRecords(db)
        try expectKeyIndexMatchesPredictions(db)
        saved = (engine.seq, engine.watermark, engine.sourceMaxTime)
        try db.commit()
        try memory.evict()
      }
    }
    #expect(straight.log.count > 500)
    #expect(deferring ? records > 5 : records == 0)
    #expect(firstDifference(straight.log, resumed.log) == nil)
    let left = try queue.inDatabase { try SQLiteStateStore(db: $0).pendingPredictionCount() }
    #expect(left == 0)
  }

  /// A commit in the middle of a flush (through `checkpointHook`), then a crash: a new engine
  /// over what was committed resumes the settle (`resume`) and writes exactly the rows the
  /// uninterrupted flush wrote after that point.
  @Test func aSettleInterruptedByACommitResumesAfterARestart() throws {
    let events = randomEvents(seed: 13, count: 3000)
    let straight = try referenceRun(events)

    let queue = try stateFile()
    let resumed = Recorder()
    struct Crash: Error {}
    var saved: (seq: Int64, watermark: Int64, max: [Int64?], log: Int) = (0, .min, [nil], 0)
    try queue.inDatabase { db in
      try db.beginTransaction()
      let sqlite = SQLiteStateStore(db: db)
      let memory = try MemoryStateStore(cold: sqlite)
      let engine = try LabelEngine(rules: rules, store: memory, output: resumed, sources: 1)
      for (event, hash) in events { try engine.process(event, source: 0, lineHash: hash) }
      var hooks = 0
      engine.checkpointEvery = 16
      engine.checkpointHook = {
        hooks += 1
        guard hooks == 1 else { return }
        memory.pruneFinished(expiredBy: engine.watermark)
        try sqlite.apply(memory.takeJournal())
        saved = (engine.seq, engine.watermark, engine.sourceMaxTime, resumed.log.count)
        try db.commit()
        throw Crash()
      }
      #expect(throws: Crash.self) { try engine.flush() }
      #expect(hooks == 1, "the flush should write more than 16 rows")
    }
    // What the crashed run wrote after its commit is lost with it.
    resumed.log.removeLast(resumed.log.count - saved.log)
    try queue.inDatabase { db in
      try db.beginTransaction()
      let sqlite = SQLiteStateStore(db: db)
      let engine = try LabelEngine(rules: rules, store: try MemoryStateStore(cold: sqlite), output: resumed, sources: 1)
      engine.restore(seq: saved.seq, watermark: saved.watermark, sourceMaxTime: saved.max)
      try engine.resume()
      try engine.flush()
      try db.commit()
    }
    #expect(firstDifference(straight.log, resumed.log) == nil)
    #expect(straight.log.count == resumed.log.count)
  }

  /// A version 1 state file (due rows in a table of their own) opens as version 2: the table
  /// goes, and the same rows come back derived from the predictions' pending bits.
  @Test func version1StateMigratesToDerivedDueRows() throws {
    let queue = try DatabaseQueue()
    try queue.inDatabase { db in
      try db.execute(
        sql: """
          CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
          INSERT INTO meta (name, value) VALUES ('schema_version', '1');
          CREATE TABLE predictions (
            seq INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, time INTEGER NOT NULL,
            payload BLOB NOT NULL, datasets INTEGER NOT NULL, pending INTEGER NOT NULL);
          CREATE TABLE due (
            finalize_at INTEGER NOT NULL, seq INTEGER NOT NULL, dataset INTEGER NOT NULL,
            PRIMARY KEY (finalize_at, seq, dataset)) WITHOUT ROWID;
          INSERT INTO predictions VALUES (7, 'k7', 1000, x'5B5D', 3, 2);
          INSERT INTO due VALUES (1000 + 500, 7, 1);
          INSERT INTO predictions VALUES (8, 'k8', 900, x'5B5D', 3, 3);
          INSERT INTO due VALUES (900 + 100, 8, 0);
          INSERT INTO due VALUES (900 + 500, 8, 1);
          """)
      try SQLiteStateStore.migrate(db)
      #expect(
        try String.fetchOne(db, sql: "SELECT value FROM meta WHERE name = 'schema_version'")
          == "\(SQLiteStateStore.schemaVersion)")
      #expect(try db.tableExists("due") == false)
      let store = SQLiteStateStore(db: db)
      let rows = try store.dueRows(after: .beforeAll, through: .max, limit: 10, offsets: [100, 500]).map(\.row)
      #expect(
        rows == [
          DueRow(finalizeAt: 1000, seq: 8, dataset: 0), DueRow(finalizeAt: 1400, seq: 8, dataset: 1),
          DueRow(finalizeAt: 1500, seq: 7, dataset: 1),
        ])
      #expect(
        try store.dueRows(after: .afterAll(dueBy: 1000), through: 1450, limit: 10, offsets: [100, 500]).map(\.row.seq)
          == [8])
      #expect(try store.dueRows(after: .beforeAll, through: .max, limit: 2, offsets: [100, 500]).count == 2)
      #expect(try store.earliestDue(after: .afterAll(dueBy: 1000), offsets: [100, 500]) == 1400)
      #expect(try store.earliestDue(after: .beforeAll, offsets: [100, 500]) == 1000)
    }
  }

  /// A state file from a newer feedbackd is refused with one line naming the versions: this
  /// one would write state the newer one cannot read, and mark the file as its own version.
  @Test func aNewerSchemaIsRefused() throws {
    let queue = try DatabaseQueue()
    try queue.inDatabase { db in
      try SQLiteStateStore.migrate(db)
      try db.execute(sql: "UPDATE meta SET value = '5' WHERE name = 'schema_version'")
      let error = #expect(throws: DaemonError.self) { try SQLiteStateStore.migrate(db) }
      #expect(error?.description.contains("schema version 5, newer than this feedbackd's (4)") == true)
      #expect(error?.description.contains("\n") == false)
      #expect(try String.fetchOne(db, sql: "SELECT value FROM meta WHERE name = 'schema_version'") == "5")
    }
  }

  /// A schema-3 file that an older feedbackd (which did not refuse it) marked as version 2 is
  /// migrated again: the keys it wrote without hashes get theirs.
  @Test func aVersion3FileMarkedVersion2MigratesAgain() throws {
    let queue = try DatabaseQueue()
    try queue.inDatabase { db in
      try SQLiteStateStore.migrate(db)
      try db.execute(
        sql: """
          UPDATE meta SET value = '2' WHERE name = 'schema_version';
          INSERT INTO predictions VALUES (7, 'k7', 1000, x'5B5D', 1, 1);
          INSERT INTO feedback (seq, key, type, time, line_hash, dedupe, fields, key_hash)
            VALUES (9, 'k7', 0, 1100, 5, NULL, x'', 0);
          """)
      try SQLiteStateStore.migrate(db)
      #expect(
        try String.fetchOne(db, sql: "SELECT value FROM meta WHERE name = 'schema_version'")
          == "\(SQLiteStateStore.schemaVersion)")
      let store = SQLiteStateStore(db: db)
      #expect(try store.prediction(key: "k7")?.seq == 7)
      #expect(try store.feedback(key: "k7").map(\.seq) == [9])
    }
  }

  /// A version 2 state file (keys indexed by their text) opens as version 3: its predictions
  /// and feedback are found by key as before, its orphan candidates are the same, and a
  /// checkpoint deletes and replaces its rows (their keys' index entries with them).
  @Test func version2StateMigratesToKeyHashes() throws {
    let queue = try DatabaseQueue()
    try queue.inDatabase { db in
      try db.execute(
        sql: """
          CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
          INSERT INTO meta (name, value) VALUES ('schema_version', '2');
          CREATE TABLE predictions (
            seq INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, time INTEGER NOT NULL,
            payload BLOB NOT NULL, datasets INTEGER NOT NULL, pending INTEGER NOT NULL);
          CREATE INDEX predictions_by_time ON predictions (time, seq);
          CREATE TABLE feedback (
            seq INTEGER PRIMARY KEY, key TEXT NOT NULL, type INTEGER NOT NULL, time INTEGER NOT NULL,
            line_hash INTEGER NOT NULL, dedupe TEXT, fields BLOB NOT NULL);
          CREATE INDEX feedback_by_key ON feedback (key);
          CREATE TABLE finished (
            key TEXT PRIMARY KEY, time INTEGER NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
          INSERT INTO predictions VALUES (7, 'k7', 1000, x'5B5D', 1, 1);
          INSERT INTO predictions VALUES (8, 'k8', 900, x'5B5D', 1, 1);
          INSERT INTO feedback VALUES (9, 'k7', 0, 1100, 5, NULL, x'');
          INSERT INTO feedback VALUES (10, 'orphan', 0, 1200, 6, 'd', x'');
          INSERT INTO finished VALUES ('k1', 500, 2000);
          """)
      try SQLiteStateStore.migrate(db)
      #expect(
        try String.fetchOne(db, sql: "SELECT value FROM meta WHERE name = 'schema_version'")
          == "\(SQLiteStateStore.schemaVersion)")
      // The unique index on the key text is gone; the keys are in `prediction_keys`.
      #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master WHERE tbl_name = 'predictions'") == 2)
      #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM prediction_keys") == 2)
      let store = SQLiteStateStore(db: db)
      #expect(try store.prediction(key: "k7")?.seq == 7)
      #expect(try store.prediction(key: "k8")?.time == 900)
      #expect(try store.prediction(key: "k9") == nil)
      #expect(try store.feedback(key: "k7").map(\.seq) == [9])
      #expect(try store.feedback(keys: ["k7", "k8", "orphan"]).map(\.seq).sorted() == [9, 10])
      #expect(try store.unclaimedFeedback().map(\.seq) == [10])
      #expect(try store.finished(key: "k1")?.expiresAt == 2000)
      #expect(try store.dueRows(after: .beforeAll, through: .max, limit: 10, offsets: [0]).map(\.row.seq) == [8, 7])
      // k7's prediction is replaced, k8's goes, and the orphan's key gets a prediction.
      var journal = StateJournal()
      journal.deletedPredictions = [
        DeletedPrediction(seq: 7, keyHash: SQLiteStateStore.keyHash("k7")),
        DeletedPrediction(seq: 8, keyHash: SQLiteStateStore.keyHash("k8")),
      ]
      journal.predictions = [
        StoredPrediction(seq: 12, key: "k7", time: 1300, payload: [], datasets: 1, pending: 1),
        StoredPrediction(seq: 11, key: "orphan", time: 1250, payload: [], datasets: 1, pending: 1),
      ]
      try store.apply(journal)
      #expect(try store.prediction(key: "k7")?.seq == 12)
      #expect(try store.prediction(key: "k8") == nil)
      #expect(try store.unclaimedFeedback().isEmpty)
      #expect(
        try Row.fetchAll(db, sql: "SELECT hash, seq FROM prediction_keys ORDER BY seq").map {
          [$0[0], $0[1]] as [Int64]
        }
          == [[SQLiteStateStore.keyHash("orphan"), 11], [SQLiteStateStore.keyHash("k7"), 12]])
      // Migrating again changes nothing.
      try SQLiteStateStore.migrate(db)
      #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM prediction_keys") == 2)
    }
  }

  /// Keys sharing a hash are told apart by their text, and the hash is what was persisted
  /// (it must not change: state files index their keys by it).
  @Test func keysSharingAHashAreToldApart() throws {
    #expect(SQLiteStateStore.keyHash("") == 1985814265)
    #expect(SQLiteStateStore.keyHash("k7") == 98101035)
    let queue = try DatabaseQueue()
    try queue.inDatabase { db in
      try SQLiteStateStore.migrate(db)
      let store = SQLiteStateStore(db: db)
      var journal = StateJournal()
      journal.predictions = [
        StoredPrediction(seq: 1, key: "a", time: 10, payload: [1], datasets: 1, pending: 1),
        StoredPrediction(seq: 2, key: "b", time: 20, payload: [2], datasets: 1, pending: 1),
      ]
      journal.feedback = [
        StoredFeedback(seq: 3, key: "a", type: 0, time: 11, lineHash: 0, dedupe: nil, fields: []),
        StoredFeedback(seq: 4, key: "b", type: 0, time: 21, lineHash: 0, dedupe: nil, fields: []),
      ]
      try store.apply(journal)
      // Both keys as though they shared a's hash.
      let a = SQLiteStateStore.keyHash("a")
      try db.execute(sql: "UPDATE prediction_keys SET hash = ?", arguments: [a])
      try db.execute(sql: "UPDATE feedback SET key_hash = ?", arguments: [a])
      #expect(try store.prediction(key: "a")?.seq == 1)
      #expect(try store.feedback(key: "a").map(\.seq) == [3])
      #expect(try store.feedback(keys: ["a"]).map(\.seq) == [3])
      #expect(try store.unclaimedFeedback().isEmpty)
    }
  }

  /// A key whose entry was retired (its state gone from memory, the cold tier's copy owed a
  /// delete at the next checkpoint) is found in the cold-key filter until a rebuild; looked
  /// up before that checkpoint, it must come back empty, not with its old prediction and
  /// feedback (which would make a new prediction for the key a duplicate).
  @Test func retiredStateIsNotReadBackBeforeTheCheckpoint() throws {
    let queue = try DatabaseQueue()
    try queue.inDatabase { db in
      try SQLiteStateStore.migrate(db)
      try db.beginTransaction()
      let sqlite = SQLiteStateStore(db: db)
      // State at start (or evicted): keys not in memory are looked up in the cold tier.
      let before = try MemoryStateStore(cold: sqlite)
      before.dueOffsets = [100]
      before.setPrediction(
        try before.ref(key: JoinKey("z")), seq: 1, time: 5000, payload: Array("[0]".utf8), datasets: 1)
      try commitState(before, to: sqlite, in: db, watermark: 0)
      let memory = try MemoryStateStore(cold: sqlite)
      memory.dueOffsets = [100]
      let ref = try memory.ref(key: JoinKey("a"))
      memory.setPrediction(ref, seq: 2, time: 1000, payload: Array("[1]".utf8), datasets: 1)
      memory.addFeedback(
        ref, StoredFeedback(seq: 3, key: "a", type: 0, time: 1050, lineHash: 9, dedupe: nil, fields: []))
      try commitState(memory, to: sqlite, in: db, watermark: 1050)
      #expect(try sqlite.prediction(key: "a") != nil)
      #expect(try sqlite.feedback(key: "a").count == 1)

      let due = try #require(try memory.popDue(through: 1100))
      #expect(memory.rowWritten(due.ref, dataset: 0) == 0)
      memory.finish(due.ref, expiresAt: 1200)
      memory.pruneFinished(expiredBy: 1200)  // retired: the cold tier still holds seq 2 and 3

      let again = try memory.ref(key: JoinKey("a"))
      #expect(memory.prediction(again) == nil, "the retired prediction was read back")
      #expect(memory.feedback(again).isEmpty, "the retired feedback was read back")
      try commitState(memory, to: sqlite, in: db, watermark: 1200)
      #expect(try sqlite.prediction(key: "a") == nil)
      #expect(try sqlite.feedback(key: "a").isEmpty)
      try db.commit()
    }
  }

  /// The first checkpoint of a fresh state makes the cold-key filter to the measure of the keys
  /// it persists instead of reading them all back from SQLite afterwards: no rebuild, and the
  /// filter still tells new keys from stored ones (a filter left at its initial size with
  /// 20,000 keys in it would send a third or more of new keys to SQLite).
  @Test func firstCheckpointSizesTheColdKeyFilterWithoutReadingKeysBack() throws {
    let queue = try DatabaseQueue()
    try queue.inDatabase { db in
      try SQLiteStateStore.migrate(db)
      try db.beginTransaction()
      let sqlite = SQLiteStateStore(db: db)
      // The entry bound makes the checkpoint evict most of them: lookups then go by the filter.
      let memory = try MemoryStateStore(cold: sqlite, maxInMemory: 1000)
      let engine = try LabelEngine(rules: rules, store: memory, output: Recorder(), sources: 1)
      let start: Int64 = 1_796_029_200 * second
      let stored = 20_000
      for i in 0..<stored {
        let text = "{\"e\":\"p\",\"k\":\"stored-\(i)\",\"s\":1}"
        try engine.process(Event(time: start, object: try JSONValue.parse(text)), source: 0, lineHash: UInt64(i))
      }
      try commitState(memory, to: sqlite, in: db, watermark: engine.watermark)
      #expect(memory.coldFilterRebuilds == 0, "the first checkpoint read its keys back to rebuild the filter")
      #expect(memory.coldFilterKeys == stored)
      #expect(memory.coldFilterBytes * 8 >= stored * 2 * 16, "\(memory.coldFilterBytes) bytes for \(stored) keys")
      #expect(memory.pendingPredictionCount() == stored)
      // New keys: nearly none goes to SQLite; evicted stored keys are found there.
      let before = memory.coldKeyLookups
      for i in 0..<stored { _ = try memory.ref(key: JoinKey("new-\(i)")) }
      #expect(memory.coldKeyLookups - before < stored / 100, "\(memory.coldKeyLookups - before) lookups")
      for i in stride(from: 0, to: stored, by: 997) {
        #expect(memory.prediction(try memory.ref(key: JoinKey("stored-\(i)"))) != nil, "stored-\(i)")
      }
      // A restart builds the filter from the stored keys.
      #expect(try MemoryStateStore(cold: sqlite).coldFilterRebuilds == 1)
      try db.commit()
    }
  }

  /// The journal says it leaves the cold tier empty only when it does: after a flush of a
  /// store that never evicted (SQLite then empties its tables at once), and never while a key
  /// is in memory or after an eviction (SQLite may hold what memory does not know).
  @Test(arguments: [false, true])
  func aJournalLeavesNothingOnlyWhenNothingIsLeft(evicting: Bool) throws {
    let events = randomEvents(seed: 5, count: 3000)
    let queue = try DatabaseQueue()
    try queue.inDatabase { db in
      try SQLiteStateStore.migrate(db)
      try db.beginTransaction()
      let sqlite = SQLiteStateStore(db: db)
      let memory = try MemoryStateStore(cold: sqlite, maxInMemory: evicting ? 16 : 1_000_000)
      let recorder = Recorder()
      let engine = try LabelEngine(rules: rules, store: memory, output: recorder, sources: 1)
      var saidNothingLeft = 0
      func checkpoint() throws {
        memory.pruneFinished(expiredBy: engine.watermark)
        let journal = memory.takeJournal()
        if journal.leavesNothing { saidNothingLeft += 1 }
        try sqlite.apply(journal, pruneFinishedBy: engine.watermark)
        try db.commit()
        try db.beginTransaction()
        try memory.evict()
      }
      for (i, (event, hash)) in events.enumerated() {
        try engine.process(event, source: 0, lineHash: hash)
        if i % 500 == 499 { try checkpoint() }
      }
      #expect(saidNothingLeft == 0, "keys were in memory")
      #expect(try sqlite.keyCountEstimate() > 0)
      try engine.flush()
      try checkpoint()
      #expect(saidNothingLeft == (evicting ? 0 : 1))
      if evicting { try checkpoint() }
      #expect(try sqlite.keyCountEstimate() == 0)
      #expect(try sqlite.pendingPredictionCount() == 0)
      #expect(firstDifference(recorder.log, try referenceRun(events).log) == nil)
      try db.commit()
    }
  }

  /// The filter of the keys the cold tier holds stays within its cap and forgets keys whose
  /// state is gone (finished memory expired, in memory or evicted) when it is rebuilt: in a
  /// daemon running for months it must not grow with every key ever seen. Each rebuild holds
  /// exactly the stored keys.
  @Test func coldKeyFilterForgetsWhatExpired() throws {
    let events = randomEvents(seed: 11, count: 12000)
    let queue = try DatabaseQueue()
    try queue.inDatabase { db in
      try SQLiteStateStore.migrate(db)
      try db.beginTransaction()
      let sqlite = SQLiteStateStore(db: db)
      let cap = 256
      let memory = try MemoryStateStore(cold: sqlite, maxInMemory: 8, coldFilterMaxBytes: cap)
      let recorder = Recorder()
      let engine = try LabelEngine(rules: rules, store: memory, output: recorder, sources: 1)
      var peak = 0
      var inserted = 0
      var checkedRebuilds = 0
      func checkpoint() throws {
        let before = (keys: memory.coldFilterKeys, rebuilds: memory.coldFilterRebuilds)
        memory.pruneFinished(expiredBy: engine.watermark)
        try sqlite.apply(memory.takeJournal(), pruneFinishedBy: engine.watermark)
        inserted += memory.coldFilterKeys - before.keys
        try db.commit()
        try db.beginTransaction()
        try memory.evict()
        if memory.coldFilterRebuilds > before.rebuilds {
          #expect(memory.coldFilterKeys == (try sqlite.keyCountEstimate()))
          checkedRebuilds += 1
        }
        #expect(memory.coldFilterBytes <= cap)
        peak = max(peak, memory.coldFilterKeys)
      }
      for (i, (event, hash)) in events.enumerated() {
        try engine.process(event, source: 0, lineHash: hash)
        if i % 97 == 0 { try checkpoint() }
      }
      #expect(checkedRebuilds >= 2, "the test should fill the filter past its capacity")
      #expect(peak * 2 < inserted, "peak \(peak) keys of \(inserted) put in")
      try engine.flush()
      try checkpoint()
      try checkpoint()
      #expect(memory.pendingPredictionCount() == 0)
      #expect(try sqlite.keyCountEstimate() == 0)
      #expect(recorder.log.count > 500)
      try db.commit()
    }
  }
}
