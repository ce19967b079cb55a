import Foundation
import TestSupport
import Testing

@testable import LogFormats

/// Scanning a line by a shape learnt from earlier lines (`LineShapes`) against scanning it in
/// full: the same verdict and the same fields, line after line, for lines of a few shapes with
/// their values changed, and for lines that differ from every shape by a little.
struct LineShapesTests {
  static let paths: [FieldPath] = [
    FieldPath(segments: ["time"]), FieldPath(segments: ["event"]), FieldPath(segments: ["id"]),
    FieldPath(segments: ["f", "cat"]), FieldPath(segments: ["f"]), FieldPath(segments: ["score"]),
    FieldPath(segments: ["tags"]), FieldPath(segments: ["a", "b"]), FieldPath(segments: ["a"]),
    FieldPath(segments: ["missing"]),
  ]

  static func pick<T>(_ rng: inout SplitMix64, _ items: [T]) -> T { items[rng.below(items.count)] }

  /// A scalar of any kind, as compact JSON text (strings may hold spaces; no escapes).
  static func scalar(_ rng: inout SplitMix64) -> String {
    switch rng.below(10) {
    case 0..<5:
      let length = rng.below(24)
      let alphabet = Array("abcXYZ019-:. _/@{}[],")
      var text = String((0..<length).map { _ in pick(&rng, alphabet) })
      // Now and then something a plain string has not: an escape (valid or not), a character
      // that is not ASCII, a raw control byte (not JSON), a byte that is not UTF-8 ("~",
      // replaced by 0xFF in `bytes(_:)`).
      if length > 0, rng.below(12) == 0 {
        let piece = pick(&rng, ["\\n", "\\\"", "\\u00e9", "\\q", "\\u12", "é", "\t", "\u{1}", "~"])
        text.insert(contentsOf: piece, at: text.index(text.startIndex, offsetBy: rng.below(text.count + 1)))
      }
      return "\"" + text + "\""
    case 5, 6, 7:
      return pick(&rng, ["0", "-1", "17", "0.25", "1e3", "-2.5E-2", "1764493200123", "3.0"])
    case 8: return pick(&rng, ["true", "false"])
    default: return "null"
    }
  }

  /// What may stand where a line's scalar was: mostly another scalar, sometimes something that
  /// fits no shape (a container, a bad number or literal).
  static func value(_ rng: inout SplitMix64) -> String {
    switch rng.below(40) {
    case 0: return pick(&rng, ["{}", "{\"x\":1}", "[]", "[1,\"a\"]"])
    case 1: return pick(&rng, ["01", "1.", "-", "1e", "tru", "nul", "falsey", "\"open"])
    default: return scalar(&rng)
    }
  }

  /// One line of template `template`, with fresh values.
  static func line(_ rng: inout SplitMix64, template: Int) -> String {
    var v = { (rng: inout SplitMix64) in value(&rng) }
    let time = "\"2026-12-02T01:\(10 + rng.below(50)):\(10 + rng.below(50)).\(100 + rng.below(900))Z\""
    switch template {
    case 0:
      return
        "{\"time\":\(time),\"event\":\"prediction\",\"id\":\(v(&rng)),\"score\":\(v(&rng)),"
        + "\"kind\":\"ranker\",\"f\":{\"cat\":\(v(&rng)),\"dev\":\(v(&rng)),\"pos\":\(v(&rng))},\"tags\":[\(v(&rng)),\(v(&rng))]}"
    case 1:
      // A value that is nearly always the same (so it becomes part of a shape's constants).
      let level = rng.below(20) == 0 ? pick(&rng, ["\"WARN\"", "\"INFO!\"", "\"INF\"", "1", "null"]) : "\"INFO\""
      return
        "{\"time\":\(time),\"level\":\(level),\"event\":\"http\",\"method\":\(v(&rng)),\"status\":\(v(&rng)),"
        + "\"ok\":\(v(&rng))}"
    case 2:
      return "{\"time\":\(time),\"event\":\(v(&rng)),\"id\":\(v(&rng))}"
    case 3:
      // A key seen twice: the last one counts.
      return "{\"time\":\(time),\"a\":{\"b\":\(v(&rng))},\"a\":\(v(&rng)),\"a\":{\"c\":\(v(&rng))}}"
    default:
      // Shapes that keep changing: 2 to 4 keys from a dozen, so more shapes than are kept.
      let keys = (0..<(2 + rng.below(3))).map { _ in "k\(rng.below(12))" }
      v = { (rng: inout SplitMix64) in scalar(&rng) }
      return "{\"time\":\(time)," + keys.map { "\"\($0)\":\(v(&rng))" }.joined(separator: ",") + "}"
    }
  }

  /// Breaks a line a little, so that it may still fit a shape's beginning but not its whole.
  static func damage(_ text: String, _ rng: inout SplitMix64) -> String {
    var bytes = Array(text.utf8)
    switch rng.below(6) {
    case 0: bytes.removeLast(1 + rng.below(min(5, bytes.count - 1)))
    case 1: bytes.append(contentsOf: Array(pick(&rng, ["x", ",", "}", "{}", " "]).utf8))
    case 2: bytes.insert(UInt8(ascii: pick(&rng, [",", ":", "\"", "}", "a"])), at: rng.below(bytes.count))
    case 3: bytes.remove(at: rng.below(bytes.count))
    case 4: bytes[rng.below(bytes.count)] = UInt8(ascii: pick(&rng, ["\"", ",", "1", "]", "e"]))
    default:
      // Another key of the same length: the same layout, another shape.
      if let at = bytes.firstIndex(of: UInt8(ascii: "e")) { bytes[at] = UInt8(ascii: "E") }
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// A line's bytes, with each `~` made a byte that is not UTF-8.
  static func bytes(_ text: String) -> [UInt8] {
    text.utf8.map { $0 == UInt8(ascii: "~") ? 0xFF : $0 }
  }

  @Test func aLineScannedByItsShapeGivesWhatItsFullScanGives() {
    let selector = FieldSelector(paths: Self.paths)
    let byteByByte = FieldSelector(paths: Self.paths, indexQuotes: false)
    var learnt = ScannedFields(count: Self.paths.count)
    var rng = SplitMix64(seed: 20_261_202)
    var accepted = 0
    var rejected = 0
    for round in 0..<30_000 {
      var text = Self.line(&rng, template: rng.below(100) < 90 ? rng.below(4) : 4)
      if round % 7 == 0 { text = Self.damage(text, &rng) }
      let bytes = Self.bytes(text)
      bytes.withUnsafeBytes { raw in
        let kind = selector.scan(raw, into: &learnt)
        var fresh = ScannedFields(count: Self.paths.count)
        #expect(kind == selector.scan(raw, into: &fresh), "\(text)")
        var slow = ScannedFields(count: Self.paths.count)
        #expect(kind == byteByByte.scan(raw, into: &slow), "\(text)")
        // (What a rejected text leaves in the fields is not defined.)
        guard kind != nil else {
          rejected += 1
          return
        }
        accepted += 1
        #expect(learnt == fresh, "\(text)")
        #expect(learnt == slow, "\(text)")
      }
    }
    // Most lines went by a shape; some lines were rejected; the ever-changing shapes filled
    // every place (and so replaced some).
    #expect(learnt.shapes.hits > 15_000, "\(learnt.shapes.hits) lines by a shape")
    #expect(rejected > 1_000 && accepted > 20_000, "\(rejected) rejected, \(accepted) accepted")
    #expect(learnt.shapes.count >= 4)
  }

  /// Lines of three layouts interleaved at random, as a log interleaves its statements: the
  /// shape tried first is the one the last line of the same length fitted, and it fits almost
  /// every line (the previous line's shape fitted about a third of them). Lines of two layouts
  /// with the same length, alternating, are each tried against the other's shape first, and
  /// still scan as in full.
  @Test func theShapeTriedFirstIsTheOneALineOfTheSameLengthFitted() {
    let selector = FieldSelector(paths: Self.paths)
    var learnt = ScannedFields(count: Self.paths.count)
    var rng = SplitMix64(seed: 31)
    func digits(_ n: Int) -> String { String((0..<n).map { _ in Character(String(rng.below(10))) }) }
    func line(_ layout: Int) -> String {
      switch layout {
      case 0: "{\"time\":\"t\(digits(3))\",\"event\":\"prediction\",\"id\":\"r\(digits(8))\",\"score\":0.\(digits(4))}"
      case 1:
        "{\"time\":\"t\(digits(3))\",\"event\":\"http\",\"path\":\"/p/\(digits(2 + rng.below(3)))\",\"status\":200}"
      default: "{\"time\":\"t\(digits(3))\",\"event\":\"click\",\"id\":\"r\(digits(8))\"}"
      }
    }
    func scan(_ text: String) {
      Self.bytes(text).withUnsafeBytes { raw in
        let kind = selector.scan(raw, into: &learnt)
        var fresh = ScannedFields(count: Self.paths.count)
        #expect(kind == selector.scan(raw, into: &fresh) && kind != nil, "\(text)")
        #expect(learnt == fresh, "\(text)")
      }
    }
    for layout in 0..<3 {
      for _ in 0..<LineShapes.linesPerShape { scan(line(layout)) }
    }
    #expect(learnt.shapes.count == 3)
    let (hits, retries) = (learnt.shapes.hits, learnt.shapes.retries)
    for _ in 0..<3_000 { scan(line(rng.below(3))) }
    #expect(learnt.shapes.hits - hits == 3_000)
    #expect(learnt.shapes.retries - retries < 100, "\(learnt.shapes.retries - retries) of 3000 lines tried again")
    // The same lengths, the layouts alternating: every line first meets the other's shape.
    let before = learnt.shapes.retries
    for round in 0..<200 {
      let text =
        round % 2 == 0
        ? "{\"time\":\"t\(digits(3))\",\"event\":\"prediction\",\"id\":\"r12345678\",\"score\":0.5}"
        : "{\"time\":\"t\(digits(3))\",\"event\":\"click\",\"id\":\"r\(digits(25))\"}"
      scan(text)
    }
    #expect(learnt.shapes.retries - before >= 150)
  }

  /// More layouts than there are places: each becomes a shape after a few lines, the least
  /// recently used give way, and every line still scans as in full.
  @Test func moreLayoutsThanPlacesReplaceTheLeastRecentlyUsed() {
    let selector = FieldSelector(paths: Self.paths)
    var learnt = ScannedFields(count: Self.paths.count)
    var rng = SplitMix64(seed: 99)
    let layouts = LineShapes.capacity + 8
    for round in 0..<(layouts * 400) {
      // Each layout for a while (long enough to be learnt), then all of them mixed.
      let layout = round < layouts * 200 ? round / 200 : rng.below(layouts)
      let text =
        "{\"time\":\(Self.scalar(&rng)),\"id\":\(Self.scalar(&rng)),\"k\(layout)\":{\"b\":\(Self.scalar(&rng))},"
        + "\"a\":{\"b\":\(Self.scalar(&rng))}}"
      Self.bytes(text).withUnsafeBytes { raw in
        let kind = selector.scan(raw, into: &learnt)
        var fresh = ScannedFields(count: Self.paths.count)
        #expect(kind == selector.scan(raw, into: &fresh), "\(text)")
        // (What a rejected text leaves in the fields is not defined.)
        if kind != nil { #expect(learnt == fresh, "\(text)") }
      }
    }
    #expect(learnt.shapes.count == LineShapes.capacity)
    #expect(learnt.shapes.hits > layouts * 250, "\(learnt.shapes.hits) lines by a shape")
  }

  /// A log whose lines never share a layout: all are scanned in full, and once that is clear
  /// only one in `learnEvery` of them is looked at to learn from (reading a layout costs about
  /// a tenth of a scan).
  @Test func aLogOfEverNewLayoutsIsWatchedOnlyNowAndThen() {
    let selector = FieldSelector(paths: Self.paths)
    var learnt = ScannedFields(count: Self.paths.count)
    for n in 0..<20_000 {
      let text = "{\"time\":\"2026-12-02T01:00:00Z\",\"key\(n)\":\(n),\"event\":\"x\"}"
      Array(text.utf8).withUnsafeBytes { #expect(selector.scan($0, into: &learnt) == .object) }
    }
    #expect(learnt.shapes.hits == 0)
    #expect(learnt.shapes.layoutsRead < 1_024 + 20_000 / LineShapes.learnEvery + 10, "\(learnt.shapes.layoutsRead)")
  }

  /// Lines of one shape whose values hold every kind of scalar, with each one's slot checked
  /// against the value the parser reads (not only against the full scan).
  @Test func valuesFoundByAShapeAreTheParsersValues() throws {
    let selector = FieldSelector(paths: Self.paths)
    var learnt = ScannedFields(count: Self.paths.count)
    var rng = SplitMix64(seed: 7)
    for _ in 0..<2_000 {
      let text = Self.line(&rng, template: 0)
      let bytes = Self.bytes(text)
      let parsed = try? JSONValue.parse(bytes)
      bytes.withUnsafeBytes { raw in
        var event = ScannedEvent(time: 0, json: raw, fields: learnt)
        let kind = selector.scan(raw, into: &event.fields)
        #expect((kind != nil) == (parsed != nil), "\(text)")
        if let parsed {
          for (index, path) in Self.paths.enumerated() {
            #expect(event.value(index) == parsed.value(at: path), "\(text): \(path)")
          }
        }
        learnt = event.fields
      }
    }
    #expect(learnt.shapes.hits > 1_000)
  }

  /// The string end a shape's scan reads without an index of the line's quotes, against a byte
  /// loop: from every start in texts of every length up to 80 (so the 16-byte blocks, the last
  /// partial block and the byte loop all come up), with quotes and special bytes among letters.
  @Test func aStringEndsAtItsQuoteUnlessASpecialByteComesFirst() {
    var rng = SplitMix64(seed: 1_612)
    let special: [UInt8] = [0x5C, 0x00, 0x09, 0x1F, 0x80, 0xC3, 0xFF]
    var found = 0
    var refused = 0
    for length in 1...80 {
      for _ in 0..<12 {
        // Exactly `length` bytes: a read past them would be a read past the allocation.
        let text = UnsafeMutablePointer<UInt8>.allocate(capacity: length)
        defer { text.deallocate() }
        for i in 0..<length {
          switch rng.below(40) {
          case 0: text[i] = 0x22
          case 1: text[i] = Self.pick(&rng, special)
          case 2: text[i] = 0x20
          case let pick: text[i] = UInt8(ascii: "a") + UInt8(pick % 26)
          }
        }
        for start in 0...length {
          var expected = -1
          for i in start..<length {
            if text[i] == 0x22 {
              expected = i
              break
            }
            if text[i] == 0x5C || text[i] < 0x20 || text[i] >= 0x80 { break }
          }
          #expect(LineShapes.plainStringEnd(text, start, length) == expected, "length \(length), start \(start)")
          if expected >= 0 { found += 1 } else { refused += 1 }
        }
      }
    }
    #expect(found > 1_000 && refused > 1_000, "\(found) found, \(refused) refused")
  }

  /// A shape's constant compared at every place of a line, whatever is left of the line after
  /// it and before it (whole 16-byte blocks, the line's last 16 bytes, words, bytes), against
  /// `memcmp`.
  @Test func aConstantFitsExactlyWhereItsBytesAre() {
    var rng = SplitMix64(seed: 1_613)
    var fitted = 0
    for length in 1...40 {
      let constant = (0..<length).map { _ in UInt8(ascii: "a") + UInt8(rng.below(3)) }
      let shape = LineShapes.Shape(constants: constant, ends: [Int32(length)], sources: [])
      let memory = LineShapes.Shape.Memory(shape)
      defer { withExtendedLifetime(memory) {} }
      for lineLength in length...(length + 40) {
        let line = UnsafeMutablePointer<UInt8>.allocate(capacity: lineLength)
        defer { line.deallocate() }
        for i in 0..<lineLength { line[i] = UInt8(ascii: "a") + UInt8(rng.below(3)) }
        for at in 0...(lineLength - length) {
          // Often the constant itself, sometimes with one byte changed (its first, its last, any).
          if rng.below(3) > 0 {
            line.advanced(by: at).update(from: constant, count: length)
            if rng.below(4) == 0 {
              let k = Self.pick(&rng, [0, length - 1, rng.below(length)])
              line[at + k] = line[at + k] == UInt8(ascii: "z") ? UInt8(ascii: "y") : UInt8(ascii: "z")
            }
          }
          let expected = memcmp(line + at, constant, length) == 0
          #expect(
            shape.fits(0, at: line + at, readable: lineLength - at, before: at) == expected,
            "constant of \(length), line of \(lineLength), at \(at)")
          if expected { fitted += 1 }
        }
      }
    }
    #expect(fitted > 10_000, "\(fitted)")
  }
}
