import TestSupport
import Testing

@testable import FeedbackDaemon

/// `PrefetchWindow` against what the pipeline needs of it: as lines of a batch are handed out
/// (the listed ones, any subset of the batch, and rejected lines, handed out but not listed;
/// the others are passed over), for each distance `d` every listed line after the first one
/// handed out is asked for no later than while the listed line `d` places before it is
/// processed (or the first line, for the first ones), never while it or a line after it is,
/// and no more than `d` listed lines ahead; with no rejected lines, exactly once. Asking for
/// the line `d` ahead in the batch (what the pipeline did before the list) fails this for
/// every line whose line `d` before was passed over.
struct PrefetchWindowTests {
  /// The batch's list of handed-out lines (`LineScanAhead.Batch.handed`): index from bit
  /// `PrefetchWindow.indexShift` on.
  static func words(_ listed: [Int]) -> [UInt64] {
    listed.map { UInt64($0) << PrefetchWindow.indexShift | PrefetchWindow.hasKey | UInt64($0 * 7) }
  }

  @Test(arguments: [(1, 1, 1), (5, 3, 2), (8, 4, 2), (16, 2, 1)])
  func everyListedLineIsAskedForInTime(distances: (Int, Int, Int)) {
    let d = [distances.0, distances.1, distances.2]
    var rng = SplitMix64(seed: UInt64(d[0] * 100 + d[1] * 10 + d[2]))
    for round in 0..<500 {
      let count = 1 + rng.below(300)
      // Listed: each line with a probability that changes from round to round; some rounds
      // also hand out rejected lines (not listed).
      let share = 1 + rng.below(10)
      let rejects = round % 3 == 0 ? 0 : rng.below(4)
      var listed: [Int] = []
      var handed: [Int] = []
      for line in 0..<count {
        if rng.below(10) < share {
          listed.append(line)
          handed.append(line)
        } else if rng.below(10) < rejects {
          handed.append(line)
        }
      }
      let list = Self.words(listed)
      let position = Dictionary(uniqueKeysWithValues: listed.enumerated().map { ($1, $0) })
      var window = PrefetchWindow()
      // Per kind, per list position: the steps (in `handed`) at which it was asked for.
      var asked = Array(repeating: [Int: [Int]](), count: 3)
      // How many listed lines are at or before the one handed out.
      var listedSoFar = 0
      list.withUnsafeBufferPointer { list in
        for (step, index) in handed.enumerated() {
          while listedSoFar < listed.count && listed[listedSoFar] <= index { listedSoFar += 1 }
          window.advance(to: index, distances: distances, in: list.baseAddress!, list.count) { kind, word in
            let line = Int(word >> PrefetchWindow.indexShift)
            #expect(word & 0xFFFF_FFFF == UInt64(line * 7))
            // After the line handed out now, and at most `d` listed lines after it.
            #expect(line > index, "round \(round): line \(line) asked for at line \(index)")
            let ahead = position[line]! + 1 - listedSoFar
            #expect(ahead <= d[kind], "round \(round): line \(line) is \(ahead) listed lines after \(index)")
            asked[kind][position[line]!, default: []].append(step)
          }
        }
      }
      guard let first = handed.first else { continue }
      let step = Dictionary(uniqueKeysWithValues: handed.enumerated().map { ($1, $0) })
      for kind in 0..<3 {
        for (q, line) in listed.enumerated() where line > first {
          guard let steps = asked[kind][q] else {
            Issue.record("round \(round): line \(line) never asked for (distance \(d[kind]))")
            continue
          }
          // No later than while the listed line `d` before it was processed, or the first line.
          let due = q - d[kind] >= 0 && listed[q - d[kind]] >= first ? step[listed[q - d[kind]]]! : 0
          #expect(steps.min()! <= due, "round \(round): line \(line) asked for late (distance \(d[kind]))")
          if rejects == 0 { #expect(steps.count == 1, "round \(round): line \(line) asked for \(steps.count) times") }
        }
      }
    }
  }

  @Test func aWindowAsksForTheLinesDPlacesOnInTheList() {
    let list = Self.words([0, 1, 2, 5, 6, 9, 12])
    var window = PrefetchWindow()
    var asked: [String] = []
    list.withUnsafeBufferPointer { list in
      // Line 4 is a rejected line: handed out, not listed.
      for index in [0, 1, 2, 4, 5, 6, 9, 12] {
        window.advance(to: index, distances: (3, 2, 1), in: list.baseAddress!, list.count) {
          asked.append("\($0):\($1 >> PrefetchWindow.indexShift)")
        }
        asked.append("|")
      }
    }
    #expect(
      asked.joined(separator: " ")
        == "0:1 0:2 1:1 0:5 1:2 2:1 | 0:6 1:5 2:2 | 0:9 1:6 2:5 | 0:9 1:6 2:5 | 0:12 1:9 2:6 | 1:12 2:9 | 2:12 | |")
    #expect(window.next == 7)
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
