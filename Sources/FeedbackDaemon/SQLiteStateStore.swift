import Foundation
import GRDB
import GRDBSQLite
import Labeling
import Synchronization
import Threads

/// The embedded state store: join state, read positions and dataset offsets in one SQLite file.
///
/// All SQL lives in this file. The engine works on a `MemoryStateStore`; at each checkpoint its
/// journal is written here in the same transaction as the read positions it came from.
final class SQLiteStateStore: ColdTier {
  /// 2: due rows are derived from `predictions` (`time` index, `pending` bits) instead of
  /// being a table of their own.
  /// 3: keys are indexed by a 31-bit hash (`keyHash`) instead of by their text: the
  /// predictions' in a table of their own (`prediction_keys`), written in hash order at each
  /// checkpoint; the feedback's in an index on `feedback.key_hash`. (The unique index on the
  /// predictions' key text took a random page per row inserted or deleted: with a week's
  /// window, where every prediction goes through the cold tier, half of a replay's time.)
  /// 4: a replay's checkpoints may leave their journals in `journal_log` (`JournalRecord`),
  /// to be applied to the tables later: a version 3 feedbackd would not see them.
  static let schemaVersion = 4

  /// Used only on its queue's thread, never while a background write runs (`join`).
  private let db: Database

  init(db: Database) {
    self.db = db
  }

  static func migrate(_ db: Database) throws {
    try db.inSavepoint {
      let version =
        try db.tableExists("meta")
        ? try String.fetchOne(db, sql: "SELECT value FROM meta WHERE name = 'schema_version'").flatMap { Int($0) }
        : nil
      // A newer feedbackd's file: this one would write state that one cannot read (and mark
      // the file as its own older version).
      if let version, version > schemaVersion {
        throw DaemonError.usage(
          "state_dir: state.sqlite has schema version \(version), newer than this feedbackd's (\(schemaVersion)); "
            + "run the feedbackd that wrote it, or start from an empty state_dir")
      }
      let upgrading = version.map { $0 < 3 } ?? false
      if upgrading { try upgradeTables(db) }
      try db.execute(
        sql: """
          CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
          CREATE TABLE IF NOT EXISTS files (
            fingerprint TEXT NOT NULL, source TEXT NOT NULL, path TEXT NOT NULL,
            offset INTEGER NOT NULL, finished INTEGER NOT NULL, quarantined TEXT,
            PRIMARY KEY (source, fingerprint)) WITHOUT ROWID;
          CREATE TABLE IF NOT EXISTS predictions (
            seq INTEGER PRIMARY KEY, key TEXT NOT NULL, time INTEGER NOT NULL,
            payload BLOB NOT NULL, datasets INTEGER NOT NULL, pending INTEGER NOT NULL);
          CREATE INDEX IF NOT EXISTS predictions_by_time ON predictions (time, seq);
          CREATE TABLE IF NOT EXISTS prediction_keys (
            hash INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (hash, seq)) WITHOUT ROWID;
          CREATE TABLE IF NOT EXISTS feedback (
            seq INTEGER PRIMARY KEY, key TEXT NOT NULL, type INTEGER NOT NULL, time INTEGER NOT NULL,
            line_hash INTEGER NOT NULL, dedupe TEXT, fields BLOB NOT NULL, key_hash INTEGER NOT NULL);
          CREATE TABLE IF NOT EXISTS finished (
            key TEXT PRIMARY KEY, time INTEGER NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
          CREATE TABLE IF NOT EXISTS journal_log (seq INTEGER PRIMARY KEY, data BLOB NOT NULL);
          """)
      if upgrading { try hashKeys(db) }
      try db.execute(sql: "CREATE INDEX IF NOT EXISTS feedback_by_key_hash ON feedback (key_hash)")
      try db.execute(
        sql: "INSERT OR REPLACE INTO meta (name, value) VALUES ('schema_version', ?)", arguments: ["\(schemaVersion)"])
      return .commit
    }
  }

  /// Versions 1 and 2, before the tables of version 3 are created: the predictions table is
  /// rebuilt without the unique index on its keys' text (SQLite cannot drop it otherwise) and
  /// feedback gets a column for its keys' hashes (`hashKeys` fills both in). Version 1 kept
  /// due rows in a table; they are the pending bits of the predictions.
  private static func upgradeTables(_ db: Database) throws {
    try db.execute(sql: "DROP TABLE IF EXISTS due")
    if try db.tableExists("predictions") {
      try db.execute(
        sql: """
          DROP INDEX IF EXISTS predictions_by_time;
          ALTER TABLE predictions RENAME TO predictions_old;
          CREATE TABLE predictions (
            seq INTEGER PRIMARY KEY, key TEXT NOT NULL, time INTEGER NOT NULL,
            payload BLOB NOT NULL, datasets INTEGER NOT NULL, pending INTEGER NOT NULL);
          INSERT INTO predictions (seq, key, time, payload, datasets, pending)
            SELECT seq, key, time, payload, datasets, pending FROM predictions_old ORDER BY seq;
          DROP TABLE predictions_old;
          """)
    }
    if try db.tableExists("feedback") {
      try db.execute(sql: "DROP INDEX IF EXISTS feedback_by_key")
      if try !db.columns(in: "feedback").contains(where: { $0.name == "key_hash" }) {
        try db.execute(sql: "ALTER TABLE feedback ADD COLUMN key_hash INTEGER NOT NULL DEFAULT 0")
      }
    }
  }

  /// Indexes the keys of the predictions and feedback of an upgraded state file by hash, in
  /// SQL through a function: SQLite sorts the pairs in its bounded sorter (spilling to a temporary
  /// file), so a state file of many millions of keys upgrades in bounded memory.
  private static func hashKeys(_ db: Database) throws {
    let function = DatabaseFunction("feedbackd_key_hash", argumentCount: 1, pure: true) { values in
      String.fromDatabaseValue(values[0]).map { keyHash($0) }
    }
    db.add(function: function)
    defer { db.remove(function: function) }
    try db.execute(
      sql: """
        INSERT OR REPLACE INTO prediction_keys (hash, seq)
          SELECT feedbackd_key_hash(key), seq FROM predictions ORDER BY 1, 2;
        UPDATE feedback SET key_hash = feedbackd_key_hash(key);
        """)
  }

  /// What keys are indexed by: 31 bits of a 64-bit FNV-1a hash of the key's UTF-8 bytes, mixed
  /// by a multiply-xorshift (SQLite stores it in 4 bytes). Persisted, so it must not change.
  /// Keys may share a hash: every lookup compares the key's text too.
  static func keyHash(_ key: String) -> Int64 {
    var key = key
    return key.withUTF8 { keyHash(UnsafeRawBufferPointer($0)) }
  }

  /// `keyHash` of the key's text as the state database holds it (`withText`): the hash its
  /// `prediction_keys` row is written under, and deleted by (`DeletedPrediction`).
  func keyHash(_ key: JoinKey) -> Int64 { Self.keyHash(key) }

  static func keyHash(_ key: JoinKey) -> Int64 { withText(key, keyHash) }

  /// Calls `body` with the bytes a key is written to the state database as: its own when they
  /// are ASCII (all of a log's request ids), else the UTF-8 of its `String` (`description`,
  /// which repairs invalid UTF-8), as the journal's `String` keys were written.
  @inline(__always)
  static func withText<R>(_ key: JoinKey, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    key.withBytes { bytes in
      if Pipeline.isASCII(bytes) { return body(bytes) }
      var text = key.description
      return text.withUTF8 { body(UnsafeRawBufferPointer($0)) }
    }
  }

  static func keyHash(_ bytes: UnsafeRawBufferPointer) -> Int64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
    h ^= h >> 33
    h &*= 0xff51_afd7_ed55_8ccd
    h ^= h >> 33
    return Int64(h >> 33)
  }

  // MARK: Join state

  /// Writes what changed since the last checkpoint into the open transaction, and forgets
  /// finished keys whose memory expired by `watermark` (they only answer duplicate/late
  /// questions), if given.
  ///
  /// `deferring`: the journal may go into the log as one record (`JournalRecord`), the
  /// tables brought up to date later (`materialize`), unless that would take the log past
  /// `maxLogBytes`. Without it the tables are brought up to date now, the log's journals and
  /// this one at once. Either way the commit holds the journal.
  func apply(_ journal: StateJournal, pruneFinishedBy watermark: Int64? = nil, deferring: Bool = false) throws {
    try join()
    try loadLog()
    try record(journal, pruneFinishedBy: watermark, deferring: deferring, with: try statements())
  }

  /// `record` on this thread.
  private func record(
    _ journal: StateJournal, pruneFinishedBy watermark: Int64?, deferring: Bool, with statements: Statements
  ) throws {
    do {
      try Self.record(journal, pruneFinishedBy: watermark, deferring: deferring, log: &log, with: statements)
    } catch {
      logLoaded = false
      throw error
    }
  }

  /// The most bytes of journal records the log holds before the tables are brought up to date:
  /// the work a restart starts with. The records are read back one at a time and applied in
  /// turn (`forEachRecord`), so the log costs no memory between times, and bringing the tables
  /// up to date about as much as writing one journal did. (Merged into one net journal first,
  /// so that rows inserted and deleted again were not written, they took 24 MB more peak RSS,
  /// 69 -> 93 MB, on the benchmark's three oldest files committed every 300,000 lines.) The
  /// benchmark's mid-run checkpoint's record is about 3 MB.
  var maxLogBytes = 8 << 20

  /// What this connection knows of the log: its records and their bytes.
  struct Log: Sendable {
    var records = 0
    var bytes = 0
  }
  private var log = Log()
  /// Whether `log` was read from the state file yet (at the first use of the join state).
  private var logLoaded = false

  /// Counts the log's records left by the last run into `log`, once.
  private func loadLog() throws {
    guard !logLoaded else { return }
    let row = try Row.fetchOne(db, sql: "SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0) FROM journal_log")
    log = Log(records: row?[0] ?? 0, bytes: row?[1] ?? 0)
    logLoaded = true
  }

  private static let readLogSQL = "SELECT data FROM journal_log ORDER BY seq"

  /// Calls `body` with each of the log's records in the order they were written, decoded, read
  /// with `readLogSQL` prepared (through SQLite's C API: on any thread). `body` may write other
  /// tables.
  private static func forEachRecord(
    _ statement: Statement, _ body: (_ journal: StateJournal, _ watermark: Int64?) throws -> Void
  ) throws {
    let s = statement.sqliteStatement
    sqlite3_reset(s)
    defer { sqlite3_reset(s) }
    while true {
      let code = sqlite3_step(s)
      if code == SQLITE_DONE { break }
      guard code == SQLITE_ROW else {
        let message = String(cString: sqlite3_errmsg(sqlite3_db_handle(s)))
        throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: statement.sql)
      }
      let count = Int(sqlite3_column_bytes(s, 0))
      let bytes = UnsafeRawBufferPointer(start: sqlite3_column_blob(s, 0), count: count)
      let (journal, watermark) = try JournalRecord.decode(bytes)
      try body(journal, watermark)
    }
  }

  /// What the log's records change in the counts of the tables' rows (`status`).
  private static func logCounts(_ statement: Statement) throws -> LogCounts {
    var counts = LogCounts()
    try forEachRecord(statement) { journal, _ in counts.add(journal) }
    return counts
  }

  /// Brings the tables up to date with the log's records (in the open transaction) and
  /// empties the log. Every read of the join state calls this first.
  func materialize() throws {
    try join()
    try loadLog()
    guard log.records > 0 else { return }
    do {
      try Self.writeLog(then: nil, &log, with: try statements())
    } catch {
      logLoaded = false
      throw error
    }
  }

  /// The log's records read back and written into the tables one after the other, then
  /// `later` (a journal and its watermark), and the log emptied.
  private static func writeLog(
    then later: (journal: StateJournal, watermark: Int64?)?, _ log: inout Log, with statements: Statements
  ) throws {
    try forEachRecord(statements(readLogSQL)) { try write($0, pruneFinishedBy: $1, with: statements) }
    if let later { try write(later.journal, pruneFinishedBy: later.watermark, with: statements) }
    try exec(statements.connection, "DELETE FROM journal_log")
    log = Log()
  }

  /// `apply`'s work, on any thread (one at a time on the connection).
  private static func record(
    _ journal: StateJournal, pruneFinishedBy watermark: Int64?, deferring: Bool, log: inout Log,
    with statements: Statements
  ) throws {
    if journal.leavesNothing {
      // Every table emptied, the log's too.
      try write(journal, pruneFinishedBy: watermark, with: statements)
      log = Log()
      return
    }
    let count = deferring ? JournalRecord.encodedCount(journal) : 0
    if deferring, log.bytes + count <= statements.maxLogBytes {
      let record = JournalRecord.encode(journal, pruneFinishedBy: watermark, count: count)
      // Bound in place, not copied (SQLite's copy doubled the record's memory), and unbound
      // before the bytes go.
      let append = statements(appendLogSQL)
      defer { sqlite3_clear_bindings(append.sqliteStatement) }
      try record.withUnsafeBytes { bytes in
        try step(append) { _ = sqlite3_bind_blob($0, 1, bytes.baseAddress, Int32(bytes.count), nil) }
      }
      log.records += 1
      log.bytes += record.count
      return
    }
    if log.records == 0 {
      try write(journal, pruneFinishedBy: watermark, with: statements)
    } else {
      try writeLog(then: (journal, watermark), &log, with: statements)
    }
  }

  private static let appendLogSQL = "INSERT INTO journal_log (data) VALUES (?)"

  /// Runs SQL that returns no rows through SQLite's C API (any thread).
  private static func exec(_ connection: OpaquePointer, _ sql: String) throws {
    var message: UnsafeMutablePointer<CChar>?
    let code = sqlite3_exec(connection, sql, nil, nil, &message)
    guard code == SQLITE_OK else {
      let text = message.map { String(cString: $0) } ?? "error \(code)"
      sqlite3_free(message)
      throw DatabaseError(resultCode: ResultCode(rawValue: code), message: text, sql: sql)
    }
  }

  /// `apply` on a thread of its own; the caller commits the transaction once it is done
  /// (`backgroundWriteDone`, then `commitTransaction`). Until then every use of the connection
  /// waits for it (`join`), and rethrows what failed in it.
  ///
  /// Only the statements' steps run there, through SQLite's C API on statements prepared
  /// here: GRDB's `Database` belongs to its queue's thread (it checks), and so do COMMIT and
  /// BEGIN (its commit hook keeps state that only its own statements reset).
  ///
  /// The journal is deferred (`apply`'s `deferring`): the checkpoint writes one record.
  func applyInBackground(_ journal: StateJournal, pruneFinishedBy watermark: Int64) throws {
    try join()
    try loadLog()
    let statements = try statements()
    let job = BackgroundWrite()
    // The log's state goes to the thread and comes back with `join`.
    job.log = log
    log = Log()
    let walPath = writeAheadLogPath
    let thread = WorkerThread(name: "state-write") {
      do {
        try Self.record(journal, pruneFinishedBy: watermark, deferring: true, log: &job.log, with: statements)
        // The transaction's pages go into the WAL now (those the page cache had not spilled
        // yet) and reach the disk here, so the COMMIT, on the pipeline's thread, writes and
        // syncs only its commit frame (the benchmark's mid-run commit: 15 ms there before).
        // A hint: durability still comes from the COMMIT's own sync.
        if let walPath, sqlite3_db_cacheflush(statements.connection) == SQLITE_OK { Self.syncFile(walPath) }
      } catch {
        job.failure = error
      }
      job.done.store(true, ordering: .releasing)
    }
    guard let thread else {
      // No thread to be had: written here.
      log = job.log
      try record(journal, pruneFinishedBy: watermark, deferring: true, with: statements)
      return
    }
    job.thread = thread
    running = job
    backgroundWrites += 1
  }

  /// The connection's write-ahead log (`main`'s file name and `-wal`); nil for an in-memory
  /// or temporary database.
  private lazy var writeAheadLogPath: String? = {
    guard let name = sqlite3_db_filename(db.sqliteConnection, "main"), name.pointee != 0 else { return nil }
    return String(cString: name) + "-wal"
  }()

  /// fdatasync of the file at `path`, if it can be opened (errors ignored: a hint).
  private static func syncFile(_ path: String) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    _ = fdatasync(fd)
    close(fd)
  }

  /// The write `applyInBackground` started, while it runs or until it is joined.
  private var running: BackgroundWrite?
  /// Writes run in the background, and how many of them something had to wait for (a use
  /// of the connection, or the commit, came before they were done).
  private(set) var backgroundWrites = 0
  private(set) var backgroundWritesWaitedFor = 0

  final class BackgroundWrite: @unchecked Sendable {
    let done = Atomic(false)
    /// Set by the thread before `done`; read after joining it.
    var failure: (any Error)?
    var thread: WorkerThread?
    /// The connection's `log`: the thread's while it runs, taken back by `join`.
    var log = Log()
  }

  /// Whether the background write (if any) is done: `join` will not wait.
  var backgroundWriteDone: Bool { running?.done.load(ordering: .acquiring) ?? true }

  /// Waits for the background write (if any) and throws what failed in it. Every use of the
  /// connection calls this first.
  func join() throws {
    guard let job = running else { return }
    running = nil
    if !job.done.load(ordering: .acquiring) { backgroundWritesWaitedFor += 1 }
    job.thread?.join()
    log = job.log
    if let failure = job.failure {
      // What the log holds is read again (the caller rolls the transaction back).
      logLoaded = false
      throw failure
    }
  }

  /// Commits the open transaction and opens the next (the checkpoint's end).
  func commitTransaction() throws {
    try join()
    try db.commit()
    try db.beginTransaction()
  }

  /// The statements `write` runs, prepared (cached) on the connection's thread.
  final class Statements: @unchecked Sendable {
    let connection: OpaquePointer
    var byText: [String: Statement] = [:]
    /// `SQLiteStateStore.maxLogBytes`, for the thread the statements run on.
    var maxLogBytes = 0
    init(connection: OpaquePointer) { self.connection = connection }
    func callAsFunction(_ sql: String) -> Statement {
      guard let statement = byText[sql] else { preconditionFailure("not prepared: \(sql)") }
      return statement
    }
  }

  private func statements() throws -> Statements {
    let statements = Statements(connection: db.sqliteConnection!)
    statements.maxLogBytes = maxLogBytes
    var texts = [Self.deleteKeySQL, Self.updatePendingSQL, Self.pruneFinishedSQL, Self.appendLogSQL, Self.readLogSQL]
    for batched in [
      Self.deletePrediction, Self.upsertPrediction, Self.upsertKey, Self.deleteFeedback, Self.upsertFeedback,
      Self.deleteFinished, Self.upsertFinished,
    ] {
      texts += [batched.one, batched.many]
    }
    for text in texts { statements.byText[text] = try db.cachedStatement(sql: text) }
    return statements
  }

  private static let deleteKeySQL = "DELETE FROM prediction_keys WHERE hash = ? AND seq = ?"
  private static let updatePendingSQL = "UPDATE predictions SET pending = ? WHERE seq = ?"
  private static let pruneFinishedSQL = "DELETE FROM finished WHERE expires_at <= ?"

  /// `apply` with `statements`, on any thread (one at a time on the connection).
  private static func write(
    _ journal: StateJournal, pruneFinishedBy watermark: Int64?, with statements: Statements
  ) throws {
    var journal = journal
    if journal.leavesNothing {
      // Every table emptied at once (SQLite drops their pages) rather than row by row: the
      // last checkpoint of a flushed replay deleted 100k predictions one at a time, 45 ms.
      // The log's records go too: nothing is left for them to do.
      try exec(
        statements.connection,
        """
        DELETE FROM predictions; DELETE FROM prediction_keys; DELETE FROM feedback; DELETE FROM finished;
        DELETE FROM journal_log
        """)
      journal.deletedPredictions = []
      journal.deletedFeedback = []
      journal.deletedFinished = []
    }
    // Rows are bound through SQLite's C API: `execute(arguments:)` boxes every value of every
    // row (and copies blobs into `Data`), which took about half of a replay's commit time.
    // A prediction's row is written by seq and its key by hash, each B-tree in order, so a
    // checkpoint touches each page once. (With a unique index on the key text, each row
    // inserted or deleted touched a random page of that index: a long window's checkpoints,
    // tens of thousands of new rows each, and its flush read and wrote most of the index over
    // and over through the 2 MB page cache.)
    // The journal names each deleted prediction's key hash, so its index entry is found
    // without reading the row back. (`DELETE … RETURNING key` did that, and SQLite buffers returned
    // rows in a temporary B-tree it opens and closes for every statement: `perf` put that at
    // a tenth of a live daemon's checkpoint time.)
    let deletedKeys = journal.deletedPredictions.map { (hash: $0.keyHash, seq: $0.seq) }
    try stepInBatches(statements, deletePrediction, journal.deletedPredictions.map(\.seq).sorted()) { s, at, seq in
      bind(s, at, seq)
    }
    // One by one: SQLite has no batched form of this delete that seeks the pairs
    // (`(hash, seq) IN (VALUES …)` scans the table; `hash IN (…) AND +seq IN (…)` built two
    // lists per batch and took longer than the statements it saved).
    let deleteKey = statements(deleteKeySQL)
    for k in deletedKeys.sorted(by: { ($0.hash, $0.seq) < ($1.hash, $1.seq) }) {
      try step(deleteKey) {
        bind($0, 1, k.hash)
        bind($0, 2, k.seq)
      }
    }
    // A key's old prediction is deleted before its new one is inserted (`StateJournal`): there
    // is no unique index on the key to replace it.
    let predictions = journal.predictions.sorted { $0.seq < $1.seq }
    try stepInBatches(statements, upsertPrediction, predictions) { s, at, p in
      bind(s, at, p.seq)
      bind(s, at + 1, p.joinKey)
      bind(s, at + 2, p.time)
      bind(s, at + 3, blob: p.payload)
      bind(s, at + 4, Int64(bitPattern: p.datasets))
      bind(s, at + 5, Int64(bitPattern: p.pending))
    }
    let insertedKeys = predictions.map { (hash: keyHash($0.joinKey), seq: $0.seq) }
    let keysInOrder = insertedKeys.sorted { ($0.hash, $0.seq) < ($1.hash, $1.seq) }
    try stepInBatches(statements, upsertKey, keysInOrder) { s, at, k in
      bind(s, at, k.hash)
      bind(s, at + 1, k.seq)
    }
    let updatePending = statements(updatePendingSQL)
    for update in journal.pendingUpdates {
      try step(updatePending) {
        bind($0, 1, Int64(bitPattern: update.pending))
        bind($0, 2, update.seq)
      }
    }
    try stepInBatches(statements, deleteFeedback, journal.deletedFeedback.sorted()) { s, at, seq in bind(s, at, seq) }
    try stepInBatches(statements, upsertFeedback, journal.feedback.sorted { $0.seq < $1.seq }) { s, at, f in
      bind(s, at, f.seq)
      bind(s, at + 1, f.joinKey)
      bind(s, at + 2, Int64(f.type))
      bind(s, at + 3, f.time)
      bind(s, at + 4, Int64(bitPattern: f.lineHash))
      if let dedupe = f.dedupe { bind(s, at + 5, dedupe) } else { _ = sqlite3_bind_null(s, at + 5) }
      bind(s, at + 6, blob: f.fields)
      bind(s, at + 7, keyHash(f.joinKey))
    }
    // Finished keys in key order, the table's: the journal lists them as their keys finished,
    // and written so each went to a random page of the table (the benchmark's mid-run commit,
    // 20,049 keys: 65 ms as listed, 42 ms sorted, the sort included). Feedback by `seq`, its
    // row id, likewise.
    try stepInBatches(statements, deleteFinished, journal.deletedFinished.sorted()) { s, at, key in bind(s, at, key) }
    // Sorted by the keys' bytes, the order of the table's text keys (`BINARY`; an ASCII key's
    // text is its bytes, and the order is only for locality), compared a word at a time
    // (`JoinKey.bytesPrecede`) rather than as Unicode `String`s retained and released as they
    // moved (callgrind: the SQL thread's instructions about the same either way).
    let finished = journal.finished.sorted { $0.joinKey.bytesPrecede($1.joinKey) }
    try stepInBatches(statements, upsertFinished, finished) { s, at, f in
      bind(s, at, f.joinKey)
      bind(s, at + 1, f.time)
      bind(s, at + 2, f.expiresAt)
    }
    if let watermark {
      try step(statements(pruneFinishedSQL)) { bind($0, 1, watermark) }
    }
  }

  /// A statement written for one row and for `batchRows` rows (`stepInBatches`).
  private struct Batched {
    let one: String
    let many: String
    /// Bound per row.
    let parameters: Int32

    /// `INSERT OR REPLACE INTO table (columns) VALUES (?, …)`, and with `batchRows` rows of
    /// values. (SQLite applies a multi-row `VALUES` row by row, in order, as the statements
    /// for one row would; the limit on compound selects does not apply to it.)
    static func upsert(_ table: String, _ columns: [String]) -> Batched {
      let row = "(" + Array(repeating: "?", count: columns.count).joined(separator: ", ") + ")"
      let head = "INSERT OR REPLACE INTO \(table) (\(columns.joined(separator: ", "))) VALUES "
      return Batched(
        one: head + row, many: head + Array(repeating: row, count: batchRows).joined(separator: ", "),
        parameters: Int32(columns.count))
    }

    /// `DELETE FROM table WHERE column = ?`, and `… IN (?, …)` for `batchRows` values (the
    /// column is the table's primary key: a seek per value).
    static func delete(_ table: String, by column: String) -> Batched {
      let head = "DELETE FROM \(table) WHERE \(column)"
      return Batched(
        one: head + " = ?",
        many: head + " IN (" + Array(repeating: "?", count: batchRows).joined(separator: ", ") + ")", parameters: 1)
    }
  }

  /// Rows a batched statement writes at once. A statement's own cost (reset, step, halt,
  /// cursors) is paid once per batch: on a C model of a live daemon's checkpoints (5,000
  /// predictions a second, 10 s window), batches of 64 took the predictions' inserts from
  /// 1.2 s to 0.5 s of CPU a minute, the finished keys' from 0.5 s to 0.26 s; batches of 256
  /// saved little more.
  static let batchRows = 64
  private static let upsertPrediction = Batched.upsert(
    "predictions", ["seq", "key", "time", "payload", "datasets", "pending"])
  private static let upsertKey = Batched.upsert("prediction_keys", ["hash", "seq"])
  private static let deletePrediction = Batched.delete("predictions", by: "seq")
  private static let upsertFeedback = Batched.upsert(
    "feedback", ["seq", "key", "type", "time", "line_hash", "dedupe", "fields", "key_hash"])
  private static let deleteFeedback = Batched.delete("feedback", by: "seq")
  private static let upsertFinished = Batched.upsert("finished", ["key", "time", "expires_at"])
  private static let deleteFinished = Batched.delete("finished", by: "key")

  /// Runs a statement for every row of `rows`, in order: `batchRows` rows per run of its
  /// batched form while that many are left, the rest one by one. `bind(statement, first, row)`
  /// binds a row's values from parameter `first` on.
  private static func stepInBatches<Rows: RandomAccessCollection>(
    _ statements: Statements, _ sql: Batched, _ rows: Rows, bind: (SQLiteStatement, Int32, Rows.Element) -> Void
  ) throws {
    var i = rows.startIndex
    if rows.count >= Self.batchRows {
      let many = statements(sql.many)
      while rows.distance(from: i, to: rows.endIndex) >= Self.batchRows {
        try Self.step(many) { s in
          for row in 0..<Int32(Self.batchRows) {
            bind(s, row * sql.parameters + 1, rows[i])
            i = rows.index(after: i)
          }
        }
      }
    }
    guard i < rows.endIndex else { return }
    let one = statements(sql.one)
    while i < rows.endIndex {
      try Self.step(one) { bind($0, 1, rows[i]) }
      i = rows.index(after: i)
    }
  }

  /// Binds a row's values (`bind`) to a cached statement (one that returns no rows) and runs
  /// it once.
  private static func step(_ statement: Statement, _ bind: (SQLiteStatement) -> Void) throws {
    let s = statement.sqliteStatement
    sqlite3_reset(s)
    bind(s)
    let code = sqlite3_step(s)
    guard code == SQLITE_DONE else {
      let message = String(cString: sqlite3_errmsg(sqlite3_db_handle(s)))
      sqlite3_reset(s)
      throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: statement.sql)
    }
    sqlite3_reset(s)
  }

  @inline(__always) private static func bind(_ s: SQLiteStatement, _ index: Int32, _ value: Int64) {
    _ = sqlite3_bind_int64(s, index, value)
  }

  /// `SQLITE_TRANSIENT`: SQLite copies the bytes before the call returns.
  private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

  /// With its length (a key may hold a NUL).
  @inline(__always) private static func bind(_ s: SQLiteStatement, _ index: Int32, _ text: String) {
    _ = text.withCString { sqlite3_bind_text(s, index, $0, Int32(text.utf8.count), transient) }
  }

  /// A key's text (`withText`), bound from where its bytes are (no `String` made for an
  /// ASCII key).
  @inline(__always) private static func bind(_ s: SQLiteStatement, _ index: Int32, _ key: JoinKey) {
    withText(key) { bytes in
      if let base = bytes.baseAddress {
        _ = sqlite3_bind_text(s, index, base.assumingMemoryBound(to: CChar.self), Int32(bytes.count), transient)
      } else {
        // A null pointer would bind NULL: the empty key is an empty text.
        _ = sqlite3_bind_text(s, index, "", 0, transient)
      }
    }
  }

  /// An empty blob is bound as a zero-length blob (a null pointer would bind NULL).
  @inline(__always) private static func bind(_ s: SQLiteStatement, _ index: Int32, blob: [UInt8]) {
    blob.withUnsafeBytes { bytes in
      if let base = bytes.baseAddress, bytes.count > 0 {
        _ = sqlite3_bind_blob(s, index, base, Int32(bytes.count), transient)
      } else {
        _ = sqlite3_bind_zeroblob(s, index, 0)
      }
    }
  }

  /// The predictions and feedback events pending as of the last commit, the log's records
  /// counted, without writing (`status`, on a read-only connection).
  static func pendingCounts(_ db: Database) throws -> (predictions: Int, feedback: Int) {
    // A version 3 file (`status` does not migrate) has no log.
    let net = try db.tableExists("journal_log") ? try logCounts(db.cachedStatement(sql: readLogSQL)) : LogCounts()
    let predictions = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM predictions") ?? 0
    let feedback = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM feedback") ?? 0
    return (predictions + net.predictions, feedback + net.feedback)
  }

  func pendingPredictionCount() throws -> Int {
    try materialize()
    return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM predictions") ?? 0
  }

  // MARK: ColdTier

  private static func prediction(_ row: Row) -> StoredPrediction {
    StoredPrediction(
      seq: row[0], key: row[1], time: row[2], payload: [UInt8](row[3] as Data),
      datasets: UInt64(bitPattern: row[4]), pending: UInt64(bitPattern: row[5]))
  }

  private static func feedback(_ row: Row) -> StoredFeedback {
    StoredFeedback(
      seq: row[0], key: row[1], type: row[2], time: row[3], lineHash: UInt64(bitPattern: row[4]),
      dedupe: row[5], fields: [UInt8](row[6] as Data))
  }

  func prediction(key: String) throws -> StoredPrediction? {
    try materialize()
    let statement = try db.cachedStatement(
      sql: """
        SELECT p.seq, p.key, p.time, p.payload, p.datasets, p.pending
        FROM prediction_keys k CROSS JOIN predictions p ON p.seq = k.seq WHERE k.hash = ? AND p.key = ?
        """)
    return try Row.fetchOne(statement, arguments: [Self.keyHash(key), key]).map(Self.prediction)
  }

  func prediction(seq: Int64) throws -> StoredPrediction? {
    try materialize()
    let statement = try db.cachedStatement(
      sql: "SELECT seq, key, time, payload, datasets, pending FROM predictions WHERE seq = ?")
    return try Row.fetchOne(statement, arguments: [seq]).map(Self.prediction)
  }

  func feedback(key: String) throws -> [StoredFeedback] {
    try materialize()
    let statement = try db.cachedStatement(
      sql: "SELECT seq, key, type, time, line_hash, dedupe, fields FROM feedback WHERE key_hash = ? AND key = ?")
    return try Row.fetchAll(statement, arguments: [Self.keyHash(key), key]).map(Self.feedback)
  }

  /// The feedback of many keys: of their hashes in order (the index is read in order), up to
  /// 512 per query, that of these keys.
  func feedback(keys: [String]) throws -> [StoredFeedback] {
    try materialize()
    let hashes = Set(keys.map(Self.keyHash)).sorted()
    let wanted = Set(keys)
    return try inChunks(
      of: hashes, "SELECT seq, key, type, time, line_hash, dedupe, fields FROM feedback WHERE key_hash IN"
    ).map(Self.feedback).filter { wanted.contains($0.key) }
  }

  func finished(keys: [String]) throws -> [FinishedKey] {
    try materialize()
    return try inChunks(of: keys, "SELECT key, time, expires_at FROM finished WHERE key IN").map {
      FinishedKey(key: $0[0], time: $0[1], expiresAt: $0[2])
    }
  }

  /// Runs `select … IN (?, …)` over the keys, up to 512 per query. A query takes a power of
  /// two of keys (the last one repeated to fill it), so a few cached statements serve all.
  private func inChunks<Key: DatabaseValueConvertible>(of keys: [Key], _ select: String) throws -> [Row] {
    var rows: [Row] = []
    var start = 0
    while start < keys.count {
      let count = min(keys.count - start, 512)
      var size = 1
      while size < count { size *= 2 }
      var chunk = Array(keys[start..<(start + count)])
      chunk += Array(repeating: chunk[count - 1], count: size - count)
      let placeholders = Array(repeating: "?", count: size).joined(separator: ",")
      let statement = try db.cachedStatement(sql: "\(select) (\(placeholders))")
      rows += try Row.fetchAll(statement, arguments: StatementArguments(chunk))
      start += count
    }
    return rows
  }

  /// Due rows are the pending bits of the stored predictions: dataset `d`'s row of a
  /// prediction is due at `time + offsets[d]`, and rows are ordered by (finalizeAt, seq,
  /// dataset). Per dataset, the rows after the cursor are the rest of the cursor's time (by
  /// seq), then the later times: two ranges of the `(time, seq)` index. (One condition
  /// `time > ? OR (time = ? AND seq > ?)` would be read from the start of the cursor's time,
  /// over every row before the cursor at that time: quadratic in the rows sharing a time.)
  func dueRows(after cursor: DueRow, through: Int64, limit: Int, offsets: [Int64]) throws -> [DuePrediction] {
    try materialize()
    let sameTime = try db.cachedStatement(
      sql: """
        SELECT seq, key, time, payload, datasets, pending FROM predictions
        WHERE time = ? AND seq >= ? AND (pending >> ?) & 1 = 1
        ORDER BY seq LIMIT ?
        """)
    let later = try db.cachedStatement(
      sql: """
        SELECT seq, key, time, payload, datasets, pending FROM predictions
        WHERE time > ? AND time <= ? AND (pending >> ?) & 1 = 1
        ORDER BY time, seq LIMIT ?
        """)
    var rows: [DuePrediction] = []
    for (d, offset) in offsets.enumerated() {
      let start = Self.start(after: cursor, dataset: d, offset: offset)
      let last = Self.before(through, offset)
      var count = 0
      func read(_ statement: Statement, _ arguments: StatementArguments) throws {
        let found = try Row.fetchCursor(statement, arguments: arguments)
        while let row = try found.next() {
          let prediction = Self.prediction(row)
          rows.append(
            DuePrediction(
              row: DueRow(finalizeAt: prediction.time &+ offset, seq: prediction.seq, dataset: d),
              prediction: prediction))
          count += 1
        }
      }
      if let firstSeq = start.firstSeq, start.time <= last {
        try read(sameTime, [start.time, firstSeq, d, limit])
      }
      if count < limit { try read(later, [start.time, last, d, limit - count]) }
    }
    rows.sort { $0.row < $1.row }
    return Array(rows.prefix(limit))
  }

  /// Where dataset `d`'s rows after the cursor begin: at `time` from `firstSeq` on (nil: none
  /// at that time), then every later time. (`Int64.min`s where the cursor lies before every time.)
  private static func start(after cursor: DueRow, dataset d: Int, offset: Int64) -> (time: Int64, firstSeq: Int64?) {
    let (time, overflow) = cursor.finalizeAt.subtractingReportingOverflow(offset)
    if overflow { return (.min, .min) }
    // At the cursor's finalizeAt and seq, the datasets after the cursor's come after it.
    if d > cursor.dataset { return (time, cursor.seq) }
    return (time, cursor.seq == .max ? nil : cursor.seq + 1)
  }

  /// `time - offset`, or `Int64.min` where that lies before every time.
  private static func before(_ time: Int64, _ offset: Int64) -> Int64 {
    let (difference, overflow) = time.subtractingReportingOverflow(offset)
    return overflow ? .min : difference
  }

  func earliestDue(after cursor: DueRow, offsets: [Int64]) throws -> Int64? {
    try materialize()
    let sameTime = try db.cachedStatement(
      sql: "SELECT EXISTS (SELECT 1 FROM predictions WHERE time = ? AND seq >= ? AND (pending >> ?) & 1 = 1)")
    let later = try db.cachedStatement(
      sql: "SELECT MIN(time) FROM predictions WHERE time > ? AND (pending >> ?) & 1 = 1")
    var earliest: Int64?
    for (d, offset) in offsets.enumerated() {
      let start = Self.start(after: cursor, dataset: d, offset: offset)
      if let firstSeq = start.firstSeq, try Bool.fetchOne(sameTime, arguments: [start.time, firstSeq, d]) == true {
        earliest = min(earliest ?? .max, start.time &+ offset)
      } else if let time = try Int64.fetchOne(later, arguments: [start.time, d]) {
        earliest = min(earliest ?? .max, time &+ offset)
      }
    }
    return earliest
  }

  func finished(key: String) throws -> FinishedKey? {
    try materialize()
    return try Row.fetchOne(
      db.cachedStatement(sql: "SELECT key, time, expires_at FROM finished WHERE key = ?"), arguments: [key]
    ).map { FinishedKey(key: $0[0], time: $0[1], expiresAt: $0[2]) }
  }

  func unclaimedFeedback() throws -> [StoredFeedback] {
    try materialize()
    return try Row.fetchAll(
      db,
      sql: """
        SELECT f.seq, f.key, f.type, f.time, f.line_hash, f.dedupe, f.fields FROM feedback f
        WHERE NOT EXISTS (
          SELECT 1 FROM prediction_keys k CROSS JOIN predictions p ON p.seq = k.seq
          WHERE k.hash = f.key_hash AND p.key = f.key)
        """
    ).map(Self.feedback)
  }

  func hasState() throws -> Bool {
    try materialize()
    return try Bool.fetchOne(
      db,
      sql: """
        SELECT EXISTS (SELECT 1 FROM predictions) OR EXISTS (SELECT 1 FROM feedback)
          OR EXISTS (SELECT 1 FROM finished)
        """) ?? false
  }

  func forEachKey(_ body: (String) throws -> Void) throws {
    try materialize()
    // No UNION: it would collect every key to drop repeats, which the filter does not mind.
    for table in ["predictions", "feedback", "finished"] {
      let keys = try String.fetchCursor(db, sql: "SELECT key FROM \(table)")
      while let key = try keys.next() { try body(key) }
    }
  }

  func keyCountEstimate() throws -> Int {
    try materialize()
    return try Int.fetchOne(
      db,
      sql:
        "SELECT (SELECT COUNT(*) FROM predictions) + (SELECT COUNT(*) FROM feedback) + (SELECT COUNT(*) FROM finished)"
    ) ?? 0
  }

  // MARK: Checkpoint data

  func meta(_ name: String) throws -> Data? {
    try join()
    return try Data.fetchOne(db.cachedStatement(sql: "SELECT value FROM meta WHERE name = ?"), arguments: [name])
  }

  func setMeta(_ name: String, _ value: Data) throws {
    try join()
    try db.cachedStatement(sql: "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)")
      .execute(arguments: [name, value])
  }

  func fileRecord(source: String, fingerprint: String) throws -> FileRecord? {
    try join()
    let statement = try db.cachedStatement(
      sql: "SELECT path, offset, finished, quarantined FROM files WHERE source = ? AND fingerprint = ?")
    return try Row.fetchOne(statement, arguments: [source, fingerprint]).map {
      FileRecord(
        source: source, fingerprint: fingerprint, path: $0[0], offset: $0[1], finished: $0[2], quarantined: $0[3])
    }
  }

  func saveFile(_ record: FileRecord) throws {
    try join()
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
    try join()
    return try Row.fetchAll(
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
