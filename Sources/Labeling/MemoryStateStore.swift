/// Persisted join state, read when something is not in memory (embedded SQLite in the daemon).
///
/// It holds the state as of the last checkpoint; what changed since then is in memory and in
/// the journal, which `MemoryStateStore` consults before trusting a cold read.
public protocol ColdTier: AnyObject {
  func prediction(key: String) throws -> StoredPrediction?
  func prediction(seq: Int64) throws -> StoredPrediction?
  func feedback(key: String) throws -> [StoredFeedback]
  /// Due rows with `after < finalizeAt <= through`, in order, at most `limit`.
  func dueRows(after: Int64, through: Int64, limit: Int) throws -> [DueRow]
  func earliestDue(after: Int64) throws -> Int64?
  func finished(key: String) throws -> FinishedKey?
  /// Feedback whose key has no prediction (orphan candidates), loaded at start.
  func unclaimedFeedback() throws -> [StoredFeedback]
  func pendingPredictionCount() throws -> Int
  /// Whether anything is stored at all (if not, misses need not be looked up).
  func hasState() throws -> Bool
}

/// The join state as a write-back cache: everything changed since the last checkpoint is in
/// memory (and in the journal); older state may live only in the `ColdTier`.
///
/// At each checkpoint the owner writes the journal to the cold tier in the transaction that
/// also commits read positions and dataset offsets, then calls `evict()`, which lets memory
/// shrink back to `maxInMemory` entries per kind: the oldest predictions with their feedback,
/// the due rows furthest in the future, finished keys. So memory does not grow with the
/// number of pending predictions or the window length. Without a cold tier nothing is evicted
/// (tests, small replays).
public final class MemoryStateStore: StateStore {
  private var predictionsBySeq: [Int64: StoredPrediction] = [:]
  private var seqByKey: [String: Int64] = [:]
  private var due = Heap<DueRow>()
  private var liveDue = Set<DueRow>()
  /// Every live due row with `finalizeAt <= dueBoundary` is in memory; later ones may be cold.
  private var dueBoundary: Int64
  /// A key's list here is complete (all its feedback), or the key is absent.
  private var feedbackByKey: [String: [StoredFeedback]] = [:]
  /// Candidates for orphans, by time; entries go stale when claimed or removed.
  private var unclaimed = Heap<UnclaimedEntry>()
  private var finished: [String: FinishedKey] = [:]
  /// Finished keys in the order they finished, which is close to expiry order: an entry
  /// behind a later-expiring one is dropped a little late, never early.
  private var finishedExpiry = Queue<ExpiryEntry>()
  private var pendingCount: Int
  public private(set) var journal = StateJournal()
  private let coldTier: (any ColdTier)?
  /// The cold tier, once it may hold something memory does not (state at start, or evicted).
  private var cold: (any ColdTier)? { coldMayHold ? coldTier : nil }
  private var coldMayHold: Bool
  public let maxInMemory: Int

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

  /// All in memory, nothing persisted.
  public init() {
    coldTier = nil
    coldMayHold = false
    maxInMemory = .max
    dueBoundary = .max
    pendingCount = 0
  }

  /// Over a cold tier holding the last checkpoint; loads only the orphan candidates.
  public init(cold: any ColdTier, maxInMemory: Int = 200_000) throws {
    coldTier = cold
    coldMayHold = try cold.hasState()
    self.maxInMemory = max(1, maxInMemory)
    dueBoundary = coldMayHold ? .min : .max
    pendingCount = try cold.pendingPredictionCount()
    for f in try cold.unclaimedFeedback().sorted(by: { ($0.time, $0.seq) < ($1.time, $1.seq) }) {
      feedbackByKey[f.key, default: []].append(f)
      unclaimed.insert(UnclaimedEntry(time: f.time, seq: f.seq, key: f.key))
    }
  }

  /// Entries changed since the last checkpoint: they stay in memory until it is written.
  public var dirtyCount: Int { journal.predictions.count + journal.feedback.count + journal.finished.count }

  /// Hands over what changed since the last call, for persisting.
  public func takeJournal() -> StateJournal {
    let taken = journal
    journal = StateJournal()
    return taken
  }

  private func deletedSinceCheckpoint(prediction seq: Int64) -> Bool {
    if case .some(.none) = journal.predictions[seq] { return true }
    return false
  }

  private func cache(_ p: StoredPrediction) {
    predictionsBySeq[p.seq] = p
    seqByKey[p.key] = p.seq
  }

  // MARK: Predictions

  public func prediction(key: String) throws -> StoredPrediction? {
    if let seq = seqByKey[key] { return predictionsBySeq[seq] }
    guard let cold, let p = try cold.prediction(key: key), !deletedSinceCheckpoint(prediction: p.seq) else {
      return nil
    }
    cache(p)
    return p
  }

  public func prediction(seq: Int64) throws -> StoredPrediction? {
    if let p = predictionsBySeq[seq] { return p }
    guard let cold, !deletedSinceCheckpoint(prediction: seq), let p = try cold.prediction(seq: seq) else {
      return nil
    }
    cache(p)
    return p
  }

  public func insertPrediction(_ prediction: StoredPrediction) {
    cache(prediction)
    journal.predictions[prediction.seq] = prediction
    journal.newPredictions.insert(prediction.seq)
    pendingCount += 1
  }

  public func updatePending(seq: Int64, pending: UInt64) throws {
    guard var p = try prediction(seq: seq) else { return }
    p.pending = pending
    predictionsBySeq[seq] = p
    journal.predictions[seq] = p
  }

  public func deletePrediction(seq: Int64) throws {
    let p: StoredPrediction
    if let cached = predictionsBySeq.removeValue(forKey: seq) {
      p = cached
    } else {
      guard let cold = try prediction(seq: seq) else { return }
      predictionsBySeq[seq] = nil
      p = cold
    }
    if let owner = seqByKey.removeValue(forKey: p.key), owner != seq { seqByKey[p.key] = owner }
    journal.removePrediction(seq)
    pendingCount -= 1
  }

  public func pendingPredictionCount() -> Int { pendingCount }

  // MARK: Due rows

  private func isDeletedSinceCheckpoint(_ row: DueRow) -> Bool { journal.due[row] == false }

  public func insertDue(_ row: DueRow) {
    if liveDue.insert(row).inserted { due.insert(row) }
    journal.due[row] = true
  }

  public func deleteDue(_ row: DueRow) {
    liveDue.remove(row)
    journal.removeDue(row)
  }

  /// Brings cold due rows up to `watermark` into memory.
  private func loadDue(through watermark: Int64) throws {
    guard let cold else { return }
    while dueBoundary < watermark {
      let rows = try cold.dueRows(after: dueBoundary, through: watermark, limit: 4096)
      for row in rows where !isDeletedSinceCheckpoint(row) && !liveDue.contains(row) {
        liveDue.insert(row)
        due.insert(row)
      }
      if rows.count < 4096 {
        dueBoundary = watermark
      } else {
        dueBoundary = rows.last!.finalizeAt - 1
        // Rows sharing that finalizeAt are reloaded on the next round; duplicates are skipped.
        if rows.first!.finalizeAt == rows.last!.finalizeAt { dueBoundary = rows.last!.finalizeAt }
      }
    }
  }

  public func popDueRows(through watermark: Int64, limit: Int) throws -> [DueRow] {
    try loadDue(through: watermark)
    var rows: [DueRow] = []
    while rows.count < limit, let top = due.min, top.finalizeAt <= watermark {
      due.popMin()
      guard liveDue.remove(top) != nil else { continue }
      journal.removeDue(top)
      rows.append(top)
    }
    return rows
  }

  public func earliestDue() throws -> Int64? {
    while let top = due.min, !liveDue.contains(top) { due.popMin() }
    let inMemory = due.min?.finalizeAt
    guard let cold, dueBoundary < .max else { return inMemory }
    // Cold rows after the boundary may come earlier than anything in memory (a lower bound is
    // enough: it only decides when to look).
    let coldMin = try cold.earliestDue(after: dueBoundary)
    switch (inMemory, coldMin) {
    case (let a?, let b?): return min(a, b)
    case (let a?, nil): return a
    case (nil, let b?): return b
    case (nil, nil): return nil
    }
  }

  // MARK: Feedback

  /// The complete list of a key's feedback, loaded from the cold tier if needed.
  private func loadFeedback(key: String) throws -> [StoredFeedback] {
    if let list = feedbackByKey[key] { return list }
    guard let cold else { return [] }
    let list = try cold.feedback(key: key).filter {
      if case .some(.none) = journal.feedback[$0.seq] { return false }
      return true
    }.sorted { ($0.time, $0.seq) < ($1.time, $1.seq) }
    feedbackByKey[key] = list
    return list
  }

  public func insertFeedback(_ feedback: StoredFeedback, claimed: Bool) throws {
    var list = try loadFeedback(key: feedback.key)
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

  public func feedback(key: String) throws -> [StoredFeedback] { try loadFeedback(key: key) }

  public func deleteFeedback(key: String) throws {
    let list = try loadFeedback(key: key)
    feedbackByKey[key] = nil
    for f in list { journal.removeFeedback(f.seq) }
  }

  private func isUnclaimed(_ entry: UnclaimedEntry) throws -> Bool {
    guard feedbackByKey[entry.key]?.contains(where: { $0.seq == entry.seq }) ?? false else { return false }
    return try prediction(key: entry.key) == nil
  }

  public func popUnclaimedFeedback(before: Int64, limit: Int) throws -> [StoredFeedback] {
    var taken: [StoredFeedback] = []
    while taken.count < limit, let top = unclaimed.min, top.time < before {
      unclaimed.popMin()
      guard try isUnclaimed(top), var list = feedbackByKey[top.key],
        let index = list.firstIndex(where: { $0.seq == top.seq })
      else { continue }
      taken.append(list.remove(at: index))
      feedbackByKey[top.key] = list.isEmpty ? nil : list
      journal.removeFeedback(top.seq)
    }
    return taken
  }

  public func earliestUnclaimedFeedback() throws -> Int64? {
    while let top = unclaimed.min, try !isUnclaimed(top) { unclaimed.popMin() }
    return unclaimed.min?.time
  }

  // MARK: Finished keys

  public func finishedPrediction(key: String, at watermark: Int64) throws -> Int64? {
    let entry: FinishedKey?
    if let known = finished[key] {
      entry = known
    } else if let cold, journal.finished[key] == nil, let stored = try cold.finished(key: key) {
      if stored.expiresAt > watermark { finished[key] = stored }
      entry = stored
    } else {
      entry = nil
    }
    guard let entry, entry.expiresAt > watermark else { return nil }
    return entry.time
  }

  public func insertFinished(key: String, time: Int64, expiresAt: Int64) {
    let entry = FinishedKey(key: key, time: time, expiresAt: expiresAt)
    finished[key] = entry
    finishedExpiry.append(ExpiryEntry(expiresAt: expiresAt, key: key))
    journal.finished[key] = entry
  }

  public func pruneFinished(expiredBy watermark: Int64) {
    while let top = finishedExpiry.first, top.expiresAt <= watermark {
      finishedExpiry.popFirst()
      guard let entry = finished.removeValue(forKey: top.key) else { continue }
      if entry.expiresAt > watermark {
        finished[top.key] = entry  // finished again later: still remembered
        continue
      }
      // Not journaled as a delete: the owner deletes every persisted entry that expired by
      // the watermark when it commits, so an entry born and expired between two checkpoints
      // never reaches the cold tier.
      journal.finished.removeValue(forKey: top.key)
    }
  }

  // MARK: Eviction

  /// After a checkpoint (journal persisted): lets clean state go so memory stays bounded.
  public func evict() {
    guard coldTier != nil, journal.isEmpty else { return }
    let before = (predictionsBySeq.count, feedbackByKey.count, liveDue.count, finished.count)
    if predictionsBySeq.count > maxInMemory {
      // Keep the newest quarter (their feedback is still arriving) and, of the rest, those due
      // soonest (their rows are written next); evict the ones due furthest in the future.
      var nextDue: [Int64: Int64] = [:]
      for row in liveDue { nextDue[row.seq] = min(nextDue[row.seq] ?? .max, row.finalizeAt) }
      let bySeq = predictionsBySeq.keys.sorted()
      let protected = Set(bySeq.suffix(maxInMemory / 4))
      let victims = bySeq.filter { !protected.contains($0) }
        .sorted { (nextDue[$0] ?? .max, $0) > (nextDue[$1] ?? .max, $1) }
        .prefix(predictionsBySeq.count - maxInMemory / 2)
      for seq in victims {
        guard let p = predictionsBySeq.removeValue(forKey: seq) else { continue }
        if seqByKey[p.key] == seq {
          seqByKey[p.key] = nil
          feedbackByKey[p.key] = nil
        }
      }
    }
    // Feedback lists of keys whose prediction is not in memory and that are not orphan
    // candidates are complete in the cold tier.
    if feedbackByKey.count > maxInMemory {
      let candidates = Set(unclaimed.items.map(\.key))
      for key in Array(feedbackByKey.keys) where seqByKey[key] == nil && !candidates.contains(key) {
        feedbackByKey[key] = nil
      }
    }
    if liveDue.count > maxInMemory {
      let kept = liveDue.sorted().prefix(maxInMemory / 2)
      // Rows sharing the last kept time may have been cut: the boundary stays below it.
      let newBoundary = (kept.last?.finalizeAt ?? .min) &- 1
      let keptRows = kept.filter { $0.finalizeAt <= newBoundary }
      liveDue = Set(keptRows)
      due = Heap()
      for row in keptRows { due.insert(row) }
      dueBoundary = min(dueBoundary, newBoundary)
    }
    if finished.count > maxInMemory {
      finished = [:]
      finishedExpiry = Queue()
    }
    let after = (predictionsBySeq.count, feedbackByKey.count, liveDue.count, finished.count)
    if after != before { coldMayHold = true }
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

/// What changed since the last checkpoint: a value to write, or `.some(nil)` to delete.
///
/// Entries created and removed between two checkpoints cancel out (sequence numbers are never
/// reused), so a checkpoint writes only the net change, not every event since the last one.
public struct StateJournal: Sendable {
  public var predictions: [Int64: StoredPrediction?] = [:]
  public var due: [DueRow: Bool] = [:]
  public var feedback: [Int64: StoredFeedback?] = [:]
  public var finished: [String: FinishedKey?] = [:]
  var isEmpty: Bool { predictions.isEmpty && due.isEmpty && feedback.isEmpty && finished.isEmpty }
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
