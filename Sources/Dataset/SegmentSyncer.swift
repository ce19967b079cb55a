import Threads

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Makes sealed segments durable (fsync) on a thread of its own, so that the writer goes on
/// encoding and writing rows while the disk catches up; `wait(through:counting:)`, called by
/// the commit before it records a segment as sealed, waits for what is still being synced.
///
/// A replay of the benchmark corpus seals a segment every `roll.max_age` of event time, about
/// 500 of them. Synced on the writer's thread, they kept it waiting 0.54 s per replay (longer
/// on a slower disk), and the engine's thread then waited for room in the writer's queue.
///
/// Each segment is synced through a duplicate of its descriptor, closed once synced, so its
/// owner may close its own at any time. The first failure is kept, and thrown by every later
/// `wait(through:counting:)`: nothing sealed after it is committed as durable.
final class SegmentSyncer: @unchecked Sendable {
  typealias Sync = @Sendable (_ fd: Int32, _ path: String) throws -> Void

  private let sync: Sync
  private let lock = ConditionLock()
  // Guarded by `lock`.
  private var queue: [(fd: Int32, path: String, sealed: Bool)] = []
  private var syncing = false
  private var stopping = false
  private var failure: (any Error)?
  private var done = 0
  private var submitted = 0
  /// Nil when no thread could be started: segments are then synced when submitted.
  private var worker: WorkerThread?

  init(sync: @escaping Sync) {
    self.sync = sync
    worker = WorkerThread(name: "dataset-sync") { [self] in work() }
  }

  /// Segments synced so far.
  var synced: Int { lock.withLock { done } }

  /// Queues the file open at `fd` to be synced: everything written to it before this call is
  /// durable once `isDone(through:)` says so for the ticket returned (or any later one).
  /// Segments are synced in the order submitted.
  /// `sealed`: nothing more will be written to the file, so once synced its pages are dropped
  /// from the page cache (`dropCachedPages`).
  @discardableResult
  func submit(fd: Int32, path: String, sealed: Bool) throws -> Int {
    let copy = worker == nil ? -1 : dup(fd)
    guard copy >= 0 else {
      try sync(fd, path)
      if sealed { Self.dropCachedPages(fd) }
      return lock.withLock {
        submitted += 1
        done += 1
        return submitted
      }
    }
    return lock.withLock {
      queue.append((copy, path, sealed))
      submitted += 1
      lock.broadcast()
      return submitted
    }
  }

  /// The ticket of the last segment submitted (0: none yet): what `isDone(through:)` and
  /// `wait(through:counting:)` take to mean everything submitted so far.
  var lastTicket: Int { lock.withLock { submitted } }

  /// Whether every segment submitted up to `ticket` is synced (or a sync failed: the next
  /// wait throws it). Any thread.
  func isDone(through ticket: Int) -> Bool {
    lock.withLock { done >= ticket || failure != nil }
  }

  /// Waits until every segment submitted up to `ticket` is synced, counting the wait in
  /// `waits`; throws the first failure (of any sync, before or after the ticket). Any thread.
  func wait(through ticket: Int, counting waits: WaitTally) throws {
    let error = lock.withLock {
      lock.wait(while: { done < ticket && failure == nil }, counting: waits)
      return failure
    }
    if let error { throw error }
  }

  /// Lets the page cache drop a synced, sealed segment's pages. A daemon beside an app server
  /// writes hundreds of MB of rows an hour that nothing reads soon (training jobs read them
  /// later, from disk): kept, they push the app's own pages out of the cache. And memory a
  /// write has to take fresh is slow on VMs that give freed memory back to their host: on
  /// this project's VM, 345 MB written into new pages took 0.9 s of system time, into pages
  /// just freed 0.06 s; the writer now reuses the pages its earlier segments let go.
  static func dropCachedPages(_ fd: Int32) {
    #if canImport(Glibc)
      _ = posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_DONTNEED))
    #endif
  }

  /// Syncs what is queued, then ends the thread.
  func stop() {
    lock.withLock {
      stopping = true
      lock.broadcast()
    }
    worker?.join()
  }

  private func work() {
    lock.lock()
    while true {
      while queue.isEmpty && !stopping { lock.wait() }
      if queue.isEmpty { break }
      let next = queue.removeFirst()
      syncing = true
      lock.unlock()
      var error: (any Error)?
      do {
        try sync(next.fd, next.path)
        if next.sealed { Self.dropCachedPages(next.fd) }
      } catch let e { error = e }
      close(next.fd)
      lock.lock()
      syncing = false
      done += 1
      if let error, failure == nil { failure = error }
      lock.broadcast()
    }
    lock.unlock()
  }
}
