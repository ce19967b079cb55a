import Foundation

/// What a slice accumulates over a window (or a baseline): enough to compute every figure
/// and to merge windows, never the rows themselves.
public struct SliceStats: Sendable, Equatable {
  public var rows: Int64 = 0
  public var positives: Int64 = 0
  public var sumScore: Double = 0
  public var sumScoreSquared: Double = 0
  public var sumLogLoss: Double = 0
  public var histogram = ScoreHistogram()
  /// Per label of the dataset, rows by label delay (`LabelDelay.edges`); only the whole
  /// dataset's slice keeps them, for the report.
  public var delays: [[Int64]] = []

  public init() {}

  /// Probabilities are clipped like scikit-learn's `log_loss` (machine epsilon).
  static let epsilon = Double.ulpOfOne

  public mutating func add(score: Double, positive: Bool) {
    rows += 1
    if positive { positives += 1 }
    sumScore += score
    sumScoreSquared += score * score
    let p = min(max(score, Self.epsilon), 1 - Self.epsilon)
    sumLogLoss -= positive ? log(p) : log(1 - p)
    histogram.add(score: score, positive: positive)
  }

  public mutating func addDelays(_ delays: [Int64?]) {
    if self.delays.isEmpty {
      self.delays = Array(repeating: Array(repeating: 0, count: LabelDelay.edges.count), count: delays.count)
    }
    for (i, delay) in delays.enumerated() where i < self.delays.count {
      if let delay { self.delays[i][LabelDelay.bin(delay)] += 1 }
    }
  }

  public mutating func merge(_ other: SliceStats) {
    mergeScalars(other)
    histogram.merge(other.histogram)
  }

  /// Everything but the histogram.
  mutating func mergeScalars(_ other: SliceStats) {
    rows += other.rows
    positives += other.positives
    sumScore += other.sumScore
    sumScoreSquared += other.sumScoreSquared
    sumLogLoss += other.sumLogLoss
    if delays.isEmpty {
      delays = other.delays
    } else {
      for (i, row) in other.delays.enumerated() where i < delays.count {
        for (j, count) in row.enumerated() where j < delays[i].count { delays[i][j] += count }
      }
    }
  }

  public var figures: SliceFigures { SliceFigures(self) }
}

/// The per-window figures of a slice.
public struct SliceFigures: Sendable, Equatable {
  public var rows: Int64
  public var positives: Int64
  public var labelRate: Double?
  public var meanScore: Double?
  /// Mean score / label rate: 1 when the model is calibrated, > 1 when it over-predicts.
  public var calibration: Double?
  public var logLoss: Double?
  public var auc: Double?
  /// DeLong standard error of `auc`.
  public var aucStandardError: Double?
  /// The most `auc` can differ from the exact AUC because of score binning.
  public var aucErrorBound: Double?
  /// Variance of log(calibration), by the delta method.
  public var logCalibrationVariance: Double?

  public init(_ s: SliceStats) {
    self.init(s, auc: s.histogram.auc())
  }

  init(_ s: SliceStats, auc a: ScoreHistogram.AUCResult?) {
    rows = s.rows
    positives = s.positives
    guard s.rows > 0 else { return }
    let n = Double(s.rows)
    let rate = Double(s.positives) / n
    let mean = s.sumScore / n
    labelRate = rate
    meanScore = mean
    logLoss = s.sumLogLoss / n
    if rate > 0 {
      calibration = mean / rate
      if rate < 1, mean > 0 {
        let scoreVariance = max(s.sumScoreSquared / n - mean * mean, 0)
        logCalibrationVariance = (1 - rate) / (n * rate) + scoreVariance / (n * mean * mean)
      }
    }
    if let a {
      auc = a.auc
      aucStandardError = a.standardError
      aucErrorBound = a.errorBound
    }
  }
}

/// Label delay bins for the report: time from prediction to the feedback that set the label.
public enum LabelDelay {
  /// Lower edges in seconds; the last bin is open-ended.
  public static let edges: [Double] = [
    0, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400, 172_800, 604_800,
  ]

  public static func bin(_ nanoseconds: Int64) -> Int {
    let seconds = Double(nanoseconds) / 1e9
    var i = 0
    while i + 1 < edges.count, seconds >= edges[i + 1] { i += 1 }
    return i
  }

  public static func label(_ i: Int) -> String {
    func text(_ s: Double) -> String {
      if s < 60 { return "\(Int(s))s" }
      if s < 3600 { return "\(Int(s / 60))m" }
      if s < 86400 { return "\(Int(s / 3600))h" }
      return "\(Int(s / 86400))d"
    }
    return i + 1 < edges.count ? "\(text(edges[i]))–\(text(edges[i + 1]))" : "≥\(text(edges[i]))"
  }
}
