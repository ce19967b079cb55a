import TestSupport
import Testing

@testable import FeedbackDaemon

/// `PrefetchWindow` against what the pipeline needs of it: as lines of a batch are handed out
/// (any subset of them, in order: the others are passed over), every handed-out line at most
/// `distance` after an earlier handed-out line is asked for exactly once, no later than while
/// the last line handed out before it is processed, and no passed-over line is asked for.
/// Asking for the single line `distance` ahead of each handed-out line (what the pipeline did
/// before) fails this for every line whose line `distance` before was passed over.
struct PrefetchWindowTests {
  /// The batch's list of handed-out lines (`LineScanAhead.Batch.handed`): index from bit
  /// `PrefetchWindow.indexShift` on.
  static func words(_ handed: [Int]) -> [UInt64] {
    handed.map { UInt64($0) << PrefetchWindow.indexShift | PrefetchWindow.hasKey | UInt64($0 * 7) }
  }

  @Test(arguments: [1, 2, 4, 8, 16])
  func everyLineAheadIsAskedForOnceInTime(distance: Int) {
    var rng = SplitMix64(seed: UInt64(distance))
    for round in 0..<500 {
      let count = 1 + rng.below(300)
      // Handed out: each line with a probability that changes from round to round.
      let share = 1 + rng.below(10)
      let handed = (0..<count).filter { _ in rng.below(10) < share }
      let list = Self.words(handed)
      var window = PrefetchWindow()
      var askedBy: [Int: Int] = [:]
      list.withUnsafeBufferPointer { list in
        for index in handed {
          window.advance(to: index, distance: distance, in: list.baseAddress!, list.count) { word in
            let k = Int(word >> PrefetchWindow.indexShift)
            #expect(askedBy[k] == nil, "line \(k) asked for twice (round \(round))")
            #expect(k > index && k <= index + distance)
            #expect(word & 0xFFFF_FFFF == UInt64(k * 7))
            askedBy[k] = index
          }
        }
      }
      // The handed-out lines at most `distance` after an earlier handed-out line, and only
      // those: a passed-over line is never read, and one further on is not asked for.
      let expected = zip(handed, handed.dropFirst()).filter { $1 - $0 <= distance }.map(\.1)
      #expect(Set(askedBy.keys) == Set(expected), "round \(round)")
      // ... each while the line handed out before it was processed, or earlier.
      for (previous, index) in zip(handed, handed.dropFirst()) where index - previous <= distance {
        #expect(askedBy[index].map { $0 <= previous } == true, "line \(index) asked for late (round \(round))")
      }
    }
  }

  @Test func aWindowDoesNotGoBackNorPastTheList() {
    let list = Self.words([0, 1, 2, 5, 6, 9])
    var window = PrefetchWindow()
    var asked: [Int] = []
    list.withUnsafeBufferPointer { list in
      for index in [0, 1, 2, 5, 6, 9] {
        window.advance(to: index, distance: 3, in: list.baseAddress!, list.count) {
          asked.append(Int($0 >> PrefetchWindow.indexShift))
        }
        asked.append(-1)
      }
    }
    #expect(asked == [1, 2, -1, -1, 5, -1, 6, -1, 9, -1, -1])
    #expect(window.next == 6)
  }

  /// The list's flag bits are the line tag's, moved up by one shift (`Batch.noteHanded`), and
  /// they lie between the key's 32-bit hash and the line's index.
  @Test func theTagsFlagsMoveIntoTheListsFlags() {
    typealias Batch = LineScanAhead.Batch
    #expect(Batch.hasKeyHash << Batch.tagToWord == PrefetchWindow.hasKey)
    #expect(Batch.hasLineHash << Batch.tagToWord == PrefetchWindow.isFeedback)
    #expect(PrefetchWindow.keyedFeedback & 0xFFFF_FFFF == 0)
    #expect(PrefetchWindow.keyedFeedback >> PrefetchWindow.indexShift == 0)
  }
}
