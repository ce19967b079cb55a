import Dataset
import FeedbackConfig
import Foundation
import Labeling

/// What a replay did, printed at its end.
public struct ReplaySummary: Sendable {
  public var filesRead = 0
  public var filesSkipped = 0
  public var filesQuarantined = 0
  public var lines = 0
  public var bytes: Int64 = 0
  public var predictions = 0
  public var feedback: [(String, Int)] = []
  public var ignored = 0
  public var missingKey = 0
  public var duplicatePredictions = 0
  public var rows: [(String, Int)] = []
  public var rejects: [(String, Int)] = []
  /// Valid lines without events (CloudWatch control messages, bulk deletes and updates).
  public var skipped: [(String, Int)] = []
  public var orphans: [(String, Int)] = []
  public var lateFeedback: [(String, Int)] = []
  public var latePredictions = 0
  public var pendingPredictions = 0
  public var seconds: Double = 0
  public var peakStateBytes = 0
  public var stateMemory = 0
  public var evictions = 0
  /// Lines whose scan was done ahead, on their file's read-ahead thread.
  public var linesScannedAhead = 0
  /// How often and how long the engine's thread waited for the read-ahead threads (input),
  /// and for the dataset writers' threads: time it was not joining.
  public var waitedForInput: (count: Int, seconds: Double) = (0, 0)
  public var waitedForWriters: (count: Int, seconds: Double) = (0, 0)
  /// Checkpoints committed (the engine's thread waits for each), their time in all and the
  /// longest one's.
  public var commits: (count: Int, seconds: Double, longest: Double) = (0, 0, 0)
  /// Commits whose SQL ran on a thread of its own while lines went on (`Pipeline.commit`), and
  /// how many of them something had to wait for.
  public var backgroundCommits: (count: Int, waitedFor: Int) = (0, 0)

  init(pipeline: Pipeline, elapsed: Duration, pending: Int) {
    linesScannedAhead = pipeline.linesScannedAhead
    for c in pipeline.sourceCounters {
      filesRead += c.filesRead
      filesSkipped += c.filesSkipped
      filesQuarantined += c.filesQuarantined
      lines += c.lines
      bytes += c.bytes
    }
    var rejectTotals: [String: Int] = [:]
    for c in pipeline.sourceCounters {
      for (reason, n) in c.rejects { rejectTotals[reason, default: 0] += n }
    }
    let counters = pipeline.engine.counters
    let rejectedMissingKey = counters.missingKey
    if rejectedMissingKey > 0 { rejectTotals["missing_key"] = rejectedMissingKey }
    rejects = rejectTotals.sorted { $0.key < $1.key }
    var skippedTotals: [String: Int] = [:]
    for c in pipeline.sourceCounters {
      for (reason, n) in c.skipped { skippedTotals[reason, default: 0] += n }
    }
    skipped = skippedTotals.sorted { $0.key < $1.key }
    let types = pipeline.rules.feedbackTypes.map(\.name)
    predictions = counters.predictions
    feedback = Array(zip(types, counters.feedback))
    ignored = counters.ignored
    missingKey = counters.missingKey
    duplicatePredictions = counters.duplicatePredictions
    rows = Array(zip(pipeline.config.datasets.map(\.name), counters.rows))
    orphans = Array(zip(types, counters.orphans))
    lateFeedback = Array(zip(types, counters.lateFeedback))
    latePredictions = counters.latePredictions
    pendingPredictions = pending
    seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    peakStateBytes = pipeline.peakStateBytes
    stateMemory = pipeline.config.stateMemory
    evictions = pipeline.state.evictions
    waitedForInput = pipeline.waitedForInput
    waitedForWriters = pipeline.waitedForWriters
    commits = pipeline.commits
    backgroundCommits = (pipeline.store.backgroundWrites, pipeline.store.backgroundWritesWaitedFor)
  }

  public var text: String {
    func list(_ items: [(String, Int)]) -> String {
      items.isEmpty ? "none" : items.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
    }
    let mb = Double(bytes) / 1e6
    func mib(_ bytes: Int) -> String { String(format: "%.1f", Double(bytes) / 1_048_576) }
    let rate = seconds > 0 ? mb / seconds : 0
    func wait(_ w: (count: Int, seconds: Double)) -> String {
      "\(String(format: "%.2f", w.seconds)) s (\(w.count) times)"
    }
    return """
      files       \(filesRead) read, \(filesSkipped) already read, \(filesQuarantined) quarantined
      lines       \(lines) (\(String(format: "%.1f", mb)) MB decompressed)
      events      prediction \(predictions), \(list(feedback)), ignored \(ignored)
      duplicates  \(duplicatePredictions) predictions
      rows        \(list(rows))
      pending     \(pendingPredictions) predictions (windows still open)
      state       peak \(mib(peakStateBytes)) MiB in memory at commits (state_memory \(mib(stateMemory)) MiB), \
      evicted to SQLite at \(evictions) commits
      rejects     \(list(rejects))
      skipped     \(list(skipped))
      orphans     \(list(orphans))
      late        \(list(lateFeedback)), prediction \(latePredictions)
      waited      \(wait(waitedForInput)) for input, \(wait(waitedForWriters)) for dataset writers
      commits     \(commits.count) in \(String(format: "%.2f", commits.seconds)) s, the longest \(String(format: "%.2f", commits.longest)) s; \
      \(backgroundCommits.count) with their SQL in the background (\(backgroundCommits.waitedFor) waited for)
      elapsed     \(String(format: "%.2f", seconds)) s, \(String(format: "%.1f", rate)) MB/s
      """
  }
}
