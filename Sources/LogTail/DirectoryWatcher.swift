#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// inotify on the directories a source's globs look in: a hint that something changed, so an
/// idle poll loop wakes at once instead of at its next tick. Never the only signal: the loop
/// still polls on its interval (inotify misses files on some file systems, and directories that
/// do not exist yet), so losing an event only costs latency.
public final class DirectoryWatcher {
  private let fd: Int32
  public private(set) var watched: [String] = []
  /// Every pattern's directory is watched, and named without a glob (a directory that a glob
  /// matches only later would not be): only then can the absence of events say that no name
  /// changed (`takeNamesChanged`).
  private var seesEveryName = false

  /// Watches the parent directory of each pattern (globs in the directory part are expanded).
  public init(patterns: [String]) {
    #if os(Linux)
      fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
      guard fd >= 0 else { return }
      var directories = Set<String>()
      var wanted: [String] = []
      var plain = !patterns.isEmpty
      for pattern in patterns {
        guard let slash = pattern.lastIndex(of: "/") else {
          plain = false
          continue
        }
        let directory = slash == pattern.startIndex ? "/" : String(pattern[..<slash])
        if directory.contains(where: { "*?[".contains($0) }) { plain = false }
        wanted.append(directory)
        for expanded in Self.expandDirectories(directory) { directories.insert(expanded) }
      }
      let mask = UInt32(
        IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE | IN_DELETE_SELF
          | IN_MOVE_SELF)
      for directory in directories.sorted() where inotify_add_watch(fd, directory, mask) >= 0 {
        watched.append(directory)
      }
      seesEveryName = plain && wanted.allSatisfy(watched.contains)
    #else
      fd = -1
    #endif
  }

  deinit {
    if fd >= 0 { close(fd) }
  }

  private static func expandDirectories(_ pattern: String) -> [String] {
    var g = glob_t()
    defer { globfree(&g) }
    guard glob(pattern, Int32(GLOB_ONLYDIR), nil, &g) == 0 else { return [] }
    return (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }
  }

  /// Whether a name changed (see `takeNamesChanged`) in the events drained so far.
  private var namesChanged = true
  private var buffer = [UInt8](repeating: 0, count: 64 * 1024)

  /// Waits until a watched directory reports a change or `timeoutMilliseconds` pass; returns
  /// whether something changed. Drains the pending events.
  @discardableResult
  public func wait(timeoutMilliseconds: Int32) -> Bool {
    guard fd >= 0 else {
      if timeoutMilliseconds > 0 { usleep(UInt32(timeoutMilliseconds) * 1000) }
      return false
    }
    var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    let ready = poll(&descriptor, 1, timeoutMilliseconds)
    guard ready > 0 else { return false }
    #if os(Linux)
      // Name changes: a file created, renamed in or out, or deleted; or events lost, or a
      // watched directory itself gone. Anything else (IN_MODIFY, IN_CLOSE_WRITE) is a file's
      // content.
      let names = UInt32(
        IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_Q_OVERFLOW | IN_IGNORED | IN_DELETE_SELF
          | IN_MOVE_SELF)
      while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { break }
        buffer.withUnsafeBytes { events in
          // struct inotify_event: wd, mask, cookie, len (4 bytes each), then `len` name bytes.
          var offset = 0
          while offset + 16 <= n {
            let mask = events.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
            let length = events.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)
            if mask & names != 0 { namesChanged = true }
            // A watched directory gone (deleted, moved, its watch dropped): no more events from
            // it, so from now on no event says nothing.
            if mask & UInt32(IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF) != 0 { seesEveryName = false }
            offset += 16 + Int(length)
          }
        }
      }
    #endif
    return true
  }

  /// Whether a watched directory reported a name change (a file created, renamed or deleted)
  /// since the last call, among the events `wait` drained; resets it. Always true at first,
  /// and when inotify is not available or does not see every directory the patterns name.
  public func takeNamesChanged() -> Bool {
    guard fd >= 0 && seesEveryName else { return true }
    defer { namesChanged = false }
    return namesChanged
  }
}
