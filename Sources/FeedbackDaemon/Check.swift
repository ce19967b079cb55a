import FeedbackConfig
import Foundation
import Labeling
import LogFormats
import LogTail

/// `feedbackd check`: the configuration is valid; here is what each source matches and how
/// its first lines are classified.
public enum Check {
  public static func report(config: FeedbackConfig.Configuration, sampleLines: Int = 5) throws -> String {
    let rules = try RulesBuilder.rules(from: config)
    var out = "configuration ok: \(config.sources.count) source(s), \(rules.feedbackTypes.count) feedback type(s), "
    out += "\(rules.labels.count) label(s), \(config.datasets.count) dataset(s)\n"
    for source in config.sources {
      let files = rotationOrdered(expandGlobs(source.paths))
      out += "source \(source.name) (\(source.format)): \(source.paths.joined(separator: ", "))\n"
      if files.isEmpty { out += "  no files match\n" }
      for path in files {
        let reader = try? LogFileReader(path: path, chunkSize: 4096)
        let size = reader?.fileSize() ?? -1
        out += "  \(path)  \(size) bytes\(reader?.isGzip == true ? ", gzip" : "")\n"
      }
      guard let first = files.first(where: { (try? Fingerprint.of(path: $0, isComplete: true)) != nil }) else {
        continue
      }
      out += "  sample of \(first):\n"
      let decoder = LineDecoder(format: LogFormat(rawValue: source.format) ?? .json, timeField: source.timeField)
      // Scanned and classified exactly as the pipeline does it.
      let selector = decoder.selector(for: rules.fieldPaths)
      var scanned = ScannedEvent(
        time: 0, json: UnsafeRawBufferPointer(start: nil, count: 0), fields: ScannedFields(count: selector.paths.count))
      let cursor = try LineCursor(path: first, from: 0, maxLineBytes: source.maxLineBytes)
      var shown = 0
      while shown < sampleLines {
        var lines: [String] = []
        let step = try cursor.step(maxLines: sampleLines - shown, flushPartial: true) { item in
          switch item {
          case .line(let bytes, _, _):
            let reason = decoder.scan(bytes, selector: selector, into: &scanned)
            lines.append(describe(reason, scanned, rules: rules))
          case .tooLong:
            lines.append("rejected: line_too_long")
          }
        }
        for line in lines { out += "    \(line)\n" }
        shown += lines.count
        if step == .endOfData { break }
      }
    }
    for dataset in config.datasets {
      out +=
        "dataset \(dataset.name): \(dataset.path) (\(dataset.format.rawValue)), labels \(dataset.labels.joined(separator: ", "))\n"
    }
    return out
  }

  static func describe(_ rejected: RejectReason?, _ event: ScannedEvent, rules: Rules) -> String {
    if let rejected { return "rejected: \(rejected.rawValue)" }
    let time = Timestamp.format(event.time, fractionDigits: 3)
    switch rules.classify(event) {
    case .prediction(let key): return "prediction key=\(key) time=\(time)"
    case .feedback(let type, let key): return "feedback \(rules.feedbackTypes[type].name) key=\(key) time=\(time)"
    case .ignored: return "ignored (matches no event rule) time=\(time)"
    case .missingKey: return "matches a rule but has no usable key time=\(time)"
    }
  }
}
