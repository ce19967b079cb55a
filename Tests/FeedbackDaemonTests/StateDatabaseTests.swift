import Foundation
import GRDB
import Labeling
import Testing

@testable import FeedbackDaemon

/// How `StateDatabase.open` sets up `state.sqlite`, on real files: what a commit and a close
/// leave on disk.
@Suite struct StateDatabaseTests {
  static func stateDir() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("state-db-\(UUID().uuidString)").path
  }

  static func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? -1
  }

  static func predictions(_ seqs: ClosedRange<Int64>) -> StateJournal {
    var journal = StateJournal()
    for seq in seqs {
      journal.predictions.append(
        StoredPrediction(
          seq: seq, key: "key-\(seq)", time: 1000 + seq, payload: Array(repeating: UInt8(seq & 0x7f), count: 200),
          datasets: 1, pending: 1))
    }
    return journal
  }

  /// Closing leaves the WAL as it is (no checkpoint into `state.sqlite`, no fsync of it, no
  /// unlink of the log): the committed rows are in the log, and the next open reads them.
  /// With SQLite's default close the log is checkpointed and deleted, and this fails.
  @Test func closingLeavesTheCommittedLogForTheNextOpen() throws {
    let dir = Self.stateDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    do {
      let queue = try StateDatabase.open(stateDir: dir)
      try StateDatabase.run(queue) { db in
        let store = SQLiteStateStore(db: db)
        try store.apply(Self.predictions(1...50))
        try store.commitTransaction()
      }
    }
    // The queue is gone, its connection closed.
    #expect(Self.fileSize(dir + "/state.sqlite-wal") > 50 * 200)
    let queue = try StateDatabase.open(stateDir: dir)
    let count = try queue.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM predictions") }
    #expect(count == 50)
  }

  /// Deleted rows are zeroed only where that costs no I/O (`secure_delete = FAST`), whatever
  /// the platform's SQLite was built with: emptying the tables does not write every freed
  /// page into the log again as zeros (Debian's build zeroes them by default).
  @Test func emptyingTheTablesDoesNotRewriteTheirPages() throws {
    let dir = Self.stateDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let queue = try StateDatabase.open(stateDir: dir)
    #expect(try queue.read { try Int.fetchOne($0, sql: "PRAGMA secure_delete") } == 2)
    try StateDatabase.run(queue) { db in
      let store = SQLiteStateStore(db: db)
      try store.apply(Self.predictions(1...2000))
      try store.commitTransaction()
      let log = dir + "/state.sqlite-wal"
      let before = Self.fileSize(log)
      var journal = StateJournal()
      journal.deletedPredictions = (1...2000).map {
        DeletedPrediction(seq: $0, keyHash: SQLiteStateStore.keyHash("key-\($0)"))
      }
      journal.leavesNothing = true
      try store.apply(journal)
      try store.commitTransaction()
      // 2,000 rows of 200 bytes are about 110 pages; the commit that frees them writes a few
      // (the tables' roots, the free list's trunk, the header), not all of them.
      let frames = (Self.fileSize(log) - before) / (4096 + 24)
      #expect(frames < 20, "the emptying commit wrote \(frames) pages")
      #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM predictions") == 0)
    }
  }

  /// A commit whose SQL ran in the background finds its pages already in the WAL: the
  /// COMMIT on the caller's thread adds only its commit frame (the background thread flushed
  /// SQLite's page cache and synced the log). Without the flush, every page the transaction
  /// dirtied that the cache still held was written by the COMMIT.
  @Test func aBackgroundCommitLeavesOnlyItsCommitFrameToTheCommit() throws {
    let dir = Self.stateDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let queue = try StateDatabase.open(stateDir: dir)
    try StateDatabase.run(queue) { db in
      let store = SQLiteStateStore(db: db)
      let log = dir + "/state.sqlite-wal"
      try store.applyInBackground(Self.predictions(1...300), pruneFinishedBy: 0)
      try store.join()
      let written = Self.fileSize(log)
      try store.commitTransaction()
      let frames = (Self.fileSize(log) - written) / (4096 + 24)
      #expect(frames <= 1, "the COMMIT wrote \(frames) pages")
      // The journal went into the log as one record; the tables get it when next read.
      #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM journal_log") == 1)
      #expect(try store.pendingPredictionCount() == 300)
      #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM predictions") == 300)
    }
  }
}
