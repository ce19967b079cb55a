import Labeling
import LogFormats
import TestSupport
import Testing

@testable import FeedbackDaemon

/// The event class a read-ahead batch gives a line from its shape (`LineScanAhead.Batch`:
/// lines of a shape whose `where:` fields are among its constants share one class), against
/// matching each line's own fields: line for line, over lines whose `event` is a constant of
/// their shape, lines whose `event` varies within one shape, lines without it, and lines of
/// ever new shapes that push older shapes (and their ids) out.
struct EventClassOfShapeTests {
  static func path(_ text: String) -> FieldPath { FieldPath(segments: text.split(separator: ".").map(String.init)) }

  static let rules = Rules(
    prediction: EventRule(
      matches: [
        FieldMatch(path: path("event"), value: .string("prediction")),
        FieldMatch(path: path("meta.level"), value: .string("INFO")),
      ], key: path("request_id")),
    feedbackTypes: [
      FeedbackType(
        name: "click",
        rule: EventRule(matches: [FieldMatch(path: path("event"), value: .string("click"))], key: path("request_id"))),
      FeedbackType(
        name: "purchase",
        rule: EventRule(
          matches: [
            FieldMatch(path: path("event"), value: .string("purchase")),
            FieldMatch(path: path("ok"), value: .bool(true)),
          ],
          key: path("request_id"))),
    ],
    labels: [LabelSpec(name: "clicked", feedbackType: 0, window: 60)],
    datasets: [DatasetSpec(name: "d", labels: [0], columns: nil)])

  static func line(_ rng: inout SplitMix64, round: Int) -> String {
    let time = "\"time\":\"2026-12-02T06:\(10 + rng.below(50)):\(10 + rng.below(50)).\(100 + rng.below(900))Z\""
    let id = "\"request_id\":\"r\(rng.below(1_000_000))\""
    let events = ["prediction", "click", "purchase", "http"]
    let event = events[rng.below(events.count)]
    switch rng.below(6) {
    case 0:
      // The event varies within one layout: never a constant of the shape.
      return "{\(time),\"event\":\"\(event)\",\(id),\"meta\":{\"level\":\"INFO\"},\"ok\":true}"
    case 1:
      // A layout (a key) per event: each event a constant of its shape.
      return "{\(time),\"\(event)\":1,\"event\":\"\(event)\",\(id),\"meta\":{\"level\":\"INFO\"},\"ok\":true}"
    case 2:
      // The level varies: one of the prediction rule's fields is a value.
      let level = ["INFO", "DEBUG"][rng.below(2)]
      return "{\(time),\"event\":\"prediction\",\(id),\"meta\":{\"level\":\"\(level)\"}}"
    case 3:
      // No event at all.
      return "{\(time),\(id),\"meta\":{\"level\":\"INFO\"}}"
    case 4:
      // `ok` varies: purchase or not.
      return "{\(time),\"event\":\"purchase\",\(id),\"ok\":\(rng.below(2) == 0)}"
    default:
      // Ever new layouts (more than the shapes kept), each with its own constant event.
      let key = "k\(round)_\(event)"
      return "{\(time),\"\(key)\":1,\"event\":\"\(event)\",\(id),\"meta\":{\"level\":\"INFO\"},\"ok\":true}"
    }
  }

  @Test func aLineOfAShapeHasTheClassItsFieldsGive() {
    let decoder = LineDecoder(format: .json, timeField: nil)
    let selector = decoder.selector(for: Self.rules.fieldPaths)
    let scanner = LineScanAhead(decoder: decoder, selector: selector, rules: Self.rules, keyHashSeed: 7)
    let matcher = Self.rules.matcher
    var rng = SplitMix64(seed: 612)
    var checked = 0
    var byClass = [UInt32: Int]()
    // One batch, reused as the read-ahead threads reuse theirs: what it learnt stays, and
    // shapes of the rounds before give way to new ones.
    guard let batch = scanner.makeBatch() as? LineScanAhead.Batch else {
      Issue.record("not a LineScanAhead.Batch")
      return
    }
    for round in 0..<40 {
      for _ in 0..<3 {
        batch.removeAll()
        let lines = (0..<400).map { _ in Self.line(&rng, round: round) }
        for line in lines { _ = Array(line.utf8).withUnsafeBytes { batch.append($0) } }
        // The batch's list of the lines it hands out, for prefetching (`prefetchAhead`): each
        // line that matches a rule, with its key's hash and whether it is feedback.
        var listed: [UInt64] = []
        for index in lines.indices {
          let (eventClass, keyHash, lineHash) = batch.digest(index)
          guard eventClass != .ignored else { continue }
          var word = UInt64(index) << PrefetchWindow.indexShift
          if let keyHash { word |= PrefetchWindow.hasKey | keyHash & 0xFFFF_FFFF }
          if lineHash != nil { word |= PrefetchWindow.isFeedback }
          listed.append(word)
        }
        #expect(batch.handedWords == listed)
        #expect(
          listed.contains { $0 & PrefetchWindow.keyedFeedback == PrefetchWindow.keyedFeedback },
          "no feedback with a key listed")
        for (index, line) in lines.enumerated() {
          Array(line.utf8).withUnsafeBytes { raw in
            var event = ScannedEvent(
              time: 0, json: UnsafeRawBufferPointer(start: nil, count: 0),
              fields: ScannedFields(count: selector.paths.count))
            #expect(batch.load(index, line: raw, into: &event) == nil, "\(line)")
            var fresh = ScannedEvent(time: 0, json: raw, fields: ScannedFields(count: selector.paths.count))
            #expect(decoder.scan(raw, selector: selector, into: &fresh) == nil)
            let expected = matcher.eventClass(fresh)
            #expect(batch.digest(index).0 == expected, "\(line)")
            byClass[expected.code, default: 0] += 1
            checked += 1
          }
        }
      }
    }
    #expect(checked == 40 * 3 * 400)
    // Every class came up often.
    #expect(byClass.count == 4 && byClass.values.allSatisfy { $0 > 2_000 }, "\(byClass)")
  }
}
