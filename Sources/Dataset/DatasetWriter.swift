import Gzip
import Labeling
import LogFormats
import Threads

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// A segment's durable state, committed with read positions and join state.
public struct SegmentState: Sendable, Equatable, Codable {
  public var number: Int
  public var partition: String
  /// Bytes of the segment covered by the last commit.
  public var length: Int64
  /// Age clock value when the segment was opened.
  public var openedAt: Int64
  /// Sealed segments are made visible (renamed) right after the commit that covers them.
  public var sealed: Bool

  public init(number: Int, partition: String, length: Int64, openedAt: Int64, sealed: Bool) {
    self.number = number
    self.partition = partition
    self.length = length
    self.openedAt = openedAt
    self.sealed = sealed
  }
}

/// A dataset's durable state.
public struct DatasetCheckpoint: Sendable, Equatable, Codable {
  public var nextSegment: Int
  public var segments: [SegmentState]
  /// Partitions that received rows and have no `_SUCCESS` yet, with their end time.
  public var openPartitions: [String: Int64]

  public init(nextSegment: Int = 0, segments: [SegmentState] = [], openPartitions: [String: Int64] = [:]) {
    self.nextSegment = nextSegment
    self.segments = segments
    self.openPartitions = openPartitions
  }
}

/// Appends final rows to hidden in-progress segments and publishes them by fsync + rename.
///
/// The protocol with the owner: `append` rows; `advance` with the watermark and age clock;
/// `prepareCommit` (flushes and fsyncs, returns the state to commit in the same transaction as
/// read positions); after the transaction commits, `afterCommit` renames sealed segments and
/// writes `_SUCCESS` files. A crash anywhere is undone by `init(…, recovering:)`.
public final class DatasetWriter {
  public let layout: DatasetLayout
  private let rollMaxBytes: Int64
  private let encoder: RowEncoder
  /// `append(_: LabeledRow, …)`: the row as a record (see `RowRecord`).
  private let record = ByteBuffer()
  /// Sealed segments' buffer storage, kept for the next segments (grown to the flush size).
  /// Two, the largest first: around the turn of an hour two segments are open (the last
  /// hour's takes its late rows), and with one spare every hour's first segment grew a new
  /// buffer from nothing, each step past 256 KiB a fresh mapping (`MallocTuning`) faulted in
  /// page by page and unmapped again: 132 `mmap`/`munmap` pairs on the writer's thread in a
  /// replay of the benchmark.
  private let spareBuffers = (ByteBuffer(), ByteBuffer())
  /// The segment the last row went to and its partition's time range. Sealing that segment
  /// empties the range, so the segment is open (and held by `open`) while a time is in it:
  /// rows that land in it touch no reference count.
  private var lastSegment: Unmanaged<Segment>?
  private var lastStart: Int64 = .max
  private var lastEnd: Int64 = .min
  private var nextSegment: Int
  private var open: [String: Segment] = [:]
  private var openPartitions: [String: Int64]
  /// Sealed segments not yet published, in the order they were sealed.
  private var toPublish: [Segment] = []
  /// How many of `toPublish` the last `prepareCommit` covered: those `afterCommit` renames.
  /// Rows may be written between the two (a replay's commit whose SQLite work runs in the
  /// background), and a segment sealed then holds rows the commit does not cover: renamed, a
  /// crash would leave them visible and the restart would write them again.
  private var publishable = 0
  private var watermark: Int64 = .min
  public private(set) var rowsWritten = 0
  /// How many segments `prepareCommit` had to fsync (tests: sealed ones are already durable).
  public private(set) var commitSyncs = 0
  /// Syncs sealed segments on a thread of its own.
  private let syncer: SegmentSyncer
  /// Sealed segments made durable so far (tests).
  public var sealedSegmentsSynced: Int { syncer.synced }
  /// Where `prepareCommit` counts its waits for sealed segments still being synced (a
  /// `BackgroundWriter` puts its own here: the caller's waits for the dataset writer).
  public var commitWaits = WaitTally()

  final class Segment {
    let state: SegmentState
    var number: Int { state.number }
    var partition: String { state.partition }
    let openedAt: Int64
    let fd: Int32
    let path: String
    var written: Int64
    let buffer = ByteBuffer()
    var sealed = false
    /// Sealed and handed to the syncer: nothing more will be written to it.
    var durable = false
    /// Let go when the segment is sealed (zlib's state is a few hundred KiB).
    var deflater: GzipDeflater?
    var memberOpen = false

    init(state: SegmentState, path: String, fd: Int32, gzip: Bool) {
      self.state = state
      openedAt = state.openedAt
      self.path = path
      self.fd = fd
      written = state.length
      deflater = gzip ? GzipDeflater() : nil
    }

    deinit { close(fd) }
  }

  deinit { syncer.stop() }

  /// Opens a dataset, first undoing whatever a crash left after the last commit.
  /// `syncSegment` makes a sealed segment durable (tests pass a slow one).
  public init(
    layout: DatasetLayout, recovering checkpoint: DatasetCheckpoint,
    syncSegment: @escaping @Sendable (_ fd: Int32, _ path: String) throws -> Void = FileSystem.sync
  ) throws {
    syncer = SegmentSyncer(sync: syncSegment)
    self.layout = layout
    encoder = RowEncoder(layout: layout)
    rollMaxBytes = Int64(layout.rollMaxBytes)
    nextSegment = checkpoint.nextSegment
    openPartitions = checkpoint.openPartitions
    try FileSystem.makeDirectories(layout.directory)
    let schemaPath = layout.directory + "/_schema.json"
    let schema = layout.schemaJSON()
    if FileSystem.readFile(schemaPath) != schema {
      try FileSystem.writeAtomically(schemaPath, schema)
    }
    var known = Set<String>()
    for state in checkpoint.segments {
      let hidden = hiddenPath(state)
      known.insert(hidden)
      if state.sealed {
        if FileSystem.exists(hidden) {
          try FileSystem.truncate(hidden, to: state.length)
          try FileSystem.rename(hidden, visiblePath(state))
          try FileSystem.syncDirectory(FileSystem.directory(of: hidden))
        }
      } else {
        if FileSystem.exists(hidden) {
          try FileSystem.truncate(hidden, to: state.length)
        } else if state.length > 0 {
          throw FileSystemError(path: hidden, operation: "recover (committed segment missing)", code: ENOENT)
        }
        let fd = try FileSystem.openForAppend(hidden)
        open[state.partition] = Segment(state: state, path: hidden, fd: fd, gzip: layout.format == .jsonlGz)
      }
    }
    // Segments created after the last commit hold only uncommitted rows.
    for partition in partitionsOnDisk() {
      let dir = layout.directory + "/" + partition
      for name in FileSystem.list(dir) where name.hasPrefix(".part-") && name.hasSuffix(".inprogress") {
        let path = dir + "/" + name
        if !known.contains(path) { FileSystem.remove(path) }
      }
    }
  }

  private func partitionsOnDisk() -> [String] {
    var result: [String] = []
    for date in FileSystem.list(layout.directory) where date.hasPrefix("date=") {
      for hour in FileSystem.list(layout.directory + "/" + date) where hour.hasPrefix("hour=") {
        result.append(date + "/" + hour)
      }
    }
    return result
  }

  private func fileName(_ number: Int) -> String {
    "part-\(DatasetLayout.pad(number, 6)).\(layout.format.rawValue)"
  }

  private func hiddenPath(_ state: SegmentState) -> String {
    "\(layout.directory)/\(state.partition)/.\(fileName(state.number)).inprogress"
  }

  private func visiblePath(_ state: SegmentState) -> String {
    "\(layout.directory)/\(state.partition)/\(fileName(state.number))"
  }

  /// Appends a final row to the open segment of its partition.
  public func append(_ row: LabeledRow, ageClock: Int64) throws {
    record.removeAll()
    RowRecord.write(row, ageClock: ageClock, to: record)
    var p = UnsafeRawPointer(record.base)
    guard case .row(let view) = RowRecord.read(&p) else { return }
    try append(view)
  }

  /// Appends a row read from a batch (`BackgroundWriter`); its age clock is the record's.
  func append(_ row: RowView) throws {
    // Rows come in near time order: most land in the partition of the row before.
    if lastStart <= row.predictedAt, row.predictedAt < lastEnd, let last = lastSegment {
      let full = last._withUnsafeGuaranteedRef { encode(row, into: $0) }
      if full { try flushOrSeal(last.takeUnretainedValue()) }
      return
    }
    // The partition left behind is sealed at once if it is complete: after a flush told the
    // writer that event time ended, rows of many partitions come in one go, and each would
    // otherwise keep its buffer and compressor until the end.
    if let last = lastSegment, lastEnd &+ layout.maxWindow <= watermark { try seal(last.takeUnretainedValue()) }
    let ageClock = row.ageClock
    let (partition, end) = DatasetLayout.partition(of: row.predictedAt)
    let segment: Segment
    if let existing = open[partition] {
      segment = existing
    } else {
      let state = SegmentState(number: nextSegment, partition: partition, length: 0, openedAt: ageClock, sealed: false)
      nextSegment += 1
      let path = hiddenPath(state)
      try FileSystem.makeDirectories(FileSystem.directory(of: path))
      let fd = try FileSystem.openForAppend(path)
      _ = ftruncate(fd, 0)
      segment = Segment(state: state, path: path, fd: fd, gzip: layout.format == .jsonlGz)
      takeSpareBuffer(into: segment.buffer)
      segment.buffer.append(encoder.header())
      open[partition] = segment
    }
    openPartitions[partition] = end
    lastSegment = Unmanaged.passUnretained(segment)
    lastStart = end - DatasetLayout.partitionNanos
    lastEnd = end
    if encode(row, into: segment) { try flushOrSeal(segment) }
  }

  /// Encodes a row into the segment's buffer; true if the buffer is to be flushed or the
  /// segment sealed.
  @inline(__always)
  private func encode(_ row: RowView, into segment: Segment) -> Bool {
    encoder.encode(row, into: segment.buffer)
    rowsWritten += 1
    return segment.buffer.count >= 1 << 20 || segment.written + Int64(segment.buffer.count) >= rollMaxBytes
  }

  private func flushOrSeal(_ segment: Segment) throws {
    if segment.buffer.count >= 1 << 20 { try flush(segment, endMember: false) }
    if segment.written + Int64(segment.buffer.count) >= rollMaxBytes { try seal(segment) }
  }

  /// Seals segments older than `roll.max_age` and those of partitions that are complete.
  public func advance(watermark: Int64, ageClock: Int64) throws {
    self.watermark = Swift.max(self.watermark, watermark)
    for (partition, segment) in open.sorted(by: { $0.key < $1.key }) {
      let complete = (openPartitions[partition] ?? .max) &+ layout.maxWindow <= self.watermark
      if complete || ageClock &- segment.openedAt >= layout.rollMaxAge { try seal(segment) }
    }
  }

  /// Seals every open segment (shutdown, end of replay).
  public func sealAll() throws {
    for (_, segment) in open.sorted(by: { $0.key < $1.key }) { try seal(segment) }
  }

  /// Closes a segment to new rows. Its bytes are written at once and its buffer let go: sealed
  /// segments wait for the next commit to be published, and many may be sealed before it.
  private func seal(_ segment: Segment) throws {
    segment.sealed = true
    if lastSegment?.toOpaque() == Unmanaged.passUnretained(segment).toOpaque() {
      lastSegment = nil
      lastStart = .max
      lastEnd = .min
    }
    open[segment.partition] = nil
    toPublish.append(segment)
    try flush(segment, endMember: true)
    // Made durable now, on the syncer's thread, rather than all by the next commit: a replay
    // seals a segment every `roll.max_age` of event time, hundreds between two commits. The
    // commit waits for what is still being synced (`prepareCommit`).
    try syncer.submit(fd: segment.fd, path: segment.path, sealed: true)
    segment.durable = true
    segment.deflater = nil
    keepSpareBuffer(from: segment.buffer)
    segment.buffer.release()
  }

  /// The capacities of the open segments' buffers, by partition, and of the spare ones (tests).
  var bufferCapacities: (open: [String: Int], spare: [Int]) {
    (open.mapValues(\.buffer.capacity), [spareBuffers.0.capacity, spareBuffers.1.capacity])
  }

  /// Gives a new segment's (empty) buffer the largest spare storage, if larger than its own.
  private func takeSpareBuffer(into buffer: ByteBuffer) {
    guard spareBuffers.0.capacity > buffer.capacity else { return }
    buffer.swapStorage(with: spareBuffers.0)
    // The other spare moves up.
    if spareBuffers.1.capacity > spareBuffers.0.capacity { spareBuffers.0.swapStorage(with: spareBuffers.1) }
  }

  /// Keeps a sealed segment's storage as a spare if it is larger than one of them (the
  /// segment's buffer is left with the smaller storage, which it lets go).
  private func keepSpareBuffer(from buffer: ByteBuffer) {
    buffer.removeAll()
    if buffer.capacity > spareBuffers.1.capacity { buffer.swapStorage(with: spareBuffers.1) }
    if spareBuffers.1.capacity > spareBuffers.0.capacity { spareBuffers.0.swapStorage(with: spareBuffers.1) }
  }

  private func flush(_ segment: Segment, endMember: Bool) throws {
    let buffer = segment.buffer
    // The buffer is emptied even when the write fails (the next `sync` throws, nothing after
    // it is committed).
    defer { buffer.removeAll() }
    if let deflater = segment.deflater {
      var bytes: [UInt8] = []
      if !buffer.isEmpty {
        deflater.compress(buffer.bytes, into: &bytes)
        segment.memberOpen = true
      }
      if endMember && segment.memberOpen {
        deflater.finish(into: &bytes)
        segment.memberOpen = false
      }
      guard !bytes.isEmpty else { return }
      try FileSystem.writeAll(segment.fd, bytes, path: segment.path)
      segment.written += Int64(bytes.count)
    } else {
      guard !buffer.isEmpty else { return }
      try FileSystem.writeAll(segment.fd, buffer.bytes, path: segment.path)
      segment.written += Int64(buffer.count)
    }
  }

  /// Makes every appended row durable and returns the state to commit with it (segments
  /// sealed since the last commit were fsynced when sealed; the open ones are now).
  public func prepareCommit() throws -> DatasetCheckpoint {
    // Segments sealed since the last commit are durable before it records them.
    try syncer.wait(through: syncer.lastTicket, counting: commitWaits)
    return try cut(syncingOpen: { segment in try FileSystem.sync(segment.fd, path: segment.path) })
  }

  /// A commit's cut whose fsyncs are still running (`prepareDeferredCommit`).
  public struct PreparedCommit: Sendable {
    public let checkpoint: DatasetCheckpoint
    /// Durable once the syncer has synced everything submitted up to this.
    let ticket: Int
  }

  /// `prepareCommit` without waiting for the disk: the open segments' bytes are written and
  /// handed to the syncer's thread with the sealed ones still being synced, and the state is
  /// returned at once. The caller commits it only once `isDurable` says so (or after
  /// `waitUntilDurable`). Rows appended meanwhile go on into the same segments; the state
  /// records their lengths as of this call, and `afterCommit` publishes only what this call
  /// covered. A replay's commit whose SQL runs in the background uses it from the writer's
  /// thread, so the engine's thread does not wait for the writer to empty its queue and for
  /// the disk: on the benchmark that wait left a core idle for 30-60 ms.
  public func prepareDeferredCommit() throws -> PreparedCommit {
    let checkpoint = try cut(syncingOpen: { segment in
      try syncer.submit(fd: segment.fd, path: segment.path, sealed: false)
    })
    return PreparedCommit(checkpoint: checkpoint, ticket: syncer.lastTicket)
  }

  /// Whether what `prepared` records is on disk (or a sync failed: `waitUntilDurable` throws
  /// it). Any thread.
  public func isDurable(_ prepared: PreparedCommit) -> Bool { syncer.isDone(through: prepared.ticket) }

  /// Waits until what `prepared` records is on disk, counting the wait in `commitWaits`;
  /// throws the first failed sync. Any thread.
  public func waitUntilDurable(_ prepared: PreparedCommit) throws {
    try syncer.wait(through: prepared.ticket, counting: commitWaits)
  }

  /// The commit's cut: each open segment's buffer written out (a gzip member ended) and
  /// `syncOpen` called on it, then every open or sealed unpublished segment's state.
  private func cut(syncingOpen syncOpen: (Segment) throws -> Void) throws -> DatasetCheckpoint {
    var states: [SegmentState] = []
    for segment in open.values.sorted(by: { $0.number < $1.number }) + toPublish {
      if !segment.durable {
        try flush(segment, endMember: true)
        try syncOpen(segment)
        commitSyncs += 1
      }
      var state = segment.state
      state.length = segment.written
      state.sealed = segment.sealed
      states.append(state)
    }
    publishable = toPublish.count
    return DatasetCheckpoint(nextSegment: nextSegment, segments: states, openPartitions: openPartitions)
  }

  /// Publishes what the commit covered: sealed segments become visible, complete partitions
  /// get `_SUCCESS`. Returns the names of partitions completed.
  @discardableResult
  public func afterCommit() throws -> [String] {
    var directories = Set<String>()
    for segment in toPublish[..<publishable] {
      try FileSystem.rename(segment.path, visiblePath(segment.state))
      directories.insert(FileSystem.directory(of: segment.path))
    }
    toPublish.removeFirst(publishable)
    publishable = 0
    // The segments' names are durable before any `_SUCCESS` names their partition complete.
    for dir in directories.sorted() { try FileSystem.syncDirectory(dir) }
    // A partition whose segment waits for the next commit is not complete yet.
    let waiting = Set(toPublish.map(\.partition))
    var completed: [String] = []
    for (partition, end) in openPartitions.sorted(by: { $0.key < $1.key })
    where end &+ layout.maxWindow <= watermark && open[partition] == nil && !waiting.contains(partition) {
      // Empty, so created in place (no temp file, its sync and a rename): its directory's sync
      // below makes it durable, before the next commit forgets the partition (until then a
      // restart creates it again). The benchmark's mid-run commit completes 24 partitions,
      // and the writer thread spent about 1 ms on each, rows waiting behind it.
      let directory = "\(layout.directory)/\(partition)"
      try FileSystem.createEmpty(directory + "/_SUCCESS")
      completed.append(partition)
    }
    for partition in completed {
      try FileSystem.syncDirectory("\(layout.directory)/\(partition)")
      openPartitions[partition] = nil
    }
    return completed
  }
}
