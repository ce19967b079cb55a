/// A `StateStore` in plain dictionaries, written to be obviously correct rather than fast:
/// the reference the other stores are tested against.
public final class InMemoryStateStore: StateStore {
  public var dueOffsets: [Int64] = []
  private var keys: [JoinKey] = []
  private var refs: [JoinKey: Int32] = [:]
  private var predictions: [Int32: StoredPrediction] = [:]
  /// Every due row, with the key it belongs to.
  private var due: [DueRow: Int32] = [:]
  private var feedbackByRef: [Int32: [StoredFeedback]] = [:]
  private var finished: [Int32: (time: Int64, expiresAt: Int64)] = [:]

  public init() {}

  public func ref(key: JoinKey) -> KeyRef {
    if let index = refs[key] { return KeyRef(index) }
    keys.append(key)
    refs[key] = Int32(keys.count - 1)
    return KeyRef(Int32(keys.count - 1))
  }

  public func key(_ ref: KeyRef) -> JoinKey { keys[Int(ref.index)] }

  public func prediction(_ ref: KeyRef) -> PendingPrediction? {
    predictions[ref.index].map {
      PendingPrediction(seq: $0.seq, time: $0.time, datasets: $0.datasets, pending: $0.pending)
    }
  }

  public func payloadBytes(_ ref: KeyRef) -> UnsafeRawBufferPointer {
    // The stored prediction's array: its storage stays where it is until the prediction changes.
    predictions[ref.index]?.payload.withUnsafeBytes { $0 } ?? UnsafeRawBufferPointer(start: nil, count: 0)
  }

  public func setPrediction(_ ref: KeyRef, seq: Int64, time: Int64, payload: consuming [UInt8], datasets: UInt64) {
    if let old = predictions[ref.index] {
      due = due.filter { $0.key.seq != old.seq }
    }
    predictions[ref.index] = StoredPrediction(
      seq: seq, key: key(ref).description, time: time, payload: payload, datasets: datasets, pending: datasets)
    for d in dueOffsets.indices where datasets & (1 << UInt64(d)) != 0 {
      due[DueRow(finalizeAt: time + dueOffsets[d], seq: seq, dataset: d)] = ref.index
    }
  }

  public func rowWritten(_ ref: KeyRef, dataset: Int) -> UInt64 {
    predictions[ref.index]?.pending &= ~(1 << UInt64(dataset))
    return predictions[ref.index]?.pending ?? 0
  }

  public func finish(_ ref: KeyRef, expiresAt: Int64) {
    guard let p = predictions.removeValue(forKey: ref.index) else { return }
    due = due.filter { $0.key.seq != p.seq }
    feedbackByRef[ref.index] = nil
    finished[ref.index] = (p.time, expiresAt)
  }

  public func pendingPredictionCount() -> Int { predictions.count }

  public func popDue(through watermark: Int64) -> DueRef? {
    guard let row = due.keys.filter({ $0.finalizeAt <= watermark }).min(), let index = due.removeValue(forKey: row)
    else { return nil }
    return DueRef(row: row, ref: KeyRef(index))
  }

  public func earliestDue() -> Int64? { due.keys.map(\.finalizeAt).min() }

  public func addFeedback(_ ref: KeyRef, _ feedback: StoredFeedback) {
    feedbackByRef[ref.index, default: []].append(feedback)
  }

  public func feedback(_ ref: KeyRef) -> [StoredFeedback] {
    (feedbackByRef[ref.index] ?? []).sorted { ($0.time, $0.seq) < ($1.time, $1.seq) }
  }

  /// Feedback of keys without a pending prediction.
  private var unclaimed: [StoredFeedback] {
    feedbackByRef.filter { predictions[$0.key] == nil }.values.flatMap { $0 }
  }

  public func popUnclaimedFeedback(before: Int64) -> StoredFeedback? {
    guard let f = unclaimed.filter({ $0.time < before }).min(by: { ($0.time, $0.seq) < ($1.time, $1.seq) }),
      let index = refs[f.joinKey]
    else { return nil }
    feedbackByRef[index] = feedbackByRef[index]?.filter { $0.seq != f.seq }
    return f
  }

  public func earliestUnclaimedFeedback() -> Int64? { unclaimed.map(\.time).min() }

  public func finishedPrediction(_ ref: KeyRef, at watermark: Int64) -> Int64? {
    guard let entry = finished[ref.index], entry.expiresAt > watermark else { return nil }
    return entry.time
  }

  public func pruneFinished(expiredBy watermark: Int64) {
    finished = finished.filter { $0.value.expiresAt > watermark }
  }
}
