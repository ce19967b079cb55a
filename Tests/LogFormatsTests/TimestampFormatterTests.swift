import LogFormats
import TestSupport
import Testing

private let second: Int64 = 1_000_000_000
private let minute = 60 * second
private let day = 86_400 * second

/// The cached-minute formatter writes exactly what `Timestamp.format` writes.
struct TimestampFormatterTests {

  static func formatted(_ formatter: inout TimestampFormatter, _ time: Int64) -> String {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: TimestampFormatter.maxCount) { buffer in
      let count = formatter.write(time, to: buffer.baseAddress!)
      return String(decoding: UnsafeBufferPointer(rebasing: buffer[..<count]), as: UTF8.self)
    }
  }

  static func check(_ times: [Int64], digits: [Int] = [0, 1, 3, 6, 9]) {
    for d in digits {
      var formatter = TimestampFormatter(fractionDigits: d)
      for time in times {
        let expected = Timestamp.format(time, fractionDigits: d)
        let actual = formatted(&formatter, time)
        if actual != expected { Issue.record("\(time) digits \(d): \(actual) expected \(expected)") }
      }
    }
  }

  /// Boundaries of minutes, days, months, years and leap days, both sides of each, in order
  /// and out of order (the cache must notice every change of minute).
  @Test func boundaries() {
    var edges: [Int64] = [0, -1, 1, .max, .min, .max - 1, .min + 1, -second, second - 1, -minute, minute - 1]
    for text in [
      "2026-11-30T09:00:00Z", "2026-12-31T23:59:00Z", "2027-01-01T00:00:00Z", "2024-02-29T00:00:00Z",
      "2024-03-01T00:00:00Z", "2000-02-29T23:59:00Z", "1969-12-31T23:59:00Z", "1900-01-01T00:00:00Z",
      "2100-02-28T23:59:00Z", "2262-04-11T23:47:00Z", "1677-09-21T00:13:00Z",
    ] {
      let t = Timestamp.parse(text: text)!
      for delta: Int64 in [-day, -minute, -second, -1_000_000, -1, 0, 1, 999_999, second - 1, minute - 1, minute, day] {
        let (value, overflow) = t.addingReportingOverflow(delta)
        if !overflow { edges.append(value) }
      }
    }
    Self.check(edges)
    Self.check(edges.sorted())
    Self.check(edges.reversed())
  }

  /// Near time order, as rows come: many times within a minute, then the next.
  @Test func nearlyOrderedAndRandomTimes() {
    var rng = SplitMix64(seed: 0x7157)
    var times: [Int64] = []
    var t = Timestamp.parse(text: "2026-12-31T23:58:00Z")!
    for _ in 0..<20_000 {
      t += Int64(rng.below(400_000_000))
      times.append(rng.below(10) == 0 ? t - Int64(rng.below(Int(30 * minute))) : t)
    }
    for _ in 0..<2000 { times.append(Int64(bitPattern: rng.next())) }
    for _ in 0..<2000 { times.append(Int64(rng.below(Int(4 * day))) - 2 * day) }
    Self.check(times)
  }
}

/// The string writers (`JSONValue.writeString` into an array, for texts short and long (past
/// what a temporary buffer keeps on the stack), and
/// `writeString(utf8:to:)` through a pointer) against the plain byte-by-byte escaping of
/// RFC 8259 (`reference`): quote, backslash and control bytes escaped, the short forms where
/// there are some, everything else as it is.
struct JSONWriteStringUTF8Tests {
  static func reference(_ utf8: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0x22]
    for byte in utf8 {
      switch byte {
      case 0x22: out += Array("\\\"".utf8)
      case 0x5C: out += Array("\\\\".utf8)
      case 0x08: out += Array("\\b".utf8)
      case 0x0C: out += Array("\\f".utf8)
      case 0x0A: out += Array("\\n".utf8)
      case 0x0D: out += Array("\\r".utf8)
      case 0x09: out += Array("\\t".utf8)
      case ..<0x20: out += Array(String(format: "\\u%04x", Int(byte)).utf8)
      default: out.append(byte)
      }
    }
    out.append(0x22)
    return out
  }

  @Test func matchesTheReference() {
    var rng = SplitMix64(seed: 0x57A1)
    let alphabet: [String] = [
      "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\r", "\t", "\u{8}", "\u{C}", "\u{0}", "\u{1}", "\u{1F}", "\u{7F}",
      "é", "€", "😀", "\u{2028}", ",", "]", "}", "plain text without specials ",
    ]
    var texts = ["", "plain", "\"", "\\", "\u{0}", "é", String(repeating: "x", count: 1_400)]
    for round in 0..<3000 {
      // Some long ones: their buffer is too large for the stack.
      let pieces = round % 50 == 0 ? 400 + rng.below(200) : rng.below(40)
      texts.append(String((0..<pieces).map { _ in alphabet[rng.below(alphabet.count)] }.joined()))
    }
    var long = 0
    for text in texts {
      let utf8 = Array(text.utf8)
      if utf8.count > 1_364 { long += 1 }
      let expected = Self.reference(utf8)
      var fromString: [UInt8] = [0x41]
      JSONValue.writeString(text, to: &fromString)
      #expect(fromString == [0x41] + expected, "\(text.debugDescription)")
      let actual = utf8.withUnsafeBytes { raw in
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: JSONValue.maxQuotedCount(raw.count)) { buffer in
          let end = JSONValue.writeString(utf8: raw, to: buffer.baseAddress!)
          return Array(UnsafeBufferPointer(start: buffer.baseAddress, count: end - buffer.baseAddress!))
        }
      }
      #expect(actual == expected, "\(text.debugDescription)")
    }
    #expect(long > 10, "\(long) long texts")
  }
}
