#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// A mutex with one condition variable: the hand-over between a pipeline stage and its worker
/// thread (`ReadAhead`, `BackgroundWriter`).
public final class ConditionLock: @unchecked Sendable {
  private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
  private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

  public init() {
    pthread_mutex_init(mutex, nil)
    pthread_cond_init(condition, nil)
  }

  deinit {
    pthread_cond_destroy(condition)
    pthread_mutex_destroy(mutex)
    condition.deallocate()
    mutex.deallocate()
  }

  public func lock() { pthread_mutex_lock(mutex) }
  public func unlock() { pthread_mutex_unlock(mutex) }
  /// Waits for a `broadcast`; call with the lock held (it is held again on return).
  public func wait() { pthread_cond_wait(condition, mutex) }

  /// Waits for `broadcast`s while `blocked()` holds (with the lock held, as `wait`); the time
  /// spent waiting, if any, is added to `tally`. The clock is read only when the caller
  /// has to wait.
  @inline(__always)
  public func wait(while blocked: () -> Bool, counting tally: WaitTally) {
    guard blocked() else { return }
    let start = WaitTally.now()
    repeat { wait() } while blocked()
    tally.add(since: start)
  }

  public func broadcast() { pthread_cond_broadcast(condition) }

  public func withLock<T>(_ body: () throws -> T) rethrows -> T {
    lock()
    defer { unlock() }
    return try body()
  }
}

/// How often, and how long, a thread waited for another: the pipeline thread for read-ahead
/// chunks, or for room in a dataset writer's queue. Only the waiting thread updates and reads
/// it (so no atomics).
public final class WaitTally: @unchecked Sendable {
  public private(set) var count = 0
  public private(set) var nanoseconds: Int64 = 0

  public init() {}

  public var seconds: Double { Double(nanoseconds) / 1e9 }

  /// The monotonic clock in nanoseconds.
  public static func now() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
  }

  public func add(since start: Int64) {
    count += 1
    nanoseconds += Self.now() &- start
  }
}

/// A thread of its own running `body` once; `join` waits for it to end.
public final class WorkerThread {
  private var thread = pthread_t()

  /// Starts `body` on a new thread named `name` (what `top -H` shows); nil if no thread could
  /// be started (the caller then does the work in line).
  public init?(name: String, _ body: @escaping @Sendable () -> Void) {
    final class Start: @unchecked Sendable {
      let name: String
      let body: @Sendable () -> Void
      init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
      }
    }
    let context = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
    let created = pthread_create(
      &thread, nil,
      { context in
        let start = Unmanaged<Start>.fromOpaque(context!).takeRetainedValue()
        nameThisThread(start.name)
        start.body()
        return nil
      }, context)
    if created != 0 {
      Unmanaged<Start>.fromOpaque(context).release()
      return nil
    }
  }

  /// Waits for the thread to end (once; later calls return at once).
  public func join() {
    guard thread != pthread_t() else { return }
    pthread_join(thread, nil)
    thread = pthread_t()
  }
}

/// Names the calling thread (Linux: `/proc/thread-self/comm`, at most 15 bytes); best effort.
func nameThisThread(_ name: String) {
  let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
  guard fd >= 0 else { return }
  _ = Array(name.utf8.prefix(15)).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
  close(fd)
}
