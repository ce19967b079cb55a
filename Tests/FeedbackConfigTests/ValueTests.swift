import FeedbackConfig
import Foundation
import LogFormats
import Testing

@Suite struct DurationTests {
  static let goodCases: [(String, Int64)] = [
    ("500ms", 500_000_000),
    ("0s", 0),
    ("0ms", 0),
    ("30s", 30 * second),
    ("5m", 5 * minute),
    ("1h", hour),
    ("7d", 7 * day),
    ("1h30m", 90 * minute),
    ("1d2h3m4s5ms", day + 2 * hour + 3 * minute + 4 * second + 5_000_000),
    ("90m", 90 * minute),
    ("'15s'", 15 * second),
  ]

  @Test(arguments: goodCases)
  func good(text: String, nanoseconds: Int64) throws {
    let config = try parse(minimal(plus: "clock_skew: \(text)"))
    #expect(config.clockSkew == nanoseconds)
  }

  @Test(arguments: [
    "5", "1.5h", "-5s", "5 m", "5min", "30m1h", "1h1h", "ms", "5S", "1w", "1h 30m", "''", "s5", "5mss", "PT5M",
  ])
  func bad(text: String) throws {
    let error = try #require(failure(minimal(plus: "clock_skew: \(text)")))
    #expect(error.keyPath == "clock_skew")
    #expect(
      error.problem.hasSuffix("is not a duration (use e.g. 500ms, 30s, 5m, 1h30m, 7d; units: ms, s, m, h, d)"),
      "\(error)")
  }

  @Test func overflowIsRejected() throws {
    let error = try #require(failure(minimal(plus: "clock_skew: 999999999d")))
    #expect(error.problem == "\"999999999d\" is too long a duration")
  }

  @Test func watermarkAndWindowUseTheSameSyntax() throws {
    let config = try parse(
      minimal(plus: "watermark: { max_out_of_order: 0s, idle_timeout: 2h15m }")
        .replacingOccurrences(of: "window: 30m", with: "window: 1d12h"))
    #expect(config.watermark == WatermarkConfig(maxOutOfOrder: 0, idleTimeout: 2 * hour + 15 * minute))
    #expect(config.labels[0].window == 36 * hour)
  }
}

@Suite struct SizeTests {
  @Test(arguments: [
    ("1", 1),
    ("1048576", 1_048_576),
    ("512B", 512),
    ("512KiB", 524_288),
    ("128MiB", 134_217_728),
    ("1GiB", 1_073_741_824),
    ("\"64KiB\"", 65_536),
  ])
  func good(text: String, bytes: Int) throws {
    let config = try parse(
      minimalYAML.replacingOccurrences(
        of: "    paths: /var/log/shop/app.log*", with: "    paths: /var/log/shop/app.log*\n    max_line_bytes: \(text)")
    )
    #expect(config.sources[0].maxLineBytes == bytes)
  }

  @Test(arguments: [
    "12XB", "1KB", "1MB", "1.5MiB", "MiB", "-1", "1 MiB", "1kib", "1mib", "1K", "''", "1TiB", "0x10", "1e6",
  ])
  func bad(text: String) throws {
    let error = try #require(
      failure(
        minimalYAML.replacingOccurrences(
          of: "    paths: /var/log/shop/app.log*",
          with: "    paths: /var/log/shop/app.log*\n    max_line_bytes: \(text)")))
    #expect(error.keyPath == "sources[0].max_line_bytes")
    #expect(error.problem.hasSuffix("is not a size (use e.g. 512KiB, 128MiB, 1GiB)"), "\(error)")
  }

  @Test func zeroAndOverflow() throws {
    let zero = try #require(
      failure(
        minimalYAML.replacingOccurrences(
          of: "    paths: /var/log/shop/app.log*", with: "    paths: /var/log/shop/app.log*\n    max_line_bytes: 0")))
    #expect(zero.problem == "must be greater than 0")
    let huge = try #require(
      failure(
        minimalYAML.replacingOccurrences(
          of: "    labels: [clicked]", with: "    labels: [clicked]\n    roll: { max_bytes: 99999999999GiB }")))
    #expect(huge.keyPath == "datasets[0].roll.max_bytes")
    #expect(huge.problem == "\"99999999999GiB\" is too large a size")
  }
}

@Suite struct ScalarValueTests {
  /// The value `where: { v: <text> }` decodes to.
  func value(_ text: String) throws -> ScalarValue {
    let config = try parse(
      minimalYAML.replacingOccurrences(of: "where: { event: prediction }", with: "where: { v: \(text) }"))
    return try #require(config.events.prediction.matches.first).value
  }

  @Test(arguments: [
    ("200", ScalarValue.number(200)),
    ("\"200\"", .string("200")),
    ("'200'", .string("200")),
    ("-3", .number(-3)),
    ("+7", .number(7)),
    ("012", .number(12)),
    ("1.5", .number(1.5)),
    ("1e3", .number(1000)),
    ("-.5", .number(-0.5)),
    ("5.", .number(5)),
    ("0x1F", .number(31)),
    ("0o17", .number(15)),
    (".inf", .number(.infinity)),
    ("-.Inf", .number(-.infinity)),
    ("true", .bool(true)),
    ("False", .bool(false)),
    ("TRUE", .bool(true)),
    ("'true'", .string("true")),
    ("\"false\"", .string("false")),
    ("null", .null),
    ("~", .null),
    ("NULL", .null),
    ("'null'", .string("null")),
    ("\"~\"", .string("~")),
    ("''", .string("")),
    // YAML 1.1 forms that the 1.2 core schema reads as strings
    ("yes", .string("yes")),
    ("off", .string("off")),
    ("1:30", .string("1:30")),
    ("0b101", .string("0b101")),
    ("2026-11-30", .string("2026-11-30")),
    ("1_000", .string("1_000")),
    ("prediction", .string("prediction")),
    ("!!str 5", .string("5")),
  ])
  func resolution(text: String, expected: ScalarValue) throws {
    #expect(try value(text) == expected)
  }

  @Test func emptyPlainValueIsNull() throws {
    let config = try parse(
      minimalYAML.replacingOccurrences(
        of: "prediction: { where: { event: prediction }, key: request_id }",
        with: "prediction:\n    where:\n      v:\n    key: request_id"))
    #expect(config.events.prediction.matches == [FieldMatch(path: FieldPath(segments: ["v"]), value: .null)])
  }

  @Test func nanIsANumber() throws {
    guard case .number(let n) = try value(".nan") else {
      Issue.record("expected a number")
      return
    }
    #expect(n.isNaN)
  }

  @Test func whereKeysArePaths() throws {
    let config = try parse(
      minimalYAML.replacingOccurrences(
        of: "where: { event: prediction }", with: "where: { event: prediction, '\"a.b\".c': 1, 200: x }"))
    #expect(
      config.events.prediction.matches.map(\.path) == [
        FieldPath(segments: ["event"]), FieldPath(segments: ["a.b", "c"]), FieldPath(segments: ["200"]),
      ])
  }
}

@Suite struct PathTests {
  func config(
    stateDir: String, paths: String, datasetPath: String? = nil, base: String = "/etc/feedbackd"
  ) throws -> Configuration {
    var yaml =
      minimalYAML
      .replacingOccurrences(of: "state_dir: /var/lib/feedbackd", with: "state_dir: \(stateDir)")
      .replacingOccurrences(of: "paths: /var/log/shop/app.log*", with: "paths: \(paths)")
    if let datasetPath {
      yaml = yaml.replacingOccurrences(
        of: "    labels: [clicked]", with: "    labels: [clicked]\n    path: \(datasetPath)")
    }
    return try parse(yaml, base: base)
  }

  @Test func relativePathsResolveAgainstTheBaseDirectory() throws {
    let c = try config(stateDir: "./state", paths: "[logs/app.log*, ./x/../y/*.log, ../var/log/z.log, /abs/./a.log]")
    #expect(c.stateDir == "/etc/feedbackd/state")
    #expect(
      c.sources[0].paths == [
        "/etc/feedbackd/logs/app.log*", "/etc/feedbackd/y/*.log", "/etc/var/log/z.log", "/abs/a.log",
      ])
    #expect(c.datasets[0].path == "/etc/feedbackd/state/datasets/ctr")
  }

  @Test func datasetPathResolves() throws {
    let c = try config(stateDir: "/s", paths: "/a.log", datasetPath: "out//ctr/")
    #expect(c.datasets[0].path == "/etc/feedbackd/out/ctr")
  }

  @Test func tildeIsNotExpanded() throws {
    let c = try config(stateDir: "~/state", paths: "'~/logs/*.log'")
    #expect(c.stateDir == "/etc/feedbackd/~/state")
    #expect(c.sources[0].paths == ["/etc/feedbackd/~/logs/*.log"])
  }

  @Test func singlePathOrList() throws {
    #expect(try config(stateDir: "/s", paths: "/a.log").sources[0].paths == ["/a.log"])
    #expect(try config(stateDir: "/s", paths: "[/a.log, /b.log]").sources[0].paths == ["/a.log", "/b.log"])
  }

  @Test func dotDotBeforeAGlobIsKept() throws {
    let c = try config(stateDir: "/s", paths: "'/logs/*/../app.log'")
    #expect(c.sources[0].paths == ["/logs/*/../app.log"])
  }

  @Test func loadResolvesAgainstTheFilesDirectory() throws {
    let directory = FileManager.default.temporaryDirectory
      .appendingPathComponent("feedbackconfig-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory + "/conf", withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let file = directory + "/conf/feedbackd.yaml"
    let yaml =
      minimalYAML
      .replacingOccurrences(of: "state_dir: /var/lib/feedbackd", with: "state_dir: ../state")
      .replacingOccurrences(of: "paths: /var/log/shop/app.log*", with: "paths: logs/app.log*")
    try yaml.write(toFile: file, atomically: true, encoding: .utf8)
    let c = try Configuration.load(path: file)
    #expect(c.stateDir == directory + "/state")
    #expect(c.sources[0].paths == [directory + "/conf/logs/app.log*"])
    #expect(c.datasets[0].path == directory + "/state/datasets/ctr")
  }
}

@Suite struct HTTPTests {
  @Test(arguments: [
    ("127.0.0.1:9464", "127.0.0.1", 9464),
    ("0.0.0.0:0", "0.0.0.0", 0),
    ("localhost:65535", "localhost", 65535),
    ("'[::1]:9464'", "::1", 9464),
    ("\"[fe80::1%eth0]:80\"", "fe80::1%eth0", 80),
  ])
  func listen(text: String, host: String, port: Int) throws {
    let config = try parse(minimal(plus: "http: { listen: \(text) }"))
    #expect(config.http == HTTPConfig(host: host, port: port))
  }

  @Test func emptyHTTPMappingKeepsTheDefault() throws {
    #expect(try parse(minimal(plus: "http: {}")).http == HTTPConfig(host: "127.0.0.1", port: 9464))
  }
}

@Suite struct MaxInMemoryTests {
  static let base = """
    state_dir: /s
    sources: [{ name: a, paths: [/l/app.log] }]
    events:
      prediction: { where: { event: p }, key: id }
      feedback: { click: { where: { event: c }, key: id } }
    labels: { clicked: { from: click, window: 1m } }
    datasets: [{ name: d, labels: [clicked] }]
    """

  @Test func defaultsAndParses() throws {
    #expect(
      try Configuration.parse(yaml: Self.base, baseDirectory: "/").maxInMemory == Configuration.defaultMaxInMemory)
    #expect(try Configuration.parse(yaml: Self.base + "\nmax_in_memory: 5000", baseDirectory: "/").maxInMemory == 5000)
  }

  @Test func stateMemoryDefaultsAndParses() throws {
    #expect(
      try Configuration.parse(yaml: Self.base, baseDirectory: "/").stateMemory == Configuration.defaultStateMemory)
    #expect(
      try Configuration.parse(yaml: Self.base + "\nstate_memory: 64MiB", baseDirectory: "/").stateMemory == 64 << 20)
    for (text, problem) in [("512KiB", "must be at least 1MiB"), ("lots", "is not a size"), ("0", "greater than 0")] {
      #expect {
        try Configuration.parse(yaml: Self.base + "\nstate_memory: \(text)", baseDirectory: "/")
      } throws: { error in
        let description = (error as? ConfigurationError)?.description ?? ""
        return description.contains("state_memory") && description.contains(problem)
      }
    }
  }

  @Test func rejectsNonPositive() {
    #expect {
      try Configuration.parse(yaml: Self.base + "\nmax_in_memory: 0", baseDirectory: "/")
    } throws: { error in
      (error as? ConfigurationError)?.description.contains("max_in_memory") == true
    }
  }
}
