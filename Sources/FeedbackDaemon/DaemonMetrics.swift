import CoreMetrics
import Labeling
import Metrics
import Monitoring

/// Every metric feedbackd exports, named in one place.
///
/// The pipeline counts in plain integers on its hot path; at each commit the differences since
/// the last publication are added to the swift-metrics counters (Prometheus through
/// swift-prometheus in `feedbackd run`; no-ops where no backend is bootstrapped).
final class DaemonMetrics {
  private var lastSources: [SourceCounters]
  private var lastEngine: EngineCounters
  private var lastWaits = Array(repeating: 0.0, count: DaemonMetrics.waitKinds.count)
  private let rules: Rules
  private let sourceNames: [String]
  private let datasetNames: [String]
  private let commitTimer = Metrics.Timer(label: "feedbackd_commit_duration_seconds")
  private let pending = Gauge(label: "feedbackd_pending_predictions")
  private let watermark = Gauge(label: "feedbackd_watermark_seconds")
  private let lag = Gauge(label: "feedbackd_watermark_lag_seconds")
  /// Per dataset, the delay recorder of each of its rows' labels, in row order.
  private let rowDelays: [[Recorder]]

  init(rules: Rules, sourceNames: [String], datasetNames: [String]) {
    self.rules = rules
    self.sourceNames = sourceNames
    self.datasetNames = datasetNames
    lastSources = Array(repeating: SourceCounters(), count: sourceNames.count)
    lastEngine = EngineCounters(
      feedbackTypes: rules.feedbackTypes.count, datasets: rules.datasets.count, sources: sourceNames.count)
    let labelDelays = rules.labels.map {
      Recorder(label: "feedbackd_label_delay_seconds", dimensions: [("label", $0.name)], aggregate: true)
    }
    rowDelays = rules.datasets.map { dataset in dataset.labels.map { labelDelays[$0] } }
    // Which build is running (a gauge at 1, Prometheus' usual `_info` pattern).
    Gauge(label: "feedbackd_build_info", dimensions: [("version", FeedbackdVersion.current)]).record(1)
    // Every series that can be known up front is exported from the start, at zero, so that
    // dashboards and alerts see a 0 rather than nothing.
    let kinds = ["prediction"] + rules.feedbackTypes.map(\.name) + ["ignored", "missing_key"]
    for source in sourceNames {
      Counter(label: "feedbackd_lines_read_total", dimensions: [("source", source)]).increment(by: 0)
      Counter(label: "feedbackd_bytes_read_total", dimensions: [("source", source)]).increment(by: 0)
      Counter(label: "feedbackd_files_truncated_total", dimensions: [("source", source)]).increment(by: 0)
      for kind in kinds {
        Counter(label: "feedbackd_events_total", dimensions: [("source", source), ("kind", kind)]).increment(by: 0)
      }
    }
    for dataset in datasetNames {
      Counter(label: "feedbackd_rows_written_total", dimensions: [("dataset", dataset)]).increment(by: 0)
    }
    for type in rules.feedbackTypes {
      Counter(label: "feedbackd_orphan_feedback_total", dimensions: [("type", type.name)]).increment(by: 0)
      Counter(label: "feedbackd_late_feedback_total", dimensions: [("type", type.name)]).increment(by: 0)
    }
    for on in DaemonMetrics.waitKinds {
      FloatingPointCounter(label: "feedbackd_engine_wait_seconds_total", dimensions: [("on", on)]).increment(by: 0)
    }
    for name in [
      "feedbackd_files_quarantined_total", "feedbackd_late_predictions_total", "feedbackd_duplicate_predictions_total",
    ] {
      Counter(label: name).increment(by: 0)
    }
  }

  /// Time from a prediction to the feedback that set its label, per label with feedback.
  func recordRow(_ row: RowParts) {
    // The delays only for a label with feedback (most rows have none).
    row.forEachLabelTime { i, at in
      guard let at, i < rowDelays[row.dataset].count else { return }
      rowDelays[row.dataset][i].record(Double(at - row.predictedAt) / 1e9)
    }
  }

  /// What the engine's thread waits on: its files' read-ahead threads, and the dataset
  /// writers' threads (room in their queues, and everything applied at a commit).
  static let waitKinds = ["input", "dataset_writer"]

  /// Seconds the engine's thread has waited so far, in `waitKinds` order (totals: the
  /// difference since the last call is added).
  func recordWaits(_ totals: [Double]) {
    for (i, total) in totals.enumerated() where i < Self.waitKinds.count {
      let delta = total - lastWaits[i]
      guard delta > 0 else { continue }
      FloatingPointCounter(label: "feedbackd_engine_wait_seconds_total", dimensions: [("on", Self.waitKinds[i])])
        .increment(by: delta)
      lastWaits[i] = total
    }
  }

  func recordCommit(nanoseconds: Int64) {
    commitTimer.recordNanoseconds(nanoseconds)
  }

  private static func add(_ label: String, _ dimensions: [(String, String)], _ delta: Int) {
    guard delta > 0 else { return }
    Counter(label: label, dimensions: dimensions).increment(by: delta)
  }

  /// Publishes what changed since the last call.
  func publish(
    sources: [SourceCounters], engine: EngineCounters, pendingPredictions: Int, watermarkNanos: Int64, now: Int64
  ) {
    for (i, (current, last)) in zip(sources, lastSources).enumerated() {
      let source = [("source", sourceNames[i])]
      Self.add("feedbackd_lines_read_total", source, current.lines - last.lines)
      Self.add("feedbackd_bytes_read_total", source, Int(current.bytes - last.bytes))
      Self.add("feedbackd_files_quarantined_total", [], current.filesQuarantined - last.filesQuarantined)
      Self.add("feedbackd_files_truncated_total", source, current.truncations - last.truncations)
      for (reason, count) in current.rejects {
        Self.add(
          "feedbackd_lines_rejected_total", source + [("reason", reason)], count - (last.rejects[reason] ?? 0))
      }
      for (reason, count) in current.skipped {
        Self.add(
          "feedbackd_lines_skipped_total", source + [("reason", reason)], count - (last.skipped[reason] ?? 0))
      }
    }
    let kinds = ["prediction"] + rules.feedbackTypes.map(\.name) + ["ignored", "missing_key"]
    for (i, counts) in engine.eventsBySource.enumerated() where i < sourceNames.count {
      for (k, count) in counts.enumerated() {
        Self.add(
          "feedbackd_events_total", [("source", sourceNames[i]), ("kind", kinds[k])],
          count - lastEngine.eventsBySource[i][k])
      }
    }
    for (d, count) in engine.rows.enumerated() {
      Self.add("feedbackd_rows_written_total", [("dataset", datasetNames[d])], count - lastEngine.rows[d])
    }
    for (t, type) in rules.feedbackTypes.enumerated() {
      Self.add("feedbackd_orphan_feedback_total", [("type", type.name)], engine.orphans[t] - lastEngine.orphans[t])
      Self.add(
        "feedbackd_late_feedback_total", [("type", type.name)], engine.lateFeedback[t] - lastEngine.lateFeedback[t])
    }
    Self.add("feedbackd_late_predictions_total", [], engine.latePredictions - lastEngine.latePredictions)
    Self.add(
      "feedbackd_duplicate_predictions_total", [], engine.duplicatePredictions - lastEngine.duplicatePredictions)
    pending.record(pendingPredictions)
    if watermarkNanos > .min {
      watermark.record(Double(watermarkNanos) / 1e9)
      lag.record(Double(now - watermarkNanos) / 1e9)
    }
    lastSources = sources
    lastEngine = engine
  }
}

// MARK: Monitors

extension DaemonMetrics {
  /// The latest closed window's figures per monitor and slice, and its alerts.
  func recordMonitorWindow(monitor: String, _ window: ClosedWindow) {
    for slice in window.slices {
      let dimensions = [("monitor", monitor), ("slice", slice.slice)]
      let f = slice.figures
      Gauge(label: "feedbackd_monitor_rows", dimensions: dimensions).record(f.rows)
      if let v = f.auc { Gauge(label: "feedbackd_monitor_auc", dimensions: dimensions).record(v) }
      if let v = f.labelRate { Gauge(label: "feedbackd_monitor_label_rate", dimensions: dimensions).record(v) }
      if let v = f.calibration { Gauge(label: "feedbackd_monitor_calibration", dimensions: dimensions).record(v) }
      if let v = f.logLoss { Gauge(label: "feedbackd_monitor_log_loss", dimensions: dimensions).record(v) }
    }
    for alert in window.alerts {
      Counter(
        label: "feedbackd_monitor_alerts_total",
        dimensions: [
          ("monitor", monitor), ("slice", alert.slice), ("metric", alert.metric.rawValue),
          ("kind", alert.kind.rawValue),
        ]
      ).increment()
    }
  }

  /// Exported at zero from the start, like the pipeline's counters.
  func registerMonitor(_ name: String) {
    for metric in Metric.allCases {
      for kind in ["sudden", "gradual"] where kind == "sudden" || metric == .auc {
        Counter(
          label: "feedbackd_monitor_alerts_total",
          dimensions: [
            ("monitor", name), ("slice", MonitorSpec.wholeDataset), ("metric", metric.rawValue), ("kind", kind),
          ]
        ).increment(by: 0)
      }
    }
  }
}
