import Foundation

/// What a monitor watches and how strict it is.
public struct MonitorSpec: Sendable {
  public var name: String
  /// Nanoseconds of prediction time per window; windows are aligned to the epoch.
  public var window: Int64
  /// Nanoseconds of closed windows before a window that it is compared with.
  public var baseline: Int64
  public var minRows: Int
  /// Per-test two-sided false-alarm rate.
  public var alpha: Double
  /// A window closes when the watermark passes its end plus this (the dataset's longest label
  /// window): its rows are final then.
  public var closeLag: Int64
  public var sliceColumns: [String]
  /// The dataset's labels, for the label delay histograms.
  public var delayLabels: [String]
  /// Minimum effect sizes: smaller changes are never alerts, however significant.
  public var minAUCChange = 0.02
  public var minRelativeLabelRateChange = 0.10
  public var minCalibrationRatio = 1.10
  /// A metric flagged as changed alerts again only after a window within this many standard
  /// errors of its baseline (hysteresis: a changed slice hovering around the threshold does
  /// not alert at every other window).
  public var rearmZ = 2.0
  public var cusumK = 0.5
  public var cusumH = 10.0
  /// Values of one slice column beyond this many go to the slice `column=(other)`, so a
  /// high-cardinality column cannot flood the state and `/metrics`.
  public var maxValuesPerColumn = 64

  public init(
    name: String, window: Int64, baseline: Int64, minRows: Int, alpha: Double, closeLag: Int64,
    sliceColumns: [String], delayLabels: [String] = []
  ) {
    self.name = name
    self.window = window
    self.baseline = baseline
    self.minRows = minRows
    self.alpha = alpha
    self.closeLag = closeLag
    self.sliceColumns = sliceColumns
    self.delayLabels = delayLabels
  }

  /// The baseline is kept in up to ~24 buckets of whole windows, so it holds between
  /// `baseline − bucket` and `baseline` of history without keeping every window.
  public var bucketLength: Int64 {
    max(window, (baseline / 24 + window - 1) / window * window)
  }

  public static let defaultAlpha = 1e-6
  public static let defaultMinRows = 200
  public static let wholeDataset = "all"
}

/// One final row as a monitor sees it.
public struct MonitorObservation: Sendable {
  public var predictedAt: Int64
  public var score: Double
  public var positive: Bool
  /// Per slice column, the value's text.
  public var sliceValues: [String]
  /// Per label of the dataset, nanoseconds from prediction to the label's feedback, if any.
  public var delays: [Int64?]

  public init(predictedAt: Int64, score: Double, positive: Bool, sliceValues: [String], delays: [Int64?] = []) {
    self.predictedAt = predictedAt
    self.score = score
    self.positive = positive
    self.sliceValues = sliceValues
    self.delays = delays
  }
}

public enum Metric: String, Sendable, CaseIterable {
  case auc
  case labelRate = "label_rate"
  case calibration
}

public enum AlertKind: String, Sendable {
  case sudden
  case gradual
}

public enum Verdict: String, Sendable {
  case ok
  case changed
  /// Too few rows in the window or the baseline (or a window cut short by `--flush`).
  case noVerdict = "no_verdict"
}

public struct MetricVerdict: Sendable, Equatable {
  public var metric: Metric
  public var verdict: Verdict
  public var z: Double?
}

/// A slice's figures for one closed window, with its baseline and verdicts.
public struct SliceWindow: Sendable {
  public var slice: String
  public var figures: SliceFigures
  public var delays: [[Int64]]
  public var baseline: SliceFigures?
  public var verdicts: [MetricVerdict]
  /// The AUC CUSUM after this window, when the window was tested.
  public var cusum: Double?
}

public struct Alert: Sendable, Equatable {
  public var monitor: String
  public var slice: String
  public var metric: Metric
  public var kind: AlertKind
  public var windowStart: Int64
  public var windowEnd: Int64
  public var baselineValue: Double
  public var value: Double
  /// Sudden: the test's z. Gradual: the CUSUM.
  public var statistic: Double
  /// Gradual: start of the window where the CUSUM began to climb (the drift's onset).
  public var since: Int64?
}

public struct ClosedWindow: Sendable {
  public var start: Int64
  public var end: Int64
  /// Closed by the end of a `--flush` replay before its rows were final: figures only.
  public var truncated: Bool
  /// The whole dataset first, then slices by name.
  public var slices: [SliceWindow]
  public var alerts: [Alert]
}

/// Per-slice, per-window model quality, tested against a rolling baseline.
///
/// Rows are added as they become final; a window is closed once no row of it can still come,
/// and is then compared with the baseline (sudden changes) and fed to a CUSUM (gradual
/// drift). All of its state round-trips through `encodeState()` so that it is committed with
/// the checkpoint that covers the rows it counted.
public final class Monitor {
  public let spec: MonitorSpec
  /// Windows starting before this are closed; their rows, should any come, are `lateRows`.
  var closedThrough: Int64 = .min
  var lastFiniteWatermark: Int64 = .min
  /// Slice names by id; 0 is the whole dataset.
  var sliceNames: [String] = [MonitorSpec.wholeDataset]
  /// Per slice column, the slice id of each value seen (at most `maxValuesPerColumn`, then
  /// `(other)`).
  var valueIds: [[String: Int]]
  /// Open windows by start: per slice id, what it accumulated.
  var open: [Int64: OpenWindow] = [:]

  final class OpenWindow {
    var slices: [SliceStats]
    init(count: Int) { slices = Array(repeating: SliceStats(), count: count) }
  }

  /// Per slice, closed windows merged into buckets (start → stats).
  var baseline: [String: [Int64: SliceStats]] = [:]
  /// Per slice, the histograms of its baseline buckets added up (kept up to date as buckets
  /// come and go: pooling 24 buckets of thousands of bins at every window would dominate).
  var pooledHistograms: [String: DenseHistogram] = [:]
  var cusums: [String: Cusum] = [:]
  /// `slice|metric` pairs changed and not yet back to normal: alerts fire on the onset only.
  var changed: Set<String> = []
  public internal(set) var lateRows: Int64 = 0
  private let criticalZ: Double

  public init(spec: MonitorSpec) {
    self.spec = spec
    valueIds = Array(repeating: [:], count: spec.sliceColumns.count)
    criticalZ = Statistics.criticalZ(alpha: spec.alpha)
  }

  /// Restores the state `encodeState()` produced.
  public convenience init(spec: MonitorSpec, state: [UInt8]) throws {
    self.init(spec: spec)
    try decodeState(state)
  }

  public var openWindowCount: Int { open.count }

  public func observe(_ o: MonitorObservation) {
    let start = Self.floor(o.predictedAt, spec.window)
    if start < closedThrough {
      lateRows += 1
      return
    }
    let window: OpenWindow
    if let w = open[start] {
      window = w
    } else {
      window = OpenWindow(count: sliceNames.count)
      open[start] = window
    }
    window.slices[0].add(score: o.score, positive: o.positive)
    if !spec.delayLabels.isEmpty { window.slices[0].addDelays(o.delays) }
    for (column, value) in o.sliceValues.enumerated() where column < spec.sliceColumns.count {
      let id = sliceId(column: column, value: value)
      while window.slices.count <= id { window.slices.append(SliceStats()) }
      window.slices[id].add(score: o.score, positive: o.positive)
    }
  }

  private func sliceId(column: Int, value: String) -> Int {
    if let id = valueIds[column][value] { return id }
    let other = "(other)"
    let key = valueIds[column].count < spec.maxValuesPerColumn ? value : other
    if let id = valueIds[column][key] { return id }
    sliceNames.append(spec.sliceColumns[column] + "=" + key)
    valueIds[column][key] = sliceNames.count - 1
    return sliceNames.count - 1
  }

  static func floor(_ t: Int64, _ step: Int64) -> Int64 {
    let q = t / step
    return (t % step < 0 ? q - 1 : q) * step
  }

  /// Closes every window whose rows are all final at `watermark`, oldest first. `Int64.max`
  /// (the end of a `--flush` replay) closes all, those not yet due as truncated.
  public func advance(watermark: Int64) -> [ClosedWindow] {
    if watermark < .max { lastFiniteWatermark = max(lastFiniteWatermark, watermark) }
    let due = open.keys.filter { watermark == .max || $0 &+ spec.window &+ spec.closeLag <= watermark }.sorted()
    return due.map { start in
      close(start, truncated: start &+ spec.window &+ spec.closeLag > lastFiniteWatermark)
    }
  }

  private func close(_ start: Int64, truncated: Bool) -> ClosedWindow {
    let stats = open.removeValue(forKey: start)?.slices ?? []
    let end = start + spec.window
    var result = ClosedWindow(start: start, end: end, truncated: truncated, slices: [], alerts: [])
    let ids = stats.indices.filter { stats[$0].rows > 0 }.sorted { a, b in
      (a == 0 ? 0 : 1, sliceNames[a]) < (b == 0 ? 0 : 1, sliceNames[b])
    }
    for id in ids {
      let name = sliceNames[id]
      let stats = stats[id]
      let figures = stats.figures
      var buckets = baseline.removeValue(forKey: name) ?? [:]
      var pooledHistogram = pooledHistograms.removeValue(forKey: name) ?? DenseHistogram()
      for key in buckets.keys.sorted() where key + spec.bucketLength <= start - spec.baseline {
        pooledHistogram.add(buckets.removeValue(forKey: key)!.histogram, sign: -1)
      }
      var pooled = SliceStats()
      for key in buckets.keys.sorted() { pooled.mergeScalars(buckets[key]!) }
      let base = pooled.rows > 0 ? SliceFigures(pooled, auc: pooledHistogram.auc()) : nil
      var window = SliceWindow(
        slice: name, figures: figures, delays: stats.delays, baseline: base, verdicts: [], cusum: nil)
      let testable =
        !truncated && figures.rows >= Int64(spec.minRows) && (base?.rows ?? 0) >= Int64(spec.minRows)
      for metric in Metric.allCases {
        var verdict = MetricVerdict(metric: metric, verdict: .noVerdict, z: nil)
        if testable, let base, let (z, effect) = test(metric, figures, base) {
          verdict.z = z
          verdict.verdict = abs(z) >= criticalZ && effect ? .changed : .ok
          let key = name + "|" + metric.rawValue
          if verdict.verdict == .changed, !changed.contains(key) {
            changed.insert(key)
            result.alerts.append(
              Alert(
                monitor: spec.name, slice: name, metric: metric, kind: .sudden, windowStart: start, windowEnd: end,
                baselineValue: value(metric, base), value: value(metric, figures), statistic: z, since: nil))
          } else if changed.contains(key), abs(z) < spec.rearmZ {
            // Back to normal (or the baseline has caught up): the next change alerts again.
            changed.remove(key)
            if metric == .auc { cusums[name] = Cusum() }
          }
          if metric == .auc {
            var cusum = cusums[name] ?? Cusum()
            // While a sudden change stands, its windows are not counted again as drift.
            if !changed.contains(key), cusum.add(-z, windowStart: start, k: spec.cusumK, h: spec.cusumH) {
              result.alerts.append(
                Alert(
                  monitor: spec.name, slice: name, metric: .auc, kind: .gradual, windowStart: start, windowEnd: end,
                  baselineValue: base.auc!, value: figures.auc!, statistic: cusum.sum, since: cusum.since))
            }
            cusums[name] = cusum
            window.cusum = cusum.sum
          }
        }
        window.verdicts.append(verdict)
      }
      // A window cut short by --flush holds labels that may still change: not a reference.
      if !truncated {
        let bucket = Self.floor(start, spec.bucketLength)
        buckets[bucket, default: SliceStats()].merge(stats)
        pooledHistogram.add(stats.histogram, sign: 1)
      }
      baseline[name] = buckets
      pooledHistograms[name] = pooledHistogram
      result.slices.append(window)
    }
    closedThrough = max(closedThrough, end)
    return result
  }

  /// The test's z and whether the change is big enough to matter.
  private func test(_ metric: Metric, _ w: SliceFigures, _ b: SliceFigures) -> (Double, Bool)? {
    switch metric {
    case .auc:
      guard let z = Statistics.aucZ(window: w, baseline: b) else { return nil }
      return (z, abs(w.auc! - b.auc!) >= spec.minAUCChange)
    case .labelRate:
      guard let z = Statistics.labelRateZ(window: w, baseline: b), let rw = w.labelRate, let rb = b.labelRate
      else { return nil }
      return (z, abs(rw - rb) >= spec.minRelativeLabelRateChange * rb)
    case .calibration:
      guard let z = Statistics.calibrationZ(window: w, baseline: b) else { return nil }
      return (z, abs(log(w.calibration! / b.calibration!)) >= log(spec.minCalibrationRatio))
    }
  }

  private func value(_ metric: Metric, _ f: SliceFigures) -> Double {
    switch metric {
    case .auc: f.auc ?? .nan
    case .labelRate: f.labelRate ?? .nan
    case .calibration: f.calibration ?? .nan
    }
  }
}
