import Gzip

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
    contentFingerprint(isComplete: false)
  }

  /// The fingerprint of the open file's decompressed head, read with `pread` (the read position
  /// is untouched): identity tied to this descriptor, not to a path that may be renamed meanwhile.
  public func contentFingerprint(isComplete: Bool) -> Fingerprint? {
    if !isGzip { return plainHeadFingerprint(isComplete: isComplete) }
    var raw = [UInt8](repeating: 0, count: 16 * 1024)
    var head: [UInt8] = []
    var offset: off_t = 0
    let inflater: GzipInflater? = isGzip ? GzipInflater() : nil
    while head.count < Fingerprint.headBytes, !head.contains(UInt8(ascii: "\n")) {
      let n = raw.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, offset) }
      guard n > 0 else { break }
      offset += off_t(n)
      if let inflater {
        let failed = raw.withUnsafeBytes { all -> Bool in
          do throws(GzipError) {
            try inflater.inflate(UnsafeRawBufferPointer(rebasing: all[0..<n]), into: &head)
            return false
          } catch {
            return true
          }
        }
        if failed { break }
      } else {
        head.append(contentsOf: raw[0..<n])
      }
    }
    return Fingerprint.of(head: head.prefix(Fingerprint.headBytes), isComplete: isComplete)
  }

  /// A plain file's: at most `Fingerprint.headBytes` read, into a buffer on the stack. A live
  /// daemon fingerprints its file twice a poll (the copytruncate checks), at 10k lines/s a
  /// hundred times a second: 16 KB zeroed, read and appended each time were 4% of its CPU.
  private func plainHeadFingerprint(isComplete: Bool) -> Fingerprint? {
    withUnsafeTemporaryAllocation(byteCount: Fingerprint.headBytes, alignment: 1) { buffer in
      guard let base = buffer.baseAddress else { return nil }
      var filled = 0
      while filled < buffer.count {
        let n = pread(descriptor, base + filled, buffer.count - filled, off_t(filled))
        guard n > 0 else { break }
        filled += n
        // The first line is complete: the fingerprint reads no further.
        if memchr(base + filled - n, Int32(UInt8(ascii: "\n")), n) != nil { break }
      }
      return Fingerprint.of(head: UnsafeRawBufferPointer(start: base, count: filled), isComplete: isComplete)
    }
  }

  /// `fstat` of the open descriptor: still valid after the path was renamed or deleted.
  public func fileStat() -> FileStat? {
    var st = Glibc.stat()
    return fstat(descriptor, &st) == 0 ? FileStat(st) : nil
  }
}
