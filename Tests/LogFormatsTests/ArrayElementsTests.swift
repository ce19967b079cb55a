import LogFormats
import TestSupport
import Testing

/// `JSONValue.arrayElements`: the element ranges of exactly the texts `JSONValue.parse` reads
/// as an array, false for everything else.
@Suite struct ArrayElementsTests {
  /// Whether the ranges lie inside the bytes (recording an issue if not).
  func inBounds(_ ranges: [Range<Int>], _ bytes: [UInt8]) -> Bool {
    guard let bad = ranges.first(where: { $0.lowerBound < 0 || $0.upperBound > bytes.count }) else { return true }
    let text = String(decoding: bytes, as: UTF8.self).debugDescription
    Issue.record("range \(bad) outside the \(bytes.count) bytes of \(text)")
    return false
  }

  /// The elements' texts, or nil when `arrayElements` returns false.
  func elements(_ text: String) -> [String]? {
    let bytes = Array(text.utf8)
    var ranges: [Range<Int>] = [0..<1]
    let ok = bytes.withUnsafeBytes { JSONValue.arrayElements($0, into: &ranges) }
    guard ok, inBounds(ranges, bytes) else { return nil }
    return ranges.map { String(decoding: bytes[$0], as: UTF8.self) }
  }

  @Test(arguments: [
    "[,1]", "[1,]", "[1,,2]", "[,]", "[", "]", "[1 2]", "", " ", "\n", "[1", "[1,", "[1,2", "[[1]", "[[1],",
    "[1,2] x", "[1,2]]", "[1,2],", "[1][2]", "[[1,]]", "[[,1]]", "[[1 2]]", "[{]}]", "[{]", "[}]", "[1}", "[{}",
    #"[{"a":}]"#, #"[{"a" 1}]"#, #"[{"a":1,}]"#, #"[{1:2}]"#, "[abc]", "[tru]", "[truex]", "[nul]", "[01]",
    "[1.]", "[-]", "[+1]", "[.5]", "[1e]", #"["a"b]"#, #"["a" "b"]"#, #"["unterminated]"#, #"["a\"]"#,
    #"["\x"]"#, #"["\u12"]"#, "[\"\u{1}\"]", "[\"a\nb\"]", "{}", "1", "null", #""[1]""#, "[1]\u{0}", "\u{0}[1]",
    String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
  ])
  func malformedOrNotAnArrayIsFalse(_ text: String) {
    #expect(elements(text) == nil, "\(text.debugDescription)")
    // The parser agrees.
    if case .array = try? JSONValue.parse(text) {
      Issue.record("JSONValue.parse reads \(text.debugDescription) as an array")
    }
  }

  @Test func wellFormedArraysGiveTheirElementsWithoutSurroundingWhitespace() {
    #expect(elements("[]") == [])
    #expect(elements(" [ ] ") == [])
    #expect(elements("\t[\n]\r\n") == [])
    #expect(elements("[1]") == ["1"])
    #expect(elements("[ 1 ]") == ["1"])
    #expect(elements("\t[1,2]") == ["1", "2"])
    #expect(elements("[1,2]  \n") == ["1", "2"])
    #expect(elements("[[]]") == ["[]"])
    #expect(elements("[{}]") == ["{}"])
    #expect(elements("[[],{},\"\"]") == ["[]", "{}", "\"\""])
    #expect(elements("[-1.5e3,true,false,null,0]") == ["-1.5e3", "true", "false", "null", "0"])
    #expect(
      elements(#" [ 1 , "a" ,[2, [3]] ,{"k": "}"}, null ]"#) == ["1", #""a""#, "[2, [3]]", #"{"k": "}"}"#, "null"])
    #expect(elements(#"["a,]\"",{"k":[1,"}"]}]"#) == [#""a,]\"""#, #"{"k":[1,"}"]}"#])
    #expect(elements(#"["\\","\"","é","\u00e9"]"#) == [#""\\""#, #""\"""#, #""é""#, #""\u00e9""#])
    #expect(elements("[[[1, 2] , [ ]],{ \"a\" : [ { } ] }]") == ["[[1, 2] , [ ]]", "{ \"a\" : [ { } ] }"])
    // As deep as the parser goes (`JSONValue.maximumDepth`), and no deeper (above).
    let depth = JSONValue.maximumDepth
    #expect(
      elements(String(repeating: "[", count: depth) + String(repeating: "]", count: depth))
        == [String(repeating: "[", count: depth - 1) + String(repeating: "]", count: depth - 1)])
  }

  // MARK: Randomized against the parser

  static let whitespace = ["", "", "", " ", "  ", "\n", "\t", "\r\n", " \n "]
  static let numbers = [
    "0", "-0", "1", "-1", "12", "1.5", "-3e2", "1E+10", "2.50e-3", "123456789012345678901234567890",
  ]
  static let stringPieces = [
    "a", "b", "é", "日本", "😀", " ", ",", "]", "[", "{", "}", ":", #"\\"#, #"\""#, #"\n"#, #"\t"#, #"\/"#, #"\u00e9"#,
    #"\ud83d\ude00"#,
  ]

  func space(_ rng: inout SplitMix64) -> String { Self.whitespace[rng.below(Self.whitespace.count)] }

  func string(_ rng: inout SplitMix64) -> String {
    "\"" + (0..<rng.below(5)).map { _ in Self.stringPieces[rng.below(Self.stringPieces.count)] }.joined() + "\""
  }

  /// A random JSON value as text, with random whitespace inside its containers.
  func value(_ rng: inout SplitMix64, depth: Int) -> String {
    switch rng.below(depth > 3 ? 6 : 8) {
    case 0: return ["null", "true", "false"][rng.below(3)]
    case 1, 2: return Self.numbers[rng.below(Self.numbers.count)]
    case 3, 4, 5: return string(&rng)
    case 6: return array(&rng, depth: depth + 1)
    default:
      let members = (0..<rng.below(4)).map { _ in
        space(&rng) + string(&rng) + space(&rng) + ":" + space(&rng) + value(&rng, depth: depth + 1) + space(&rng)
      }
      return "{" + (members.isEmpty ? space(&rng) : members.joined(separator: ",")) + "}"
    }
  }

  func array(_ rng: inout SplitMix64, depth: Int) -> String {
    let elements = (0..<rng.below(6)).map { _ in space(&rng) + value(&rng, depth: depth) + space(&rng) }
    return "[" + (elements.isEmpty ? space(&rng) : elements.joined(separator: ",")) + "]"
  }

  /// Compares `arrayElements` with `JSONValue.parse` on one text: true exactly when the parser
  /// reads an array, and then each range, parsed alone, is the parsed array's element (and has
  /// no whitespace around it).
  func compare(_ bytes: [UInt8]) {
    var ranges: [Range<Int>] = []
    let ok = bytes.withUnsafeBytes { JSONValue.arrayElements($0, into: &ranges) }
    let text = String(decoding: bytes, as: UTF8.self).debugDescription
    guard case .array(let expected) = try? JSONValue.parse(bytes) else {
      #expect(!ok, "arrayElements accepts \(text), which the parser does not read as an array")
      return
    }
    #expect(ok, "arrayElements rejects the array \(text)")
    guard ok, inBounds(ranges, bytes) else { return }
    let parsed = ranges.map { try? JSONValue.parse(Array(bytes[$0])) }
    #expect(parsed == expected.map { Optional($0) }, "elements of \(text): ranges \(ranges)")
    for range in ranges {
      let blank: [UInt8] = [0x20, 0x09, 0x0A, 0x0D]
      let trimmed =
        !range.isEmpty && !blank.contains(bytes[range.lowerBound]) && !blank.contains(bytes[range.upperBound - 1])
      #expect(trimmed, "element \(range) of \(text) has whitespace around it")
    }
  }

  @Test(arguments: [1, 2, 3, 4] as [UInt64])
  func generatedArraysSplitAsTheParserReadsThem(seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    for _ in 0..<500 {
      compare(Array((space(&rng) + array(&rng, depth: 0) + space(&rng)).utf8))
    }
  }

  /// Generated arrays with one byte deleted, inserted or replaced: most are malformed, some
  /// are other valid texts; `arrayElements` must accept exactly the arrays among them.
  @Test(arguments: [5, 6, 7, 8] as [UInt64])
  func damagedArraysAreAcceptedExactlyWhenTheParserReadsAnArray(seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    let bytesToInsert = Array(",[]{}\":\\ 1a-.e\n".utf8) + [0x00, 0xC3, 0xFF]
    for _ in 0..<2000 {
      var bytes = Array((space(&rng) + array(&rng, depth: 0) + space(&rng)).utf8)
      let at = rng.below(bytes.count + 1)
      switch rng.below(3) {
      case 0 where at < bytes.count: bytes.remove(at: at)
      case 1 where at < bytes.count: bytes[at] = bytesToInsert[rng.below(bytesToInsert.count)]
      default: bytes.insert(bytesToInsert[rng.below(bytesToInsert.count)], at: at)
      }
      compare(bytes)
    }
  }
}
