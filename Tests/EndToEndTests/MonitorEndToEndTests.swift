import Foundation
import Testing

#if canImport(FoundationXML)
  import FoundationXML
#endif

/// `monitors:` through the real binaries: logs from `feedbackd-loggen --drift`, `feedbackd
/// replay`, the files in `state_dir/monitor/`, and `feedbackd report`.
@Suite struct MonitorEndToEndTests {
  static let changeAt = "2026-12-01T12:00:00Z"
  static let changeHour = 36

  func config(
    dir: String, logs: String, maxInMemory: Int? = nil, minRows: Int = 200, httpPort: Int? = nil
  ) throws -> String {
    var yaml = """
      state_dir: \(dir)/state
      sources:
        - name: shop
          paths: ["\(logs)/app.log*"]
          format: logstash
      events:
        prediction: { where: { event: prediction }, key: request_id }
        feedback:
          click: { where: { event: click }, key: request_id }
      labels:
        clicked: { from: click, window: 30m }
      datasets:
        - name: ctr
          path: \(dir)/datasets/ctr
          labels: [clicked]
          columns: [model_version, score, { path: features.item_category, as: category }, { path: features.device, as: device }]
      monitors:
        - name: ctr-quality
          dataset: ctr
          label: clicked
          score: score
          slices: [category, device]
          window: 1h
          baseline: 7d
          min_rows: \(minRows)

      """
    if let maxInMemory { yaml += "max_in_memory: \(maxInMemory)\n" }
    if let httpPort { yaml += "http: { listen: \"127.0.0.1:\(httpPort)\" }\n" }
    let path = dir + "/feedbackd.yaml"
    try yaml.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  /// 90,000 predictions over 3 files whose shoes clicks stop following the score at `changeAt`.
  func generateShoesDrift(into logs: String) throws {
    try run(
      Binaries.loggen,
      [
        "--out", logs, "--seed", "3", "--predictions", "90000", "--rate", "0.5", "--files", "3",
        "--drift", "sudden", "--drift-slice", "category=shoes", "--drift-at", Self.changeAt,
      ])
  }

  func records(_ path: String) throws -> [[String: Any]] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    return try text.split(separator: "\n").map {
      try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
    }
  }

  func hour(_ record: [String: Any]) throws -> Int {
    let start = try #require(record["window_start"] as? String)
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    let date = try #require(formatter.date(from: start))
    return Int((date.timeIntervalSince1970 - 1_795_996_800) / 3600)
  }

  /// The live daemon runs the same monitors: reading logs with a sudden drift in shoes, it
  /// writes the alert to `alerts.jsonl` and the log, and `/metrics` carries the monitor's
  /// figures and the alert counter.
  @Test func liveDaemonAlertsToTheLogTheFileAndMetrics() throws {
    let dir = try makeTempDir("monitor-live")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try generateShoesDrift(into: dir + "/logs")
    let port = Int.random(in: 20_000...60_000)
    let configPath = try config(dir: dir, logs: dir + "/logs", httpPort: port)
    let daemon = try DaemonProcess(config: configPath)
    let alertsPath = dir + "/state/monitor/ctr-quality/alerts.jsonl"
    let deadline = Date().addingTimeInterval(90)
    var shoes: [String: Any]?
    while shoes == nil && Date() < deadline {
      Thread.sleep(forTimeInterval: 0.5)
      shoes = (try? records(alertsPath))?.first {
        $0["slice"] as? String == "category=shoes" && $0["metric"] as? String == "auc"
      }
    }
    #expect(shoes?["kind"] as? String == "sudden", "no sudden AUC alert for shoes from the live daemon")
    // The alert is in alerts.jsonl before the commit that covers it ends; the monitor's
    // figures and alert counter are published on /metrics only after it: poll until they show.
    let series = [
      "feedbackd_monitor_rows{monitor=\"ctr-quality\",slice=\"all\"}",
      "feedbackd_monitor_auc{monitor=\"ctr-quality\",slice=\"category=shoes\"}",
      "feedbackd_monitor_label_rate{monitor=\"ctr-quality\",slice=\"all\"}",
      "feedbackd_monitor_calibration{monitor=\"ctr-quality\",slice=\"all\"}",
      "feedbackd_monitor_alerts_total{monitor=\"ctr-quality\",slice=\"category=shoes\",metric=\"auc\",kind=\"sudden\"}",
    ]
    let metricsDeadline = Date().addingTimeInterval(10)
    var metrics = ""
    var missing = series
    while true {
      metrics = (try? run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(port)/metrics"]))?.stdout ?? ""
      missing = series.filter { !metrics.contains($0) }
      if missing.isEmpty || Date() >= metricsDeadline { break }
      Thread.sleep(forTimeInterval: 0.1)
    }
    #expect(
      missing.isEmpty,
      "after polling /metrics for 10 s, it still lacks \(missing); it reads:\n\(metrics)")
    #expect(daemon.terminate() == 0, "\(daemon.log)")
    #expect(daemon.log.contains("category=shoes"), "the alert was not logged")
  }

  /// A sudden drift in shoes: an AUC alert for category=shoes within two windows of the
  /// change, none for the other categories and none before; every row counted once.
  @Test func suddenDriftAlertsForTheSliceThroughReplay() throws {
    let dir = try makeTempDir("monitor-sudden")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try generateShoesDrift(into: dir + "/logs")
    let configPath = try config(dir: dir, logs: dir + "/logs")
    let replay = try run(Binaries.feedbackd, ["replay", "--config", configPath, "--flush"])
    #expect(replay.status == 0, "\(replay.stderr)")
    let monitorDir = dir + "/state/monitor/ctr-quality"
    let alerts = try records(monitorDir + "/alerts.jsonl")
    let shoes = try #require(
      alerts.first { $0["slice"] as? String == "category=shoes" && $0["metric"] as? String == "auc" },
      "no AUC alert for shoes: \(alerts)")
    let after = try hour(shoes) - Self.changeHour
    print("replay, sudden drift: shoes AUC alert \(after) window(s) after the change; all alerts: \(alerts.count)")
    #expect(shoes["kind"] as? String == "sudden")
    #expect((0...1).contains(after), "the alert's window starts \(after) windows after the change")
    let others = alerts.filter {
      ($0["slice"] as? String ?? "").hasPrefix("category=") && $0["slice"] as? String != "category=shoes"
    }
    #expect(others.isEmpty, "alerts for untouched slices: \(others)")
    for alert in alerts {
      #expect(try hour(alert) >= Self.changeHour, "alert before the change: \(alert)")
      for key in ["monitor", "slice", "metric", "kind", "window_start", "window_end", "baseline_value", "value"] {
        #expect(alert[key] != nil, "alert lacks \(key)")
      }
    }
    // Every row of the dataset is in exactly one window of the whole dataset.
    let windows = try records(monitorDir + "/windows.jsonl")
    let counted = windows.filter { $0["slice"] as? String == "all" }.reduce(0) { $0 + ($1["rows"] as? Int ?? 0) }
    var datasetRows = 0
    for file in listFiles(dir + "/datasets/ctr") where file.hasSuffix(".jsonl") {
      datasetRows += try String(contentsOfFile: dir + "/datasets/ctr/" + file, encoding: .utf8).split(separator: "\n")
        .count
    }
    #expect(counted == datasetRows && datasetRows > 80_000)
    #expect(Set(windows.compactMap { $0["slice"] as? String }).count == 12)

    // The report: one self-contained page, a chart per slice and metric, the alerts on it.
    let out = dir + "/report.html"
    let report = try run(Binaries.feedbackd, ["report", "--config", configPath, "--out", out])
    #expect(report.status == 0, "\(report.stderr)")
    let html = try String(contentsOfFile: out, encoding: .utf8)
    try checkReport(html, slices: 12, alerts: alerts.count)
  }

  func checkReport(_ html: String, slices: Int, alerts: Int) throws {
    #expect(html.hasPrefix("<!DOCTYPE html>"))
    #expect(!html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"), "nothing fetched")
    #expect(!html.lowercased().contains("<script"), "readable without JavaScript")
    #expect(!html.contains("<img") && !html.contains("<link"), "self-contained")
    // Well-formed (polyglot XHTML), so every chart and table is closed.
    let body = html.replacingOccurrences(of: "<!DOCTYPE html>", with: "")
    let parser = XMLParser(data: Data(body.utf8))
    #expect(parser.parse(), "not well-formed: \(String(describing: parser.parserError))")
    // One SVG per chart: 3 metrics per slice, rows per hour, label delay, orphans per hour.
    let svgs = html.components(separatedBy: "<svg ").count - 1
    #expect(svgs == slices * 3 + 3, "\(svgs) charts")
    #expect(html.components(separatedBy: "</svg>").count - 1 == svgs)
    #expect(html.contains("category=shoes") && html.contains("class=\"kind sudden\""))
    #expect(html.components(separatedBy: "<g class=\"marker ").count - 1 == alerts, "every alert on a timeline")
    #expect(html.components(separatedBy: "<tr><td>").count - 1 >= alerts, "every alert in the table")
    for section in ["Rows per hour", "Label delay", "Rejected lines", "Orphaned feedback"] {
      #expect(html.contains(section), "\(section) is missing")
    }
  }

  /// SIGKILL during replays that commit often: windows.jsonl, alerts.jsonl and the figures in
  /// them are byte-identical to one uninterrupted replay (nothing lost or counted twice).
  @Test func killedReplaysGiveTheSameWindows() throws {
    let dir = try makeTempDir("monitor-kill")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try run(
      Binaries.loggen,
      [
        "--out", dir + "/logs", "--seed", "8", "--predictions", "30000", "--rate", "0.4", "--files", "3",
        "--drift", "sudden", "--drift-slice", "device=tablet", "--drift-at", "2026-11-30T12:00:00Z",
      ])
    let cleanDir = dir + "/clean"
    let killedDir = dir + "/killed"
    try FileManager.default.createDirectory(atPath: cleanDir, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: killedDir, withIntermediateDirectories: true)
    let clean = try config(dir: cleanDir, logs: dir + "/logs", maxInMemory: 300, minRows: 40)
    #expect(try run(Binaries.feedbackd, ["replay", "--config", clean]).status == 0)
    let killed = try config(dir: killedDir, logs: dir + "/logs", maxInMemory: 300, minRows: 40)
    var partial: [Int] = []
    let windowsFile = killedDir + "/state/monitor/ctr-quality/windows.jsonl"
    let kills = try killRepeatedly(["replay", "--config", killed], delays: [0.7, 1.3, 1.9, 2.6]) {
      partial.append((try? Data(contentsOf: URL(fileURLWithPath: windowsFile)).count) ?? 0)
    }
    #expect(try run(Binaries.feedbackd, ["replay", "--config", killed]).status == 0)
    print("killed replays: \(kills) SIGKILLs, windows.jsonl bytes after each: \(partial)")
    for name in ["windows.jsonl", "alerts.jsonl"] {
      let a = try Data(contentsOf: URL(fileURLWithPath: cleanDir + "/state/monitor/ctr-quality/" + name))
      let b = try Data(contentsOf: URL(fileURLWithPath: killedDir + "/state/monitor/ctr-quality/" + name))
      #expect(a == b, "\(name) differs after \(kills) kills")
      #expect(!a.isEmpty)
    }
    #expect(kills >= 1)
    // Some run was killed after committing windows, but before the end: a restart resumed it.
    let final = try Data(contentsOf: URL(fileURLWithPath: windowsFile)).count
    #expect(partial.contains { $0 > 0 && $0 < final }, "no kill fell between commits: \(partial) of \(final)")
  }
}
