import Labeling
import Threads

/// A `DatasetWriter` on a thread of its own: rows are encoded and written while the engine
/// goes on joining, so the two overlap on two cores.
///
/// Rows and watermark advances are handed over in batches, in the order they were made; the
/// writer thread applies them in that order, exactly as the single-threaded writer would, so
/// the dataset is byte-identical. `sync` (used for sealing, commits and publishing) hands over
/// what is batched, waits until the thread has applied everything, and rethrows the first
/// error the thread met; so nothing is committed that was not written. While the thread is
/// idle between `sync` calls, `sync` runs its body on the caller's thread.
///
/// A batch is flat bytes (`RowRecord`): the caller copies each row's bytes in, so no row is
/// retained across threads, and batches go back and forth between the threads to be reused.
public final class BackgroundWriter: @unchecked Sendable {
  /// A batch is handed over at this many entries or bytes.
  static let batchEntries = 512
  static let batchBytes = 1 << 16
  /// Batches waiting for the thread before `append` waits (bounds memory).
  static let maxQueued = 16

  /// Only touched by the writer thread, or by `sync` while the thread is idle.
  private let writer: DatasetWriter
  /// The caller's batch being filled (caller's thread only).
  private var batch = ByteBuffer(capacity: BackgroundWriter.batchBytes)
  private var entries = 0
  private let lock = ConditionLock()
  // Guarded by `lock`.
  private var queued: [ByteBuffer] = []
  /// Applied batches, for the caller to fill again.
  private var spare: [ByteBuffer] = []
  private var busy = false
  private var stopping = false
  private var failure: (any Error)?
  /// What the last `requestCommit` prepared, once the thread got to it.
  private var prepared: DatasetWriter.PreparedCommit?
  /// Nil when no thread could be started: operations then run on the caller's thread.
  private var worker: WorkerThread?
  /// How often and how long the caller waited for the thread: for room in the queue (the
  /// thread fell `maxQueued` batches behind), for it to apply everything (`sync`), or for
  /// the sealed segments a commit records to be synced (`DatasetWriter.commitWaits`).
  public let waits = WaitTally()

  public init(_ writer: DatasetWriter) {
    self.writer = writer
    writer.commitWaits = waits
    queued.reserveCapacity(Self.maxQueued)
    spare.reserveCapacity(Self.maxQueued + 1)
    worker = WorkerThread(name: "dataset-writer") { [self] in work() }
  }

  /// Stops the thread after it applied what it was given (errors are dropped: call `sync`
  /// first to see them).
  public func stop() {
    submit()
    lock.withLock {
      stopping = true
      lock.broadcast()
    }
    worker?.join()
  }

  public func append(_ row: LabeledRow, ageClock: Int64) {
    row.withParts { append($0, ageClock: ageClock) }
  }

  /// The same row by parts (the engine's `EngineOutput.write(parts:)`).
  public func append(_ row: RowParts, ageClock: Int64) {
    // Unretained: passing the `batch` property retained it for each row.
    Unmanaged.passUnretained(batch)._withUnsafeGuaranteedRef { RowRecord.write(row, ageClock: ageClock, to: $0) }
    entries += 1
    if entries >= Self.batchEntries || batch.count >= Self.batchBytes { submit() }
  }

  public func advance(watermark: Int64, ageClock: Int64) {
    RowRecord.writeAdvance(watermark: watermark, ageClock: ageClock, to: batch)
    entries += 1
    if entries >= Self.batchEntries || batch.count >= Self.batchBytes { submit() }
  }

  /// Publishes what the last commit sealed (`DatasetWriter.afterCommit`: renames, directory
  /// syncs, `_SUCCESS` files) on the writer thread, after what was handed over before, without
  /// waiting for it: a failure is thrown by the next `sync`. (A crash before it is done is a
  /// crash between commit and publishing, which recovery completes.)
  public func publishAfterCommit() {
    RowRecord.writePublish(to: batch)
    submit()
  }

  /// Prepares a commit's cut on the writer thread, after the rows handed over before, without
  /// waiting for it (`DatasetWriter.prepareDeferredCommit`): rows appended after
  /// this are not in it. `preparedCommit` gives its state once it is durable. One at a time:
  /// take the last one's state first.
  public func requestCommit() {
    lock.withLock { precondition(prepared == nil, "the last commit's cut was not taken") }
    RowRecord.writePrepareCommit(to: batch)
    submit()
  }

  /// The state of the cut `requestCommit` asked for, once the thread has made it and the
  /// disk holds what it records: with `wait`, waits for both (and throws what failed on the
  /// thread or in a sync); without, nil while either is still running. Call once per
  /// `requestCommit`.
  public func preparedCommit(wait: Bool) throws -> DatasetCheckpoint? {
    let (cut, error): (DatasetWriter.PreparedCommit?, (any Error)?) = lock.withLock {
      if wait { lock.wait(while: { prepared == nil && failure == nil }, counting: waits) }
      return (prepared, failure)
    }
    if let error { throw error }
    guard let cut, wait || writer.isDurable(cut) else { return nil }
    // Waits, or (done) throws a failed sync: `isDurable` is also true after one.
    try writer.waitUntilDurable(cut)
    lock.withLock { prepared = nil }
    return cut.checkpoint
  }

  /// Waits until everything handed over is applied, then runs `body` on the writer.
  public func sync<T>(_ body: (DatasetWriter) throws -> T) throws -> T {
    submit()
    let error = lock.withLock {
      lock.wait(while: { !queued.isEmpty || busy }, counting: waits)
      return failure
    }
    if let error { throw error }
    return try body(writer)
  }

  private func submit() {
    guard !batch.isEmpty else { return }
    entries = 0
    if worker == nil {
      apply(batch)
      batch.removeAll()
      return
    }
    let full = batch
    let next: ByteBuffer? = lock.withLock {
      lock.wait(while: { queued.count >= Self.maxQueued }, counting: waits)
      queued.append(full)
      lock.broadcast()
      return spare.popLast()
    }
    batch = next ?? ByteBuffer(capacity: Self.batchBytes)
  }

  private func work() {
    lock.lock()
    while true {
      while queued.isEmpty && !stopping { lock.wait() }
      if queued.isEmpty && stopping { break }
      let next = queued.removeFirst()
      busy = true
      lock.broadcast()
      lock.unlock()
      apply(next)
      next.removeAll()
      lock.lock()
      busy = false
      // Kept for reuse unless it grew for a huge row.
      if next.capacity <= 4 * Self.batchBytes { spare.append(next) }
      lock.broadcast()
    }
    lock.unlock()
  }

  /// Applies a batch's entries in order; after a failure the rest are dropped (the next `sync`
  /// throws it, and nothing after it is committed).
  private func apply(_ batch: ByteBuffer) {
    if failure != nil { return }
    var p = UnsafeRawPointer(batch.base)
    let end = p + batch.count
    do {
      while p < end {
        switch RowRecord.read(&p) {
        case .row(let row): try writer.append(row)
        case .advance(let watermark, let ageClock): try writer.advance(watermark: watermark, ageClock: ageClock)
        case .publish: _ = try writer.afterCommit()
        case .prepareCommit:
          let cut = try writer.prepareDeferredCommit()
          lock.withLock {
            prepared = cut
            lock.broadcast()
          }
        }
      }
    } catch {
      lock.withLock { if failure == nil { failure = error } }
    }
  }
}
