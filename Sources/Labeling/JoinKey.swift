import LogFormats

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A join key's text (UTF-8 bytes), held inline up to `inlineCapacity` bytes.
///
/// Request ids and most other keys fit: making one from a scanned line, hashing, comparing,
/// copying it into a row and dropping it allocate nothing and touch no memory beside the
/// value itself. As a `String` (over 15 bytes), each key was a heap object whose header every
/// row, lookup and release reached through a cache miss. Longer keys are held in an array.
public struct JoinKey: Hashable, Sendable, CustomStringConvertible {
  public static let inlineCapacity = 23

  // An inline key's bytes, then zeros; its length in the last byte of `w2` (the top byte on a
  // little-endian machine: the only kind this builds for, see below). So the synthesized
  // `==` and `hash(into:)` compare the text, and a key takes 32 bytes (as a `String` took 16
  // plus its heap object).
  private var w0: UInt64 = 0
  private var w1: UInt64 = 0
  private var w2: UInt64 = 0
  /// The bytes of a key longer than `inlineCapacity` (the words are then zero).
  private var long: [UInt8]?

  public var count: Int { long?.count ?? Int(w2 >> 56) }

  /// The empty key.
  public init() {}

  public init(_ bytes: UnsafeRawBufferPointer) {
    guard bytes.count <= Self.inlineCapacity else {
      long = Array(bytes.bindMemory(to: UInt8.self))
      return
    }
    // Word by word, reading only the key's bytes: copying them into the words' memory went
    // through `withUnsafeMutableBytes(of:)` and `memcpy`, about 70 instructions a key (a key is
    // made for every prediction and click, on the read-ahead thread and on the engine's).
    let n = bytes.count
    if let p = bytes.baseAddress {
      w0 = n >= 8 ? p.loadUnaligned(as: UInt64.self) : Self.word(p, n)
      if n > 8 { w1 = n >= 16 ? p.loadUnaligned(fromByteOffset: 8, as: UInt64.self) : Self.word(p + 8, n - 8) }
      if n > 16 { w2 = Self.word(p + 16, n - 16) }
    }
    w2 |= UInt64(n) << 56
  }

  /// The `n` (under 8) bytes at `p` as the low bytes of a little-endian word, the rest zero.
  @inline(__always)
  private static func word(_ p: UnsafeRawPointer, _ n: Int) -> UInt64 {
    var word: UInt64 = 0
    var at = 0
    if n & 4 != 0 {
      word = UInt64(p.loadUnaligned(as: UInt32.self))
      at = 4
    }
    if n & 2 != 0 {
      word |= UInt64(p.loadUnaligned(fromByteOffset: at, as: UInt16.self)) << UInt64(at &* 8)
      at &+= 2
    }
    if n & 1 != 0 { word |= UInt64(p.load(fromByteOffset: at, as: UInt8.self)) << UInt64(at &* 8) }
    return word
  }

  public init(_ text: String) {
    var text = text
    self = text.withUTF8 { JoinKey(UnsafeRawBufferPointer($0)) }
  }

  /// Whether this key's bytes sort before `other`'s (`memcmp`, then the shorter first), the
  /// order SQLite keeps texts in: inline keys compared a word at a time, most significant
  /// byte first.
  public func bytesPrecede(_ other: JoinKey) -> Bool {
    if long == nil && other.long == nil {
      if w0 != other.w0 { return w0.byteSwapped < other.w0.byteSwapped }
      if w1 != other.w1 { return w1.byteSwapped < other.w1.byteSwapped }
      let mask: UInt64 = 0x00FF_FFFF_FFFF_FFFF
      let a = w2 & mask
      let b = other.w2 & mask
      if a != b { return a.byteSwapped < b.byteSwapped }
      return w2 >> 56 < other.w2 >> 56
    }
    return withBytes { x in
      other.withBytes { y in
        let common = Swift.min(x.count, y.count)
        if common > 0, let p = x.baseAddress, let q = y.baseAddress {
          let order = memcmp(p, q, common)
          if order != 0 { return order < 0 }
        }
        return x.count < y.count
      }
    }
  }

  /// Calls `body` with the key's bytes.
  @inline(__always)
  public func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
    if let long { return long.withUnsafeBytes(body) }
    var words = (w0, w1, w2)
    let count = Int(w2 >> 56)
    return withUnsafeBytes(of: &words) { body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
  }

  /// `KeyTable.hash` of the key's bytes, read from the words an inline key is held in: they
  /// are the zero-padded little-endian words that hash reads (the length byte aside).
  /// `withBytes` goes through the generic `withUnsafeBytes(of:)`: about 70 instructions more
  /// for every prediction and click on the read-ahead thread (callgrind, 2026-12-03).
  @inline(__always)
  public func hash(seed: UInt64) -> UInt64 {
    if let long { return long.withUnsafeBytes { KeyTable.hash($0, seed: seed) } }
    let count = w2 >> 56
    var h = seed ^ (count &* 0x9E37_79B9_7F4A_7C15)
    if count > 0 { h = KeyTable.mix(h, w0) }
    if count > 8 { h = KeyTable.mix(h, w1) }
    if count > 16 { h = KeyTable.mix(h, w2 & 0x00FF_FFFF_FFFF_FFFF) }
    return KeyTable.finish(h)
  }

  /// Room `store(to:)` needs at its destination.
  public var storeCount: Int { Swift.max(count, 24) }

  /// Writes the key's bytes at `p`, which has room for `storeCount` bytes (an inline key's
  /// three words are stored whole; what follows its `count` bytes is to be overwritten), and
  /// returns `count`. `withBytes` went through the generic `withUnsafeBytes(of:)`, about 150
  /// instructions, for every row.
  @inline(__always)
  public func store(to p: UnsafeMutableRawPointer) -> Int {
    if let long {
      long.withUnsafeBytes { if let base = $0.baseAddress { p.copyMemory(from: base, byteCount: $0.count) } }
      return long.count
    }
    p.storeBytes(of: w0, as: UInt64.self)
    p.storeBytes(of: w1, toByteOffset: 8, as: UInt64.self)
    p.storeBytes(of: w2, toByteOffset: 16, as: UInt64.self)
    return Int(w2 >> 56)
  }

  public var description: String { withBytes { String(decoding: $0, as: UTF8.self) } }

  /// Bytes it holds on the heap (for memory accounting).
  var heapBytes: Int { long.map { $0.capacity } ?? 0 }
}

#if !_endian(little)
  #error("JoinKey keeps an inline key's length in the top byte of its last word, its last byte in memory")
#endif

extension ScannedEvent {
  /// The join key in slot `index`: a string's contents or a number's literal text (as
  /// `keyText`, without making a `String`); `nil` for other kinds.
  public func joinKey(_ index: Int) -> JoinKey? {
    let slot = slot(index)
    switch slot.kind {
    case .number:
      return JoinKey(raw(slot))
    case .string where !slot.needsRewrite:
      return JoinKey(stringContents(slot))
    case .string:
      return value(index)?.stringValue.map { JoinKey($0) }
    default:
      return nil
    }
  }
}
