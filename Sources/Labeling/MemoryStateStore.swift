/// The join state in memory, with a journal of what changed since the last checkpoint.
///
/// The engine's reads and writes never leave memory; at each checkpoint the owner hands the
/// journal to a `StatePersistence` (SQLite) inside the transaction that also commits read
/// positions and dataset offsets. On start the persisted state is loaded back, so a crash loses
/// nothing that was committed and keeps nothing that was not.
public final class MemoryStateStore: StateStore {
  private var predictionsBySeq: [Int64: StoredPrediction] = [:]
  private var seqByKey: [String: Int64] = [:]
  private var due = Heap<DueRow>()
  private var liveDue = Set<DueRow>()
  private var feedbackByKey: [String: [StoredFeedback]] = [:]
  /// Candidates for orphans, by time; entries go stale when claimed or removed.
  private var unclaimed = Heap<UnclaimedEntry>()
  private var finished: [String: FinishedKey] = [:]
  private var finishedExpiry = Heap<ExpiryEntry>()
  public private(set) var journal = StateJournal()

  struct UnclaimedEntry: Comparable {
    var time: Int64
    var seq: Int64
    var key: String
    static func < (a: Self, b: Self) -> Bool { (a.time, a.seq) < (b.time, b.seq) }
  }

  struct ExpiryEntry: Comparable {
    var expiresAt: Int64
    var key: String
    static func < (a: Self, b: Self) -> Bool { a.expiresAt < b.expiresAt }
  }

  public init() {}

  /// Rebuilds the state a `StatePersistence` saved.
  public init(snapshot: StateSnapshot) {
    for p in snapshot.predictions {
      predictionsBySeq[p.seq] = p
      seqByKey[p.key] = p.seq
    }
    for row in snapshot.due {
      due.insert(row)
      liveDue.insert(row)
    }
    for f in snapshot.feedback.sorted(by: { ($0.time, $0.seq) < ($1.time, $1.seq) }) {
      feedbackByKey[f.key, default: []].append(f)
      if seqByKey[f.key] == nil { unclaimed.insert(UnclaimedEntry(time: f.time, seq: f.seq, key: f.key)) }
    }
    for f in snapshot.finished {
      finished[f.key] = f
      finishedExpiry.insert(ExpiryEntry(expiresAt: f.expiresAt, key: f.key))
    }
  }

  /// Hands over what changed since the last call, for persisting.
  public func takeJournal() -> StateJournal {
    let taken = journal
    journal = StateJournal()
    return taken
  }

  // MARK: Predictions

  public func prediction(key: String) -> StoredPrediction? {
    seqByKey[key].flatMap { predictionsBySeq[$0] }
  }

  public func prediction(seq: Int64) -> StoredPrediction? { predictionsBySeq[seq] }

  public func insertPrediction(_ prediction: StoredPrediction) {
    predictionsBySeq[prediction.seq] = prediction
    seqByKey[prediction.key] = prediction.seq
    journal.predictions[prediction.seq] = prediction
    journal.newPredictions.insert(prediction.seq)
  }

  public func updatePending(seq: Int64, pending: UInt64) {
    guard var p = predictionsBySeq[seq] else { return }
    p.pending = pending
    predictionsBySeq[seq] = p
    journal.predictions[seq] = p
  }

  public func deletePrediction(seq: Int64) {
    if let p = predictionsBySeq.removeValue(forKey: seq), seqByKey[p.key] == seq {
      seqByKey[p.key] = nil
    }
    journal.removePrediction(seq)
  }

  public func pendingPredictionCount() -> Int { predictionsBySeq.count }

  // MARK: Due rows

  public func insertDue(_ row: DueRow) {
    if liveDue.insert(row).inserted { due.insert(row) }
    journal.due[row] = true
  }

  public func deleteDue(_ row: DueRow) {
    liveDue.remove(row)
    journal.removeDue(row)
  }

  public func popDueRows(through watermark: Int64, limit: Int) -> [DueRow] {
    var rows: [DueRow] = []
    while rows.count < limit, let top = due.min, top.finalizeAt <= watermark {
      due.popMin()
      guard liveDue.remove(top) != nil else { continue }
      journal.removeDue(top)
      rows.append(top)
    }
    return rows
  }

  public func earliestDue() -> Int64? {
    while let top = due.min, !liveDue.contains(top) { due.popMin() }
    return due.min?.finalizeAt
  }

  // MARK: Feedback

  public func insertFeedback(_ feedback: StoredFeedback, claimed: Bool) {
    var list = feedbackByKey[feedback.key] ?? []
    var index = list.count
    while index > 0, (list[index - 1].time, list[index - 1].seq) > (feedback.time, feedback.seq) { index -= 1 }
    list.insert(feedback, at: index)
    feedbackByKey[feedback.key] = list
    if !claimed { unclaimed.insert(UnclaimedEntry(time: feedback.time, seq: feedback.seq, key: feedback.key)) }
    journal.feedback[feedback.seq] = feedback
    journal.newFeedback.insert(feedback.seq)
  }

  /// Claims are implied: feedback is unclaimed exactly while its key has no pending prediction.
  public func claimFeedback(key: String) {}

  public func feedback(key: String) -> [StoredFeedback] { feedbackByKey[key] ?? [] }

  public func deleteFeedback(key: String) {
    guard let list = feedbackByKey.removeValue(forKey: key) else { return }
    for f in list { journal.removeFeedback(f.seq) }
  }

  private func isUnclaimed(_ entry: UnclaimedEntry) -> Bool {
    seqByKey[entry.key] == nil && (feedbackByKey[entry.key]?.contains { $0.seq == entry.seq } ?? false)
  }

  public func popUnclaimedFeedback(before: Int64, limit: Int) -> [StoredFeedback] {
    var taken: [StoredFeedback] = []
    while taken.count < limit, let top = unclaimed.min, top.time < before {
      unclaimed.popMin()
      guard isUnclaimed(top), var list = feedbackByKey[top.key],
        let index = list.firstIndex(where: { $0.seq == top.seq })
      else { continue }
      taken.append(list.remove(at: index))
      feedbackByKey[top.key] = list.isEmpty ? nil : list
      journal.removeFeedback(top.seq)
    }
    return taken
  }

  public func earliestUnclaimedFeedback() -> Int64? {
    while let top = unclaimed.min, !isUnclaimed(top) { unclaimed.popMin() }
    return unclaimed.min?.time
  }

  // MARK: Finished keys

  public func finishedPrediction(key: String, at watermark: Int64) -> Int64? {
    guard let entry = finished[key], entry.expiresAt > watermark else { return nil }
    return entry.time
  }

  public func insertFinished(key: String, time: Int64, expiresAt: Int64) {
    let entry = FinishedKey(key: key, time: time, expiresAt: expiresAt)
    finished[key] = entry
    finishedExpiry.insert(ExpiryEntry(expiresAt: expiresAt, key: key))
    journal.finished[key] = entry
  }

  public func pruneFinished(expiredBy watermark: Int64) {
    while let top = finishedExpiry.min, top.expiresAt <= watermark {
      finishedExpiry.popMin()
      if let entry = finished[top.key], entry.expiresAt <= watermark {
        finished[top.key] = nil
        journal.finished[top.key] = .some(nil)
      }
    }
  }
}

public struct FinishedKey: Sendable, Equatable {
  public var key: String
  public var time: Int64
  public var expiresAt: Int64
  public init(key: String, time: Int64, expiresAt: Int64) {
    self.key = key
    self.time = time
    self.expiresAt = expiresAt
  }
}

/// Everything persisted, loaded at start.
public struct StateSnapshot: Sendable {
  public var predictions: [StoredPrediction]
  public var due: [DueRow]
  public var feedback: [StoredFeedback]
  public var finished: [FinishedKey]
  public init(predictions: [StoredPrediction], due: [DueRow], feedback: [StoredFeedback], finished: [FinishedKey]) {
    self.predictions = predictions
    self.due = due
    self.feedback = feedback
    self.finished = finished
  }
}

/// What changed since the last checkpoint: a value to write, or `.some(nil)` to delete.
///
/// Entries created and removed between two checkpoints cancel out (sequence numbers are never
/// reused), so a checkpoint writes only the net change, not every event since the last one.
public struct StateJournal: Sendable {
  public var predictions: [Int64: StoredPrediction?] = [:]
  public var due: [DueRow: Bool] = [:]
  public var feedback: [Int64: StoredFeedback?] = [:]
  public var finished: [String: FinishedKey?] = [:]
  /// Created since the last checkpoint: never persisted, so removing them needs no delete.
  public internal(set) var newPredictions = Set<Int64>()
  public internal(set) var newFeedback = Set<Int64>()
  public init() {}

  mutating func removePrediction(_ seq: Int64) {
    if newPredictions.remove(seq) != nil {
      predictions[seq] = nil
    } else {
      predictions[seq] = .some(nil)
    }
  }

  mutating func removeDue(_ row: DueRow) {
    // A due row is inserted once, with its prediction: `true` here means since the checkpoint.
    if due[row] == true {
      due[row] = nil
    } else {
      due[row] = false
    }
  }

  mutating func removeFeedback(_ seq: Int64) {
    if newFeedback.remove(seq) != nil {
      feedback[seq] = nil
    } else {
      feedback[seq] = .some(nil)
    }
  }
}
