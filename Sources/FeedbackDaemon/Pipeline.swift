import Dataset
import FeedbackConfig
import Foundation
import GRDB
import Labeling
import LogFormats
import LogTail
import Logging
import Threads

/// Per-source counts for the summary, `status` and metrics.
struct SourceCounters: Sendable {
  var filesRead = 0
  var filesSkipped = 0
  var filesQuarantined = 0
  var truncations = 0
  var lines = 0
  var bytes: Int64 = 0
  var rejects: [String: Int] = [:]
  /// Valid lines that hold no event (CloudWatch control messages, bulk deletes), by reason.
  var skipped: [String: Int] = [:]
}

/// The engine wired to its inputs and outputs: decode → classify → join → write, plus the
/// checkpoint that commits all of it at once. Replay and the daemon share it.
final class Pipeline: EngineOutput {
  let config: FeedbackConfig.Configuration
  let rules: Rules
  let store: SQLiteStateStore
  let state: MemoryStateStore
  let logger: Logger
  private(set) var engine: LabelEngine!
  /// `engine`, for the call made for every line without retaining it (a `var` is retained
  /// for each call).
  private var unretainedEngine: Unmanaged<LabelEngine>!
  /// Per dataset: its writer, on a thread of its own.
  let writers: [BackgroundWriter]
  /// `writers`, for the call made for every row.
  private let unretainedWriters: [Unmanaged<BackgroundWriter>]
  let decoders: [LineDecoder]
  /// Per source: its configured format, nil for `auto` (detected per file).
  let formats: [LogFormat?]
  /// Per file (`source/fingerprint`) whose saved position was held back to the start of an
  /// incomplete event: the offset up to which its lines were processed (see `SourceFeed`).
  var processedTo: [String: Int64] = [:]
  /// Per source: its counters, with the lines and bytes counted since they were last set.
  /// (Set, they take those in: a caller reads, changes and writes back.)
  var sourceCounters: [SourceCounters] {
    get {
      var all = counters
      for i in all.indices {
        all[i].lines += perSource.tallies[i].lines
        all[i].bytes += perSource.tallies[i].bytes
      }
      return all
    }
    set {
      counters = newValue
      perSource.tallies.update(repeating: LineTally(), count: counters.count)
    }
  }
  private var counters: [SourceCounters]
  /// Per source: lines and bytes read, counted for every line here rather than in
  /// `counters` (each count through the array checked that it was not shared).
  struct LineTally {
    var lines = 0
    var bytes: Int64 = 0
  }
  /// Per source, in plain memory: the line tallies and the reused scan result (`scanned`).
  private let perSource: PerSource
  private final class PerSource {
    let count: Int
    let tallies: UnsafeMutablePointer<LineTally>
    let scanned: UnsafeMutablePointer<ScannedEvent>
    init(scanned events: [ScannedEvent]) {
      count = events.count
      tallies = .allocate(capacity: max(1, count))
      tallies.initialize(repeating: LineTally(), count: count)
      scanned = .allocate(capacity: max(1, count))
      scanned.initialize(from: events, count: count)
    }
    deinit {
      tallies.deallocate()
      scanned.deinitialize(count: count)
      scanned.deallocate()
    }
  }
  /// `perSource`'s pointers, read for every line without going through the object.
  private let tallies: UnsafeMutablePointer<LineTally>
  private let scanned: UnsafeMutablePointer<ScannedEvent>
  private let rejects: AppendLog
  private let orphans: AppendLog
  private let late: AppendLog
  /// The configured monitors; per dataset, the indices of its monitors.
  let monitors: [DatasetMonitor]
  private let monitorsOfDataset: [[Int]]
  /// What segments' age is measured by: replay rolls them by event time (the watermark), so
  /// that file names and boundaries are deterministic; the daemon by wall time.
  enum AgeClock {
    case zero
    case watermark
    case wall
  }

  var ageClockKind = AgeClock.zero
  /// Whether each row's label delays go to the `feedbackd_label_delay_seconds` histogram.
  /// Off in a replay, which has no metrics endpoint (its recorders are no-ops, still called
  /// for every row with feedback: about 90 instructions a row).
  var recordsRowMetrics = true
  var linesSinceCommit = 0
  private var touchedFiles: [String: FileRecord] = [:]
  let metrics: DaemonMetrics
  private var record: [UInt8] = []
  /// Per source: what its lines are scanned for (the rules' fields, then the time field).
  let selectors: [FieldSelector]
  /// Whether the line formats' lines are scanned ahead, on each file's read-ahead thread
  /// (`SourceFeed`); off only to compare with scanning in line.
  var scanAhead = true
  /// Lines whose scan was done ahead (the rest were scanned here), for tests.
  private(set) var linesScannedAhead = 0
  /// Per source: how often and how long this thread waited for its files' read-ahead
  /// threads (kept across reloads of the source).
  let inputWaits: [WaitTally]
  /// `state.stateBytes` after the last commit evicted what it could.
  private var stateBytesAfterCommit = 0
  /// The largest `state.stateBytes` a commit saw (before evicting).
  private(set) var peakStateBytes = 0

  /// Event time after the watermark within which state coming due is not evicted for the
  /// byte budget (it would be read straight back; see `MemoryStateStore.evict`), if it fits
  /// in one and a half times `state_memory`: a live job's windows of up to about a minute.
  static let keepDueWithin: Int64 = 60 * 1_000_000_000

  /// The join state outgrew `state_memory` (and grew by a quarter of it since the last
  /// commit, so state that cannot be evicted, such as orphan candidates, does not force a
  /// commit per read): commit now, so it can be evicted. It depends on the input alone.
  var stateOverBudget: Bool {
    let bytes = state.stateBytes
    return bytes >= config.stateMemory && bytes >= stateBytesAfterCommit + config.stateMemory / 4
  }

  init(config: FeedbackConfig.Configuration, db: Database, logger: Logger) throws {
    // Replay and daemon both run a pipeline: memory they free must go back to the system.
    MallocTuning.apply()
    self.config = config
    self.logger = logger
    rules = try RulesBuilder.rules(from: config)
    store = SQLiteStateStore(db: db)
    state = try MemoryStateStore(cold: store, maxInMemory: config.maxInMemory, maxBytes: config.stateMemory)
    formats = config.sources.map { LogFormat(rawValue: $0.format) }
    decoders = config.sources.map {
      LineDecoder(format: LogFormat(rawValue: $0.format) ?? .json, timeField: $0.timeField)
    }
    counters = Array(repeating: SourceCounters(), count: config.sources.count)
    inputWaits = config.sources.map { _ in WaitTally() }
    let rulesPaths = rules.fieldPaths
    selectors = decoders.map { $0.selector(for: rulesPaths) }
    perSource = PerSource(
      scanned: selectors.map {
        ScannedEvent(
          time: 0, json: UnsafeRawBufferPointer(start: nil, count: 0), fields: ScannedFields(count: $0.paths.count))
      })
    tallies = perSource.tallies
    scanned = perSource.scanned
    metrics = DaemonMetrics(
      rules: rules, sourceNames: config.sources.map(\.name), datasetNames: config.datasets.map(\.name))

    let checkpoint = try store.meta("checkpoint").map { try JSONDecoder().decode(Checkpoint.self, from: $0) }
    processedTo = checkpoint?.processedTo ?? [:]
    rejects = try AppendLog(
      directory: config.stateDir + "/rejects", baseName: "rejects", committed: checkpoint?.sideLogs["rejects"])
    orphans = try AppendLog(
      directory: config.stateDir + "/side/orphans", baseName: "orphans", committed: checkpoint?.sideLogs["orphans"])
    late = try AppendLog(
      directory: config.stateDir + "/side/late", baseName: "late", committed: checkpoint?.sideLogs["late"])
    var monitors: [DatasetMonitor] = []
    var monitorsOfDataset = Array(repeating: [Int](), count: config.datasets.count)
    for monitor in config.monitors {
      let d = config.datasets.firstIndex { $0.name == monitor.dataset }!
      monitorsOfDataset[d].append(monitors.count)
      monitors.append(
        try DatasetMonitor(
          config: monitor, dataset: d, datasetConfig: config.datasets[d], closeLag: rules.datasetMaxWindow[d],
          stateDir: config.stateDir, store: store, sideLogs: checkpoint?.sideLogs ?? [:], logger: logger))
      metrics.registerMonitor(monitor.name)
    }
    self.monitors = monitors
    self.monitorsOfDataset = monitorsOfDataset
    var datasetWriters: [DatasetWriter] = []
    for (i, dataset) in config.datasets.enumerated() {
      let layout = RulesBuilder.layout(for: dataset, index: i, rules: rules, config: config)
      let committed = checkpoint?.datasets[dataset.name] ?? DatasetCheckpoint()
      datasetWriters.append(try DatasetWriter(layout: layout, recovering: committed))
    }
    // Threads start only once nothing before can fail; `deinit` stops them.
    writers = datasetWriters.map(BackgroundWriter.init)
    unretainedWriters = writers.map { .passUnretained($0) }

    engine = try LabelEngine(rules: rules, store: state, output: self, sources: config.sources.count)
    unretainedEngine = .passUnretained(engine)
    if let checkpoint {
      engine.restore(
        seq: checkpoint.seq, watermark: checkpoint.watermark,
        sourceMaxTime: config.sources.map { checkpoint.sourceMaxTime[$0.name] })
    }
    engine.checkpointHook = { [unowned self] in
      if isBetweenLines || lineInFlight != nil, stateOverBudget { try commit() }
    }
    if checkpoint != nil { try betweenLines { try $0.resume() } }
  }

  deinit { close() }

  // MARK: Lines

  /// Decodes one line and hands the event to the engine; bad lines are counted and kept.
  /// `ahead` is the line's scan, done ahead on its file's read-ahead thread (`LineScanAhead`),
  /// if it was; otherwise the line is scanned here. Both give the same result.
  func handle(
    line: UnsafeRawBufferPointer, source: Int, file: String, offset: Int64, ahead: ScannedLine? = nil
  ) throws {
    precondition(source >= 0 && source < perSource.count, "no such source")
    tallies[source].lines &+= 1
    tallies[source].bytes &+= Int64(line.count &+ 1)
    linesSinceCommit += 1
    let rejected: RejectReason?
    var matched: Rules.EventClass?
    var keyHash: UInt64?
    var aheadLineHash: UInt64?
    var ignoredTime: Int64?
    if let ahead {
      // This feed's scanner is a `LineScanAhead`: its batches are `LineScanAhead.Batch`.
      rejected = ahead.withBatch(as: LineScanAhead.Batch.self) { batch in
        let reason: RejectReason?
        let digest = batch.digest(ahead.index)
        if digest.0 == .ignored {
          // A rejected line's digest says `.ignored` too. An event that matches no rule
          // needs only its time: its fields are not copied out.
          (reason, ignoredTime) = batch.outcome(ahead.index)
        } else {
          reason = batch.load(ahead.index, line: line, into: &scanned[source])
          if reason == nil { (matched, keyHash, aheadLineHash) = digest }
        }
        // What the lines a few ahead will read, fetched while this line and those between are
        // processed: their scan results, their keys' buckets in the key table, and (closer)
        // their entries.
        batch.prefetchAhead(of: ahead.index, state: state)
        return reason
      }
      linesScannedAhead += 1
    } else {
      rejected = decoders[source].scan(line, selector: selectors[source], into: &scanned[source])
    }
    if let reason = rejected {
      reject(reason.rawValue, source: source, file: file, offset: offset, line: line)
    } else if let time = ignoredTime {
      try unretainedEngine._withUnsafeGuaranteedRef { try $0.processIgnored(time: time, source: source) }
    } else {
      // In place (`inout`): passing the event by value copied it, and retained its slots.
      try unretainedEngine._withUnsafeGuaranteedRef {
        try $0.process(
          event: &scanned[source], matched: matched, keyHash: keyHash, source: source,
          lineHash: aheadLineHash ?? LogTail.lineHash(line))
      }
    }
  }

  /// Lines passed over on the read-ahead thread (`LineScanAhead`: events that match no rule,
  /// of which only the time matters): counted as lines and as ignored events, and their
  /// latest time read, as `handle(line:…)` does with each of them.
  func handle(passed lines: PassedLines, source: Int) throws {
    precondition(source >= 0 && source < perSource.count, "no such source")
    tallies[source].lines &+= lines.count
    tallies[source].bytes &+= lines.bytes
    linesSinceCommit += lines.count
    linesScannedAhead += lines.count
    try unretainedEngine._withUnsafeGuaranteedRef {
      try $0.processIgnored(latest: lines.latest, source: source, count: lines.count)
    }
  }

  /// How many lines (of those handed out) ahead of the one processed what was found ahead is
  /// prefetched: farther than the keys, whose hashes it holds.
  static let linePrefetchDistance = 5
  /// How many lines (of those handed out) ahead of the one processed the key table is
  /// prefetched for.
  static let keyPrefetchDistance = 3
  /// How many lines (of those handed out) ahead of the one processed a feedback's entry is
  /// prefetched (its bucket loaded by then).
  static let entryPrefetchDistance = 2

  /// Reads one line through a file's `EventReader` (the wrapper formats, and `auto`): each of
  /// its events goes to the engine, bad ones are counted and kept. With `replaying`, the line
  /// was processed before (its file is re-read from the start of an incomplete event): it only
  /// rebuilds the reader's state.
  func handle(
    line: UnsafeRawBufferPointer, reader: EventReader, source: Int, file: String, offset: Int64, replaying: Bool
  ) throws {
    guard !replaying else {
      reader.read(line, offset: offset) { _, _ in }
      return
    }
    tallies[source].lines &+= 1
    tallies[source].bytes &+= Int64(line.count &+ 1)
    linesSinceCommit += 1
    try reader.read(line, offset: offset) { outcome, event in
      switch outcome {
      case .event(let record):
        try engine.process(event, source: source, lineHash: Self.eventHash(record, time: event.time))
      case .rejected(let reason, let member, let text):
        reject(reason.rawValue, source: source, file: file, offset: offset, line: text, member: member)
      case .skipped(let reason):
        counters[source].skipped[reason.rawValue, default: 0] += 1
      case .held:
        break
      }
    }
  }

  /// Identical application lines at the same time are one event read twice (DESIGN.md §4.3).
  static func eventHash(_ record: UnsafeRawBufferPointer, time: Int64) -> UInt64 {
    LogTail.lineHash(record) ^ (UInt64(bitPattern: time) &* 0x9E37_79B9_7F4A_7C15)
  }

  /// A file ended for good with events still incomplete: they are rejected.
  func handleUnfinished(_ reader: EventReader, source: Int, file: String) {
    for (reason, offset) in reader.finish() {
      reject(reason.rawValue, source: source, file: file, offset: offset, line: nil)
    }
  }

  func handleTooLong(source: Int, file: String, offset: Int64, end: Int64) {
    tallies[source].lines &+= 1
    tallies[source].bytes &+= end - offset
    linesSinceCommit += 1
    reject("line_too_long", source: source, file: file, offset: offset, line: nil, length: end - offset)
  }

  private func reject(
    _ reason: String, source: Int, file: String, offset: Int64, line: UnsafeRawBufferPointer?, length: Int64? = nil,
    member: Int? = nil
  ) {
    counters[source].rejects[reason, default: 0] += 1
    record.removeAll(keepingCapacity: true)
    Self.writeReject(
      source: config.sources[source].name, file: file, offset: offset, reason: reason, member: member, line: line,
      length: length, to: &record)
    rejects.append(record)
  }

  /// A reject record: `{"source","file","offset","reason"[,"member"][,"line"][,"length"]}`,
  /// the line's first 1024 bytes as text (bytes that are not UTF-8 become U+FFFD). Written
  /// straight into `out`: built as a `JSONValue` first, each record took about 7,000
  /// instructions, 70 per line of a log with 1% bad lines.
  static func writeReject(
    source: String, file: String, offset: Int64, reason: String, member: Int?, line: UnsafeRawBufferPointer?,
    length: Int64?, to out: inout [UInt8]
  ) {
    func key(_ text: StaticString) {
      out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }
    // Digits from the end of a small buffer: `String(value)` took about 700 instructions.
    func number(_ value: Int64) {
      withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
        var rest = value.magnitude
        var at = digits.count
        repeat {
          at -= 1
          digits[at] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
          rest /= 10
        } while rest != 0
        if value < 0 { out.append(UInt8(ascii: "-")) }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: digits[at...]))
      }
    }
    key("{\"source\":")
    JSONValue.writeString(source, to: &out)
    key(",\"file\":")
    JSONValue.writeString(file, to: &out)
    key(",\"offset\":")
    number(offset)
    key(",\"reason\":")
    JSONValue.writeString(reason, to: &out)
    if let member {
      key(",\"member\":")
      number(Int64(member))
    }
    if let line {
      key(",\"line\":")
      let kept = UnsafeRawBufferPointer(rebasing: line.prefix(1024))
      if Self.isASCII(kept) {
        JSONValue.writeString(bytes: kept, to: &out)
      } else {
        JSONValue.writeString(String(decoding: kept, as: UTF8.self), to: &out)
      }
    }
    if let length {
      key(",\"length\":")
      number(length)
    }
    out.append(UInt8(ascii: "}"))
  }

  /// Whether every byte is below 0x80, eight at a time.
  static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
    guard let base = bytes.baseAddress else { return true }
    var at = 0
    while at &+ 8 <= bytes.count {
      if base.loadUnaligned(fromByteOffset: at, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
      at &+= 8
    }
    while at < bytes.count {
      if base.load(fromByteOffset: at, as: UInt8.self) >= 0x80 { return false }
      at &+= 1
    }
    return true
  }

  /// The age clock's value now (a switch rather than a closure: it is read for every row).
  func ageClock() -> Int64 {
    switch ageClockKind {
    case .zero: return 0
    case .watermark: return engine.watermark
    case .wall: return LiveRunner.wallNow()
    }
  }

  // MARK: EngineOutput

  /// The engine's rows: their bytes are copied for the writer thread, and a `LabeledRow` is
  /// made only for a dataset with monitors.
  func write(parts row: RowParts) throws {
    // Unretained: `writers[d].append` retained the writer for each row.
    unretainedWriters[row.dataset]._withUnsafeGuaranteedRef { $0.append(row, ageClock: ageClock()) }
    if recordsRowMetrics { metrics.recordRow(row) }
    if !monitors.isEmpty, !monitorsOfDataset[row.dataset].isEmpty {
      let labeled = row.labeledRow
      for m in monitorsOfDataset[row.dataset] { monitors[m].observe(labeled) }
    }
  }

  func side(_ sideRecord: SideRecord) throws {
    var members: [JSONMember]
    let log: AppendLog
    switch sideRecord {
    case .orphan(let type, let key, let time):
      log = orphans
      members = [
        .init(key: "kind", value: .string("orphan")),
        .init(key: "type", value: .string(rules.feedbackTypes[type].name)),
        .init(key: "key", value: .string(key)),
        .init(key: "time", value: .string(Timestamp.format(time, fractionDigits: 3))),
      ]
    case .lateFeedback(let type, let key, let time, let predictedAt):
      log = late
      members = [
        .init(key: "kind", value: .string("feedback")),
        .init(key: "type", value: .string(rules.feedbackTypes[type].name)),
        .init(key: "key", value: .string(key)),
        .init(key: "time", value: .string(Timestamp.format(time, fractionDigits: 3))),
        .init(key: "predicted_at", value: .string(Timestamp.format(predictedAt, fractionDigits: 3))),
      ]
    case .latePrediction(let key, let time):
      log = late
      members = [
        .init(key: "kind", value: .string("prediction")),
        .init(key: "key", value: .string(key)),
        .init(key: "time", value: .string(Timestamp.format(time, fractionDigits: 3))),
      ]
    }
    record.removeAll(keepingCapacity: true)
    JSONValue.object(members).write(to: &record)
    log.append(record)
  }

  // MARK: Files

  func fileRecord(source: Int, fingerprint: Fingerprint) throws -> FileRecord? {
    let name = config.sources[source].name
    if let touched = touchedFiles[name + "/" + fingerprint.description] { return touched }
    return try store.fileRecord(source: name, fingerprint: fingerprint.description)
  }

  func updateFile(_ record: FileRecord) {
    touchedFiles[record.source + "/" + record.fingerprint] = record
  }

  /// Seals every open segment (the end of a replay, shutdown); the next commit publishes them.
  func sealAll() throws {
    for writer in writers { try writer.sync { try $0.sealAll() } }
  }

  /// Stops the writer threads; call once, when the pipeline is done (also after an error).
  /// A background write still running is waited for (its error dropped: the transaction is
  /// rolled back after this), so nothing uses the connection behind the caller's back.
  func close() {
    try? store.join()
    for writer in writers { writer.stop() }
  }

  // MARK: Checkpoint

  /// Lets segments roll by age and partitions complete; called between batches of lines.
  /// Ends event time (replay `--flush`): every pending row is written. The writers learn it
  /// first, so each seals a partition's segment as soon as the rows move past it instead of
  /// keeping every partition's buffer and compressor until the end.
  func flush() throws {
    for writer in writers { writer.advance(watermark: .max, ageClock: .max) }
    try betweenLines { try $0.flush() }
  }

  /// Runs engine calls made between lines, letting the rows they write be interrupted by
  /// commits when the state outgrows its budget (`LabelEngine.checkpointHook`): read positions
  /// are exact there. A restart resumes the interrupted settle (`LabelEngine.resume`).
  func betweenLines(_ body: (LabelEngine) throws -> Void) throws {
    isBetweenLines = true
    defer { isBetweenLines = false }
    try body(engine)
  }

  /// Where a commit may be made in the middle of a settle: between lines, or inside the line
  /// `lineInFlight` (line formats: a wrapper format's reader may hold parts of events).
  private var isBetweenLines = false
  /// The line (of a line format) whose event is in the engine: a commit in the middle of the
  /// settle it started saves its file's position at the line's start (the event is not
  /// processed yet), so a restart reads the line again.
  var lineInFlight: LineInFlight? { isLineInFlight ? inFlight : nil }
  /// Set around each line of a line format (`SourceFeed.line`); `inFlight` is only rewritten
  /// when the file changes, so a line costs no reference counting on the path.
  var isLineInFlight = false
  var inFlight = LineInFlight(source: -1, fingerprint: Fingerprint(value: 0), path: "", offset: 0)

  struct LineInFlight {
    var source: Int
    var fingerprint: Fingerprint
    var path: String
    var offset: Int64
  }

  func advanceOutputs() throws {
    let clock = ageClock()
    for writer in writers { writer.advance(watermark: engine.watermark, ageClock: clock) }
    for monitor in monitors { monitor.advance(watermark: engine.watermark) }
  }

  /// Commits read positions, join state, segment lengths and side logs in one transaction,
  /// after the bytes they describe are on disk; then publishes what the commit covered.
  ///
  /// `inBackground` (replay's commits between batches of lines): the journal's SQL runs on a
  /// thread of its own, and each dataset's writer thread cuts its segments where the rows
  /// handed over so far end (`BackgroundWriter.requestCommit`) and has the disk sync them,
  /// while the pipeline goes on with the next lines; `finishCommit` records the datasets'
  /// state and commits the transaction once all of that is done, then the writer threads
  /// publish (renames, directory syncs, `_SUCCESS`) what it covered, also while the pipeline
  /// goes on. A failure is thrown by whatever next uses the state file, or by `finishCommit`.
  /// When the state must be evicted after the commit (eviction needs it complete) the SQL
  /// runs here, and the commit waits for the writers; only the publishing is left to them.
  /// On the benchmark the mid-run commit took 0.15-0.2 s of the pipeline thread, most of it
  /// SQLite inserting 40-60k rows, while the reading thread, its chunks ahead all ready, had
  /// nothing to do; then 30-60 ms waiting for the writer to empty its queue and sync the open
  /// segments, with a core idle.
  func commit(inBackground: Bool = false) throws {
    try finishCommit(wait: true)
    let started = ContinuousClock.now
    try advanceOutputs()
    var datasets: [String: DatasetCheckpoint] = [:]
    if inBackground {
      for writer in writers { writer.requestCommit() }
    } else {
      for (writer, dataset) in zip(writers, config.datasets) {
        datasets[dataset.name] = try writer.sync { try $0.prepareCommit() }
      }
    }
    var sideLogs = [
      "rejects": try rejects.prepareCommit(), "orphans": try orphans.prepareCommit(),
      "late": try late.prepareCommit(),
    ]
    for monitor in monitors {
      sideLogs.merge(try monitor.prepareCommit(store: store)) { _, new in new }
    }
    var checkpoint = Checkpoint(
      seq: engine.seq, watermark: engine.watermark,
      sourceMaxTime: Dictionary(
        uniqueKeysWithValues: zip(config.sources, engine.sourceMaxTime).compactMap { source, time in
          time.map { (source.name, $0) }
        }),
      datasets: datasets,
      sideLogs: sideLogs,
      committedAt: LiveRunner.wallNow(), processedTo: processedTo.isEmpty ? nil : processedTo)
    if let line = lineInFlight {
      updateFile(
        FileRecord(
          source: config.sources[line.source].name, fingerprint: line.fingerprint.description, path: line.path,
          offset: line.offset, finished: false, quarantined: nil))
    }
    for record in touchedFiles.values { try store.saveFile(record) }
    touchedFiles = [:]
    state.pruneFinished(expiredBy: engine.watermark)
    let journal = state.takeJournal()
    peakStateBytes = max(peakStateBytes, state.stateBytes)
    let watermark = engine.watermark
    let background = inBackground && !state.wouldEvict
    if background {
      try store.applyInBackground(journal, pruneFinishedBy: watermark)
    } else {
      if inBackground { checkpoint.datasets = try preparedDatasetStates(wait: true)! }
      try store.setMeta("checkpoint", try JSONEncoder().encode(checkpoint))
      try store.apply(journal, pruneFinishedBy: watermark)
      try store.commitTransaction()
    }
    // In the background case this only compacts (`wouldEvict` was false).
    try state.evict(keepingDueBefore: watermark > .max - Self.keepDueWithin ? .max : watermark + Self.keepDueWithin)
    stateBytesAfterCommit = state.stateBytes
    linesSinceCommit = 0
    if background {
      committing = checkpoint
      recordCommit(since: started)
      return
    }
    for writer in writers {
      // Replay's: published on the writers' threads too (a failure is thrown by the next commit).
      if inBackground {
        writer.publishAfterCommit()
      } else {
        _ = try writer.sync { try $0.afterCommit() }
      }
    }
    for monitor in monitors { monitor.afterCommit(metrics: metrics) }
    recordCommit(since: started)
  }

  /// A commit made in the background, not committed yet (`commit(inBackground:)`): its
  /// checkpoint, but for the datasets' state, which their writers' threads give.
  private var committing: Checkpoint?
  /// The datasets' state at the cuts their writers were asked for (`requestCommit`), as
  /// each is taken, once durable.
  private var preparedDatasets: [String: DatasetCheckpoint] = [:]

  /// Takes the datasets' cuts not taken yet, and once all are, hands over their states (none
  /// kept); without `wait`, nil as soon as one is not ready.
  private func preparedDatasetStates(wait: Bool) throws -> [String: DatasetCheckpoint]? {
    for (writer, dataset) in zip(writers, config.datasets) where preparedDatasets[dataset.name] == nil {
      guard let cut = try writer.preparedCommit(wait: wait) else { return nil }
      preparedDatasets[dataset.name] = cut
    }
    defer { preparedDatasets = [:] }
    return preparedDatasets
  }

  /// Ends a commit made in the background once its SQL is done and the datasets' cuts are on
  /// disk: records the checkpoint, commits the transaction, and the writers' threads publish
  /// what it covered while the pipeline goes on. With `wait`, waits for all of that; without,
  /// returns at once if any of it is not done yet. Throws what failed in it.
  func finishCommit(wait: Bool) throws {
    guard var checkpoint = committing, wait || store.backgroundWriteDone,
      let datasets = try preparedDatasetStates(wait: wait)
    else { return }
    committing = nil
    checkpoint.datasets = datasets
    try store.setMeta("checkpoint", try JSONEncoder().encode(checkpoint))
    try store.commitTransaction()
    for writer in writers { writer.publishAfterCommit() }
    for monitor in monitors { monitor.afterCommit(metrics: metrics) }
  }

  private func recordCommit(since started: ContinuousClock.Instant) {
    let took = ContinuousClock.now - started
    let nanoseconds = took.components.seconds * 1_000_000_000 + took.components.attoseconds / 1_000_000_000
    metrics.recordCommit(nanoseconds: nanoseconds)
    commits.count += 1
    let seconds = Double(nanoseconds) / 1e9
    commits.seconds += seconds
    commits.longest = max(commits.longest, seconds)
    metrics.publish(
      sources: sourceCounters, engine: engine.counters, pendingPredictions: state.pendingPredictionCount(),
      watermarkNanos: engine.watermark, now: LiveRunner.wallNow())
    metrics.recordWaits([waitedForInput.seconds, waitedForWriters.seconds])
  }

  /// Checkpoints committed, their time in all and the longest's (the engine waits for them).
  private(set) var commits: (count: Int, seconds: Double, longest: Double) = (0, 0, 0)

  /// How often and how long this thread waited for its files' read-ahead threads, all sources.
  var waitedForInput: (count: Int, seconds: Double) {
    inputWaits.reduce((0, 0.0)) { ($0.0 + $1.count, $0.1 + $1.seconds) }
  }

  /// How often and how long this thread waited for the dataset writers' threads.
  var waitedForWriters: (count: Int, seconds: Double) {
    writers.reduce((0, 0.0)) { ($0.0 + $1.waits.count, $0.1 + $1.waits.seconds) }
  }
}

/// Scans a line-format source's lines on each file's read-ahead thread: `Pipeline.handle`
/// loads the results instead of scanning the lines again.
struct LineScanAhead: LineScanner {
  let decoder: LineDecoder
  let selector: FieldSelector
  /// The rules: lines are matched to them ahead too (`Rules.eventClass` only reads).
  let rules: Rules

  final class Batch: LineScanBatch {
    /// The batch owns `owner`; `load` calls it through `unretained` (a call through a stored
    /// reference, `unowned(unsafe)` included, retains it for the call).
    private let owner: ScannedLines
    private let unretained: Unmanaged<ScannedLines>
    /// Keeps the rules `matcher` reads alive.
    private let rules: Rules
    private let matcher: Rules.Matcher
    /// `ScannedLines.load` without retaining the lines.
    @inline(__always)
    func load(_ index: Int, line: UnsafeRawBufferPointer, into event: inout ScannedEvent) -> RejectReason? {
      unretained._withUnsafeGuaranteedRef { $0.load(index, line: line, into: &event) }
    }
    /// `ScannedLines.outcome` without retaining the lines.
    @inline(__always)
    func outcome(_ index: Int) -> (reason: RejectReason?, time: Int64) {
      unretained._withUnsafeGuaranteedRef { $0.outcome(index) }
    }
    /// What was found ahead about line `index`'s event (the line was not rejected): the rule
    /// it matches, as `Rules.eventClass` gave it, its join key's hash under the key table's
    /// seed, if it has a key, and the line's hash (`LogTail.lineHash`) if it is feedback.
    @inline(__always)
    func digest(_ index: Int) -> (Rules.EventClass, UInt64?, UInt64?) {
      let tag = unretained._withUnsafeGuaranteedRef { $0.tag(index) }
      return (
        Rules.EventClass(code: UInt32(truncatingIfNeeded: tag.0 & 0xFF)), Self.keyHash(tag),
        tag.0 & Self.hasLineHash == 0 ? nil : tag.2
      )
    }
    /// `ScannedLines.prefetch`.
    @inline(__always)
    func prefetch(_ index: Int) { unretained._withUnsafeGuaranteedRef { $0.prefetch(index) } }

    /// The lines of the batch that match a rule (handed out: `append` returned no time; the
    /// rejected ones, also handed out, are not listed), in order, one word each: the line's
    /// index from bit `PrefetchWindow.indexShift` on; `PrefetchWindow.hasKey` set when it has a
    /// key, `PrefetchWindow.isFeedback` when it is feedback; the low 32 bits of the key's hash
    /// (what the key table indexes by).
    /// Written on the read-ahead thread with the batch; the pipeline thread walks it to ask
    /// for what the lines a few ahead will read without touching the lines passed over.
    private var handed: UnsafeMutablePointer<UInt64>
    private var handedCount = 0
    private var handedCapacity = 1024
    /// Where the lines handed out are in `handed`, for `prefetchAhead`.
    private var window = PrefetchWindow()

    deinit { handed.deallocate() }

    /// `handed`'s words (for tests).
    var handedWords: [UInt64] { Array(UnsafeBufferPointer(start: handed, count: handedCount)) }

    @inline(__always)
    private func noteHanded(index: Int, tag: ScannedLines.Tag) {
      if handedCount == handedCapacity {
        OwnedBuffer.grow(&handed, count: handedCount, capacity: &handedCapacity)
      }
      // `PrefetchWindow.hasKey` and `isFeedback` are the tag's `hasKeyHash` and `hasLineHash`
      // (feedback) moved up; the hash is 0 without a key.
      handed[handedCount] =
        UInt64(index) << PrefetchWindow.indexShift | (tag.0 & (Self.hasKeyHash | Self.hasLineHash)) << Self.tagToWord
        | tag.1 & 0xFFFF_FFFF
      handedCount += 1
    }

    /// Asks for what the lines handed out after line `index` (the one handed out now) will
    /// read: the scan results of the one `Pipeline.linePrefetchDistance` places after it in
    /// `handed`, the key table's bucket of the one `keyPrefetchDistance` after it, and the entry
    /// of the one `entryPrefetchDistance` after it (each line's once, whatever lines are passed
    /// over between).
    @inline(__always)
    func prefetchAhead(of index: Int, state: MemoryStateStore) {
      window.advance(
        to: index,
        distances: (Pipeline.linePrefetchDistance, Pipeline.keyPrefetchDistance, Pipeline.entryPrefetchDistance),
        in: UnsafePointer(handed), handedCount
      ) { kind, word in
        switch kind {
        case 0: prefetch(Int(word &>> PrefetchWindow.indexShift))
        case 1: if word & PrefetchWindow.hasKey != 0 { state.prefetchKey(hash: UInt32(truncatingIfNeeded: word)) }
        default:
          // Only feedback looks up a key that is there: a prediction's key is mostly new (its
          // bucket, read here to find the entry, was a wait for nothing).
          if word & PrefetchWindow.keyedFeedback == PrefetchWindow.keyedFeedback {
            state.prefetchEntry(hash: UInt32(truncatingIfNeeded: word))
          }
        }
      }
    }

    @inline(__always)
    private static func keyHash(_ tag: ScannedLines.Tag) -> UInt64? { tag.0 & hasKeyHash == 0 ? nil : tag.1 }
    /// A line's tag: its event class's code in the low 8 bits of the first word; when this
    /// bit of it is set, its key's hash in the second; ...
    static let hasKeyHash: UInt64 = 1 << 8
    /// ... and when this one is, the line's hash in the third (feedback only: the engine hashes
    /// no other line, and the read-ahead thread has the line's bytes at hand).
    static let hasLineHash: UInt64 = 1 << 9
    /// How far `noteHanded` moves the two bits up, into `PrefetchWindow.hasKey` and `isFeedback`.
    static let tagToWord: UInt64 = 24
    private let keyHashSeed: UInt64
    init(_ lines: ScannedLines, rules: Rules, keyHashSeed: UInt64) {
      owner = lines
      unretained = .passUnretained(lines)
      self.rules = rules
      matcher = rules.matcher
      classSlots = matcher.classSlots
      self.keyHashSeed = keyHashSeed
      handed = .allocate(capacity: handedCapacity)
    }
    func removeAll() {
      owner.removeAll()
      handedCount = 0
      window = PrefetchWindow()
    }
    /// The event class of lines of a shape (`LineShapes.lastFit`) whose `where:` fields are
    /// all among its constants: the same for every line of it. Per shape id modulo the size;
    /// an id of 0 is no shape. (Matching a line took about 160 instructions.)
    private var classOfShape = [(id: Int, eventClass: Rules.EventClass)](
      repeating: (0, .ignored), count: 16)
    private let classSlots: UInt64?

    /// The rule `event` matches, from `classOfShape` when its shape tells.
    @inline(__always)
    private func eventClass(_ event: inout ScannedEvent) -> Rules.EventClass {
      let fit = event.fields.shapes.lastFit
      guard fit.id != 0, let classSlots, fit.sameSlots & classSlots == classSlots else {
        return matcher.eventClass(event)
      }
      let i = fit.id & (classOfShape.count - 1)
      if classOfShape[i].id == fit.id { return classOfShape[i].eventClass }
      let matched = matcher.eventClass(event)
      classOfShape[i] = (fit.id, matched)
      return matched
    }

    /// A line whose event matches no rule is passed over: the pipeline needs only its time.
    func append(_ line: UnsafeRawBufferPointer) -> Int64? {
      let matcher = matcher
      let seed = keyHashSeed
      // Set by the digest, which is called only for a line that is not rejected.
      var passTime: Int64?
      owner.append(line) { event, line in
        let matched = eventClass(&event)
        var tag: ScannedLines.Tag = (UInt64(matched.code), 0, 0)
        // An ignored line has no key: not even the call, which copies the event to the stack
        // first (192 bytes; 36 instructions a line on the read-ahead threads, callgrind).
        if matched != .ignored, let hash = matcher.keyHash(event, matched, seed: seed) {
          tag.0 |= Self.hasKeyHash
          tag.1 = hash
        }
        if case .feedback = matched {
          tag.0 |= Self.hasLineHash
          tag.2 = LogTail.lineHash(line)
        }
        // The line's record is appended after this: its index is the count so far.
        if matched == .ignored {
          passTime = event.time
        } else {
          noteHanded(index: unretained._withUnsafeGuaranteedRef { $0.count }, tag: tag)
        }
        return tag
      }
      return passTime
    }
  }

  /// The seed of the pipeline's key table's hash: lines' keys are hashed ahead, for prefetching.
  let keyHashSeed: UInt64

  func makeBatch() -> any LineScanBatch {
    Batch(ScannedLines(decoder: decoder, selector: selector), rules: rules, keyHashSeed: keyHashSeed)
  }
}

/// Which lines of a read-ahead batch to ask the CPU for as lines are handed out: for each of
/// three distances `d`, the line `d` places after the one handed out now in the batch's list of
/// lines to hand out (`LineScanAhead.Batch.handed`), so that each is asked for once, `d` lines
/// handed out before it is (at the batch's first line, all up to there).
///
/// Only lines that match a rule are handed out (`LineCursor` passes over the others). Asking
/// for the line `d` ahead in the batch instead skipped every line whose line `d` before was
/// passed over: in the benchmark's log (46% of lines match no rule) about half the keys'
/// buckets were never prefetched, and their loads were among the pipeline thread's largest
/// stalls (`MemoryStateStore.ref` and `prefetchEntry(hash:)` in `perf`). Reading every line
/// of the range (its tag, for the key's hash) touched the passed-over lines' scan results,
/// written on the other core: as many stalls again. Walking the list for each distance up to
/// the line `d` ahead in the batch cost about 85 instructions a line handed out; a place in
/// the list is one load.
struct PrefetchWindow {
  /// The position in the list of the first line after the last one handed out.
  private(set) var next = 0
  private var started = false

  /// Where a word of the list holds its line's index (bits below are the line's own).
  static let indexShift: UInt64 = 34
  /// Set in a word whose line has a key; its low 32 bits are then the key's hash.
  static let hasKey: UInt64 = 1 << 32
  /// Set in a word whose line is feedback.
  static let isFeedback: UInt64 = 1 << 33
  /// Both: feedback with a key (whose entry is prefetched).
  static let keyedFeedback = hasKey | isFeedback

  /// As line `index` is handed out, calls `body(k, word)` with the word of `list` (`count` of
  /// them, each a line's index from bit `indexShift` on, in increasing order) `distances.k`
  /// places after the line's own (after where it would be, if it is not listed: a rejected
  /// line), if there is one; at the first line handed out, with every word up to it too. Each
  /// distance is at least 1.
  @inline(__always)
  mutating func advance(
    to index: Int, distances: (Int, Int, Int), in list: UnsafePointer<UInt64>, _ count: Int,
    _ body: (Int, UInt64) -> Void
  ) {
    var position = next
    while position < count && Int(list[position] &>> Self.indexShift) <= index { position &+= 1 }
    next = position
    if !started {
      started = true
      // A distance of 0 would read the word before `position` (before the list, at its start).
      assert(distances.0 > 0 && distances.1 > 0 && distances.2 > 0, "prefetch distances start at 1")
      // The words lines handed out before this one would have asked for.
      func upTo(_ kind: Int, _ distance: Int) {
        var q = position
        while q < count && q < position &+ distance &- 1 {
          body(kind, list[q])
          q &+= 1
        }
      }
      upTo(0, distances.0)
      upTo(1, distances.1)
      upTo(2, distances.2)
    }
    let last = count &- 1 &- position
    if distances.0 &- 1 <= last { body(0, list[position &+ distances.0 &- 1]) }
    if distances.1 &- 1 <= last { body(1, list[position &+ distances.1 &- 1]) }
    if distances.2 &- 1 <= last { body(2, list[position &+ distances.2 &- 1]) }
  }
}

/// What one commit records besides the join state tables.
struct Checkpoint: Codable {
  var seq: Int64
  var watermark: Int64
  var sourceMaxTime: [String: Int64]
  var datasets: [String: DatasetCheckpoint]
  var sideLogs: [String: AppendLog.Position]
  /// Wall-clock time of the commit (nanoseconds since the epoch), for `status`.
  var committedAt: Int64?
  /// `Pipeline.processedTo`; absent when no file is held back.
  var processedTo: [String: Int64]?
}
