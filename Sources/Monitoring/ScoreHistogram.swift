import Foundation

/// Positives and negatives counted per score bin, from which ROC AUC and its DeLong variance
/// are computed without keeping every score.
///
/// Bins are narrow steps of the score's logit, so resolution follows the scores where they are
/// (CTR models put most scores near 0). Only occupied bins are stored. Two scores in one bin
/// count as a tie (½), so the AUC is off by at most half the share of positive–negative pairs
/// that share a bin: `errorBound`, reported with every figure (well under 0.002 in practice).
public struct ScoreHistogram: Sendable, Equatable {
  /// Bin width in logit units: scores within ~0.1% of each other (relative) share a bin.
  public static let binWidth = 0.004
  static let maxLogit = 21.0

  public struct Counts: Sendable, Equatable {
    public var positives: Int64 = 0
    public var negatives: Int64 = 0
  }

  public private(set) var bins: [Int32: Counts] = [:]

  public init() {}

  public static func bin(_ score: Double) -> Int32 {
    let p = min(max(score, 1e-12), 1 - 1e-12)
    let logit = min(max(log(p / (1 - p)), -maxLogit), maxLogit)
    return Int32(((logit + maxLogit) / binWidth).rounded(.down))
  }

  public mutating func add(score: Double, positive: Bool) {
    if positive {
      bins[Self.bin(score), default: Counts()].positives += 1
    } else {
      bins[Self.bin(score), default: Counts()].negatives += 1
    }
  }

  mutating func add(bin: Int32, positives: Int64, negatives: Int64) {
    var counts = bins[bin] ?? Counts()
    counts.positives += positives
    counts.negatives += negatives
    bins[bin] = counts
  }

  public mutating func merge(_ other: ScoreHistogram) {
    for (bin, counts) in other.bins { add(bin: bin, positives: counts.positives, negatives: counts.negatives) }
  }

  /// ROC AUC with its DeLong standard error and the binning error bound; nil without both classes.
  public func auc() -> AUCResult? {
    let keys = bins.keys.sorted()
    var positives: [Int64] = []
    var negatives: [Int64] = []
    positives.reserveCapacity(keys.count)
    negatives.reserveCapacity(keys.count)
    for key in keys {
      let c = bins[key]!
      positives.append(c.positives)
      negatives.append(c.negatives)
    }
    return Self.auc(positives: positives, negatives: negatives)
  }

  public typealias AUCResult = (auc: Double, standardError: Double, errorBound: Double)

  /// The AUC of counts per bin in ascending score order (empty bins allowed).
  static func auc(positives: [Int64], negatives: [Int64]) -> AUCResult? {
    var p: Double = 0
    var n: Double = 0
    for i in positives.indices {
      p += Double(positives[i])
      n += Double(negatives[i])
    }
    guard p > 0, n > 0 else { return nil }
    var negativesBelow: Double = 0
    var wins: Double = 0
    var tiedPairs: Double = 0
    for i in positives.indices {
      let pos = Double(positives[i])
      let neg = Double(negatives[i])
      wins += pos * (negativesBelow + 0.5 * neg)
      tiedPairs += pos * neg
      negativesBelow += neg
    }
    let auc = wins / (p * n)
    // DeLong: the variance of the placement values of positives and of negatives.
    var s10: Double = 0
    var s01: Double = 0
    negativesBelow = 0
    var positivesAbove = p
    for i in positives.indices {
      let pos = Double(positives[i])
      let neg = Double(negatives[i])
      positivesAbove -= pos
      if pos > 0 {
        let v10 = (negativesBelow + 0.5 * neg) / n
        s10 += pos * (v10 - auc) * (v10 - auc)
      }
      if neg > 0 {
        let v01 = (positivesAbove + 0.5 * pos) / p
        s01 += neg * (v01 - auc) * (v01 - auc)
      }
      negativesBelow += neg
    }
    s10 = p > 1 ? s10 / (p - 1) : 0
    s01 = n > 1 ? s01 / (n - 1) : 0
    let variance = s10 / p + s01 / n
    return (auc, variance.squareRoot(), 0.5 * tiedPairs / (p * n))
  }
}

/// Every bin as an array slot: for the pooled baselines, which fill many bins and are read at
/// every window (a linear scan instead of sorting thousands of keys).
struct DenseHistogram: Sendable {
  static let count = Int(2 * ScoreHistogram.maxLogit / ScoreHistogram.binWidth) + 2
  var positives = [Int64](repeating: 0, count: count)
  var negatives = [Int64](repeating: 0, count: count)

  mutating func add(_ h: ScoreHistogram, sign: Int64) {
    for (bin, c) in h.bins {
      let i = Int(bin)
      positives[i] += sign * c.positives
      negatives[i] += sign * c.negatives
    }
  }

  func auc() -> ScoreHistogram.AUCResult? {
    ScoreHistogram.auc(positives: positives, negatives: negatives)
  }
}
