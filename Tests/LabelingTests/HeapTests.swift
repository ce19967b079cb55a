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

@Suite struct RunQueueTests {
  /// Elements that arrive nearly in order in a few lanes (with jitter, some far out of order,
  /// duplicates, and pops interleaved, by `popMin` and by `minAndPosition` then `popMin(at:)`)
  /// pop exactly as a sorted array would, whatever the batch size; `count`, `items`,
  /// `count(where:)` and `upcoming` agree with it after every step. One lane (one dataset) takes a shorter path
  /// while nothing late is in the heap.
  @Test(
    arguments: [(1, 1, 3), (2, 4, 3), (3, 256, 3), (4, 7, 3), (5, 1, 1), (6, 4, 1), (7, 256, 1)] as [(UInt64, Int, Int)]
  )
  func popsInOrderLikeAHeap(seed: UInt64, batchSize: Int, lanes: Int) {
    var rng = SplitMix64(seed: seed)
    var queue = RunQueue<Int>(batchSize: batchSize)
    var reference: [Int] = []
    var clock = 1000
    for step in 0..<20_000 {
      if reference.isEmpty || rng.below(5) < 3 {
        clock += rng.below(3)
        let lane = rng.below(lanes)
        // Mostly a little behind the clock; now and then far behind (a late event).
        let value = rng.below(20) == 0 ? rng.below(clock) : clock + lane * 37 - rng.below(15)
        queue.insert(value, lane: lane)
        reference.append(value)
        reference.sort()
      } else if step % 2 == 0 {
        #expect(queue.popMin() == reference.removeFirst())
      } else {
        // A look at the least element, then its removal where the look found it.
        let least = queue.minAndPosition()
        #expect(least?.element == reference.first)
        #expect(least.flatMap { queue.popMin(at: $0.position) } == reference.removeFirst())
      }
      #expect(queue.count == reference.count)
      #expect(queue.min() == reference.first)
      if step % 997 == 0 {
        #expect(queue.items.sorted() == reference)
        // Counted in place (heap, runs and batches) as in the sorted copy.
        let bound = clock - 5
        #expect(queue.count(where: { $0 < bound }) == reference.count { $0 < bound })
      }
    }
    while let value = queue.popMin() { #expect(value == reference.removeFirst()) }
    #expect(reference.isEmpty)
    #expect(queue.isEmpty)
  }

  /// A lane's batch is sorted by insertion when short (nearly in order: most elements move a
  /// place or none), by the standard library's sort when long: both give what `sorted()`
  /// gives, in order, reversed, shuffled, with runs of equal keys kept in arrival order.
  @Test(arguments: [0, 1, 2, 3, 17, 256, 1024, 1025, 3000])
  func sortsBatchesLikeSorted(count: Int) {
    struct Keyed: Comparable {
      var key: Int
      var arrival: Int
      static func < (a: Self, b: Self) -> Bool { a.key < b.key }
    }
    var rng = SplitMix64(seed: UInt64(count) &+ 11)
    let orders: [[Int]] = [
      Array(0..<count), Array((0..<count).reversed()), (0..<count).map { _ in rng.below(max(count / 4, 1)) },
      (0..<count).map { $0 + rng.below(8) - rng.below(8) },
    ]
    for keys in orders {
      var batch = keys.enumerated().map { Keyed(key: $0.element, arrival: $0.offset) }
      // A stable sort of the reference: equal keys in arrival order.
      let expected = batch.enumerated().sorted { ($0.element.key, $0.offset) < ($1.element.key, $1.offset) }.map(
        \.element)
      RunQueue<Keyed>.sortNearlySorted(&batch)
      #expect(batch.map(\.key) == expected.map(\.key))
      if count <= 1024 { #expect(batch.map(\.arrival) == expected.map(\.arrival)) }
    }
  }

  /// `upcoming` names the element that many places behind a run's head, once sorted in.
  @Test func upcomingLooksBehindTheRunsHead() {
    var queue = RunQueue<Int>(batchSize: 4)
    for value in [3, 1, 2, 4, 5, 6, 8, 7] { queue.insert(value, lane: 0) }
    #expect(queue.laneCount == 1)
    #expect(queue.upcoming(lane: 0, distance: 0) == 1)
    #expect(queue.upcoming(lane: 0, distance: 7) == 8)
    #expect(queue.upcoming(lane: 0, distance: 8) == nil)
    #expect(queue.popMin() == 1)
    #expect(queue.upcoming(lane: 0, distance: 0) == 2)
  }

  /// `upcomingAddress` (for prefetching) is where the element `upcoming` names lies, and nil
  /// where `upcoming` is, after pops too.
  @Test func upcomingAddressIsWhereTheUpcomingElementLies() {
    var queue = RunQueue<Int>(batchSize: 4)
    for value in 1...12 { queue.insert(value, lane: 0) }
    _ = queue.popMin()
    _ = queue.popMin()
    for distance in 0..<12 {
      let address = queue.upcomingAddress(lane: 0, distance: distance)
      #expect((address == nil) == (queue.upcoming(lane: 0, distance: distance) == nil), "distance \(distance)")
      if let address { #expect(address.load(as: Int.self) == queue.upcoming(lane: 0, distance: distance)) }
    }
    #expect(queue.upcomingAddress(lane: 0, distance: 9)?.load(as: Int.self) == 12)
    #expect(queue.upcomingAddress(lane: 0, distance: 10) == nil)
    #expect(queue.upcomingAddress(lane: 0, distance: 0)?.load(as: Int.self) == 3)
  }

  /// A queue made from elements in any order (eviction, compaction) pops them in order, and
  /// new elements merge with them.
  @Test func initFromUnorderedElements() {
    var queue = RunQueue<Int>([9, 3, 7, 1])
    queue.insert(5, lane: 0)
    queue.insert(2, lane: 1)
    var popped: [Int] = []
    while let value = queue.popMin() { popped.append(value) }
    #expect(popped == [1, 2, 3, 5, 7, 9])
  }
}
