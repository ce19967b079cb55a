import Foundation
import Monitoring
import TestSupport

/// A seeded stream of scored, labeled rows like the shop's, with optional drift in one slice.
struct SimulatedRows {
  enum Drift {
    case none
    /// From `at`, the slice's labels no longer depend on the score (same mean rate).
    case sudden(at: Int64)
    /// From `at`, over `over` nanoseconds, the labels depend on the score less and less.
    case gradual(at: Int64, over: Int64)
  }

  static let categories = ["shoes", "bags", "books", "toys", "garden", "kitchen", "sports", "beauty"]
  static let devices = ["mobile", "desktop", "tablet"]
  /// Mean click probability 0.5 · E[s^1.5] with s = u^1.5.
  static let meanRate = 0.5 / 3.25

  var random: SplitMix64
  var drift: Drift = .none
  var driftCategory = "shoes"

  init(seed: UInt64) { random = SplitMix64(seed: seed) }

  mutating func next() -> UInt64 { random.next() }

  mutating func uniform() -> Double { random.uniform() }

  mutating func row(at time: Int64) -> MonitorObservation {
    let u = uniform()
    let score = max(u * u.squareRoot(), 1e-4)
    let category = Self.categories[Int(next() % 8)]
    let d = uniform()
    let device = d < 0.6 ? Self.devices[0] : (d < 0.9 ? Self.devices[1] : Self.devices[2])
    var p = 0.5 * score * score.squareRoot()
    if category == driftCategory {
      switch drift {
      case .none: break
      case .sudden(let at):
        if time >= at { p = Self.meanRate }
      case .gradual(let at, let over):
        if time >= at {
          let f = min(Double(time - at) / Double(over), 1)
          p = (1 - f) * p + f * Self.meanRate
        }
      }
    }
    return MonitorObservation(
      predictedAt: time, score: score, positive: uniform() < p, sliceValues: [category, device])
  }
}

enum Hours {
  static let hour: Int64 = 3_600_000_000_000
  /// 2026-11-30T00:00:00Z.
  static let start: Int64 = 1_795_996_800 * 1_000_000_000
}

/// Feeds `hours` hourly windows of `rowsPerHour` rows to a monitor, closing windows as a
/// watermark 30 minutes behind would; returns every closed window.
func simulate(
  monitor: Monitor, rows: inout SimulatedRows, hours: Range<Int>, rowsPerHour: Int
) -> [ClosedWindow] {
  var closed: [ClosedWindow] = []
  for h in hours {
    let base = Hours.start + Int64(h) * Hours.hour
    for i in 0..<rowsPerHour {
      monitor.observe(rows.row(at: base + Int64(i) * (Hours.hour / Int64(rowsPerHour))))
    }
    closed += monitor.advance(watermark: base + Hours.hour - 1)
  }
  return closed
}

func makeSpec(minRows: Int = 200) -> MonitorSpec {
  MonitorSpec(
    name: "ctr-quality", window: Hours.hour, baseline: 7 * 24 * Hours.hour, minRows: minRows,
    alpha: MonitorSpec.defaultAlpha, closeLag: Hours.hour / 2, sliceColumns: ["category", "device"])
}
