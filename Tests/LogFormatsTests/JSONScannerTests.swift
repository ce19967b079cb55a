import Foundation
import TestSupport
import Testing

@testable import LogFormats

/// The field scanner against the obviously-correct parser: same validity, same values.
struct JSONScannerTests {
  static let paths: [FieldPath] = [
    FieldPath(segments: ["a"]), FieldPath(segments: ["a", "b"]), FieldPath(segments: ["b"]),
    FieldPath(segments: ["c", "a", "b"]), FieldPath(segments: ["k\u{e9}y"]), FieldPath(segments: [""]),
    FieldPath(segments: ["time"]),
  ]

  /// Checks the scan of `bytes` against `JSONValue.parse` + `value(at:)`; returns whether it parsed.
  @discardableResult
  static func expectAgreement(_ bytes: [UInt8], paths: [FieldPath] = paths, _ name: String = "") -> Bool {
    let selector = FieldSelector(paths: paths)
    let parsed = try? JSONValue.parse(bytes)
    return bytes.withUnsafeBytes { raw in
      var event = ScannedEvent(time: 0, json: raw, fields: ScannedFields(count: paths.count))
      let kind = selector.scan(raw, into: &event.fields)
      #expect((kind != nil) == (parsed != nil), "validity differs: \(name)")
      guard let value = parsed else { return false }
      for (index, path) in paths.enumerated() {
        let expected = value.value(at: path)
        #expect(event.value(index) == expected, "\(name): \(path)")
        var compact: [UInt8] = []
        event.writeCompact(index, to: &compact)
        var reference: [UInt8] = []
        (expected ?? .null).write(to: &reference)
        #expect(compact == reference, "\(name): compact \(path)")
        #expect(event.keyText(index) == expected?.keyText, "\(name): key \(path)")
        #expect(event.doubleValue(index) == expected?.doubleValue, "\(name): double \(path)")
        if let string = expected?.stringValue {
          #expect(event.stringEquals(index, Array(string.utf8)), "\(name): string \(path)")
          #expect(!event.stringEquals(index, Array((string + "x").utf8)))
        }
      }
      if case .object = value {
        var document: [UInt8] = []
        event.writeDocument(to: &document)
        var reference: [UInt8] = []
        value.write(to: &reference)
        #expect(document == reference, "\(name): document")
      }
      return true
    }
  }

  @Test func agreesWithTheParserOnJSONTestSuite() throws {
    var accepted = 0
    for file in try JSONTestSuiteTests.files(prefix: "") {
      let bytes = [UInt8](try Data(contentsOf: file))
      let ok = Self.expectAgreement(bytes, file.lastPathComponent)
      if file.lastPathComponent.hasPrefix("y_") { #expect(ok, "\(file.lastPathComponent) should scan") }
      if file.lastPathComponent.hasPrefix("n_") { #expect(!ok, "\(file.lastPathComponent) should be rejected") }
      if ok { accepted += 1 }
    }
    #expect(accepted >= 95)
  }

  @Test(arguments: [
    #"{"a":1,"a":{"b":2}}"#,  // last wins, nested
    #"{"a":{"b":2},"a":3}"#,  // a later non-object hides a.b
    #"{"a":{"b":2},"a":{"c":1}}"#,  // a later object without b hides a.b
    #"{"a":{"b":2,"b":"x"}}"#,
    #"{ "a" : { "b" : [1, 2] } , "b" : "t\"q" }"#,  // whitespace and escapes
    #"{"\u0061":5,"b":"\/"}"#,  // escaped key matches "a"
    #"{"c":{"a":{"b":{"d":[{"a":1}]}}}}"#,
    #"{"kéy":"ü","":null,"time":1.5e3}"#,
    #"{"a":true,"b":false,"c":null}"#,
    #"{"a":[{"b":1}]}"#,  // no descent into arrays
    #"{"b":"\ud83d\ude00 \ud800 x"}"#,
    #"{"b":-0.0e+5}"#,
  ])
  func agreesOnEdgeCases(_ text: String) {
    #expect(Self.expectAgreement(Array(text.utf8), text))
  }

  /// Keys are told apart by their first eight bytes in one comparison, then the rest: keys
  /// sharing eight bytes or more, keys one byte longer or shorter than a selected one, and keys
  /// so close to the end of the text that fewer than eight bytes follow them.
  ///
  /// With `sameHead`, two selected keys share their length and first eight bytes, so the node's
  /// keys are searched one by one; without, through its hash table.
  @Test(arguments: [true, false])
  func keysAreMatchedWholeWhateverTheirLength(sameHead: Bool) {
    let long = "abcdefghijklmnopqr"
    var paths: [FieldPath] = []
    for length in [1, 2, 3, 7, 8, 9, 16, 17] {
      paths.append(FieldPath(segments: [String(long.prefix(length))]))
    }
    paths.append(FieldPath(segments: [sameHead ? "abcdefghXjklmnop" : "abcdefgXijklmnop"]))
    paths.append(FieldPath(segments: [""]))
    let selector = FieldSelector(paths: paths)
    withExtendedLifetime(selector) { #expect((selector.trie.lookups[0].tableStart < 0) == sameHead) }
    var keys: [String] = []
    for length in 0...18 {
      let key = String(long.prefix(length))
      keys.append(key)
      if length > 0 {
        // The same length, one byte changed: first, eighth, ninth and last.
        for position in Set([0, min(7, length - 1), min(8, length - 1), length - 1]) {
          var bytes = Array(key.utf8)
          bytes[position] = UInt8(ascii: "Z")
          keys.append(String(decoding: bytes, as: UTF8.self))
        }
      }
    }
    for (number, key) in keys.enumerated() {
      Self.expectAgreement(Array("{\"\(key)\":\(number)}".utf8), paths: paths, "alone: \(key)")
      Self.expectAgreement(Array("{\"x\":[1],\"\(key)\":\"v\",\"y\":2}".utf8), paths: paths, "inside: \(key)")
    }
    let all = keys.enumerated().map { "\"\($0.element)\":\($0.offset)" }.joined(separator: ",")
    Self.expectAgreement(Array("{\(all)}".utf8), paths: paths, "all keys")
    // Something is found: a test that matched nothing would prove nothing.
    let text = Array("{\"abcdefghi\":1,\"abcdefghj\":2,\"\(paths[8].segments[0])\":3}".utf8)
    text.withUnsafeBytes { raw in
      var event = ScannedEvent(time: 0, json: raw, fields: ScannedFields(count: paths.count))
      #expect(selector.scan(raw, into: &event.fields) != nil)
      #expect(event.value(5) == .number("1"))
      #expect(event.value(8) == .number("3"))
      #expect(event.value(3) == nil)
    }
  }

  /// A node with many selected keys: its table has collisions to probe past, and keys that
  /// are not selected must still be found absent.
  @Test func manyKeysAtOneNode() {
    let paths =
      (0..<64).map { FieldPath(segments: ["key\($0)"]) } + (0..<8).map { FieldPath(segments: ["n", "k\($0)"]) }
    let members =
      (0..<100).map { "\"key\($0)\":\($0)" } + [
        "\"n\":{" + (0..<12).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + "}"
      ]
    Self.expectAgreement(Array("{\(members.joined(separator: ","))}".utf8), paths: paths, "many keys")
    Self.expectAgreement(
      Array("{\(members.reversed().joined(separator: ","))}".utf8), paths: paths, "many keys reversed")
  }

  /// Every node's hash table, whatever its size, finds each of its keys and nothing else.
  @Test(arguments: [1, 2, 3, 5, 17, 64, 300])
  func keyTablesFindEveryKey(count: Int) {
    let keys = (0..<count).map { "k\($0 * 7919)" }
    let selector = FieldSelector(paths: keys.map { FieldPath(segments: [$0]) })
    withExtendedLifetime(selector) { #expect(selector.trie.lookups[0].tableStart >= 0 || count == 300) }
    let members = keys.enumerated().map { "\"\($0.element)\":\($0.offset)" } + ["\"k1\":-1", "\"kk\":-2"]
    let text = Array("{\(members.joined(separator: ","))}".utf8)
    text.withUnsafeBytes { raw in
      var fields = ScannedFields(count: keys.count)
      #expect(selector.scan(raw, into: &fields) == .object)
      let event = ScannedEvent(time: 0, json: raw, fields: fields)
      for index in keys.indices { #expect(event.value(index) == .number(String(index)), "\(keys[index])") }
    }
  }

  /// The quote index against a byte-by-byte reading, on texts of every length up to 300 made of
  /// the bytes that matter (quote, backslash, control bytes, space, DEL, non-ASCII, letters):
  /// every quote marked, every special byte seen, and a space outside the strings told from
  /// one inside, across the 64-byte words.
  @Test func quoteIndexMarksEveryQuoteAndSeesEverySpecialByteAndSpace() {
    var rng = SplitMix64(seed: 64)
    let alphabet: [UInt8] = [0x22, 0x5C, 0x00, 0x1F, 0x20, 0x7F, 0x80, 0xFF, 0x61, 0x7B, 0x3A]
    let words = UnsafeMutablePointer<UInt64>.allocate(capacity: 8)
    defer { words.deallocate() }
    var compactTexts = 0
    var spacedTexts = 0
    for length in 1...300 {
      for round in 0..<16 {
        let bytes: [UInt8]
        if round < 8 {
          // Mostly plain text, so that texts without a special byte come up too.
          bytes = (0..<length).map { _ in
            let pick = rng.next() % 64
            if pick < 6 { return alphabet[Int(pick) % 2 == 0 ? 0 : Int(rng.next() % UInt64(alphabet.count))] }
            return UInt8(ascii: "a") + UInt8(pick % 26)
          }
        } else {
          // No special byte: quotes, letters and spaces, the spaces inside strings only, or one
          // outside too, or anywhere.
          var inside = false
          var generated: [UInt8] = (0..<length).map { _ in
            let pick = rng.next() % 32
            if pick < 3 {
              inside.toggle()
              return 0x22
            }
            if pick < 9 && (inside || round % 3 == 0) { return 0x20 }
            return UInt8(ascii: "a") + UInt8(pick % 26)
          }
          if round % 3 == 1 {
            var outside: [Int] = []
            inside = false
            for (position, byte) in generated.enumerated() {
              if byte == 0x22 { inside.toggle() } else if !inside { outside.append(position) }
            }
            if !outside.isEmpty { generated[outside[Int(rng.next() % UInt64(outside.count))]] = 0x20 }
          }
          bytes = generated
        }
        let plain = bytes.allSatisfy { $0 != 0x5C && $0 >= 0x20 && $0 < 0x80 }
        // A space outside the strings, the quotes taken two by two, read byte by byte.
        var inside = false
        var spaceOutside = false
        for byte in bytes {
          if byte == 0x22 { inside.toggle() }
          if byte == 0x20 && !inside { spaceOutside = true }
        }
        let text = UnsafeMutablePointer<UInt8>.allocate(capacity: length)
        defer { text.deallocate() }
        text.initialize(from: bytes, count: length)
        let found = JSONScanner.indexQuotes(text, length, into: words)
        #expect(found.plain == plain, "length \(length) round \(round)")
        if plain {
          #expect(found.compact == !spaceOutside, "length \(length) round \(round)")
          if found.compact { compactTexts += 1 } else { spacedTexts += 1 }
        } else {
          #expect(!found.compact, "length \(length) round \(round)")
        }
        for word in 0..<(length + 63) / 64 {
          var expected: UInt64 = 0
          for bit in 0..<64 where word * 64 + bit < length && bytes[word * 64 + bit] == 0x22 {
            expected |= 1 << UInt64(bit)
          }
          #expect(words[word] == expected, "length \(length) round \(round) word \(word)")
        }
      }
    }
    // Both answers come up, on texts of many lengths.
    #expect(compactTexts > 200 && spacedTexts > 200, "\(compactTexts) compact, \(spacedTexts) spaced")
  }

  /// The scan with its quote index against the scan reading every byte: the same kind and the
  /// same fields on random documents of every length around the index's 64-byte words, cut or
  /// with a byte changed, and on texts too long to index.
  @Test func indexedScanAgreesWithByteByByteScan() {
    let indexed = FieldSelector(paths: Self.paths)
    let byteByByte = FieldSelector(paths: Self.paths, indexQuotes: false)
    var rng = SplitMix64(seed: 4096)
    var plainTexts = 0
    func compare(_ bytes: [UInt8]) {
      bytes.withUnsafeBytes { raw in
        var fast = ScannedFields(count: Self.paths.count)
        var slow = ScannedFields(count: Self.paths.count)
        let kind = indexed.scan(raw, into: &fast)
        #expect(kind == byteByByte.scan(raw, into: &slow), "\(String(decoding: bytes, as: UTF8.self))")
        #expect(fast == slow, "\(String(decoding: bytes, as: UTF8.self))")
      }
      if !bytes.isEmpty, bytes.allSatisfy({ $0 != 0x5C && $0 >= 0x20 && $0 < 0x80 }) { plainTexts += 1 }
    }
    for round in 0..<3000 {
      var text = Self.randomValue(&rng, depth: 0, forceObject: true)
      // Padding inside a string moves everything after it across the 64-byte words.
      let pad = String(repeating: "p", count: Int(rng.next() % 140))
      text = "{\"time\":\"\(pad)\"," + text.dropFirst()
      if text.hasSuffix(",}") { text = String(text.dropLast(2)) + "}" }
      var bytes = Array(text.utf8)
      compare(bytes)
      let position = Int(rng.next() % UInt64(bytes.count))
      switch round % 3 {
      case 0: bytes.removeSubrange(position...)
      case 1: bytes[position] = UInt8(ascii: "\"")
      default: bytes[position] = UInt8(truncatingIfNeeded: rng.next())
      }
      compare(bytes)
    }
    // Longer than the index holds: read byte by byte either way.
    let long = "{\"a\":\"\(String(repeating: "x", count: JSONScanner.indexedLength))\",\"b\":1}"
    compare(Array(long.utf8))
    compare(Array(long.utf8).dropLast(1).map { $0 })
    #expect(plainTexts > 1000)
  }

  @Test func agreesOnRandomDocuments() {
    var rng = SplitMix64(seed: 7)
    for round in 0..<3000 {
      let text = Self.randomValue(&rng, depth: 0, forceObject: true)
      Self.expectAgreement(Array(text.utf8), "round \(round): \(text)")
      // A random cut or flipped byte must not make the two disagree either.
      var bytes = Array(text.utf8)
      let position = Int(rng.next() % UInt64(bytes.count))
      if rng.next() % 2 == 0 {
        bytes.removeSubrange(position...)
      } else {
        bytes[position] = UInt8(truncatingIfNeeded: rng.next())
      }
      Self.expectAgreement(bytes, "mutated round \(round)")
    }
  }

  static func randomValue(_ rng: inout SplitMix64, depth: Int, forceObject: Bool = false) -> String {
    let pick = forceObject ? 0 : Int(rng.next() % (depth > 3 ? 5 : 7))
    let space = rng.next() % 4 == 0 ? " " : ""
    switch pick {
    case 0, 5:
      let count = Int(rng.next() % 5)
      let keys = ["a", "b", "c", "k\u{e9}y", "", "time", "\\u0061", "z"]
      let members = (0..<count).map { _ in
        "\"\(keys[Int(rng.next() % UInt64(keys.count))])\"\(space):\(space)\(randomValue(&rng, depth: depth + 1))"
      }
      return "{" + space + members.joined(separator: "," + space) + "}"
    case 6:
      let count = Int(rng.next() % 4)
      return "[" + (0..<count).map { _ in randomValue(&rng, depth: depth + 1) }.joined(separator: ",") + "]"
    case 1:
      let strings = ["x", "hello world", "t\\\"q", "\\u00e9", "ü", "2026-11-30T09:00:00Z", "\\/", "\\n", "12"]
      return "\"\(strings[Int(rng.next() % UInt64(strings.count))])\""
    case 2:
      let numbers = ["0", "-1", "1.50", "3e2", "-0.0E-3", "1764493200", "12345678901234567890"]
      return numbers[Int(rng.next() % UInt64(numbers.count))]
    case 3:
      return ["true", "false"][Int(rng.next() % 2)]
    default:
      return "null"
    }
  }

  @Test func decoderScanRejectsLikeDecode() {
    let lines = [
      "", " ", "\r", "nope", "{", "[1]", "\"x\"", "{}", #"{"time":null}"#, #"{"time":"yesterday"}"#,
      #"{"time":"2026-11-30T09:00:00Z","a":1}"#, #"{"time":1764493200123}"#, #"{"time":"1764493200"}"#,
      #"{"time":"2026-11-30T09:00:00\u005a"}"#, #"{"time":true}"#, #"{"time":{"x":1}}"#,
      #"{"@timestamp":"2026-11-30T09:00:00.5+01:00","a":{"b":"c"}}"#, "{\"time\":1}\r", "\u{1}",
      "2026-11-30T09:00:00Z\ttag\t{\"a\":1}", "x\ty\t{}", "1764493200\tt\t{\"a\":1}", "a\tb", "t\tt\t{\"a\":\t1}",
      "2026-11-30T09:00:00Z\ttag\t{\"a\":1}\tmore",
    ]
    for format in LogFormat.allCases {
      for timeField in [nil, FieldPath(segments: ["a", "b"])] {
        let decoder = LineDecoder(format: format, timeField: timeField)
        let selector = decoder.selector(for: Self.paths)
        for line in lines {
          let bytes = Array(line.utf8)
          let decoded = decoder.decode(bytes)
          bytes.withUnsafeBytes { raw in
            var event = ScannedEvent(time: 0, json: raw, fields: ScannedFields(count: selector.paths.count))
            let rejected = decoder.scan(raw, selector: selector, into: &event)
            switch decoded {
            case .rejected(let reason):
              #expect(rejected == reason, "\(format) \(line)")
            case .event(let expected):
              #expect(rejected == nil, "\(format) \(line)")
              #expect(event.time == expected.time, "\(format) \(line)")
              for (index, path) in Self.paths.enumerated() {
                #expect(event.value(index) == expected.object.value(at: path), "\(format) \(line) \(path)")
              }
            }
          }
        }
      }
    }
  }
}
