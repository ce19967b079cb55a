import FeedbackConfig
import Foundation
import GRDB
import Gzip
import LogTail
import Logging
import TestSupport
import Testing

@testable import FeedbackDaemon

/// Replays with lines scanned ahead (on each file's read-ahead thread) and in line give the
/// same datasets, rejects and counts, on real files: plain and gzip, several chunks each, with
/// lines across chunk boundaries, CRLF endings, over-long lines, bad lines and a partial last line.
@Suite struct ScanAheadReplayTests {
  static func logLine(_ format: String, time: Int64, json: String) -> String {
    let seconds = Double(time) / 1e9
    switch format {
    case "fluentd": return "\(seconds)\tapp.shop\t\(json)"
    case "json": return json.replacingOccurrences(of: "\"@timestamp\"", with: "\"time\"")
    default: return json
    }
  }

  /// About 1.2 MB per file: predictions and clicks, and every kind of line that is rejected.
  static func writeLogs(dir: String, format: String) throws {
    var rng = SplitMix64(seed: 99)
    var time: Int64 = 1_796_029_200 * 1_000_000_000
    var request = 0
    func file(_ name: String, gzip: Bool, partialLast: Bool) throws {
      var text = ""
      while text.utf8.count < 1_200_000 {
        time += Int64(rng.below(20)) * 1_000_000
        let stamp = "\"@timestamp\":\(Double(time) / 1e9)"
        let kind = rng.below(100)
        var line: String
        if kind < 55 {
          request += 1
          line = Self.logLine(
            format, time: time,
            json:
              "{\(stamp),\"event\":\"prediction\",\"request_id\":\"r\(request)\",\"score\":0.\(rng.below(1000)),\"model_version\":\"v\(rng.below(3))\",\"features\":{\"item_category\":\"c\(rng.below(9))\"}}"
          )
        } else if kind < 75 {
          line = Self.logLine(
            format, time: time,
            json: "{\(stamp),\"event\":\"click\",\"request_id\":\"r\(max(1, request - rng.below(50)))\"}")
        } else if kind < 80 {
          line = Self.logLine(
            format, time: time, json: "{ \(stamp) , \"event\" : \"cl\\u0069ck\", \"request_id\":\"r\(request)\" }")
        } else if kind < 82 {
          line = "not json at all"
        } else if kind < 83 {
          line = Self.logLine(format, time: time, json: "{\(stamp),\"broken\": ")
        } else if kind < 85 {
          line = ""
        } else if kind < 87 {
          line = Self.logLine(format, time: time, json: "{\"@timestamp\":\"never\",\"event\":\"click\"}")
        } else if kind < 89 {
          line = Self.logLine(format, time: time, json: "{\"event\":\"no time\"}")
        } else if kind < 90 {
          // Over `max_line_bytes`; now and then longer than a read-ahead chunk.
          let length = rng.below(20) == 0 ? 600_000 : 700 + rng.below(500)
          line = Self.logLine(
            format, time: time, json: "{\(stamp),\"pad\":\"\(String(repeating: "x", count: length))\"}")
        } else {
          line = Self.logLine(format, time: time, json: "{\(stamp),\"event\":\"other\",\"n\":\(kind)}")
        }
        if rng.below(10) == 0 { line += "\r" }
        text += line + "\n"
      }
      if partialLast {
        text += Self.logLine(format, time: time, json: "{\"@timestamp\":\(Double(time) / 1e9),\"event\":\"click\"}")
      }
      let bytes = Array(text.utf8)
      try Data(gzip ? GzipDeflater.compress(bytes) : bytes).write(to: URL(fileURLWithPath: dir + "/" + name))
    }
    try file("app.log.2.gz", gzip: true, partialLast: false)
    try file("app.log.1", gzip: false, partialLast: false)
    try file("app.log", gzip: false, partialLast: true)
  }

  static func config(logs: String, state: String, format: String) throws -> FeedbackConfig.Configuration {
    try Configuration.parse(
      yaml: """
        state_dir: \(state)
        sources:
          - name: shop
            paths: ["\(logs)/app.log*"]
            format: \(format)
            max_line_bytes: 1000
        events:
          prediction: { where: { event: prediction }, key: request_id }
          feedback:
            click: { where: { event: click }, key: request_id }
        labels:
          clicked: { from: click, window: 1m }
          clicks: { from: click, window: 1m, value: count }
        datasets:
          - name: ctr
            path: \(state)/out/ctr
            labels: [clicked, clicks]
            columns: [model_version, score, { path: features.item_category, as: category }]
            format: jsonl
            roll: { max_bytes: 256KiB, max_age: 3h }
        """, baseDirectory: logs)
  }

  /// Every file under `dir` (relative path → bytes), the state database left out.
  static func contents(_ dir: String) throws -> [String: Data] {
    var result: [String: Data] = [:]
    let enumerator = FileManager.default.enumerator(atPath: dir)!
    while let name = enumerator.nextObject() as? String {
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: dir + "/" + name, isDirectory: &isDirectory), !isDirectory.boolValue,
        !name.hasPrefix("state.sqlite")
      else { continue }
      result[name] = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
    }
    return result
  }

  /// A feedback line scanned ahead carries its hash as the pipeline would compute it in line
  /// (`LogTail.lineHash` of the same bytes): identical feedback lines are one event, whichever
  /// path each was read by, and the hash outlives a restart in the state. Other lines carry
  /// none; the class and key hash come along as before.
  @Test func feedbackLinesAreHashedAheadAsInLine() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("hash-ahead-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: root + "/logs", withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: root) }
    let config = try Self.config(logs: root + "/logs", state: root + "/state", format: "logstash")
    let queue = try StateDatabase.open(stateDir: config.stateDir)
    try StateDatabase.run(queue) { db in
      let pipeline = try Pipeline(config: config, db: db, logger: Logger(label: "test"))
      defer { pipeline.close() }
      let scanner = LineScanAhead(
        decoder: pipeline.decoders[0], selector: pipeline.selectors[0], rules: pipeline.rules,
        keyHashSeed: pipeline.state.keyHashSeed)
      let batch = try #require(scanner.makeBatch() as? LineScanAhead.Batch)
      let stamp = "\"@timestamp\":\"2026-11-30T09:00:00.000Z\""
      let lines: [(text: String, feedback: Bool)] = [
        ("{\(stamp),\"event\":\"click\",\"request_id\":\"r1\"}", true),
        ("{\(stamp),\"event\":\"prediction\",\"request_id\":\"r1\",\"score\":0.5}", false),
        ("{\(stamp),\"event\":\"other\"}", false),
        ("{ \(stamp) , \"event\" : \"click\", \"request_id\" : \"r2\", \"note\":\"a b\" }", true),
        ("{\(stamp),\"event\":\"click\",\"request_id\":\"r\\u0033\"}", true),
        ("{\(stamp),\"event\":\"click\",\"request_id\":\"r1\",\"extra\":1}", true),
      ]
      for line in lines { _ = Array(line.text.utf8).withUnsafeBytes { batch.append($0) } }
      for (index, line) in lines.enumerated() {
        let (matched, keyHash, hash) = batch.digest(index)
        let expected = line.feedback ? Array(line.text.utf8).withUnsafeBytes { LogTail.lineHash($0) } : nil
        #expect(hash == expected, "\(line.text)")
        #expect((matched == .prediction || line.feedback) == (keyHash != nil), "\(line.text)")
      }
    }
  }

  /// A line found ahead to match no rule skips its fields (`Pipeline.handle` takes only its
  /// time) but is still an event: it is counted, and its time moves the watermark, so a
  /// prediction whose window it passes gets its row without a flush, and one it does not pass
  /// stays pending. Read ahead and in line alike.
  @Test(arguments: [true, false])
  func eventsMatchingNoRuleMoveTheWatermark(scanAhead: Bool) throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("ignored-\(UUID().uuidString)").path
    let logs = root + "/logs"
    try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: root) }
    func line(_ minutes: Int, _ rest: String) -> String {
      "{\"@timestamp\":\"2026-11-30T09:\(minutes < 10 ? "0" : "")\(minutes):00.000Z\",\(rest)}"
    }
    let text =
      [
        line(0, "\"event\":\"prediction\",\"request_id\":\"r1\",\"score\":0.5,\"model_version\":\"v1\""),
        line(0, "\"event\":\"click\",\"request_id\":\"r1\""),
        line(1, "\"event\":\"prediction\",\"request_id\":\"r2\",\"score\":0.25,\"model_version\":\"v1\""),
        line(1, "\"event\":\"other\",\"n\":1"),
        // Past r1's window (1m; the watermark is 5s behind the newest time), not r2's: only
        // this line, which matches no rule, makes r1's row final.
        line(2, "\"event\":\"other\",\"n\":2"),
      ].joined(separator: "\n") + "\n"
    try Data(text.utf8).write(to: URL(fileURLWithPath: logs + "/app.log"))
    let state = root + "/state"
    let summary = try Replay.run(
      config: try Self.config(logs: logs, state: state, format: "logstash"),
      options: ReplayOptions(flush: false, scanAhead: scanAhead), logger: Logger(label: "test"))
    #expect(summary.ignored == 2)
    #expect(summary.predictions == 2)
    #expect(summary.pendingPredictions == 1)
    #expect(summary.rows.first?.1 == 1)
    #expect(summary.linesScannedAhead == (scanAhead ? 5 : 0))
    let rows = try Self.contents(state).filter { $0.key.hasPrefix("out/ctr/") && $0.key.hasSuffix(".jsonl") }
    let written = rows.values.map { String(decoding: $0, as: UTF8.self) }.joined()
    #expect(written.contains("\"key\":\"r1\"") && written.contains("\"clicked\":1"))
    #expect(!written.contains("r2"))
  }

  @Test(arguments: ["logstash", "json", "fluentd"])
  func scanningAheadChangesNothing(format: String) throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("scan-ahead-\(UUID().uuidString)").path
    let logs = root + "/logs"
    try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: root) }
    try Self.writeLogs(dir: logs, format: format)
    var summaries: [[Substring]] = []
    var trees: [[String: Data]] = []
    for scanAhead in [true, false] {
      let state = root + (scanAhead ? "/ahead" : "/inline")
      let summary = try Replay.run(
        config: try Self.config(logs: logs, state: state, format: format),
        options: ReplayOptions(flush: true, commitEveryLines: 5000, scanAhead: scanAhead),
        logger: Logger(label: "test"))
      // Times differ from run to run.
      let timed = ["elapsed", "waited", "commits"]
      summaries.append(summary.text.split(separator: "\n").filter { line in !timed.contains { line.hasPrefix($0) } })
      trees.append(try Self.contents(state))
      let lines = summary.lines
      #expect(lines > 8_000)
      if scanAhead {
        // All but the lines across chunk boundaries (and the partial last line).
        #expect(summary.linesScannedAhead > lines * 9 / 10, "\(summary.linesScannedAhead) of \(lines)")
      } else {
        #expect(summary.linesScannedAhead == 0)
      }
    }
    #expect(summaries[0] == summaries[1])
    #expect(trees[0].keys.sorted() == trees[1].keys.sorted())
    #expect(trees[0].keys.contains { $0.hasPrefix("out/ctr") } && trees[0].keys.contains { $0.hasPrefix("rejects") })
    for (name, data) in trees[0] { #expect(data == trees[1][name], "\(name) differs") }
    let rejects = summaries[0].filter { $0.hasPrefix("rejects") }
    let reasons =
      format == "fluentd"
      ? ["line_too_long", "invalid_json", "blank_line", "bad_fluentd_line"]
      : ["line_too_long", "invalid_json", "blank_line", "bad_time", "missing_time"]
    for reason in reasons {
      #expect(rejects.contains { $0.contains(reason) }, "no \(reason) in \(rejects)")
    }
  }

  /// Commits whose SQL runs on a thread of its own (replay's, between batches of lines) write
  /// exactly what commits made in line write: the same datasets, rejects and counts with a
  /// flush, and without one the same join state and read positions left in SQLite.
  @Test func committingInTheBackgroundChangesNothing() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("bg-commit-\(UUID().uuidString)").path
    let logs = root + "/logs"
    try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: root) }
    try Self.writeLogs(dir: logs, format: "logstash")
    for flush in [true, false] {
      var summaries: [[Substring]] = []
      var trees: [[String: Data]] = []
      var tables: [[String]] = []
      for background in [true, false] {
        let state = root + "/\(flush ? "flushed" : "open")-\(background ? "background" : "inline")"
        let summary = try Replay.run(
          config: try Self.config(logs: logs, state: state, format: "logstash"),
          options: ReplayOptions(flush: flush, commitEveryLines: 3000, commitInBackground: background),
          logger: Logger(label: "test"))
        if background {
          #expect(summary.backgroundCommits.count >= 2, "\(summary.text)")
        } else {
          #expect(summary.backgroundCommits.count == 0)
        }
        let timed = ["elapsed", "waited", "commits"]
        summaries.append(summary.text.split(separator: "\n").filter { line in !timed.contains { line.hasPrefix($0) } })
        trees.append(try Self.contents(state))
        let queue = try DatabaseQueue(path: state + "/state.sqlite")
        tables.append(
          try queue.read { db in
            let files =
              "SELECT source, fingerprint, path, offset, finished, quarantined FROM files ORDER BY source, fingerprint"
            // The last checkpoint, but for its wall-clock time: the datasets' segments and
            // lengths a background commit's writer threads cut included.
            var checkpoint = try JSONDecoder().decode(
              Checkpoint.self,
              from: try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE name = 'checkpoint'") ?? Data())
            checkpoint.committedAt = nil
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            let meta = String(decoding: try encoder.encode(checkpoint), as: UTF8.self)
            return try joinTables(db) + Row.fetchAll(db, sql: files).map { "files \($0)" } + [meta]
          })
      }
      #expect(summaries[0] == summaries[1])
      #expect(trees[0].keys.sorted() == trees[1].keys.sorted())
      for (name, data) in trees[0] { #expect(data == trees[1][name], "\(name) differs") }
      #expect(tables[0] == tables[1])
      if !flush {
        #expect(tables[0].contains { $0.hasPrefix("SELECT seq, key, tim") }, "pending predictions were left in SQLite")
      }
    }
  }
}
