import Foundation
import GRDB
import Labeling
import TestSupport
import Testing

@testable import FeedbackDaemon

/// The join tables, row by row in order (what a checkpoint leaves in them).
func joinTables(_ db: Database) throws -> [String] {
  var rows: [String] = []
  for sql in [
    "SELECT seq, key, time, hex(payload), datasets, pending FROM predictions ORDER BY seq",
    "SELECT hash, seq FROM prediction_keys ORDER BY hash, seq",
    "SELECT seq, key, type, time, line_hash, dedupe, hex(fields), key_hash FROM feedback ORDER BY seq",
    "SELECT key, time, expires_at FROM finished ORDER BY key",
  ] {
    for row in try Row.fetchAll(db, sql: sql) { rows.append("\(sql.prefix(20)) \(row)") }
  }
  return rows
}

/// The join tables as a new connection's store finds them (it brings them up to date from the
/// log first), without changing the file: the update is rolled back.
func joinTablesAfterARestart(_ db: Database) throws -> [String] {
  try db.execute(sql: "SAVEPOINT peek")
  defer {
    try? db.execute(sql: "ROLLBACK TO peek")
    try? db.execute(sql: "RELEASE peek")
  }
  let fresh = SQLiteStateStore(db: db)
  try fresh.materialize()
  #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM journal_log") == 0)
  try expectKeyIndexMatchesPredictions(db)
  return try joinTables(db)
}

func logRecords(_ db: Database) throws -> Int { try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM journal_log") ?? 0 }

/// A journal with one of each kind of change, keys of every kind (ASCII, non-ASCII, invalid
/// UTF-8, longer than a key's inline bytes, empty).
func journalOfEveryKind(seed: UInt64) -> (StateJournal, Int64?) {
  var random = SplitMix64(seed: seed)
  let keys: [JoinKey] = [
    JoinKey("r-1"), JoinKey("ключ"), ([0x61, 0xFF, 0x62] as [UInt8]).withUnsafeBytes { JoinKey($0) },
    JoinKey(String(repeating: "long-key-", count: 5)), JoinKey(""),
  ]
  var journal = StateJournal()
  for i in 0..<Int(random.next() % 20) {
    journal.deletedPredictions.append(DeletedPrediction(seq: Int64(i), keyHash: Int64(random.next() % 1000)))
    journal.pendingUpdates.append(PendingUpdate(seq: Int64(100 + i), pending: random.next()))
    journal.deletedFeedback.append(Int64(200 + i))
    journal.deletedFinished.append(keys[i % keys.count].description)
  }
  for (i, key) in keys.enumerated() {
    let payload = (0..<Int(random.next() % 300)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    journal.predictions.append(
      StoredPrediction(
        seq: Int64(300 + i), joinKey: key, time: Int64(bitPattern: random.next()), payload: payload,
        datasets: random.next(), pending: random.next()))
    journal.feedback.append(
      StoredFeedback(
        seq: Int64(400 + i), joinKey: key, type: Int(random.next() % 3), time: -Int64(i),
        lineHash: random.next(), dedupe: i % 2 == 0 ? nil : "d\(i)é", fields: i == 0 ? [] : payload))
    journal.finished.append(FinishedKey(joinKey: key, time: Int64(i), expiresAt: Int64.max - Int64(i)))
  }
  return (journal, seed % 2 == 0 ? nil : Int64(bitPattern: random.next()))
}

@Suite struct JournalLogTests {
  @Test(arguments: [1, 2, 3, 4] as [UInt64])
  func aRecordReadsBackAsTheJournalWritten(seed: UInt64) throws {
    let (journal, watermark) = journalOfEveryKind(seed: seed)
    let record = JournalRecord.encode(journal, pruneFinishedBy: watermark)
    // What decides whether the record goes into the log, counted before it is built.
    #expect(JournalRecord.encodedCount(journal) == record.count)
    let (read, readWatermark) = try record.withUnsafeBytes { try JournalRecord.decode($0) }
    #expect(readWatermark == watermark)
    #expect(read.deletedPredictions == journal.deletedPredictions)
    #expect(read.predictions == journal.predictions)
    #expect(read.pendingUpdates == journal.pendingUpdates)
    #expect(read.deletedFeedback == journal.deletedFeedback)
    #expect(read.feedback == journal.feedback)
    #expect(read.deletedFinished == journal.deletedFinished)
    #expect(read.finished == journal.finished)
    #expect(read.predictions.count == 5 && read.predictions[2].joinKey.count == 3)
  }

  /// A damaged record is refused with an error naming the log, whatever is wrong with it: cut
  /// anywhere, an unknown format, bytes after its end, a length beyond its end.
  @Test func aDamagedRecordIsRefused() throws {
    let (journal, watermark) = journalOfEveryKind(seed: 3)
    let record = JournalRecord.encode(journal, pruneFinishedBy: watermark)
    func refused(_ bytes: [UInt8]) -> Bool {
      do {
        _ = try bytes.withUnsafeBytes { try JournalRecord.decode($0) }
        return false
      } catch let error as JournalRecord.Damaged {
        return "\(error)".contains("journal_log")
      } catch {
        return false
      }
    }
    for cut in stride(from: 0, to: record.count, by: 7) { #expect(refused(Array(record.prefix(cut))), "cut at \(cut)") }
    #expect(refused([JournalRecord.version + 1] + record.dropFirst()))
    #expect(refused(record + [0]))
    var long = record
    long[10...13] = [0xFF, 0xFF, 0xFF, 0x7F]  // the deleted predictions' count
    #expect(refused(long))
  }

  /// The same journals into two state files, one applied at each checkpoint, the other
  /// deferred into the log (bounded so that it is also brought up to date now and then): after
  /// every checkpoint, the deferred file read by a new connection (as after a crash) has the
  /// same tables, and reads through the store that deferred them (which bring the tables up to
  /// date) find them too.
  @Test(arguments: [(21, 8), (22, 40), (23, 1_000_000)] as [(UInt64, Int)])
  func deferredCheckpointsLeaveTheTablesAppliedOnesDo(seed: UInt64, maxInMemory: Int) throws {
    let events = randomEvents(seed: seed, count: 3000)
    let applied = try stateFile()
    let deferred = try stateFile()
    let output = Recorder()
    var checkpoints = 0
    var withRecords = 0
    var appliedAtTheBound = 0
    try applied.inDatabase { a in
      try deferred.inDatabase { d in
        try a.beginTransaction()
        try d.beginTransaction()
        let sqlite = SQLiteStateStore(db: a)
        let logged = SQLiteStateStore(db: d)
        logged.maxLogBytes = 6000
        let memory = try MemoryStateStore(cold: sqlite, maxInMemory: maxInMemory, compactAt: 16)
        let engine = try LabelEngine(rules: rules, store: memory, output: output, sources: 1)
        func checkpoint(last: Bool) throws {
          memory.pruneFinished(expiredBy: engine.watermark)
          let journal = memory.takeJournal()
          try sqlite.apply(journal, pruneFinishedBy: engine.watermark)
          let recordsBefore = try logRecords(d)
          if checkpoints % 3 == 2 && !last {
            try logged.applyInBackground(journal, pruneFinishedBy: engine.watermark)
          } else {
            try logged.apply(journal, pruneFinishedBy: engine.watermark, deferring: !last)
          }
          try logged.commitTransaction()
          try a.commit()
          try a.beginTransaction()
          try memory.evict()
          checkpoints += 1
          let records = try logRecords(d)
          if records > 0 { withRecords += 1 }
          // A deferred journal adds a record, unless the log was applied (it would pass its bound).
          if !last && recordsBefore > 0 && records == 0 { appliedAtTheBound += 1 }
          #expect(try joinTablesAfterARestart(d) == joinTables(a), "checkpoint \(checkpoints)")
          if checkpoints % 5 == 0 {
            // A read of the join state brings the tables up to date first.
            _ = try logged.hasState()
            #expect(try logRecords(d) == 0)
            #expect(try joinTables(d) == joinTables(a), "checkpoint \(checkpoints), read")
          }
        }
        for (i, (event, hash)) in events.enumerated() {
          try engine.process(event, source: 0, lineHash: hash)
          if i % 97 == 96 { try checkpoint(last: false) }
        }
        try checkpoint(last: true)
        #expect(try logRecords(d) == 0, "a checkpoint that is not deferred empties the log")
        #expect(try joinTables(d) == joinTables(a))
        #expect(try joinTables(d).count > 20)
        try engine.flush()
        try checkpoint(last: true)
        #expect(try joinTables(d) == joinTables(a))
        try a.commit()
        try d.commit()
      }
    }
    #expect(checkpoints > 30)
    #expect(withRecords > checkpoints / 3, "checkpoints should leave records in the log")
    #expect(appliedAtTheBound > checkpoints / 10, "the log's bound should bring the tables up to date")
  }

  /// `status` counts what the log's records hold (it cannot write the tables, only read them).
  @Test func pendingCountsIncludeTheLog() throws {
    let queue = try stateFile()
    try queue.inDatabase { db in
      try db.beginTransaction()
      let sqlite = SQLiteStateStore(db: db)
      func prediction(_ seq: Int64) -> StoredPrediction {
        StoredPrediction(seq: seq, key: "k\(seq)", time: seq, payload: [1], datasets: 1, pending: 1)
      }
      func feedback(_ seq: Int64) -> StoredFeedback {
        StoredFeedback(seq: seq, key: "k\(seq)", type: 0, time: seq, lineHash: 0, dedupe: nil, fields: [])
      }
      var first = StateJournal()
      first.predictions = (1...5).map(prediction)
      first.feedback = [feedback(6), feedback(7)]
      try sqlite.apply(first)
      try sqlite.commitTransaction()
      var second = StateJournal()
      second.deletedPredictions = [DeletedPrediction(seq: 1, keyHash: SQLiteStateStore.keyHash("k1"))]
      second.predictions = [prediction(8), prediction(9)]
      second.deletedFeedback = [6]
      try sqlite.apply(second, deferring: true)
      var third = StateJournal()
      third.deletedPredictions = [DeletedPrediction(seq: 8, keyHash: SQLiteStateStore.keyHash("k8"))]
      third.feedback = [feedback(10), feedback(11)]
      try sqlite.apply(third, deferring: true)
      try sqlite.commitTransaction()
      #expect(try logRecords(db) == 2)
      #expect(try SQLiteStateStore.pendingCounts(db) == (predictions: 5, feedback: 3))
      #expect(try sqlite.pendingPredictionCount() == 5)
      try db.commit()
    }
  }

  /// A version 3 file (no log) opens as version 4, with an empty log.
  @Test func aVersion3FileGetsALog() throws {
    let queue = try DatabaseQueue()
    try queue.inDatabase { db in
      try SQLiteStateStore.migrate(db)
      try db.execute(sql: "DROP TABLE journal_log; UPDATE meta SET value = '3' WHERE name = 'schema_version'")
      #expect(try SQLiteStateStore.pendingCounts(db) == (predictions: 0, feedback: 0))
      try SQLiteStateStore.migrate(db)
      #expect(try String.fetchOne(db, sql: "SELECT value FROM meta WHERE name = 'schema_version'") == "4")
      #expect(try logRecords(db) == 0)
    }
  }

  /// A log record that cannot be read stops the store at its first use of the join state
  /// with an error naming the log, rather than going on without the state it held.
  @Test func aDamagedLogStopsTheStoreWithAClearError() throws {
    let queue = try stateFile()
    try queue.inDatabase { db in
      try db.execute(sql: "INSERT INTO journal_log (data) VALUES (?)", arguments: [Data([1, 0, 0])])
      let sqlite = SQLiteStateStore(db: db)
      #expect(throws: JournalRecord.Damaged.self) { _ = try sqlite.hasState() }
      #expect(throws: JournalRecord.Damaged.self) { _ = try MemoryStateStore(cold: sqlite) }
    }
  }
}
