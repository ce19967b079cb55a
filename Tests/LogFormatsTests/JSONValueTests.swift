import LogFormats
import TestSupport
import Testing

struct JSONParsingTests {
  @Test func parsesEveryKind() throws {
    let value = try JSONValue.parse(#" {"a": null, "b": [true, false], "c": -1.50e+3, "d": "x"} "#)
    #expect(
      value
        == .object([
          JSONMember(key: "a", value: .null),
          JSONMember(key: "b", value: .array([.bool(true), .bool(false)])),
          JSONMember(key: "c", value: .number("-1.50e+3")),
          JSONMember(key: "d", value: .string("x")),
        ]))
  }

  @Test func parsesFromAllInputKinds() throws {
    let text = #"{"k":[1,"é"]}"#
    let fromString = try JSONValue.parse(text)
    let fromArray = try JSONValue.parse(Array(text.utf8))
    let fromBuffer = try Array(text.utf8).withUnsafeBytes { buffer in
      try JSONValue.parse(buffer)
    }
    #expect(fromString == fromArray)
    #expect(fromString == fromBuffer)
  }

  @Test(arguments: [
    "0", "-0", "1", "-1", "1.5", "1.50", "-3e2", "1E+10", "1e-7", "0.0", "123456789012345678901234567890",
    "1.0e999",
  ])
  func numbersKeepTheirLiteralText(_ literal: String) throws {
    #expect(try JSONValue.parse(literal) == .number(literal))
    #expect(try JSONValue.parse(" \(literal)\n").jsonText == literal)
    #expect(try JSONValue.parse("[\(literal)]").jsonText == "[\(literal)]")
  }

  @Test(arguments: [
    "01", "-01", "+1", ".5", "1.", "-", "0x10", "NaN", "Infinity", "-Infinity", "1e", "1e+", "1.e3", "- 1",
    "00", "1.5.2", "1e5e5",
  ])
  func rejectsInvalidNumbers(_ text: String) {
    #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    #expect(throws: JSONParseError.self) { try JSONValue.parse("[\(text)]") }
  }

  @Test(arguments: [
    "", " ", "[1,]", #"{"a":1,}"#, "[1 2]", #"{"a" 1}"#, #"{a:1}"#, "[1] // c", "/* c */ [1]", "[", "]", "{",
    #"{"a":1"#, "[1]]", "[1] [2]", "tru", "nul", "True", #"'a'"#, #"{"a":1}x"#, #""abc"#, "\u{feff}[]",
    "[\u{0c}]", #"{"a":1 "b":2}"#, #"{,}"#, "[,1]", "{\"a\"}",
  ])
  func rejectsInvalidStructure(_ text: String) {
    #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
  }

  @Test(arguments: [
    #""\x""#, #""\u12""#, #""\u12G4""#, #""\'""#, #""\a""#, #""\"#, #""\U0041""#, #""\ ""#,
  ])
  func rejectsInvalidEscapes(_ text: String) {
    #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
  }

  @Test func rejectsRawControlCharactersInStrings() throws {
    for byte in UInt8(0)..<0x20 {
      let bytes: [UInt8] = [0x22, 0x61, byte, 0x62, 0x22]
      #expect(throws: JSONParseError.self, "byte \(byte)") { try JSONValue.parse(bytes) }
    }
    // DEL is allowed raw.
    #expect(try JSONValue.parse([0x22, 0x7F, 0x22]) == .string("\u{7F}"))
  }

  @Test(
    arguments: [
      [0xC0, 0x80],  // overlong NUL
      [0xC1, 0xBF],  // overlong
      [0xE0, 0x80, 0x80],  // overlong 3-byte
      [0xED, 0xA0, 0x80],  // UTF-8 encoded surrogate U+D800
      [0xF4, 0x90, 0x80, 0x80],  // > U+10FFFF
      [0xF5, 0x80, 0x80, 0x80],
      [0xFF],
      [0x80],  // lone continuation
      [0xC3],  // truncated
      [0xE2, 0x82],  // truncated
      [0xE2, 0x28, 0xA1],  // bad continuation
    ] as [[UInt8]])
  func rejectsInvalidUTF8(_ sequence: [UInt8]) {
    #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22] + sequence + [0x22]) }
    #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0x5C, 0x6E] + sequence + [0x22]) }
  }

  @Test func acceptsValidMultibyteUTF8() throws {
    let text = "aé€😀\u{10FFFF}\u{FFFF}"
    #expect(try JSONValue.parse("\"\(text)\"") == .string(text))
    #expect(try JSONValue.parse("\"\\n\(text)\"") == .string("\n" + text))
  }

  @Test func decodesEscapes() throws {
    let value = try JSONValue.parse(#""\"\\\/\b\f\n\r\t\u0041\u00e9\u20AC\u0000""#)
    #expect(value == .string("\"\\/\u{8}\u{c}\n\r\tAé€\u{0}"))
  }

  @Test func combinesSurrogatePairs() throws {
    #expect(try JSONValue.parse(#""\uD83D\uDE00""#) == .string("😀"))
    #expect(try JSONValue.parse(#""a\ud834\udd1eb""#) == .string("a𝄞b"))
  }

  @Test func replacesLoneSurrogatesWithReplacementCharacter() throws {
    #expect(try JSONValue.parse(#""\uD800""#) == .string("\u{FFFD}"))
    #expect(try JSONValue.parse(#""\uDC00x""#) == .string("\u{FFFD}x"))
    #expect(try JSONValue.parse(#""\uD800\u0041""#) == .string("\u{FFFD}A"))
    #expect(try JSONValue.parse(#""\uD800\uD800\uDC00""#) == .string("\u{FFFD}𐀀"))
  }

  @Test func keepsDuplicateKeysInOrder() throws {
    let value = try JSONValue.parse(#"{"a":1,"b":2,"a":3}"#)
    #expect(value.objectMembers?.map(\.key) == ["a", "b", "a"])
    #expect(value.jsonText == #"{"a":1,"b":2,"a":3}"#)
  }

  @Test func acceptsNestingUpToTheLimitAndRejectsDeeper() throws {
    let limit = JSONValue.maximumDepth
    #expect(limit == 512)
    let deepest = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
    #expect(throws: Never.self) { try JSONValue.parse(deepest) }
    let tooDeep = String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)
    #expect(throws: JSONParseError.self) { try JSONValue.parse(tooDeep) }
    let objects = String(repeating: #"{"a":"#, count: limit + 1) + "1" + String(repeating: "}", count: limit + 1)
    #expect(throws: JSONParseError.self) { try JSONValue.parse(objects) }
    // Very deep hostile input is rejected, not a stack overflow.
    #expect(throws: JSONParseError.self) { try JSONValue.parse(String(repeating: "[", count: 1_000_000)) }
    #expect(throws: JSONParseError.self) { try JSONValue.parse(String(repeating: #"{"":"#, count: 200_000)) }
  }

  @Test func reportsErrorOffsets() {
    do {
      _ = try JSONValue.parse("[1,2,x]")
      Issue.record("should throw")
    } catch {
      #expect(error.offset == 5)
      #expect(error.description.contains("5"))
    }
  }
}

struct JSONWritingTests {
  @Test func writesCompactly() throws {
    let value = try JSONValue.parse(" { \"a\" : [ 1 , 2.50 , { } , [ ] ] , \"b\" : null , \"c\" : true } ")
    #expect(value.jsonText == #"{"a":[1,2.50,{},[]],"b":null,"c":true}"#)
  }

  @Test func escapesMinimally() {
    let value = JSONValue.string("q\" b\\ s/ \u{8}\u{c}\n\r\t \u{0}\u{1f}\u{7f} é😀")
    #expect(value.jsonText == "\"q\\\" b\\\\ s/ \\b\\f\\n\\r\\t \\u0000\\u001f\u{7f} é😀\"")
  }

  @Test func writesNonASCIIAsRawUTF8() {
    var out: [UInt8] = []
    JSONValue.string("é").write(to: &out)
    #expect(out == [0x22, 0xC3, 0xA9, 0x22])
  }

  @Test func writesKeysEscaped() {
    let value = JSONValue.object([JSONMember(key: "a\"b\n", value: .array([]))])
    #expect(value.jsonText == #"{"a\"b\n":[]}"#)
  }

  @Test func appendsToExistingOutput() {
    var out: [UInt8] = Array("x=".utf8)
    JSONValue.number("1.0").write(to: &out)
    #expect(String(decoding: out, as: UTF8.self) == "x=1.0")
  }

  @Test(arguments: [
    #"{"a":"\u0000\u001f\"\\\/","b":[1.50,-3e2,0,-0.0e-0],"c":{"d":{"e":[null,true,false]}}}"#,
    #"["\ud83d\ude00","\u00e9","日本語","\uD800"]"#,
    #"{"k":"tab\there","":"empty key","a.b":{"c":1}}"#,
    #"[[[[[[]]]]],{},"",0]"#,
    "\"\u{1}\u{2}\"".replacingControls(),
  ])
  func roundTrips(_ text: String) throws {
    let value = try JSONValue.parse(text)
    var out: [UInt8] = []
    value.write(to: &out)
    let reparsed = try JSONValue.parse(out)
    #expect(reparsed == value)
    // Writing is deterministic: a second round produces the same bytes.
    var out2: [UInt8] = []
    reparsed.write(to: &out2)
    #expect(out2 == out)
  }

  @Test func roundTripsEveryControlCharacterAndRandomStrings() throws {
    var rng = SplitMix64(seed: 42)
    let alphabet: [Unicode.Scalar] =
      (0..<0x30).compactMap(Unicode.Scalar.init) + ["\\", "\"", "é", "€", "😀", "\u{10FFFF}", "\u{FFFD}", "a"]
    for _ in 0..<300 {
      var scalars = String.UnicodeScalarView()
      for _ in 0..<Int(rng.next() % 20) { scalars.append(alphabet[Int(rng.next() % UInt64(alphabet.count))]) }
      let text = String(scalars)
      let value = JSONValue.object([JSONMember(key: text, value: .array([.string(text), .number("1e-3")]))])
      #expect(try JSONValue.parse(value.jsonText) == value)
    }
  }
}

extension String {
  /// Escapes raw control characters so the literal is valid JSON (used for a test argument).
  fileprivate func replacingControls() -> String {
    var result = ""
    for scalar in unicodeScalars {
      if scalar.value < 0x20 {
        result += "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
      } else {
        result.unicodeScalars.append(scalar)
      }
    }
    return result
  }
}

struct JSONAccessTests {
  let document: JSONValue

  init() throws {
    document = try JSONValue.parse(
      #"""
      {"time":"2026-11-30T09:00:00Z","user":{"id":42,"name":"ann","prefs":{"lang":"en"}},
       "a.b":{"c":"quoted"},"a":{"b":{"c":"nested"}},"dup":1,"dup":{"x":"last"},
       "list":[1,2],"n":null,"s":"text","f":1.25}
      """#)
  }

  @Test func subscriptFindsMembers() {
    #expect(document["s"] == .string("text"))
    #expect(document["n"] == .null)
    #expect(document["missing"] == nil)
    #expect(JSONValue.array([])["x"] == nil)
    #expect(JSONValue.string("x")["x"] == nil)
  }

  @Test func duplicateKeysLastOneWins() throws {
    #expect(document["dup"] == .object([JSONMember(key: "x", value: .string("last"))]))
    #expect(document.value(at: try FieldPath(parsing: "dup.x")) == .string("last"))
    let flat = try JSONValue.parse(#"{"k":"first","k":"second"}"#)
    #expect(flat["k"] == .string("second"))
  }

  @Test func walksNestedPaths() throws {
    #expect(document.value(at: try FieldPath(parsing: "user.id")) == .number("42"))
    #expect(document.value(at: try FieldPath(parsing: "user.prefs.lang")) == .string("en"))
    #expect(document.value(at: try FieldPath(parsing: "user")) == document["user"])
  }

  @Test func quotedSegmentsMatchKeysWithDots() throws {
    #expect(document.value(at: try FieldPath(parsing: #""a.b".c"#)) == .string("quoted"))
    #expect(document.value(at: try FieldPath(parsing: "a.b.c")) == .string("nested"))
  }

  @Test func missingOrNonObjectSegmentsGiveNil() throws {
    #expect(document.value(at: try FieldPath(parsing: "user.missing")) == nil)
    #expect(document.value(at: try FieldPath(parsing: "missing.id")) == nil)
    #expect(document.value(at: try FieldPath(parsing: "s.length")) == nil)
    #expect(document.value(at: try FieldPath(parsing: "list.0")) == nil)
    #expect(document.value(at: try FieldPath(parsing: "n.x")) == nil)
  }

  @Test func keyTextAndDoubleValue() {
    #expect(document["s"]?.keyText == "text")
    #expect(document.value(at: FieldPath(segments: ["user", "id"]))?.keyText == "42")
    #expect(JSONValue.number("1.50").keyText == "1.50")
    #expect(document["n"]?.keyText == nil)
    #expect(JSONValue.bool(true).keyText == nil)
    #expect(document["user"]?.keyText == nil)
    #expect(document["f"]?.doubleValue == 1.25)
    #expect(JSONValue.number("-3e2").doubleValue == -300)
    #expect(JSONValue.string("1").doubleValue == nil)
  }
}
