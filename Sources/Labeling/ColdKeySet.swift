/// The hashes of the keys the cold tier may hold state for, and until when that state matters:
/// `.max` while it holds a prediction or feedback, else the expiry of its finished memory.
///
/// Held as an open-addressing set of hashes (8 bytes a slot, at most 3/4 full) plus a
/// dictionary for the keys whose cold state is only finished memory: a million pending
/// predictions in the cold tier cost about 16 MB here instead of the 32 MB a
/// `[UInt64: Int64]` took.
struct ColdKeySet {
  /// 0 marks an empty slot; a hash of 0 is stored as 1 (sharing it, like any other collision).
  private var slots = [UInt64](repeating: 0, count: 64)
  private var mask = 63
  private(set) var count = 0
  private var finishedOnly: [UInt64: Int64] = [:]

  @inline(__always) private static func stored(_ hash: UInt64) -> UInt64 { hash == 0 ? 1 : hash }

  @inline(__always) private func slot(of value: UInt64) -> (index: Int, found: Bool) {
    var i = Int(truncatingIfNeeded: value ^ (value >> 29)) & mask
    while true {
      if slots[i] == 0 { return (i, false) }
      if slots[i] == value { return (i, true) }
      i = (i + 1) & mask
    }
  }

  subscript(hash: UInt64) -> Int64? {
    guard slot(of: Self.stored(hash)).found else { return nil }
    return finishedOnly.isEmpty ? .max : finishedOnly[hash] ?? .max
  }

  mutating func set(_ hash: UInt64, _ until: Int64) {
    let value = Self.stored(hash)
    if !slot(of: value).found {
      if (count + 1) * 4 > slots.count * 3 { grow() }
      slots[slot(of: value).index] = value
      count += 1
    }
    if until == .max {
      if !finishedOnly.isEmpty { finishedOnly.removeValue(forKey: hash) }
    } else {
      finishedOnly[hash] = until
    }
  }

  mutating func remove(_ hash: UInt64) {
    guard count > 0 else { return }
    let (index, present) = slot(of: Self.stored(hash))
    guard present else { return }
    // (Hashing for the dictionary costs more than the probe: only when it holds anything.)
    if !finishedOnly.isEmpty { finishedOnly.removeValue(forKey: hash) }
    // Backward shift: move later members of the run into the hole when their home allows.
    var hole = index
    var next = hole
    while true {
      next = (next + 1) & mask
      let value = slots[next]
      if value == 0 { break }
      let home = Int(truncatingIfNeeded: value ^ (value >> 29)) & mask
      if (next &- home) & mask >= (next &- hole) & mask {
        slots[hole] = value
        hole = next
      }
    }
    slots[hole] = 0
    count -= 1
  }

  private mutating func grow() {
    let old = slots
    slots = Array(repeating: 0, count: old.count * 2)
    mask = slots.count - 1
    for value in old where value != 0 { slots[slot(of: value).index] = value }
  }
}
