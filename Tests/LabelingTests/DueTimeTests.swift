import TestSupport
import Testing

@testable import Labeling

@Suite struct DueTimeTests {
  /// After `popDue` returns nil, `earliestDueAfterPop` (what the engine asks, from that
  /// look) agrees with `earliestDue` (a search of its own): predictions in one and two
  /// datasets, some late (the queue's heap), watermarks moving by uneven steps.
  @Test(arguments: [1, 2] as [Int])
  func earliestDueAfterAPopAgreesWithASearch(datasets: Int) throws {
    var rng = SplitMix64(seed: UInt64(40 + datasets))
    let store = MemoryStateStore()
    store.dueOffsets = datasets == 1 ? [50] : [50, 120]
    var watermark: Int64 = 0
    var seq: Int64 = 0
    var checked = 0
    for i in 0..<20_000 {
      watermark += Int64(rng.below(4))
      let time = rng.below(30) == 0 ? watermark - Int64(rng.below(40)) : watermark + Int64(rng.below(10))
      seq += 1
      let ref = try store.ref(key: JoinKey("k\(i)"))
      store.setPrediction(ref, seq: seq, time: time, payload: Array("[1]".utf8), datasets: datasets == 1 ? 1 : 3)
      if rng.below(3) == 0 {
        while let due = try store.popDue(through: watermark) {
          if store.rowWritten(due.ref, dataset: due.row.dataset) == 0 {
            store.finish(due.ref, expiresAt: watermark + 1000)
          }
        }
        let afterPop = try store.earliestDueAfterPop()
        #expect(afterPop == (try store.earliestDue()), "after \(i) predictions")
        #expect(afterPop.map { $0 > watermark } ?? true)
        checked += 1
      }
    }
    #expect(checked > 5000)
  }
}
