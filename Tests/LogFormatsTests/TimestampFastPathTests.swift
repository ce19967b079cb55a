import LogFormats
import TestSupport
import Testing

/// `Timestamp.parse(text:)` reads the `YYYY-MM-DDTHH:MM:SS` head as two words with every digit
/// checked at once, and scales a fraction by one multiplication. These tests compare it with the
/// digit-by-digit parser it replaced (below, kept as the reference) on valid times with 0 to 12
/// fraction digits and on times with bytes changed anywhere in the head.
struct TimestampFastPathTests {
  @Test func agreesWithDigitByDigitParserOnMutatedTimes() {
    var random = SplitMix64(seed: 20_261_201)
    // Bytes that sit at the edges of what the head accepts: digits' neighbours `/` and `:`,
    // the separators, high bytes, NUL.
    let interesting: [UInt8] = Array("0123456789-:Tt Z/.+".utf8) + [0x00, 0x2F, 0x3A, 0x7F, 0x80, 0xB0, 0xBA, 0xFF]
    var accepted = 0
    var rejected = 0
    for _ in 0..<200_000 {
      var text = Array(randomTime(&random).utf8)
      let changes = Int.random(in: 0...3, using: &random)
      for _ in 0..<changes {
        let position = Int.random(in: 0..<min(text.count, 20), using: &random)
        text[position] =
          Bool.random(using: &random)
          ? interesting.randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
      }
      if Int.random(in: 0..<20, using: &random) == 0 { text.removeLast(Int.random(in: 0..<text.count, using: &random)) }
      let fast = text.withUnsafeBytes { Timestamp.parse(text: $0) }
      let reference = text.withUnsafeBytes { referenceParse($0) }
      #expect(fast == reference, "\(text)")
      if fast == reference {
        if fast == nil { rejected += 1 } else { accepted += 1 }
      } else {
        return
      }
    }
    // Both outcomes are well represented, or the comparison proves little.
    #expect(accepted > 25_000)
    #expect(rejected > 25_000)
  }

  @Test func everyHeadPositionRejectsEveryWrongByte() {
    let valid = Array("2026-12-01T17:16:53.765Z".utf8)
    for position in 0..<19 {
      for byte in UInt8.min...UInt8.max {
        var text = valid
        text[position] = byte
        let fast = text.withUnsafeBytes { Timestamp.parse(text: $0) }
        let reference = text.withUnsafeBytes { referenceParse($0) }
        #expect(fast == reference, "position \(position) byte \(byte)")
      }
    }
  }

  private func randomTime(_ random: inout SplitMix64) -> String {
    func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    let year = Int.random(in: 1678...2261, using: &random)
    let month = Int.random(in: 0...13, using: &random)
    let day = Int.random(in: 0...32, using: &random)
    let hour = Int.random(in: 0...24, using: &random)
    let minute = Int.random(in: 0...60, using: &random)
    let second = Int.random(in: 0...61, using: &random)
    let separator = ["T", "t", " "].randomElement(using: &random)!
    let fractionDigits = Int.random(in: 0...12, using: &random)
    let fraction =
      fractionDigits == 0
      ? "" : "." + String((0..<fractionDigits).map { _ in Character(String(Int.random(in: 0...9, using: &random))) })
    let zone = ["", "Z", "z", "+01:00", "-0530", "+23:59"].randomElement(using: &random)!
    let yearText = String(repeating: "0", count: 4 - String(year).count) + String(year)
    return
      "\(yearText)-\(two(month))-\(two(day))\(separator)\(two(hour)):\(two(minute)):\(two(second))\(fraction)\(zone)"
  }
}

/// The parser before the word-at-a-time head (2026-12-01), unchanged: the reference.
private func referenceParse(_ text: UnsafeRawBufferPointer) -> Int64? {
  let count = text.count
  guard count >= 19 else { return nil }
  func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
  func number(_ start: Int, _ length: Int) -> Int? {
    var value = 0
    for position in start..<(start + length) {
      let byte = text[position]
      guard isDigit(byte) else { return nil }
      value = value * 10 + Int(byte - 0x30)
    }
    return value
  }
  let separator = text[10]
  guard let year = number(0, 4), text[4] == UInt8(ascii: "-"),
    let month = number(5, 2), text[7] == UInt8(ascii: "-"),
    let day = number(8, 2),
    separator == UInt8(ascii: "T") || separator == UInt8(ascii: "t") || separator == UInt8(ascii: " "),
    let hour = number(11, 2), text[13] == UInt8(ascii: ":"),
    let minute = number(14, 2), text[16] == UInt8(ascii: ":"),
    let second = number(17, 2)
  else { return nil }
  let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
  let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
  guard (1...12).contains(month), day >= 1, day <= monthDays[month - 1], hour <= 23, minute <= 59, second <= 60
  else { return nil }
  var position = 19
  var fraction: Int64 = 0
  if position < count, text[position] == UInt8(ascii: ".") {
    position += 1
    var digits = 0
    while position < count, isDigit(text[position]) {
      if digits < 9 { fraction = fraction * 10 + Int64(text[position] - 0x30) }
      digits += 1
      position += 1
    }
    guard digits > 0 else { return nil }
    if digits < 9 {
      for _ in digits..<9 { fraction *= 10 }
    }
  }
  var offsetSeconds = 0
  if position < count {
    let byte = text[position]
    if byte == UInt8(ascii: "Z") || byte == UInt8(ascii: "z") {
      position += 1
    } else if byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") {
      position += 1
      guard count - position >= 4, let offsetHour = number(position, 2) else { return nil }
      position += 2
      if text[position] == UInt8(ascii: ":") { position += 1 }
      guard count - position >= 2, let offsetMinute = number(position, 2) else { return nil }
      position += 2
      guard offsetHour <= 23, offsetMinute <= 59 else { return nil }
      offsetSeconds = (offsetHour * 3600 + offsetMinute * 60) * (byte == UInt8(ascii: "-") ? -1 : 1)
    } else {
      return nil
    }
  }
  guard position == count else { return nil }
  let days = Timestamp.daysFromCivil(year: year, month: month, day: day)
  let seconds = Int64(days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds)
  let (wholeSeconds, nanos) =
    seconds < 0 && fraction > 0 ? (seconds + 1, fraction - 1_000_000_000) : (seconds, fraction)
  let (scaled, overflow1) = wholeSeconds.multipliedReportingOverflow(by: 1_000_000_000)
  let (total, overflow2) = scaled.addingReportingOverflow(nanos)
  guard !overflow1, !overflow2 else { return nil }
  return total
}
