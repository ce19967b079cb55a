import Labeling

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

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
  // Guarded by `mutex`.
  private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
  private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
  private var queued: [[Operation]] = []
  private var busy = false
  private var stopping = false
  private var failure: (any Error)?
  private var thread = pthread_t()
  /// Without a thread (it could not be started), operations run on the caller's thread.
  private var inline = false

  public init(_ writer: DatasetWriter) {
    self.writer = writer
    batch.reserveCapacity(Self.batchSize)
    pthread_mutex_init(mutex, nil)
    pthread_cond_init(changed, nil)
    let context = Unmanaged.passRetained(self).toOpaque()
    let created = pthread_create(
      &thread, nil,
      { context in
        let me = Unmanaged<BackgroundWriter>.fromOpaque(context!).takeRetainedValue()
        me.work()
        return nil
      }, context)
    if created != 0 {
      Unmanaged<BackgroundWriter>.fromOpaque(context).release()
      thread = pthread_t()
      inline = true
    }
  }

  deinit {
    pthread_cond_destroy(changed)
    pthread_mutex_destroy(mutex)
    changed.deallocate()
    mutex.deallocate()
  }

  /// Stops the thread after it applied what it was given (errors are dropped: call `sync`
  /// first to see them).
  public func stop() {
    submit()
    pthread_mutex_lock(mutex)
    stopping = true
    pthread_cond_broadcast(changed)
    pthread_mutex_unlock(mutex)
    if thread != pthread_t() { pthread_join(thread, nil) }
    thread = pthread_t()
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
    pthread_mutex_lock(mutex)
    while !queued.isEmpty || busy { pthread_cond_wait(changed, mutex) }
    let error = failure
    pthread_mutex_unlock(mutex)
    if let error { throw error }
    return try body(writer)
  }

  private func submit() {
    guard !batch.isEmpty else { return }
    if inline {
      apply(batch)
      batch.removeAll(keepingCapacity: true)
      return
    }
    pthread_mutex_lock(mutex)
    while queued.count >= Self.maxQueued { pthread_cond_wait(changed, mutex) }
    queued.append(batch)
    pthread_cond_broadcast(changed)
    pthread_mutex_unlock(mutex)
    batch = []
    batch.reserveCapacity(Self.batchSize)
  }

  private func work() {
    pthread_mutex_lock(mutex)
    while true {
      while queued.isEmpty && !stopping { pthread_cond_wait(changed, mutex) }
      if queued.isEmpty && stopping { break }
      let next = queued.removeFirst()
      busy = true
      pthread_cond_broadcast(changed)
      pthread_mutex_unlock(mutex)
      apply(next)
      pthread_mutex_lock(mutex)
      busy = false
      pthread_cond_broadcast(changed)
    }
    pthread_mutex_unlock(mutex)
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
      pthread_mutex_lock(mutex)
      if failure == nil { failure = error }
      pthread_mutex_unlock(mutex)
    }
  }
}
