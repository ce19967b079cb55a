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
public final class BackgroundWriter: @unchecked Sendable {
  enum Operation {
    case row(LabeledRow, ageClock: Int64)
    case advance(watermark: Int64, ageClock: Int64)
  }

  static let batchSize = 256
  /// Batches waiting for the thread before `append` waits (bounds memory).
  static let maxQueued = 16

  /// Only touched by the writer thread, or by `sync` while the thread is idle.
  private let writer: DatasetWriter
  /// The caller's batch being filled (caller's thread only).
  private var batch: [Operation] = []
  private let lock = ConditionLock()
  // Guarded by `lock`.
  private var queued: [[Operation]] = []
  private var busy = false
  private var stopping = false
  private var failure: (any Error)?
  /// Nil when no thread could be started: operations then run on the caller's thread.
  private var worker: WorkerThread?

  public init(_ writer: DatasetWriter) {
    self.writer = writer
    batch.reserveCapacity(Self.batchSize)
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
    batch.append(.row(row, ageClock: ageClock))
    if batch.count >= Self.batchSize { submit() }
  }

  public func advance(watermark: Int64, ageClock: Int64) {
    batch.append(.advance(watermark: watermark, ageClock: ageClock))
    if batch.count >= Self.batchSize { submit() }
  }

  /// Waits until everything handed over is applied, then runs `body` on the writer.
  public func sync<T>(_ body: (DatasetWriter) throws -> T) throws -> T {
    submit()
    let error = lock.withLock {
      while !queued.isEmpty || busy { lock.wait() }
      return failure
    }
    if let error { throw error }
    return try body(writer)
  }

  private func submit() {
    guard !batch.isEmpty else { return }
    if worker == nil {
      apply(batch)
      batch.removeAll(keepingCapacity: true)
      return
    }
    lock.withLock {
      while queued.count >= Self.maxQueued { lock.wait() }
      queued.append(batch)
      lock.broadcast()
    }
    batch = []
    batch.reserveCapacity(Self.batchSize)
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
      lock.lock()
      busy = false
      lock.broadcast()
    }
    lock.unlock()
  }

  /// Applies operations in order; after a failure the rest are dropped (the next `sync` throws
  /// it, and nothing after it is committed).
  private func apply(_ operations: [Operation]) {
    if failure != nil { return }
    do {
      for operation in operations {
        switch operation {
        case .row(let row, let ageClock): try writer.append(row, ageClock: ageClock)
        case .advance(let watermark, let ageClock): try writer.advance(watermark: watermark, ageClock: ageClock)
        }
      }
    } catch {
      lock.withLock { if failure == nil { failure = error } }
    }
  }
}
