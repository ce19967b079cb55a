import TestSupport
import Testing

@testable import Labeling

@Suite struct ColdKeyFilterTests {
  /// Hashes of keys like the benchmark's request ids, as `MemoryStateStore` makes them.
  static func keyHashes(_ count: Int, from first: Int, seed: UInt64) -> [UInt64] {
    let table = KeyTable(seed: seed)
    return (first..<first + count).map { table.hash("r-\(String($0 &* 2_654_435_761 & 0xFFFF_FFFF, radix: 16))-\($0)") }
  }

  /// Every key put in is found (a miss would lose the key's cold state), and keys never put in
  /// are found only as often as the size promises: at most about 1 in 500 at capacity (16
  /// bits a key), 1 in 20 at twice it.
  @Test(arguments: [1 << 13, 1 << 20, 1 << 23])
  func findsEveryKeyAndFewOthers(bits: Int) {
    for load in [1, 2] {
      var filter = ColdKeyFilter(bits: bits)
      let inserted = Self.keyHashes(filter.capacity * load, from: 0, seed: 7)
      for hash in inserted { filter.insert(hash) }
      #expect(filter.count == inserted.count)
      #expect(inserted.allSatisfy { filter.contains($0) }, "a key put in is not found")
      let probes = Self.keyHashes(100_000, from: 10_000_000, seed: 7)
      let falsePositives = probes.filter { filter.contains($0) }.count
      let rate = Double(falsePositives) / Double(probes.count)
      #expect(rate < (load == 1 ? 0.002 : 0.05), "\(bits) bits, \(inserted.count) keys: false positives \(rate)")
      if load == 1 { #expect(falsePositives > 0 || bits == 1 << 13, "probes should meet a few") }
    }
  }

  /// Also with random 64-bit hashes (the low bits pick the block).
  @Test func uniformHashes() {
    var rng = SplitMix64(seed: 3)
    var filter = ColdKeyFilter(bits: 1 << 18)
    let inserted = (0..<filter.capacity).map { _ in rng.next() }
    for hash in inserted { filter.insert(hash) }
    #expect(inserted.allSatisfy { filter.contains($0) })
    let falsePositives = (0..<100_000).filter { _ in filter.contains(rng.next()) }.count
    #expect(falsePositives < 200)
  }

  /// Sized at twice the capacity the keys need, within the bounds; rebuilt once over capacity
  /// and as many keys went in since the build as it was built with (so past the cap a rebuild
  /// is not made at every checkpoint).
  @Test func sizingAndRebuilds() {
    #expect(ColdKeyFilter.bits(forKeys: 0, maxBits: 1 << 30) == 512)
    #expect(ColdKeyFilter.bits(forKeys: 1000, maxBits: 1 << 30) == 1 << 15)
    #expect(ColdKeyFilter.bits(forKeys: 1_000_000, maxBits: 1 << 30) == 1 << 25)
    #expect(ColdKeyFilter.bits(forKeys: 1_000_000, maxBits: 1 << 20) == 1 << 20)

    var filter = ColdKeyFilter(bits: 1 << 15)
    let hashes = Self.keyHashes(6000, from: 0, seed: 1)
    for hash in hashes.prefix(1000) { filter.insert(hash) }
    filter.built()
    #expect(filter.capacity == 2048)
    for hash in hashes[1000..<2048] { filter.insert(hash) }
    #expect(!filter.needsRebuild, "at capacity")
    filter.insert(hashes[2048])
    #expect(filter.needsRebuild)

    // At the cap: 3000 keys in a filter for 2048.
    var capped = ColdKeyFilter(bits: 1 << 15)
    for hash in hashes.prefix(3000) { capped.insert(hash) }
    capped.built()
    for hash in hashes[3000..<5999] { capped.insert(hash) }
    #expect(!capped.needsRebuild, "fewer keys since the build than it was built with")
    capped.insert(hashes[5999])
    #expect(capped.needsRebuild)
  }
}
