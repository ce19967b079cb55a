import Labeling
import LogFormats
import Testing

@testable import Dataset

/// The JSON Lines fast path (raw column bytes spliced in) against the generic encoder that
/// goes through `JSONValue`s.
@Suite struct RowEncoderTests {
  static let values: [JSONValue] = [
    .null, .bool(true), .number("-1.50e3"), .string("shoes"), .string("a \"q\" \\ \u{1} é,\n"),
    .array([.number("1"), .object([.init(key: "k", value: .string("]"))])]),
    .object([.init(key: "x,y", value: .array([])), .init(key: "x,y", value: .null)]), .string(""),
  ]

  @Test func fastJSONLinesEqualsTheGenericEncoder() {
    for whole in [false, true] {
      var layout = layout("/tmp/unused")
      if whole { layout.columns = nil }
      var encoder = RowEncoder(layout: layout)
      var rng: UInt64 = 3
      for round in 0..<500 {
        rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        let a = Self.values[Int(rng >> 33) % Self.values.count]
        let b = Self.values[Int(rng >> 40) % Self.values.count]
        let columns: JSONValue =
          whole ? .object([.init(key: "a", value: a), .init(key: "b", value: b)]) : .array([a, b])
        let clicked = round % 3 == 0
        let row = LabeledRow(
          dataset: 0, key: round % 2 == 0 ? "r-\(round)" : "k\"\\é\(round)", predictedAt: t0 + Int64(round) * 1_234_567,
          finalizeAt: t0 + hour,
          columns: columns,
          labels: [LabelOutcome(value: .number(clicked ? "1" : "0"), at: clicked ? t0 + Int64(round) : nil)])
        var fast: [UInt8] = []
        encoder.encode(row, into: &fast)
        var generic: [UInt8] = []
        encoder.encodeGeneric(row, into: &generic)
        #expect(
          fast == generic, "\(String(decoding: fast, as: UTF8.self)) vs \(String(decoding: generic, as: UTF8.self))")
      }
    }
  }

  @Test func arrayElementsSplitsNestedValues() {
    let text = #"[ 1 ,"a,]\"",[2,[3]],{"k":"}"} ,null]"#
    var ranges: [Range<Int>] = []
    let bytes = Array(text.utf8)
    let ok = bytes.withUnsafeBytes { JSONValue.arrayElements($0, into: &ranges) }
    #expect(ok)
    #expect(
      ranges.map { String(decoding: bytes[$0], as: UTF8.self) } == ["1", #""a,]\"""#, "[2,[3]]", #"{"k":"}"}"#, "null"])
    let empty = Array("[]".utf8)
    #expect(empty.withUnsafeBytes { JSONValue.arrayElements($0, into: &ranges) } && ranges.isEmpty)
    let notArray = Array("{}".utf8)
    #expect(!notArray.withUnsafeBytes { JSONValue.arrayElements($0, into: &ranges) })
  }
}
