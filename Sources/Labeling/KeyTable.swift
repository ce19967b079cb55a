/// Join keys to entry indices: open addressing with linear probing over one array of plain
/// integers, a seeded multiply-xorshift hash over the key's UTF-8, and deletion by backward
/// shift (no tombstones, so a table with constant churn — every prediction's key comes and
/// goes — stays as fast as a fresh one).
///
/// The table stores no keys: `keyOf` answers the key of an index when a probe needs to compare.
struct KeyTable {
  /// Per bucket: `hash32 << 32 | (index + 1)`, 0 when empty.
  private var buckets: [UInt64]
  private var mask: Int
  private(set) var count = 0
  let seed: UInt64

  init(seed: UInt64 = UInt64.random(in: .min ... .max)) {
    self.seed = seed
    buckets = Array(repeating: 0, count: 64)
    mask = 63
  }

  /// The 64-bit hash of a key (seeded per table); the table keeps its low 32 bits.
  func hash(_ key: JoinKey) -> UInt64 { key.hash(seed: seed) }

  func hash(_ key: String) -> UInt64 {
    if let h = key.utf8.withContiguousStorageIfAvailable({ Self.hash(UnsafeRawBufferPointer($0), seed: seed) }) {
      return h
    }
    return Array(key.utf8).withUnsafeBytes { Self.hash($0, seed: seed) }
  }

  static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
    var h = seed ^ (UInt64(bytes.count) &* 0x9E37_79B9_7F4A_7C15)
    var offset = 0
    while offset + 8 <= bytes.count {
      h = mix(h, bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
      offset += 8
    }
    if offset < bytes.count {
      var word: UInt64 = 0
      var shift: UInt64 = 0
      while offset < bytes.count {
        word |= UInt64(bytes[offset]) << shift
        shift += 8
        offset += 1
      }
      h = mix(h, word)
    }
    return finish(h)
  }

  /// One word of the key (little-endian) into the hash.
  @inline(__always)
  static func mix(_ h: UInt64, _ word: UInt64) -> UInt64 {
    let h = (h ^ word) &* 0xBF58_476D_1CE4_E5B9
    return h ^ (h >> 31)
  }

  @inline(__always)
  static func finish(_ h: UInt64) -> UInt64 {
    let h = (h ^ (h >> 32)) &* 0xD6E8_FEB8_6659_FD93
    return h ^ (h >> 32)
  }

  /// The index stored for `key`, if any.
  @inline(__always)
  func find<Key: Equatable>(_ key: Key, hash fullHash: UInt64, keyOf: (Int32) -> Key) -> Int32? {
    let hash = UInt32(truncatingIfNeeded: fullHash)
    var bucket = Int(hash) & mask
    while true {
      let value = buckets[bucket]
      if value == 0 { return nil }
      if UInt32(truncatingIfNeeded: value >> 32) == hash {
        let index = Int32(truncatingIfNeeded: value & 0xFFFF_FFFF) - 1
        if keyOf(index) == key { return index }
      }
      bucket = (bucket + 1) & mask
    }
  }

  /// Adds `index` for a key known to be absent.
  mutating func insert(hash fullHash: UInt64, index: Int32) {
    let hash = UInt32(truncatingIfNeeded: fullHash)
    if (count + 1) * 2 > buckets.count { grow() }
    var bucket = Int(hash) & mask
    while buckets[bucket] != 0 { bucket = (bucket + 1) & mask }
    buckets[bucket] = UInt64(hash) << 32 | UInt64(UInt32(index + 1))
    count += 1
  }

  /// The index in the bucket a probe for a key of this hash starts at, if that bucket holds a
  /// key of the same 32-bit hash (to prefetch its entry: one read, no probing).
  @inline(__always) func firstCandidate(hash fullHash: UInt64) -> Int32? {
    let hash = UInt32(truncatingIfNeeded: fullHash)
    let value = buckets.withUnsafeBufferPointer { $0[Int(hash) & mask] }
    guard value != 0, UInt32(truncatingIfNeeded: value >> 32) == hash else { return nil }
    return Int32(truncatingIfNeeded: value & 0xFFFF_FFFF) - 1
  }

  /// Where the probe for a key of this hash starts (to prefetch it; valid until the table
  /// changes size).
  @inline(__always) func bucketAddress(hash fullHash: UInt64) -> UnsafeRawPointer {
    let bucket = Int(UInt32(truncatingIfNeeded: fullHash)) & mask
    return buckets.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress! + bucket) }
  }

  /// Removes the bucket holding `index` (found by its key's hash).
  mutating func remove(hash fullHash: UInt64, index: Int32) {
    let hash = UInt32(truncatingIfNeeded: fullHash)
    let wanted = UInt64(hash) << 32 | UInt64(UInt32(index + 1))
    var hole = Int(hash) & mask
    while buckets[hole] != wanted {
      if buckets[hole] == 0 { return }
      hole = (hole + 1) & mask
    }
    // Backward shift: move later members of the run into the hole when their home allows.
    var next = hole
    while true {
      next = (next + 1) & mask
      let value = buckets[next]
      if value == 0 { break }
      let home = Int(UInt32(truncatingIfNeeded: value >> 32)) & mask
      if (next &- home) & mask >= (next &- hole) & mask {
        buckets[hole] = value
        hole = next
      }
    }
    buckets[hole] = 0
    count -= 1
  }

  /// Empties the table, sized for `count` keys (same seed: hashes stay valid).
  mutating func removeAll(sizedFor count: Int) {
    var size = 64
    while size < count * 2 { size *= 2 }
    buckets = Array(repeating: 0, count: size)
    mask = size - 1
    self.count = 0
  }

  private mutating func grow() {
    let old = buckets
    buckets = Array(repeating: 0, count: old.count * 2)
    mask = buckets.count - 1
    for value in old where value != 0 {
      var bucket = Int(UInt32(truncatingIfNeeded: value >> 32)) & mask
      while buckets[bucket] != 0 { bucket = (bucket + 1) & mask }
      buckets[bucket] = value
    }
  }
}
