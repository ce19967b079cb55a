/// The keys the cold tier may hold state for, as a Bloom filter of their 64-bit hashes: a key
/// it does not contain is new, and looking it up needs no query; a key it contains is looked
/// up (and may turn out to have nothing, about once in a thousand lookups while the filter is
/// within its capacity).
///
/// Its memory does not grow with the number of keys: a set of the hashes took 11 to 21 bytes
/// a key, 32 MB (48 MB while growing) for the 2 million pending predictions of a replay with a
/// 7-day window, and without bound for longer ones. The filter is rebuilt from the cold tier's
/// keys (`MemoryStateStore` does it after a checkpoint) once as many keys went in since as it
/// held when built, at twice that size up to a cap; past the cap it only grows less selective.
/// Keys are never removed: a rebuild forgets those whose state is gone.
///
/// Blocked: the 6 bits of a key are in one 512-bit block (one cache line), so a lookup costs
/// one miss. At 16 bits a key (the capacity), about 1 lookup in 1000 of a new key is a false
/// positive; at 8, about 1 in 40.
struct ColdKeyFilter {
  /// Blocks of 8 words.
  private var words: [UInt64]
  private let blockMask: Int
  /// Keys inserted since built, the ones it was built with included (repeats count again).
  private(set) var count = 0
  /// How many it held when built.
  private(set) var countWhenBuilt = 0

  static let bitsPerKey = 16
  static let minBits = 512
  /// The size of a filter before the first build.
  static let initialBits = 1 << 16

  /// An empty filter of `bits` bits (a power of two, at least `minBits`).
  init(bits: Int = minBits) {
    precondition(bits >= Self.minBits && bits & (bits - 1) == 0, "filter size \(bits) is not a power of two")
    words = [UInt64](repeating: 0, count: bits / 64)
    blockMask = bits / 512 - 1
  }

  /// The size in bits for `keys` keys: twice the capacity they need (room for as many again),
  /// at least `minBits`, at most `maxBits`.
  static func bits(forKeys keys: Int, maxBits: Int) -> Int {
    var bits = minBits
    while bits < 2 * bitsPerKey * keys && bits < maxBits { bits <<= 1 }
    return bits
  }

  var bits: Int { words.count * 64 }
  var bytes: Int { words.count * 8 }
  /// How many keys it holds with about one false positive in 1000 lookups.
  var capacity: Int { bits / Self.bitsPerKey }

  /// Whether it is worth rebuilding: over capacity, and as many keys went in since it was built
  /// as it held then (so rebuilds cost a constant per key inserted, even past the cap).
  var needsRebuild: Bool { count > capacity && count - countWhenBuilt >= countWhenBuilt }

  /// Marks the end of a build from the cold tier's keys.
  mutating func built() { countWhenBuilt = count }

  @inline(__always) private func positions(_ hash: UInt64) -> (block: Int, bits: UInt64) {
    // The block from the low bits, the 6 bit positions (9 bits each) from a remix of the rest.
    let block = Int(truncatingIfNeeded: hash ^ (hash >> 29)) & blockMask
    let mixed = (hash >> 17 | hash << 47) &* 0x9E37_79B9_7F4A_7C15
    return (block * 8, mixed)
  }

  func contains(_ hash: UInt64) -> Bool {
    let (base, mixed) = positions(hash)
    return words.withUnsafeBufferPointer { words in
      var m = mixed
      for _ in 0..<6 {
        let bit = Int(truncatingIfNeeded: m >> 55)
        if words[base + bit >> 6] & (1 << UInt64(bit & 63)) == 0 { return false }
        m <<= 9
      }
      return true
    }
  }

  mutating func insert(_ hash: UInt64) {
    let (base, mixed) = positions(hash)
    words.withUnsafeMutableBufferPointer { words in
      var m = mixed
      for _ in 0..<6 {
        let bit = Int(truncatingIfNeeded: m >> 55)
        words[base + bit >> 6] |= 1 << UInt64(bit & 63)
        m <<= 9
      }
    }
    count += 1
  }
}
