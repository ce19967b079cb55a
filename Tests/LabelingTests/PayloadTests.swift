import LogFormats
import TestSupport
import Testing

@testable import Labeling

/// A prediction's payload written in one pass (`writeExactPayload`, into `payloadRoom` bytes)
/// against `writePayload`, which builds it value by value and rewrites what is not compact:
/// the same bytes whenever the one-pass path takes the event.
@Suite struct PayloadTests {
  static func path(_ text: String) -> FieldPath { FieldPath(segments: text.split(separator: ".").map(String.init)) }

  static let rules = Rules(
    prediction: EventRule(matches: [], key: path("id")),
    feedbackTypes: [],
    labels: [],
    datasets: [
      DatasetSpec(
        name: "columns", labels: [],
        columns: ["a", "b.c", "s", "missing", "a"].map { ColumnSpec(path: path($0), name: $0) }),
      DatasetSpec(name: "whole", labels: [], columns: nil),
      DatasetSpec(name: "none", labels: [], columns: []),
      DatasetSpec(name: "one", labels: [], columns: [ColumnSpec(path: path("b"), name: "b")]),
    ])

  @Test func onePassPayloadEqualsTheValueByValueOne() {
    var random = SplitMix64(seed: 1201)
    let values = [
      "1", "-2.5e3", "true", "null", "\"x\"", "\"\"", "\"esc\\\"aped\"", "\"\\u00e9\"", "\"é\"", "[1, 2]", "[1,2]",
      "{\"c\":3}", "{ \"c\" : 3 }", "{\"c\":\"a\\nb\"}", "{}", "\"abcdefghijkl\"", "12345678901234", "-0.0000000000001",
      "\"a string of more than sixteen bytes\"", "{\"c\":\"sixteen\"}",
    ]
    var taken = 0
    var rewritten = 0
    for round in 0..<4000 {
      var members: [String] = ["\"id\":\"r\(round)\""]
      for key in ["a", "b", "s", "z"] where Int.random(in: 0..<4, using: &random) != 0 {
        members.append("\"\(key)\":\(values.randomElement(using: &random)!)")
      }
      members.shuffle(using: &random)
      let space = Int.random(in: 0..<6, using: &random) == 0 ? " " : ""
      let text = "{" + space + members.joined(separator: "," + space) + "}"
      let bytes = Array(text.utf8)
      bytes.withUnsafeBytes { raw in
        var event = ScannedEvent(time: 0, json: raw, fields: ScannedFields(count: Self.rules.fieldPaths.count))
        guard Self.rules.selector.scan(raw, into: &event.fields) != nil else {
          Issue.record("not JSON: \(text)")
          return
        }
        var reference: [UInt8] = []
        Self.rules.writePayload(event, to: &reference)
        let room = Self.rules.payloadRoom(event)
        var onePass = [UInt8](repeating: 0xEE, count: room + 64)
        guard let length = onePass.withUnsafeMutableBytes({ Self.rules.writeExactPayload(event, to: $0.baseAddress!) })
        else {
          rewritten += 1
          return
        }
        taken += 1
        #expect(length == reference.count, "\(text)")
        #expect(length + 16 <= room, "\(text)")
        #expect(Array(onePass[..<length]) == reference, "\(text)")
        #expect(onePass[room...].allSatisfy { $0 == 0xEE }, "wrote past its room: \(text)")
      }
    }
    // Both paths are exercised.
    #expect(taken > 500)
    #expect(rewritten > 300)
  }
}
