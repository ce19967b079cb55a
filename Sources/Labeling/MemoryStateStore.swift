import CPrefetch
import LogFormats

/// Persisted join state, read when something is not in memory (embedded SQLite in the daemon).
///
/// It holds the state as of the last checkpoint; what changed since then is in memory, and
/// `MemoryStateStore` knows per key what the cold tier holds, so it never trusts a stale read.
public protocol ColdTier: AnyObject {
  func prediction(key: String) throws -> StoredPrediction?
  func prediction(seq: Int64) throws -> StoredPrediction?
  func feedback(key: String) throws -> [StoredFeedback]
  /// The feedback of all these keys, in no particular order.
  func feedback(keys: [String]) throws -> [StoredFeedback]
  /// The first `limit` due rows after the cursor `after` in (finalizeAt, seq, dataset) order
  /// with `finalizeAt <= through`, in that order, with their predictions: the pending datasets
  /// `d` of the stored predictions, due at `time + offsets[d]`. (Paging by time alone would
  /// stall on more than `limit` rows sharing one `finalizeAt`: the cursor is a row.)
  func dueRows(after: DueRow, through: Int64, limit: Int, offsets: [Int64]) throws -> [DuePrediction]
  /// The earliest `finalizeAt` of the due rows after the cursor `after`.
  func earliestDue(after: DueRow, offsets: [Int64]) throws -> Int64?
  func finished(key: String) throws -> FinishedKey?
  /// The finished memory of those of these keys that have one.
  func finished(keys: [String]) throws -> [FinishedKey]
  /// Feedback whose key has no prediction (orphan candidates), loaded at start.
  func unclaimedFeedback() throws -> [StoredFeedback]
  func pendingPredictionCount() throws -> Int
  /// Whether anything is stored at all (if not, misses need not be looked up).
  func hasState() throws -> Bool
  /// Every key with a stored prediction, feedback event or finished memory (a key may come
  /// more than once), streamed: there may be millions.
  func forEachKey(_ body: (String) throws -> Void) throws
  /// How many keys `forEachKey` passes, repeats included (sizes the filter built from them).
  func keyCountEstimate() throws -> Int
  /// What the tier indexes a prediction's key by: a checkpoint names each prediction that
  /// goes by its seq and this (`DeletedPrediction`), computed while the key is at hand.
  func keyHash(_ key: JoinKey) -> Int64
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
/// Memory is bounded two ways: `maxInMemory` entries per kind, and `maxBytes` for the whole
/// state (`stateBytes`, an estimate of what its entries, keys, payloads, feedback, due rows and
/// queues take, kept up to date as they change). After a checkpoint `evict()` lets memory
/// shrink back to half of either bound: finished keys first, then the pending predictions due
/// furthest in the future (with their feedback), then the due rows furthest in the future; and
/// when most of the entry array is free it is compacted. State due before a time the caller
/// passes (the daemon: a minute past the watermark) would be read straight back, so the byte
/// bound lets it stay if it all fits in one and a half times `maxBytes`. Under every bound,
/// `evict()` only checks whether to compact. An evicted key is read back from the
/// cold tier the next time it is looked up; due rows come back from it in batches, their
/// predictions, feedback and finished memory with them (a few queries per `dueBatch` rows,
/// 4096; a batch continues after the last row of the one before). Without
/// a cold tier nothing is evicted (tests, small replays).
public final class MemoryStateStore: StateStore {
  struct Entry {
    var key: JoinKey
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
    /// What `variableBytes` was when last counted into `entryBytes`.
    var cost = 0

    init(key: JoinKey) { self.key = key }

    /// Lets go of everything the entry holds and puts it on the free list's footing: not
    /// live, and a new generation, so references made before are stale.
    ///
    /// Field by field, letting go only of arrays that have storage (an empty one may, kept
    /// with its capacity): assigning a new entry released all four arrays, the empty singletons
    /// included (about 60 instructions a released key).
    mutating func empty() {
      generation &+= 1
      live = false
      key = JoinKey()
      hash = 0
      seq = 0
      time = 0
      datasets = 0
      pending = 0
      if payload.capacity != 0 { payload = [] }
      if feedback.capacity != 0 { feedback = [] }
      finishedTime = 0
      finishedExpires = .min
      coldSeq = 0
      coldPending = 0
      if coldFeedback.capacity != 0 { coldFeedback = [] }
      coldFinishedExpires = .min
      dirty = false
      cost = 0
      // (Checked when the generation is a power of two: a slot's first release, then rarely.)
      assert(generation.nonzeroBitCount != 1 || isEmptied, "a field of Entry is not reset by empty()")
    }

    /// Whether the entry is what `empty` makes, but for its generation: a new entry's fields.
    private var isEmptied: Bool {
      var fresh = Entry(key: JoinKey())
      fresh.live = false
      fresh.generation = generation
      return "\(fresh)" == "\(self)"
    }

    var isEmpty: Bool { seq == 0 && feedback.isEmpty && finishedExpires == .min }
    /// The cold tier holds something for the key (as of the last checkpoint).
    var isCold: Bool { coldSeq != 0 || !coldFeedback.isEmpty || coldFinishedExpires != .min }
    /// Nothing in memory and nothing persisted: the entry can go even before a checkpoint,
    /// which would write nothing for it.
    var isGone: Bool { isEmpty && !isCold }
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
  /// Set by `popDue` when it returns nil: the earliest due time, if that is all there is to
  /// know (`earliestDueAfterPop`). Any change to the due rows (`due`) clears it.
  private var earliestAfterPop: Int64?
  private var earliestAfterPopKnown = false
  /// A constant reference: an entry's field is written through it with no retain of the buffer.
  private let entries = EntryBuffer()
  private var freeEntries: [Int32] = []
  private var keys = KeyTable()
  /// Entries marked dirty since the last checkpoint (some may have been released since), while
  /// listing them is cheaper than looking at every entry at the checkpoint: see `markDirty`.
  private var dirtyEntries: [Int32] = []
  /// Set when `dirtyEntries` needed clearing while at least half the entries were dirty (it
  /// was dropped then): until the checkpoint, nothing is listed, and it reads every entry's flag.
  private var dirtyListDropped = false
  public private(set) var dirtyCount = 0
  /// How many times `dirtyEntries` was cleared of released entries between checkpoints (tests).
  public private(set) var dirtyListCompactions = 0
  /// How many times `dirtyEntries` was dropped for a look at every entry (tests).
  public private(set) var dirtyListDrops = 0
  /// How many entries `dirtyEntries` lists, released ones included (tests).
  public var dirtyListCount: Int { dirtyEntries.count }
  private var due = RunQueue<DueEntry>() {
    // Without `oldValue`, mutated in place.
    didSet { earliestAfterPopKnown = false }
  }
  /// Every live due row up to this one (in (finalizeAt, seq, dataset) order) is in memory;
  /// later ones may be cold.
  private var dueCursor: DueRow
  /// How many due rows are read from the cold tier at a time.
  public let dueBatch: Int
  /// How many batches of due rows were read from the cold tier (tests).
  public private(set) var dueBatchesRead = 0
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
  /// Every key the cold tier may hold state for is in here (and some it no longer does, or
  /// never did: a lookup of those finds nothing): a key not in here is new, and looking it up
  /// needs no query. Rebuilt from the cold tier after a checkpoint when due (`evict`).
  private var coldKeys = ColdKeyFilter()
  /// False while `coldKeys` is being rebuilt (or a rebuild failed): then it may miss keys.
  private var coldKeysComplete = true
  /// The most bits `coldKeys` is rebuilt with.
  private let maxColdFilterBits: Int
  /// The bytes the cold-key filter takes; it never exceeds `coldFilterMaxBytes`.
  public var coldFilterBytes: Int { coldKeys.bytes }
  /// Keys put in the cold-key filter since it was built (those it was built with included).
  public var coldFilterKeys: Int { coldKeys.count }
  /// How many times the cold-key filter was rebuilt from the cold tier.
  public private(set) var coldFilterRebuilds = 0
  /// Lookups of keys not in memory that the filter sent to the cold tier.
  public private(set) var coldKeyLookups = 0
  public let maxInMemory: Int
  public let maxBytes: Int
  private var compactAt = 1024
  /// How often the entry array was compacted (tests).
  public private(set) var compactions = 0
  /// How many `evict` calls let state go.
  public private(set) var evictions = 0
  /// The heap bytes of the live entries' keys, payloads and feedback (`variableBytes`).
  private var entryBytes = 0
  /// Deletes owed to the cold tier by retired entries (`retire`), for the next journal.
  private var retired = StateJournal()
  /// The sequence numbers of the predictions and feedback in `retired`: the cold tier still
  /// holds them, and a lookup of their key must not read them back.
  private var retiredSeqs = Set<Int64>()
  private var retiredFeedbackSeqs = Set<Int64>()

  /// What the live state needs, estimated: entries and their heap allocations, key-table
  /// buckets, due rows, orphan candidates and expiry queues. It depends on the input alone
  /// (so commits it triggers keep output deterministic).
  public var stateBytes: Int {
    let live = entries.count - freeEntries.count
    return live * (MemoryLayout<Entry>.stride + 2 * MemoryLayout<UInt64>.stride) + entryBytes
      + due.count * MemoryLayout<DueEntry>.stride + unclaimed.count * MemoryLayout<UnclaimedEntry>.stride
      + finishedExpiry.count * MemoryLayout<ExpiryEntry>.stride
      + retired.deletedPredictions.count * (MemoryLayout<DeletedPrediction>.stride + 2 * MemoryLayout<Int64>.stride)
      + retired.deletedFeedback.count * 3 * MemoryLayout<Int64>.stride
  }

  deinit {
    pool.deinitialize(count: Self.poolLengths * Self.poolDepth)
    pool.deallocate()
    pooled.deallocate()
  }

  /// All in memory, nothing persisted.
  public init() {
    coldTier = nil
    coldMayHold = false
    maxInMemory = .max
    maxBytes = .max
    dueCursor = .afterAll(dueBy: .max)
    dueBatch = 4096
    pendingCount = 0
    maxColdFilterBits = ColdKeyFilter.minBits
  }

  /// Over a cold tier holding the last checkpoint; loads only the orphan candidates.
  /// `compactAt`: the least number of entries (live and free) worth compacting; `dueBatch`:
  /// how many due rows to read from the cold tier at a time; `coldFilterMaxBytes`: the most
  /// memory the filter of the cold tier's keys takes (it becomes less selective past about
  /// `coldFilterMaxBytes / 2` keys).
  public init(
    cold: any ColdTier, maxInMemory: Int = 200_000, maxBytes: Int = .max, compactAt: Int = 1024, dueBatch: Int = 4096,
    coldFilterMaxBytes: Int = 16 << 20
  ) throws {
    coldTier = cold
    coldMayHold = try cold.hasState()
    self.maxInMemory = max(1, maxInMemory)
    self.maxBytes = max(1, maxBytes)
    self.compactAt = compactAt
    self.dueBatch = max(1, dueBatch)
    dueCursor = coldMayHold ? .beforeAll : .afterAll(dueBy: .max)
    pendingCount = try cold.pendingPredictionCount()
    var maxBits = ColdKeyFilter.minBits
    while maxBits * 2 <= coldFilterMaxBytes * 8 { maxBits *= 2 }
    maxColdFilterBits = maxBits
    coldKeys = ColdKeyFilter(bits: min(maxBits, ColdKeyFilter.initialBits))
    if coldMayHold { try rebuildColdFilter(from: cold) }
    var seen = Set<String>()
    for f in try cold.unclaimedFeedback() where seen.insert(f.key).inserted {
      let index = try ref(key: f.joinKey).index
      for f in entries[Int(index)].feedback {
        unclaimed.insert(
          UnclaimedEntry(time: f.time, seq: f.seq, index: index, generation: entries[Int(index)].generation))
      }
    }
  }

  /// Flags an entry for the next checkpoint's journal, and lists it while the list is short.
  ///
  /// Released entries stay listed until the checkpoint: with millions of lines between
  /// checkpoints the list would hold every key seen since (measured: +12 MB peak RSS on the
  /// benchmark). Dropping them when they are most of it keeps it near the live count; but when
  /// most entries are dirty anyway (a replay: every key seen since the last checkpoint is),
  /// the list is dropped instead, and the checkpoint reads every entry's flag in place.
  /// Keeping it cost a replay about 75 instructions a prediction (the append and the passes
  /// over the list, a cache miss an entry) to find what a walk of the entries in order finds
  /// as fast; a live daemon, with few changes between its checkpoints next to the entries it
  /// holds, keeps its list.
  @inline(__always)
  private func markDirty(_ index: Int32) {
    guard !entries[Int(index)].dirty else { return }
    entries[Int(index)].dirty = true
    dirtyCount += 1
    if !dirtyListDropped { listDirty(index) }
  }

  private func listDirty(_ index: Int32) {
    if dirtyEntries.count >= 2 * dirtyCount + 4096 {
      guard 2 * dirtyCount < entries.count else {
        // Most entries are dirty: reading every one's flag at the checkpoint costs no more
        // than passes over a list of them.
        dirtyEntries = []
        dirtyListDropped = true
        dirtyListDrops += 1
        return
      }
      dropStaleDirtyEntries()
    }
    dirtyEntries.append(index)
  }

  /// Keeps in `dirtyEntries` only the entries still dirty, each once (where first listed), in
  /// place: a kept entry's flag is cleared while the list is walked, so a second listing of it
  /// (its slot reused since) is dropped, then set again.
  private func dropStaleDirtyEntries() {
    var kept = 0
    for position in dirtyEntries.indices {
      let index = dirtyEntries[position]
      guard entries[Int(index)].dirty else { continue }
      entries[Int(index)].dirty = false
      dirtyEntries[kept] = index
      kept += 1
    }
    dirtyEntries.removeLast(dirtyEntries.count - kept)
    for position in dirtyEntries.indices { entries[Int(dirtyEntries[position])].dirty = true }
    dirtyListCompactions += 1
  }

  // MARK: Accounting

  /// The malloc chunk holding `bytes` (16-byte granules, 8 bytes of header).
  @inline(__always) private static func chunk(_ bytes: Int) -> Int { (bytes + 8 + 15) & ~15 }

  /// Heap bytes of a string (native strings of up to 15 UTF-8 bytes are stored inline).
  @inline(__always) private static func heapBytes(_ string: String) -> Int {
    let count = string.utf8.count
    return count <= 15 ? 0 : chunk(32 + count + 1)
  }

  /// Heap bytes of an array's storage.
  @inline(__always) private static func heapBytes<T>(_ array: [T]) -> Int {
    array.capacity == 0 ? 0 : chunk(32 + array.capacity * MemoryLayout<T>.stride)
  }

  /// What an entry holds on the heap: its key, payload and feedback. (`inout`, though it only
  /// reads: passed by value from the array, the entry was copied, 160 bytes, for every count.)
  private static func variableBytes(_ e: inout Entry) -> Int {
    keyBytes(e.key) + heapBytes(e.payload) + heapBytes(e.coldFeedback) + feedbackBytes(&e.feedback)
  }

  /// Heap bytes of a key.
  @inline(__always) private static func keyBytes(_ key: JoinKey) -> Int {
    key.heapBytes == 0 ? 0 : chunk(32 + key.heapBytes)
  }

  /// Heap bytes of a feedback list and of what its events hold.
  @inline(__always) private static func feedbackBytes(_ feedback: inout [StoredFeedback]) -> Int {
    guard feedback.capacity > 0 else { return 0 }
    var bytes = heapBytes(feedback)
    for f in feedback {
      bytes += f.joinKey.heapBytes + heapBytes(f.fields) + (f.dedupe.map { heapBytes($0) } ?? 0)
    }
    return bytes
  }

  /// Counts an entry's changed heap bytes into `entryBytes`.
  private func recount(_ index: Int32) {
    let i = Int(index)
    let bytes = Self.variableBytes(&entries[i])
    entryBytes += bytes - entries[i].cost
    entries[i].cost = bytes
  }

  /// Counts `delta` more heap bytes for entry `i`, where the caller knows what changed (the
  /// hot paths: a whole `recount` walks the entry). Debug builds check it against a recount.
  @inline(__always) private func addCost(_ delta: Int, at i: Int) {
    entries[i].cost += delta
    entryBytes += delta
    assert(entries[i].cost == Self.variableBytes(&entries[i]), "entry cost out of step")
  }

  private func release(_ index: Int32) {
    let i = Int(index)
    entryBytes -= entries[i].cost
    keys.remove(hash: entries[i].hash, index: index)
    if entries[i].dirty { dirtyCount -= 1 }
    // In place: building an empty entry, then assigning it, copied entries whole (memcpy and
    // retains), once per key let go.
    entries[i].empty()
    freeEntries.append(index)
  }

  /// Where entry `index` is, to prefetch it (nil for the index of a cold-tier row). The
  /// address is used before anything changes the array, and only to read.
  @inline(__always) private func entryAddress(_ index: Int32) -> UnsafeRawPointer? {
    guard index >= 0, Int(index) < entries.count else { return nil }
    return UnsafeRawPointer(entries.base + Int(index))
  }

  /// Starts loading every cache line of the entry at `entry` (it need not start on one).
  @inline(__always) private static func prefetchEntry(_ entry: UnsafeRawPointer) {
    var offset = 0
    while offset < MemoryLayout<Entry>.stride {
      feedbackd_prefetch(entry + offset)
      offset += 64
    }
    feedbackd_prefetch(entry + (MemoryLayout<Entry>.stride - 1))
  }

  /// The offset of `payload` in an entry.
  private let payloadOffset = MemoryLayout<Entry>.offset(of: \.payload)!

  /// Starts loading what the rows due next read: 8 rows ahead, their entries; 4 rows ahead
  /// (their entries loaded by now), the start of their payloads. An array is one word, the
  /// address of its storage object (header, then the bytes). The entries are scattered over
  /// the array (slots are reused) and the payloads over the heap, so without this each row
  /// waits for several cache misses. (The addresses are taken first and the prefetches
  /// made after: a C call inside an array access makes Swift retain the array.)
  @inline(__always) private func prefetchUpcomingRows() {
    for lane in 0..<due.laneCount {
      // The due queue's own entries, 24 rows ahead: popped one at a time between many lines,
      // their cache lines were gone by then (a fifth of `popDue`'s samples, this inlined in
      // it, sat on reading the entry 8 rows ahead).
      if let ahead = due.upcomingAddress(lane: lane, distance: 24) { feedbackd_prefetch(ahead) }
      if let row = due.upcoming(lane: lane, distance: 8), let entry = entryAddress(row.index) {
        Self.prefetchEntry(entry)
      }
      if let row = due.upcoming(lane: lane, distance: 4), let entry = entryAddress(row.index),
        let payload = UnsafeRawPointer(bitPattern: entry.load(fromByteOffset: payloadOffset, as: UInt.self))
      {
        feedbackd_prefetch(payload)
        feedbackd_prefetch(payload + 64)
      }
    }
  }

  // MARK: Keys

  /// The seed of the key table's hash (`Rules.Matcher.keyHash`, `ref(key:hash:)`): fixed for
  /// the store's life.
  public var keyHashSeed: UInt64 { keys.seed }

  /// Asks the CPU to fetch the key table's bucket for a key whose `keyHash` is `hash`, before
  /// `ref` looks the key up: the table is larger than the caches, and a line's lookup missed
  /// them (10% of the pipeline thread's time).
  @inline(__always)
  public func prefetchKey(hash: UInt32) {
    feedbackd_prefetch(keys.bucketAddress(hash: UInt64(hash)))
  }

  /// The second step, a few lines later (the bucket loaded by then): asks for the entry the
  /// bucket names, which the lookup's caller reads next.
  @inline(__always)
  public func prefetchEntry(hash: UInt32) {
    if let index = keys.firstCandidate(hash: UInt64(hash)), let entry = entryAddress(index) {
      feedbackd_prefetch(entry)
    }
  }

  public func ref(key: JoinKey) throws -> KeyRef {
    try ref(key: key, hash: keys.hash(key))
  }

  /// `hash`: `key`'s hash under `keyHashSeed`, computed ahead (on a read-ahead thread).
  public func ref(key: JoinKey, hash: UInt64) throws -> KeyRef {
    if let index = keys.find(key, hash: hash, keyOf: { entries[Int($0)].key }) { return KeyRef(index) }
    // A key new to the cold tier too (most predictions): its entry is made where it will
    // stay. Built aside and moved in, it was copied twice (160 bytes each time).
    guard let cold, !coldKeysComplete || coldKeys.contains(hash) else {
      return KeyRef(insertNew(key: key, hash: hash))
    }
    var entry = Entry(key: key)
    entry.hash = hash
    coldKeyLookups += 1
    try load(&entry, from: cold)
    return KeyRef(insert(consume entry))
  }

  /// Stores an empty entry for a key that has none and nothing in the cold tier, in place: a
  /// free slot holds an emptied entry already (`Entry.empty`), which only needs its key.
  private func insertNew(key: JoinKey, hash: UInt64) -> Int32 {
    let index: Int32
    if let reused = freeEntries.popLast() {
      index = reused
      let i = Int(index)
      entries[i].key = key
      entries[i].hash = hash
      entries[i].live = true
    } else {
      index = Int32(entries.count)
      entries.append(Entry(key: key))
      entries[Int(index)].hash = hash
    }
    keys.insert(hash: hash, index: index)
    // Nothing but the key yet (a free slot's cost is 0).
    addCost(Self.keyBytes(key), at: Int(index))
    return index
  }

  /// Stores a new entry for a key that has none.
  private func insert(_ entry: consuming Entry) -> Int32 {
    let hash = entry.hash
    let index: Int32
    if let reused = freeEntries.popLast() {
      index = reused
      entry.generation = entries[Int(index)].generation
      entries[Int(index)] = consume entry
    } else {
      index = Int32(entries.count)
      entries.append(consume entry)
    }
    keys.insert(hash: hash, index: index)
    // Finished memory read back expires like any other.
    if entries[Int(index)].finishedExpires != .min {
      finishedExpiry.append(ExpiryEntry(expiresAt: entries[Int(index)].finishedExpires, index: index))
    }
    recount(index)
    return index
  }

  /// Reads everything the cold tier holds for the entry's key; that is also its cold image.
  /// What retired entries left there until the next checkpoint deletes it is not state.
  private func load(_ entry: inout Entry, from cold: any ColdTier) throws {
    let key = entry.key.description
    var prediction = try cold.prediction(key: key)
    if let seq = prediction?.seq, retiredSeqs.contains(seq) { prediction = nil }
    var feedback = try cold.feedback(key: key)
    if !retiredFeedbackSeqs.isEmpty { feedback.removeAll { retiredFeedbackSeqs.contains($0.seq) } }
    Self.fill(&entry, prediction: prediction, feedback: feedback, finished: try cold.finished(key: key))
  }

  /// Builds the cold-key filter anew from the keys the cold tier holds, sized for them. The
  /// old one goes first (the two together would be the peak of the process's memory); until
  /// the new one is complete, every key counts as possibly cold.
  private func rebuildColdFilter(from cold: any ColdTier) throws {
    let bits = ColdKeyFilter.bits(forKeys: try cold.keyCountEstimate(), maxBits: maxColdFilterBits)
    coldKeysComplete = false
    coldKeys = ColdKeyFilter()
    var filter = ColdKeyFilter(bits: bits)
    try cold.forEachKey { filter.insert(keys.hash($0)) }
    filter.built()
    coldKeys = filter
    coldKeysComplete = true
    coldFilterRebuilds += 1
  }

  /// Makes an entry what the cold tier holds for its key; that is also its cold image.
  private static func fill(
    _ entry: inout Entry, prediction p: StoredPrediction?, feedback: [StoredFeedback], finished: FinishedKey?
  ) {
    if let p {
      entry.seq = p.seq
      entry.time = p.time
      entry.datasets = p.datasets
      entry.pending = p.pending
      entry.payload = p.payload
      entry.coldSeq = p.seq
      entry.coldPending = p.pending
    }
    entry.feedback = feedback.sorted { ($0.time, $0.seq) < ($1.time, $1.seq) }
    entry.coldFeedback = entry.feedback.map(\.seq)
    if let finished {
      entry.finishedTime = finished.time
      entry.finishedExpires = finished.expiresAt
      entry.coldFinishedExpires = finished.expiresAt
    }
  }

  public func key(_ ref: KeyRef) -> JoinKey { entries[Int(ref.index)].key }

  // MARK: Predictions

  public func prediction(_ ref: KeyRef) -> PendingPrediction? {
    // Field by field: copying the whole entry would retain its key and arrays.
    let i = Int(ref.index)
    guard entries[i].seq != 0 else { return nil }
    return PendingPrediction(
      seq: entries[i].seq, time: entries[i].time, datasets: entries[i].datasets, pending: entries[i].pending)
  }

  @inline(__always) public func payloadBytes(_ ref: KeyRef) -> UnsafeRawBufferPointer {
    // The array is the entry's: its storage stays where it is until the entry changes.
    entries[Int(ref.index)].payload.withUnsafeBytes { $0 }
  }

  /// Retired payload arrays, for new payloads of the same length to be copied into:
  /// `poolDepth` places per length up to `poolLengths - 1`. A finished prediction's payload
  /// went back to malloc and a new one came from it, about 430 instructions a prediction.
  /// Payloads of one kind of line are of a few lengths, and new predictions come about as
  /// fast as old ones finish, so most find one of their length, and copy into it in place.
  /// At most `poolLengths * poolDepth` arrays are kept, each under `poolLengths` bytes.
  private static let poolLengths = 512
  private static let poolDepth = 8
  private let pool: UnsafeMutablePointer<[UInt8]> = {
    let count = MemoryStateStore.poolLengths * MemoryStateStore.poolDepth
    let slots = UnsafeMutablePointer<[UInt8]>.allocate(capacity: count)
    slots.initialize(repeating: [], count: count)
    return slots
  }()
  private let pooled: UnsafeMutablePointer<Int> = {
    let counts = UnsafeMutablePointer<Int>.allocate(capacity: MemoryStateStore.poolLengths)
    counts.initialize(repeating: 0, count: MemoryStateStore.poolLengths)
    return counts
  }()

  /// `bytes` in a retired payload's array of that length if there is one, else in a new one.
  public func payloadArray(copying bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
    let n = bytes.count
    guard n > 0 && n < Self.poolLengths && pooled[n] > 0, let source = bytes.baseAddress else { return Array(bytes) }
    pooled[n] -= 1
    var array: [UInt8] = []
    swap(&array, &pool[n &* Self.poolDepth &+ pooled[n]])
    // Copied first if still shared (a journal taken since holds it).
    array.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: source, count: n) }
    return array
  }

  /// Empties `payload`, keeping its array for `payloadArray` if there is room for its length.
  @inline(__always) private func retirePayload(_ payload: inout [UInt8]) {
    let n = payload.count
    guard n > 0 && n < Self.poolLengths && pooled[n] < Self.poolDepth else {
      payload = []
      return
    }
    swap(&payload, &pool[n &* Self.poolDepth &+ pooled[n]])
    pooled[n] += 1
  }

  public func setPrediction(_ ref: KeyRef, seq: Int64, time: Int64, payload: consuming [UInt8], datasets: UInt64) {
    let i = Int(ref.index)
    if entries[i].seq == 0 { pendingCount += 1 }
    entries[i].seq = seq
    entries[i].time = time
    entries[i].datasets = datasets
    entries[i].pending = datasets
    let before = Self.heapBytes(entries[i].payload)
    entries[i].payload = consume payload
    markDirty(ref.index)
    addCost(Self.heapBytes(entries[i].payload) - before, at: i)
    let generation = entries[i].generation
    datasets.forEachBit { d in
      due.insert(
        DueEntry(
          finalizeAt: time &+ dueOffsets[d], seq: seq, dataset: Int32(d), index: ref.index, generation: generation),
        lane: d)
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
    let freed = Self.heapBytes(entries[i].payload) + Self.feedbackBytes(&entries[i].feedback)
    entries[i].seq = 0
    entries[i].pending = 0
    retirePayload(&entries[i].payload)
    // Only an array with storage is let go: most keys have no feedback, and releasing the
    // empty array (its count is immortal) takes the runtime's slow path (about 15 instructions
    // a row, callgrind).
    if entries[i].feedback.capacity != 0 { entries[i].feedback = [] }
    entries[i].finishedTime = entries[i].time
    entries[i].finishedExpires = expiresAt
    pendingCount -= 1
    markDirty(ref.index)
    addCost(-freed, at: i)
    finishedExpiry.append(ExpiryEntry(expiresAt: expiresAt, index: ref.index))
  }

  public func pendingPredictionCount() -> Int { pendingCount }

  // MARK: Due rows

  /// Reads the next batch of cold due rows into memory: the `dueBatch` earliest after the
  /// cursor, due by the watermark or not. Batches are read only as rows are popped, so
  /// writing many cold rows (a flush) holds one batch at a time. The batch continues after
  /// the last row read (not after a time: any number of rows may share one `finalizeAt`);
  /// a short batch leaves nothing cold, so as the watermark moves on no query is made until
  /// eviction trims the rows again. (Reading only up to the watermark left the cursor there,
  /// and a live daemon queried again at every line that moved the watermark.)
  private func loadDueBatch(from cold: any ColdTier) throws {
    let rows = try cold.dueRows(after: dueCursor, through: .max, limit: dueBatch, offsets: dueOffsets)
    dueBatchesRead += 1
    try adopt(rows, from: cold)
    dueCursor = rows.count < dueBatch ? .afterAll(dueBy: .max) : rows[rows.count - 1].row
  }

  /// Schedules cold due rows on their keys' entries. Keys not in memory are read back: the
  /// prediction comes with the row, their feedback and finished memory in one query each for
  /// the whole batch (instead of four queries per row).
  private func adopt(_ rows: [DuePrediction], from cold: any ColdTier) throws {
    var missing: [String: StoredPrediction] = [:]
    var order: [String] = []
    for r in rows where !retiredSeqs.contains(r.row.seq) {
      let key = r.prediction.key
      let joinKey = JoinKey(key)
      guard missing[key] == nil, keys.find(joinKey, hash: keys.hash(joinKey), keyOf: { entries[Int($0)].key }) == nil
      else { continue }
      missing[key] = r.prediction
      order.append(key)
    }
    if !order.isEmpty {
      var feedback: [String: [StoredFeedback]] = [:]
      for f in try cold.feedback(keys: order) { feedback[f.key, default: []].append(f) }
      var finished: [String: FinishedKey] = [:]
      for f in try cold.finished(keys: order) { finished[f.key] = f }
      for key in order {
        var entry = Entry(key: JoinKey(key))
        entry.hash = keys.hash(entry.key)
        Self.fill(&entry, prediction: missing[key], feedback: feedback[key] ?? [], finished: finished[key])
        _ = insert(consume entry)
      }
    }
    for r in rows where !retiredSeqs.contains(r.row.seq) {
      let key = r.prediction.joinKey
      let index = keys.find(key, hash: keys.hash(key), keyOf: { entries[Int($0)].key }) ?? -1
      due.insert(
        DueEntry(
          finalizeAt: r.row.finalizeAt, seq: r.row.seq, dataset: Int32(r.row.dataset), index: index,
          generation: index < 0 ? 0 : entries[Int(index)].generation),
        lane: r.row.dataset)
    }
  }

  /// The key of a due row, if its prediction is still pending in that dataset. A row whose
  /// entry was freed since (evicted) is looked up by its sequence number in the cold tier.
  private func live(_ row: DueEntry) throws -> KeyRef? {
    var index = row.index
    if index < 0 || entries[Int(index)].generation != row.generation {
      guard let cold, !retiredSeqs.contains(row.seq), let p = try cold.prediction(seq: row.seq) else { return nil }
      index = try ref(key: p.joinKey).index
    }
    let i = Int(index)
    guard entries[i].seq == row.seq, entries[i].pending & (1 << UInt64(row.dataset)) != 0 else { return nil }
    return KeyRef(index)
  }

  public func popDue(through watermark: Int64) throws -> DueRef? {
    while true {
      // Every due row up to `dueCursor` is in memory; beyond it, the cold tier may hold
      // earlier ones than the heap's first.
      let least = due.minAndPosition()
      if let cold, dueCursor < .afterAll(dueBy: watermark), least.map({ $0.element.row > dueCursor }) ?? true {
        try loadDueBatch(from: cold)
        continue
      }
      guard let least, least.element.finalizeAt <= watermark else {
        // What `earliestDue` would find, unless the cold tier may hold rows after the cursor.
        earliestAfterPop = least?.element.finalizeAt
        earliestAfterPopKnown = !coldMayHoldLaterDueRows
        return nil
      }
      let top = least.element
      due.popMin(at: least.position)
      prefetchUpcomingRows()
      if let ref = try live(top) { return DueRef(row: top.row, ref: ref) }
    }
  }

  /// The earliest due time `popDue` saw when it returned nil: its search already found the
  /// least row (`earliestDue` searched again, about 100 instructions a row).
  public func earliestDueAfterPop() throws -> Int64? {
    guard earliestAfterPopKnown else { return try earliestDue() }
    earliestAfterPopKnown = false
    return earliestAfterPop
  }

  /// Whether the cold tier may hold due rows after those in memory (`dueCursor`).
  private var coldMayHoldLaterDueRows: Bool { cold != nil && dueCursor < .afterAll(dueBy: .max) }

  public func earliestDue() throws -> Int64? {
    let inMemory = due.min()?.finalizeAt
    guard let cold, coldMayHoldLaterDueRows else { return inMemory }
    // Cold rows after the cursor may come earlier than anything in memory.
    let coldMin = try cold.earliestDue(after: dueCursor, offsets: dueOffsets)
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
    // Feedback mostly comes in time order: appended, not inserted (`insert(_:at:)` went through
    // `replaceSubrange`, about 500 instructions an event).
    if at == entries[i].feedback.count {
      entries[i].feedback.append(feedback)
    } else {
      entries[i].feedback.insert(feedback, at: at)
    }
    if entries[i].seq == 0 {
      unclaimed.insert(
        UnclaimedEntry(time: feedback.time, seq: feedback.seq, index: ref.index, generation: entries[i].generation))
    }
    markDirty(ref.index)
    recount(ref.index)
  }

  public func feedback(_ ref: KeyRef) -> [StoredFeedback] { entries[Int(ref.index)].feedback }

  @inline(__always) public func hasFeedback(_ ref: KeyRef) -> Bool { !entries[Int(ref.index)].feedback.isEmpty }

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
      recount(top.index)
      if entries[i].isGone { release(top.index) }
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
      // The entries expiring next were last touched when they finished, long ago: like due
      // rows, they are loaded a few keys ahead, whether or not those expire in this call. (A
      // call mostly retires one key or none, as the watermark moves line by line: loading only
      // keys that expire in the same call loaded none, and each entry read was a cache miss,
      // ~65% of this function's samples.)
      if let ahead = finishedExpiry[8], let entry = entryAddress(ahead.index) {
        Self.prefetchEntry(entry)
      }
      // 4 keys ahead (its entry loaded by now), the key table's bucket that `release` clears.
      if let ahead = finishedExpiry[4], Int(ahead.index) < entries.count {
        feedbackd_prefetch(keys.bucketAddress(hash: entries[Int(ahead.index)].hash))
      }
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
        release(top.index)
      } else if entries[i].isEmpty {
        retire(top.index)
      }
    }
  }

  // MARK: Checkpoints

  /// Lets an entry go that holds nothing any more while the cold tier still holds its old
  /// prediction or feedback: the deletes the next checkpoint owes are noted, and a lookup of
  /// the key until then does not read that state back (`load`). (Otherwise a flush of long
  /// windows, which reads every pending prediction back from the cold tier and writes its
  /// rows, would keep an entry per row until the next checkpoint.)
  private func retire(_ index: Int32) {
    let e = entries[Int(index)]
    if e.coldSeq != 0 {
      retired.deletedPredictions.append(coldPredictionDeleted(e))
      retiredSeqs.insert(e.coldSeq)
    }
    retired.deletedFeedback += e.coldFeedback
    retiredFeedbackSeqs.formUnion(e.coldFeedback)
    release(index)
  }

  /// The delete of the prediction the cold tier holds for `e`: its sequence number, and its
  /// key's hash as the cold tier indexes it (so the delete need not read the key back).
  private func coldPredictionDeleted(_ e: Entry) -> DeletedPrediction {
    DeletedPrediction(seq: e.coldSeq, keyHash: coldTier?.keyHash(e.key) ?? 0)
  }

  /// Hands over what changed since the last call, for persisting, and takes the result as
  /// the new cold image.
  public func takeJournal() -> StateJournal {
    var journal = retired
    retired = StateJournal()
    retiredSeqs.removeAll()
    retiredFeedbackSeqs.removeAll()
    // The cold tier's first keys (it holds none yet: none went into the filter): their hashes
    // are collected and the filter is made to their measure here, rather than rebuilt after
    // the commit by reading them all back (40 ms on the pipeline thread at the benchmark's
    // first commit, for 100k keys). (Not sized by the dirty list: most of it may be released
    // entries, and a filter sized by it took 20 MB more.)
    let firstKeys = coldTier != nil && coldKeys.count == 0 && coldKeysComplete
    var firstHashes: [UInt64] = []
    // Each dirty entry once: the listed ones (a slot listed twice, reused since, is clean the
    // second time), or every entry in order when the list was dropped.
    let dirtyIndices = dirtyListDropped ? Array(Int32(0)..<Int32(entries.count)) : dirtyEntries
    for index in dirtyIndices where entries[Int(index)].dirty {
      let i = Int(index)
      var e = entries[i]
      e.dirty = false
      let wasCold = e.isCold
      // Due rows are not written: the cold tier derives them from the pending bits.
      if e.coldSeq != 0 && e.coldSeq != e.seq {
        journal.deletedPredictions.append(coldPredictionDeleted(e))
      }
      if e.seq != 0 {
        if e.coldSeq != e.seq {
          journal.predictions.append(
            StoredPrediction(
              seq: e.seq, joinKey: e.key, time: e.time, payload: e.payload, datasets: e.datasets, pending: e.pending))
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
          journal.deletedFinished.append(e.key.description)
        } else {
          journal.finished.append(
            FinishedKey(joinKey: e.key, time: e.finishedTime, expiresAt: e.finishedExpires))
        }
        e.coldFinishedExpires = e.finishedExpires
      }
      entries[i] = e
      recount(index)
      // A key the cold tier holds state for from now on (one it held before is in already).
      if !wasCold && !e.isGone && coldTier != nil {
        if firstKeys { firstHashes.append(e.hash) } else { coldKeys.insert(e.hash) }
      }
      if e.isEmpty { release(index) }
    }
    dirtyEntries.removeAll(keepingCapacity: true)
    dirtyListDropped = false
    dirtyCount = 0
    if firstKeys && !firstHashes.isEmpty {
      let bits = ColdKeyFilter.bits(forKeys: firstHashes.count, maxBits: maxColdFilterBits)
      if bits > coldKeys.bits { coldKeys = ColdKeyFilter(bits: bits) }
      for hash in firstHashes { coldKeys.insert(hash) }
      coldKeys.built()
    }
    // No key left in memory, and memory knew all the cold tier held (a flushed replay's last
    // checkpoint): the cold tier is left empty, and so is the filter of its keys.
    if coldTier != nil && !coldMayHold && entries.count == freeEntries.count && coldKeysComplete {
      journal.leavesNothing = true
      coldKeys = ColdKeyFilter(bits: min(maxColdFilterBits, ColdKeyFilter.initialBits))
    }
    return journal
  }

  // MARK: Eviction

  /// Whether `evict()` would do more than compact now: evict state, or read the cold tier
  /// (to rebuild its key filter). The commit before it must be complete: what is evicted is
  /// read back from the cold tier.
  public var wouldEvict: Bool {
    guard coldTier != nil else { return false }
    return coldKeys.needsRebuild || stateBytes > maxBytes || entries.count - freeEntries.count > maxInMemory
      || due.count > maxInMemory
  }

  /// After a checkpoint (journal persisted): lets clean state go so memory stays bounded.
  ///
  /// State due before `soon` (pending predictions with their feedback, due rows) would be
  /// read straight back, so the byte bound lets it stay if, with finished keys and the state
  /// due later evicted, the whole state fits in one and a half times the bound (`maxBytes`).
  /// If it does not, eviction goes on as though nothing were due soon (down to half the
  /// bound), so the state left never exceeds that cap. The caller passes a time that depends
  /// on the input alone (the watermark plus a fixed horizon). The entry bound (`maxInMemory`)
  /// makes no such exception. When nothing is over any bound, nothing is walked.
  ///
  /// The cold-key filter is rebuilt here when due (the cold tier then holds the checkpoint).
  public func evict(keepingDueBefore soon: Int64 = .min) throws {
    guard let coldTier, dirtyCount == 0 else { return }
    if coldKeys.needsRebuild { try rebuildColdFilter(from: coldTier) }
    let overBytes = stateBytes > maxBytes
    guard overBytes || entries.count - freeEntries.count > maxInMemory || due.count > maxInMemory else {
      compactIfSparse()
      return
    }
    let cap = maxBytes <= .max / 2 ? maxBytes + maxBytes / 2 : .max
    /// Whether what is due soon stays (it fits under the cap).
    var soonStays = true
    func nextDue(_ i: Int) -> Int64 {
      var next = Int64.max
      let time = entries[i].time
      entries[i].pending.forEachBit { next = min(next, time &+ dueOffsets[$0]) }
      return next
    }
    var evicted = false
    var predictions: [Int32] = []
    var dueLater = 0
    var finishedOnly: [Int32] = []
    // By index: a copy of each entry would retain and release its arrays.
    for i in entries.indices where entries[i].live {
      if entries[i].seq != 0 {
        predictions.append(Int32(i))
        if nextDue(i) >= soon { dueLater += 1 }
      } else if entries[i].feedback.isEmpty && entries[i].finishedExpires != .min {
        finishedOnly.append(Int32(i))
      }
    }
    if finishedOnly.count > maxInMemory || (overBytes && !finishedOnly.isEmpty) {
      // Finished keys go first: they are looked up again only by a duplicate or late event.
      // Their expiry entries stay queued; they find nothing to expire.
      for index in finishedOnly {
        release(index)
      }
      evicted = true
    }
    if predictions.count > maxInMemory
      || (overBytes && stateBytes > maxBytes / 2 && (dueLater > 0 || stateBytes > cap))
    {
      // Keep the newest (their feedback is still arriving: up to a quarter of the count
      // bound and an eighth of the byte bound) and, of the rest, those due soonest (their
      // rows are written next); evict the ones due furthest in the future until both bounds
      // are met by half (unless what is due soon stays). Their feedback goes with them;
      // orphan candidates (feedback without a prediction) always stay.
      predictions.sort { entries[Int($0)].seq < entries[Int($1)].seq }
      var newest = 0
      var newestBytes = 0
      for index in predictions.reversed() {
        let bytes = MemoryLayout<Entry>.stride + entries[Int(index)].cost
        guard newest < maxInMemory / 4, newestBytes + bytes <= maxBytes / 8 else { break }
        newest += 1
        newestBytes += bytes
      }
      let older = predictions.dropLast(newest)
        .map { (index: $0, due: nextDue(Int($0)), seq: entries[Int($0)].seq) }
        .sorted { ($0.due, $0.seq) > ($1.due, $1.seq) }
      var left = predictions.count
      var reachedSoon = false
      for victim in older {
        if victim.due < soon && !reachedSoon {
          // Everything due later is gone: what is due soon stays if the state fits the cap.
          reachedSoon = true
          soonStays = stateBytes <= cap
        }
        if reachedSoon && soonStays && left <= maxInMemory / 2 { break }
        guard left > maxInMemory / 2 || (overBytes && stateBytes > maxBytes / 2) else { break }
        release(victim.index)
        left -= 1
        evicted = true
      }
    }
    let dueBudget = maxBytes / 16 / MemoryLayout<DueEntry>.stride
    var keep = due.count
    if due.count > maxInMemory || (overBytes && due.count > dueBudget) {
      // Rows due soon stay too (if what is due soon stays), within the entry bound.
      var dueSoon = 0
      // Counted where they lie: a live daemon over the byte bound passes here at every commit,
      // and a copy of every due row (`items`) was 2% of its CPU (`perf`).
      if soonStays && stateBytes <= cap { dueSoon = due.count(where: { $0.finalizeAt < soon }) }
      keep = min(maxInMemory / 2, max(dueBudget / 2, dueSoon))
    }
    if keep < due.count {
      let kept = due.items.sorted().prefix(keep)
      // Every row up to the last kept one is still in memory (of copies of one row, at least one).
      due = RunQueue(Array(kept))
      dueCursor = min(dueCursor, kept.last?.row ?? .beforeAll)
      evicted = true
    }
    if evicted {
      coldMayHold = true
      evictions += 1
    }
    compactIfSparse()
  }

  /// Compacts the entry array when most of it is free, or when its spare capacity is what is
  /// large (it grew in a burst).
  private func compactIfSparse() {
    let live = entries.count - freeEntries.count
    if entries.count >= compactAt && (freeEntries.count * 2 > entries.count || entries.capacity > 2 * live + 4096) {
      compact()
    }
  }

  /// Moves the live entries to the front of a right-sized array (free slots of a larger past
  /// would otherwise be kept for good) and renumbers everything that refers to them.
  private func compact() {
    var newIndex = [Int32](repeating: -1, count: entries.count)
    var kept: [Entry] = []
    kept.reserveCapacity(entries.count - freeEntries.count)
    for i in entries.indices where entries[i].live {
      newIndex[i] = Int32(kept.count)
      kept.append(entries[i])
    }
    /// The new index of a live entry, nil for a reference made before it was freed.
    func moved(_ index: Int32, _ generation: UInt32) -> Int32? {
      guard index >= 0, entries[Int(index)].live, entries[Int(index)].generation == generation else { return nil }
      return newIndex[Int(index)]
    }
    due = RunQueue(
      due.items.map {
        var row = $0
        // A row whose entry went is looked up in the cold tier when due, as before.
        row.index = moved(row.index, row.generation) ?? -1
        return row
      })
    unclaimed = Heap(
      unclaimed.items.compactMap {
        var candidate = $0
        guard let index = moved(candidate.index, candidate.generation) else { return nil }
        candidate.index = index
        return candidate
      })
    finishedExpiry.compactMap {
      var expiry = $0
      guard entries[Int(expiry.index)].live else { return nil }
      expiry.index = newIndex[Int(expiry.index)]
      return expiry
    }
    dirtyEntries = dirtyEntries.compactMap { entries[Int($0)].live ? newIndex[Int($0)] : nil }
    entries.replaceAll(with: kept)
    freeEntries = []
    keys.removeAll(sizedFor: entries.count)
    for i in entries.indices { keys.insert(hash: entries[i].hash, index: Int32(i)) }
    compactions += 1
  }
}

/// The store's entries: an array written through a pointer, owned by one store. Through
/// `[Entry]`, a class's property, every write to an entry's field checked that the array was
/// not shared (a call, about ten times per line of a replay).
final class EntryBuffer {
  private(set) var base: UnsafeMutablePointer<MemoryStateStore.Entry>
  private(set) var count = 0
  private(set) var capacity: Int

  init() {
    capacity = 16
    base = .allocate(capacity: capacity)
  }

  /// Holds (copies of) `entries` instead, in a buffer of their size.
  func replaceAll(with entries: [MemoryStateStore.Entry]) {
    base.deinitialize(count: count)
    base.deallocate()
    capacity = Swift.max(entries.count, 16)
    base = .allocate(capacity: capacity)
    base.initialize(from: entries, count: entries.count)
    count = entries.count
  }

  deinit {
    base.deinitialize(count: count)
    base.deallocate()
  }

  var indices: Range<Int> { 0..<count }

  subscript(index: Int) -> MemoryStateStore.Entry {
    unsafeAddress {
      precondition(UInt(bitPattern: index) < UInt(bitPattern: count), "entry index out of range")
      return UnsafePointer(base + index)
    }
    unsafeMutableAddress {
      precondition(UInt(bitPattern: index) < UInt(bitPattern: count), "entry index out of range")
      return base + index
    }
  }

  func append(_ entry: consuming MemoryStateStore.Entry) {
    if count == capacity { OwnedBuffer.grow(&base, count: count, capacity: &capacity) }
    (base + count).initialize(to: entry)
    count += 1
  }
}

public struct FinishedKey: Sendable, Equatable {
  /// Inline, as in `StoredPrediction` (a commit lists tens of thousands).
  public var joinKey: JoinKey
  public var key: String {
    get { joinKey.description }
    set { joinKey = JoinKey(newValue) }
  }
  public var time: Int64
  public var expiresAt: Int64
  public init(key: String, time: Int64, expiresAt: Int64) {
    self.init(joinKey: JoinKey(key), time: time, expiresAt: expiresAt)
  }
  public init(joinKey: JoinKey, time: Int64, expiresAt: Int64) {
    self.joinKey = joinKey
    self.time = time
    self.expiresAt = expiresAt
  }
}

/// A prediction the cold tier holds that goes, with its key's `ColdTier.keyHash`: the cold
/// tier finds the key's index entry by it without reading the row back. (Not the key itself:
/// a flush retires every prediction it reads back, and until the next checkpoint each one
/// waits here; with the key, a third of a replay's peak RSS with a million pending.)
public struct DeletedPrediction: Sendable, Equatable {
  public var seq: Int64
  public var keyHash: Int64
  public init(seq: Int64, keyHash: Int64) {
    self.seq = seq
    self.keyHash = keyHash
  }
}

public struct PendingUpdate: Sendable, Equatable {
  public var seq: Int64
  public var pending: UInt64
  public init(seq: Int64, pending: UInt64) {
    self.seq = seq
    self.pending = pending
  }
}

/// What changed since the last checkpoint, as writes to apply in this order: deletions, then
/// insertions (a key's old prediction must be gone before its replacement is inserted).
public struct StateJournal: Sendable {
  public var deletedPredictions: [DeletedPrediction] = []
  public var predictions: [StoredPrediction] = []
  public var pendingUpdates: [PendingUpdate] = []
  public var deletedFeedback: [Int64] = []
  public var feedback: [StoredFeedback] = []
  public var deletedFinished: [String] = []
  public var finished: [FinishedKey] = []
  /// After this journal the cold tier holds no join state at all (memory holds no key, and
  /// nothing was ever evicted): it may empty its tables instead of deleting row by row. The
  /// lists above still say exactly what goes (all of them deletes).
  public var leavesNothing = false
  public init() {}
}
