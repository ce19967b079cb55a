import LogFormats

/// The daemon's configuration, decoded strictly from YAML (DESIGN.md §7).
///
/// Durations are nanoseconds (`Int64`), sizes are bytes (`Int`). Every relative path has
/// already been resolved against the configuration file's directory.
public struct Configuration: Sendable {
  public var stateDir: String
  public var sources: [SourceConfig]
  public var events: EventsConfig
  /// In the order of the YAML mapping.
  public var labels: [LabelConfig]
  public var datasets: [DatasetConfig]
  public var watermark: WatermarkConfig
  /// Nanoseconds.
  public var clockSkew: Int64
  /// `max_in_memory`: how many pending predictions (and as many due rows, feedback lists and
  /// finished keys) stay in memory; the rest is read back from SQLite when needed.
  public var maxInMemory: Int = Configuration.defaultMaxInMemory
  public static let defaultMaxInMemory = 200_000
  /// `state_memory`: about how many bytes the join state may take in memory (keys, payloads,
  /// feedback, due rows, bookkeeping); beyond it, state is committed and evicted to SQLite
  /// (except state due within a minute past the watermark, while the state fits in 1.5 times it).
  public var stateMemory: Int = Configuration.defaultStateMemory
  /// 12 MiB: what the state takes beyond its estimate (malloc's overhead, free entry slots,
  /// transient copies while evicting) kept the replay of a 1-day-window job under 100 MB peak
  /// RSS (93 MB; 107 MB with 16 MiB).
  public static let defaultStateMemory = 12 << 20
  public var http: HTTPConfig
  /// Model-quality monitors over datasets' final rows (issue #6).
  public var monitors: [MonitorConfig] = []

  /// Every `LogFormat`, and `auto` (each file's format detected from its first lines).
  public static let knownFormats: [String] = LogFormat.allCases.map(\.rawValue) + [autoFormat]
  public static let autoFormat = "auto"

  public init(
    stateDir: String, sources: [SourceConfig], events: EventsConfig, labels: [LabelConfig],
    datasets: [DatasetConfig], watermark: WatermarkConfig = WatermarkConfig(), clockSkew: Int64 = 0,
    http: HTTPConfig = HTTPConfig()
  ) {
    self.stateDir = stateDir
    self.sources = sources
    self.events = events
    self.labels = labels
    self.datasets = datasets
    self.watermark = watermark
    self.clockSkew = clockSkew
    self.http = http
  }

  /// The label called `name`, if defined.
  public func label(named name: String) -> LabelConfig? {
    labels.first { $0.name == name }
  }
}

public struct SourceConfig: Sendable {
  public var name: String
  /// Absolute globs, at least one.
  public var paths: [String]
  /// One of `Configuration.knownFormats`; default `json`. `auto`: per file, see `FormatDetector`.
  public var format: String
  /// `time_field`; nil means the format's default.
  public var timeField: FieldPath?
  /// `max_line_bytes`; default 1 MiB.
  public var maxLineBytes: Int

  public static let defaultMaxLineBytes = 1 << 20

  public init(
    name: String, paths: [String], format: String = "json", timeField: FieldPath? = nil,
    maxLineBytes: Int = SourceConfig.defaultMaxLineBytes
  ) {
    self.name = name
    self.paths = paths
    self.format = format
    self.timeField = timeField
    self.maxLineBytes = maxLineBytes
  }
}

public struct EventsConfig: Sendable {
  public var prediction: EventRule
  /// In the order of the YAML mapping, at least one.
  public var feedback: [FeedbackRule]

  public init(prediction: EventRule, feedback: [FeedbackRule]) {
    self.prediction = prediction
    self.feedback = feedback
  }
}

public struct EventRule: Sendable {
  /// `where`: every entry must be equal for the rule to match; at least one.
  public var matches: [FieldMatch]
  public var key: FieldPath

  public init(matches: [FieldMatch], key: FieldPath) {
    self.matches = matches
    self.key = key
  }
}

public struct FeedbackRule: Sendable {
  /// The feedback type (the key under `events.feedback`).
  public var name: String
  public var matches: [FieldMatch]
  public var key: FieldPath
  /// `dedupe_by`.
  public var dedupeBy: FieldPath?

  public init(name: String, matches: [FieldMatch], key: FieldPath, dedupeBy: FieldPath? = nil) {
    self.name = name
    self.matches = matches
    self.key = key
    self.dedupeBy = dedupeBy
  }
}

public struct FieldMatch: Sendable, Hashable {
  public var path: FieldPath
  public var value: ScalarValue

  public init(path: FieldPath, value: ScalarValue) {
    self.path = path
    self.value = value
  }
}

/// A YAML scalar. Plain scalars resolve by the YAML 1.2 core schema
/// (`200` → number, `true` → bool, `null`/`~`/empty → null); quoted scalars are always strings.
public enum ScalarValue: Sendable, Hashable {
  case string(String)
  case number(Double)
  case bool(Bool)
  case null
}

public struct LabelConfig: Sendable {
  public var name: String
  /// A feedback type.
  public var from: String
  /// Nanoseconds, > 0.
  public var window: Int64
  public var value: LabelValue

  public init(name: String, from: String, window: Int64, value: LabelValue = .binary) {
    self.name = name
    self.from = from
    self.window = window
    self.value = value
  }
}

/// A model-quality monitor: per slice and window of prediction time, the label rate,
/// calibration, log loss and ROC AUC of a score column against a label, with alerts.
public struct MonitorConfig: Sendable {
  public var name: String
  public var dataset: String
  /// A binary or count label of the dataset (count: positive when > 0).
  public var label: String
  /// A column of the dataset holding the model's probability (a kept column's name, or a
  /// field path into the prediction when the dataset keeps the whole prediction).
  public var score: String
  /// Columns whose every value is a slice (besides the whole dataset).
  public var slices: [String]
  /// Nanoseconds, > 0.
  public var window: Int64
  /// Nanoseconds, at least two windows.
  public var baseline: Int64
  public var minRows: Int
  /// Per-test two-sided false-alarm rate; default 1e-6.
  public var alpha: Double

  public init(
    name: String, dataset: String, label: String, score: String, slices: [String] = [], window: Int64,
    baseline: Int64, minRows: Int = 200, alpha: Double = 1e-6
  ) {
    self.name = name
    self.dataset = dataset
    self.label = label
    self.score = score
    self.slices = slices
    self.window = window
    self.baseline = baseline
    self.minRows = minRows
    self.alpha = alpha
  }
}

public enum LabelValue: Sendable, Hashable {
  case binary
  case count
  case sum(FieldPath)
  case first(FieldPath)
}

public struct DatasetConfig: Sendable {
  public var name: String
  /// Absolute; default `<state_dir>/datasets/<name>`.
  public var path: String
  /// Label names, each defined, no repeats, at least one.
  public var labels: [String]
  /// nil when `columns` is absent: keep the whole prediction object.
  public var columns: [ColumnConfig]?
  public var format: DatasetFormat
  public var roll: RollConfig

  public init(
    name: String, path: String, labels: [String], columns: [ColumnConfig]? = nil,
    format: DatasetFormat = .jsonl, roll: RollConfig = RollConfig()
  ) {
    self.name = name
    self.path = path
    self.labels = labels
    self.columns = columns
    self.format = format
    self.roll = roll
  }
}

public struct ColumnConfig: Sendable, Hashable {
  public var path: FieldPath
  /// The `as:` alias, else the path text as written.
  public var name: String

  public init(path: FieldPath, name: String) {
    self.path = path
    self.name = name
  }
}

public enum DatasetFormat: String, Sendable, CaseIterable {
  case jsonl
  case jsonlGz = "jsonl.gz"
  case csv
}

public struct RollConfig: Sendable, Hashable {
  /// Bytes, > 0; default 128 MiB.
  public var maxBytes: Int
  /// Nanoseconds, > 0; default 5 minutes.
  public var maxAge: Int64

  public init(maxBytes: Int = 128 << 20, maxAge: Int64 = 5 * 60 * 1_000_000_000) {
    self.maxBytes = maxBytes
    self.maxAge = maxAge
  }
}

public struct WatermarkConfig: Sendable, Hashable {
  /// Nanoseconds; default 5 s.
  public var maxOutOfOrder: Int64
  /// Nanoseconds; default 30 s.
  public var idleTimeout: Int64

  public init(maxOutOfOrder: Int64 = 5_000_000_000, idleTimeout: Int64 = 30_000_000_000) {
    self.maxOutOfOrder = maxOutOfOrder
    self.idleTimeout = idleTimeout
  }
}

public struct HTTPConfig: Sendable, Hashable {
  /// Without brackets: `::1`, not `[::1]`.
  public var host: String
  public var port: Int

  public init(host: String = "127.0.0.1", port: Int = 9464) {
    self.host = host
    self.port = port
  }
}

/// A configuration problem, pointing at the key it concerns.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible, Equatable {
  /// E.g. `datasets[0].roll.max_bytes`; empty for problems of the document as a whole.
  public let keyPath: String
  public let problem: String
  /// 1-based line in the YAML text, when known.
  public let line: Int?

  public init(keyPath: String, problem: String, line: Int? = nil) {
    self.keyPath = keyPath
    self.problem = problem
    self.line = line
  }

  /// One line: `line 14: datasets[0].roll.max_bytes: "12XB" is not a size (...)`.
  public var description: String {
    var text = ""
    if let line { text += "line \(line): " }
    if !keyPath.isEmpty { text += keyPath + ": " }
    text += problem
    return Self.oneLine(text)
  }

  static func oneLine(_ text: String) -> String {
    text.split(whereSeparator: \.isNewline).map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
      .joined(separator: " ")
  }
}

extension Substring {
  fileprivate func trimmingSpaces() -> Substring {
    var s = self
    while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
    while let c = s.last, c == " " || c == "\t" { s.removeLast() }
    return s
  }
}
