import LogFormats

public enum OutputFormat: String, Sendable, CaseIterable {
  case jsonl
  case jsonlGz = "jsonl.gz"
  case csv
}

/// What a dataset looks like on disk: where, which columns, how segments roll.
public struct DatasetLayout: Sendable {
  public struct Label: Sendable {
    public var name: String
    /// Column type in `_schema.json`: `int64`, `double` or `json`.
    public var type: String
    /// Free-form description in `_schema.json` (feedback type, window, value).
    public var describe: [(String, JSONValue)]
    public init(name: String, type: String, describe: [(String, JSONValue)]) {
      self.name = name
      self.type = type
      self.describe = describe
    }
  }

  public var name: String
  public var directory: String
  public var format: OutputFormat
  /// Kept column names; nil keeps the whole prediction as `prediction`.
  public var columns: [(name: String, path: String)]?
  public var labels: [Label]
  public var rollMaxBytes: Int
  /// In the age clock's unit (nanoseconds of event time in replay).
  public var rollMaxAge: Int64
  /// Longest window of the dataset's labels: a partition is complete at its end plus this.
  public var maxWindow: Int64

  public init(
    name: String, directory: String, format: OutputFormat, columns: [(name: String, path: String)]?,
    labels: [Label], rollMaxBytes: Int, rollMaxAge: Int64, maxWindow: Int64
  ) {
    self.name = name
    self.directory = directory
    self.format = format
    self.columns = columns
    self.labels = labels
    self.rollMaxBytes = rollMaxBytes
    self.rollMaxAge = rollMaxAge
    self.maxWindow = maxWindow
  }

  /// Column names in row order.
  public var columnNames: [String] {
    var names = ["key", "predicted_at"]
    names += columns?.map(\.name) ?? ["prediction"]
    for label in labels { names += [label.name, label.name + "_at"] }
    return names
  }

  /// `_schema.json`: columns with types, partitioning and format.
  public func schemaJSON() -> [UInt8] {
    var columnsJSON: [JSONValue] = [
      .object([.init(key: "name", value: .string("key")), .init(key: "type", value: .string("string"))]),
      .object([
        .init(key: "name", value: .string("predicted_at")), .init(key: "type", value: .string("timestamp")),
      ]),
    ]
    if let columns {
      for c in columns {
        columnsJSON.append(
          .object([
            .init(key: "name", value: .string(c.name)), .init(key: "type", value: .string("json")),
            .init(key: "path", value: .string(c.path)),
          ]))
      }
    } else {
      columnsJSON.append(
        .object([.init(key: "name", value: .string("prediction")), .init(key: "type", value: .string("json"))]))
    }
    for label in labels {
      var members: [JSONMember] = [
        .init(key: "name", value: .string(label.name)), .init(key: "type", value: .string(label.type)),
      ]
      members += label.describe.map { JSONMember(key: $0.0, value: $0.1) }
      columnsJSON.append(.object(members))
      columnsJSON.append(
        .object([
          .init(key: "name", value: .string(label.name + "_at")), .init(key: "type", value: .string("timestamp")),
        ]))
    }
    let schema = JSONValue.object([
      .init(key: "dataset", value: .string(name)),
      .init(key: "format", value: .string(format.rawValue)),
      .init(
        key: "partitioning",
        value: .array([
          .object([.init(key: "name", value: .string("date")), .init(key: "type", value: .string("date"))]),
          .object([.init(key: "name", value: .string("hour")), .init(key: "type", value: .string("int"))]),
        ])),
      .init(key: "columns", value: .array(columnsJSON)),
    ])
    var out: [UInt8] = []
    schema.write(to: &out)
    out.append(UInt8(ascii: "\n"))
    return out
  }

  /// Partitions are hours.
  static let partitionNanos: Int64 = 3_600_000_000_000

  /// `date=2026-11-30/hour=09` for an event time, and the partition's end time.
  public static func partition(of time: Int64) -> (name: String, end: Int64) {
    let c = Timestamp.civil(time)
    let hourNanos = partitionNanos
    let start = time - ((time % hourNanos) + hourNanos) % hourNanos
    return ("date=\(pad(c.year, 4))-\(pad(c.month, 2))-\(pad(c.day, 2))/hour=\(pad(c.hour, 2))", start + hourNanos)
  }

  static func pad(_ n: Int, _ width: Int) -> String {
    let s = String(n)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
  }
}
