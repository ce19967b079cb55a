/// A file's identity: a hash of its first line (at most the first 1 KiB) of decompressed
/// content.
///
/// The same bytes stay at the head of a log through rename, copy and gzip, so `app.log`,
/// `app.log.1` and `app.log.1.gz` are one file. Device and inode are not part of it: inodes
/// are reused and change with every copy or compression.
public struct Fingerprint: Hashable, Sendable, CustomStringConvertible {
  public static let headBytes = 1024
  public let value: UInt64

  public init(value: UInt64) { self.value = value }

  public init?(hex: String) {
    guard let v = UInt64(hex, radix: 16) else { return nil }
    value = v
  }

  public var description: String {
    let hex = String(value, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
  }

  /// The fingerprint of a head of decompressed content, or nil while the head is too short
  /// to identify the file (no newline yet and fewer than `headBytes`). With `isComplete`
  /// (the file will not grow), a short unterminated head is used as it is.
  public static func of(head: some Collection<UInt8>, isComplete: Bool) -> Fingerprint? {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    var count = 0
    for b in head {
      hash = (hash ^ UInt64(b)) &* 0x0000_0100_0000_01b3
      count += 1
      if b == UInt8(ascii: "\n") || count == headBytes { return Fingerprint(value: hash) }
    }
    return isComplete && count > 0 ? Fingerprint(value: hash) : nil
  }

  /// Reads the head of the file at `path` (decompressing if needed) and fingerprints it.
  public static func of(path: String, isComplete: Bool) throws(LogTailError) -> Fingerprint? {
    let reader = try LogFileReader(path: path, chunkSize: 4096)
    var head: [UInt8] = []
    while head.count < headBytes, !head.contains(UInt8(ascii: "\n")) {
      if reader.read(into: &head) == 0 { break }
    }
    return of(head: head.prefix(headBytes), isComplete: isComplete)
  }
}

/// A 64-bit FNV-1a hash of a line, used to recognise byte-identical lines read twice.
@inlinable
public func lineHash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
  var hash: UInt64 = 0xcbf2_9ce4_8422_2325
  for b in bytes {
    hash = (hash ^ UInt64(b)) &* 0x0000_0100_0000_01b3
  }
  return hash
}
