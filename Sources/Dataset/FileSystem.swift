#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

public struct FileSystemError: Error, Sendable, CustomStringConvertible {
  public let path: String
  public let operation: String
  public let code: Int32
  public var description: String { "\(operation) \(path): \(String(cString: strerror(code)))" }
}

/// Thin, throwing wrappers over the POSIX calls durability depends on.
public enum FileSystem {
  /// `mkdir -p`: the directory itself first, its parents only when it has none. A writer
  /// makes the directory of every segment it opens, and the directory is there almost always:
  /// one `mkdir` then, not one per component of the path (seven on the benchmark, 27 µs each).
  public static func makeDirectories(_ path: String) throws {
    if path.isEmpty || mkdir(path, 0o755) == 0 || errno == EEXIST { return }
    // A parent missing, or one that is not a directory: made (or named in the error) first.
    guard errno == ENOENT || errno == ENOTDIR else {
      throw FileSystemError(path: path, operation: "mkdir", code: errno)
    }
    let parent = directory(of: path)
    if parent != path && parent != "." && parent != "/" { try makeDirectories(parent) }
    if mkdir(path, 0o755) != 0 && errno != EEXIST {
      throw FileSystemError(path: path, operation: "mkdir", code: errno)
    }
  }

  public static func openForAppend(_ path: String) throws -> Int32 {
    let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw FileSystemError(path: path, operation: "open", code: errno) }
    _ = lseek(fd, 0, SEEK_END)
    return fd
  }

  public static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
    var done = 0
    while done < bytes.count {
      let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
      if n < 0 {
        if errno == EINTR { continue }
        throw FileSystemError(path: path, operation: "write", code: errno)
      }
      done += n
    }
  }

  public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    guard let base = bytes.baseAddress else { return }
    var done = 0
    while done < bytes.count {
      let n = write(fd, base + done, bytes.count - done)
      if n < 0 {
        if errno == EINTR { continue }
        throw FileSystemError(path: path, operation: "write", code: errno)
      }
      done += n
    }
  }

  public static func sync(_ fd: Int32, path: String) throws {
    guard fsync(fd) == 0 else { throw FileSystemError(path: path, operation: "fsync", code: errno) }
  }

  /// Starts writing the `count` bytes at `offset` back to the disk, without waiting for them
  /// (Linux `sync_file_range`; nothing elsewhere): the `fsync` that makes them durable later
  /// then finds them written, or being written. Not a durability guarantee in itself.
  public static func startWriteback(_ fd: Int32, offset: Int64, count: Int64) {
    // SYNC_FILE_RANGE_WRITE: start writing out dirty pages of the range, do not wait.
    _ = syncFileRange?(fd, offset, count, 2)
  }

  /// glibc's `sync_file_range` (not in the Glibc module map: it needs `_GNU_SOURCE`), looked
  /// up once; nil where it does not exist.
  private static let syncFileRange: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32)? = {
    #if os(Linux)
      // glibc's `RTLD_DEFAULT` is the null handle.
      guard let symbol = dlsym(nil, "sync_file_range") else { return nil }
      return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32).self)
    #else
      return nil
    #endif
  }()

  public static func syncDirectory(_ path: String) throws {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw FileSystemError(path: path, operation: "open", code: errno) }
    defer { close(fd) }
    try sync(fd, path: path)
  }

  public static func truncate(_ path: String, to length: Int64) throws {
    guard Glibc.truncate(path, off_t(length)) == 0 else {
      throw FileSystemError(path: path, operation: "truncate", code: errno)
    }
  }

  public static func rename(_ from: String, _ to: String) throws {
    guard Glibc.rename(from, to) == 0 else { throw FileSystemError(path: from, operation: "rename", code: errno) }
  }

  public static func exists(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0
  }

  public static func remove(_ path: String) {
    unlink(path)
  }

  /// Creates an empty file (or empties one), with no sync: an empty file has no data to be
  /// torn, and its name is made durable by a sync of its directory (the caller's).
  public static func createEmpty(_ path: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw FileSystemError(path: path, operation: "create", code: errno) }
    close(fd)
  }

  /// Writes a whole small file atomically: temp file, fsync, rename, fsync of the directory.
  public static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws {
    let temp = path + ".tmp"
    let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw FileSystemError(path: temp, operation: "open", code: errno) }
    do throws {
      try writeAll(fd, bytes, path: temp)
      try sync(fd, path: temp)
    } catch {
      close(fd)
      throw error
    }
    close(fd)
    try rename(temp, path)
    try syncDirectory(directory(of: path))
  }

  public static func readFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if n <= 0 { break }
      result.append(contentsOf: chunk[0..<n])
    }
    return result
  }

  /// Names in a directory (no `.` and `..`); empty if it cannot be read.
  public static func list(_ path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
      let name = withUnsafePointer(to: entry.pointee.d_name) {
        $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
      }
      if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
  }

  public static func directory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
  }
}

/// Closes a descriptor (named so callers need not import the C library).
public func closeFile(_ fd: Int32) {
  close(fd)
}
