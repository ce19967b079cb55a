import Dataset
import FeedbackConfig
import Foundation
import Gzip
import LogFormats
import Monitoring

/// `feedbackd report`: gathers what the monitors wrote (`state_dir/monitor/`), the datasets'
/// rows per hour, rejects and orphans, and renders one HTML page (`ReportPage`).
public enum Report {
  public static func html(config: FeedbackConfig.Configuration, configPath: String) throws -> String {
    var input = ReportInput(
      title: "Model quality — feedbackd", generatedAt: LiveRunner.wallNow(), configPath: configPath)
    var delaysShown: Set<String> = []
    for monitor in config.monitors {
      let directory = config.stateDir + "/monitor/" + monitor.name
      var report = MonitorReport(
        name: monitor.name, dataset: monitor.dataset, label: monitor.label, window: monitor.window,
        minRows: monitor.minRows)
      var slices: [String: SliceSeries] = [:]
      var order: [String] = []
      var delays: [String: [Int64]] = [:]
      for record in jsonLines(directory + "/windows.jsonl") {
        guard let slice = record["slice"]?.stringValue, let start = time(record["window_start"]) else { continue }
        let rows = Int64(record["rows"]?.doubleValue ?? 0)
        let verdicts = record["verdicts"]
        let tested = Metric.allCases.contains { verdicts?[$0.rawValue]?.stringValue != Verdict.noVerdict.rawValue }
        var point = WindowPoint(start: start, rows: rows, tested: tested)
        for metric in Metric.allCases {
          point.values[metric] = record[metric.rawValue]?.doubleValue
          point.baseline[metric] = record["baseline"]?[metric.rawValue]?.doubleValue
        }
        if slices[slice] == nil {
          slices[slice] = SliceSeries(name: slice)
          order.append(slice)
        }
        slices[slice]!.points.append(point)
        if slice == MonitorSpec.wholeDataset, let members = record["label_delays"]?.objectMembers {
          for member in members {
            guard case .array(let counts) = member.value else { continue }
            var sum = delays[member.key] ?? Array(repeating: 0, count: LabelDelay.edges.count)
            for (i, c) in counts.enumerated() where i < sum.count { sum[i] += Int64(c.doubleValue ?? 0) }
            delays[member.key] = sum
          }
        }
      }
      order.sort { a, b in
        (a == MonitorSpec.wholeDataset ? 0 : 1, a) < (b == MonitorSpec.wholeDataset ? 0 : 1, b)
      }
      report.slices = order.map { slices[$0]! }
      for record in jsonLines(directory + "/alerts.jsonl") {
        guard let slice = record["slice"]?.stringValue,
          let metric = record["metric"]?.stringValue.flatMap(Metric.init(rawValue:)),
          let kind = record["kind"]?.stringValue.flatMap(AlertKind.init(rawValue:)),
          let start = time(record["window_start"]), let end = time(record["window_end"])
        else { continue }
        report.alerts.append(
          ReportAlert(
            slice: slice, metric: metric, kind: kind, windowStart: start, windowEnd: end,
            baselineValue: record["baseline_value"]?.doubleValue, value: record["value"]?.doubleValue,
            since: time(record["since"])))
      }
      input.monitors.append(report)
      // Label delays per label of the dataset, once per dataset.
      if !delaysShown.contains(monitor.dataset),
        let dataset = config.datasets.first(where: { $0.name == monitor.dataset })
      {
        delaysShown.insert(monitor.dataset)
        for label in dataset.labels {
          guard let counts = delays[label] else { continue }
          let total = report.slices.first?.points.reduce(Int64(0)) { $0 + $1.rows } ?? 0
          input.labelDelays.append(
            LabelDelays(
              label: label, dataset: dataset.name, counts: counts,
              withoutFeedback: max(0, total - counts.reduce(0, +))))
        }
      }
    }
    for dataset in config.datasets {
      input.datasets.append(DatasetVolume(name: dataset.name, perHour: rowsPerHour(dataset)))
    }
    var rejects: [String: Int64] = [:]
    for file in files(config.stateDir + "/rejects", suffix: ".jsonl") {
      for record in jsonLines(file) { rejects[record["reason"]?.stringValue ?? "?", default: 0] += 1 }
    }
    input.rejects = rejects.map { Count(name: $0.key, count: $0.value) }.sorted {
      ($1.count, $0.name) < ($0.count, $1.name)
    }
    var orphans: [String: Int64] = [:]
    var orphansPerHour: [Int64: Int64] = [:]
    for file in files(config.stateDir + "/side/orphans", suffix: ".jsonl") {
      for record in jsonLines(file) {
        orphans[record["type"]?.stringValue ?? "?", default: 0] += 1
        if let t = time(record["time"]) {
          orphansPerHour[DatasetLayout.partition(of: t).end - 3_600_000_000_000, default: 0] += 1
        }
      }
    }
    input.orphans = orphans.map { Count(name: $0.key, count: $0.value) }.sorted {
      ($1.count, $0.name) < ($0.count, $1.name)
    }
    input.orphansPerHour = orphansPerHour.keys.sorted().map { TimeCount(time: $0, count: orphansPerHour[$0]!) }
    return ReportPage.render(input)
  }

  static func time(_ value: JSONValue?) -> Int64? {
    guard let text = value?.stringValue else { return nil }
    return Timestamp.parse(text: text)
  }

  /// The complete lines of a JSONL file that parse as JSON (a running daemon may be mid-line).
  static func jsonLines(_ path: String) -> [JSONValue] {
    guard let data = FileManager.default.contents(atPath: path) else { return [] }
    var result: [JSONValue] = []
    var start = data.startIndex
    while let newline = data[start...].firstIndex(of: 0x0A) {
      if let value = try? JSONValue.parse(Array(data[start..<newline])) { result.append(value) }
      start = newline + 1
    }
    return result
  }

  static func files(_ directory: String, suffix: String) -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    return names.filter { $0.hasSuffix(suffix) && !$0.hasPrefix(".") }.sorted().map { directory + "/" + $0 }
  }

  /// Rows per hour partition: the lines of its finished segment files (CSV: less the header).
  static func rowsPerHour(_ dataset: DatasetConfig) -> [TimeCount] {
    var result: [TimeCount] = []
    let dates = files(dataset.path, suffix: "").filter { $0.contains("/date=") }
    for date in dates {
      let day = String(date[date.range(of: "/date=")!.upperBound...])
      for hourDir in files(date, suffix: "").filter({ $0.contains("/hour=") }) {
        let hour = String(hourDir[hourDir.range(of: "/hour=")!.upperBound...])
        guard let t = Timestamp.parse(text: "\(day)T\(hour):00:00Z") else { continue }
        var rows: Int64 = 0
        for file in files(hourDir, suffix: "").filter({ $0.contains("/part-") }) {
          guard let data = FileManager.default.contents(atPath: file) else { continue }
          var bytes = [UInt8](data)
          if GzipInflater.hasMagic(bytes) {
            var inflated: [UInt8] = []
            let inflater = GzipInflater()
            let ok: Bool = bytes.withUnsafeBytes { raw in (try? inflater.inflate(raw, into: &inflated)) != nil }
            guard ok else { continue }
            bytes = inflated
          }
          var lines = Int64(bytes.lazy.filter { $0 == 0x0A }.count)
          if file.hasSuffix(".csv"), lines > 0 { lines -= 1 }
          rows += lines
        }
        result.append(TimeCount(time: t, count: rows))
      }
    }
    return result.sorted { $0.time < $1.time }
  }
}
