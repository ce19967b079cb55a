import Foundation
import GRDB
import Labeling
import LogFormats
import TestSupport
import Testing

@testable import FeedbackDaemon

/// A cold tier that counts what is read from it.
final class CountingColdTier: ColdTier {
  let base: any ColdTier
  /// Queries that read state back (everything but the start-up loads and `misses`).
  var reads = 0
  /// Lookups of a key that found nothing (the cold-key filter's false positives).
  var misses = 0
  var dueRowsRead = 0
  init(_ base: any ColdTier) { self.base = base }
  func prediction(key: String) throws -> StoredPrediction? {
    let found = try base.prediction(key: key)
    if found == nil { misses += 1 } else { reads += 1 }
    return found
  }
  func prediction(seq: Int64) throws -> StoredPrediction? {
    reads += 1
    return try base.prediction(seq: seq)
  }
  func feedback(key: String) throws -> [StoredFeedback] {
    let found = try base.feedback(key: key)
    if found.isEmpty { misses += 1 } else { reads += 1 }
    return found
  }
  func feedback(keys: [String]) throws -> [StoredFeedback] {
    reads += 1
    return try base.feedback(keys: keys)
  }
  func dueRows(after: DueRow, through: Int64, limit: Int, offsets: [Int64]) throws -> [DuePrediction] {
    reads += 1
    let rows = try base.dueRows(after: after, through: through, limit: limit, offsets: offsets)
    dueRowsRead += rows.count
    return rows
  }
  func earliestDue(after: DueRow, offsets: [Int64]) throws -> Int64? {
    reads += 1
    return try base.earliestDue(after: after, offsets: offsets)
  }
  func finished(key: String) throws -> FinishedKey? {
    let found = try base.finished(key: key)
    if found == nil { misses += 1 } else { reads += 1 }
    return found
  }
  func finished(keys: [String]) throws -> [FinishedKey] {
    reads += 1
    return try base.finished(keys: keys)
  }
  func unclaimedFeedback() throws -> [StoredFeedback] { try base.unclaimedFeedback() }
  func pendingPredictionCount() throws -> Int { try base.pendingPredictionCount() }
  func hasState() throws -> Bool { try base.hasState() }
  func forEachKey(_ body: (String) throws -> Void) throws { try base.forEachKey(body) }
  func keyCountEstimate() throws -> Int { try base.keyCountEstimate() }
  func keyHash(_ key: JoinKey) -> Int64 { base.keyHash(key) }
}

/// The live benchmark's job (`Benchmarks/live_latency.py`): one click label with a 10 s
/// window, two kept columns, `max_out_of_order: 1s`.
let liveRules = Rules(
  prediction: rules.prediction,
  feedbackTypes: [rules.feedbackTypes[0]],
  labels: [LabelSpec(name: "clicked", feedbackType: 0, window: 10 * second)],
  datasets: [
    DatasetSpec(
      name: "ctr", labels: [0],
      columns: [ColumnSpec(path: path("m"), name: "m"), ColumnSpec(path: path("s"), name: "s")])
  ],
  clockSkew: 0, maxOutOfOrder: second)

/// The live benchmark's stream without its request logs (which touch no state): `perSecond`
/// predictions a second, a fifth of them clicked 0.5–5 s later, for `seconds` seconds.
func liveEvents(perSecond: Int, seconds: Int, seed: UInt64 = 1) -> [(Event, UInt64)] {
  var rng = SplitMix64(seed: seed)
  let start: Int64 = 1_796_029_200 * second
  var timed: [(time: Int64, order: Int, text: String)] = []
  for i in 0..<perSecond * seconds {
    let time = start + Int64(i) * second / Int64(perSecond)
    timed.append((time, timed.count, "{\"e\":\"p\",\"k\":\"r-\(i)\",\"m\":\"v1\",\"s\":0.\(rng.below(10000))}"))
    if rng.below(5) == 0 {
      let delay = second / 2 + Int64(rng.below(4500)) * second / 1000
      timed.append((time + delay, timed.count, "{\"e\":\"c\",\"k\":\"r-\(i)\"}"))
    }
  }
  timed.sort { ($0.time, $0.order) < ($1.time, $1.order) }
  return timed.enumerated().map { i, t in (Event(time: t.time, object: try! JSONValue.parse(t.text)), UInt64(i + 1)) }
}

/// What one run of `liveEvents` through a store over SQLite did: committed every second of
/// event time (and when the state outgrows the budget, as the daemon does), evicting with
/// `horizon` (nil: `evict()` as before there was one).
struct LiveRun {
  var log: [String] = []
  var coldReads = 0
  var dueBatchesRead = 0
  var evictions = 0
  /// The largest state left after evicting.
  var peakAfterEvicting = 0
}

func liveRun(_ events: [(Event, UInt64)], maxBytes: Int, horizon: Int64?) throws -> LiveRun {
  var run = LiveRun()
  let recorder = Recorder()
  let queue = try DatabaseQueue()
  try queue.inDatabase { db in
    try SQLiteStateStore.migrate(db)
    try db.beginTransaction()
    let cold = CountingColdTier(SQLiteStateStore(db: db))
    let memory = try MemoryStateStore(cold: cold, maxBytes: maxBytes)
    let engine = try LabelEngine(rules: liveRules, store: memory, output: recorder, sources: 1)
    var nextCommit = events[0].0.time + second
    var afterCommit = 0
    for (event, hash) in events {
      try engine.process(event, source: 0, lineHash: hash)
      let bytes = memory.stateBytes
      guard event.time >= nextCommit || (bytes >= maxBytes && bytes >= afterCommit + maxBytes / 4) else { continue }
      if event.time >= nextCommit { nextCommit += second }
      try commitState(
        memory, to: SQLiteStateStore(db: db), in: db, watermark: engine.watermark,
        keepingDueBefore: horizon.map { engine.watermark + $0 } ?? .min)
      afterCommit = memory.stateBytes
      run.peakAfterEvicting = max(run.peakAfterEvicting, afterCommit)
    }
    try engine.flush()
    run.coldReads = cold.reads
    run.dueBatchesRead = memory.dueBatchesRead
    run.evictions = memory.evictions
    try db.commit()
  }
  run.log = recorder.log
  return run
}

/// A store over SQLite (through a counting cold tier) for `evict` to work on directly.
final class EvictionFixture {
  let db: Database
  let sqlite: SQLiteStateStore
  let cold: CountingColdTier
  let memory: MemoryStateStore
  /// Rows are due `window` after their prediction.
  let window = 10 * second

  private init(db: Database, maxBytes: Int) throws {
    self.db = db
    try SQLiteStateStore.migrate(db)
    try db.beginTransaction()
    sqlite = SQLiteStateStore(db: db)
    cold = CountingColdTier(sqlite)
    memory = try MemoryStateStore(cold: cold, maxBytes: maxBytes)
    memory.dueOffsets = [window]
  }

  /// Runs `body` with a fixture over a fresh in-memory database.
  static func with(maxBytes: Int, _ body: (EvictionFixture) throws -> Void) throws {
    try DatabaseQueue().inDatabase { db in
      try body(try EvictionFixture(db: db, maxBytes: maxBytes))
      try db.commit()
    }
  }

  /// Pending predictions `k<first>`… logged a millisecond apart from `time(first)`.
  func predict(_ range: Range<Int>) throws {
    for i in range {
      let ref = try memory.ref(key: JoinKey("k\(i)"))
      memory.setPrediction(ref, seq: Int64(i + 1), time: time(i), payload: Array("[[\"v1\",0.5]]".utf8), datasets: 1)
    }
  }

  /// Keys `f<first>`… whose prediction is finished (only the memory of it is left): logged a
  /// day before `k<first>`… would be, and their rows written.
  func finished(_ range: Range<Int>) throws {
    let dayBefore = 86_400 * second
    for i in range {
      let ref = try memory.ref(key: JoinKey("f\(i)"))
      memory.setPrediction(ref, seq: Int64(i + 1), time: time(i) - dayBefore, payload: [], datasets: 1)
    }
    while let row = try memory.popDue(through: due(range.upperBound) - dayBefore) {
      _ = memory.rowWritten(row.ref, dataset: row.row.dataset)
      memory.finish(row.ref, expiresAt: row.row.finalizeAt + 1000 * second)
    }
  }

  func time(_ i: Int) -> Int64 { 1_796_029_200 * second + Int64(i) * second / 1000 }

  /// When the prediction of `k<i>` is due.
  func due(_ i: Int) -> Int64 { time(i) + window }

  func checkpoint() throws {
    try sqlite.apply(memory.takeJournal())
    try db.commit()
    try db.beginTransaction()
  }

  /// How many cold reads looking up these keys took (none: they were all in memory).
  func readsLookingUp(_ keys: some Sequence<String>) throws -> Int {
    let before = cold.reads
    for key in keys { _ = try memory.ref(key: JoinKey(key)) }
    return cold.reads - before
  }
}

@Suite struct EvictionTests {
  /// The live benchmark's stream at a tenth of its rate, with a budget a tenth of the
  /// default: the live state (11 s of pending predictions, 9 s of finished keys) is over the
  /// budget at every commit. Evicting with a horizon beyond the window lets finished keys go
  /// and keeps every pending prediction and due row: nothing is read back from SQLite. Without
  /// one (as before), predictions due a few seconds later are evicted and read back.
  @Test func liveStateDueSoonIsNotReadBack() throws {
    let events = liveEvents(perSecond: 500, seconds: 30)
    let budget = 12 << 20 / 10
    let inMemory = Recorder()
    let engine = try LabelEngine(rules: liveRules, store: MemoryStateStore(), output: inMemory, sources: 1)
    for (event, hash) in events { try engine.process(event, source: 0, lineHash: hash) }
    try engine.flush()

    let kept = try liveRun(events, maxBytes: budget, horizon: 60 * second)
    #expect(kept.coldReads == 0, "nothing due within the horizon should be read back")
    #expect(kept.dueBatchesRead == 0)
    #expect(kept.evictions > 5, "finished keys should still be evicted")
    #expect(kept.peakAfterEvicting > budget, "the test wants the live state over the budget")
    #expect(kept.peakAfterEvicting <= budget + budget / 2)
    #expect(inMemory.log.count > 10_000)
    #expect(firstDifference(inMemory.log, kept.log) == nil)

    let before = try liveRun(events, maxBytes: budget, horizon: nil)
    #expect(before.coldReads > 10_000, "without a horizon, evicted predictions come straight back")
    #expect(firstDifference(inMemory.log, before.log) == nil)
  }

  /// Over the byte budget, pending predictions due before the horizon all stay (they fit in
  /// one and a half times the budget), and those due later go, furthest first; finished keys go first of all.
  @Test func predictionsDueSoonStayAndLaterOnesGo() throws {
    let budget = 256 << 10
    try EvictionFixture.with(maxBytes: budget) { f in
      try f.predict(0..<2000)
      try f.finished(2000..<2500)
      try f.checkpoint()
      let before = f.memory.stateBytes
      #expect(before > budget)
      // The first 1000 come due before the horizon.
      try f.memory.evict(keepingDueBefore: f.due(1000))
      #expect(f.memory.evictions == 1)
      #expect(f.memory.stateBytes <= budget + budget / 2)
      #expect(try f.readsLookingUp((0..<1000).map { "k\($0)" }) == 0, "due soon: still in memory")
      // Of the later ones, the newest stay (their feedback is still arriving), the rest went.
      #expect(try f.readsLookingUp((1000..<1500).map { "k\($0)" }) > 0, "due later: evicted")
      #expect(try f.readsLookingUp((2000..<2500).map { "f\($0)" }) > 0, "finished keys: evicted")
    }
  }

  /// All due within the horizon and under one and a half times the budget: only finished keys go, and the
  /// rows are all popped from memory (no batch read back, no lookup).
  @Test func stateDueSoonUnderTheCapStays() throws {
    let budget = 256 << 10
    try EvictionFixture.with(maxBytes: budget) { f in
      try f.predict(0..<1200)
      try f.checkpoint()
      let predictionsOnly = f.memory.stateBytes
      #expect(predictionsOnly > budget && predictionsOnly < budget + budget / 2)
      try f.finished(1200..<1700)
      try f.checkpoint()
      try f.memory.evict(keepingDueBefore: f.due(1200))
      #expect(f.memory.evictions == 1, "the finished keys go")
      // (Their expiry entries stay queued.)
      #expect(f.memory.stateBytes >= predictionsOnly && f.memory.stateBytes < predictionsOnly + 500 * 32)
      #expect(try f.readsLookingUp((0..<1200).map { "k\($0)" }) == 0)
      var popped = 0
      while try f.memory.popDue(through: .max) != nil { popped += 1 }
      #expect(popped == 1200)
      #expect(f.memory.dueBatchesRead == 0)
      #expect(f.cold.reads == 0)
    }
  }

  /// When what is due soon does not fit in one and a half times the budget, eviction goes on
  /// as though nothing were due soon: down to half the budget.
  @Test func stateDueSoonOverTheCapIsEvictedAsBefore() throws {
    let budget = 256 << 10
    try EvictionFixture.with(maxBytes: budget) { f in
      try f.predict(0..<3000)
      try f.checkpoint()
      #expect(f.memory.stateBytes > budget + budget / 2)
      try f.memory.evict(keepingDueBefore: f.due(3000))
      #expect(f.memory.stateBytes <= budget / 2)
      // (Here that leaves only the newest: the due rows of the evicted predictions still count
      // while the predictions go.)
      #expect(try f.readsLookingUp((0..<100).map { "k\($0)" }) > 0, "due soon, but over the cap: evicted")
      #expect(try f.readsLookingUp((2000..<2500).map { "k\($0)" }) > 0, "due furthest (but not the newest): evicted")
    }
  }

  /// Once evicted rows are read back, popping on as the watermark moves a little at a time
  /// (a live daemon: every line) makes no further query: a batch reads the earliest cold
  /// rows whether due yet or not, and a short one leaves nothing cold. (Reading only up to
  /// the watermark made one query per watermark step.)
  @Test func evictedRowsAreReadBackInBatchesNotPerWatermarkStep() throws {
    let budget = 256 << 10
    try EvictionFixture.with(maxBytes: budget) { f in
      try f.predict(0..<3000)
      try f.checkpoint()
      try f.memory.evict()
      #expect(f.memory.evictions == 1)
      var popped = Set<Int64>()
      for i in 0..<3000 {
        while let row = try f.memory.popDue(through: f.due(i)) {
          #expect(popped.insert(row.row.seq).inserted)
          _ = f.memory.rowWritten(row.ref, dataset: row.row.dataset)
          f.memory.finish(row.ref, expiresAt: row.row.finalizeAt + second)
        }
      }
      #expect(popped.count == 3000)
      #expect(f.memory.dueBatchesRead <= 2, "read back \(f.memory.dueBatchesRead) times")
    }
  }

  /// Under every bound `evict` returns early and evicts nothing, but still compacts an entry
  /// array that is mostly free.
  @Test func underTheBoundsEvictOnlyCompacts() throws {
    try EvictionFixture.with(maxBytes: 1 << 30) { f in
      try f.finished(0..<3000)
      try f.checkpoint()
      f.memory.pruneFinished(expiredBy: .max)
      try f.checkpoint()
      #expect(f.memory.stateBytes < 1 << 20)
      try f.memory.evict(keepingDueBefore: .max)
      #expect(f.memory.evictions == 0)
      #expect(f.memory.compactions == 1)
    }
  }

  /// Evicting with a horizon (some of the state due within it, some later) over a byte
  /// budget changes no decision: every row and side record is the reference store's.
  @Test(arguments: [(13, 16 << 10), (14, 24 << 10)] as [(UInt64, Int)])
  func evictingWithAHorizonChangesNoDecision(seed: UInt64, maxBytes: Int) throws {
    let events = randomEvents(seed: seed, count: 3000)
    let straight = try referenceRun(events)
    let queue = try DatabaseQueue()
    let cached = Recorder()
    try queue.inDatabase { db in
      try SQLiteStateStore.migrate(db)
      try db.beginTransaction()
      let sqlite = SQLiteStateStore(db: db)
      let memory = try MemoryStateStore(cold: sqlite, maxBytes: maxBytes, compactAt: 16)
      let engine = try LabelEngine(rules: rules, store: memory, output: cached, sources: 1)
      for (i, (event, hash)) in events.enumerated() {
        try engine.process(event, source: 0, lineHash: hash)
        if i % 97 == 0 {
          // Rules' windows are 60 s and 300 s: some rows come due within the horizon, some later.
          try commitState(
            memory, to: sqlite, in: db, watermark: engine.watermark,
            keepingDueBefore: engine.watermark == .min ? .min : engine.watermark + 90 * second)
          #expect(memory.stateBytes <= maxBytes + maxBytes / 2)
        }
      }
      try engine.flush()
      #expect(memory.pendingPredictionCount() == 0)
      #expect(memory.evictions > 5, "the budget should force evictions")
      try db.commit()
    }
    #expect(straight.log.count > 500)
    #expect(firstDifference(straight.log, cached.log) == nil)
  }
}
