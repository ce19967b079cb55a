import Foundation
import Testing

/// Generated rotated logs → the real `feedbackd replay` → rows checked one by one against
/// the oracle.
@Suite(.serialized) struct ReplayEndToEndTests {
  struct Corpus {
    let dir: String
    let logs: String
    /// Oldest first, as DESIGN.md §2 orders them.
    let files: [String]
  }

  static func generate(seed: Int, predictions: Int = 1500, files: Int = 5, extra: [String] = []) throws -> Corpus {
    let dir = try makeTempDir("seed\(seed)")
    let logs = dir + "/logs"
    let result = try run(
      Binaries.loggen,
      ["--out", logs, "--seed", "\(seed)", "--predictions", "\(predictions)", "--files", "\(files)", "--multi-member"]
        + extra)
    #expect(result.status == 0, "loggen failed: \(result.stderr)")
    var ordered = (1..<files).reversed().map { n in
      FileManager.default.fileExists(atPath: "\(logs)/app.log.\(n).gz")
        ? "\(logs)/app.log.\(n).gz" : "\(logs)/app.log.\(n)"
    }
    ordered.append(logs + "/app.log")
    return Corpus(dir: dir, logs: logs, files: ordered)
  }

  static func replay(_ config: String, flush: Bool, paths: [String] = []) throws -> ProcessResult {
    let result = try run(Binaries.feedbackd, ["replay", "--config", config] + (flush ? ["--flush"] : []) + paths)
    #expect(result.status == 0, "replay failed: \(result.stderr)")
    return result
  }

  /// Checks every written row against the oracle, and that nothing is missing or doubled.
  static func verify(datasets: String, oracle: Oracle, flush: Bool) throws {
    let expected = oracle.expected(flush: flush)
    let ctr = try readDataset(datasets + "/ctr")
    let conversions = try readDataset(datasets + "/conversions")
    #expect(ctr.count == expected.ctr.count)
    #expect(conversions.count == expected.conversions.count)
    #expect(Set(ctr.map { $0.row["key"] as! String }).count == ctr.count, "a row was written twice")
    #expect(Set(conversions.map { $0.row["key"] as! String }).count == conversions.count, "a row was written twice")
    for (file, row) in ctr {
      let key = row["key"] as! String
      guard let want = expected.ctr[key] else {
        Issue.record("unexpected ctr row \(key)")
        continue
      }
      let predictedAt = millis(row["predicted_at"])
      #expect(predictedAt == want["predicted_at"] as? Int64, "\(key) predicted_at")
      #expect(row["clicked"] as? Int == want["clicked"] as? Int, "\(key) clicked")
      #expect(row["clicks"] as? Int == want["clicks"] as? Int, "\(key) clicks")
      #expect(millis(row["clicked_at"]) == want["clicked_at"] as? Int64, "\(key) clicked_at")
      #expect(row["model_version"] as? String == want["model_version"] as? String)
      #expect((row["score"] as? NSNumber) == (want["score"] as? NSNumber), "\(key) score")
      #expect(row["category"] as? String == want["category"] as? String)
      // Hive partition of the prediction's UTC hour.
      let date = Date(timeIntervalSince1970: Double(predictedAt ?? 0) / 1000)
      var calendar = Calendar(identifier: .gregorian)
      calendar.timeZone = TimeZone(identifier: "UTC")!
      let c = calendar.dateComponents([.year, .month, .day, .hour], from: date)
      let partition = String(format: "date=%04d-%02d-%02d/hour=%02d/", c.year!, c.month!, c.day!, c.hour!)
      #expect(file.hasPrefix(partition), "\(key) in \(file), expected \(partition)")
    }
    for (_, row) in conversions {
      let key = row["key"] as! String
      guard let want = expected.conversions[key] else {
        Issue.record("unexpected conversions row \(key)")
        continue
      }
      #expect(millis(row["predicted_at"]) == want["predicted_at"] as? Int64)
      #expect(row["purchased"] as? Int == want["purchased"] as? Int, "\(key) purchased")
      #expect(millis(row["purchased_at"]) == want["purchased_at"] as? Int64, "\(key) purchased_at")
      let revenue = (row["revenue"] as? NSNumber)?.doubleValue ?? .nan
      #expect(abs(revenue - (want["revenue"] as! Double)) < 1e-6, "\(key) revenue \(revenue)")
      #expect(row["first_order"] as? String == want["first_order"] as? String, "\(key) first_order")
      #expect(
        NSDictionary(dictionary: row["prediction"] as? [String: Any] ?? [:])
          == NSDictionary(dictionary: want["prediction"] as! [String: Any]))
    }
  }

  @Test(arguments: [(7, true), (7, false), (11, true), (11, false), (23, true)])
  func replayMatchesIndependentLabels(seed: Int, flush: Bool) throws {
    let corpus = try Self.generate(seed: seed)
    let config = try writeConfig(
      dir: corpus.dir, logs: corpus.logs, stateDir: corpus.dir + "/state", datasets: corpus.dir + "/datasets")
    let result = try Self.replay(config, flush: flush)
    let oracle = try Oracle(files: corpus.files)
    try Self.verify(datasets: corpus.dir + "/datasets", oracle: oracle, flush: flush)
    #expect(result.stdout.contains("lines       \(oracle.lines) "), "\(result.stdout)")
    // Every partition the watermark has passed is marked complete.
    let files = listFiles(corpus.dir + "/datasets/ctr")
    #expect(files.contains("_schema.json"))
    #expect(!files.contains { $0.hasSuffix(".inprogress") }, "replay left hidden segments")
    if flush {
      let partitions = Set(files.filter { $0.contains("/part-") }.map { ($0 as NSString).deletingLastPathComponent })
      for partition in partitions {
        #expect(files.contains(partition + "/_SUCCESS"), "\(partition) has no _SUCCESS")
      }
    }
  }

  /// A join state far larger than `state_memory`: it is committed and evicted to SQLite over
  /// and over (also in the middle of the end-of-input and flush settles, which make a day's
  /// rows final at once) and read back in batches; every row is still the oracle's.
  @Test(arguments: [true, false])
  func stateFarOverItsMemoryBudgetChangesNoRow(flush: Bool) throws {
    let corpus = try Self.generate(seed: 31, predictions: 12_000)
    let config = try writeConfig(
      dir: corpus.dir, logs: corpus.logs, stateDir: corpus.dir + "/state", datasets: corpus.dir + "/datasets")
    try (String(contentsOfFile: config, encoding: .utf8) + "\nstate_memory: 1MiB\n")
      .write(toFile: config, atomically: true, encoding: .utf8)
    let result = try Self.replay(config, flush: flush)
    try Self.verify(datasets: corpus.dir + "/datasets", oracle: try Oracle(files: corpus.files), flush: flush)
    // "state       peak 1.2 MiB in memory at commits (state_memory 1.0 MiB), evicted to SQLite at 9 commits"
    let line = result.stdout.split(separator: "\n").first { $0.hasPrefix("state ") } ?? ""
    let evictions = Int(line.split(separator: " ").dropLast().last ?? "") ?? 0
    #expect(evictions > 3, "the budget should force evictions: \(line)")
    // "waited      0.01 s (3 times) for input, 0.02 s (9 times) for dataset writers"
    let waited = result.stdout.split(separator: "\n").first { $0.hasPrefix("waited ") }.map(String.init) ?? ""
    #expect(
      waited.range(
        of:
          #"^waited +[0-9]+\.[0-9]{2} s \([0-9]+ times\) for input, [0-9]+\.[0-9]{2} s \([0-9]+ times\) for dataset writers$"#,
        options: .regularExpression) != nil,
      "\(waited)")
    // "commits     12 in 0.31 s, the longest 0.05 s; 3 with their SQL in the background (0 waited
    // for)": a commit at least at every eviction.
    let commits = result.stdout.split(separator: "\n").first { $0.hasPrefix("commits ") }.map(String.init) ?? ""
    #expect(
      commits.range(
        of:
          #"^commits +[0-9]+ in [0-9]+\.[0-9]{2} s, the longest [0-9]+\.[0-9]{2} s; [0-9]+ with their SQL in the background \([0-9]+ waited for\)$"#,
        options: .regularExpression)
        != nil, "\(commits)")
    #expect((Int(commits.split(separator: " ").dropFirst().first ?? "") ?? 0) >= evictions, "\(commits)")
  }

  /// Replays committing every 2,000 lines, their SQL in the background while lines go on,
  /// killed with SIGKILL at any point (while that SQL runs, between it and the transaction's
  /// commit, while segments sealed after the cut wait): every row once, and the oracle's.
  @Test func replaysCommittingInTheBackgroundSurviveSIGKILLs() throws {
    let corpus = try Self.generate(seed: 53, predictions: 12_000)
    let config = try writeConfig(
      dir: corpus.dir, logs: corpus.logs, stateDir: corpus.dir + "/state", datasets: corpus.dir + "/datasets")
    let arguments = ["replay", "--config", config, "--flush", "--commit-every-lines", "2000"]
    let kills = try killRepeatedly(arguments, delays: [0.3, 0.45, 0.6, 0.75, 0.9, 1.1, 1.3, 1.6, 2.0, 2.4])
    let last = try run(Binaries.feedbackd, arguments)
    #expect(last.status == 0, "\(last.stderr)")
    #expect(kills >= 2, "the replays should have been killed while running")
    let commits = last.stdout.split(separator: "\n").first { $0.hasPrefix("commits ") } ?? ""
    #expect(commits.contains("with their SQL in the background"), "\(last.stdout)")
    try Self.verify(datasets: corpus.dir + "/datasets", oracle: try Oracle(files: corpus.files), flush: true)
  }

  /// The same with SIGKILLs: commits made in the middle of settles (between lines, and inside
  /// the line whose event started one) resume exactly; every row once, and the oracle's.
  @Test func stateOverBudgetSurvivesSIGKILLs() throws {
    let corpus = try Self.generate(seed: 37, predictions: 12_000)
    let config = try writeConfig(
      dir: corpus.dir, logs: corpus.logs, stateDir: corpus.dir + "/state", datasets: corpus.dir + "/datasets")
    try (String(contentsOfFile: config, encoding: .utf8) + "\nstate_memory: 1MiB\n")
      .write(toFile: config, atomically: true, encoding: .utf8)
    let kills = try killRepeatedly(
      ["replay", "--config", config, "--flush"], delays: [0.25, 0.4, 0.55, 0.7, 0.9, 1.2, 1.6, 2.0, 2.4])
    _ = try Self.replay(config, flush: true)
    #expect(kills >= 2, "the replays should have been killed while running")
    try Self.verify(datasets: corpus.dir + "/datasets", oracle: try Oracle(files: corpus.files), flush: true)
  }

  @Test func twoReplaysIntoFreshStateWriteIdenticalFiles() throws {
    let corpus = try Self.generate(seed: 5)
    var trees: [[String: Data]] = []
    for run in 0..<2 {
      let root = corpus.dir + "/run\(run)"
      let config = try writeConfig(
        dir: corpus.dir, logs: corpus.logs, stateDir: root + "/state", datasets: root + "/datasets")
      _ = try Self.replay(config, flush: false)
      var tree: [String: Data] = [:]
      for file in listFiles(root + "/datasets") {
        tree[file] = try Data(contentsOf: URL(fileURLWithPath: root + "/datasets/" + file))
      }
      trees.append(tree)
    }
    #expect(trees[0].count > 10)
    #expect(trees[0].keys.sorted() == trees[1].keys.sorted())
    #expect(trees[0] == trees[1])
  }

  @Test(arguments: [false, true])
  func continuingAReplayGivesTheSameRowsAsOneReplay(flush: Bool) throws {
    let corpus = try Self.generate(seed: 9, files: 6)
    // One replay of everything.
    let whole = try writeConfig(
      dir: corpus.dir, logs: corpus.logs, stateDir: corpus.dir + "/one/state", datasets: corpus.dir + "/one/datasets")
    _ = try Self.replay(whole, flush: flush)
    // The older files first, then the whole directory into the same state.
    let split = try writeConfig(
      dir: corpus.dir, logs: corpus.logs, stateDir: corpus.dir + "/two/state", datasets: corpus.dir + "/two/datasets")
    let first = try Self.replay(split, flush: false, paths: Array(corpus.files.prefix(3)))
    #expect(first.stdout.contains("files       3 read"), "\(first.stdout)")
    let second = try Self.replay(split, flush: flush)
    #expect(second.stdout.contains("3 already read"), "\(second.stdout)")
    for dataset in ["ctr", "conversions"] {
      let one = try readDataset(corpus.dir + "/one/datasets/" + dataset).map { Self.canonical($0.row) }
      let two = try readDataset(corpus.dir + "/two/datasets/" + dataset).map { Self.canonical($0.row) }
      #expect(one.count > 100)
      #expect(one.sorted() == two.sorted(), "\(dataset): rows differ")
    }
    let oracle = try Oracle(files: corpus.files)
    try Self.verify(datasets: corpus.dir + "/two/datasets", oracle: oracle, flush: flush)
  }

  static func canonical(_ row: [String: Any]) -> String {
    let data = try! JSONSerialization.data(withJSONObject: row, options: [.sortedKeys])
    return String(decoding: data, as: UTF8.self)
  }

  @Test func datasetLoadsInDuckDBWithTheRightCountsAndSums() throws {
    let corpus = try Self.generate(seed: 13)
    let config = try writeConfig(
      dir: corpus.dir, logs: corpus.logs, stateDir: corpus.dir + "/state", datasets: corpus.dir + "/datasets")
    _ = try Self.replay(config, flush: true)
    let expected = try Oracle(files: corpus.files).expected(flush: true)
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
      "../../Scripts/check_dataset.py"
    ).standardized.path
    let checks: [(String, String, [String: Double])] = [
      (
        "ctr", "clicked,clicks",
        [
          "clicked": Double(expected.ctr.values.reduce(0) { $0 + ($1["clicked"] as! Int) }),
          "clicks": Double(expected.ctr.values.reduce(0) { $0 + ($1["clicks"] as! Int) }),
        ]
      ),
      (
        "conversions", "purchased,revenue",
        [
          "purchased": Double(expected.conversions.values.reduce(0) { $0 + ($1["purchased"] as! Int) }),
          "revenue": expected.conversions.values.reduce(0.0) { $0 + ($1["revenue"] as! Double) },
        ]
      ),
    ]
    for (dataset, labels, sums) in checks {
      let result = try run(
        "/usr/bin/env", ["python3", script, corpus.dir + "/datasets/" + dataset, "--labels", labels])
      #expect(result.status == 0, "check_dataset.py failed (is duckdb installed? pip install duckdb): \(result.stderr)")
      let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
      #expect(report?["rows"] as? Int == (dataset == "ctr" ? expected.ctr.count : expected.conversions.count))
      let got = report?["sums"] as? [String: Any] ?? [:]
      for (label, want) in sums {
        let value = (got[label] as? NSNumber)?.doubleValue ?? .nan
        #expect(abs(value - want) < 1e-6, "\(dataset).\(label): \(value) != \(want)")
      }
    }
  }

  @Test func damagedGzipKeepsItsGoodLinesAndIsNotRetried() throws {
    let corpus = try Self.generate(seed: 17)
    let victim = corpus.files[1]  // app.log.3.gz
    var bytes = try Data(contentsOf: URL(fileURLWithPath: victim))
    bytes = bytes.prefix(bytes.count * 2 / 3)
    try bytes.write(to: URL(fileURLWithPath: victim))
    let config = try writeConfig(
      dir: corpus.dir, logs: corpus.logs, stateDir: corpus.dir + "/state", datasets: corpus.dir + "/datasets")
    let first = try Self.replay(config, flush: false)
    #expect(first.stdout.contains("1 quarantined"), "\(first.stdout)")
    #expect(first.stderr.contains("quarantined"), "\(first.stderr)")
    // The complete lines before the damage were read: the oracle over the same bytes (the
    // system gzip also stops there) agrees on the line count.
    let second = try Self.replay(config, flush: false)
    #expect(second.stdout.contains("files       1 read, 4 already read, 0 quarantined"), "\(second.stdout)")
  }

  @Test func badLinesAreRejectedWithReasonsAndKept() throws {
    let corpus = try Self.generate(seed: 19, extra: ["--junk-rate", "0.05"])
    let config = try writeConfig(
      dir: corpus.dir, logs: corpus.logs, stateDir: corpus.dir + "/state", datasets: corpus.dir + "/datasets")
    let result = try Self.replay(config, flush: true)
    let oracle = try Oracle(files: corpus.files)
    #expect(oracle.rejected > 50)
    let rejectFiles = listFiles(corpus.dir + "/state/rejects")
    #expect(!rejectFiles.isEmpty)
    let lines = try rejectFiles.flatMap {
      try String(contentsOfFile: corpus.dir + "/state/rejects/" + $0, encoding: .utf8).split(separator: "\n")
    }
    #expect(lines.count == oracle.rejected)
    let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any]
    #expect(first?["reason"] is String && first?["file"] is String && first?["offset"] is Int)
    #expect(result.stdout.contains("invalid_json"))
    try Self.verify(datasets: corpus.dir + "/datasets", oracle: oracle, flush: true)
  }

  /// A source read in the wrong format: every line is rejected. The reject records (about a
  /// kilobyte each) were held in memory until the replay's next commit, millions of lines
  /// later: 2 M such lines of 250 bytes took 763 MB. They are written out as they come now,
  /// into files rotated at 64 MB, four kept.
  @Test func aSourceOfJunkLinesIsRejectedInBoundedMemoryAndDisk() throws {
    let dir = try makeTempDir("junk")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
    // 100,000 lines of 1,000 bytes, none of them JSON (100 MB): their records take 115 MB.
    let line = Array(String(repeating: "not json, ", count: 100).utf8) + [0x0A]
    var text: [UInt8] = []
    text.reserveCapacity(100_000 * line.count)
    for _ in 0..<100_000 { text += line }
    try Data(text).write(to: URL(fileURLWithPath: dir + "/logs/app.log"))
    text = []
    let config = try writeConfig(dir: dir, logs: dir + "/logs", stateDir: dir + "/state", datasets: dir + "/datasets")

    let process = Process()
    setCommand(process, Binaries.feedbackd, ["replay", "--config", config, "--flush"])
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    // The child's peak RSS (VmHWM) as it runs: the memory held grew with the records.
    var peakKB = 0
    while process.isRunning {
      if let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
        let hwm = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
      {
        peakKB = max(peakKB, Int(hwm.split(separator: " ").dropFirst().first ?? "") ?? 0)
      }
      Thread.sleep(forTimeInterval: 0.01)
    }
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
    #expect(peakKB > 0)
    #expect(peakKB < 100_000, "peak RSS \(peakKB) KB")

    let files = listFiles(dir + "/state/rejects").sorted()
    let sizes = try files.map {
      try FileManager.default.attributesOfItem(atPath: dir + "/state/rejects/" + $0)[.size] as! Int
    }
    #expect(files.count == 2, "\(files)")
    // A file is rotated once a write (of about 1 MiB) takes it past 64 MiB.
    #expect(sizes.allSatisfy { $0 <= (65 << 20) + 2048 }, "\(sizes)")
    // The newest records are kept, whole, in order, up to the last line.
    let newest = try String(contentsOfFile: dir + "/state/rejects/" + files.last!, encoding: .utf8)
      .split(separator: "\n")
    let last = try JSONSerialization.jsonObject(with: Data(newest.last!.utf8)) as? [String: Any]
    #expect(last?["offset"] as? Int == 99_999 * line.count)
    #expect(last?["reason"] as? String == "invalid_json")
  }
}

@Suite struct CommandLineTests {
  @Test func badConfigurationStopsWithOneLineNamingTheKey() throws {
    let dir = try makeTempDir("badconfig")
    let config = try writeConfig(dir: dir, logs: dir, stateDir: dir + "/state", datasets: dir + "/datasets")
    var yaml = try String(contentsOfFile: config, encoding: .utf8)
    yaml = yaml.replacingOccurrences(of: "max_bytes: 64KiB", with: "max_bytes: 64XB")
    try yaml.write(toFile: config, atomically: true, encoding: .utf8)
    for command in ["replay", "check"] {
      let result = try run(Binaries.feedbackd, [command, "--config", config])
      #expect(result.status == 2)
      let lines = result.stderr.split(separator: "\n")
      #expect(lines.count == 1, "\(result.stderr)")
      #expect(result.stderr.contains("datasets[0].roll.max_bytes"), "\(result.stderr)")
    }
  }

  @Test func unknownLabelTypeIsNamed() throws {
    let dir = try makeTempDir("badlabel")
    let config = try writeConfig(dir: dir, logs: dir, stateDir: dir + "/state", datasets: dir + "/datasets")
    var yaml = try String(contentsOfFile: config, encoding: .utf8)
    yaml = yaml.replacingOccurrences(of: "{ from: click,    window: 30m }", with: "{ from: klick,    window: 30m }")
    try yaml.write(toFile: config, atomically: true, encoding: .utf8)
    let result = try run(Binaries.feedbackd, ["replay", "--config", config])
    #expect(result.status == 2)
    #expect(result.stderr.contains("labels.clicked.from"), "\(result.stderr)")
  }

  @Test func systemdUnitVerifiesAndIsHardened() throws {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .appendingPathComponent("../../Scripts/check_systemd_unit.sh").standardized.path
    let result = try run("/bin/bash", [script, Binaries.feedbackd])
    #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
    #expect(result.stdout.contains("exposure level"))
  }

  @Test func checkListsMatchedFilesAndClassifiesSamples() throws {
    let corpus = try ReplayEndToEndTests.generate(seed: 3, predictions: 200)
    let config = try writeConfig(
      dir: corpus.dir, logs: corpus.logs, stateDir: corpus.dir + "/state", datasets: corpus.dir + "/datasets")
    let result = try run(Binaries.feedbackd, ["check", "--config", config])
    #expect(result.status == 0, "\(result.stderr)")
    for file in corpus.files { #expect(result.stdout.contains(file)) }
    #expect(result.stdout.contains("gzip"))
    #expect(result.stdout.contains("prediction key="))
  }
}
