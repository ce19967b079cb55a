import CSQLiteOptions
import FeedbackConfig
import Foundation
import GRDB
import LogFormats
import Logging

/// Options of `feedbackd replay`.
public struct ReplayOptions: Sendable {
  public var flush: Bool
  /// Files or globs to read instead of the configured paths of `source`.
  public var paths: [String]
  public var source: String?
  /// Lines between checkpoints; a fixed count keeps replays deterministic.
  ///
  /// A checkpoint writes the whole pending join state (and deletes what the last one wrote
  /// and has gone since), so its cost grows with the longest window while the work it saves
  /// after a crash is only the lines since the last one: with a 30-minute window on the
  /// benchmark corpus a commit took about 250 ms, and committing every million lines made
  /// replay about 8% slower than every four million (2026-12-01). The state's memory bounds
  /// commit on their own (`Replay.run`), so this only bounds the work redone after a crash:
  /// about 1 GB of typical log lines, a few seconds.
  public static let defaultCommitEveryLines = 4_000_000
  public var commitEveryLines: Int
  /// Scan the line formats' lines ahead, on each file's read-ahead thread; off only to compare
  /// with scanning in line (the output is the same).
  public var scanAhead: Bool
  /// Run the SQL of commits made between batches of lines on a thread of its own
  /// (`Pipeline.commit(inBackground:)`); off only to compare (the output is the same).
  public var commitInBackground: Bool

  public init(
    flush: Bool = false, paths: [String] = [], source: String? = nil,
    commitEveryLines: Int = ReplayOptions.defaultCommitEveryLines,
    scanAhead: Bool = true, commitInBackground: Bool = true
  ) {
    self.flush = flush
    self.paths = paths
    self.source = source
    self.commitEveryLines = commitEveryLines
    self.scanAhead = scanAhead
    self.commitInBackground = commitInBackground
  }
}

/// Replays historical logs into the datasets, then stops (DESIGN.md §4.8).
public enum Replay {
  public static func run(
    config: FeedbackConfig.Configuration, options: ReplayOptions, logger: Logger
  ) throws -> ReplaySummary {
    var config = config
    if !options.paths.isEmpty {
      let target: Int
      if let name = options.source {
        guard let i = config.sources.firstIndex(where: { $0.name == name }) else {
          throw DaemonError.usage(
            "--source \(name): no such source (have: \(config.sources.map(\.name).joined(separator: ", ")))")
        }
        target = i
      } else {
        guard config.sources.count == 1 else {
          throw DaemonError.usage("PATH arguments need --source NAME when the configuration has several sources")
        }
        target = 0
      }
      config.sources[target].paths = options.paths.map {
        $0.hasPrefix("/") ? $0 : FileManager.default.currentDirectoryPath + "/" + $0
      }
      for i in config.sources.indices where i != target { config.sources[i].paths = [] }
    }
    let start = ContinuousClock.now
    let lock = try StateDirLock.acquire(stateDir: config.stateDir)
    defer { withExtendedLifetime(lock) {} }
    let queue = try StateDatabase.open(stateDir: config.stateDir)
    return try StateDatabase.run(queue) { db in try replay(db: db) }

    func replay(db: Database) throws -> ReplaySummary {
      let pipeline = try Pipeline(config: config, db: db, logger: logger)
      defer { pipeline.close() }
      pipeline.ageClockKind = .watermark
      pipeline.recordsRowMetrics = false
      pipeline.scanAhead = options.scanAhead
      let feeds = config.sources.indices.map { SourceFeed(index: $0, pipeline: pipeline, live: false) }
      var active = Array(feeds.indices)
      while !active.isEmpty {
        // Read from the source furthest behind in event time, so the watermark (the minimum
        // over sources) advances and no source's events turn late because another ran ahead.
        let next = active.min { a, b in
          (pipeline.engine.sourceMaxTime[a] ?? .min, a) < (pipeline.engine.sourceMaxTime[b] ?? .min, b)
        }!
        if try feeds[next].tailer.poll(budget: 4096, now: 0) == 0 {
          active.removeAll { $0 == next }
          try pipeline.betweenLines { try $0.setSourceActive(next, false) }
        }
        try pipeline.advanceOutputs()
        try pipeline.finishCommit(wait: false)
        // Also commit when the state reaches its memory bounds: only committed state can be
        // evicted. These depend on the input alone, so output stays deterministic.
        if pipeline.linesSinceCommit >= options.commitEveryLines || pipeline.state.dirtyCount >= config.maxInMemory
          || pipeline.stateOverBudget
        {
          // The last commit (below) waits for the one before and for publishing, and throws
          // what went wrong in them.
          try pipeline.commit(inBackground: options.commitInBackground)
        }
      }
      if options.flush { try pipeline.flush() }
      try pipeline.sealAll()
      try pipeline.commit()
      let elapsed = ContinuousClock.now - start
      return ReplaySummary(pipeline: pipeline, elapsed: elapsed, pending: pipeline.state.pendingPredictionCount())
    }
  }
}

public enum DaemonError: Error, CustomStringConvertible {
  case usage(String)
  public var description: String {
    switch self {
    case .usage(let message): message
    }
  }
}

/// Opens `state_dir/state.sqlite` in WAL mode, so `status` can read while a writer runs.
enum StateDatabase {
  /// Runs the pipeline on the queue's connection inside `withPipelineTransaction`.
  static func run<T>(_ queue: DatabaseQueue, _ body: (Database) throws -> T) throws -> T {
    try queue.inDatabase { db in try withPipelineTransaction(db) { try body(db) } }
  }

  /// Runs `body` inside a transaction the pipeline commits and reopens at each checkpoint; on
  /// an error whatever was not committed is rolled back (GRDB requires no transaction to be
  /// left open), so the next start recovers from the last commit.
  static func withPipelineTransaction<T>(_ db: Database, _ body: () throws -> T) throws -> T {
    try db.beginTransaction()
    do {
      let result = try body()
      if db.isInsideTransaction { try db.commit() }
      return result
    } catch {
      if db.isInsideTransaction { try? db.rollback() }
      throw error
    }
  }

  static func open(stateDir: String) throws -> DatabaseQueue {
    try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
    var configuration = GRDB.Configuration()
    configuration.journalMode = .wal
    configuration.busyMode = .timeout(10)
    let queue = try DatabaseQueue(path: stateDir + "/state.sqlite", configuration: configuration)
    try queue.inDatabase { db in
      try db.execute(sql: "PRAGMA synchronous = FULL")
      // Checkpoint the WAL into the database every 64 MiB of it instead of every 4 MiB (1000
      // pages): a page rewritten by several commits in between is copied once. (A long
      // window's commits each rewrite much of the key index: its commits took 6.9 s of a
      // week-window replay with the default, 4.2 s with this.) The WAL file is truncated back
      // to 64 MiB after a checkpoint that found it larger.
      try db.execute(sql: "PRAGMA wal_autocheckpoint = 16384")
      try db.execute(sql: "PRAGMA journal_size_limit = \(64 << 20)")
      // Deleted rows are zeroed on the pages a commit writes anyway, but freed pages are not
      // written again as zeros. Debian builds SQLite with `SECURE_DELETE` on (upstream's default
      // is off), and there the last commit of a flushed replay, which empties every table,
      // wrote each page of the file once more into the WAL, 903 pages (3.7 MB) on the
      // benchmark, and the commit's fdatasync waited for them with both cores idle. `FAST`
      // keeps deleted keys and payloads out of the B-tree pages on every platform, and costs
      // no I/O of its own.
      try db.execute(sql: "PRAGMA secure_delete = FAST")
      // Closing leaves the WAL to the next start instead of checkpointing it (copying its
      // pages into the database file, fsyncing that and deleting the log): every commit is
      // already durable in the WAL, and the checkpoint only made the exit wait, at the end of
      // a replay with both cores idle (about 25 ms on the benchmark: a 16 ms fdatasync of the
      // database file and 7 ms to unlink a 7 MB log). The next connection reads the WAL;
      // checkpoints still run while the daemon works (`wal_autocheckpoint`).
      let code = feedbackd_sqlite_keep_wal_on_close(db.sqliteConnection)
      guard code == SQLITE_OK else { throw DatabaseError(resultCode: ResultCode(rawValue: code)) }
      try SQLiteStateStore.migrate(db)
    }
    return queue
  }
}
