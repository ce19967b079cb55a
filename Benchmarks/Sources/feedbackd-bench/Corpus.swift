import ArgumentParser
import Foundation

/// The fixed generator parameters of the benchmark corpus.
enum CorpusParameters {
  static let seed: UInt64 = 20_261_130
  static let files = 7
  static let format = "logstash"
  static let name = "app.log"
  /// Decompressed bytes the shipped generator writes per prediction (measured: 25,695,120 bytes for
  /// 50,000 predictions, 308 MB for 600,000), used to pick `--predictions` for a size.
  static let bytesPerPrediction = 514.0

  static func predictions(forMB mb: Int) -> Int {
    max(1, Int((Double(mb) * 1e6 / bytesPerPrediction).rounded()))
  }
}

/// `DIR/corpus.json`: the parameters the corpus was made with (the stamp) and what it holds.
struct CorpusStamp: Codable, Equatable {
  var seed: UInt64
  var predictions: Int
  var files: Int
  var format: String
  var requestedMB: Int
  /// Filled from the generator's summary; not part of the identity.
  var lines: Int?
  var bytes: Int?
  var diskBytes: Int?
  var generationSeconds: Double?

  func sameParameters(as other: CorpusStamp) -> Bool {
    seed == other.seed && predictions == other.predictions && files == other.files && format == other.format
  }

  static func load(dir: String) -> CorpusStamp? {
    guard let data = FileManager.default.contents(atPath: dir + "/corpus.json") else { return nil }
    return try? JSONDecoder().decode(CorpusStamp.self, from: data)
  }

  func save(dir: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    var data = try encoder.encode(self)
    data.append(0x0A)
    try data.write(to: URL(fileURLWithPath: dir + "/corpus.json"), options: .atomic)
  }
}

struct Corpus: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Generate the benchmark corpus once (rotated logstash logs, 5 of 7 files gzipped) and DIR/bench.yaml.",
    discussion: """
      Runs feedbackd-loggen (next to this executable) with a fixed seed, --files 7 and \
      --format logstash into DIR/logs, choosing --predictions so that the decompressed total \
      is about --mb MB. Skipped when DIR/corpus.json records the same parameters and the logs \
      are there (use --force to regenerate).
      """
  )

  @OptionGroup var corpus: CorpusOptions

  @Option(help: "Decompressed size of the corpus in MB (10^6 bytes), approximately.")
  var mb: Int = 1000

  @Flag(help: "Regenerate even when the stamp says the corpus is up to date.")
  var force = false

  mutating func validate() throws {
    guard mb >= 1 else { throw ValidationError("--mb must be >= 1") }
  }

  func run() throws {
    let dir = corpus.absoluteDir
    let fm = FileManager.default
    var stamp = CorpusStamp(
      seed: CorpusParameters.seed, predictions: CorpusParameters.predictions(forMB: mb),
      files: CorpusParameters.files, format: CorpusParameters.format, requestedMB: mb)

    try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let lock = try holdCorpus(dir: dir, name: "feedbackd-bench corpus")
    defer { withExtendedLifetime(lock) {} }
    try writeConfiguration(dir: dir)

    if !force, let existing = CorpusStamp.load(dir: dir), existing.sameParameters(as: stamp),
      (try? logFiles(dir: dir).count) == CorpusParameters.files
    {
      print("corpus up to date: \(dir) (\(describe(existing)))")
      print("config: \(dir)/bench.yaml")
      return
    }

    let loggen = try siblingExecutable("feedbackd-loggen")
    try? fm.removeItem(atPath: dir + "/corpus.json")
    let arguments = [
      "--out", dir + "/logs", "--seed", String(stamp.seed), "--predictions", String(stamp.predictions),
      "--files", String(stamp.files), "--format", stamp.format, "--name", CorpusParameters.name, "--force",
    ]
    print("generating: \(commandLine(loggen, arguments))")
    let summaryPath = dir + "/loggen.stderr"
    let result = try runChild(loggen, arguments, stderrPath: summaryPath)
    let summary = (try? String(contentsOfFile: summaryPath, encoding: .utf8)) ?? ""
    guard result.status == 0 else {
      throw BenchError("feedbackd-loggen failed (exit \(result.status)): \(summary)")
    }
    let fields = summaryFields(summary)
    stamp.lines = fields["lines"].flatMap { Int($0) }
    stamp.bytes = fields["bytes"].flatMap { Int($0) }
    stamp.diskBytes = fields["disk_bytes"].flatMap { Int($0) }
    stamp.generationSeconds = (result.wallSeconds * 100).rounded() / 100
    try stamp.save(dir: dir)
    print(summary.trimmingCharacters(in: .whitespacesAndNewlines))
    print("corpus: \(dir) (\(describe(stamp)))")
    print("config: \(dir)/bench.yaml")
  }

  private func describe(_ stamp: CorpusStamp) -> String {
    var parts = ["\(stamp.predictions) predictions"]
    if let lines = stamp.lines { parts.append("\(lines) lines") }
    if let bytes = stamp.bytes { parts.append("\(fixed(Double(bytes) / 1e6)) MB decompressed") }
    if let disk = stamp.diskBytes { parts.append("\(fixed(Double(disk) / 1e6)) MB on disk") }
    if let secs = stamp.generationSeconds { parts.append("generated in \(fixed(secs, 2)) s") }
    return parts.joined(separator: ", ")
  }

  /// `key=value` pairs of the generator's one-line summary.
  private func summaryFields(_ summary: String) -> [String: String] {
    var fields: [String: String] = [:]
    for token in summary.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
      guard let eq = token.firstIndex(of: "=") else { continue }
      fields[String(token[..<eq])] = String(token[token.index(after: eq)...])
    }
    return fields
  }

  /// The benchmark job: click labels into one JSONL dataset.
  private func writeConfiguration(dir: String) throws {
    func quoted(_ path: String) -> String {
      "\"" + path.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
    let yaml = """
      # feedbackd-bench: the benchmark job (rewritten by every `feedbackd-bench corpus`).
      # Benchmarks/duckdb_labels.py computes exactly these labels with DuckDB.
      state_dir: \(quoted(dir + "/state"))
      sources:
        - name: shop
          paths: [\(quoted(dir + "/logs/" + CorpusParameters.name + "*"))]
          format: logstash
      events:
        prediction: { where: { event: prediction }, key: request_id }
        feedback:
          click: { where: { event: click }, key: request_id }
      labels:
        clicked: { from: click, window: 30m }
      datasets:
        - name: ctr
          path: \(quoted(dir + "/out/ctr"))
          labels: [clicked]
          columns:
            - model_version
            - score
            - { path: features.item_category, as: category }
            - { path: features.device, as: device }
          format: jsonl

      """
    try yaml.write(toFile: dir + "/bench.yaml", atomically: true, encoding: .utf8)
  }
}

/// The corpus's log files in feedbackd's reading order: oldest rotated file first, live file last.
func logFiles(dir: String) throws -> [String] {
  let logs = dir + "/logs"
  let name = CorpusParameters.name
  let entries = try FileManager.default.contentsOfDirectory(atPath: logs)
  func number(_ entry: String) -> Int? {
    if entry == name { return 0 }
    guard entry.hasPrefix(name + ".") else { return nil }
    var rest = entry.dropFirst(name.count + 1)
    if rest.hasSuffix(".gz") { rest = rest.dropLast(3) }
    return Int(rest)
  }
  return entries.compactMap { entry in number(entry).map { (entry, $0) } }
    .sorted { $0.1 > $1.1 }
    .map { logs + "/" + $0.0 }
}
