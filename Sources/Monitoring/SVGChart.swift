import Foundation

/// Inline SVG charts for the report: plain shapes and `<title>` tooltips, no script, no fonts or
/// images from elsewhere.
enum SVGChart {
  struct Marker {
    var time: Int64
    /// `sudden` or `gradual`: the CSS class.
    var kind: String
    var text: String
  }

  /// A time series: `values` (nil leaves a gap), an optional dashed baseline, and alert markers.
  static func line(
    width: Double, height: Double, xRange: (Int64, Int64), yRange: (Double, Double),
    values: [(Int64, Double?, Bool)], baseline: [(Int64, Double?)], markers: [Marker], format: (Double) -> String,
    label: String
  ) -> String {
    let left = 44.0
    let right = 8.0
    let top = 8.0
    let bottom = 20.0
    let plotW = width - left - right
    let plotH = height - top - bottom
    let span = Double(max(xRange.1 - xRange.0, 1))
    func x(_ t: Int64) -> Double { left + Double(t - xRange.0) / span * plotW }
    func y(_ v: Double) -> Double {
      let f = (v - yRange.0) / max(yRange.1 - yRange.0, 1e-12)
      return top + (1 - min(max(f, 0), 1)) * plotH
    }
    var out =
      "<svg class=\"chart\" viewBox=\"0 0 \(n(width)) \(n(height))\" role=\"img\" aria-label=\"\(escape(label))\">"
    out += "<rect class=\"plot\" x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(plotW))\" height=\"\(n(plotH))\"/>"
    for i in 0...2 {
      let v = yRange.0 + (yRange.1 - yRange.0) * Double(i) / 2
      out += "<line class=\"grid\" x1=\"\(n(left))\" x2=\"\(n(left + plotW))\" y1=\"\(n(y(v)))\" y2=\"\(n(y(v)))\"/>"
      out +=
        "<text class=\"tick\" x=\"\(n(left - 4))\" y=\"\(n(y(v) + 3))\" text-anchor=\"end\">\(escape(format(v)))</text>"
    }
    for (t, text) in timeTicks(xRange, count: 3) {
      out += "<text class=\"tick\" x=\"\(n(x(t)))\" y=\"\(n(height - 6))\" text-anchor=\"middle\">\(text)</text>"
    }
    out += path(baseline.map { ($0.0, $0.1) }, x: x, y: y, cssClass: "baseline")
    out += path(values.map { ($0.0, $0.1) }, x: x, y: y, cssClass: "series")
    for (t, v, tested) in values where !tested {
      if let v { out += "<circle class=\"untested\" cx=\"\(n(x(t)))\" cy=\"\(n(y(v)))\" r=\"1.6\"/>" }
    }
    for m in markers {
      let mx = x(m.time)
      out += "<g class=\"marker \(m.kind)\"><title>\(escape(m.text))</title>"
      out += "<line x1=\"\(n(mx))\" x2=\"\(n(mx))\" y1=\"\(n(top))\" y2=\"\(n(top + plotH))\"/>"
      out += "<path d=\"M\(n(mx - 5)),\(n(top)) L\(n(mx + 5)),\(n(top)) L\(n(mx)),\(n(top + 8)) Z\"/></g>"
    }
    return out + "</svg>"
  }

  /// Vertical bars, one per value, labelled below (every `labelEvery`-th).
  static func bars(
    width: Double, height: Double, values: [Double], labels: [String], titles: [String], labelEvery: Int = 1,
    format: (Double) -> String, label: String
  ) -> String {
    let left = 50.0
    let bottom = 34.0
    let top = 8.0
    let plotW = width - left - 8
    let plotH = height - top - bottom
    let maxV = max(values.max() ?? 0, 1e-12)
    let step = plotW / Double(max(values.count, 1))
    var out =
      "<svg class=\"chart\" viewBox=\"0 0 \(n(width)) \(n(height))\" role=\"img\" aria-label=\"\(escape(label))\">"
    out += "<rect class=\"plot\" x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(plotW))\" height=\"\(n(plotH))\"/>"
    for i in 0...2 {
      let v = maxV * Double(i) / 2
      let yy = top + plotH - plotH * Double(i) / 2
      out += "<line class=\"grid\" x1=\"\(n(left))\" x2=\"\(n(left + plotW))\" y1=\"\(n(yy))\" y2=\"\(n(yy))\"/>"
      out +=
        "<text class=\"tick\" x=\"\(n(left - 4))\" y=\"\(n(yy + 3))\" text-anchor=\"end\">\(escape(format(v)))</text>"
    }
    for (i, v) in values.enumerated() {
      let h = plotH * v / maxV
      let bx = left + Double(i) * step
      out += "<rect class=\"bar\" x=\"\(n(bx + step * 0.1))\" y=\"\(n(top + plotH - h))\" width=\"\(n(step * 0.8))\" "
      out += "height=\"\(n(h))\"><title>\(escape(i < titles.count ? titles[i] : ""))</title></rect>"
      if i % labelEvery == 0, i < labels.count {
        out += "<text class=\"tick\" x=\"\(n(bx + step / 2))\" y=\"\(n(height - 20))\" text-anchor=\"middle\">"
        out += "\(escape(labels[i]))</text>"
      }
    }
    return out + "</svg>"
  }

  /// Counts over time as a filled area (for many hours).
  static func area(
    width: Double, height: Double, points: [TimeCount], format: (Double) -> String, label: String
  ) -> String {
    guard let first = points.first, let last = points.last else { return "" }
    let left = 50.0
    let top = 8.0
    let bottom = 20.0
    let plotW = width - left - 8
    let plotH = height - top - bottom
    let hour: Int64 = 3_600_000_000_000
    let xRange = (first.time, max(last.time + hour, first.time + hour))
    let maxV = Double(max(points.map(\.count).max() ?? 1, 1))
    let span = Double(xRange.1 - xRange.0)
    func x(_ t: Int64) -> Double { left + Double(t - xRange.0) / span * plotW }
    func y(_ v: Double) -> Double { top + plotH - plotH * v / maxV }
    var out =
      "<svg class=\"chart\" viewBox=\"0 0 \(n(width)) \(n(height))\" role=\"img\" aria-label=\"\(escape(label))\">"
    out += "<rect class=\"plot\" x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(plotW))\" height=\"\(n(plotH))\"/>"
    for i in 0...2 {
      let v = maxV * Double(i) / 2
      out += "<line class=\"grid\" x1=\"\(n(left))\" x2=\"\(n(left + plotW))\" y1=\"\(n(y(v)))\" y2=\"\(n(y(v)))\"/>"
      out +=
        "<text class=\"tick\" x=\"\(n(left - 4))\" y=\"\(n(y(v) + 3))\" text-anchor=\"end\">\(escape(format(v)))</text>"
    }
    for (t, text) in timeTicks(xRange, count: 5) {
      out += "<text class=\"tick\" x=\"\(n(x(t)))\" y=\"\(n(height - 6))\" text-anchor=\"middle\">\(text)</text>"
    }
    // Hours absent from the data are zero: a step line over every hour of the range.
    let byHour = Dictionary(points.map { ($0.time, $0.count) }, uniquingKeysWith: +)
    var d = "M\(n(x(xRange.0))),\(n(y(0)))"
    var t = xRange.0
    while t < xRange.1 {
      let v = Double(byHour[t] ?? 0)
      d += " L\(n(x(t))),\(n(y(v))) L\(n(x(t + hour))),\(n(y(v)))"
      t += hour
    }
    d += " L\(n(x(xRange.1))),\(n(y(0))) Z"
    out += "<path class=\"area\" d=\"\(d)\"><title>\(escape(label))</title></path>"
    return out + "</svg>"
  }

  private static func path(
    _ points: [(Int64, Double?)], x: (Int64) -> Double, y: (Double) -> Double, cssClass: String
  ) -> String {
    var d = ""
    var pen = false
    for (t, v) in points {
      guard let v, v.isFinite else {
        pen = false
        continue
      }
      d += (pen ? " L" : " M") + "\(n(x(t))),\(n(y(v)))"
      pen = true
    }
    return d.isEmpty ? "" : "<path class=\"\(cssClass)\" d=\"\(d)\"/>"
  }

  /// Up to `count` ticks at whole days (or hours for short ranges), labelled `MM-DD` / `HH:00`.
  static func timeTicks(_ range: (Int64, Int64), count: Int) -> [(Int64, String)] {
    let hour: Int64 = 3_600_000_000_000
    let day = 24 * hour
    let span = range.1 - range.0
    let steps: [Int64] = [hour, 3 * hour, 6 * hour, 12 * hour, day, 2 * day, 7 * day, 14 * day, 30 * day]
    let step = steps.first { span / $0 <= Int64(count) } ?? 30 * day
    var t = (range.0 + step - 1) / step * step
    var ticks: [(Int64, String)] = []
    while t <= range.1 {
      let c = civil(t)
      ticks.append((t, step >= day ? "\(pad(c.month))-\(pad(c.day))" : "\(pad(c.month))-\(pad(c.day)) \(pad(c.hour))h"))
      t += step
    }
    return ticks
  }

  static func civil(_ t: Int64) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int) {
    let seconds = Int(t / 1_000_000_000) - (t % 1_000_000_000 < 0 ? 1 : 0)
    var days = seconds / 86400
    var rem = seconds % 86400
    if rem < 0 {
      rem += 86400
      days -= 1
    }
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = doy - (153 * mp + 2) / 5 + 1
    let m = mp < 10 ? mp + 3 : mp - 9
    return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d, rem / 3600, rem % 3600 / 60)
  }

  static func pad(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }

  /// `2026-12-01 13:00` (UTC).
  static func time(_ t: Int64) -> String {
    let c = civil(t)
    return "\(c.year)-\(pad(c.month))-\(pad(c.day)) \(pad(c.hour)):\(pad(c.minute))"
  }

  static func n(_ v: Double) -> String { String(format: "%.1f", v) }

  static func escape(_ s: String) -> String {
    var out = ""
    for ch in s {
      switch ch {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      default: out.append(ch)
      }
    }
    return out
  }
}
