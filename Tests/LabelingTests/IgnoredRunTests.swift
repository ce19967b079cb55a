import LogFormats
import TestSupport
import Testing

@testable import Labeling

/// Events that match no rule, read one by one or taken at once as a run
/// (`processIgnored(latest:source:count:)`: what the pipeline does with the lines a cursor
/// passed over on the read-ahead thread), leave the same rows, the same side records in the
/// same order (orphans written with a row and orphans the watermark retired interleave the
/// same way whether it moved in one step or in several), the same sequence numbers and counts.
@Suite struct IgnoredRunTests {
  @Test(arguments: [1, 2, 3, 4] as [UInt64])
  func aRunOfIgnoredEventsTakenAtOnceChangesNothing(seed: UInt64) throws {
    var rng = SplitMix64(seed: seed)
    var time = t0
    var predictions = 0
    var events: [(kind: String, id: String, time: Int64)] = []
    for _ in 0..<20_000 {
      // Now and then a long step: a run of ignored events then moves the watermark past many
      // rows and orphans at once.
      time += Int64(rng.below(rng.below(40) == 0 ? 300 : 8)) * second
      let kind = rng.below(100)
      if kind < 20 {
        predictions += 1
        events.append(("prediction", "p\(predictions)", time))
      } else if kind < 40 {
        // Feedback of none of the predictions (an orphan the watermark retires), or of one of
        // the last few, often from before it (outside its window: an orphan written with the
        // prediction's row).
        let id = rng.below(2) == 0 ? "none\(rng.below(1_000_000))" : "p\(max(1, predictions - rng.below(3)))"
        events.append(("click", id, time - Int64(rng.below(12)) * second))
      } else {
        events.append(("other", "", time - Int64(rng.below(4)) * second))
      }
    }
    let rules = makeRules(clickWindow: 45 * second, skew: 7 * second, ooo: 5 * second)
    func feed(_ engine: LabelEngine, _ e: (kind: String, id: String, time: Int64)) throws {
      let text = "{\"event\":\"\(e.kind)\",\"id\":\"\(e.id)\"}"
      try engine.process(Event(time: e.time, object: try JSONValue.parse(text)), source: 0, lineHash: UInt64(e.time))
    }
    let oneByOne = Recorder()
    let single = try LabelEngine(rules: rules, store: InMemoryStateStore(), output: oneByOne, sources: 1)
    for e in events { try feed(single, e) }
    try single.flush()
    let inRuns = Recorder()
    let batched = try LabelEngine(rules: rules, store: InMemoryStateStore(), output: inRuns, sources: 1)
    var run: (count: Int, latest: Int64) = (0, .min)
    var runs = 0
    for e in events {
      if e.kind == "other" {
        run = (run.count + 1, max(run.latest, e.time))
        continue
      }
      if run.count > 0 {
        try batched.processIgnored(latest: run.latest, source: 0, count: run.count)
        runs += 1
        run = (0, .min)
      }
      try feed(batched, e)
    }
    try batched.processIgnored(latest: run.latest, source: 0, count: run.count)
    try batched.flush()
    #expect(runs > 2_000)
    #expect(batched.seq == single.seq)
    #expect(batched.counters == single.counters)
    #expect(inRuns.rows.map { "\($0)" } == oneByOne.rows.map { "\($0)" })
    let orphans = oneByOne.side.filter { if case .orphan = $0 { true } else { false } }.count
    #expect(orphans > 1_000, "\(orphans) orphans")
    let first = zip(inRuns.side, oneByOne.side).enumerated().first { "\($0.element.0)" != "\($0.element.1)" }?.offset
    #expect(inRuns.side.count == oneByOne.side.count)
    #expect(first == nil, "side records differ from \(first ?? -1) on")
  }
}
