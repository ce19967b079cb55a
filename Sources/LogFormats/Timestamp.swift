/// Timestamps as `Int64` nanoseconds since the Unix epoch (UTC).
///
/// Calendar arithmetic uses Howard Hinnant's `days_from_civil` / `civil_from_days` algorithms
/// (proleptic Gregorian calendar), with no Foundation.
public enum Timestamp {
  static let nanosPerSecond: Int64 = 1_000_000_000

  // MARK: - Parsing JSON values

  /// A JSON time value: a string in RFC 3339 / ISO 8601 form, or a number (or numeric string) of epoch
  /// seconds, milliseconds, microseconds or nanoseconds decided by magnitude: |x| < 1e11 seconds
  /// (a fraction is allowed, e.g. `1764493200.123`), < 1e14 milliseconds, < 1e17 microseconds, else
  /// nanoseconds. Digits below one nanosecond are truncated. `nil` for other kinds or out-of-range values.
  public static func parse(_ value: JSONValue) -> Int64? {
    switch value {
    case .number(let literal):
      return withUTF8(literal) { epochNanoseconds(numberText: $0) }
    case .string(let text):
      return withUTF8(text) { bytes in
        if let nanos = parse(text: bytes) { return nanos }
        return epochNanoseconds(numberText: bytes)
      }
    default:
      return nil
    }
  }

  @inline(__always) static func withUTF8<R>(_ text: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    var text = text
    return text.withUTF8 { body(UnsafeRawBufferPointer($0)) }
  }

  /// Epoch seconds/ms/µs/ns (by magnitude) from a decimal number text such as `1764493200.5`, `-1e9` or
  /// `1764493200123`. The conversion is exact decimal arithmetic (no `Double` rounding).
  static func epochNanoseconds(numberText text: UnsafeRawBufferPointer) -> Int64? {
    let count = text.count
    var position = 0
    var negative = false
    if position < count, text[position] == ASCII.minus {
      negative = true
      position += 1
    }
    let integerStart = position
    while position < count, ASCII.isDigit(text[position]) { position += 1 }
    let integerEnd = position
    guard integerEnd > integerStart else { return nil }
    var fractionStart = position
    var fractionEnd = position
    if position < count, text[position] == ASCII.dot {
      position += 1
      fractionStart = position
      while position < count, ASCII.isDigit(text[position]) { position += 1 }
      fractionEnd = position
      guard fractionEnd > fractionStart else { return nil }
    }
    var exponent = 0
    if position < count, text[position] == ASCII.lowerE || text[position] == ASCII.upperE {
      position += 1
      var exponentNegative = false
      if position < count, text[position] == ASCII.plus || text[position] == ASCII.minus {
        exponentNegative = text[position] == ASCII.minus
        position += 1
      }
      let exponentStart = position
      while position < count, ASCII.isDigit(text[position]) {
        // Clamp: anything this large is out of range (or zero) anyway.
        if exponent < 100_000 { exponent = exponent * 10 + Int(text[position] - ASCII.zero) }
        position += 1
      }
      guard position > exponentStart else { return nil }
      if exponentNegative { exponent = -exponent }
    }
    guard position == count else { return nil }

    // The value is D × 10^E, where D is the digit string (integer then fraction digits) without leading zeros.
    let integerCount = integerEnd - integerStart
    let totalDigits = integerCount + (fractionEnd - fractionStart)
    func digit(_ n: Int) -> Int64 {
      let byte = n < integerCount ? text[integerStart + n] : text[fractionStart + n - integerCount]
      return Int64(byte - ASCII.zero)
    }
    var firstSignificant = 0
    while firstSignificant < totalDigits, digit(firstSignificant) == 0 { firstSignificant += 1 }
    if firstSignificant == totalDigits { return 0 }
    let significantCount = totalDigits - firstSignificant
    let decimalExponent = exponent - (fractionEnd - fractionStart)
    // Number of digits before the decimal point: |x| < 10^k  ⇔  significantCount + decimalExponent ≤ k.
    let magnitude = significantCount + decimalExponent
    let scale: Int
    if magnitude <= 11 {
      scale = 9  // seconds
    } else if magnitude <= 14 {
      scale = 6  // milliseconds
    } else if magnitude <= 17 {
      scale = 3  // microseconds
    } else {
      scale = 0  // nanoseconds
    }
    let shift = decimalExponent + scale
    // Keep the digits at or above one nanosecond.
    let keptCount = shift >= 0 ? significantCount : significantCount + shift
    guard keptCount > 0 else { return 0 }
    guard keptCount <= 19, shift <= 19 else { return nil }
    var result: Int64 = 0
    for n in firstSignificant..<(firstSignificant + keptCount) {
      let (times10, overflow1) = result.multipliedReportingOverflow(by: 10)
      let (sum, overflow2) = times10.addingReportingOverflow(digit(n))
      guard !overflow1, !overflow2 else { return nil }
      result = sum
    }
    if shift > 0 {
      for _ in 0..<shift {
        let (times10, overflow) = result.multipliedReportingOverflow(by: 10)
        guard !overflow else { return nil }
        result = times10
      }
    }
    return negative ? -result : result
  }

  // MARK: - Parsing text

  /// RFC 3339 / ISO 8601 text: `2026-11-30T09:00:00Z`, `2026-11-30T09:00:00.123456789+01:00`; offsets
  /// `+01:00`, `+0100`, `-05:30`, `Z`/`z`; `T`/`t` or a single space as separator; 1…9 fraction digits
  /// (further digits are ignored); no offset means UTC. Field ranges are validated (second 60 is
  /// accepted as a leap second and lands on the next minute). `nil` for anything else.
  public static func parse(text: UnsafeRawBufferPointer) -> Int64? {
    var memo = Memo()
    return parse(text: text, memo: &memo)
  }

  /// The date, hour and minute of the last time `parse(text:memo:)` read whole: the log lines
  /// of one minute share them, and the next such time is read from its seconds on.
  public struct Memo: Sendable {
    /// Bytes 0-15 (`YYYY-MM-DDTHH:MM`) as two little-endian words; zeros (not a valid time's
    /// bytes): nothing yet.
    var head: (UInt64, UInt64) = (0, 0)
    /// Seconds from the epoch to that minute (UTC, before any offset).
    var minuteSeconds = 0

    public init() {}

    /// `head`, for tests.
    public var headWords: (UInt64, UInt64) { head }

    init(head: (UInt64, UInt64), minuteSeconds: Int) {
      self.head = head
      self.minuteSeconds = minuteSeconds
    }
  }

  /// `parse(text:)`, skipping the date, hour and minute when they are `memo`'s (then only
  /// `:SS` is checked of the first 19 bytes); otherwise keeps this time's in `memo`.
  public static func parse(text: UnsafeRawBufferPointer, memo: inout Memo) -> Int64? {
    let count = text.count
    guard count >= 19 else { return nil }
    @inline(__always) func number(_ start: Int, _ length: Int) -> Int? {
      var value = 0
      for position in start..<(start + length) {
        let byte = text[position]
        guard ASCII.isDigit(byte) else { return nil }
        value = value * 10 + Int(byte - ASCII.zero)
      }
      return value
    }
    let base = text.baseAddress!
    let words = (
      UInt64(littleEndian: base.loadUnaligned(as: UInt64.self)),
      UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
    )
    let minuteSeconds: Int
    let second: Int
    if words == memo.head {
      guard let seconds = DateTimeHead.second(base) else { return nil }
      second = seconds
      minuteSeconds = memo.minuteSeconds
    } else {
      // `YYYY-MM-DDTHH:MM:SS` read as two words and three bytes, every digit checked at once
      // (digit by digit, this function took 352 instructions per line of a replay; then 297).
      guard let head = DateTimeHead(base) else { return nil }
      let (year, month, day, hour, minute) = (head.year, head.month, head.day, head.hour, head.minute)
      guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month),
        hour <= 23, minute <= 59
      else { return nil }
      second = head.second
      minuteSeconds = daysFromCivil(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60
      memo = Memo(head: words, minuteSeconds: minuteSeconds)
    }
    guard second <= 60 else { return nil }

    var position = 19
    var fraction: Int64 = 0
    // Milliseconds and `Z` (`…:SS.mmmZ`, what most loggers write): read as one word.
    if count == 24 {
      let tail = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 20, as: UInt32.self))
      let digits = tail &- 0x0030_3030
      // Three digits (each byte minus "0" below 10, no borrow) and a `Z` or `z` after them.
      if text[19] == ASCII.dot, tail & 0xDFFF_FFFF == 0x5A00_0000 | tail & 0x00FF_FFFF,
        (digits | (digits &+ 0x0076_7676)) & 0x0080_8080 == 0, tail & 0x0080_8080 == 0
      {
        let milliseconds = (digits & 0xFF) &* 100 &+ (digits >> 8 & 0xFF) &* 10 &+ (digits >> 16 & 0xFF)
        let seconds = Int64(minuteSeconds + second)
        let (scaled, overflow1) = seconds.multipliedReportingOverflow(by: nanosPerSecond)
        let (total, overflow2) = scaled.addingReportingOverflow(Int64(milliseconds) &* 1_000_000)
        // (A time past 2262 goes on to the general path, which rejects it.)
        if !overflow1, !overflow2 { return total }
      }
    }
    if position < count, text[position] == ASCII.dot {
      position += 1
      var digits = 0
      while position < count {
        let digit = text[position] &- ASCII.zero
        guard digit < 10 else { break }
        // Nine digits at most: no overflow.
        if digits < 9 { fraction = fraction &* 10 &+ Int64(digit) }
        digits += 1
        position += 1
      }
      guard digits > 0 else { return nil }
      if digits < 9 { fraction &*= powerOfTen(9 - digits) }
    }
    var offsetSeconds = 0
    if position < count {
      let byte = text[position]
      if byte == UInt8(ascii: "Z") || byte == UInt8(ascii: "z") {
        position += 1
      } else if byte == ASCII.plus || byte == ASCII.minus {
        position += 1
        guard count - position >= 4, let offsetHour = number(position, 2) else { return nil }
        position += 2
        if text[position] == ASCII.colon { position += 1 }
        guard count - position >= 2, let offsetMinute = number(position, 2) else { return nil }
        position += 2
        guard offsetHour <= 23, offsetMinute <= 59 else { return nil }
        offsetSeconds = (offsetHour * 3600 + offsetMinute * 60) * (byte == ASCII.minus ? -1 : 1)
      } else {
        return nil
      }
    }
    guard position == count else { return nil }

    let seconds = Int64(minuteSeconds + second - offsetSeconds)
    // For negative times with a fraction, combine (seconds + 1) and (fraction − 1 s) so that values near
    // Int64.min do not overflow in the intermediate product.
    let (wholeSeconds, nanos) =
      seconds < 0 && fraction > 0 ? (seconds + 1, fraction - nanosPerSecond) : (seconds, fraction)
    let (scaled, overflow1) = wholeSeconds.multipliedReportingOverflow(by: nanosPerSecond)
    let (total, overflow2) = scaled.addingReportingOverflow(nanos)
    guard !overflow1, !overflow2 else { return nil }
    return total
  }

  /// 10^n for n in 0...8, the scale of a fraction with 9 - n digits.
  @inline(__always) static func powerOfTen(_ n: Int) -> Int64 {
    switch n {
    case 0: 1
    case 1: 10
    case 2: 100
    case 3: 1000
    case 4: 10000
    case 5: 100_000
    case 6: 1_000_000
    case 7: 10_000_000
    default: 100_000_000
    }
  }

  /// The fixed head of an RFC 3339 time, `YYYY-MM-DDTHH:MM:SS` (`T`, `t` or a space between
  /// date and time), its fields not yet range-checked. Needs 19 readable bytes.
  struct DateTimeHead {
    var year, month, day, hour, minute, second: Int

    @inline(__always)
    init?(_ p: UnsafeRawPointer) {
      let ones: UInt64 = 0x0101_0101_0101_0101
      let zeros = ones &* UInt64(ASCII.zero)
      // Bytes 0-7 `YYYY-MM-` (separators in bytes 4 and 7), 8-15 `DDTHH:MM` (2 and 5).
      let a = UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
      let b = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
      let separatorsA: UInt64 = 0xFF00_00FF_0000_0000
      let separatorsB: UInt64 = 0x0000_FF00_00FF_0000
      guard a & separatorsA == 0x2D00_002D_0000_0000, (b >> 40) & 0xFF == UInt64(ASCII.colon) else { return nil }
      let t = UInt8(truncatingIfNeeded: b >> 16)
      guard t == UInt8(ascii: "T") || t == UInt8(ascii: "t") || t == ASCII.space else { return nil }
      // Separators replaced by `0`, then a byte outside `0`...`9` sets its high bit in one of
      // the three terms (no borrow or carry crosses a digit byte, and the lowest bad byte is
      // always caught before any could).
      let digitsA = (a & ~separatorsA) | (zeros & separatorsA)
      let digitsB = (b & ~separatorsB) | (zeros & separatorsB)
      let highs = ones &* 0x80
      let bad =
        ((digitsA &+ ones &* 0x46) | (digitsA &- zeros) | digitsA | (digitsB &+ ones &* 0x46) | (digitsB &- zeros)
          | digitsB) & highs
      guard bad == 0, let second = Self.second(p) else { return nil }
      let da = digitsA &- zeros
      let db = digitsB &- zeros
      @inline(__always) func digit(_ word: UInt64, _ byte: UInt64) -> Int {
        Int(truncatingIfNeeded: (word >> (8 * byte)) & 0xFF)
      }
      year = digit(da, 0) * 1000 + digit(da, 1) * 100 + digit(da, 2) * 10 + digit(da, 3)
      month = digit(da, 5) * 10 + digit(da, 6)
      day = digit(db, 0) * 10 + digit(db, 1)
      hour = digit(db, 3) * 10 + digit(db, 4)
      minute = digit(db, 6) * 10 + digit(db, 7)
      self.second = second
    }

    /// `:SS` in bytes 16-18, not yet range-checked.
    @inline(__always)
    static func second(_ p: UnsafeRawPointer) -> Int? {
      let s0 = p.load(fromByteOffset: 17, as: UInt8.self) &- ASCII.zero
      let s1 = p.load(fromByteOffset: 18, as: UInt8.self) &- ASCII.zero
      guard p.load(fromByteOffset: 16, as: UInt8.self) == ASCII.colon, s0 < 10, s1 < 10 else { return nil }
      return Int(s0) &* 10 &+ Int(s1)
    }
  }

  public static func parse(text: String) -> Int64? {
    withUTF8(text) { parse(text: $0) }
  }

  // MARK: - Formatting

  /// `2026-11-30T09:00:00.123Z`: UTC, exactly `fractionDigits` fraction digits (clamped to 0…9; 0 = no
  /// fraction), truncated toward the past. Correct for negative (pre-1970) times.
  public static func format(_ nanoseconds: Int64, fractionDigits: Int = 3) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(32)
    write(nanoseconds, fractionDigits: fractionDigits, to: &out)
    return String(decoding: out, as: UTF8.self)
  }

  /// Appends `format(nanoseconds, fractionDigits:)` to `out`, without making a `String`.
  public static func write(_ nanoseconds: Int64, fractionDigits: Int = 3, to out: inout [UInt8]) {
    let (seconds, nanos) = splitSeconds(nanoseconds)
    let (days, secondOfDay) = floorDivide(seconds, 86_400)
    let date = civilFromDays(Int(days))
    let secondOfDayInt = Int(secondOfDay)
    @inline(__always) func append(_ value: Int, width: Int) {
      var divisor = 1
      for _ in 1..<width { divisor *= 10 }
      var value = value
      while divisor > 0 {
        out.append(ASCII.zero + UInt8(value / divisor % 10))
        value %= divisor
        divisor /= 10
      }
    }
    var year = date.year
    if year < 0 {  // Not reachable with Int64 nanoseconds (1677…2262), kept for completeness.
      out.append(ASCII.minus)
      year = -year
    }
    append(year, width: 4)
    out.append(ASCII.minus)
    append(date.month, width: 2)
    out.append(ASCII.minus)
    append(date.day, width: 2)
    out.append(UInt8(ascii: "T"))
    append(secondOfDayInt / 3600, width: 2)
    out.append(ASCII.colon)
    append(secondOfDayInt / 60 % 60, width: 2)
    out.append(ASCII.colon)
    append(secondOfDayInt % 60, width: 2)
    let digits = min(max(fractionDigits, 0), 9)
    if digits > 0 {
      out.append(ASCII.dot)
      var divisor = 1
      for _ in digits..<9 { divisor *= 10 }
      append(Int(nanos) / divisor, width: digits)
    }
    out.append(UInt8(ascii: "Z"))
  }

  /// Civil UTC parts, e.g. for partition names.
  public static func civil(
    _ nanoseconds: Int64
  ) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
    let (seconds, _) = splitSeconds(nanoseconds)
    let (days, secondOfDay) = floorDivide(seconds, 86_400)
    let date = civilFromDays(Int(days))
    let sod = Int(secondOfDay)
    return (date.year, date.month, date.day, sod / 3600, sod / 60 % 60, sod % 60)
  }

  // MARK: - Calendar arithmetic

  /// Whole seconds (floor) and the nanoseconds within that second (0..<1e9).
  @inline(__always) static func splitSeconds(_ nanoseconds: Int64) -> (seconds: Int64, nanos: Int64) {
    let (quotient, remainder) = floorDivide(nanoseconds, nanosPerSecond)
    return (quotient, remainder)
  }

  @inline(__always) static func floorDivide(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
    var quotient = value / divisor
    var remainder = value % divisor
    if remainder < 0 {
      quotient -= 1
      remainder += divisor
    }
    return (quotient, remainder)
  }

  static func isLeapYear(_ year: Int) -> Bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
  }

  static func daysInMonth(year: Int, month: Int) -> Int {
    switch month {
    case 2: return isLeapYear(year) ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
  }

  /// Days since 1970-01-01 for a proleptic Gregorian date (Hinnant's `days_from_civil`).
  @inline(__always) public static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400  // [0, 399]
    let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1  // [0, 365]
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear  // [0, 146096]
    return era * 146_097 + dayOfEra - 719_468
  }

  /// The proleptic Gregorian date for days since 1970-01-01 (Hinnant's `civil_from_days`).
  public static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097  // [0, 146096]
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365  // [0, 399]
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)  // [0, 365]
    let mp = (5 * dayOfYear + 2) / 153  // [0, 11]
    let day = dayOfYear - (153 * mp + 2) / 5 + 1  // [1, 31]
    let month = mp < 10 ? mp + 3 : mp - 9  // [1, 12]
    let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    return (year, month, day)
  }
}

/// Writes `Timestamp.format(t, fractionDigits:)` through a raw pointer, keeping the last
/// minute's `YYYY-MM-DDTHH:MM:` (times written one after another are mostly in the same
/// minute: dataset rows come in near time order). One formatter per stream of times.
public struct TimestampFormatter {
  /// Room `write` needs at its destination (it may store up to this many bytes).
  public static let maxCount = 40
  /// Two ASCII digits per value 0…99.
  private static let pairs: [UInt8] = {
    var digits: [UInt8] = []
    for n in 0..<100 { digits += [ASCII.zero + UInt8(n / 10), ASCII.zero + UInt8(n % 10)] }
    return digits
  }()

  public let fractionDigits: Int
  private let fractionDivisor: Int64
  /// The minute (floor of seconds / 60) whose prefix is cached; `.min` for none yet.
  private var minute: Int64 = .min
  /// The cached prefix (`2026-11-30T09:00:`), in four words, and its length.
  private var prefix: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
  private var prefixCount = 0
  /// The cached minute's first nanosecond, when it is an `Int64` (`minuteStartExact`): a time
  /// up to 60 s after it is written from the prefix with no division by a variable.
  private var minuteStart: Int64 = 0
  private var minuteStartExact = false
  /// The day (since 1970-01-01) whose `YYYY-MM-DDT` is in `datePrefix`; `.min` for none yet.
  private var prefixDay: Int64 = .min
  private var datePrefix: (UInt64, UInt64) = (0, 0)

  public init(fractionDigits: Int = 3) {
    self.fractionDigits = min(max(fractionDigits, 0), 9)
    var divisor: Int64 = 1
    for _ in self.fractionDigits..<9 { divisor *= 10 }
    fractionDivisor = divisor
  }

  /// Writes the time at `out` (which has room for `maxCount` bytes) and returns the count written.
  @inline(__always)
  public mutating func write(_ nanoseconds: Int64, to out: UnsafeMutablePointer<UInt8>) -> Int {
    // Milliseconds in the cached minute (the rows' times, mostly): constant divisors only. The
    // general path divided by `fractionDivisor` (a `div` instruction) and read the digit pairs
    // through a lazily made global; about 150 instructions a time.
    if fractionDigits == 3, minuteStartExact, nanoseconds >= minuteStart {
      let offset = UInt64(bitPattern: nanoseconds &- minuteStart)
      if offset < 60_000_000_000 {
        storePrefix(at: out)
        let second = offset / 1_000_000_000
        let millis = (offset &- second &* 1_000_000_000) / 1_000_000
        let p = out + prefixCount
        p[0] = ASCII.zero &+ UInt8(truncatingIfNeeded: second / 10)
        p[1] = ASCII.zero &+ UInt8(truncatingIfNeeded: second % 10)
        p[2] = ASCII.dot
        p[3] = ASCII.zero &+ UInt8(truncatingIfNeeded: millis / 100)
        p[4] = ASCII.zero &+ UInt8(truncatingIfNeeded: millis / 10 % 10)
        p[5] = ASCII.zero &+ UInt8(truncatingIfNeeded: millis % 10)
        p[6] = UInt8(ascii: "Z")
        return prefixCount &+ 7
      }
    }
    return writeAnyTime(nanoseconds, to: out)
  }

  /// `write` for any time and any number of fraction digits.
  private mutating func writeAnyTime(_ nanoseconds: Int64, to out: UnsafeMutablePointer<UInt8>) -> Int {
    let (seconds, nanos) = Timestamp.splitSeconds(nanoseconds)
    let (minute, second) = Timestamp.floorDivide(seconds, 60)
    if minute != self.minute { cachePrefix(minute) }
    storePrefix(at: out)
    var p = out + prefixCount
    Self.pairs.withUnsafeBufferPointer { pairs in
      let s = Int(second) * 2
      p[0] = pairs[s]
      p[1] = pairs[s + 1]
      p += 2
      if fractionDigits > 0 {
        p[0] = ASCII.dot
        p += 1
        var value = nanos / fractionDivisor
        var i = fractionDigits
        while i > 0 {
          i -= 1
          p[i] = ASCII.zero &+ UInt8(truncatingIfNeeded: value % 10)
          value /= 10
        }
        p += fractionDigits
      }
    }
    p[0] = UInt8(ascii: "Z")
    return p + 1 - out
  }

  /// The prefix words, stored whole (32 bytes); what follows overwrites the excess.
  @inline(__always)
  private func storePrefix(at out: UnsafeMutablePointer<UInt8>) {
    let raw = UnsafeMutableRawPointer(out)
    raw.storeBytes(of: prefix.0, as: UInt64.self)
    raw.storeBytes(of: prefix.1, toByteOffset: 8, as: UInt64.self)
    raw.storeBytes(of: prefix.2, toByteOffset: 16, as: UInt64.self)
    raw.storeBytes(of: prefix.3, toByteOffset: 24, as: UInt64.self)
  }

  @inline(never)
  private mutating func cachePrefix(_ minute: Int64) {
    // Any time within the minute has its prefix; the minute's first nanosecond is not an Int64
    // for the first minute of the range, whose last one is.
    let (start, overflow) = minute.multipliedReportingOverflow(by: 60 * Timestamp.nanosPerSecond)
    minuteStart = start
    minuteStartExact = !overflow
    // The date part (`YYYY-MM-DDT`, 11 bytes: Int64 nanoseconds span the years 1677…2262) is
    // kept per day, so a new minute of the same day only writes its `HH:MM:`. (Rows' `*_at`
    // times jump between the minutes of a window: a click's time is any time in its
    // prediction's window. Making the whole prefix again, through `Timestamp.write` into an
    // array, took about 1,100 instructions a time: 153k of the benchmark's 268k click times.)
    let (day, minuteOfDay) = Timestamp.floorDivide(minute, 1440)
    if day != prefixDay {
      let date = Timestamp.civilFromDays(Int(day))
      var words: (UInt64, UInt64) = (0, 0)
      withUnsafeMutableBytes(of: &words) { out in
        Self.pairs.withUnsafeBufferPointer { pairs in
          let century = date.year / 100
          let year = date.year % 100
          out[0] = pairs[2 * century]
          out[1] = pairs[2 * century + 1]
          out[2] = pairs[2 * year]
          out[3] = pairs[2 * year + 1]
          out[4] = ASCII.minus
          out[5] = pairs[2 * date.month]
          out[6] = pairs[2 * date.month + 1]
          out[7] = ASCII.minus
          out[8] = pairs[2 * date.day]
          out[9] = pairs[2 * date.day + 1]
          out[10] = UInt8(ascii: "T")
        }
      }
      datePrefix = words
      prefixDay = day
    }
    var words: (UInt64, UInt64, UInt64, UInt64) = (datePrefix.0, datePrefix.1, 0, 0)
    withUnsafeMutableBytes(of: &words) { out in
      Self.pairs.withUnsafeBufferPointer { pairs in
        let hour = Int(minuteOfDay / 60)
        let minute = Int(minuteOfDay % 60)
        out[11] = pairs[2 * hour]
        out[12] = pairs[2 * hour + 1]
        out[13] = ASCII.colon
        out[14] = pairs[2 * minute]
        out[15] = pairs[2 * minute + 1]
        out[16] = ASCII.colon
      }
    }
    prefix = words
    prefixCount = 17
    self.minute = minute
  }
}
