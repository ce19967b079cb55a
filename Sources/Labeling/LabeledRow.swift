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
/// `LabeledRow` holds, by reference into the engine's memory, valid only during the call.
/// Making a `LabeledRow` per row (its label array, its retained payload slice, and their
/// release) cost about 300 instructions a row where the output only copies the bytes.
public struct RowParts {
  public var dataset: Int
  public var joinKey: JoinKey
  public var predictedAt: Int64
  public var finalizeAt: Int64
  /// As `LabeledRow.columnsJSON`.
  public var columnsJSON: UnsafeRawBufferPointer
  /// In the order of the dataset's labels.
  public var labels: UnsafeBufferPointer<LabelOutcome>

  public init(
    dataset: Int, joinKey: JoinKey, predictedAt: Int64, finalizeAt: Int64, columnsJSON: UnsafeRawBufferPointer,
    labels: UnsafeBufferPointer<LabelOutcome>
  ) {
    self.dataset = dataset
    self.joinKey = joinKey
    self.predictedAt = predictedAt
    self.finalizeAt = finalizeAt
    self.columnsJSON = columnsJSON
    self.labels = labels
  }

  /// The same row as a `LabeledRow` (its bytes and labels copied).
  public var labeledRow: LabeledRow {
    LabeledRow(
      dataset: dataset, joinKey: joinKey, predictedAt: predictedAt, finalizeAt: finalizeAt,
      columnsJSON: Array(columnsJSON)[...], labels: Array(labels))
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
  func write(_ row: LabeledRow) throws
  /// A row by parts, valid during the call: what the engine calls. By default, `write` of
  /// the `LabeledRow`; an output that only copies the row's bytes takes them from the parts.
  func write(parts: RowParts) throws
  func side(_ record: SideRecord) throws
}

extension EngineOutput {
  public func write(parts: RowParts) throws { try write(parts.labeledRow) }
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
