import FeedbackConfig
import Foundation
import Testing

/// One invalid configuration: the key path it must name and a part of the problem text.
struct ErrorCase: Sendable, CustomTestStringConvertible {
  let label: String
  let yaml: String
  let keyPath: String
  let problem: String
  var testDescription: String { label }

  /// `minimalYAML` with `old` replaced by `new` (which must occur).
  static func replacing(_ label: String, _ old: String, _ new: String, keyPath: String, problem: String) -> ErrorCase {
    precondition(minimalYAML.contains(old), "\(old) is not in minimalYAML")
    return ErrorCase(
      label: label, yaml: minimalYAML.replacingOccurrences(of: old, with: new), keyPath: keyPath, problem: problem)
  }
}

let errorCases: [ErrorCase] = [
  // unknown keys, at every level
  .replacing(
    "unknown top-level key", "state_dir:", "stat_dir: /x\nstate_dir:", keyPath: "stat_dir",
    problem:
      "unknown key (known: state_dir, sources, events, labels, datasets, watermark, clock_skew, http, max_in_memory, state_memory, monitors)"
  ),
  .replacing(
    "unknown source key", "    paths:", "    fromat: json\n    paths:", keyPath: "sources[0].fromat",
    problem: "unknown key (known: name, paths, format, time_field, max_line_bytes)"),
  .replacing(
    "unknown events key", "  feedback:", "  feedbacks: {}\n  feedback:", keyPath: "events.feedbacks",
    problem: "unknown key (known: prediction, feedback)"),
  .replacing(
    "unknown prediction key", "key: request_id }\n  feedback", "key: request_id, keys: x }\n  feedback",
    keyPath: "events.prediction.keys", problem: "unknown key (known: where, key)"),
  .replacing(
    "unknown feedback key", "click: { where", "click: { dedupe: x, where", keyPath: "events.feedback.click.dedupe",
    problem: "unknown key (known: where, key, dedupe_by)"),
  .replacing(
    "unknown label key", "window: 30m }", "window: 30m, windw: 1m }", keyPath: "labels.clicked.windw",
    problem: "unknown key (known: from, window, value)"),
  .replacing(
    "unknown dataset key", "    labels: [clicked]", "    labels: [clicked]\n    colums: [a]",
    keyPath: "datasets[0].colums",
    problem: "unknown key (known: name, path, labels, columns, format, roll)"),
  .replacing(
    "unknown roll key", "    labels: [clicked]", "    labels: [clicked]\n    roll: { max_size: 1MiB }",
    keyPath: "datasets[0].roll.max_size", problem: "unknown key (known: max_bytes, max_age)"),
  .replacing(
    "unknown column key", "    labels: [clicked]", "    labels: [clicked]\n    columns: [{ path: a, alias: b }]",
    keyPath: "datasets[0].columns[0].alias", problem: "unknown key (known: path, as)"),
  .replacing(
    "max_line_bytes too large", "    paths: /var/log/shop/app.log*",
    "    paths: /var/log/shop/app.log*\n    max_line_bytes: 2GiB", keyPath: "sources[0].max_line_bytes",
    problem: "must be at most 1GiB"),
  ErrorCase(
    label: "unknown watermark key", yaml: minimal(plus: "watermark: { max_delay: 5s }"),
    keyPath: "watermark.max_delay", problem: "unknown key (known: max_out_of_order, idle_timeout)"),
  ErrorCase(
    label: "unknown http key", yaml: minimal(plus: "http: { port: 9464 }"),
    keyPath: "http.port", problem: "unknown key (known: listen)"),

  // wrong types
  .replacing(
    "sources not a list", "sources:\n  - name: shop\n    paths: /var/log/shop/app.log*", "sources: shop",
    keyPath: "sources", problem: "expected a list, got a string"),
  .replacing(
    "source not a mapping", "  - name: shop\n    paths: /var/log/shop/app.log*", "  - shop",
    keyPath: "sources[0]", problem: "expected a mapping, got a string"),
  .replacing(
    "state_dir a list", "state_dir: /var/lib/feedbackd", "state_dir: [a, b]",
    keyPath: "state_dir", problem: "expected a string, got a list"),
  .replacing(
    "state_dir null", "state_dir: /var/lib/feedbackd", "state_dir:",
    keyPath: "state_dir", problem: "expected a string, got null"),
  .replacing(
    "events a list",
    "events:\n  prediction: { where: { event: prediction }, key: request_id }\n  feedback:\n    click: { where: { event: click }, key: request_id }",
    "events: []", keyPath: "events",
    problem: "expected a mapping, got a list"),
  .replacing(
    "paths a mapping", "paths: /var/log/shop/app.log*", "paths: { a: b }", keyPath: "sources[0].paths",
    problem: "expected a path or a list of paths, got a mapping"),
  .replacing(
    "where value a list", "where: { event: click }", "where: { event: [click, tap] }",
    keyPath: "events.feedback.click.where.event",
    problem: "expected a scalar value (string, number, bool or null), got a list"),
  .replacing(
    "dataset labels a string", "labels: [clicked]", "labels: clicked", keyPath: "datasets[0].labels",
    problem: "expected a list, got a string"),
  .replacing(
    "window a number", "window: 30m", "window: 30", keyPath: "labels.clicked.window",
    problem: "\"30\" is not a duration"),
  .replacing(
    "window null", "window: 30m", "window: ~", keyPath: "labels.clicked.window",
    problem: "expected a duration, got null"),

  // missing required keys
  .replacing(
    "missing state_dir", "state_dir: /var/lib/feedbackd\n", "", keyPath: "state_dir", problem: "required key is missing"
  ),
  .replacing(
    "missing source paths", "    paths: /var/log/shop/app.log*\n", "", keyPath: "sources[0].paths",
    problem: "required key is missing"),
  .replacing(
    "missing source name", "  - name: shop\n    paths:", "  - paths:", keyPath: "sources[0].name",
    problem: "required key is missing"),
  .replacing(
    "missing prediction key", "{ where: { event: prediction }, key: request_id }", "{ where: { event: prediction } }",
    keyPath: "events.prediction.key", problem: "required key is missing"),
  .replacing(
    "missing feedback where", "click: { where: { event: click }, key", "click: { key",
    keyPath: "events.feedback.click.where", problem: "required key is missing"),
  .replacing(
    "missing label window", "{ from: click, window: 30m }", "{ from: click }", keyPath: "labels.clicked.window",
    problem: "required key is missing"),
  .replacing(
    "missing dataset labels", "    labels: [clicked]", "    format: csv", keyPath: "datasets[0].labels",
    problem: "required key is missing"),
  .replacing(
    "missing datasets", "datasets:\n  - name: ctr\n    labels: [clicked]", "", keyPath: "datasets",
    problem: "required key is missing"),

  // empty lists / mappings
  .replacing(
    "no sources", "sources:\n  - name: shop\n    paths: /var/log/shop/app.log*", "sources: []", keyPath: "sources",
    problem: "expected at least one source"),
  .replacing(
    "no paths", "paths: /var/log/shop/app.log*", "paths: []", keyPath: "sources[0].paths",
    problem: "expected at least one path"),
  .replacing(
    "no feedback types", "  feedback:\n    click: { where: { event: click }, key: request_id }", "  feedback: {}",
    keyPath: "events.feedback", problem: "expected at least one feedback type"),
  .replacing(
    "empty where", "where: { event: prediction }", "where: {}", keyPath: "events.prediction.where",
    problem: "expected at least one `path: value` condition"),
  .replacing(
    "no labels", "labels:\n  clicked: { from: click, window: 30m }", "labels: {}", keyPath: "labels",
    problem: "expected at least one label"),
  .replacing(
    "no datasets", "datasets:\n  - name: ctr\n    labels: [clicked]", "datasets: []", keyPath: "datasets",
    problem: "expected at least one dataset"),
  .replacing(
    "no dataset labels", "labels: [clicked]", "labels: []", keyPath: "datasets[0].labels",
    problem: "expected at least one label (known: clicked)"),
  .replacing(
    "no columns", "labels: [clicked]", "labels: [clicked]\n    columns: []", keyPath: "datasets[0].columns",
    problem: "expected at least one column"),
  .replacing(
    "empty state_dir", "state_dir: /var/lib/feedbackd", "state_dir: ''", keyPath: "state_dir",
    problem: "must not be empty"),

  // duplicate names
  .replacing(
    "duplicate source", "  - name: shop\n", "  - { name: shop, paths: /a }\n  - name: shop\n",
    keyPath: "sources[1].name",
    problem: "duplicate source name \"shop\" (already used by sources[0])"),
  .replacing(
    "duplicate dataset", "  - name: ctr\n", "  - { name: ctr, labels: [clicked] }\n  - name: ctr\n",
    keyPath: "datasets[1].name",
    problem: "duplicate dataset name \"ctr\" (already used by datasets[0])"),
  .replacing(
    "duplicate dataset path", "  - name: ctr\n",
    "  - { name: ctr2, labels: [clicked], path: /var/lib/feedbackd/datasets/ctr }\n  - name: ctr\n",
    keyPath: "datasets[1].path", problem: "is already the path of datasets[0]"),
  .replacing(
    "label listed twice", "labels: [clicked]", "labels: [clicked, clicked]", keyPath: "datasets[0].labels[1]",
    problem: "label \"clicked\" is already listed at datasets[0].labels[0]"),

  // invalid names
  .replacing(
    "bad source name", "name: shop", "name: my-shop", keyPath: "sources[0].name",
    problem: "\"my-shop\" is not a valid source name (use letters, digits and _, not starting with a digit)"),
  .replacing(
    "bad feedback name", "    click: {", "    click.x: {", keyPath: "events.feedback.click.x",
    problem: "\"click.x\" is not a valid feedback type name"),
  .replacing(
    "bad label name", "  clicked: {", "  1clicked: {", keyPath: "labels.1clicked", problem: "is not a valid label name"),
  .replacing(
    "bad dataset name", "name: ctr", "name: c t r", keyPath: "datasets[0].name",
    problem: "\"c t r\" is not a valid dataset name"),

  // references
  .replacing(
    "label from unknown feedback", "from: click", "from: clik", keyPath: "labels.clicked.from",
    problem: "\"clik\" is not a feedback type (known: click)"),
  .replacing(
    "dataset label undefined", "labels: [clicked]", "labels: [clicked, bought]", keyPath: "datasets[0].labels[1]",
    problem: "\"bought\" is not a label (known: clicked)"),

  // column collisions
  .replacing(
    "label named key", "  clicked: { from: click, window: 30m }",
    "  clicked: { from: click, window: 30m }\n  key: { from: click, window: 1m }",
    keyPath: "labels.key", problem: "collides with the key column"),
  .replacing(
    "label named predicted_at", "  clicked: {", "  predicted_at: { from: click, window: 1m }\n  clicked: {",
    keyPath: "labels.predicted_at", problem: "collides with the predicted_at column"),
  .replacing(
    "label named like another's _at", "  clicked: { from: click, window: 30m }",
    "  clicked: { from: click, window: 30m }\n  clicked_at: { from: click, window: 1m }",
    keyPath: "labels.clicked_at", problem: "collides with the clicked_at column of label \"clicked\""),
  .replacing(
    "label vs column", "labels: [clicked]", "labels: [clicked]\n    columns: [{ path: c, as: clicked }]",
    keyPath: "datasets[0].labels[0]",
    problem: "label \"clicked\" needs a column \"clicked\", already used by datasets[0].columns[0]"),
  .replacing(
    "label _at vs column", "labels: [clicked]", "labels: [clicked]\n    columns: [clicked_at]",
    keyPath: "datasets[0].labels[0]",
    problem: "needs a column \"clicked_at\""),
  .replacing(
    "label vs prediction column", "  clicked: { from: click, window: 30m }",
    "  clicked: { from: click, window: 30m }\n  prediction: { from: click, window: 1m }",
    keyPath: "datasets[0].labels[1]", problem: "the prediction column"
  ).withDatasetLabels("[clicked, prediction]"),
  .replacing(
    "duplicate column names", "labels: [clicked]", "labels: [clicked]\n    columns: [a.b, { path: x, as: a.b }]",
    keyPath: "datasets[0].columns[1]",
    problem: "column name \"a.b\" is already used by datasets[0].columns[0]"),
  .replacing(
    "column named key", "labels: [clicked]", "labels: [clicked]\n    columns: [key]", keyPath: "datasets[0].columns[0]",
    problem: "column name \"key\" is already used by the built-in key column"),
  .replacing(
    "empty alias", "labels: [clicked]", "labels: [clicked]\n    columns: [{ path: a, as: '' }]",
    keyPath: "datasets[0].columns[0].as",
    problem: "must not be empty"),

  // field paths
  .replacing(
    "bad key path", "key: request_id }\n  feedback", "key: \"a..b\" }\n  feedback", keyPath: "events.prediction.key",
    problem: "field path \"a..b\" has an empty segment"),
  .replacing(
    "bad where path", "where: { event: click }", "where: { 'event\"x': click }",
    keyPath: "events.feedback.click.where.event\"x",
    problem: "field path \"event\"x\" has a quote inside a segment"),
  .replacing(
    "bad time_field", "    paths: /var/log/shop/app.log*", "    paths: /var/log/shop/app.log*\n    time_field: '\"ts'",
    keyPath: "sources[0].time_field", problem: "has an unclosed quote"),
  .replacing(
    "bad column path", "labels: [clicked]", "labels: [clicked]\n    columns: [a.]", keyPath: "datasets[0].columns[0]",
    problem: "field path \"a.\" has an empty segment"),
  .replacing(
    "bad dedupe_by", "click: { where: { event: click }, key: request_id }",
    "click: { where: { event: click }, key: request_id, dedupe_by: '' }",
    keyPath: "events.feedback.click.dedupe_by", problem: "field path \"\" is empty"),

  // formats and label values
  .replacing(
    "unknown source format", "    paths: /var/log/shop/app.log*",
    "    paths: /var/log/shop/app.log*\n    format: syslog",
    keyPath: "sources[0].format",
    problem:
      "\"syslog\" is not a known format (known: json, logstash, fluentd, docker, cri, gcp, cloudwatch, azure, elasticsearch, auto)"
  ),
  .replacing(
    "unknown dataset format", "labels: [clicked]", "labels: [clicked]\n    format: parquet",
    keyPath: "datasets[0].format",
    problem: "\"parquet\" is not a dataset format (known: jsonl, jsonl.gz, csv)"),
  .replacing(
    "bad label value", "window: 30m }", "window: 30m, value: avg(x) }", keyPath: "labels.clicked.value",
    problem: "\"avg(x)\" is not a label value (use binary, count, sum(path) or first(path))"),
  .replacing(
    "label value sum without path", "window: 30m }", "window: 30m, value: sum() }", keyPath: "labels.clicked.value",
    problem: "field path \"\" is empty"),
  .replacing(
    "label value Binary", "window: 30m }", "window: 30m, value: Binary }", keyPath: "labels.clicked.value",
    problem: "is not a label value"),

  // ranges
  .replacing(
    "zero window", "window: 30m", "window: 0s", keyPath: "labels.clicked.window", problem: "must be greater than 0"),
  .replacing(
    "zero roll max_age", "labels: [clicked]", "labels: [clicked]\n    roll: { max_age: 0m }",
    keyPath: "datasets[0].roll.max_age",
    problem: "must be greater than 0"),
  .replacing(
    "zero roll max_bytes", "labels: [clicked]", "labels: [clicked]\n    roll: { max_bytes: 0KiB }",
    keyPath: "datasets[0].roll.max_bytes",
    problem: "must be greater than 0"),
  ErrorCase(
    label: "listen without port", yaml: minimal(plus: "http: { listen: localhost }"), keyPath: "http.listen",
    problem: "\"localhost\" is not host:port (use e.g. 127.0.0.1:9464 or [::1]:9464)"),
  ErrorCase(
    label: "port out of range", yaml: minimal(plus: "http: { listen: \"127.0.0.1:65536\" }"), keyPath: "http.listen",
    problem: "port 65536 in \"127.0.0.1:65536\" is out of range (0–65535)"),
  ErrorCase(
    label: "unbracketed IPv6", yaml: minimal(plus: "http: { listen: \"::1:9464\" }"), keyPath: "http.listen",
    problem: "is not host:port"),
  ErrorCase(
    label: "empty host", yaml: minimal(plus: "http: { listen: \":9464\" }"), keyPath: "http.listen",
    problem: "is not host:port"),
  ErrorCase(
    label: "named port", yaml: minimal(plus: "http: { listen: \"127.0.0.1:http\" }"), keyPath: "http.listen",
    problem: "is not host:port"),
  ErrorCase(
    label: "http not a mapping", yaml: minimal(plus: "http: 127.0.0.1:9464"), keyPath: "http",
    problem: "expected a mapping, got a string"),
]

extension ErrorCase {
  func withDatasetLabels(_ list: String) -> ErrorCase {
    ErrorCase(
      label: label, yaml: yaml.replacingOccurrences(of: "labels: [clicked]", with: "labels: \(list)"), keyPath: keyPath,
      problem: problem)
  }
}

@Suite struct ErrorTests {
  @Test(arguments: errorCases)
  func rejected(_ c: ErrorCase) throws {
    let error = try #require(failure(c.yaml))
    #expect(error.keyPath == c.keyPath, "\(error)")
    #expect(error.problem.contains(c.problem), "\(error)")
    #expect(error.description.contains("\(c.keyPath): "), "\(error)")
    #expect(error.line != nil, "\(error)")
  }

  @Test func exactMessages() throws {
    let unknownKey = try #require(
      failure(
        """
        state_dir: /s
        sources:
          - name: shop
            paths: /a.log
            fromat: json
        """))
    #expect(
      unknownKey.description
        == "line 5: sources[0].fromat: unknown key (known: name, paths, format, time_field, max_line_bytes)")

    let badSize = try #require(
      failure(
        minimal(plus: "").replacingOccurrences(
          of: "    labels: [clicked]", with: "    labels: [clicked]\n    roll:\n      max_bytes: 12XB")))
    #expect(
      badSize.description
        == #"line 15: datasets[0].roll.max_bytes: "12XB" is not a size (use e.g. 512KiB, 128MiB, 1GiB)"#)

    let badFrom = try #require(
      failure(
        designExample.replacingOccurrences(of: "from: purchase, window: 7d }", with: "from: purchse, window: 7d }")))
    #expect(
      badFrom.description
        == #"line 14: labels.purchased.from: "purchse" is not a feedback type (known: click, purchase)"#)

    let badDuration = try #require(failure(minimal(plus: "clock_skew: 5 minutes")))
    #expect(
      badDuration.description
        == #"line 14: clock_skew: "5 minutes" is not a duration (use e.g. 500ms, 30s, 5m, 1h30m, 7d; units: ms, s, m, h, d)"#
    )

    let missing = try #require(
      failure(minimalYAML.replacingOccurrences(of: "    labels: [clicked]", with: "    format: csv")))
    #expect(missing.description == "line 12: datasets[0].labels: required key is missing")
  }

  @Test(arguments: [
    ("", "the configuration is empty"),
    ("# only a comment\n", "the configuration is empty"),
    ("- a\n- b\n", "the configuration must be a mapping (state_dir, sources, events, labels, datasets, …), got a list"),
    (
      "just text\n",
      "the configuration must be a mapping (state_dir, sources, events, labels, datasets, …), got a string"
    ),
  ])
  func wholeDocumentProblems(yaml: String, problem: String) throws {
    let error = try #require(failure(yaml))
    #expect(error.keyPath == "")
    #expect(error.problem.hasPrefix(problem), "\(error)")
  }

  @Test func yamlSyntaxErrorIsOneLineWithItsLine() throws {
    let error = try #require(failure("state_dir: /s\nsources: [a, b\nevents: {}\n"))
    #expect(error.problem.hasPrefix("invalid YAML"), "\(error)")
    #expect(error.line != nil)
  }

  @Test func duplicateYAMLKeyIsAnError() throws {
    let error = try #require(
      failure(
        minimalYAML.replacingOccurrences(
          of: "  clicked: { from", with: "  clicked: { from: click, window: 1m }\n  clicked: { from")))
    #expect(error.problem == "duplicate key \"clicked\" in a mapping", "\(error)")
  }

  @Test func loadReportsMissingFile() {
    #expect(throws: ConfigurationError.self) { try Configuration.load(path: "/nonexistent/feedbackd.yaml") }
    do {
      _ = try Configuration.load(path: "/nonexistent/feedbackd.yaml")
    } catch {
      #expect(error.description == #"configuration file "/nonexistent/feedbackd.yaml" does not exist"#)
    }
  }
}
