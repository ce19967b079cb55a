import TestSupport
import Testing

@testable import Labeling

@Suite struct HeapTests {
  /// Random inserts and pops (with many equal elements) always pop the least element left,
  /// checked against a sorted array after every step.
  @Test(arguments: [1, 2, 3] as [UInt64])
  func popsInOrderUnderChurn(seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    var heap = Heap<Int>()
    var reference: [Int] = []
    for _ in 0..<20_000 {
      if reference.isEmpty || rng.below(5) < 3 {
        let value = rng.below(500)
        heap.insert(value)
        reference.append(value)
        reference.sort()
      } else {
        #expect(heap.popMin() == reference.removeFirst())
      }
      #expect(heap.count == reference.count)
      #expect(heap.min == reference.first)
    }
    while let value = heap.popMin() { #expect(value == reference.removeFirst()) }
    #expect(reference.isEmpty)
  }
}
