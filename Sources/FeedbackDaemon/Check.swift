import FeedbackConfig
import Foundation
import Labeling
import LogFormats
import LogTail

/// `feedbackd check`: the configuration is valid; here is what each source matches, which
/// format each file is in, and how sample lines are classified — and, for lines that are not
/// events, why.
public enum Check {
  /// - Parameters:
  ///   - sampleLines: lines of each source's first file shown one by one.
  ///   - summaryLines: lines of that file counted by outcome.
  public static func report(
    config: FeedbackConfig.Configuration, sampleLines: Int = 8, summaryLines: Int = 1000
  ) throws -> String {
    let rules = try RulesBuilder.rules(from: config)
    var out = "configuration ok: \(config.sources.count) source(s), \(rules.feedbackTypes.count) feedback type(s), "
    out += "\(rules.labels.count) label(s), \(config.datasets.count) dataset(s)\n"
    for source in config.sources {
      let configured = LogFormat(rawValue: source.format)
      let files = rotationOrdered(expandGlobs(source.paths))
      out += "source \(source.name) (format \(source.format)): \(source.paths.joined(separator: ", "))\n"
      if files.isEmpty { out += "  no files match\n" }
      var formats: [String: LogFormat?] = [:]
      for path in files {
        let reader = try? LogFileReader(path: path, chunkSize: 4096)
        let size = reader?.fileSize() ?? -1
        let detected = FormatDetector.detect(FileSample.head(path: path, maxLineBytes: source.maxLineBytes))
        formats[path] = detected
        out += "  \(path)  \(size) bytes\(reader?.isGzip == true ? ", gzip" : ""), "
        out += "looks like \(detected?.rawValue ?? "no known format")\n"
        if let configured, let detected, detected != configured,
          !(configured == .json && detected == .logstash)
        {
          out += "    warning: the configuration says format \(configured.rawValue), but these lines look like "
          out += "\(detected.rawValue) (set format: \(detected.rawValue), or format: auto)\n"
        }
      }
      guard let first = files.first(where: { (try? Fingerprint.of(path: $0, isComplete: true)) != nil }) else {
        continue
      }
      let format = configured ?? (formats[first] ?? nil) ?? .json
      out += "  sample of \(first), read as \(format.rawValue):\n"
      out += try sample(
        path: first, format: format, source: source, rules: rules, show: sampleLines, count: summaryLines)
    }
    for dataset in config.datasets {
      out +=
        "dataset \(dataset.name): \(dataset.path) (\(dataset.format.rawValue)), labels \(dataset.labels.joined(separator: ", "))\n"
    }
    return out
  }

  /// Reads the file's first lines exactly as the pipeline does (same reader, same scan, same
  /// rules), shows the first `show` of them and counts outcomes over `count`.
  static func sample(
    path: String, format: LogFormat, source: SourceConfig, rules: Rules, show: Int, count: Int
  ) throws -> String {
    let reader = EventReader(
      format: format, timeField: source.timeField, paths: rules.fieldPaths, maxEventBytes: source.maxLineBytes)
    let cursor = try LineCursor(path: path, from: 0, maxLineBytes: source.maxLineBytes)
    var out = ""
    var lineNumber = 0
    var tally: [String: Int] = [:]
    var rejects: [String: Int] = [:]
    while lineNumber < count {
      var shown: [String] = []
      let step = try cursor.step(maxLines: count - lineNumber, flushPartial: true) { item in
        lineNumber += 1
        let visible = lineNumber <= show
        switch item {
        case .line(let bytes, let offset, _):
          reader.read(bytes, offset: offset) { outcome, event in
            let (kind, text) = describe(outcome, event, rules: rules)
            if case .rejected(let reason, _, _) = outcome { rejects[reason.rawValue, default: 0] += 1 }
            tally[kind, default: 0] += 1
            if visible { shown.append("line \(lineNumber) @\(offset): \(text)") }
          }
        case .tooLong(let offset, _):
          rejects["line_too_long", default: 0] += 1
          tally["rejected", default: 0] += 1
          if visible { shown.append("line \(lineNumber) @\(offset): rejected: line_too_long") }
        case .passed:
          // Only a cursor whose reader scans ahead passes lines over; this one does not.
          break
        }
      }
      for line in shown { out += "    \(line)\n" }
      if step == .endOfData { break }
    }
    for (reason, offset) in reader.finish() {
      rejects[reason.rawValue, default: 0] += 1
      tally["rejected", default: 0] += 1
      if lineNumber <= show { out += "    @\(offset): rejected: \(reason.rawValue) (at the end of the sample)\n" }
    }
    let order = ["prediction"] + rules.feedbackTypes.map(\.name) + ["ignored", "no key", "skipped", "rejected"]
    let counts = order.compactMap { kind in tally[kind].map { "\(kind) \($0)" } }
    out += "  first \(lineNumber) line(s): \(counts.isEmpty ? "no events" : counts.joined(separator: ", "))"
    if !rejects.isEmpty {
      out +=
        " (rejected: \(rejects.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))"
    }
    out += "\n"
    if tally["prediction"] == nil {
      if tally.keys.allSatisfy({ $0 == "rejected" || $0 == "held" || $0 == "skipped" }) {
        out += "  hint: no sampled line is an event: is the format right? (see the format each file looks like)\n"
      } else {
        out += "  hint: no sampled line is a prediction; the ignored lines above show the condition that fails\n"
      }
    }
    return out
  }

  /// The kind counted in the summary, and the line shown for one outcome.
  static func describe(_ outcome: EventReader.Outcome, _ event: ScannedEvent, rules: Rules) -> (String, String) {
    switch outcome {
    case .rejected(let reason, let m, _):
      return ("rejected", "rejected: \(reason.rawValue)\(m.map { " (member \($0))" } ?? "")")
    case .skipped(let reason):
      return ("skipped", "skipped: \(reason.rawValue)")
    case .held:
      return ("held", "held: part of an event continued on a later line")
    case .event:
      break
    }
    let time = Timestamp.format(event.time, fractionDigits: 3)
    switch rules.classify(event) {
    case .prediction(let key):
      return ("prediction", "prediction key=\(key) time=\(time)")
    case .feedback(let type, let key):
      let name = rules.feedbackTypes[type].name
      return (name, "feedback \(name) key=\(key) time=\(time)")
    case .ignored:
      return ("ignored", "ignored (time=\(time)): " + whyIgnored(rules.whyIgnored(event)))
    case .missingKey:
      return ("no key", "no key (time=\(time)): " + rules.whyNoKey(event))
    }
  }
}

/// `event is "http_request": prediction needs "prediction", click needs "click"`: the failed
/// conditions grouped by the field and what it holds.
func whyIgnored(_ mismatches: [Rules.Mismatch]) -> String {
  var groups: [(path: String, found: String?, needs: [String])] = []
  for mismatch in mismatches {
    let need = "\(mismatch.rule) needs \(mismatch.expected)"
    if let index = groups.firstIndex(where: { $0.path == mismatch.path && $0.found == mismatch.found }) {
      groups[index].needs.append(need)
    } else {
      groups.append((mismatch.path, mismatch.found, [need]))
    }
  }
  return groups.map { group in
    "\(group.path) \(group.found.map { "is \($0)" } ?? "is missing"): \(group.needs.joined(separator: ", "))"
  }.joined(separator: "; ")
}

/// The first lines of a file, for format detection and `check`.
enum FileSample {
  static func head(path: String, maxLineBytes: Int, lines: Int = FormatDetector.sampleLines) -> [[UInt8]] {
    guard let cursor = try? LineCursor(path: path, from: 0, maxLineBytes: maxLineBytes) else { return [] }
    var result: [[UInt8]] = []
    var handed = 0
    while handed < lines {
      let step = try? cursor.step(maxLines: lines - handed, flushPartial: false) { item in
        handed += 1
        if case .line(let bytes, _, _) = item { result.append(Array(bytes)) }
      }
      if step != .more { break }
    }
    return result
  }
}
