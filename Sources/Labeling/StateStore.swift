/// A prediction waiting for its windows to close.
public struct StoredPrediction: Sendable, Equatable {
  /// Global read order; the tie-breaker after event time.
  public var seq: Int64
  public var key: String
  public var time: Int64
  /// Compact JSON: an array holding, per dataset, its kept columns (or the whole object).
  public var payload: [UInt8]
  /// Datasets this prediction has a row in (those whose window had not closed when read).
  public var datasets: UInt64
  /// Datasets whose row is not written yet.
  public var pending: UInt64

  public init(seq: Int64, key: String, time: Int64, payload: [UInt8], datasets: UInt64, pending: UInt64) {
    self.seq = seq
    self.key = key
    self.time = time
    self.payload = payload
    self.datasets = datasets
    self.pending = pending
  }
}

/// A feedback event kept until the prediction it may belong to is final.
public struct StoredFeedback: Sendable, Equatable {
  public var seq: Int64
  public var key: String
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
    self.seq = seq
    self.key = key
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
}

/// Where join state lives: embedded SQLite today, a shared database tomorrow.
///
/// The engine calls these from one thread; implementations need not be thread-safe. Writes
/// become durable when the owner commits, together with read positions and dataset offsets.
public protocol StateStore: AnyObject {
  func prediction(key: String) throws -> StoredPrediction?
  func prediction(seq: Int64) throws -> StoredPrediction?
  func insertPrediction(_ prediction: StoredPrediction) throws
  func updatePending(seq: Int64, pending: UInt64) throws
  func deletePrediction(seq: Int64) throws
  func pendingPredictionCount() throws -> Int

  func insertDue(_ row: DueRow) throws
  func deleteDue(_ row: DueRow) throws
  /// Removes and returns due rows with `finalizeAt <= watermark`, in (finalizeAt, seq, dataset)
  /// order, at most `limit`.
  func popDueRows(through watermark: Int64, limit: Int) throws -> [DueRow]
  func earliestDue() throws -> Int64?

  /// `claimed`: a pending prediction exists for the key (so it cannot become an orphan
  /// before that prediction is final).
  func insertFeedback(_ feedback: StoredFeedback, claimed: Bool) throws
  /// Marks a key's stored feedback as claimed by a newly read prediction.
  func claimFeedback(key: String) throws
  /// All stored feedback for a key, in (time, seq) order.
  func feedback(key: String) throws -> [StoredFeedback]
  func deleteFeedback(key: String) throws
  /// Removes and returns unclaimed feedback with `time < before`, in (time, seq) order, at most
  /// `limit`.
  func popUnclaimedFeedback(before: Int64, limit: Int) throws -> [StoredFeedback]
  func earliestUnclaimedFeedback() throws -> Int64?

  /// The event time of the prediction a finished key had, unless that memory expired.
  func finishedPrediction(key: String, at watermark: Int64) throws -> Int64?
  func insertFinished(key: String, time: Int64, expiresAt: Int64) throws
  func pruneFinished(expiredBy watermark: Int64) throws
}
