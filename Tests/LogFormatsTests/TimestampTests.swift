import LogFormats
import TestSupport
import Testing

private let second: Int64 = 1_000_000_000
private let millisecond: Int64 = 1_000_000
private let microsecond: Int64 = 1_000

/// Independently computed (Python `calendar.timegm`) reference instants.
/// Note: 1764493200 is 2025-11-30T09:00:00Z; 2026-11-30T09:00:00Z is 1796029200.
private let knownInstants: [(text: String, seconds: Int64)] = [
  ("1970-01-01T00:00:00Z", 0),
  ("2025-11-30T09:00:00Z", 1_764_493_200),
  ("2026-11-30T09:00:00Z", 1_796_029_200),
  ("2000-02-29T00:00:00Z", 951_782_400),
  ("1999-12-31T23:59:59Z", 946_684_799),
  ("2024-02-29T12:34:56Z", 1_709_210_096),
  ("2100-03-01T00:00:00Z", 4_107_542_400),
  ("2001-09-09T01:46:40Z", 1_000_000_000),
  ("2038-01-19T03:14:07Z", 2_147_483_647),
  ("1969-12-31T23:59:59Z", -1),
  ("1969-07-20T20:17:40Z", -14_182_940),
  ("1900-01-01T00:00:00Z", -2_208_988_800),
]

struct TimestampTextTests {
  @Test func knownValues() {
    for (text, seconds) in knownInstants {
      #expect(Timestamp.parse(text: text) == seconds * second, "\(text)")
      #expect(Timestamp.format(seconds * second, fractionDigits: 0) == text)
    }
  }

  @Test func int64Extremes() {
    #expect(Timestamp.format(.max, fractionDigits: 9) == "2262-04-11T23:47:16.854775807Z")
    #expect(Timestamp.format(.min, fractionDigits: 9) == "1677-09-21T00:12:43.145224192Z")
    #expect(Timestamp.parse(text: "2262-04-11T23:47:16.854775807Z") == .max)
    #expect(Timestamp.parse(text: "1677-09-21T00:12:43.145224192Z") == .min)
    #expect(Timestamp.parse(text: "2262-04-11T23:47:16.854775808Z") == nil)
    #expect(Timestamp.parse(text: "1677-09-21T00:12:43.145224191Z") == nil)
    #expect(Timestamp.parse(text: "9999-12-31T23:59:59Z") == nil)
    #expect(Timestamp.parse(text: "0000-01-01T00:00:00Z") == nil)
  }

  @Test func offsets() {
    let base = 1_796_029_200 * second  // 2026-11-30T09:00:00Z
    #expect(Timestamp.parse(text: "2026-11-30T09:00:00Z") == base)
    #expect(Timestamp.parse(text: "2026-11-30T09:00:00z") == base)
    #expect(Timestamp.parse(text: "2026-11-30T10:00:00+01:00") == base)
    #expect(Timestamp.parse(text: "2026-11-30T10:00:00+0100") == base)
    #expect(Timestamp.parse(text: "2026-11-30T03:30:00-05:30") == base)
    #expect(Timestamp.parse(text: "2026-11-30T03:30:00-0530") == base)
    #expect(Timestamp.parse(text: "2026-11-30T09:00:00+00:00") == base)
    #expect(Timestamp.parse(text: "2026-11-30T09:00:00-00:00") == base)
    // Offsets crossing a day/month/year boundary.
    #expect(Timestamp.parse(text: "2026-12-01T08:00:00+23:00") == base)
    #expect(Timestamp.parse(text: "2027-01-01T00:30:00+01:00") == Timestamp.parse(text: "2026-12-31T23:30:00Z"))
  }

  @Test func separatorsAndMissingOffset() {
    let base = 1_796_029_200 * second
    #expect(Timestamp.parse(text: "2026-11-30t09:00:00Z") == base)
    #expect(Timestamp.parse(text: "2026-11-30 09:00:00Z") == base)
    #expect(Timestamp.parse(text: "2026-11-30 09:00:00") == base)
    #expect(Timestamp.parse(text: "2026-11-30T09:00:00") == base)
    #expect(Timestamp.parse(text: "2026-11-30T09:00:00.5") == base + 500_000_000)
    #expect(Timestamp.parse(text: "2026-11-30  09:00:00Z") == nil)
    #expect(Timestamp.parse(text: "2026-11-30_09:00:00Z") == nil)
    #expect(Timestamp.parse(text: "2026-11-30\t09:00:00Z") == nil)
  }

  @Test func fractions() {
    let base = 1_796_029_200 * second
    #expect(Timestamp.parse(text: "2026-11-30T09:00:00.1Z") == base + 100_000_000)
    #expect(Timestamp.parse(text: "2026-11-30T09:00:00.123Z") == base + 123_000_000)
    #expect(Timestamp.parse(text: "2026-11-30T09:00:00.123456Z") == base + 123_456_000)
    #expect(Timestamp.parse(text: "2026-11-30T09:00:00.123456789Z") == base + 123_456_789)
    #expect(Timestamp.parse(text: "2026-11-30T09:00:00.123456789999Z") == base + 123_456_789)
    #expect(Timestamp.parse(text: "2026-11-30T10:00:00.000000001+01:00") == base + 1)
    #expect(Timestamp.parse(text: "2026-11-30T09:00:00.Z") == nil)
    #expect(Timestamp.parse(text: "2026-11-30T09:00:00.") == nil)
    #expect(Timestamp.parse(text: "2026-11-30T09:00:00.12aZ") == nil)
    #expect(Timestamp.parse(text: "2026-11-30T09:00:00,5Z") == nil)
  }

  @Test func leapDays() {
    #expect(Timestamp.parse(text: "2024-02-29T00:00:00Z") != nil)
    #expect(Timestamp.parse(text: "2000-02-29T00:00:00Z") == 951_782_400 * second)
    #expect(Timestamp.parse(text: "2026-02-29T00:00:00Z") == nil)
    #expect(Timestamp.parse(text: "1900-02-29T00:00:00Z") == nil)
    #expect(Timestamp.parse(text: "2100-02-29T00:00:00Z") == nil)
    #expect(Timestamp.parse(text: "2024-02-30T00:00:00Z") == nil)
    #expect(Timestamp.parse(text: "2026-04-31T00:00:00Z") == nil)
    #expect(Timestamp.parse(text: "2026-12-31T00:00:00Z") != nil)
  }

  @Test(arguments: [
    "2026-00-10T09:00:00Z", "2026-13-10T09:00:00Z", "2026-11-00T09:00:00Z", "2026-11-31T09:00:00Z",
    "2026-01-32T09:00:00Z", "2026-11-30T24:00:00Z", "2026-11-30T09:60:00Z", "2026-11-30T09:00:61Z",
    "2026-11-30T09:00:00+24:00", "2026-11-30T09:00:00+01:60",
  ])
  func outOfRangeFields(_ text: String) {
    #expect(Timestamp.parse(text: text) == nil)
  }

  @Test func leapSecondIsAcceptedAsNextMinute() {
    #expect(Timestamp.parse(text: "2016-12-31T23:59:60Z") == Timestamp.parse(text: "2017-01-01T00:00:00Z"))
  }

  @Test(arguments: [
    "", "garbage", "2026-11-30", "2026-11-30T09:00Z", "2026-11-30T09:00:00ZZ", "2026-11-30T09:00:00 Z",
    "2026-11-30T09:00:00+01", "2026-11-30T09:00:00+1:00", "2026-11-30T09:00:00+01:0", "2026-11-30T09:00:00+01:000",
    "26-11-30T09:00:00Z", "2026/11/30T09:00:00Z", "2026-1-30T09:00:00Z", "+2026-11-30T09:00:00Z",
    " 2026-11-30T09:00:00Z", "2026-11-30T09:00:00Z ", "2026-11-30T9:00:00Z", "2026-11-30T09:00:00.123+01:00x",
    "２０２６-11-30T09:00:00Z",
  ])
  func garbageIsNil(_ text: String) {
    #expect(Timestamp.parse(text: text) == nil)
    #expect(Timestamp.parse(.string(text)) == nil)
  }

  /// Times read with one memo, as a file's lines are, give what each gives read alone: runs of
  /// the same minute with every second (61 and a non-digit too), a bad `:`, fractions and
  /// offsets, and heads that differ by one byte (valid or not) in between.
  @Test func memoGivesWhatReadingAloneGives() {
    var rng = SplitMix64(seed: 1660)
    var memo = Timestamp.Memo()
    let heads = [
      "2026-11-30T09:00", "2026-11-30T09:01", "2026-12-31T23:59", "2024-02-29T00:00", "2026-11-30 09:00",
      "1969-12-31T23:59", "2262-04-11T23:47", "9999-12-31T23:59",
    ]
    // Milliseconds and `Z` are read as one word: every byte of them also wrong in each way.
    let tails = [
      "Z", "", ".5Z", ".123Z", ".123456789+01:00", "-05:30", "z", "+0100", "Zx", ".Z", ".999Z", ".000z", ".855Z",
      ".12aZ", ".1/3Z", ".:23Z", ".123Y", ".123[", ",123Z", ".1234", ".12Z", ".1\u{80}3Z", ".12\u{7F}Z", ".123\u{0}",
    ]
    var memoHits = 0
    var current = heads[0]
    for round in 0..<20_000 {
      if rng.next() % 4 == 0 { current = heads[Int(rng.next() % UInt64(heads.count))] }
      var head = Array(current.utf8)
      if round % 50 == 0 { head[Int(rng.next() % 16)] = UInt8(ascii: "0") + UInt8(rng.next() % 10) }
      if round % 97 == 0 { head[Int(rng.next() % 16)] = UInt8(ascii: "x") }
      let second = Int(rng.next() % 63)
      var middle = Array(":\(second < 10 ? "0" : "")\(second)".utf8)
      if round % 31 == 0 { middle[Int(rng.next() % 3)] = UInt8(ascii: ["-", "a", "9"][Int(rng.next() % 3)]) }
      let text = head + middle + Array(tails[Int(rng.next() % UInt64(tails.count))].utf8)
      let hit =
        text.count >= 19
        && text.withUnsafeBytes { raw in
          (raw.loadUnaligned(as: UInt64.self), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        } == memo.headWords
      if hit { memoHits += 1 }
      let alone = text.withUnsafeBytes { Timestamp.parse(text: $0) }
      let withMemo = text.withUnsafeBytes { Timestamp.parse(text: $0, memo: &memo) }
      #expect(withMemo == alone, "\(String(decoding: text, as: UTF8.self))")
    }
    #expect(memoHits > 10_000)
  }

  /// The last millisecond an Int64 of nanoseconds holds, and the next, through the memo's
  /// path (its milliseconds read as one word) and alone.
  @Test func theLastMillisecondBefore2262IsTheLast() {
    var memo = Timestamp.Memo()
    for text in ["2262-04-11T23:47:16.854Z", "2262-04-11T23:47:16.855Z", "2262-04-11T23:47:17.000Z"] {
      let expected: Int64? = text.hasSuffix("854Z") ? 9_223_372_036_854_000_000 : nil
      let bytes = Array(text.utf8)
      #expect(bytes.withUnsafeBytes { Timestamp.parse(text: $0, memo: &memo) } == expected, "\(text)")
      #expect(bytes.withUnsafeBytes { Timestamp.parse(text: $0) } == expected, "\(text)")
    }
  }

  @Test func parsesFromRawBytes() {
    let bytes = Array("xx2026-11-30T09:00:00Zyy".utf8)
    let result = bytes.withUnsafeBytes { raw in
      Timestamp.parse(text: UnsafeRawBufferPointer(rebasing: raw[2..<22]))
    }
    #expect(result == 1_796_029_200 * second)
  }
}

struct TimestampValueTests {
  @Test func epochNumbersByMagnitude() {
    let base: Int64 = 1_764_493_200  // 2025-11-30T09:00:00Z
    #expect(Timestamp.parse(.number("1764493200")) == base * second)
    #expect(Timestamp.parse(.number("1764493200123")) == base * second + 123_000_000)
    #expect(Timestamp.parse(.number("1764493200123456")) == base * second + 123_456_000)
    #expect(Timestamp.parse(.number("1764493200123456789")) == base * second + 123_456_789)
    #expect(Timestamp.parse(.number("0")) == 0)
    #expect(Timestamp.parse(.number("-0")) == 0)
    #expect(Timestamp.parse(.number("-1")) == -second)
    #expect(Timestamp.parse(.number("-1764493200")) == -base * second)
  }

  @Test func magnitudeThresholds() {
    // Int64 nanoseconds span ±9.22e18, i.e. ±9.22e9 s, so large values in a unit overflow (nil):
    // those cases show the unit chosen, because the next-finer unit would give a valid result.
    #expect(Timestamp.parse(.number("9000000000")) == 9_000_000_000 * second)  // seconds
    #expect(Timestamp.parse(.number("99999999999")) == nil)  // < 1e11: still seconds → overflow
    #expect(Timestamp.parse(.number("100000000000")) == 100_000_000_000 * millisecond)  // 1e11: ms
    #expect(Timestamp.parse(.number("9000000000000")) == 9_000_000_000_000 * millisecond)  // ms
    #expect(Timestamp.parse(.number("99999999999999")) == nil)  // < 1e14: still ms → overflow
    #expect(Timestamp.parse(.number("100000000000000")) == 100_000_000_000_000 * microsecond)  // 1e14: µs
    #expect(Timestamp.parse(.number("9000000000000000")) == 9_000_000_000_000_000 * microsecond)  // µs
    #expect(Timestamp.parse(.number("99999999999999999")) == nil)  // < 1e17: still µs → overflow
    #expect(Timestamp.parse(.number("100000000000000000")) == Int64(100_000_000_000_000_000))  // 1e17: ns
    #expect(Timestamp.parse(.number("1e11")) == 100_000_000_000 * millisecond)
    #expect(Timestamp.parse(.number("9.9e10")) == nil)
    #expect(Timestamp.parse(.number("-99999999999")) == nil)
    #expect(Timestamp.parse(.number("-100000000000")) == -100_000_000_000 * millisecond)
  }

  @Test func fractionalAndExponentNumbers() {
    let base: Int64 = 1_764_493_200 * second
    #expect(Timestamp.parse(.number("1764493200.123")) == base + 123_000_000)
    #expect(Timestamp.parse(.number("1764493200.5")) == base + 500_000_000)
    #expect(Timestamp.parse(.number("1764493200.123456789")) == base + 123_456_789)
    #expect(Timestamp.parse(.number("1764493200.1234567899")) == base + 123_456_789)  // sub-ns truncated
    #expect(Timestamp.parse(.number("1764493200123.5")) == base + 123_500_000)  // ms with a fraction
    #expect(Timestamp.parse(.number("1.7644932001e9")) == base + 100_000_000)
    #expect(Timestamp.parse(.number("17644932001E-1")) == base + 100_000_000)
    #expect(Timestamp.parse(.number("1764493200.000000000000000000000")) == base)
    #expect(Timestamp.parse(.number("-0.5")) == -500_000_000)
    #expect(Timestamp.parse(.number("0.000000000001")) == 0)
  }

  @Test func numericStrings() {
    let base: Int64 = 1_764_493_200 * second
    #expect(Timestamp.parse(.string("1764493200")) == base)
    #expect(Timestamp.parse(.string("1764493200.250")) == base + 250_000_000)
    #expect(Timestamp.parse(.string("1764493200250")) == base + 250_000_000)
    #expect(Timestamp.parse(.string("1764493200250000")) == base + 250_000_000)
    #expect(Timestamp.parse(.string("1764493200250000000")) == base + 250_000_000)
    #expect(Timestamp.parse(.string("2025-11-30T09:00:00.250Z")) == base + 250_000_000)
    #expect(Timestamp.parse(.string("1764493200 ")) == nil)
    #expect(Timestamp.parse(.string("0x10")) == nil)
    #expect(Timestamp.parse(.string("1.")) == nil)
    #expect(Timestamp.parse(.string("-")) == nil)
    #expect(Timestamp.parse(.string("1e")) == nil)
  }

  @Test func outOfRangeNumbersAndOtherKinds() {
    #expect(Timestamp.parse(.number("9223372036854775807")) == .max)
    #expect(Timestamp.parse(.number("9223372036854775808")) == nil)
    #expect(Timestamp.parse(.number("99999999999999999999")) == nil)
    #expect(Timestamp.parse(.number("1e400")) == nil)
    #expect(Timestamp.parse(.number("1e-400")) == 0)
    #expect(Timestamp.parse(.number("1e999999999999999999999")) == nil)
    #expect(Timestamp.parse(.null) == nil)
    #expect(Timestamp.parse(.bool(true)) == nil)
    #expect(Timestamp.parse(.array([.number("1")])) == nil)
    #expect(Timestamp.parse(.object([])) == nil)
  }
}

struct TimestampFormatTests {
  @Test func fractionDigits() {
    let t = 1_796_029_200 * second + 123_456_789
    #expect(Timestamp.format(t) == "2026-11-30T09:00:00.123Z")
    #expect(Timestamp.format(t, fractionDigits: 0) == "2026-11-30T09:00:00Z")
    #expect(Timestamp.format(t, fractionDigits: 1) == "2026-11-30T09:00:00.1Z")
    #expect(Timestamp.format(t, fractionDigits: 6) == "2026-11-30T09:00:00.123456Z")
    #expect(Timestamp.format(t, fractionDigits: 9) == "2026-11-30T09:00:00.123456789Z")
    #expect(Timestamp.format(1_796_029_200 * second + 5_000_000) == "2026-11-30T09:00:00.005Z")
  }

  @Test func negativeTimes() {
    #expect(Timestamp.format(-1) == "1969-12-31T23:59:59.999Z")
    #expect(Timestamp.format(-1, fractionDigits: 9) == "1969-12-31T23:59:59.999999999Z")
    #expect(Timestamp.format(-second) == "1969-12-31T23:59:59.000Z")
    #expect(Timestamp.format(-500_000_000, fractionDigits: 1) == "1969-12-31T23:59:59.5Z")
    #expect(Timestamp.format(-86_400 * second, fractionDigits: 0) == "1969-12-31T00:00:00Z")
    #expect(Timestamp.format(-2_208_988_800 * second + 1, fractionDigits: 9) == "1900-01-01T00:00:00.000000001Z")
    #expect(Timestamp.parse(text: "1969-12-31T23:59:59.5Z") == -500_000_000)
    for value: Int64 in [-1, -999_999_999, -1_000_000_000, -1_000_000_001, -86_400 * second - 1] {
      #expect(Timestamp.parse(text: Timestamp.format(value, fractionDigits: 9)) == value)
    }
  }

  @Test func civilParts() {
    let parts = Timestamp.civil(1_796_029_200 * second + 59 * 60 * second + 7 * second + 1)
    #expect(parts.year == 2026 && parts.month == 11 && parts.day == 30)
    #expect(parts.hour == 9 && parts.minute == 59 && parts.second == 7)
    let before = Timestamp.civil(-1)
    #expect(before == (1969, 12, 31, 23, 59, 59))
  }

  @Test func randomInstantsRoundTripAndMatchNaiveCalendar() {
    var rng = SplitMix64(seed: 0x5EED)
    for _ in 0..<500 {
      let nanos = Int64(bitPattern: rng.next())
      for digits in [0, 3, 9] {
        let text = Timestamp.format(nanos, fractionDigits: digits)
        var divisor: Int64 = 1
        for _ in digits..<9 { divisor *= 10 }
        // Truncation toward the past at the requested precision.
        let truncated = nanos - ((nanos % divisor) + divisor) % divisor
        #expect(Timestamp.parse(text: text) == truncated, "\(nanos) \(text)")
      }
      let parts = Timestamp.civil(nanos)
      let naive = NaiveCalendar.civil(nanos)
      #expect(
        parts.year == naive.year && parts.month == naive.month && parts.day == naive.day
          && parts.hour == naive.hour && parts.minute == naive.minute && parts.second == naive.second,
        "\(nanos)")
      let text = Timestamp.format(nanos, fractionDigits: 0)
      #expect(text.hasPrefix(NaiveCalendar.dateText(nanos)), "\(text)")
    }
  }

  @Test func everyDayFrom1960To2100MatchesNaiveCalendar() {
    var days = Timestamp.daysFromCivil(year: 1960, month: 1, day: 1)
    for year in 1960...2100 {
      for month in 1...12 {
        for day in 1...NaiveCalendar.daysIn(year: year, month: month) {
          #expect(Timestamp.daysFromCivil(year: year, month: month, day: day) == days)
          let civil = Timestamp.civilFromDays(days)
          if civil != (year, month, day) { Issue.record("\(days) → \(civil) expected \(year)-\(month)-\(day)") }
          days += 1
        }
      }
    }
  }
}

/// A slow, obviously-correct calendar used as an oracle.
enum NaiveCalendar {
  static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }
  static func daysIn(year: Int, month: Int) -> Int {
    [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
  }

  static func civil(_ nanos: Int64) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
    var seconds = Int(nanos / 1_000_000_000)
    if nanos % 1_000_000_000 < 0 { seconds -= 1 }
    var days = seconds / 86_400
    var secondOfDay = seconds % 86_400
    if secondOfDay < 0 {
      secondOfDay += 86_400
      days -= 1
    }
    var year = 1970
    while days < 0 {
      year -= 1
      days += isLeap(year) ? 366 : 365
    }
    while days >= (isLeap(year) ? 366 : 365) {
      days -= isLeap(year) ? 366 : 365
      year += 1
    }
    var month = 1
    while days >= daysIn(year: year, month: month) {
      days -= daysIn(year: year, month: month)
      month += 1
    }
    return (year, month, days + 1, secondOfDay / 3600, secondOfDay / 60 % 60, secondOfDay % 60)
  }

  static func dateText(_ nanos: Int64) -> String {
    let c = civil(nanos)
    func pad(_ value: Int, _ width: Int) -> String {
      let digits = String(value)
      return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
    return
      "\(pad(c.year, 4))-\(pad(c.month, 2))-\(pad(c.day, 2))T\(pad(c.hour, 2)):\(pad(c.minute, 2)):\(pad(c.second, 2))"
  }
}
