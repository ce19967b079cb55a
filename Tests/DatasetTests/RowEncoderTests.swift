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
      let encoder = RowEncoder(layout: layout)
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

  /// Random rows in every format, every shape of layout: keys that need escapes, unicode,
  /// columns of every kind (fewer or more than the layout keeps), labels of every kind with and
  /// without times across minute, day and year boundaries and before 1970.
  @Test(arguments: OutputFormat.allCases)
  func randomRowsEqualTheGenericEncoder(format: OutputFormat) {
    var rng = Random(seed: 0xC0FFEE ^ UInt64(format.rawValue.utf8.count))
    let times: [Int64] = [
      0, -1, 1, -1_000_000_000, t0, t0 - 1, 1_798_761_599_999_999_999, 1_798_761_600_000_000_000,  // 2026→2027
      951_868_799_999_000_000, .max, .min,
    ]
    func time() -> Int64 {
      rng.below(3) == 0 ? times[rng.below(times.count)] : t0 + Int64(rng.below(1 << 40)) - (1 << 39)
    }
    for shape in 0..<12 {
      let columnCount = shape % 4
      let labelCount = shape / 4
      let layout = DatasetLayout(
        name: "d", directory: "/tmp/unused", format: format,
        columns: shape == 11 ? nil : (0..<columnCount).map { (name: rng.name(), path: "p\($0)") },
        labels: (0..<labelCount).map { _ in .init(name: rng.name(), type: "json", describe: []) },
        rollMaxBytes: 1 << 30, rollMaxAge: 1 << 60, maxWindow: hour)
      let encoder = RowEncoder(layout: layout)
      for _ in 0..<300 {
        let columns: JSONValue
        if layout.columns == nil {
          columns = .object((0..<rng.below(4)).map { _ in JSONMember(key: rng.name(), value: rng.value()) })
        } else {
          columns = .array((0..<rng.below(columnCount + 2)).map { _ in rng.value() })
        }
        let row = LabeledRow(
          dataset: 0, key: rng.text(), predictedAt: time(), finalizeAt: 0, columns: columns,
          labels: (0..<(labelCount + rng.below(2))).map { _ in
            LabelOutcome(value: rng.value(), at: rng.below(2) == 0 ? nil : time())
          })
        var fast: [UInt8] = []
        encoder.encode(row, into: &fast)
        var generic: [UInt8] = []
        encoder.encodeGeneric(row, into: &generic)
        if fast != generic {
          Issue.record("\(String(decoding: fast, as: UTF8.self)) vs \(String(decoding: generic, as: UTF8.self))")
          return
        }
      }
    }
  }

  /// A row handed over by parts (`RowParts`, what the engine hands the pipeline) is written
  /// to the writer thread's record as it reads back: key, time, the columns' bytes, and each
  /// label's time and value's JSON (its `LabelRecords`); and `RowParts.labeledRow` is the row
  /// it was made from.
  @Test func rowPartsRecordReadsBackAsTheRow() {
    var rng = Random(seed: 77)
    let buffer = ByteBuffer()
    var rows: [LabeledRow] = []
    for n in 0..<500 {
      let columns: JSONValue = .array((0..<rng.below(5)).map { _ in rng.value() })
      let key = n % 7 == 0 ? String(repeating: "k", count: 30 + rng.below(10)) : rng.text()
      let row = LabeledRow(
        dataset: rng.below(3), key: key, predictedAt: t0 + Int64(rng.below(1 << 30)), finalizeAt: t0 + hour,
        columns: columns,
        labels: (0..<rng.below(4)).map { _ in LabelOutcome(value: rng.value(), at: rng.below(2) == 0 ? nil : t0) })
      let labels = LabelRecords.encode(row.labels)
      row.columnsJSON.withUnsafeBytes { raw in
        labels.withUnsafeBytes { labels in
          let parts = RowParts(
            dataset: row.dataset, joinKey: row.joinKey, predictedAt: row.predictedAt, finalizeAt: row.finalizeAt,
            columnsJSON: raw, labelCount: row.labels.count, labelRecords: labels)
          var times: [Int64?] = []
          parts.forEachLabelTime { k, at in
            #expect(k == times.count)
            times.append(at)
          }
          #expect(times == row.labels.map(\.at))
          let copy = parts.labeledRow
          #expect(copy.dataset == row.dataset && copy.key == row.key && copy.predictedAt == row.predictedAt)
          #expect(copy.finalizeAt == row.finalizeAt && Array(copy.columnsJSON) == Array(row.columnsJSON))
          #expect(copy.labels == row.labels)
          RowRecord.write(parts, ageClock: Int64(n), to: buffer)
        }
      }
      rows.append(row)
    }
    guard var p = buffer.bytes.baseAddress else {
      Issue.record("nothing written")
      return
    }
    for (n, row) in rows.enumerated() {
      guard case .row(let view) = RowRecord.read(&p) else {
        Issue.record("row \(n) is not a row record")
        return
      }
      #expect(view.ageClock == Int64(n) && view.predictedAt == row.predictedAt)
      #expect(String(decoding: view.key, as: UTF8.self) == row.key)
      #expect(Array(view.columns) == Array(row.columnsJSON))
      #expect(view.labelCount == row.labels.count)
      var q = view.labels.baseAddress ?? p
      for label in row.labels {
        let (at, json) = LabelRecords.read(&q)
        var expected: [UInt8] = []
        label.value.write(to: &expected)
        #expect(at == label.at && Array(json) == expected)
      }
    }
    #expect(p == buffer.bytes.baseAddress! + buffer.count)
  }

  /// Columns' JSON that is not compact (spaces, malformed, not an array) is split as
  /// `JSONValue.arrayElements` splits it: each element's bytes, `null` for a missing one, and
  /// every column `null` when it is not a well-formed array.
  @Test func columnsThatAreNotCompactAreSplitLikeArrayElements() {
    let texts = [
      "[1,2]", "[ 1 , 2 ]", "[]", "[ ]", "[1]", "[1,2,3]", #"["a,]\"",{"k":[1,"}"]}]"#, "[{ \"a\" : 1 } ,null]",
      "{}", "", "[", "[1,", "[1,]", "[,1]", "[1 2]", "[\"a\"b,1]", "[1}", "[{]}", "[[1],[2]]  ", "\t[1,2]",
      "[\"\\\\\",\"\\\"\"]", "[\"é\",\"\u{1}\"]", "[{\"a\":\"\u{1}\"}]", "[-1.5e3,true,false]", "[1,2] trailing",
      "[1,2]]", "[]x", "[\"unterminated",
    ]
    let encoder = RowEncoder(layout: layout("/tmp/unused"))
    for text in texts {
      let json = Array(text.utf8)
      let row = LabeledRow(
        dataset: 0, key: "k", predictedAt: t0, finalizeAt: 0, columnsJSON: json,
        labels: [LabelOutcome(value: .number("1"), at: nil)])
      var actual: [UInt8] = []
      encoder.encode(row, into: &actual)
      var ranges: [Range<Int>] = []
      let isArray = json.withUnsafeBytes { JSONValue.arrayElements($0, into: &ranges) }
      var expected = Array(#"{"key":"k","predicted_at":"2026-11-30T09:00:00.000Z""#.utf8)
      for (i, name) in ["score", "category"].enumerated() {
        expected += Array(",\"\(name)\":".utf8)
        let valid = isArray && i < ranges.count
        expected += valid ? Array(json[ranges[i]]) : Array("null".utf8)
      }
      expected += Array(#","clicked":1,"clicked_at":null}"#.utf8) + [10]
      #expect(
        actual == expected,
        "\(text): \(String(decoding: actual, as: UTF8.self)) vs \(String(decoding: expected, as: UTF8.self))")
    }
  }

  /// `feedbackd_simple_array_ends` (16 bytes at a time, through `RowEncoder.simpleArrayElements`)
  /// against its contract read byte by byte, on arrays of plain strings, numbers and literals of
  /// every length up to past the 64 bytes it takes, with bytes that make them not simple
  /// dropped in; and, where both split one, against `JSONValue.arrayElements`.
  @Test func simpleArraysAreSplitAsTheirContractSays() {
    let elements = [
      #""ranker-v4""#, "0.4884", #""electronics""#, "true", "null", "-12", #""a,b""#, #""]}[{ :""#, #""é€""#, #""""#,
      "1e5",
    ]
    let noise: [UInt8] = Array(#", "[]{}\"#.utf8) + [0x0A, 0x01, 0x1F, 0x7F, 0xC3, UInt8(ascii: "x")]
    var rng = Random(seed: 2026)
    var accepted = 0
    var rejected = 0
    for _ in 0..<40_000 {
      var text = Array("[".utf8)
      for k in 0..<rng.below(7) {
        if k > 0 { text += Array(",".utf8) }
        text += Array(elements[rng.below(elements.count)].utf8)
      }
      text += Array("]".utf8)
      if rng.below(3) == 0 { text.insert(noise[rng.below(noise.count)], at: rng.below(text.count + 1)) }
      let expected = Self.simpleArrayReference(text)
      let actual = text.withUnsafeBytes { RowEncoder.simpleArrayElements($0) }
      #expect(actual == expected, "\(String(decoding: text, as: UTF8.self))")
      if let expected {
        accepted += 1
        var ranges: [Range<Int>] = []
        if text.withUnsafeBytes({ JSONValue.arrayElements($0, into: &ranges) }) {
          #expect(ranges == expected, "\(String(decoding: text, as: UTF8.self))")
        }
      } else {
        rejected += 1
      }
    }
    #expect(accepted > 15_000 && rejected > 5_000)
  }

  /// The arrays `feedbackd_simple_array_ends` splits, byte by byte: `[` and `]` around 2 to 64
  /// bytes with no backslash or control byte, whose elements are each a string (up to the next
  /// quote) or a run of bytes that are not a quote, comma, bracket, brace or space, none empty.
  static func simpleArrayReference(_ b: [UInt8]) -> [Range<Int>]? {
    guard b.count >= 2, b.count <= 64, b.first == UInt8(ascii: "["), b.last == UInt8(ascii: "]") else { return nil }
    guard b.count > 2 else { return [] }
    guard !b.contains(where: { $0 == UInt8(ascii: "\\") || $0 < 0x20 }) else { return nil }
    let last = b.count - 1
    let stops = Set(#","[]{} "#.utf8)
    var ranges: [Range<Int>] = []
    var i = 1
    while true {
      let start = i
      if b[i] == UInt8(ascii: "\"") {
        i += 1
        while i < last && b[i] != UInt8(ascii: "\"") { i += 1 }
        guard i < last else { return nil }
        i += 1
      } else {
        while i < last && !stops.contains(b[i]) { i += 1 }
      }
      guard i > start, b[i] == UInt8(ascii: ",") || i == last else { return nil }
      ranges.append(start..<i)
      if i == last { return ranges }
      i += 1
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

/// Deterministic random rows' parts.
struct Random {
  var state: UInt64
  init(seed: UInt64) { state = seed }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

  static let characters: [String] = [
    "a", "b", "z", "0", "9", "-", "_", " ", ",", "\"", "\\", "/", "\n", "\r", "\t", "\u{0}", "\u{1F}", "é", "€",
    "😀", "]", "}", "[", "{", ":",
  ]

  mutating func text() -> String {
    (0..<below(24)).map { _ in Self.characters[below(Self.characters.count)] }.joined()
  }

  mutating func name() -> String { below(3) == 0 ? text() : "c\(below(1000))" }

  mutating func value(depth: Int = 0) -> JSONValue {
    switch below(depth > 1 ? 5 : 7) {
    case 0: return .null
    case 1: return .bool(below(2) == 0)
    case 2: return .number(["0", "1", "-1.5e3", "0.25", "12345678901234567890"][below(5)])
    case 3, 4: return .string(text())
    case 5: return .array((0..<below(3)).map { _ in value(depth: depth + 1) })
    default: return .object((0..<below(3)).map { _ in JSONMember(key: name(), value: value(depth: depth + 1)) })
    }
  }
}
