import TestSupport
import Testing

@testable import Labeling

@Suite struct ColdKeySetTests {
  /// Random sets and removals with heavy churn, checked against the `[UInt64: Int64]` it
  /// replaced after every step. Hashes are drawn from a small range, with values whose home
  /// slots collide, so runs form and backward-shift deletion is exercised. (0 is stored as 1,
  /// so those two share an entry like any colliding pair: 1 is left out here.)
  @Test(arguments: [1, 2, 3] as [UInt64])
  func matchesADictionaryUnderChurn(seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    var set = ColdKeySet()
    var reference: [UInt64: Int64] = [:]
    for _ in 0..<30_000 {
      // Multiples of 1024 share low bits: many land in the same run.
      var hash = rng.next() % 2 == 0 ? rng.next() % 3000 : (rng.next() % 300) << 10
      if hash == 1 { hash = 0 }
      switch rng.next() % 3 {
      case 0:
        set.remove(hash)
        reference[hash] = nil
      default:
        let until: Int64 = rng.next() % 2 == 0 ? .max : Int64(rng.next() % 1000)
        set.set(hash, until)
        reference[hash] = until
      }
      #expect(set.count == reference.count)
      var probe = rng.next() % 3000
      if probe == 1 { probe = 0 }
      #expect(set[probe] == reference[probe], "hash \(probe)")
    }
    for (hash, until) in reference { #expect(set[hash] == until) }
  }
}
