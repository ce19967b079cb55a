import Foundation
import GRDB
import Labeling

/// The embedded state store: join state, read positions and dataset offsets in one SQLite file.
///
/// All SQL lives in this file. The owner keeps one transaction open between checkpoints, so
/// everything the engine changed commits atomically with the read positions it came from.
final class SQLiteStateStore: StateStore {
  static let schemaVersion = 1

  let db: Database

  init(db: Database) {
    self.db = db
  }

  static func migrate(_ db: Database) throws {
    try db.execute(
      sql: """
        CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS files (
          fingerprint TEXT NOT NULL, source TEXT NOT NULL, path TEXT NOT NULL,
          offset INTEGER NOT NULL, finished INTEGER NOT NULL, quarantined TEXT,
          PRIMARY KEY (source, fingerprint)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS predictions (
          seq INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, time INTEGER NOT NULL,
          payload BLOB NOT NULL, datasets INTEGER NOT NULL, pending INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS due (
          finalize_at INTEGER NOT NULL, seq INTEGER NOT NULL, dataset INTEGER NOT NULL,
          PRIMARY KEY (finalize_at, seq, dataset)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS feedback (
          seq INTEGER PRIMARY KEY, key TEXT NOT NULL, type INTEGER NOT NULL, time INTEGER NOT NULL,
          line_hash INTEGER NOT NULL, dedupe TEXT, fields BLOB NOT NULL, claimed INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS feedback_by_key ON feedback (key, time, seq);
        CREATE INDEX IF NOT EXISTS feedback_unclaimed ON feedback (time, seq) WHERE claimed = 0;
        CREATE TABLE IF NOT EXISTS finished (
          key TEXT PRIMARY KEY, time INTEGER NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS finished_by_expiry ON finished (expires_at);
        """)
    if try String.fetchOne(db, sql: "SELECT value FROM meta WHERE name = 'schema_version'") == nil {
      try db.execute(
        sql: "INSERT INTO meta (name, value) VALUES ('schema_version', ?)", arguments: ["\(schemaVersion)"])
    }
  }

  // MARK: Predictions

  private func prediction(from row: Row) -> StoredPrediction {
    StoredPrediction(
      seq: row[0], key: row[1], time: row[2], payload: [UInt8](row[3] as Data),
      datasets: UInt64(bitPattern: row[4]), pending: UInt64(bitPattern: row[5]))
  }

  func prediction(key: String) throws -> StoredPrediction? {
    let statement = try db.cachedStatement(
      sql: "SELECT seq, key, time, payload, datasets, pending FROM predictions WHERE key = ?")
    return try Row.fetchOne(statement, arguments: [key]).map(prediction(from:))
  }

  func prediction(seq: Int64) throws -> StoredPrediction? {
    let statement = try db.cachedStatement(
      sql: "SELECT seq, key, time, payload, datasets, pending FROM predictions WHERE seq = ?")
    return try Row.fetchOne(statement, arguments: [seq]).map(prediction(from:))
  }

  func insertPrediction(_ p: StoredPrediction) throws {
    let statement = try db.cachedStatement(
      sql: "INSERT INTO predictions (seq, key, time, payload, datasets, pending) VALUES (?, ?, ?, ?, ?, ?)")
    try statement.execute(arguments: [
      p.seq, p.key, p.time, Data(p.payload), Int64(bitPattern: p.datasets), Int64(bitPattern: p.pending),
    ])
  }

  func updatePending(seq: Int64, pending: UInt64) throws {
    let statement = try db.cachedStatement(sql: "UPDATE predictions SET pending = ? WHERE seq = ?")
    try statement.execute(arguments: [Int64(bitPattern: pending), seq])
  }

  func deletePrediction(seq: Int64) throws {
    try db.cachedStatement(sql: "DELETE FROM predictions WHERE seq = ?").execute(arguments: [seq])
  }

  func pendingPredictionCount() throws -> Int {
    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM predictions") ?? 0
  }

  // MARK: Due rows

  func insertDue(_ row: DueRow) throws {
    try db.cachedStatement(sql: "INSERT OR IGNORE INTO due (finalize_at, seq, dataset) VALUES (?, ?, ?)")
      .execute(arguments: [row.finalizeAt, row.seq, row.dataset])
  }

  func deleteDue(_ row: DueRow) throws {
    try db.cachedStatement(sql: "DELETE FROM due WHERE finalize_at = ? AND seq = ? AND dataset = ?")
      .execute(arguments: [row.finalizeAt, row.seq, row.dataset])
  }

  func dueRows(through watermark: Int64, limit: Int) throws -> [DueRow] {
    let statement = try db.cachedStatement(
      sql: "SELECT finalize_at, seq, dataset FROM due WHERE finalize_at <= ? ORDER BY finalize_at, seq, dataset LIMIT ?"
    )
    return try Row.fetchAll(statement, arguments: [watermark, limit]).map {
      DueRow(finalizeAt: $0[0], seq: $0[1], dataset: $0[2])
    }
  }

  func earliestDue() throws -> Int64? {
    try Int64.fetchOne(db.cachedStatement(sql: "SELECT MIN(finalize_at) FROM due"))
  }

  // MARK: Feedback

  private func feedback(from row: Row) -> StoredFeedback {
    StoredFeedback(
      seq: row[0], key: row[1], type: row[2], time: row[3], lineHash: UInt64(bitPattern: row[4]),
      dedupe: row[5], fields: [UInt8](row[6] as Data))
  }

  func insertFeedback(_ f: StoredFeedback, claimed: Bool) throws {
    let statement = try db.cachedStatement(
      sql: """
        INSERT INTO feedback (seq, key, type, time, line_hash, dedupe, fields, claimed)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        """)
    try statement.execute(arguments: [
      f.seq, f.key, f.type, f.time, Int64(bitPattern: f.lineHash), f.dedupe, Data(f.fields), claimed ? 1 : 0,
    ])
  }

  func claimFeedback(key: String) throws {
    try db.cachedStatement(sql: "UPDATE feedback SET claimed = 1 WHERE key = ? AND claimed = 0")
      .execute(arguments: [key])
  }

  func feedback(key: String) throws -> [StoredFeedback] {
    let statement = try db.cachedStatement(
      sql: """
        SELECT seq, key, type, time, line_hash, dedupe, fields FROM feedback
        WHERE key = ? ORDER BY time, seq
        """)
    return try Row.fetchAll(statement, arguments: [key]).map(feedback(from:))
  }

  func deleteFeedback(key: String) throws {
    try db.cachedStatement(sql: "DELETE FROM feedback WHERE key = ?").execute(arguments: [key])
  }

  func deleteFeedback(seq: Int64) throws {
    try db.cachedStatement(sql: "DELETE FROM feedback WHERE seq = ?").execute(arguments: [seq])
  }

  func unclaimedFeedback(before: Int64, limit: Int) throws -> [StoredFeedback] {
    let statement = try db.cachedStatement(
      sql: """
        SELECT seq, key, type, time, line_hash, dedupe, fields FROM feedback
        WHERE claimed = 0 AND time < ? ORDER BY time, seq LIMIT ?
        """)
    return try Row.fetchAll(statement, arguments: [before, limit]).map(feedback(from:))
  }

  func earliestUnclaimedFeedback() throws -> Int64? {
    try Int64.fetchOne(db.cachedStatement(sql: "SELECT MIN(time) FROM feedback WHERE claimed = 0"))
  }

  // MARK: Finished keys

  func finishedPrediction(key: String, at watermark: Int64) throws -> Int64? {
    let statement = try db.cachedStatement(sql: "SELECT time FROM finished WHERE key = ? AND expires_at > ?")
    return try Int64.fetchOne(statement, arguments: [key, watermark])
  }

  func insertFinished(key: String, time: Int64, expiresAt: Int64) throws {
    try db.cachedStatement(sql: "INSERT OR REPLACE INTO finished (key, time, expires_at) VALUES (?, ?, ?)")
      .execute(arguments: [key, time, expiresAt])
  }

  func pruneFinished(expiredBy watermark: Int64) throws {
    try db.cachedStatement(sql: "DELETE FROM finished WHERE expires_at <= ?").execute(arguments: [watermark])
  }

  // MARK: Checkpoint data

  func meta(_ name: String) throws -> Data? {
    try Data.fetchOne(db.cachedStatement(sql: "SELECT value FROM meta WHERE name = ?"), arguments: [name])
  }

  func setMeta(_ name: String, _ value: Data) throws {
    try db.cachedStatement(sql: "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)")
      .execute(arguments: [name, value])
  }

  func fileRecord(source: String, fingerprint: String) throws -> FileRecord? {
    let statement = try db.cachedStatement(
      sql: "SELECT path, offset, finished, quarantined FROM files WHERE source = ? AND fingerprint = ?")
    return try Row.fetchOne(statement, arguments: [source, fingerprint]).map {
      FileRecord(
        source: source, fingerprint: fingerprint, path: $0[0], offset: $0[1], finished: $0[2], quarantined: $0[3])
    }
  }

  func saveFile(_ record: FileRecord) throws {
    try db.cachedStatement(
      sql: """
        INSERT OR REPLACE INTO files (source, fingerprint, path, offset, finished, quarantined)
        VALUES (?, ?, ?, ?, ?, ?)
        """
    ).execute(arguments: [
      record.source, record.fingerprint, record.path, record.offset, record.finished, record.quarantined,
    ])
  }

  func allFiles() throws -> [FileRecord] {
    try Row.fetchAll(
      db, sql: "SELECT source, fingerprint, path, offset, finished, quarantined FROM files ORDER BY source, path"
    ).map {
      FileRecord(
        source: $0[0], fingerprint: $0[1], path: $0[2], offset: $0[3], finished: $0[4], quarantined: $0[5])
    }
  }
}

/// What is known about one file of a source, by fingerprint.
struct FileRecord: Sendable, Equatable {
  var source: String
  var fingerprint: String
  var path: String
  /// Decompressed offset just past the last line processed.
  var offset: Int64
  /// Read to its end after rotation: never read again.
  var finished: Bool
  /// Why the file was given up on (damaged gzip), if it was.
  var quarantined: String?
}
