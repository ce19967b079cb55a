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

  /// Watches the parent directory of each pattern (globs in the directory part are expanded).
  public init(patterns: [String]) {
    #if os(Linux)
      fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
      guard fd >= 0 else { return }
      var directories = Set<String>()
      for pattern in patterns {
        guard let slash = pattern.lastIndex(of: "/") else { continue }
        let directory = slash == pattern.startIndex ? "/" : String(pattern[..<slash])
        for expanded in Self.expandDirectories(directory) { directories.insert(expanded) }
      }
      let mask = UInt32(IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE)
      for directory in directories.sorted() where inotify_add_watch(fd, directory, mask) >= 0 {
        watched.append(directory)
      }
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

  /// Waits until a watched directory reports a change or `timeoutMilliseconds` pass; returns
  /// whether something changed. Drains the pending events.
  @discardableResult
  public func wait(timeoutMilliseconds: Int32) -> Bool {
    guard fd >= 0 else {
      usleep(UInt32(max(0, timeoutMilliseconds)) * 1000)
      return false
    }
    var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    let ready = poll(&descriptor, 1, timeoutMilliseconds)
    guard ready > 0 else { return false }
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    while buffer.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) > 0 {}
    return true
  }
}
