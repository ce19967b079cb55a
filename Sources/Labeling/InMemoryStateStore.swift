/// A `StateStore` in dictionaries: for tests and for replays that fit in memory.
public final class InMemoryStateStore: StateStore {
  private var predictionsBySeq: [Int64: StoredPrediction] = [:]
  private var seqByKey: [String: Int64] = [:]
  private var due = Set<DueRow>()
  private var feedbackByKey: [String: [StoredFeedback]] = [:]
  private var finished: [String: (time: Int64, expiresAt: Int64)] = [:]

  public init() {}

  public func prediction(key: String) -> StoredPrediction? {
    seqByKey[key].flatMap { predictionsBySeq[$0] }
  }

  public func prediction(seq: Int64) -> StoredPrediction? { predictionsBySeq[seq] }

  public func insertPrediction(_ prediction: StoredPrediction) {
    predictionsBySeq[prediction.seq] = prediction
    seqByKey[prediction.key] = prediction.seq
  }

  public func updatePending(seq: Int64, pending: UInt64) {
    predictionsBySeq[seq]?.pending = pending
  }

  public func deletePrediction(seq: Int64) {
    if let p = predictionsBySeq.removeValue(forKey: seq), seqByKey[p.key] == seq {
      seqByKey[p.key] = nil
    }
  }

  public func pendingPredictionCount() -> Int { predictionsBySeq.count }

  public func insertDue(_ row: DueRow) { due.insert(row) }
  public func deleteDue(_ row: DueRow) { due.remove(row) }

  public func popDueRows(through watermark: Int64, limit: Int) -> [DueRow] {
    let rows = Array(due.filter { $0.finalizeAt <= watermark }.sorted().prefix(limit))
    due.subtract(rows)
    return rows
  }

  public func earliestDue() -> Int64? { due.map(\.finalizeAt).min() }

  public func claimFeedback(key: String) {}

  public func insertFeedback(_ feedback: StoredFeedback, claimed: Bool) {
    feedbackByKey[feedback.key, default: []].append(feedback)
  }

  public func feedback(key: String) -> [StoredFeedback] {
    (feedbackByKey[key] ?? []).sorted { ($0.time, $0.seq) < ($1.time, $1.seq) }
  }

  public func deleteFeedback(key: String) { feedbackByKey[key] = nil }

  private func deleteFeedback(seq: Int64) {
    for (key, list) in feedbackByKey where list.contains(where: { $0.seq == seq }) {
      let rest = list.filter { $0.seq != seq }
      feedbackByKey[key] = rest.isEmpty ? nil : rest
    }
  }

  private var unclaimed: [StoredFeedback] {
    feedbackByKey.filter { seqByKey[$0.key] == nil }.values.flatMap { $0 }
  }

  public func popUnclaimedFeedback(before: Int64, limit: Int) -> [StoredFeedback] {
    let taken = Array(
      unclaimed.filter { $0.time < before }.sorted { ($0.time, $0.seq) < ($1.time, $1.seq) }.prefix(limit))
    for f in taken { deleteFeedback(seq: f.seq) }
    return taken
  }

  public func earliestUnclaimedFeedback() -> Int64? { unclaimed.map(\.time).min() }

  public func finishedPrediction(key: String, at watermark: Int64) -> Int64? {
    guard let entry = finished[key], entry.expiresAt > watermark else { return nil }
    return entry.time
  }

  public func insertFinished(key: String, time: Int64, expiresAt: Int64) {
    finished[key] = (time, expiresAt)
  }

  public func pruneFinished(expiredBy watermark: Int64) {
    finished = finished.filter { $0.value.expiresAt > watermark }
  }
}
