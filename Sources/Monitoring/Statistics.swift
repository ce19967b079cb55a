import Foundation

/// The tests a window is held to against its baseline: each gives a z score, and a change is
/// declared only when the two-sided p-value is below `alpha` *and* the change is large enough to
/// matter (a minimum effect size), so huge slices do not alert on negligible differences.
public enum Statistics {
  /// Two-sided p-value of a standard normal z score.
  public static func twoSidedP(_ z: Double) -> Double {
    erfc(abs(z) / 2.0.squareRoot())
  }

  /// The z beyond which a two-sided test at `alpha` rejects (bisection on `twoSidedP`).
  public static func criticalZ(alpha: Double) -> Double {
    var low = 0.0
    var high = 40.0
    for _ in 0..<200 {
      let mid = (low + high) / 2
      if twoSidedP(mid) > alpha { low = mid } else { high = mid }
    }
    return high
  }

  /// AUC of a window against its baseline: independent samples, DeLong standard errors.
  public static func aucZ(window: SliceFigures, baseline: SliceFigures) -> Double? {
    guard let a = window.auc, let sa = window.aucStandardError, let b = baseline.auc,
      let sb = baseline.aucStandardError
    else { return nil }
    let se = (sa * sa + sb * sb).squareRoot()
    guard se > 0 else { return nil }
    return (a - b) / se
  }

  /// Two-proportion z-test (pooled) of the label rates.
  public static func labelRateZ(window: SliceFigures, baseline: SliceFigures) -> Double? {
    guard window.rows > 0, baseline.rows > 0 else { return nil }
    let n1 = Double(window.rows)
    let n2 = Double(baseline.rows)
    let p1 = Double(window.positives) / n1
    let p2 = Double(baseline.positives) / n2
    let pooled = Double(window.positives + baseline.positives) / (n1 + n2)
    let se = (pooled * (1 - pooled) * (1 / n1 + 1 / n2)).squareRoot()
    guard se > 0 else { return nil }
    return (p1 - p2) / se
  }

  /// Log calibration (mean score / label rate) of a window against its baseline, delta-method
  /// variances.
  public static func calibrationZ(window: SliceFigures, baseline: SliceFigures) -> Double? {
    guard let c1 = window.calibration, let v1 = window.logCalibrationVariance, let c2 = baseline.calibration,
      let v2 = baseline.logCalibrationVariance, c1 > 0, c2 > 0
    else { return nil }
    let se = (v1 + v2).squareRoot()
    guard se > 0 else { return nil }
    return (log(c1) - log(c2)) / se
  }
}

/// One-sided CUSUM on standardized AUC shortfalls: catches a slow decline that no single window
/// shows beyond chance.
///
/// Each window adds `z − k` (z: how many standard errors its AUC lies below the baseline's);
/// the sum never falls below 0. An alarm is raised when it first exceeds `h`; it re-arms once
/// the sum is back at 0. With k = 0.5 and h = 10 the in-control run length is ~10⁵ windows
/// (Siegmund's approximation), i.e. ~0.06 false alarms per month for 12 hourly slices.
public struct Cusum: Sendable, Equatable {
  public var sum: Double = 0
  public var armed = true
  /// Start of the window where the sum last left 0: the drift's estimated onset.
  public var since: Int64?

  public init() {}

  /// Adds one window's z; true when this window raises an alarm.
  public mutating func add(_ z: Double, windowStart: Int64, k: Double, h: Double) -> Bool {
    let next = max(0, sum + z - k)
    if sum == 0, next > 0 { since = windowStart }
    sum = next
    if sum == 0 {
      armed = true
      since = nil
    }
    if armed, sum > h {
      armed = false
      return true
    }
    return false
  }
}
