#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// What `stat` says about a file: the identity hint (device, inode) and its growth.
public struct FileStat: Sendable, Hashable {
  public var device: UInt64
  public var inode: UInt64
  public var size: Int64
  /// Modification time, nanoseconds since the epoch.
  public var modified: Int64

  init(_ st: stat) {
    device = UInt64(st.st_dev)
    inode = UInt64(st.st_ino)
    size = Int64(st.st_size)
    modified = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
  }

  /// `stat` of a path, following symlinks (a symlinked live file is the file it points to).
  public static func of(path: String) -> FileStat? {
    var st = stat()
    return stat(path, &st) == 0 ? FileStat(st) : nil
  }

  public var sameFile: (UInt64, UInt64) { (device, inode) }
}

extension LogFileReader {
  /// The fingerprint of what the open (plain) file holds at its head now, read with `pread`
  /// so the read position is untouched. Nil if the head is not complete yet.
  public func headFingerprint() -> Fingerprint? {
    var head = [UInt8](repeating: 0, count: Fingerprint.headBytes)
    let n = head.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
    guard n > 0 else { return nil }
    return Fingerprint.of(head: head[0..<n], isComplete: false)
  }

  /// `fstat` of the open descriptor: still valid after the path was renamed or deleted.
  public func fileStat() -> FileStat? {
    var st = Glibc.stat()
    return fstat(descriptor, &st) == 0 ? FileStat(st) : nil
  }
}
