import TestSupport
import Testing

@testable import Labeling

@Suite struct KeyTableTests {
  /// A key's hash computed elsewhere under the store's seed (`ref(key:hash:)`, as the pipeline
  /// passes it from the read-ahead thread) finds the same state as the store's own hash.
  @Test func refWithAHashComputedAheadIsTheSameRef() throws {
    let store = MemoryStateStore()
    store.dueOffsets = [10]
    let seed = store.keyHashSeed
    for i in 0..<3000 {
      let key = JoinKey("request-\(i % 1000)")
      let hash = key.withBytes { KeyTable.hash($0, seed: seed) }
      let ref = try store.ref(key: key, hash: hash)
      #expect(try store.ref(key: key) == ref)
      #expect(store.key(ref) == key)
      // Prefetching, whatever the hash, changes nothing.
      store.prefetchKey(hash: UInt32(truncatingIfNeeded: hash))
      store.prefetchEntry(hash: UInt32(truncatingIfNeeded: hash &+ UInt64(i)))
      if i < 1000 {
        store.setPrediction(ref, seq: Int64(i + 1), time: Int64(i), payload: [1], datasets: 1)
      } else {
        #expect(store.prediction(ref)?.seq == Int64(i % 1000 + 1))
      }
    }
    // A store that keys its state another way ignores the hash.
    let plain = InMemoryStateStore()
    #expect(try plain.ref(key: JoinKey("a"), hash: 12345) == plain.ref(key: JoinKey("a")))
  }

  /// `JoinKey.hash(seed:)`, which hashes an inline key's words, is `KeyTable.hash` of the key's
  /// bytes, whatever its length (on both sides of each word and of the inline capacity) and seed.
  @Test func aKeysHashFromItsWordsIsTheHashOfItsBytes() {
    var state: UInt64 = 0x1234_5678
    func next() -> UInt64 {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return state >> 11
    }
    for length in 0...40 {
      for _ in 0..<50 {
        let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: next()) }
        let seed = next() &* 0x9E37_79B9_7F4A_7C15
        let key = bytes.withUnsafeBytes { JoinKey($0) }
        let expected = bytes.withUnsafeBytes { KeyTable.hash($0, seed: seed) }
        #expect(key.hash(seed: seed) == expected, "length \(length)")
        #expect(KeyTable(seed: seed).hash(key) == expected)
      }
    }
  }

  /// `firstCandidate` (what the pipeline prefetches) names a key's index when its home bucket
  /// holds it, and never an index whose 32-bit hash differs.
  @Test func firstCandidateIsTheHomeBucketsKey() {
    var table = KeyTable(seed: 9)
    let keys = (0..<2000).map { "key-\($0)" }
    for (index, key) in keys.enumerated() { table.insert(hash: table.hash(key), index: Int32(index)) }
    var atHome = 0
    for (index, key) in keys.enumerated() {
      let hash = table.hash(key)
      guard let candidate = table.firstCandidate(hash: hash) else { continue }
      #expect(UInt32(truncatingIfNeeded: table.hash(keys[Int(candidate)])) == UInt32(truncatingIfNeeded: hash))
      if candidate == Int32(index) { atHome += 1 }
    }
    // Half full at most: most keys sit in their home bucket.
    #expect(atHome > 1000)
  }

  /// Random inserts and removals with heavy churn, checked against a `Dictionary` after every
  /// step: backward-shift deletion must never lose a key that probed past the hole.
  @Test(arguments: [1, 2, 3] as [UInt64])
  func matchesADictionaryUnderChurn(seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    var table = KeyTable(seed: seed)
    var keys: [String] = []
    var reference: [String: Int32] = [:]
    var live: [Int32] = []
    for step in 0..<20_000 {
      if live.count < 64 || rng.next() % 3 != 0 {
        let key = "k\(rng.next() % 5000)-\(step % 7)"
        let hash = table.hash(key)
        if reference[key] == nil {
          let index = Int32(keys.count)
          keys.append(key)
          table.insert(hash: hash, index: index)
          reference[key] = index
          live.append(index)
        }
      } else {
        let at = Int(rng.next() % UInt64(live.count))
        let index = live.remove(at: at)
        table.remove(hash: table.hash(keys[Int(index)]), index: index)
        reference[keys[Int(index)]] = nil
      }
      if step % 97 == 0 {
        for (key, index) in reference {
          #expect(table.find(key, hash: table.hash(key), keyOf: { keys[Int($0)] }) == index)
        }
        #expect(table.count == reference.count)
      }
    }
    for key in keys where reference[key] == nil {
      #expect(table.find(key, hash: table.hash(key), keyOf: { keys[Int($0)] }) == nil)
    }
  }

  /// Keys that all land in one bucket still resolve: probing compares keys, not only hashes.
  @Test func collidingHashesResolveByKey() {
    var table = KeyTable(seed: 7)
    let keys = (0..<200).map { "key-\($0)" }
    for (i, _) in keys.enumerated() { table.insert(hash: 42 | 7 << 40, index: Int32(i)) }
    for (i, key) in keys.enumerated() {
      #expect(table.find(key, hash: 42 | 7 << 40, keyOf: { keys[Int($0)] }) == Int32(i))
    }
    for i in stride(from: 0, to: 200, by: 2) { table.remove(hash: 42 | 7 << 40, index: Int32(i)) }
    for (i, key) in keys.enumerated() {
      #expect(table.find(key, hash: 42 | 7 << 40, keyOf: { keys[Int($0)] }) == (i % 2 == 0 ? nil : Int32(i)))
    }
  }
}
