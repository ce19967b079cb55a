import LogFormats

/// Joins feedback to predictions and decides label values (DESIGN.md §4).
///
/// Every decision depends only on the sequence of events and the watermark, never on the wall
/// clock or on how input was chunked: rows become final eagerly, as soon as the watermark
/// reaches them, before the next event is looked at.
public final class LabelEngine {
  public let rules: Rules
  public let store: any StateStore
  /// `store` when it is a `MemoryStateStore` (the pipeline's): the per-event and per-row work
  /// is generic over the store (`in store: S`) and runs specialized for it, its calls direct
  /// and inlined. Through the existential every call went through a witness thunk, and
  /// returned values (a row's feedback array, its key) were retained and released.
  /// Unmanaged: binding a strong reference to it retained and released it for every event.
  private let memoryStore: Unmanaged<MemoryStateStore>?
  /// `unowned(unsafe)`: the output outlives the engine (the pipeline owns its engine); a checked
  /// reference costs an atomic retain and release on every row.
  public unowned(unsafe) let output: any EngineOutput
  /// What the engine counted. Events by source and kind are kept apart (`eventCounts`) and
  /// put in when asked for.
  public var counters: EngineCounters {
    var counted = tallies
    for source in counted.eventsBySource.indices {
      for kind in counted.eventsBySource[source].indices {
        counted.eventsBySource[source][kind] = eventCounts[source &* eventKinds &+ kind]
      }
    }
    return counted
  }
  private var tallies: EngineCounters
  /// Events by source and kind (`EngineCounters.eventsBySource`), `eventKinds` per source, in
  /// plain memory: through the nested arrays every event paid two uniqueness checks (calls).
  private let eventCounts: UnsafeMutablePointer<Int>
  private let eventKinds: Int

  /// Per source: the largest event time read, and whether it still holds the watermark.
  public private(set) var sourceMaxTime: [Int64?]
  private var sourceActive: [Bool]
  /// Global watermark (never decreases). `Int64.min` until any event is read.
  public private(set) var watermark: Int64 = .min
  /// Last sequence number handed to an event.
  public private(set) var seq: Int64 = 0

  private var nextDue: Int64 = .max
  private var elementRanges: [Range<Int>] = []
  private var nextOrphan: Int64 = .max
  /// Reused while building a prediction's payload.
  private var payload: [UInt8] = []
  /// Where a prediction's payload is written before it is copied to its array.
  private var payloadScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
  /// Each row's labels as `LabelRecords`, written in place (`labelBytesCapacity` bytes) and
  /// handed to the output as a buffer.
  private var labelBytes: UnsafeMutablePointer<UInt8>
  private var labelBytesCapacity = 256
  /// Each label's record when no feedback at all is stored for the key (most rows), made once:
  /// label `l`'s at `emptyRecords[emptyRecordStart[l]..<emptyRecordStart[l + 1]]`.
  private let emptyRecords: [UInt8]
  private let emptyRecordStart: [Int]
  /// Reused to encode a label whose key has feedback.
  private var labelScratch: [UInt8] = []
  /// What `outcome` needs of each label, as plain values: reading `rules.labels[label]` copied
  /// the label's spec, retaining and releasing its name and value for every row.
  private let labelInfo: [LabelInfo]
  /// Each dataset's labels, `datasetLabels[datasetLabelStart[d]..<datasetLabelStart[d + 1]]`.
  private let datasetLabelStart: [Int]
  private let datasetLabels: [Int]

  struct LabelInfo {
    enum Kind { case binary, count, sum, first }
    var feedbackType: Int
    var kind: Kind
    /// The feedback type has `dedupe_by`.
    var dedupe: Bool
    /// The outcome with no feedback at all (most rows): what `outcome` computes then, made once.
    var empty: LabelOutcome
  }
  /// Called after every 4096 rows one settle writes: the owner may commit there. One
  /// watermark step (a source ending, a flush, a gap in the log's times) can make a whole
  /// window's rows final at once, and only committed state can be evicted. A settle that an
  /// event started runs before the event is counted (`seq`) or classified, so a commit there
  /// describes the state just before the event's line, and a restart reads the line again.
  public var checkpointHook: (() throws -> Void)?
  /// Rows between two calls of `checkpointHook` (and of pruning finished keys), counted
  /// across settles: many events in a row may each make some thousand rows final.
  public var checkpointEvery = 4096
  private var rowsSinceHook = 0

  /// Writes a row to `output` without retaining it: a call through the `unowned(unsafe)`
  /// existential retains and releases it, an atomic pair per row. (It captures an `Unmanaged`
  /// of the concrete type, so the call needs no cast either.)
  private let writeRow: (RowParts) throws -> Void

  public init(rules: Rules, store: any StateStore, output: some EngineOutput, sources: Int) throws {
    self.rules = rules
    self.store = store
    memoryStore = (store as? MemoryStateStore).map { .passUnretained($0) }
    self.output = output
    let unretained = Unmanaged.passUnretained(output)
    writeRow = { row in try unretained._withUnsafeGuaranteedRef { try $0.write(parts: row) } }
    tallies = EngineCounters(
      feedbackTypes: rules.feedbackTypes.count, datasets: rules.datasets.count, sources: sources)
    eventKinds = rules.feedbackTypes.count + 3
    let eventSlots = Swift.max(sources * eventKinds, 1)
    eventCounts = .allocate(capacity: eventSlots)
    eventCounts.initialize(repeating: 0, count: eventSlots)
    sourceMaxTime = Array(repeating: nil, count: sources)
    sourceActive = Array(repeating: true, count: sources)
    labelInfo = rules.labels.map { spec in
      let kind: LabelInfo.Kind =
        switch spec.value {
        case .binary: .binary
        case .count: .count
        case .sum: .sum
        case .first: .first
        }
      let empty: JSONValue =
        switch kind {
        case .binary, .count: .number("0")
        case .sum: .number(formatNumber(0))
        case .first: .null
        }
      return LabelInfo(
        feedbackType: spec.feedbackType, kind: kind, dedupe: rules.feedbackTypes[spec.feedbackType].dedupeBy != nil,
        empty: LabelOutcome(value: empty, at: nil))
    }
    var starts = [0]
    var all: [Int] = []
    for dataset in rules.datasets {
      all += dataset.labels
      starts.append(all.count)
    }
    datasetLabelStart = starts
    datasetLabels = all
    var records: [UInt8] = []
    var recordStart = [0]
    for info in labelInfo {
      LabelRecords.append(info.empty, to: &records)
      recordStart.append(records.count)
    }
    emptyRecords = records
    emptyRecordStart = recordStart
    labelBytes = .allocate(capacity: labelBytesCapacity)
    store.dueOffsets = rules.datasetMaxWindow
    nextDue = try store.earliestDue() ?? .max
    nextOrphan = try store.earliestUnclaimedFeedback() ?? .max
  }

  deinit {
    payloadScratch.deallocate()
    eventCounts.deallocate()
    labelBytes.deallocate()
  }

  /// Restores what a checkpoint saved.
  public func restore(seq: Int64, watermark: Int64, sourceMaxTime: [Int64?]) {
    self.seq = seq
    self.watermark = watermark
    self.sourceMaxTime = sourceMaxTime
  }

  /// After `restore`, before any event: writes what a commit made in the middle of a settle
  /// (through `checkpointHook`) left due. Otherwise there is nothing to do.
  public func resume() throws {
    if watermark > .min { try settle() }
  }

  // MARK: Watermark

  /// A source with no more data to read (replay) or idle (live) stops holding the watermark.
  public func setSourceActive(_ source: Int, _ active: Bool) throws {
    sourceActive[source] = active
    try advanceWatermark()
  }

  /// Treats the end of input as the end of time: every pending row becomes final.
  public func flush() throws {
    try advance(to: .max)
  }

  /// Moves the watermark forward by wall-clock time for idle sources (live mode).
  public func advance(to time: Int64) throws {
    guard time > watermark else { return }
    watermark = time
    try settle()
  }

  private func advanceWatermark() throws {
    var lowest: Int64 = .max
    var highest: Int64 = .min
    var anyActive = false
    for (i, max) in sourceMaxTime.enumerated() {
      let w = max.map { $0 &- rules.maxOutOfOrder } ?? .min
      if sourceActive[i] {
        anyActive = true
        lowest = Swift.min(lowest, w)
      }
      highest = Swift.max(highest, w)
    }
    let candidate = anyActive ? lowest : highest
    if candidate > watermark {
      watermark = candidate
      try settle()
    }
  }

  /// Writes every row that is final and retires every orphan the watermark has passed.
  ///
  /// In the order they became final: a row when the watermark reached its `finalizeAt`, an
  /// orphan when it passed the feedback's time plus the clock skew (a row first at the same
  /// time). So the side log's orphans (some are written with rows, by `finish`) come in the
  /// same order whether the watermark moved in one step or in several: lines passed over on
  /// the read-ahead thread move it in one (`processIgnored(latest:source:count:)`), where
  /// read one by one they may have moved it in several.
  private func settle() throws {
    let orphanLine = watermark == .max ? Int64.max : watermark &- rules.clockSkew
    while true {
      if nextOrphan < orphanLine {
        // The next orphan became final at `nextOrphan + clockSkew`: rows up to then come first.
        let orphanFinal = nextOrphan &+ rules.clockSkew
        if nextDue <= orphanFinal {
          try emitDueRows(through: orphanFinal)
        } else {
          // The orphans that became final before the next row.
          try retireOrphans(before: Swift.min(orphanLine, nextDue &- rules.clockSkew))
        }
        continue
      }
      if watermark >= nextDue { try emitDueRows(through: watermark) }
      break
    }
    if let memoryStore {
      memoryStore._withUnsafeGuaranteedRef { $0.pruneFinished(expiredBy: watermark) }
    } else {
      store.pruneFinished(expiredBy: watermark)
    }
  }

  // MARK: Events

  /// Processes one decoded event from `source` (tests and tools; the pipeline scans instead).
  public func process(_ event: Event, source: Int, lineHash: @autoclosure () -> UInt64) throws {
    // Errors are carried out of the buffer closure by hand, not rethrown through it.
    let hash = lineHash()
    let result = rules.withScanned(event) { scanned in
      Result { try process(scanned, source: source, lineHash: hash) }
    }
    try result.get()
  }

  /// The same, for an event the caller keeps (and reuses) in place: passing it by value from
  /// a class's property copies it, retaining its slots.
  /// `matched`: the event's `rules.matcher.eventClass(event)`, when the caller has it (lines
  /// are matched ahead, on their file's read-ahead thread); `nil`: matched here. `keyHash`: its
  /// join key's hash as the store takes it (`StateStore.ref(key:hash:)`), when the caller has
  /// it (also computed ahead).
  @inline(__always)
  public func process(
    event: inout ScannedEvent, matched: Rules.EventClass? = nil, keyHash: UInt64? = nil, source: Int,
    lineHash: @autoclosure () -> UInt64
  ) throws {
    try process(event, matched: matched, keyHash: keyHash, source: source, lineHash: lineHash())
  }

  /// Processes one scanned event from `source`; its slots follow `rules.fieldPaths`.
  /// `lineHash` (of the raw line, for identical-line dedupe) is only computed for feedback.
  public func process(
    _ event: ScannedEvent, matched: Rules.EventClass? = nil, keyHash: UInt64? = nil, source: Int,
    lineHash: @autoclosure () -> UInt64
  ) throws {
    try readEvent(time: event.time, source: source)
    let kinds = rules.feedbackTypes.count
    switch rules.classify(event, as: matched ?? rules.matcher.eventClass(event)) {
    case .prediction(let key):
      tallies.predictions += 1
      eventCounts[source &* eventKinds] += 1
      if let memoryStore {
        try memoryStore._withUnsafeGuaranteedRef {
          try processPrediction(key: key, hash: keyHash, event: event, in: $0)
        }
      } else {
        try processPrediction(key: key, hash: keyHash, event: event, in: store)
      }
    case .feedback(let type, let key):
      tallies.feedback[type] += 1
      eventCounts[source &* eventKinds &+ 1 &+ type] += 1
      if let memoryStore {
        let lineHash = lineHash()
        try memoryStore._withUnsafeGuaranteedRef {
          try processFeedback(type: type, key: key, hash: keyHash, event: event, lineHash: lineHash, in: $0)
        }
      } else {
        try processFeedback(type: type, key: key, hash: keyHash, event: event, lineHash: lineHash(), in: store)
      }
    case .ignored:
      countIgnored(source: source)
    case .missingKey:
      tallies.missingKey += 1
      eventCounts[source &* eventKinds &+ 2 &+ kinds] += 1
    }
  }

  /// Processes an event from `source` known to match no rule (`matched` `.ignored`, found
  /// ahead), of which only the time is needed: what `process` does with it, without its
  /// fields.
  @inline(__always)
  public func processIgnored(time: Int64, source: Int) throws {
    try readEvent(time: time, source: source)
    countIgnored(source: source)
  }

  /// What every event does first: its time may move the watermark (rows become final before
  /// the event is counted), then it takes the next sequence number (`count` events read one
  /// after another, the latest at `time`: the next `count`).
  @inline(__always)
  private func readEvent(time: Int64, source: Int, count: Int = 1) throws {
    if sourceMaxTime[source].map({ time > $0 }) ?? true {
      sourceMaxTime[source] = time
      try advanceWatermark()
    }
    seq += Int64(count)
  }

  @inline(__always)
  private func countIgnored(source: Int, count: Int = 1) {
    tallies.ignored += count
    eventCounts[source &* eventKinds &+ 1 &+ rules.feedbackTypes.count] += count
  }

  /// Processes `count` events from `source` known to match no rule, read one after another,
  /// the latest at `latest`: what `processIgnored(time:source:)` does with each of them, at
  /// once. The latest time moves the watermark as far as the events one by one would, and
  /// the rows it makes final are the same, written in the same order, since no other event
  /// came between; the events take `count` sequence numbers after that, as each takes its
  /// own after its time is read.
  public func processIgnored(latest: Int64, source: Int, count: Int) throws {
    guard count > 0 else { return }
    try readEvent(time: latest, source: source, count: count)
    countIgnored(source: source, count: count)
  }

  /// `hash`: the key's hash as the store takes it, if known.
  private func processPrediction<S: StateStore>(key: JoinKey, hash: UInt64?, event: ScannedEvent, in store: S) throws {
    let time = event.time
    var datasets: UInt64 = 0
    for (d, window) in rules.datasetMaxWindow.enumerated() where time &+ window > watermark {
      datasets |= 1 << UInt64(d)
    }
    guard datasets != 0 else {
      tallies.latePredictions += 1
      try output.side(.latePrediction(key: key.description, time: time))
      return
    }
    let ref = try hash.map { try store.ref(key: key, hash: $0) } ?? store.ref(key: key)
    if store.finishedPrediction(ref, at: watermark) != nil {
      tallies.duplicatePredictions += 1
      return
    }
    if let old = store.prediction(ref) {
      // First prediction wins: the earliest event time; on a tie, the one read first. An
      // earlier one read later replaces it.
      tallies.duplicatePredictions += 1
      guard time < old.time else { return }
    }
    // Written in the scratch, then copied into an array of its exact size (the storage of a
    // retired payload of that length, when the store keeps them): made directly, the array's
    // allocation went through the runtime's generic path, which looked the array type up on
    // every call (about 540 instructions).
    let room = rules.payloadRoom(event)
    if room > payloadScratch.count {
      let capacity = Swift.max(room, 2 * payloadScratch.count)
      payloadScratch.deallocate()
      payloadScratch = .allocate(byteCount: capacity, alignment: 8)
    }
    let stored: [UInt8]
    if let length = rules.writeExactPayload(event, to: payloadScratch.baseAddress!) {
      stored = store.payloadArray(
        copying: UnsafeRawBufferPointer(rebasing: payloadScratch[..<length]).bindMemory(to: UInt8.self))
    } else {
      stored = rewrittenPayload(event, in: store)
    }
    try store.setPrediction(ref, seq: seq, time: time, payload: stored, datasets: datasets)
    for d in 0..<rules.datasets.count where datasets & (1 << UInt64(d)) != 0 {
      nextDue = Swift.min(nextDue, time &+ rules.datasetMaxWindow[d])
    }
  }

  /// A payload with a value to rewrite, built in the reused buffer, then copied to an array of
  /// its exact size: handing over the reused buffer itself would leave every stored payload
  /// holding a buffer of the largest capacity seen (measured: peak RSS 48 -> 90 MB).
  @inline(never)
  private func rewrittenPayload<S: StateStore>(_ event: ScannedEvent, in store: S) -> [UInt8] {
    // The reused buffer is borrowed as a local (moved out and back): reading the property
    // for the copy retained it.
    var buffer: [UInt8] = []
    swap(&buffer, &payload)
    buffer.removeAll(keepingCapacity: true)
    rules.writePayload(event, to: &buffer)
    let stored = buffer.withUnsafeBufferPointer { store.payloadArray(copying: $0) }
    swap(&buffer, &payload)
    return stored
  }

  private func processFeedback<S: StateStore>(
    type: Int, key: JoinKey, hash: UInt64?, event: ScannedEvent, lineHash: UInt64, in store: S
  ) throws {
    let time = event.time
    let ref = try hash.map { try store.ref(key: key, hash: $0) } ?? store.ref(key: key)
    if let prediction = store.prediction(ref) {
      // Late if it falls in a window of a row already written.
      let written = prediction.datasets & ~prediction.pending
      if written != 0, isLate(type: type, time: time, predictedAt: prediction.time, datasets: written) {
        tallies.lateFeedback[type] += 1
        try output.side(
          .lateFeedback(type: type, key: key.description, time: time, predictedAt: prediction.time))
      }
      store.addFeedback(ref, makeFeedback(type: type, key: key, event: event, lineHash: lineHash))
      return
    }
    if let predictedAt = store.finishedPrediction(ref, at: watermark) {
      if isLate(type: type, time: time, predictedAt: predictedAt, datasets: .max) {
        tallies.lateFeedback[type] += 1
        try output.side(.lateFeedback(type: type, key: key.description, time: time, predictedAt: predictedAt))
      } else {
        tallies.orphans[type] += 1
        try output.side(.orphan(type: type, key: key.description, time: time))
      }
      return
    }
    store.addFeedback(ref, makeFeedback(type: type, key: key, event: event, lineHash: lineHash))
    nextOrphan = Swift.min(nextOrphan, time)
    let orphanLine = watermark == .max ? Int64.max : watermark &- rules.clockSkew
    if nextOrphan < orphanLine { try retireOrphans(before: orphanLine) }
  }

  private func isLate(type: Int, time: Int64, predictedAt: Int64, datasets: UInt64) -> Bool {
    for (d, dataset) in rules.datasets.enumerated() where datasets & (1 << UInt64(d)) != 0 {
      for label in dataset.labels where rules.labels[label].feedbackType == type {
        if rules.inWindow(label: label, predictionTime: predictedAt, feedbackTime: time) { return true }
      }
    }
    return false
  }

  private func makeFeedback(type: Int, key: JoinKey, event: ScannedEvent, lineHash: UInt64) -> StoredFeedback {
    let dedupe = rules.dedupeSlots[type].flatMap { event.compactText($0) }
    var fields: [UInt8] = []
    let slots = rules.neededSlots[type]
    if !slots.isEmpty { event.writeCompactArray(slots, to: &fields) }
    return StoredFeedback(
      seq: seq, joinKey: key, type: type, time: event.time, lineHash: lineHash, dedupe: dedupe, fields: fields)
  }

  // MARK: Rows

  /// Writes the rows final by `limit` (at most the watermark), in order.
  private func emitDueRows(through limit: Int64) throws {
    if let memoryStore {
      try memoryStore._withUnsafeGuaranteedRef { try emitDueRows(through: limit, in: $0) }
    } else {
      try emitDueRows(through: limit, in: store)
    }
  }

  private func emitDueRows<S: StateStore>(through limit: Int64, in store: S) throws {
    while let due = try store.popDue(through: limit) {
      guard let prediction = store.prediction(due.ref) else { continue }
      // Most keys have no feedback: their (empty) array is not taken (nil). A copy of it was
      // retained and released, and the empty array's count is immortal, so both took the
      // runtime's slow path (callgrind: about 35 instructions a row).
      let feedback = store.hasFeedback(due.ref) ? store.feedback(due.ref) : nil
      try writeRow(
        prediction: prediction, ref: due.ref, dataset: due.row.dataset, feedback: feedback, due: due.row, in: store)
      tallies.rows[due.row.dataset] += 1
      if store.rowWritten(due.ref, dataset: due.row.dataset) == 0 {
        try finish(prediction, ref: due.ref, feedback: feedback, in: store)
      }
      // Finished keys whose memory expired go as rows are written, not only after: a flush
      // writes every pending row at once, and their memory must not pile up meanwhile.
      rowsSinceHook += 1
      if rowsSinceHook >= checkpointEvery {
        rowsSinceHook = 0
        store.pruneFinished(expiredBy: watermark)
        try checkpointHook?()
      }
    }
    nextDue = try store.earliestDueAfterPop() ?? .max
  }

  /// Retires a prediction whose rows are all written; its unattributed feedback are orphans.
  private func finish<S: StateStore>(
    _ prediction: PendingPrediction, ref: KeyRef, feedback: [StoredFeedback]?, in store: S
  ) throws {
    if let feedback {
      for f in feedback {
        let attributed = rules.labelsOfType[f.type].contains {
          rules.inWindow(label: $0, predictionTime: prediction.time, feedbackTime: f.time)
        }
        if !attributed {
          tallies.orphans[f.type] += 1
          try output.side(.orphan(type: f.type, key: f.key, time: f.time))
        }
      }
    }
    // Remember the key for duplicate and late detection for one more longest window.
    store.finish(ref, expiresAt: prediction.time &+ 2 &* Swift.max(rules.maxWindow, 1))
  }

  /// Hands the row of `due` to the output, by parts: the kept columns from the stored
  /// payload (a view, no copy), the labels encoded into `labelBytes`.
  private func writeRow<S: StateStore>(
    prediction: PendingPrediction, ref: KeyRef, dataset d: Int, feedback: [StoredFeedback]?, due: DueRow,
    in store: S
  ) throws {
    // Valid until the store changes: the row is handed over before it does.
    let payload = store.payloadBytes(ref)
    let range: Range<Int>?
    if rules.datasets.count == 1 {
      // `[columns]`: the one element needs no parse.
      range =
        payload.count >= 3 && payload.first == UInt8(ascii: "[") && payload.last == UInt8(ascii: "]")
        ? 1..<payload.count - 1 : nil
    } else {
      range =
        JSONValue.arrayElements(payload, into: &elementRanges) && d < elementRanges.count ? elementRanges[d] : nil
    }
    guard let range else { throw LabelingError.corruptState("prediction \(prediction.seq) payload") }
    // The output is done with the row (or holds a copy) when the next one is made.
    let first = datasetLabelStart[d]
    let count = datasetLabelStart[d + 1] - first
    var used = 0
    for k in 0..<count {
      let label = datasetLabels[first + k]
      if let feedback {
        labelScratch.removeAll(keepingCapacity: true)
        LabelRecords.append(
          try outcome(label: label, predictedAt: prediction.time, feedback: feedback), to: &labelScratch)
        labelScratch.withUnsafeBytes { appendLabelBytes($0, at: &used) }
      } else {
        // What `outcome` gives with no feedback, encoded once.
        emptyRecords.withUnsafeBytes { records in
          let start = emptyRecordStart[label]
          appendLabelBytes(UnsafeRawBufferPointer(rebasing: records[start..<emptyRecordStart[label + 1]]), at: &used)
        }
      }
    }
    let key = store.key(ref)
    let labels = UnsafeRawBufferPointer(UnsafeBufferPointer(start: labelBytes, count: used))
    try writeRow(
      RowParts(
        dataset: d, joinKey: key, predictedAt: prediction.time, finalizeAt: due.finalizeAt,
        columnsJSON: UnsafeRawBufferPointer(rebasing: payload[range]), labelCount: count, labelRecords: labels))
  }

  /// Copies `bytes` to `labelBytes` at `used`, growing it if needed.
  @inline(__always)
  private func appendLabelBytes(_ bytes: UnsafeRawBufferPointer, at used: inout Int) {
    while used &+ bytes.count > labelBytesCapacity {
      OwnedBuffer.grow(&labelBytes, count: used, capacity: &labelBytesCapacity)
    }
    if let base = bytes.baseAddress {
      UnsafeMutableRawPointer(labelBytes + used).copyMemory(from: base, byteCount: bytes.count)
    }
    used &+= bytes.count
  }

  /// Computes one label from the stored feedback of a key (already in (time, seq) order).
  ///
  /// Feedback is referred to by index, never copied, and for a key with few events (almost
  /// all) the duplicate checks compare with the earlier ones in place, in memory on the stack:
  /// copying each event and building two sets per row was 3% of the pipeline thread.
  func outcome(label: Int, predictedAt: Int64, feedback: [StoredFeedback]) throws -> LabelOutcome {
    let n = feedback.count
    // No feedback: nothing to attribute (about 75 instructions a row less).
    if n == 0 { return labelInfo[label].empty }
    let spec = labelInfo[label]
    let dedupeConfigured = spec.dedupe
    // Indices: [0, n) the events in the window so far, [n, 2n) those attributed.
    return try withUnsafeTemporaryAllocation(of: Int.self, capacity: max(2 * n, 1)) { indices in
      var candidates = 0
      var attributed = 0
      // Above a few events, sets instead of comparing with every earlier one.
      let useSets = n > 16
      // Made only when used: two empty sets made and dropped cost about 24 instructions a row.
      var seenLines: Set<UInt64>? = useSets ? [] : nil
      var seenValues: Set<String>? = useSets ? [] : nil
      for i in 0..<n where feedback[i].type == spec.feedbackType {
        guard rules.inWindow(label: label, predictionTime: predictedAt, feedbackTime: feedback[i].time) else {
          continue
        }
        let line = feedback[i].lineHash
        var duplicate = false
        if useSets {
          duplicate = !seenLines!.insert(line).inserted
        } else {
          for c in 0..<candidates where feedback[indices[c]].lineHash == line {
            duplicate = true
            break
          }
          indices[candidates] = i
          candidates += 1
        }
        if duplicate { continue }
        if dedupeConfigured, let value = feedback[i].dedupe {
          if useSets {
            duplicate = !seenValues!.insert(value).inserted
          } else {
            for a in 0..<attributed where feedback[indices[n + a]].dedupe == value {
              duplicate = true
              break
            }
          }
          if duplicate { continue }
        }
        indices[n + attributed] = i
        attributed += 1
      }
      let chosen = UnsafeBufferPointer(rebasing: indices[n..<(n + attributed)])
      let at = chosen.first.map { feedback[$0].time }
      switch spec.kind {
      case .binary:
        return LabelOutcome(value: .number(chosen.isEmpty ? "0" : "1"), at: at)
      case .count:
        return LabelOutcome(value: .number(String(chosen.count)), at: at)
      case .sum:
        var sum = 0.0
        for index in chosen {
          sum += try field(of: feedback[index], label: label)?.doubleValue ?? 0
        }
        return LabelOutcome(value: sum.isFinite ? .number(formatNumber(sum)) : .null, at: at)
      case .first:
        guard let first = chosen.first else { return LabelOutcome(value: .null, at: nil) }
        return LabelOutcome(value: try field(of: feedback[first], label: label) ?? .null, at: at)
      }
    }
  }

  private func field(of feedback: StoredFeedback, label: Int) throws -> JSONValue? {
    guard let index = rules.labelFieldIndex[label], !feedback.fields.isEmpty else { return nil }
    guard case .array(let values) = try JSONValue.parse(feedback.fields), index < values.count else {
      throw LabelingError.corruptState("feedback \(feedback.seq) fields")
    }
    return values[index]
  }

  // MARK: Orphans

  private func retireOrphans(before line: Int64) throws {
    while let f = try store.popUnclaimedFeedback(before: line) {
      tallies.orphans[f.type] += 1
      try output.side(.orphan(type: f.type, key: f.key, time: f.time))
    }
    nextOrphan = try store.earliestUnclaimedFeedback() ?? .max
  }
}

public enum LabelingError: Error, CustomStringConvertible {
  case corruptState(String)
  public var description: String {
    switch self {
    case .corruptState(let what): "state store holds unreadable data: \(what)"
    }
  }
}

/// Shortest text that reads back as the same Double; integral values without a fraction.
func formatNumber(_ value: Double) -> String {
  if value == value.rounded(), abs(value) < 1e15 {
    return String(Int64(value))
  }
  return "\(value)"
}
