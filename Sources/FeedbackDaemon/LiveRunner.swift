import FeedbackConfig
import Foundation
import GRDB
import LogTail
import Logging
import Synchronization

/// Health of the live pipeline, shared with `/healthz`, the watchdog and `status`.
public struct PipelineHealth: Sendable {
  public var ready = false
  /// Set while the pipeline cannot write (disk full, permissions) and waits to retry.
  public var failure: String?
  /// Wall-clock time of the last loop iteration that completed (ns since the epoch).
  public var lastProgress: Int64 = 0
  public var rowsWritten = 0
  public var linesRead = 0
  public var lastCommit: Int64 = 0
}

/// Options of `feedbackd run` that tests and operators tune.
public struct LiveOptions: Sendable {
  /// How long to sleep when no source has new data.
  public var pollInterval: Duration = .milliseconds(200)
  /// How often read positions, join state and segments are committed.
  public var commitInterval: Duration = .seconds(1)
  /// How long a rotated file must stay unchanged before it is finished.
  public var rotateWait: Duration = .seconds(5)
  public init() {}
}

/// The live daemon's pipeline loop, on a thread of its own (the engine, SQLite and file I/O
/// are synchronous), stopped and reloaded through flags.
///
/// Any failure to write (disk full, permissions) abandons the in-memory state and restarts from
/// the last commit after a pause: the same recovery as after a crash, so nothing is lost or
/// doubled, and work resumes by itself when the cause goes away.
public final class LiveRunner: Sendable {
  struct Control {
    var stop = false
    var reload = false
    var config: FeedbackConfig.Configuration
  }

  let configPath: String?
  let options: LiveOptions
  let logger: Logger
  let notifier: SystemdNotifier
  private let control: Mutex<Control>
  public let health = Mutex(PipelineHealth())

  public init(
    config: FeedbackConfig.Configuration, configPath: String?, options: LiveOptions = LiveOptions(), logger: Logger,
    notifier: SystemdNotifier = SystemdNotifier()
  ) {
    self.configPath = configPath
    self.options = options
    self.logger = logger
    self.notifier = notifier
    control = Mutex(Control(config: config))
  }

  public func requestStop() {
    control.withLock { $0.stop = true }
  }

  /// SIGHUP: re-read the configuration file and follow its sources' new paths.
  public func requestReload() {
    control.withLock { $0.reload = true }
  }

  private var stopRequested: Bool { control.withLock { $0.stop } }

  static func wallNow() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
  }

  /// Runs until `requestStop`, then drains, commits and returns.
  public func run() {
    var backoff = Duration.seconds(1)
    while !stopRequested {
      do {
        try runPipeline()
        return
      } catch {
        let message = "\(error)"
        health.withLock { $0.failure = message }
        logger.error("pipeline failed; retrying from the last commit", metadata: ["error": "\(message)"])
        notifier.notify("STATUS=failing: \(message)")
        sleepUnlessStopped(backoff)
        backoff = min(backoff * 2, .seconds(30))
      }
    }
  }

  private func sleepUnlessStopped(_ duration: Duration) {
    let end = ContinuousClock.now + duration
    while !stopRequested && ContinuousClock.now < end {
      Thread.sleep(forTimeInterval: 0.05)
    }
  }

  private func runPipeline() throws {
    let config = control.withLock { $0.config }
    let queue = try StateDatabase.open(stateDir: config.stateDir)
    try StateDatabase.run(queue) { db in try loop(db: db, config: config) }
  }

  private func loop(db: Database, config: FeedbackConfig.Configuration) throws {
    do {
      let pipeline = try Pipeline(config: config, db: db, logger: logger)
      defer { pipeline.close() }
      pipeline.ageClockKind = .wall
      let rotateWait =
        Int64(options.rotateWait.components.seconds) * 1_000_000_000
        + options.rotateWait.components.attoseconds / 1_000_000_000
      var feeds = config.sources.indices.map {
        SourceFeed(index: $0, pipeline: pipeline, live: true, rotateWait: rotateWait)
      }
      var lastData = Array(repeating: LiveRunner.wallNow(), count: feeds.count)
      var watcher = Self.watch(feeds)
      // The first commit comes at the first round: rows are written on the writers' threads,
      // and a write that still fails after a restart must surface (at the commit) before the
      // watchdog is fed.
      var lastCommit = ContinuousClock.now - options.commitInterval
      var lastStatus = ContinuousClock.now - .seconds(60)
      var lastWatchdog = ContinuousClock.now - .seconds(60)
      health.withLock { $0.ready = true }
      notifier.notify("READY=1\nSTATUS=tailing \(config.sources.count) source(s)")
      logger.notice(
        "started",
        metadata: [
          "version": "\(FeedbackdVersion.current)", "sources": "\(config.sources.map(\.name))",
          "state_dir": "\(config.stateDir)",
        ])

      while !stopRequested {
        if control.withLock({
          let r = $0.reload; $0.reload = false; return r
        }) {
          feeds = reloadSources(pipeline: pipeline, feeds: feeds, rotateWait: rotateWait)
          watcher = Self.watch(feeds)
        }
        // What the directories reported since the last round (without waiting): a listing is
        // made again only when a name changed (or after `relistInterval`).
        watcher.wait(timeoutMilliseconds: 0)
        if watcher.takeNamesChanged() {
          for feed in feeds { feed.tailer.namesMayHaveChanged() }
        }
        let now = LiveRunner.wallNow()
        let lines = try pollOnce(pipeline: pipeline, feeds: feeds, lastData: &lastData, now: now)
        try pipeline.advanceOutputs()
        if ContinuousClock.now - lastCommit >= options.commitInterval || pipeline.stateOverBudget {
          try pipeline.commit()
          lastCommit = ContinuousClock.now
          publishHealth(pipeline)
        }
        if let interval = notifier.watchdogInterval, ContinuousClock.now - lastWatchdog >= interval {
          notifier.notify("WATCHDOG=1")
          lastWatchdog = ContinuousClock.now
        }
        if ContinuousClock.now - lastStatus >= .seconds(5) {
          notifier.notify("STATUS=\(statusLine(pipeline))")
          lastStatus = ContinuousClock.now
        }
        if lines == 0 {
          // Idle: wake on an inotify hint from the logs' directories, or at the next tick.
          let milliseconds =
            options.pollInterval.components.seconds * 1000
            + options.pollInterval.components.attoseconds / 1_000_000_000_000_000
          watcher.wait(timeoutMilliseconds: Int32(milliseconds))
        }
      }

      notifier.notify("STOPPING=1")
      logger.notice("stopping: draining and committing")
      // Drain what is already in the files, within bounds, then publish everything.
      let drainEnd = ContinuousClock.now + .seconds(10)
      while ContinuousClock.now < drainEnd {
        if try pollOnce(pipeline: pipeline, feeds: feeds, lastData: &lastData, now: LiveRunner.wallNow()) == 0 {
          break
        }
      }
      try pipeline.sealAll()
      try pipeline.commit()
      publishHealth(pipeline)
      logger.notice("stopped", metadata: ["status": "\(statusLine(pipeline))"])
    }
  }

  /// Watches the sources' directories; their tailers then reuse a listing until the watcher
  /// reports a name change (`SourceTailer.reusesListing`).
  private static func watch(_ feeds: [SourceFeed]) -> DirectoryWatcher {
    let watcher = DirectoryWatcher(patterns: feeds.flatMap { $0.tailer.patterns })
    for feed in feeds { feed.tailer.reusesListing = true }
    return watcher
  }

  /// Reads from every source once (the one furthest behind in event time first) and lets
  /// sources that have been quiet for `idle_timeout` stop holding the watermark back.
  private func pollOnce(pipeline: Pipeline, feeds: [SourceFeed], lastData: inout [Int64], now: Int64) throws -> Int {
    let order = feeds.indices.sorted {
      (pipeline.engine.sourceMaxTime[$0] ?? .min, $0) < (pipeline.engine.sourceMaxTime[$1] ?? .min, $1)
    }
    var total = 0
    for i in order {
      let n = try feeds[i].tailer.poll(budget: 16_384, now: now)
      total += n
      if n > 0 { lastData[i] = now }
    }
    let idleTimeout = pipeline.config.watermark.idleTimeout
    var anyActive = false
    for i in feeds.indices {
      let active = now - lastData[i] < idleTimeout
      anyActive = anyActive || active
      try pipeline.betweenLines { try $0.setSourceActive(i, active) }
    }
    // Nothing is being written anywhere: wall-clock time moves the watermark.
    if !anyActive { try pipeline.betweenLines { try $0.advance(to: now - pipeline.config.watermark.maxOutOfOrder) } }
    return total
  }

  private func reloadSources(pipeline: Pipeline, feeds: [SourceFeed], rotateWait: Int64) -> [SourceFeed] {
    guard let configPath else { return feeds }
    do {
      let fresh = try FeedbackConfig.Configuration.load(path: configPath)
      var result = feeds
      for (i, source) in pipeline.config.sources.enumerated() {
        guard let updated = fresh.sources.first(where: { $0.name == source.name }) else { continue }
        if updated.paths != feeds[i].tailer.patterns {
          result[i] = SourceFeed(
            index: i, pipeline: pipeline, live: true, rotateWait: rotateWait, paths: updated.paths)
          logger.notice("source paths reloaded", metadata: ["source": "\(source.name)", "paths": "\(updated.paths)"])
        }
      }
      return result
    } catch {
      logger.error("reload failed; keeping the running configuration", metadata: ["error": "\(error)"])
      return feeds
    }
  }

  private func publishHealth(_ pipeline: Pipeline) {
    let rows = pipeline.engine.counters.rows.reduce(0, +)
    let lines = pipeline.sourceCounters.reduce(0) { $0 + $1.lines }
    health.withLock {
      // A commit went through: whatever stopped writing before is gone.
      $0.failure = nil
      $0.lastProgress = LiveRunner.wallNow()
      $0.lastCommit = $0.lastProgress
      $0.rowsWritten = rows
      $0.linesRead = lines
    }
  }

  private func statusLine(_ pipeline: Pipeline) -> String {
    let rows = pipeline.engine.counters.rows.reduce(0, +)
    let lines = pipeline.sourceCounters.reduce(0) { $0 + $1.lines }
    let watermark = pipeline.engine.watermark
    let lag = watermark == .min ? "n/a" : "\((LiveRunner.wallNow() - watermark) / 1_000_000_000)s"
    return "lines \(lines), rows \(rows), pending \(pipeline.state.pendingPredictionCount()), lag \(lag)"
  }
}
