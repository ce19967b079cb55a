import FeedbackConfig
import Foundation
import Labeling
import LogFormats
import Logging
import Monitoring

/// One configured monitor wired to the pipeline: it reads the score, the label and the slice
/// values of each final row of its dataset, and writes what its closed windows show to
/// `state_dir/monitor/NAME/` (`windows.jsonl`, `alerts.jsonl`), the log and `/metrics`.
///
/// Its state is committed with the checkpoint that covers the rows it counted, and its two
/// files are append logs cut back to their committed lengths on start, so a crash neither
/// loses nor double-counts a row.
final class DatasetMonitor {
  let config: MonitorConfig
  let dataset: Int
  let monitor: Monitor
  private let labelIndex: Int
  private enum Access {
    case element(Int)
    case path(FieldPath)
  }
  private let score: Access
  private let slices: [Access]
  private let windows: AppendLog
  private let alerts: AppendLog
  private let logger: Logger
  private var ranges: [Range<Int>] = []
  /// Closed since the last commit: published to `/metrics` once committed.
  private var unpublished: [ClosedWindow] = []
  /// Rows without a numeric score or label value.
  private(set) var skippedRows: Int64 = 0
  private var record: [UInt8] = []

  let stateKey: String
  let specKey: String
  let windowsLogKey: String
  let alertsLogKey: String

  init(
    config: MonitorConfig, dataset: Int, datasetConfig: DatasetConfig, closeLag: Int64, stateDir: String,
    store: SQLiteStateStore, sideLogs: [String: AppendLog.Position], logger: Logger
  ) throws {
    self.config = config
    self.dataset = dataset
    self.logger = logger
    stateKey = "monitor:" + config.name
    specKey = "monitor-spec:" + config.name
    windowsLogKey = "monitor/\(config.name)/windows"
    alertsLogKey = "monitor/\(config.name)/alerts"
    labelIndex = datasetConfig.labels.firstIndex(of: config.label)!
    func access(_ column: String) -> Access {
      if let columns = datasetConfig.columns {
        return .element(columns.firstIndex { $0.name == column }!)
      }
      return .path(try! FieldPath(parsing: column))  // checked by the configuration
    }
    score = access(config.score)
    slices = config.slices.map(access)
    let spec = MonitorSpec(
      name: config.name, window: config.window, baseline: config.baseline, minRows: config.minRows,
      alpha: config.alpha, closeLag: closeLag, sliceColumns: config.slices, delayLabels: datasetConfig.labels)
    let specText = Self.describe(config, closeLag: closeLag)
    if let saved = try store.meta(stateKey), let savedSpec = try store.meta(specKey),
      String(decoding: savedSpec, as: UTF8.self) == specText
    {
      monitor = try Monitor(spec: spec, state: Array(saved))
    } else {
      if try store.meta(stateKey) != nil {
        logger.notice(
          "monitor configuration changed: its windows and baseline start afresh",
          metadata: ["monitor": "\(config.name)"])
      }
      monitor = Monitor(spec: spec)
    }
    let directory = stateDir + "/monitor/" + config.name
    windows = try AppendLog(
      directory: directory, baseName: "windows", committed: sideLogs[windowsLogKey], fixedName: "windows.jsonl")
    alerts = try AppendLog(
      directory: directory, baseName: "alerts", committed: sideLogs[alertsLogKey], fixedName: "alerts.jsonl")
  }

  /// What the saved state depends on: a different value makes it meaningless.
  static func describe(_ c: MonitorConfig, closeLag: Int64) -> String {
    "\(c.dataset)|\(c.label)|\(c.score)|\(c.slices.joined(separator: ","))|\(c.window)|\(c.baseline)|\(closeLag)"
  }

  // MARK: Rows

  func observe(_ row: LabeledRow) {
    guard labelIndex < row.labels.count, let positive = Self.positive(row.labels[labelIndex].value) else {
      skippedRows += 1
      return
    }
    var scoreValue: JSONValue?
    var sliceValues: [JSONValue?] = []
    switch score {
    case .element:
      row.columnsJSON.withUnsafeBytes { raw in
        guard JSONValue.arrayElements(raw, into: &ranges) else { return }
        func element(_ access: Access) -> JSONValue? {
          guard case .element(let i) = access, i < ranges.count else { return nil }
          return try? JSONValue.parse(UnsafeRawBufferPointer(rebasing: raw[ranges[i]]))
        }
        scoreValue = element(score)
        sliceValues = slices.map(element)
      }
    case .path:
      let object = row.columns
      func value(_ access: Access) -> JSONValue? {
        guard case .path(let p) = access else { return nil }
        return object.value(at: p)
      }
      scoreValue = value(score)
      sliceValues = slices.map(value)
    }
    guard let s = scoreValue?.doubleValue, s.isFinite else {
      skippedRows += 1
      return
    }
    monitor.observe(
      MonitorObservation(
        predictedAt: row.predictedAt, score: s, positive: positive, sliceValues: sliceValues.map(Self.sliceText),
        delays: row.labels.map { $0.at.map { at in at - row.predictedAt } }))
  }

  static func positive(_ value: JSONValue) -> Bool? {
    switch value {
    case .number(let text): Double(text).map { $0 > 0 }
    case .bool(let b): b
    default: nil
    }
  }

  static func sliceText(_ value: JSONValue?) -> String {
    switch value {
    case nil, .null?: "null"
    case .string(let s)?: s
    case .number(let n)?: n
    case .bool(let b)?: b ? "true" : "false"
    case let other?: other.jsonText
    }
  }

  // MARK: Windows

  /// Closes the windows the watermark made final and appends what they show.
  func advance(watermark: Int64) {
    for window in monitor.advance(watermark: watermark) {
      for slice in window.slices { append(slice, of: window) }
      for alert in window.alerts {
        record.removeAll(keepingCapacity: true)
        Self.alertJSON(alert).write(to: &record)
        alerts.append(record)
        logger.warning(
          "model quality alert",
          metadata: [
            "monitor": "\(alert.monitor)", "slice": "\(alert.slice)", "metric": "\(alert.metric.rawValue)",
            "kind": "\(alert.kind.rawValue)", "window": "\(Timestamp.format(alert.windowStart, fractionDigits: 0))",
            "baseline": "\(Self.rounded(alert.baselineValue))", "value": "\(Self.rounded(alert.value))",
          ])
      }
      unpublished.append(window)
    }
  }

  private func append(_ slice: SliceWindow, of window: ClosedWindow) {
    let f = slice.figures
    var members: [JSONMember] = [
      .init(key: "monitor", value: .string(config.name)),
      .init(key: "window_start", value: .string(Timestamp.format(window.start, fractionDigits: 3))),
      .init(key: "window_end", value: .string(Timestamp.format(window.end, fractionDigits: 3))),
      .init(key: "slice", value: .string(slice.slice)),
    ]
    members += Self.figureMembers(f)
    members += [
      .init(key: "auc_se", value: Self.number(f.aucStandardError)),
      .init(key: "auc_error_bound", value: Self.number(f.aucErrorBound)),
      .init(key: "baseline", value: slice.baseline.map { .object(Self.figureMembers($0)) } ?? .null),
      .init(
        key: "verdicts",
        value: .object(slice.verdicts.map { .init(key: $0.metric.rawValue, value: .string($0.verdict.rawValue)) })),
      .init(key: "z", value: .object(slice.verdicts.map { .init(key: $0.metric.rawValue, value: Self.number($0.z)) })),
      .init(key: "cusum", value: Self.number(slice.cusum)),
      .init(key: "truncated", value: .bool(window.truncated)),
    ]
    if !slice.delays.isEmpty {
      let labels = monitor.spec.delayLabels
      members.append(
        .init(
          key: "label_delays",
          value: .object(
            zip(labels, slice.delays).map { label, counts in
              .init(key: label, value: .array(counts.map { .number(String($0)) }))
            })))
    }
    record.removeAll(keepingCapacity: true)
    JSONValue.object(members).write(to: &record)
    windows.append(record)
  }

  static func figureMembers(_ f: SliceFigures) -> [JSONMember] {
    [
      .init(key: "rows", value: .number(String(f.rows))),
      .init(key: "positives", value: .number(String(f.positives))),
      .init(key: "label_rate", value: number(f.labelRate)),
      .init(key: "mean_score", value: number(f.meanScore)),
      .init(key: "calibration", value: number(f.calibration)),
      .init(key: "log_loss", value: number(f.logLoss)),
      .init(key: "auc", value: number(f.auc)),
    ]
  }

  static func alertJSON(_ a: Alert) -> JSONValue {
    .object([
      .init(key: "monitor", value: .string(a.monitor)),
      .init(key: "slice", value: .string(a.slice)),
      .init(key: "metric", value: .string(a.metric.rawValue)),
      .init(key: "kind", value: .string(a.kind.rawValue)),
      .init(key: "window_start", value: .string(Timestamp.format(a.windowStart, fractionDigits: 3))),
      .init(key: "window_end", value: .string(Timestamp.format(a.windowEnd, fractionDigits: 3))),
      .init(key: "baseline_value", value: number(a.baselineValue)),
      .init(key: "value", value: number(a.value)),
      .init(key: a.kind == .sudden ? "z" : "cusum", value: number(a.statistic)),
      .init(key: "since", value: a.since.map { .string(Timestamp.format($0, fractionDigits: 3)) } ?? .null),
    ])
  }

  static func number(_ v: Double?) -> JSONValue {
    guard let v, v.isFinite else { return .null }
    return .number(String(rounded(v)))
  }

  /// Nine significant digits: plenty for a figure, and stable text.
  static func rounded(_ v: Double) -> Double {
    guard v != 0, v.isFinite else { return v }
    let scale = pow(10, 8 - floor(log10(abs(v))))
    return (v * scale).rounded() / scale
  }

  // MARK: Commit

  /// Writes the logs and the state into the open transaction; returns the logs' positions.
  func prepareCommit(store: SQLiteStateStore) throws -> [String: AppendLog.Position] {
    try store.setMeta(stateKey, Data(monitor.encodeState()))
    try store.setMeta(specKey, Data(Self.describe(config, closeLag: monitor.spec.closeLag).utf8))
    return [windowsLogKey: try windows.prepareCommit(), alertsLogKey: try alerts.prepareCommit()]
  }

  /// Publishes the windows the last commit covered.
  func afterCommit(metrics: DaemonMetrics) {
    for window in unpublished { metrics.recordMonitorWindow(monitor: config.name, window) }
    unpublished.removeAll()
  }
}
