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
  public func broadcast() { pthread_cond_broadcast(condition) }

  public func withLock<T>(_ body: () throws -> T) rethrows -> T {
    lock()
    defer { unlock() }
    return try body()
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
