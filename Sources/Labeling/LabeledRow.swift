import LogFormats

/// One label's outcome in a row.
public struct LabelOutcome: Sendable, Equatable {
  public var value: JSONValue
  /// Event time of the earliest attributed feedback.
  public var at: Int64?

  public init(value: JSONValue, at: Int64?) {
    self.value = value
    self.at = at
  }
}

/// A final dataset row, handed to the dataset writer.
public struct LabeledRow: Sendable {
  public var dataset: Int
  /// The join key (inline: a row copies no heap object for it).
  public var joinKey: JoinKey
  public var key: String { joinKey.description }
  public var predictedAt: Int64
  /// The watermark value at which the row became final (`tp + max window`).
  public var finalizeAt: Int64
  /// Compact JSON text of the kept columns as an array, or of the whole prediction object
  /// (a slice of the stored prediction's payload: making a row copies no bytes).
  public var columnsJSON: ArraySlice<UInt8>
  /// In the order of the dataset's labels.
  public var labels: [LabelOutcome]

  /// `columnsJSON` parsed.
  public var columns: JSONValue { (try? JSONValue.parse(Array(columnsJSON))) ?? .null }

  public init(
    dataset: Int, key: String, predictedAt: Int64, finalizeAt: Int64, columnsJSON: [UInt8], labels: [LabelOutcome]
  ) {
    self.init(
      dataset: dataset, key: key, predictedAt: predictedAt, finalizeAt: finalizeAt, columnsJSON: columnsJSON[...],
      labels: labels)
  }

  public init(
    dataset: Int, key: String, predictedAt: Int64, finalizeAt: Int64, columnsJSON: ArraySlice<UInt8>,
    labels: [LabelOutcome]
  ) {
    self.init(
      dataset: dataset, joinKey: JoinKey(key), predictedAt: predictedAt, finalizeAt: finalizeAt,
      columnsJSON: columnsJSON, labels: labels)
  }

  public init(
    dataset: Int, joinKey: JoinKey, predictedAt: Int64, finalizeAt: Int64, columnsJSON: ArraySlice<UInt8>,
    labels: [LabelOutcome]
  ) {
    self.dataset = dataset
    self.joinKey = joinKey
    self.predictedAt = predictedAt
    self.finalizeAt = finalizeAt
    self.columnsJSON = columnsJSON
    self.labels = labels
  }

  public init(
    dataset: Int, key: String, predictedAt: Int64, finalizeAt: Int64, columns: JSONValue, labels: [LabelOutcome]
  ) {
    var bytes: [UInt8] = []
    columns.write(to: &bytes)
    self.init(
      dataset: dataset, key: key, predictedAt: predictedAt, finalizeAt: finalizeAt, columnsJSON: bytes, labels: labels)
  }
}

/// A final row as the engine hands it over (`EngineOutput.write(parts:)`): what a
/// `LabeledRow` holds, by reference into the engine's memory, valid only during the call, with
/// its labels already encoded as `LabelRecords`. Making a `LabeledRow` per row (its label
/// array, its retained payload slice, and their release) and encoding each label's
/// `JSONValue` for the writer cost about 450 instructions a row where the output only copies
/// the bytes.
public struct RowParts {
  public var dataset: Int
  public var joinKey: JoinKey
  public var predictedAt: Int64
  public var finalizeAt: Int64
  /// As `LabeledRow.columnsJSON`.
  public var columnsJSON: UnsafeRawBufferPointer
  /// How many labels `labelRecords` holds, in the order of the dataset's labels.
  public var labelCount: Int
  /// The labels, one `LabelRecords` record each, back to back.
  public var labelRecords: UnsafeRawBufferPointer

  public init(
    dataset: Int, joinKey: JoinKey, predictedAt: Int64, finalizeAt: Int64, columnsJSON: UnsafeRawBufferPointer,
    labelCount: Int, labelRecords: UnsafeRawBufferPointer
  ) {
    self.dataset = dataset
    self.joinKey = joinKey
    self.predictedAt = predictedAt
    self.finalizeAt = finalizeAt
    self.columnsJSON = columnsJSON
    self.labelCount = labelCount
    self.labelRecords = labelRecords
  }

  /// Each label's time, in order.
  @inlinable
  public func forEachLabelTime(_ body: (Int, Int64?) -> Void) {
    guard var p = labelRecords.baseAddress else { return }
    for k in 0..<labelCount { body(k, LabelRecords.read(&p).at) }
  }

  /// The same row as a `LabeledRow` (its bytes copied, its labels' JSON parsed).
  public var labeledRow: LabeledRow {
    var labels: [LabelOutcome] = []
    labels.reserveCapacity(labelCount)
    if var p = labelRecords.baseAddress {
      for _ in 0..<labelCount {
        let (at, json) = LabelRecords.read(&p)
        labels.append(LabelOutcome(value: (try? JSONValue.parse(json)) ?? .null, at: at))
      }
    }
    return LabeledRow(
      dataset: dataset, joinKey: joinKey, predictedAt: predictedAt, finalizeAt: finalizeAt,
      columnsJSON: Array(columnsJSON)[...], labels: labels)
  }
}

extension LabeledRow {
  /// The row as `RowParts` (its labels encoded), valid during `body`.
  public func withParts<R>(_ body: (RowParts) throws -> R) rethrows -> R {
    let labels = LabelRecords.encode(self.labels)
    return try columnsJSON.withUnsafeBytes { columns in
      try labels.withUnsafeBytes { labels in
        try body(
          RowParts(
            dataset: dataset, joinKey: joinKey, predictedAt: predictedAt, finalizeAt: finalizeAt,
            columnsJSON: columns, labelCount: self.labels.count, labelRecords: labels))
      }
    }
  }
}

/// Label outcomes as bytes, as the engine hands them over and the dataset writer's records
/// carry them. A record: 1 byte (whether it has a time), the time (Int64, native byte order,
/// unaligned), the value's JSON length (UInt32), then the value's JSON, compact, as
/// `JSONValue.write` writes it.
public enum LabelRecords {
  public static let headerCount = 1 + 8 + 4

  /// `outcome`'s record, appended to `out`.
  public static func append(_ outcome: LabelOutcome, to out: inout [UInt8]) {
    let header = out.count
    out.append(contentsOf: repeatElement(0, count: headerCount))
    outcome.value.write(to: &out)
    out.withUnsafeMutableBytes { raw in
      let p = raw.baseAddress! + header
      p.storeBytes(of: outcome.at == nil ? 0 : 1, as: UInt8.self)
      p.storeBytes(of: outcome.at ?? 0, toByteOffset: 1, as: Int64.self)
      p.storeBytes(of: UInt32(truncatingIfNeeded: raw.count - header - headerCount), toByteOffset: 9, as: UInt32.self)
    }
  }

  /// The records of `outcomes`, back to back.
  public static func encode(_ outcomes: some Sequence<LabelOutcome>) -> [UInt8] {
    var out: [UInt8] = []
    for outcome in outcomes { append(outcome, to: &out) }
    return out
  }

  /// The record at `p`: its time and its value's JSON; moves `p` past it.
  @inlinable @inline(__always)
  public static func read(_ p: inout UnsafeRawPointer) -> (at: Int64?, value: UnsafeRawBufferPointer) {
    let hasAt = p.load(as: UInt8.self) != 0
    let at = p.loadUnaligned(fromByteOffset: 1, as: Int64.self)
    let count = Int(p.loadUnaligned(fromByteOffset: 9, as: UInt32.self))
    let value = UnsafeRawBufferPointer(start: p + headerCount, count: count)
    p += headerCount + count
    return (hasAt ? at : nil, value)
  }

  /// The length of the `count` records at `p`.
  @inlinable
  public static func length(of count: Int, at p: UnsafeRawPointer) -> Int {
    var end = p
    for _ in 0..<count { end += headerCount + Int(end.loadUnaligned(fromByteOffset: 9, as: UInt32.self)) }
    return p.distance(to: end)
  }
}

/// Records that change no row but are kept for inspection (`state_dir/side/`).
public enum SideRecord: Sendable {
  /// Feedback that belongs to no prediction.
  case orphan(type: Int, key: String, time: Int64)
  /// Feedback whose prediction's row was already written.
  case lateFeedback(type: Int, key: String, time: Int64, predictedAt: Int64)
  /// A prediction whose windows had all closed before it was read.
  case latePrediction(key: String, time: Int64)
}

/// Receives what the engine decides, in a deterministic order.
public protocol EngineOutput: AnyObject {
  /// A final row, valid during the call: an output that keeps it makes `parts.labeledRow`.
  func write(parts: RowParts) throws
  func side(_ record: SideRecord) throws
}

/// What the engine counted, for the summary and metrics.
public struct EngineCounters: Sendable, Equatable {
  public var predictions = 0
  public var feedback: [Int] = []
  public var ignored = 0
  public var missingKey = 0
  public var duplicatePredictions = 0
  public var latePredictions = 0
  public var orphans: [Int] = []
  public var lateFeedback: [Int] = []
  public var rows: [Int] = []
  /// Per source, events by kind: prediction, each feedback type, ignored, missing key.
  public var eventsBySource: [[Int]] = []

  public init(feedbackTypes: Int, datasets: Int, sources: Int = 1) {
    feedback = Array(repeating: 0, count: feedbackTypes)
    orphans = feedback
    lateFeedback = feedback
    rows = Array(repeating: 0, count: datasets)
    eventsBySource = Array(repeating: Array(repeating: 0, count: feedbackTypes + 3), count: sources)
  }
}
