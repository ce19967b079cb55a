/// A prediction waiting for its windows to close.
public struct StoredPrediction: Sendable, Equatable {
  /// Global read order; the tie-breaker after event time.
  public var seq: Int64
  /// The join key, inline (`JoinKey`), as in `StoredFeedback`: a commit's journal lists every
  /// pending prediction, and as a `String` each made a heap object on the pipeline's thread
  /// that the commit's SQL thread then retained, released and freed.
  public var joinKey: JoinKey
  public var key: String {
    get { joinKey.description }
    set { joinKey = JoinKey(newValue) }
  }
  public var time: Int64
  /// Compact JSON: an array holding, per dataset, its kept columns (or the whole object).
  public var payload: [UInt8]
  /// Datasets this prediction has a row in (those whose window had not closed when read).
  public var datasets: UInt64
  /// Datasets whose row is not written yet.
  public var pending: UInt64

  public init(seq: Int64, key: String, time: Int64, payload: [UInt8], datasets: UInt64, pending: UInt64) {
    self.init(seq: seq, joinKey: JoinKey(key), time: time, payload: payload, datasets: datasets, pending: pending)
  }

  public init(seq: Int64, joinKey: JoinKey, time: Int64, payload: [UInt8], datasets: UInt64, pending: UInt64) {
    self.seq = seq
    self.joinKey = joinKey
    self.time = time
    self.payload = payload
    self.datasets = datasets
    self.pending = pending
  }
}

/// What the engine decides with about a key's pending prediction (its payload is read only
/// when a row is written).
public struct PendingPrediction: Sendable, Equatable {
  public var seq: Int64
  public var time: Int64
  public var datasets: UInt64
  public var pending: UInt64

  public init(seq: Int64, time: Int64, datasets: UInt64, pending: UInt64) {
    self.seq = seq
    self.time = time
    self.datasets = datasets
    self.pending = pending
  }
}

/// A feedback event kept until the prediction it may belong to is final.
public struct StoredFeedback: Sendable, Equatable {
  public var seq: Int64
  /// The join key, inline (`JoinKey`): as a `String` (a request id is over 15 bytes) each
  /// feedback event made a heap object, and every copy and drop of the event reached it.
  public var joinKey: JoinKey
  public var key: String {
    get { joinKey.description }
    set { joinKey = JoinKey(newValue) }
  }
  public var type: Int
  public var time: Int64
  /// Hash of the raw line: byte-identical lines count once.
  public var lineHash: UInt64
  /// The `dedupe_by` field as JSON text, if configured and present.
  public var dedupe: String?
  /// Compact JSON array of the fields the type's labels read.
  public var fields: [UInt8]

  public init(
    seq: Int64, key: String, type: Int, time: Int64, lineHash: UInt64, dedupe: String?, fields: [UInt8]
  ) {
    self.init(
      seq: seq, joinKey: JoinKey(key), type: type, time: time, lineHash: lineHash, dedupe: dedupe, fields: fields)
  }

  public init(
    seq: Int64, joinKey: JoinKey, type: Int, time: Int64, lineHash: UInt64, dedupe: String?, fields: [UInt8]
  ) {
    self.seq = seq
    self.joinKey = joinKey
    self.type = type
    self.time = time
    self.lineHash = lineHash
    self.dedupe = dedupe
    self.fields = fields
  }
}

/// A (prediction, dataset) row that becomes final when the watermark reaches `finalizeAt`.
public struct DueRow: Sendable, Hashable, Comparable {
  public var finalizeAt: Int64
  public var seq: Int64
  public var dataset: Int

  public init(finalizeAt: Int64, seq: Int64, dataset: Int) {
    self.finalizeAt = finalizeAt
    self.seq = seq
    self.dataset = dataset
  }

  public static func < (a: DueRow, b: DueRow) -> Bool {
    (a.finalizeAt, a.seq, a.dataset) < (b.finalizeAt, b.seq, b.dataset)
  }

  /// As a cursor: before every row.
  public static let beforeAll = DueRow(finalizeAt: .min, seq: .min, dataset: .min)

  /// As a cursor: after every row due by `time`, before every row due later.
  public static func afterAll(dueBy time: Int64) -> DueRow { DueRow(finalizeAt: time, seq: .max, dataset: .max) }
}

/// A due row read from the cold tier, with its prediction.
public struct DuePrediction: Sendable, Equatable {
  public var row: DueRow
  public var prediction: StoredPrediction
  public init(row: DueRow, prediction: StoredPrediction) {
    self.row = row
    self.prediction = prediction
  }
}

/// A store's handle on the state of one join key. It stays valid while the engine works on
/// one event or one due row; the next call that may drop state (`pruneFinished`,
/// `popUnclaimedFeedback`, eviction) may invalidate it.
public struct KeyRef: Sendable, Hashable {
  public let index: Int32
  public init(_ index: Int32) { self.index = index }
}

/// A row that became due, with the key it belongs to (whose prediction is pending in its dataset).
public struct DueRef: Sendable {
  public var row: DueRow
  public var ref: KeyRef
  public init(row: DueRow, ref: KeyRef) {
    self.row = row
    self.ref = ref
  }
}

/// Where join state lives, organised by join key: a key has at most one pending prediction,
/// the feedback read for it, and, once its prediction is finished, the memory of that.
///
/// The engine calls these from one thread; implementations need not be thread-safe. Writes
/// become durable when the owner commits, together with read positions and dataset offsets.
public protocol StateStore: AnyObject {
  /// Per dataset: how long after a prediction's time its row becomes due. Set by the engine
  /// before anything else is called.
  var dueOffsets: [Int64] { get set }

  /// The handle on `key`'s state (an empty entry if nothing is known of it).
  func ref(key: JoinKey) throws -> KeyRef
  /// The same, given a hash of the key computed ahead, in the store's own way
  /// (`MemoryStateStore.keyHashSeed`). A store that takes no hash ignores it.
  func ref(key: JoinKey, hash: UInt64) throws -> KeyRef
  func key(_ ref: KeyRef) -> JoinKey

  func prediction(_ ref: KeyRef) -> PendingPrediction?
  /// The pending prediction's payload: compact JSON, an array holding per dataset its kept
  /// columns (or the whole object). A view of the store's own bytes, valid until the store is
  /// next changed: handing out the array retained and released it, two atomic operations a
  /// row, each waiting for the loads before it (the engine's row loop runs on cache misses).
  func payloadBytes(_ ref: KeyRef) -> UnsafeRawBufferPointer
  /// A payload array holding `bytes`, for `setPrediction` (a store may hand out the storage
  /// of payloads it retired).
  func payloadArray(copying bytes: UnsafeBufferPointer<UInt8>) -> [UInt8]
  /// Makes this the key's pending prediction, replacing one that was pending (whose rows are
  /// then never written). Its rows become due at `time + dueOffsets[d]` for each `d` in
  /// `datasets`.
  func setPrediction(_ ref: KeyRef, seq: Int64, time: Int64, payload: consuming [UInt8], datasets: UInt64) throws
  /// Records that the row of `dataset` was written; returns the datasets still pending.
  func rowWritten(_ ref: KeyRef, dataset: Int) -> UInt64
  /// Retires the pending prediction and the key's feedback, and remembers that the key had a
  /// prediction at that time until the watermark reaches `expiresAt`.
  func finish(_ ref: KeyRef, expiresAt: Int64)
  func pendingPredictionCount() -> Int

  /// Removes and returns the next due row with `finalizeAt <= watermark`, in
  /// (finalizeAt, seq, dataset) order.
  func popDue(through watermark: Int64) throws -> DueRef?
  /// A lower bound of the earliest due row's time (it decides when to look).
  func earliestDue() throws -> Int64?
  /// `earliestDue()`, asked right after `popDue(through:)` returned nil, with no change in
  /// between: the store may know it from that look.
  func earliestDueAfterPop() throws -> Int64?

  /// Stores a feedback event of the key. While the key has no pending prediction it is an
  /// orphan candidate.
  func addFeedback(_ ref: KeyRef, _ feedback: StoredFeedback)
  /// The key's stored feedback in (time, seq) order.
  func feedback(_ ref: KeyRef) -> [StoredFeedback]
  /// Whether the key has stored feedback: `!feedback(ref).isEmpty`, without taking the array.
  func hasFeedback(_ ref: KeyRef) -> Bool
  /// Removes and returns the earliest orphan candidate with `time < before`.
  func popUnclaimedFeedback(before: Int64) throws -> StoredFeedback?
  func earliestUnclaimedFeedback() throws -> Int64?

  /// The event time of the prediction a finished key had, unless that memory expired.
  func finishedPrediction(_ ref: KeyRef, at watermark: Int64) -> Int64?
  func pruneFinished(expiredBy watermark: Int64)
}

extension UInt64 {
  /// The indices of the set bits, lowest first.
  func forEachBit(_ body: (Int) throws -> Void) rethrows {
    var rest = self
    while rest != 0 {
      let bit = rest.trailingZeroBitCount
      try body(bit)
      rest &= rest &- 1
    }
  }
}

extension StateStore {
  public func earliestDueAfterPop() throws -> Int64? { try earliestDue() }

  public func hasFeedback(_ ref: KeyRef) -> Bool { !feedback(ref).isEmpty }

  public func payloadArray(copying bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] { Array(bytes) }

  /// A store that keys its state another way ignores the hash.
  public func ref(key: JoinKey, hash: UInt64) throws -> KeyRef { try ref(key: key) }
}
