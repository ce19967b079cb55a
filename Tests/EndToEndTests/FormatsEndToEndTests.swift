import Foundation
import Testing

/// The wrapper formats end to end: the same generated events, written by `feedbackd-loggen` in
/// each format (rotated, gzipped, multi-member), replayed by the real binary.
@Suite(.serialized) struct FormatsEndToEndTests {
  static let wrappers = ["docker", "cri", "gcp", "cloudwatch", "azure", "elasticsearch"]

  /// Every dataset file (name and bytes) below `dir`.
  static func tree(_ dir: String) throws -> [String: Data] {
    var tree: [String: Data] = [:]
    for file in listFiles(dir) { tree[file] = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + file)) }
    return tree
  }

  /// Replays `format` logs of `corpus` into `root` and returns the dataset files.
  static func replay(
    _ corpus: ReplayEndToEndTests.Corpus, format: String, root: String, flush: Bool = true
  ) throws -> (tree: [String: Data], stdout: String) {
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    let config = try writeConfig(
      dir: root, logs: corpus.logs, stateDir: root + "/state", datasets: root + "/datasets", format: format)
    let result = try ReplayEndToEndTests.replay(config, flush: flush)
    return (try tree(root + "/datasets"), result.stdout)
  }

  @Test(arguments: wrappers)
  func sameEventsGiveTheRowsOfTheLogstashForm(format: String) throws {
    let options = ["--junk-rate", "0.03"]
    let logstash = try ReplayEndToEndTests.generate(seed: 61, predictions: 600, extra: options)
    let wrapped = try ReplayEndToEndTests.generate(seed: 61, predictions: 600, extra: options + ["--format", format])
    #expect(wrapped.files.contains { $0.hasSuffix(".gz") })
    let expected = try Self.replay(logstash, format: "logstash", root: logstash.dir + "/out")
    #expect(expected.tree.count > 10)
    let got = try Self.replay(wrapped, format: format, root: wrapped.dir + "/out")
    #expect(got.tree.keys.sorted() == expected.tree.keys.sorted())
    for (file, bytes) in expected.tree where got.tree[file] != bytes {
      Issue.record("\(format): \(file) differs from the logstash form")
    }
    // Junk inside a wrapper is rejected for what it is; CloudWatch subscriptions start with a
    // control message, bulk files have deletes: both skipped, not rejected.
    #expect(got.stdout.contains(format == "gcp" ? "missing_payload" : "invalid_"), "\(got.stdout)")
    if format == "cloudwatch" { #expect(got.stdout.contains("control_message 5"), "\(got.stdout)") }
    if format == "elasticsearch" { #expect(got.stdout.contains("bulk_delete"), "\(got.stdout)") }
    // Detected per file, the same again.
    let auto = try Self.replay(wrapped, format: "auto", root: wrapped.dir + "/auto")
    #expect(auto.tree == got.tree, "format: auto read \(format) differently")
  }

  // MARK: Held events across restarts

  /// The application's logstash lines of a generated one-file log.
  static func applicationLines(seed: Int, predictions: Int) throws -> (dir: String, lines: [String]) {
    let dir = try makeTempDir("held\(seed)")
    let result = try run(
      Binaries.loggen,
      [
        "--out", dir + "/input", "--seed", "\(seed)", "--predictions", "\(predictions)", "--files", "1",
        "--junk-rate", "0",
      ])
    #expect(result.status == 0, "\(result.stderr)")
    let text = try String(contentsOfFile: dir + "/input/app.log", encoding: .utf8)
    return (dir, text.split(separator: "\n").map(String.init))
  }

  static func jsonString(_ text: String) -> String {
    let data = try! JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
    return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
  }

  /// The lines in `format`, every prediction split in two parts with the next line of the
  /// other stream between them (CRI, docker) or preceded by its bulk action (Elasticsearch).
  /// Returns the lines and the indices right after which a restart lands inside a held event.
  static func heldLines(_ app: [String], format: String) -> (lines: [String], cuts: [Int]) {
    var lines: [String] = []
    var cuts: [Int] = []
    var index = 0
    var time = ""
    while index < app.count {
      let line = app[index]
      index += 1
      // The wrapper's time is the application's (the default time for docker and CRI).
      if let field = line.range(of: #""@timestamp":""#), let end = line[field.upperBound...].firstIndex(of: "\"") {
        time = String(line[field.upperBound..<end])
      }
      let isPrediction = line.contains(#""event":"prediction""#) && line.count > 60
      switch format {
      case "elasticsearch":
        lines.append(#"{"index":{"_index":"shop"}}"#)
        if isPrediction { cuts.append(lines.count) }
        lines.append(line)
      case "cri", "docker":
        func part(_ text: String, stream: String, last: Bool) -> String {
          format == "cri"
            ? "\(time) \(stream) \(last ? "F" : "P") \(text)"
            : #"{"log":\#(jsonString(text + (last ? "\n" : ""))),"stream":"\#(stream)","time":"\#(time)"}"#
        }
        guard isPrediction, index < app.count else {
          lines.append(part(line, stream: "stdout", last: true))
          continue
        }
        let cut = line.index(line.startIndex, offsetBy: 30)
        lines.append(part(String(line[..<cut]), stream: "stdout", last: false))
        lines.append(part(app[index], stream: "stderr", last: true))
        index += 1
        cuts.append(lines.count)
        lines.append(part(String(line[cut...]), stream: "stdout", last: true))
      default:
        Issue.record("no held events in \(format)")
      }
    }
    return (lines, cuts)
  }

  /// A file written in chunks that end inside held events, replayed after each chunk (each
  /// replay commits and exits: the next starts from the committed position, as after SIGKILL),
  /// gives the rows of one replay of the whole file, counts every line once, and rejects nothing.
  @Test(arguments: ["cri", "docker", "elasticsearch"])
  func heldEventsAreNeitherLostNorDoubledAcrossRestarts(format: String) throws {
    let (dir, app) = try Self.applicationLines(seed: 67, predictions: 300)
    let (lines, cuts) = Self.heldLines(app, format: format)
    let chunks = stride(from: 5, to: cuts.count, by: max(1, cuts.count / 6)).map { cuts[$0] }
    #expect(chunks.count >= 5)
    // One replay of the whole file.
    let whole = dir + "/whole"
    try FileManager.default.createDirectory(atPath: whole + "/logs", withIntermediateDirectories: true)
    try (lines.joined(separator: "\n") + "\n").write(toFile: whole + "/logs/app.log", atomically: true, encoding: .utf8)
    let expected = try Self.replay(
      ReplayEndToEndTests.Corpus(dir: whole, logs: whole + "/logs", files: []), format: format, root: whole)
    #expect(!expected.stdout.contains("unterminated") && !expected.stdout.contains("invalid"), "\(expected.stdout)")
    // The same file, growing chunk by chunk.
    let split = dir + "/split"
    try FileManager.default.createDirectory(atPath: split + "/logs", withIntermediateDirectories: true)
    let config = try writeConfig(
      dir: split, logs: split + "/logs", stateDir: split + "/state", datasets: split + "/datasets", format: format)
    let path = split + "/logs/app.log"
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    var written = 0
    var counted = 0
    for end in chunks + [lines.count] {
      handle.seekToEndOfFile()
      handle.write(Data((lines[written..<end].joined(separator: "\n") + "\n").utf8))
      written = end
      let result = try ReplayEndToEndTests.replay(config, flush: end == lines.count)
      #expect(!result.stdout.contains("unterminated") && !result.stdout.contains("invalid"), "\(result.stdout)")
      let counts = result.stdout.split(separator: "\n").first { $0.hasPrefix("lines ") }
      counted += Int(counts?.split(separator: " ")[1] ?? "") ?? -1_000_000
    }
    try handle.close()
    #expect(counted == lines.count, "lines counted twice or not at all")
    // Each replay seals its segments, so file boundaries differ; the rows may not.
    try Self.expectSameRows(split + "/datasets", whole + "/datasets")
  }

  static func expectSameRows(_ got: String, _ expected: String) throws {
    for dataset in ["ctr", "conversions"] {
      let rows = try readDataset(got + "/" + dataset).map { ReplayEndToEndTests.canonical($0.row) }
      let want = try readDataset(expected + "/" + dataset).map { ReplayEndToEndTests.canonical($0.row) }
      #expect(want.count > 100)
      #expect(rows.count == want.count, "\(dataset): \(rows.count) rows, expected \(want.count)")
      #expect(rows.sorted() == want.sorted(), "\(dataset): rows differ")
    }
  }

  /// The live daemon killed with SIGKILL again and again while a CRI log with split lines is
  /// written: every row exactly once, as one replay of the final file gives them.
  @Test func criLogSurvivesSIGKILLsInsideSplitLines() throws {
    let (dir, app) = try Self.applicationLines(seed: 71, predictions: 1200)
    let (lines, _) = Self.heldLines(app, format: "cri")
    let input = dir + "/cri.log"
    try (lines.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
    let logs = dir + "/logs"
    try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
    let config = try writeConfig(
      dir: dir, logs: logs, stateDir: dir + "/state", datasets: dir + "/datasets", format: "cri", idleTimeout: "1h")
    // No rotation: a split line cut by a rotation is lost (see the README).
    let writer = try startWriter(
      input: input, dir: logs, every: 1_000_000, styles: "rename", rate: 700)
    var generator = SystemRandomNumberGenerator()
    var kills = 0
    var daemon = try DaemonProcess(config: config)
    while kills < 10 || writer.isRunning {
      Thread.sleep(forTimeInterval: Double.random(in: 0.1...0.5, using: &generator))
      daemon.kill9()
      kills += 1
      daemon = try DaemonProcess(config: config)
      if kills > 100 { break }
    }
    #expect(waitFor(writer, timeout: 60))
    Thread.sleep(forTimeInterval: 2)
    #expect(daemon.terminate() == 0, "\(daemon.log)")
    let flush = try ReplayEndToEndTests.replay(config, flush: true)
    #expect(flush.stdout.contains("lines       0 "), "the live daemon left lines unread:\n\(flush.stdout)")
    let whole = dir + "/whole"
    try FileManager.default.createDirectory(atPath: whole + "/logs", withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: input, toPath: whole + "/logs/app.log")
    _ = try Self.replay(
      ReplayEndToEndTests.Corpus(dir: whole, logs: whole + "/logs", files: []), format: "cri", root: whole)
    try Self.expectSameRows(dir + "/datasets", whole + "/datasets")
  }
}

@Suite struct CheckFormatsTests {
  /// `check` names each file's format, warns when the configuration says another, and says
  /// for sample lines what they are and why the others are not events.
  @Test func checkShowsFormatsClassificationsAndWhyLinesAreIgnored() throws {
    let corpus = try ReplayEndToEndTests.generate(seed: 73, predictions: 200, files: 2, extra: ["--format", "cri"])
    let wrong = try writeConfig(
      dir: corpus.dir, logs: corpus.logs, stateDir: corpus.dir + "/state", datasets: corpus.dir + "/datasets",
      format: "docker")
    let warned = try run(Binaries.feedbackd, ["check", "--config", wrong])
    #expect(warned.status == 0, "\(warned.stderr)")
    #expect(warned.stdout.contains("looks like cri"), "\(warned.stdout)")
    #expect(
      warned.stdout.contains("warning: the configuration says format docker, but these lines look like cri"),
      "\(warned.stdout)")
    #expect(warned.stdout.contains("rejected: invalid_json"), "\(warned.stdout)")
    #expect(warned.stdout.contains("hint: no sampled line is an event: is the format right?"), "\(warned.stdout)")

    let auto = try writeConfig(
      dir: corpus.dir, logs: corpus.logs, stateDir: corpus.dir + "/state", datasets: corpus.dir + "/datasets",
      format: "auto")
    let result = try run(Binaries.feedbackd, ["check", "--config", auto])
    #expect(result.status == 0, "\(result.stderr)")
    let out = result.stdout
    #expect(!out.contains("warning"), "\(out)")
    for file in corpus.files { #expect(out.contains(file + "  "), "\(file) not listed") }
    #expect(out.contains("read as cri"), "\(out)")
    #expect(out.contains(#"ignored (time="#), "\(out)")
    #expect(
      out.contains(
        #"event is "http_request": prediction needs "prediction", click needs "click", purchase needs "purchase""#),
      "\(out)")
    let summary = out.split(separator: "\n").first { $0.contains("line(s): ") }
    #expect(summary?.contains("prediction ") == true && summary?.contains("ignored ") == true, "\(out)")
    // A prediction shows its key and time.
    #expect(out.contains("prediction key=r-"), "\(out)")
    #expect(
      out.range(of: #"key=r-[0-9a-f]{16} time=2026-1[12]-[0-9]{2}T"#, options: .regularExpression) != nil, "\(out)")
  }
}

@Suite struct FormatExamplesTests {
  static let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../Examples/formats").standardized.path

  /// Each sample of `Examples/formats/` with its configuration (state moved to a temp
  /// directory) gives the same rows as the logstash sample, and `check` finds its format.
  @Test func everyExampleGivesTheSameRows() throws {
    let dir = try makeTempDir("examples")
    var rows: [String: [String]] = [:]
    for format in ["logstash"] + FormatsEndToEndTests.wrappers {
      let root = dir + "/" + format
      try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
      try FileManager.default.copyItem(atPath: Self.examples + "/\(format).log", toPath: root + "/\(format).log")
      let yaml = try String(contentsOfFile: Self.examples + "/\(format).yaml", encoding: .utf8)
        .replacingOccurrences(of: "../../.feedbackd-example/formats/\(format)", with: root)
      try yaml.write(toFile: root + "/feedbackd.yaml", atomically: true, encoding: .utf8)
      let check = try run(Binaries.feedbackd, ["check", "--config", root + "/feedbackd.yaml"])
      #expect(check.stdout.contains("looks like \(format)") && !check.stdout.contains("warning"), "\(check.stdout)")
      _ = try ReplayEndToEndTests.replay(root + "/feedbackd.yaml", flush: true)
      rows[format] = try readDataset(root + "/datasets/ctr").map { ReplayEndToEndTests.canonical($0.row) }
      #expect(rows[format]?.count == 40, "\(format)")
      #expect(rows[format] == rows["logstash"], "\(format): rows differ from the logstash sample")
    }
  }
}
