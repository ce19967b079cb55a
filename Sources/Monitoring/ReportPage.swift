import Foundation

/// `feedbackd report`: one self-contained HTML page (inline CSS and SVG, no script, nothing
/// fetched) showing each monitor's figures over time per slice with its alerts, and the data
/// behind them: rows per hour, label delays, rejects and orphans.
public enum ReportPage {
  public static func render(_ input: ReportInput) -> String {
    var out = """
      <!DOCTYPE html>
      <html lang="en"><head><meta charset="utf-8"/>
      <meta name="viewport" content="width=device-width, initial-scale=1"/>
      <title>\(esc(input.title))</title>
      <style>\(css)</style>
      </head><body>
      <header><h1>\(esc(input.title))</h1>
      <p class="meta">Generated \(SVGChart.time(input.generatedAt)) UTC from <code>\(esc(input.configPath))</code>.
      Windows are of prediction time; a window is shown once every row of it is final.</p></header>

      """
    out += summary(input)
    for monitor in input.monitors { out += section(monitor) }
    out += dataSection(input)
    out += "</body></html>\n"
    return out
  }

  // MARK: Summary

  static func summary(_ input: ReportInput) -> String {
    var out = "<section class=\"cards\">"
    for m in input.monitors {
      let sudden = m.alerts.filter { $0.kind == .sudden }.count
      let gradual = m.alerts.filter { $0.kind == .gradual }.count
      let whole = m.slices.first?.points ?? []
      let latest = whole.last { $0.values[.auc] != nil }
      let status = m.alerts.isEmpty ? "ok" : "alert"
      out += "<a class=\"card \(status)\" href=\"#m-\(esc(m.name))\"><div class=\"card-title\">\(esc(m.name))</div>"
      out +=
        "<div class=\"big\">\(m.alerts.isEmpty ? "no alerts" : "\(m.alerts.count) alert\(m.alerts.count == 1 ? "" : "s")")</div>"
      out +=
        "<div class=\"small\">\(sudden) sudden · \(gradual) gradual · \(m.slices.count) slices · \(whole.count) windows</div>"
      if let latest, let auc = latest.values[.auc] {
        out += "<div class=\"small\">latest AUC \(fmt(auc, 3)) (\(SVGChart.time(latest.start)))</div>"
      }
      out += "</a>"
    }
    return out + "</section>\n"
  }

  // MARK: Monitor

  static let metrics: [(Metric, String)] = [
    (.auc, "ROC AUC"), (.labelRate, "Label rate"), (.calibration, "Calibration"),
  ]

  static func section(_ m: MonitorReport) -> String {
    var out = "<section class=\"monitor\" id=\"m-\(esc(m.name))\">"
    out += "<h2>\(esc(m.name)) <span class=\"sub\">dataset \(esc(m.dataset)) · label \(esc(m.label)) · "
    out += "\(duration(m.window)) windows · verdicts from \(m.minRows) rows</span></h2>"
    out += alertsTable(m)
    let times = m.slices.flatMap { $0.points.map(\.start) }
    guard let first = times.min(), let last = times.max() else {
      return out + "<p class=\"empty\">No window has closed yet.</p></section>\n"
    }
    let xRange = (first, last + m.window)
    var ranges: [Metric: (Double, Double)] = [:]
    for (metric, _) in metrics { ranges[metric] = yRange(metric, m) }
    out += "<p class=\"legend\"><span class=\"key series\"></span> window "
    out += "<span class=\"key baseline\"></span> baseline (the windows before it) "
    out += "<span class=\"key sudden\"></span> sudden change <span class=\"key gradual\"></span> gradual drift "
    out += "<span class=\"key untested\"></span> too few rows for a verdict</p>"
    out += "<table class=\"grid\"><thead><tr><th>Slice</th>"
    for (_, title) in metrics { out += "<th>\(title)</th>" }
    out += "</tr></thead><tbody>"
    for slice in m.slices {
      let alerts = m.alerts.filter { $0.slice == slice.name }
      let rows = slice.points.reduce(Int64(0)) { $0 + $1.rows }
      out += "<tr class=\"\(alerts.isEmpty ? "" : "alerted")\"><th class=\"slice\">\(esc(slice.name))"
      out += "<div class=\"small\">\(count(rows)) rows</div>"
      if !alerts.isEmpty { out += "<div class=\"badge\">\(alerts.count) alert\(alerts.count == 1 ? "" : "s")</div>" }
      out += "</th>"
      for (metric, title) in metrics {
        let markers = alerts.filter { $0.metric == metric }.map {
          SVGChart.Marker(time: $0.windowStart, kind: $0.kind.rawValue, text: alertText($0))
        }
        let values = slice.points.map { ($0.start + m.window / 2, $0.values[metric], $0.tested) }
        let baseline = slice.points.map { ($0.start + m.window / 2, $0.baseline[metric]) }
        out += "<td>"
        out += SVGChart.line(
          width: 360, height: 120, xRange: xRange, yRange: ranges[metric]!, values: values, baseline: baseline,
          markers: markers, format: { format(metric, $0) }, label: "\(title) of \(slice.name) over time")
        out += "</td>"
      }
      out += "</tr>"
    }
    return out + "</tbody></table></section>\n"
  }

  static func alertsTable(_ m: MonitorReport) -> String {
    guard !m.alerts.isEmpty else {
      return "<p class=\"ok-note\">No alerts: every slice stayed within chance of its baseline.</p>"
    }
    var out = "<table class=\"alerts\"><thead><tr><th>Window</th><th>Slice</th><th>Metric</th><th>Kind</th>"
    out += "<th>Baseline</th><th>Now</th><th>Change</th></tr></thead><tbody>"
    for a in m.alerts {
      out += "<tr><td>\(SVGChart.time(a.windowStart))"
      if let since = a.since { out += "<div class=\"small\">drifting since \(SVGChart.time(since))</div>" }
      out += "</td><td>\(esc(a.slice))</td><td>\(name(a.metric))</td>"
      out += "<td><span class=\"kind \(a.kind.rawValue)\">\(a.kind.rawValue)</span></td>"
      out += "<td class=\"num\">\(a.baselineValue.map { format(a.metric, $0) } ?? "–")</td>"
      out += "<td class=\"num\">\(a.value.map { format(a.metric, $0) } ?? "–")</td>"
      var change = "–"
      if let b = a.baselineValue, let v = a.value {
        change = a.metric == .auc ? signed(v - b, 3) : (b != 0 ? signed((v / b - 1) * 100, 0) + "%" : "–")
      }
      out += "<td class=\"num\">\(change)</td></tr>"
    }
    return out + "</tbody></table>"
  }

  static func alertText(_ a: ReportAlert) -> String {
    var text = "\(a.kind.rawValue) \(name(a.metric)) alert, window \(SVGChart.time(a.windowStart))"
    if let b = a.baselineValue, let v = a.value { text += ": \(format(a.metric, b)) → \(format(a.metric, v))" }
    if let since = a.since { text += ", drifting since \(SVGChart.time(since))" }
    return text
  }

  /// One range per metric for all slices, so that slices compare at a glance; from windows
  /// with a verdict (tiny windows swing wildly), padded a little.
  static func yRange(_ metric: Metric, _ m: MonitorReport) -> (Double, Double) {
    let points = m.slices.flatMap(\.points)
    var values = points.filter(\.tested).compactMap { $0.values[metric] }
    if values.isEmpty { values = points.compactMap { $0.values[metric] } }
    values += points.compactMap { $0.baseline[metric] }
    values = values.filter(\.isFinite)
    guard let lo = values.min(), let hi = values.max() else { return (0, 1) }
    switch metric {
    case .auc: return (max(0, ((lo - 0.02) * 20).rounded(.down) / 20), min(1, ((hi + 0.02) * 20).rounded(.up) / 20))
    case .labelRate: return (0, hi * 1.15)
    case .calibration: return (max(0, min(lo, 0.9) * 0.9), max(hi, 1.1) * 1.05)
    }
  }

  // MARK: Data

  static func dataSection(_ input: ReportInput) -> String {
    var out = "<section class=\"data\"><h2>The data behind it</h2><div class=\"panels\">"
    for d in input.datasets {
      let total = d.perHour.reduce(Int64(0)) { $0 + $1.count }
      out +=
        "<div class=\"panel wide\"><h3>Rows per hour — \(esc(d.name)) <span class=\"sub\">\(count(total)) rows</span></h3>"
      out +=
        d.perHour.isEmpty
        ? "<p class=\"empty\">No rows yet.</p>"
        : SVGChart.area(
          width: 1100, height: 150, points: d.perHour, format: { count(Int64($0)) }, label: "rows per hour of \(d.name)"
        )
      out += "</div>"
    }
    for l in input.labelDelays {
      let labelled = l.counts.reduce(0, +)
      let total = labelled + l.withoutFeedback
      out += "<div class=\"panel\"><h3>Label delay — \(esc(l.label)) <span class=\"sub\">\(esc(l.dataset)): "
      out += "\(count(labelled)) of \(count(total)) rows with feedback</span></h3>"
      var last = l.counts.count - 1
      while last > 0, l.counts[last] == 0 { last -= 1 }
      let shown = Array(l.counts[...max(last, 0)])
      var cumulative: Int64 = 0
      let titles = shown.enumerated().map { i, c in
        cumulative += c
        let share = labelled > 0 ? Double(cumulative) / Double(labelled) * 100 : 0
        return "\(LabelDelay.label(i)): \(count(c)) rows (\(fmt(share, 1))% within)"
      }
      out += SVGChart.bars(
        width: 540, height: 170, values: shown.map(Double.init), labels: shown.indices.map { LabelDelay.label($0) },
        titles: titles, labelEvery: shown.count > 10 ? 2 : 1, format: { count(Int64($0)) },
        label: "label delay of \(l.label)")
      out += "</div>"
    }
    out += "<div class=\"panel\"><h3>Rejected lines <span class=\"sub\">by reason</span></h3>"
    out += countsTable(input.rejects, empty: "No line was rejected.")
    out += "</div><div class=\"panel\"><h3>Orphaned feedback <span class=\"sub\">no prediction found</span></h3>"
    out += countsTable(input.orphans, empty: "No orphaned feedback.")
    if !input.orphansPerHour.isEmpty {
      out += SVGChart.area(
        width: 540, height: 130, points: input.orphansPerHour, format: { count(Int64($0)) },
        label: "orphaned feedback per hour")
    }
    out += "</div></div></section>\n"
    return out
  }

  static func countsTable(_ counts: [Count], empty: String) -> String {
    guard !counts.isEmpty else { return "<p class=\"ok-note\">\(empty)</p>" }
    let maxCount = Double(counts.map(\.count).max() ?? 1)
    var out = "<table class=\"counts\"><tbody>"
    for c in counts {
      let w = Double(c.count) / max(maxCount, 1) * 100
      out += "<tr><td>\(esc(c.name))</td><td class=\"num\">\(count(c.count))</td>"
      out += "<td class=\"barcell\"><div class=\"hbar\" style=\"width:\(fmt(w, 1))%\"></div></td></tr>"
    }
    return out + "</tbody></table>"
  }

  // MARK: Formatting

  static func name(_ metric: Metric) -> String {
    switch metric {
    case .auc: "AUC"
    case .labelRate: "label rate"
    case .calibration: "calibration"
    }
  }

  static func format(_ metric: Metric, _ v: Double) -> String {
    switch metric {
    case .auc: fmt(v, 3)
    case .labelRate: v < 0.01 ? fmt(v * 100, 2) + "%" : fmt(v * 100, 1) + "%"
    case .calibration: fmt(v, 2)
    }
  }

  static func fmt(_ v: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", v) }

  static func signed(_ v: Double, _ digits: Int) -> String { (v >= 0 ? "+" : "−") + fmt(abs(v), digits) }

  static func count(_ v: Int64) -> String {
    if v >= 10_000_000 { return fmt(Double(v) / 1e6, 0) + "M" }
    if v >= 1_000_000 { return fmt(Double(v) / 1e6, 1) + "M" }
    if v >= 10_000 { return fmt(Double(v) / 1e3, 0) + "k" }
    return String(v)
  }

  static func duration(_ ns: Int64) -> String {
    let s = ns / 1_000_000_000
    if s % 86400 == 0 { return "\(s / 86400)d" }
    if s % 3600 == 0 { return "\(s / 3600)h" }
    if s % 60 == 0 { return "\(s / 60)m" }
    return "\(s)s"
  }

  static func esc(_ s: String) -> String { SVGChart.escape(s) }

  static let css = """
    :root{--ink:#1d2433;--muted:#667085;--line:#e4e7ec;--bg:#f7f8fa;--accent:#2e6be6;--sudden:#d92d20;\
    --gradual:#f79009;--ok:#12b76a}
    *{box-sizing:border-box}
    body{margin:0;padding:28px 36px 60px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;\
    color:var(--ink);background:var(--bg)}
    h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:0 0 12px}h3{font-size:14px;margin:0 0 8px}
    .sub{font-weight:400;color:var(--muted);font-size:13px}.meta,.small{color:var(--muted)}.small{font-size:12px}
    code{font-size:12px;background:#eef1f6;padding:1px 4px;border-radius:4px}
    section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:18px 20px;margin:18px 0}
    section.cards{display:flex;gap:14px;flex-wrap:wrap;background:none;border:0;padding:0}
    .card{display:block;min-width:240px;padding:14px 16px;border-radius:10px;background:#fff;border:1px solid var(--line);\
    border-left:5px solid var(--ok);color:inherit;text-decoration:none}
    .card.alert{border-left-color:var(--sudden)}.card-title{font-weight:600}.big{font-size:20px;font-weight:600;margin:2px 0}
    table{border-collapse:collapse}th,td{text-align:left;vertical-align:middle}
    table.alerts{width:100%;margin-bottom:16px}table.alerts th,table.alerts td{padding:6px 10px;border-bottom:1px solid var(--line)}
    table.alerts thead th,table.grid thead th{font-size:12px;color:var(--muted);font-weight:600;text-transform:uppercase;\
    letter-spacing:.03em}
    .num{text-align:right;font-variant-numeric:tabular-nums}
    .kind{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;font-weight:600}
    .kind.sudden{background:var(--sudden)}.kind.gradual{background:var(--gradual)}
    table.grid{width:100%}table.grid td,table.grid th{padding:4px 6px;border-top:1px solid var(--line)}
    th.slice{width:150px;font-weight:600;font-size:13px}tr.alerted th.slice{color:var(--sudden)}
    .badge{display:inline-block;margin-top:2px;padding:0 6px;border-radius:8px;background:#fee4e2;color:var(--sudden);\
    font-size:11px;font-weight:600}
    svg.chart{width:100%;height:auto;display:block}
    .plot{fill:#fcfcfd;stroke:var(--line)}.grid{stroke:var(--line);stroke-width:1}
    .tick{font-size:12px;fill:#475467}
    path.series{fill:none;stroke:var(--accent);stroke-width:1.5;stroke-linejoin:round}
    path.baseline{fill:none;stroke:#98a2b3;stroke-width:1.2;stroke-dasharray:4 3}
    circle.untested{fill:#c0c6d0}
    .marker line{stroke-width:1.5;stroke-dasharray:2 2}.marker.sudden line{stroke:var(--sudden)}
    .marker.gradual line{stroke:var(--gradual)}.marker.sudden path{fill:var(--sudden)}.marker.gradual path{fill:var(--gradual)}
    .legend{color:var(--muted);font-size:12px;margin:4px 0 8px}
    .key{display:inline-block;width:18px;height:0;margin:0 4px 3px 10px;vertical-align:middle;border-top:2px solid}
    .key.series{border-color:var(--accent)}.key.baseline{border-top:2px dashed #98a2b3}
    .key.sudden{border-color:var(--sudden);border-top-width:6px;width:10px}
    .key.gradual{border-color:var(--gradual);border-top-width:6px;width:10px}
    .key.untested{border-color:#c0c6d0;border-top-width:5px;width:5px;border-radius:3px}
    .ok-note{color:var(--ok);font-weight:600;margin:0 0 12px}.empty{color:var(--muted)}
    .panels{display:grid;grid-template-columns:1fr 1fr;gap:18px}.panel.wide{grid-column:1/3}
    rect.bar{fill:var(--accent)}path.area{fill:#c7d7fb;stroke:var(--accent);stroke-width:1}
    table.counts{width:100%}table.counts td{padding:4px 8px;border-bottom:1px solid var(--line)}
    td.barcell{width:45%}.hbar{height:10px;background:var(--accent);border-radius:3px;min-width:2px}
    """
}
