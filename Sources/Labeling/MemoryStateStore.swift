/// Persisted join state, read when something is not in memory (embedded SQLite in the daemon).
///
/// It holds the state as of the last checkpoint; what changed since then is in memory, and
/// `MemoryStateStore` knows per key what the cold tier holds, so it never trusts a stale read.
public protocol ColdTier: AnyObject {
  func prediction(key: String) throws -> StoredPrediction?
  func prediction(seq: Int64) throws -> StoredPrediction?
  func feedback(key: String) throws -> [StoredFeedback]
  /// Due rows with `after < finalizeAt <= through`, in order, at most `limit`: the pending
  /// datasets `d` of the stored predictions, due at `time + offsets[d]`.
  func dueRows(after: Int64, through: Int64, limit: Int, offsets: [Int64]) throws -> [DueRow]
  func earliestDue(after: Int64, offsets: [Int64]) throws -> Int64?
  func finished(key: String) throws -> FinishedKey?
  /// Feedback whose key has no prediction (orphan candidates), loaded at start.
  func unclaimedFeedback() throws -> [StoredFeedback]
  func pendingPredictionCount() throws -> Int
  /// Whether anything is stored at all (if not, misses need not be looked up).
  func hasState() throws -> Bool
  /// Every key with a stored prediction, feedback event or finished memory, read at start.
  func keys() throws -> [String]
}

/// The join state as a write-back cache over a `ColdTier`, organised by key.
///
/// Each known key has one entry in an array: its pending prediction, its feedback, its
/// finished memory, and what the cold tier holds for it as of the last checkpoint. Keys are
/// hashed once per event; due rows, orphan candidates and expiries refer to entries by index,
/// so writing a row costs no lookup by key or sequence number. Changing an entry marks it
/// dirty; a checkpoint (`takeJournal`) writes the difference between each dirty entry and its
/// cold image, so state born and gone between two checkpoints (most of it, in replay) never
/// reaches the cold tier.
///
/// After a checkpoint `evict()` lets memory shrink back to `maxInMemory` entries per kind: the
/// pending predictions due furthest in the future (with their feedback), the due rows furthest
/// in the future, finished keys. An evicted key is read back from the cold tier the next time
/// it is looked up. Without a cold tier nothing is evicted (tests, small replays).
public final class MemoryStateStore: StateStore {
  struct Entry {
    var key: String
    /// The key's hash in `keys` (and in `coldKeys`).
    var hash: UInt64 = 0
    /// False while the entry is on the free list.
    var live = true
    /// Incremented whenever the entry is freed: references made before are stale.
    var generation: UInt32 = 0
    /// The pending prediction's sequence number; 0 when there is none.
    var seq: Int64 = 0
    var time: Int64 = 0
    var datasets: UInt64 = 0
    var pending: UInt64 = 0
    var payload: [UInt8] = []
    /// In (time, seq) order.
    var feedback: [StoredFeedback] = []
    var finishedTime: Int64 = 0
    /// `.min`: not finished (or the memory expired).
    var finishedExpires: Int64 = .min
    // What the cold tier holds for the key.
    var coldSeq: Int64 = 0
    var coldPending: UInt64 = 0
    var coldFeedback: [Int64] = []
    var coldFinishedExpires: Int64 = .min
    var dirty = false

    init(key: String) { self.key = key }

    var isEmpty: Bool { seq == 0 && feedback.isEmpty && finishedExpires == .min }
    /// Nothing in memory and nothing persisted: the entry can go even before a checkpoint,
    /// which would write nothing for it.
    var isGone: Bool { isEmpty && coldSeq == 0 && coldFeedback.isEmpty && coldFinishedExpires == .min }
  }

  struct DueEntry: Comparable {
    var finalizeAt: Int64
    var seq: Int64
    var dataset: Int32
    /// The entry the row's prediction was in when it was scheduled, or -1 (read from the cold tier).
    var index: Int32
    var generation: UInt32
    static func < (a: Self, b: Self) -> Bool { (a.finalizeAt, a.seq, a.dataset) < (b.finalizeAt, b.seq, b.dataset) }
    var row: DueRow { DueRow(finalizeAt: finalizeAt, seq: seq, dataset: Int(dataset)) }
  }

  struct UnclaimedEntry: Comparable {
    var time: Int64
    var seq: Int64
    var index: Int32
    var generation: UInt32
    static func < (a: Self, b: Self) -> Bool { (a.time, a.seq) < (b.time, b.seq) }
  }

  struct ExpiryEntry {
    var expiresAt: Int64
    var index: Int32
  }

  public var dueOffsets: [Int64] = []
  private var entries: [Entry] = []
  private var freeEntries: [Int32] = []
  private var keys = KeyTable()
  /// Entries marked dirty since the last checkpoint (some may have been released since).
  private var dirtyEntries: [Int32] = []
  public private(set) var dirtyCount = 0
  private var due = Heap<DueEntry>()
  /// Every live due row with `finalizeAt <= dueBoundary` is in memory; later ones may be cold.
  private var dueBoundary: Int64
  /// Orphan candidates by time; entries go stale when claimed or removed.
  private var unclaimed = Heap<UnclaimedEntry>()
  /// Finished keys in the order they finished, which is close to expiry order: an entry
  /// behind a later-expiring one is dropped a little late, never early.
  private var finishedExpiry = Queue<ExpiryEntry>()
  private var pendingCount: Int
  private let coldTier: (any ColdTier)?
  /// The cold tier, once it may hold something memory does not (state at start, or evicted).
  private var cold: (any ColdTier)? { coldMayHold ? coldTier : nil }
  private var coldMayHold: Bool
  /// The hashes of every key the cold tier may hold something for (and a few it no longer
  /// does): a key not in here is new, and looking it up needs no query. (Two keys sharing a
  /// 64-bit hash would share an entry here; with a million keys held, the odds of any such
  /// pair are about 3 in 10^8.)
  /// Per hash, until when the cold tier's state for the key matters: `.max` while it holds a
  /// prediction or feedback, else the expiry of its finished memory.
  private var coldKeys: [UInt64: Int64] = [:]
  /// Finished keys evicted from memory, by expiry: once expired (the owner then deletes them
  /// from the cold tier too), their hashes leave `coldKeys`, which so stays as small as the
  /// state itself.
  private var evictedFinished = Queue<(expiresAt: Int64, key: String, hash: UInt64)>()
  /// How many key hashes `coldKeys` holds (tests: it must not grow without bound).
  public var coldKeyCount: Int { coldKeys.count }
  public let maxInMemory: Int

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
    for key in try cold.keys() { coldKeys[keys.hash(key)] = .max }
    var seen = Set<String>()
    for f in try cold.unclaimedFeedback() where seen.insert(f.key).inserted {
      let index = try ref(key: f.key).index
      for f in entries[Int(index)].feedback {
        unclaimed.insert(
          UnclaimedEntry(time: f.time, seq: f.seq, index: index, generation: entries[Int(index)].generation))
      }
    }
  }

  private func markDirty(_ index: Int32) {
    if !entries[Int(index)].dirty {
      entries[Int(index)].dirty = true
      dirtyEntries.append(index)
      dirtyCount += 1
    }
  }

  private func release(_ index: Int32) {
    let i = Int(index)
    keys.remove(hash: entries[i].hash, index: index)
    if entries[i].dirty { dirtyCount -= 1 }
    var empty = Entry(key: "")
    empty.live = false
    empty.generation = entries[i].generation &+ 1
    entries[i] = empty
    freeEntries.append(index)
  }

  // MARK: Keys

  public func ref(key: String) throws -> KeyRef {
    let hash = keys.hash(key)
    if let index = keys.find(key, hash: hash, keyOf: { entries[Int($0)].key }) { return KeyRef(index) }
    var entry = Entry(key: key)
    entry.hash = hash
    if let coldTier, coldKeys[hash] != nil { try load(&entry, from: coldTier) }
    let index: Int32
    if let reused = freeEntries.popLast() {
      index = reused
      entry.generation = entries[Int(index)].generation
      entries[Int(index)] = entry
    } else {
      index = Int32(entries.count)
      entries.append(entry)
    }
    keys.insert(hash: hash, index: index)
    // Finished memory read back expires like any other.
    if entries[Int(index)].finishedExpires != .min {
      finishedExpiry.append(ExpiryEntry(expiresAt: entries[Int(index)].finishedExpires, index: index))
    }
    return KeyRef(index)
  }

  /// Reads everything the cold tier holds for the entry's key; that is also its cold image.
  private func load(_ entry: inout Entry, from cold: any ColdTier) throws {
    if let p = try cold.prediction(key: entry.key) {
      entry.seq = p.seq
      entry.time = p.time
      entry.datasets = p.datasets
      entry.pending = p.pending
      entry.payload = p.payload
      entry.coldSeq = p.seq
      entry.coldPending = p.pending
    }
    entry.feedback = try cold.feedback(key: entry.key).sorted { ($0.time, $0.seq) < ($1.time, $1.seq) }
    entry.coldFeedback = entry.feedback.map(\.seq)
    if let finished = try cold.finished(key: entry.key) {
      entry.finishedTime = finished.time
      entry.finishedExpires = finished.expiresAt
      entry.coldFinishedExpires = finished.expiresAt
    }
  }

  public func key(_ ref: KeyRef) -> String { entries[Int(ref.index)].key }

  // MARK: Predictions

  public func prediction(_ ref: KeyRef) -> PendingPrediction? {
    // Field by field: copying the whole entry would retain its key and arrays.
    let i = Int(ref.index)
    guard entries[i].seq != 0 else { return nil }
    return PendingPrediction(
      seq: entries[i].seq, time: entries[i].time, datasets: entries[i].datasets, pending: entries[i].pending)
  }

  public func payload(_ ref: KeyRef) -> [UInt8] { entries[Int(ref.index)].payload }

  public func setPrediction(_ ref: KeyRef, seq: Int64, time: Int64, payload: [UInt8], datasets: UInt64) {
    let i = Int(ref.index)
    if entries[i].seq == 0 { pendingCount += 1 }
    entries[i].seq = seq
    entries[i].time = time
    entries[i].datasets = datasets
    entries[i].pending = datasets
    entries[i].payload = payload
    markDirty(ref.index)
    let generation = entries[i].generation
    datasets.forEachBit { d in
      due.insert(
        DueEntry(
          finalizeAt: time &+ dueOffsets[d], seq: seq, dataset: Int32(d), index: ref.index, generation: generation))
    }
  }

  public func rowWritten(_ ref: KeyRef, dataset: Int) -> UInt64 {
    let i = Int(ref.index)
    entries[i].pending &= ~(1 << UInt64(dataset))
    markDirty(ref.index)
    return entries[i].pending
  }

  public func finish(_ ref: KeyRef, expiresAt: Int64) {
    let i = Int(ref.index)
    guard entries[i].seq != 0 else { return }
    entries[i].seq = 0
    entries[i].pending = 0
    entries[i].payload = []
    entries[i].feedback = []
    entries[i].finishedTime = entries[i].time
    entries[i].finishedExpires = expiresAt
    pendingCount -= 1
    markDirty(ref.index)
    finishedExpiry.append(ExpiryEntry(expiresAt: expiresAt, index: ref.index))
  }

  public func pendingPredictionCount() -> Int { pendingCount }

  // MARK: Due rows

  /// Brings cold due rows up to `watermark` into memory.
  private func loadDue(through watermark: Int64) throws {
    guard let cold else { return }
    while dueBoundary < watermark {
      let rows = try cold.dueRows(after: dueBoundary, through: watermark, limit: 4096, offsets: dueOffsets)
      for row in rows {
        due.insert(
          DueEntry(
            finalizeAt: row.finalizeAt, seq: row.seq, dataset: Int32(row.dataset), index: -1, generation: 0))
      }
      if rows.count < 4096 {
        dueBoundary = watermark
      } else {
        dueBoundary = rows.last!.finalizeAt - 1
        // Rows sharing that finalizeAt are read again on the next round; the copies are
        // skipped when popped (the first one written clears the pending bit).
        if rows.first!.finalizeAt == rows.last!.finalizeAt { dueBoundary = rows.last!.finalizeAt }
      }
    }
  }

  /// The key of a due row, if its prediction is still pending in that dataset. A row whose
  /// entry was freed since (evicted) is looked up by its sequence number in the cold tier.
  private func live(_ row: DueEntry) throws -> KeyRef? {
    var index = row.index
    if index < 0 || entries[Int(index)].generation != row.generation {
      guard let cold, let p = try cold.prediction(seq: row.seq) else { return nil }
      index = try ref(key: p.key).index
    }
    let i = Int(index)
    guard entries[i].seq == row.seq, entries[i].pending & (1 << UInt64(row.dataset)) != 0 else { return nil }
    return KeyRef(index)
  }

  public func popDue(through watermark: Int64) throws -> DueRef? {
    try loadDue(through: watermark)
    while let top = due.min, top.finalizeAt <= watermark {
      due.popMin()
      if let ref = try live(top) { return DueRef(row: top.row, ref: ref) }
    }
    return nil
  }

  public func earliestDue() throws -> Int64? {
    let inMemory = due.min?.finalizeAt
    guard let cold, dueBoundary < .max else { return inMemory }
    // Cold rows after the boundary may come earlier than anything in memory.
    let coldMin = try cold.earliestDue(after: dueBoundary, offsets: dueOffsets)
    switch (inMemory, coldMin) {
    case (let a?, let b?): return min(a, b)
    case (let a?, nil): return a
    case (nil, let b?): return b
    case (nil, nil): return nil
    }
  }

  // MARK: Feedback

  public func addFeedback(_ ref: KeyRef, _ feedback: StoredFeedback) {
    let i = Int(ref.index)
    var at = entries[i].feedback.count
    while at > 0, (entries[i].feedback[at - 1].time, entries[i].feedback[at - 1].seq) > (feedback.time, feedback.seq) {
      at -= 1
    }
    entries[i].feedback.insert(feedback, at: at)
    if entries[i].seq == 0 {
      unclaimed.insert(
        UnclaimedEntry(time: feedback.time, seq: feedback.seq, index: ref.index, generation: entries[i].generation))
    }
    markDirty(ref.index)
  }

  public func feedback(_ ref: KeyRef) -> [StoredFeedback] { entries[Int(ref.index)].feedback }

  /// Where an orphan candidate is in its entry's list, if it still is one.
  private func position(of candidate: UnclaimedEntry) -> Int? {
    let i = Int(candidate.index)
    guard entries[i].generation == candidate.generation, entries[i].seq == 0 else { return nil }
    return entries[i].feedback.firstIndex { $0.seq == candidate.seq }
  }

  public func popUnclaimedFeedback(before: Int64) -> StoredFeedback? {
    while let top = unclaimed.min, top.time < before {
      unclaimed.popMin()
      guard let at = position(of: top) else { continue }
      let i = Int(top.index)
      let f = entries[i].feedback.remove(at: at)
      markDirty(top.index)
      if entries[i].isGone {
        coldKeys.removeValue(forKey: entries[i].hash)
        release(top.index)
      }
      return f
    }
    return nil
  }

  public func earliestUnclaimedFeedback() -> Int64? {
    while let top = unclaimed.min, position(of: top) == nil { unclaimed.popMin() }
    return unclaimed.min?.time
  }

  // MARK: Finished keys

  public func finishedPrediction(_ ref: KeyRef, at watermark: Int64) -> Int64? {
    let i = Int(ref.index)
    guard entries[i].finishedExpires > watermark else { return nil }
    return entries[i].finishedTime
  }

  public func pruneFinished(expiredBy watermark: Int64) {
    while let top = finishedExpiry.first, top.expiresAt <= watermark {
      finishedExpiry.popFirst()
      let i = Int(top.index)
      // Whatever entry is there now: if its memory expired, it goes.
      guard entries[i].finishedExpires != .min, entries[i].finishedExpires <= watermark else { continue }
      entries[i].finishedExpires = .min
      // The owner deletes every persisted entry that expired by the watermark when it
      // commits, so this needs no delete of its own: an entry born and expired between two
      // checkpoints never reaches the cold tier.
      entries[i].coldFinishedExpires = .min
      if entries[i].isGone {
        coldKeys.removeValue(forKey: entries[i].hash)
        release(top.index)
      }
    }
    while let first = evictedFinished.first, first.expiresAt <= watermark {
      evictedFinished.popFirst()
      // Unless the key was read back and stored anew since (then that state decides).
      if coldKeys[first.hash] == first.expiresAt,
        keys.find(first.key, hash: first.hash, keyOf: { entries[Int($0)].key }) == nil
      {
        coldKeys.removeValue(forKey: first.hash)
      }
    }
  }

  // MARK: Checkpoints

  /// Hands over what changed since the last call, for persisting, and takes the result as
  /// the new cold image.
  public func takeJournal() -> StateJournal {
    var journal = StateJournal()
    for index in dirtyEntries where entries[Int(index)].dirty {
      let i = Int(index)
      var e = entries[i]
      e.dirty = false
      // Due rows are not written: the cold tier derives them from the pending bits.
      if e.coldSeq != 0 && e.coldSeq != e.seq { journal.deletedPredictions.append(e.coldSeq) }
      if e.seq != 0 {
        if e.coldSeq != e.seq {
          journal.predictions.append(
            StoredPrediction(
              seq: e.seq, key: e.key, time: e.time, payload: e.payload, datasets: e.datasets, pending: e.pending))
        } else if e.pending != e.coldPending {
          journal.pendingUpdates.append(PendingUpdate(seq: e.seq, pending: e.pending))
        }
      }
      e.coldSeq = e.seq
      e.coldPending = e.pending
      if !e.coldFeedback.isEmpty || !e.feedback.isEmpty {
        for seq in e.coldFeedback where !e.feedback.contains(where: { $0.seq == seq }) {
          journal.deletedFeedback.append(seq)
        }
        for f in e.feedback where !e.coldFeedback.contains(f.seq) {
          journal.feedback.append(f)
        }
        e.coldFeedback = e.feedback.map(\.seq)
      }
      if e.finishedExpires != e.coldFinishedExpires {
        if e.finishedExpires == .min {
          journal.deletedFinished.append(e.key)
        } else {
          journal.finished.append(FinishedKey(key: e.key, time: e.finishedTime, expiresAt: e.finishedExpires))
        }
        e.coldFinishedExpires = e.finishedExpires
      }
      entries[i] = e
      if e.isGone {
        coldKeys.removeValue(forKey: e.hash)
      } else if coldTier != nil {
        coldKeys[e.hash] = e.coldSeq != 0 || !e.coldFeedback.isEmpty ? .max : e.coldFinishedExpires
      }
      if e.isEmpty { release(index) }
    }
    dirtyEntries.removeAll(keepingCapacity: true)
    dirtyCount = 0
    return journal
  }

  // MARK: Eviction

  /// After a checkpoint (journal persisted): lets clean state go so memory stays bounded.
  public func evict() {
    guard coldTier != nil, dirtyCount == 0 else { return }
    var evicted = false
    var predictions: [Int32] = []
    var finishedOnly: [Int32] = []
    for (i, e) in entries.enumerated() where e.live {
      if e.seq != 0 {
        predictions.append(Int32(i))
      } else if e.feedback.isEmpty && e.finishedExpires != .min {
        finishedOnly.append(Int32(i))
      }
    }
    if predictions.count > maxInMemory {
      // Keep the newest quarter (their feedback is still arriving) and, of the rest, those due
      // soonest (their rows are written next); evict the ones due furthest in the future.
      // Their feedback goes with them; orphan candidates (feedback without a prediction)
      // always stay.
      func nextDue(_ e: Entry) -> Int64 {
        var next = Int64.max
        e.pending.forEachBit { next = min(next, e.time &+ dueOffsets[$0]) }
        return next
      }
      predictions.sort { entries[Int($0)].seq < entries[Int($1)].seq }
      let older = predictions.dropLast(maxInMemory / 4)
        .map { (index: $0, due: nextDue(entries[Int($0)]), seq: entries[Int($0)].seq) }
        .sorted { ($0.due, $0.seq) > ($1.due, $1.seq) }
      for victim in older.prefix(predictions.count - maxInMemory / 2) {
        release(victim.index)
        evicted = true
      }
    }
    if finishedOnly.count > maxInMemory {
      // Their expiry entries stay queued; they find nothing to expire.
      for index in finishedOnly {
        let e = entries[Int(index)]
        evictedFinished.append((e.finishedExpires, e.key, e.hash))
        release(index)
      }
      evicted = true
    }
    if due.count > maxInMemory {
      let kept = due.items.sorted().prefix(maxInMemory / 2)
      // Rows sharing the last kept time may have been cut: the boundary stays below it.
      let newBoundary = (kept.last?.finalizeAt ?? .min) &- 1
      due = Heap()
      for row in kept where row.finalizeAt <= newBoundary { due.insert(row) }
      dueBoundary = min(dueBoundary, newBoundary)
      evicted = true
    }
    if evicted { coldMayHold = true }
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

public struct PendingUpdate: Sendable, Equatable {
  public var seq: Int64
  public var pending: UInt64
}

/// What changed since the last checkpoint, as writes to apply in this order: deletions, then
/// insertions (a key's old prediction must be gone before its replacement is inserted).
public struct StateJournal: Sendable {
  public var deletedPredictions: [Int64] = []
  public var predictions: [StoredPrediction] = []
  public var pendingUpdates: [PendingUpdate] = []
  public var deletedFeedback: [Int64] = []
  public var feedback: [StoredFeedback] = []
  public var deletedFinished: [String] = []
  public var finished: [FinishedKey] = []
  public init() {}
}
