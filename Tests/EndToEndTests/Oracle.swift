import Foundation

/// The expected dataset rows, computed straight from the log lines with Foundation's JSON
/// parser and the system's gzip: an independent reading of DESIGN.md §4, not the production
/// code path.
struct Oracle {
  struct Prediction {
    var key: String
    var time: Int64  // milliseconds
    var object: [String: Any]
  }
  struct Feedback {
    var key: String
    var time: Int64
    var line: Data
    var object: [String: Any]
    var order: Int
  }

  static let minuteMs: Int64 = 60_000
  var predictions: [String: Prediction] = [:]
  var clicks: [String: [Feedback]] = [:]
  var purchases: [String: [Feedback]] = [:]
  var maxTime: Int64 = .min
  var rejected = 0
  var lines = 0

  /// Reads the files in the given order (oldest first).
  init(files: [String], timeField: String = "@timestamp") throws {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    var order = 0
    for file in files {
      let data = try readDecompressed(file)
      var pieces = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
      if pieces.last?.isEmpty == true { pieces.removeLast() }
      for rawLine in pieces {
        let line = Data(rawLine)
        order += 1
        lines += 1
        guard let object = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any],
          let stamp = object[timeField] as? String, let date = formatter.date(from: stamp)
        else {
          rejected += 1
          continue
        }
        let time = Int64((date.timeIntervalSince1970 * 1000).rounded())
        maxTime = max(maxTime, time)
        guard let event = object["event"] as? String, let key = object["request_id"] as? String else { continue }
        switch event {
        case "prediction":
          if let existing = predictions[key], existing.time <= time { continue }
          predictions[key] = Prediction(key: key, time: time, object: object)
        case "click":
          clicks[key, default: []].append(Feedback(key: key, time: time, line: line, object: object, order: order))
        case "purchase":
          purchases[key, default: []].append(Feedback(key: key, time: time, line: line, object: object, order: order))
        default:
          break
        }
      }
    }
  }

  /// Feedback in [tp, tp + window), earliest first, identical lines once, and (if given)
  /// equal dedupe values once.
  func attributed(_ list: [Feedback]?, tp: Int64, window: Int64, dedupe: String? = nil) -> [Feedback] {
    var seenLines = Set<Data>()
    var seenValues = Set<String>()
    return (list ?? []).filter { $0.time >= tp && $0.time < tp + window }
      .sorted { ($0.time, $0.order) < ($1.time, $1.order) }
      .filter { f in
        guard seenLines.insert(f.line).inserted else { return false }
        if let dedupe, let value = f.object[dedupe] { return seenValues.insert("\(value)").inserted }
        return true
      }
  }

  /// Expected rows per dataset, keyed by prediction key. Without flush, only rows whose
  /// windows the final watermark (max event time - 5 s) has reached.
  func expected(flush: Bool) -> (ctr: [String: [String: Any]], conversions: [String: [String: Any]]) {
    let watermark = maxTime - 5_000
    var ctr: [String: [String: Any]] = [:]
    var conversions: [String: [String: Any]] = [:]
    let clickWindow = 30 * Oracle.minuteMs
    let purchaseWindow = 24 * 60 * Oracle.minuteMs
    for p in predictions.values {
      if flush || p.time + clickWindow <= watermark {
        let c = attributed(clicks[p.key], tp: p.time, window: clickWindow)
        ctr[p.key] = [
          "predicted_at": p.time, "clicked": c.isEmpty ? 0 : 1, "clicked_at": c.first?.time as Any,
          "clicks": c.count, "model_version": p.object["model_version"] as Any, "score": p.object["score"] as Any,
          "category": (p.object["features"] as? [String: Any])?["item_category"] as Any,
        ]
      }
      if flush || p.time + purchaseWindow <= watermark {
        let b = attributed(purchases[p.key], tp: p.time, window: purchaseWindow, dedupe: "order_id")
        conversions[p.key] = [
          "predicted_at": p.time, "purchased": b.isEmpty ? 0 : 1, "purchased_at": b.first?.time as Any,
          "revenue": b.reduce(0.0) { $0 + (($1.object["value"] as? NSNumber)?.doubleValue ?? 0) },
          "first_order": b.first?.object["order_id"] as Any, "prediction": p.object,
        ]
      }
    }
    return (ctr, conversions)
  }
}

/// Rows a dataset directory holds in visible files, in file order, with their file names.
func readDataset(_ dir: String) throws -> [(file: String, row: [String: Any])] {
  var rows: [(String, [String: Any])] = []
  for file in listFiles(dir) {
    let name = (file as NSString).lastPathComponent
    guard name.hasPrefix("part-") else { continue }
    let data = try readDecompressed(dir + "/" + file)
    for line in data.split(separator: UInt8(ascii: "\n")) {
      guard let object = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
        throw CocoaError(.coderReadCorrupt)
      }
      rows.append((file, object))
    }
  }
  return rows
}

/// Milliseconds since the epoch from the dataset's RFC 3339 timestamps.
func millis(_ value: Any?) -> Int64? {
  guard let text = value as? String else { return nil }
  let formatter = ISO8601DateFormatter()
  formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
  return formatter.date(from: text).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) }
}
