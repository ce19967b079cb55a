extension JSONValue {
  /// Compact serialization (no spaces). Strings are escaped minimally: `"`, `\` and control characters
  /// below 0x20 (`\b \f \n \r \t` short forms, otherwise `\u00XX`); non-ASCII is written as raw UTF-8;
  /// numbers as their literal text; object members in order.
  public func write(to out: inout [UInt8]) {
    switch self {
    case .null: JSONValue.appendLiteral("null", to: &out)
    case .bool(let value): JSONValue.appendLiteral(value ? "true" : "false", to: &out)
    case .number(let literal): JSONValue.appendRaw(literal, to: &out)
    case .string(let text): JSONValue.writeString(text, to: &out)
    case .array(let elements):
      out.append(ASCII.openBracket)
      for (position, element) in elements.enumerated() {
        if position > 0 { out.append(ASCII.comma) }
        element.write(to: &out)
      }
      out.append(ASCII.closeBracket)
    case .object(let members):
      out.append(ASCII.openBrace)
      for (position, member) in members.enumerated() {
        if position > 0 { out.append(ASCII.comma) }
        JSONValue.writeString(member.key, to: &out)
        out.append(ASCII.colon)
        member.value.write(to: &out)
      }
      out.append(ASCII.closeBrace)
    }
  }

  /// The compact serialization as a `String`.
  public var jsonText: String {
    var out: [UInt8] = []
    write(to: &out)
    return String(decoding: out, as: UTF8.self)
  }

  static func appendLiteral(_ literal: StaticString, to out: inout [UInt8]) {
    out.append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
  }

  static func appendRaw(_ text: String, to out: inout [UInt8]) {
    var text = text
    text.withUTF8 { out.append(contentsOf: $0) }
  }

  /// Writes `text` as a quoted, minimally escaped JSON string.
  public static func writeString(_ text: String, to out: inout [UInt8]) {
    var text = text
    text.withUTF8 { writeString(bytes: UnsafeRawBufferPointer($0), to: &out) }
  }

  /// Writes the UTF-8 `text` (valid: this does not check it) as a quoted, minimally escaped
  /// JSON string.
  ///
  /// Through `writeString(utf8:to:)`, eight bytes at a time, into a temporary buffer (on the
  /// stack when small), then appended in one piece: appending run by run and escape by escape
  /// cost about 25 instructions an append (a reject record's line, with its many quotes,
  /// about 2,500).
  public static func writeString(bytes text: UnsafeRawBufferPointer, to out: inout [UInt8]) {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maxQuotedCount(text.count)) { buffer in
      let begin = buffer.baseAddress!
      let end = writeString(utf8: text, to: begin)
      out.append(contentsOf: UnsafeBufferPointer(start: begin, count: begin.distance(to: end)))
    }
  }
}

extension JSONValue {
  /// The most bytes `writeString(utf8:to:)` writes for `count` bytes of text.
  @inline(__always) public static func maxQuotedCount(_ count: Int) -> Int { 6 * count + 2 }

  /// `writeString` through a raw pointer: writes the UTF-8 `text` quoted and minimally escaped
  /// at `out` (room for `maxQuotedCount(text.count)` bytes) and returns the end of what it wrote.
  @inline(__always)
  public static func writeString(
    utf8 text: UnsafeRawBufferPointer, to out: UnsafeMutablePointer<UInt8>
  ) -> UnsafeMutablePointer<UInt8> {
    out[0] = ASCII.quote
    var p = out + 1
    let count = text.count
    guard count > 0, let base = text.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
      p[0] = ASCII.quote
      return p + 1
    }
    // Eight bytes at a time: those before the first that needs an escape (a quote, a
    // backslash, a control byte; flagged by the high bit of its byte) are copied, it is
    // escaped, and the next eight start after it; then the last bytes one by one. (Going on
    // byte by byte after the first escape, a JSON line in a reject record, quotes from its
    // second byte on, took about 12 instructions a byte.) Room: a word stored where only
    // `k < 8` of its bytes count ends at most 6 * read + 9 bytes in, within
    // `maxQuotedCount`, since 8 more bytes were left to read.
    var start = 0
    while start &+ 8 <= count {
      let word = UInt64(littleEndian: UnsafeRawPointer(base + start).loadUnaligned(as: UInt64.self))
      UnsafeMutableRawPointer(p).storeBytes(of: word.littleEndian, as: UInt64.self)
      let specials = JSONBytes.stringSpecials(word)
      if specials == 0 {
        p += 8
        start &+= 8
        continue
      }
      let k = specials.trailingZeroBitCount &>> 3
      p = writeEscape(base[start &+ k], to: p + k)
      start &+= k &+ 1
    }
    for position in start..<count {
      let byte = base[position]
      if byte < 0x20 || byte == ASCII.quote || byte == ASCII.backslash {
        p = writeEscape(byte, to: p)
      } else {
        p[0] = byte
        p += 1
      }
    }
    p[0] = ASCII.quote
    return p + 1
  }

  @inline(never)
  private static func writeEscape(_ byte: UInt8, to p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
    p[0] = ASCII.backslash
    switch byte {
    case ASCII.quote, ASCII.backslash: p[1] = byte
    case 0x08: p[1] = UInt8(ascii: "b")
    case 0x0C: p[1] = UInt8(ascii: "f")
    case 0x0A: p[1] = UInt8(ascii: "n")
    case 0x0D: p[1] = UInt8(ascii: "r")
    case 0x09: p[1] = UInt8(ascii: "t")
    default:
      let hexDigits: StaticString = "0123456789abcdef"
      p[1] = UInt8(ascii: "u")
      p[2] = ASCII.zero
      p[3] = ASCII.zero
      p[4] = hexDigits.utf8Start[Int(byte >> 4)]
      p[5] = hexDigits.utf8Start[Int(byte & 0x0F)]
      return p + 6
    }
    return p + 2
  }
}

extension JSONValue {
  /// The ranges of the elements of the JSON array in `bytes` (each without the whitespace
  /// around it), without building them. False (and no ranges) unless `bytes` is one
  /// well-formed JSON array, with nothing but whitespace around it: exactly the texts
  /// `JSONValue.parse` reads as an array (the same grammar, checked by `JSONScanner`).
  public static func arrayElements(_ bytes: UnsafeRawBufferPointer, into ranges: inout [Range<Int>]) -> Bool {
    ranges.removeAll(keepingCapacity: true)
    guard let base = bytes.baseAddress, bytes.count > 0 else { return false }
    var scanner = JSONScanner(
      bytes: base.assumingMemoryBound(to: UInt8.self), count: bytes.count, trie: elementSelector.trie, slots: nil)
    scanner.skipWhitespace()
    let isArray = withUnsafeMutablePointer(to: &ranges) { elements in
      scanner.index < scanner.count && scanner.bytes[scanner.index] == ASCII.openBracket
        && scanner.scanArray(elements: elements)
    }
    scanner.skipWhitespace()
    if isArray && scanner.index == scanner.count { return true }
    ranges.removeAll(keepingCapacity: true)
    return false
  }

  /// No paths: scanning the elements records nothing.
  private static let elementSelector = FieldSelector(paths: [])
}

extension Array where Element == UInt8 {
  /// Appends raw bytes, passed to `append(contentsOf:)` as typed `UInt8`s: as an
  /// `UnsafeRawBufferPointer` they went through a slower generic path (the engine's
  /// instructions per line fell 1.7% when kept values were appended this way).
  @inline(__always)
  public mutating func appendBytes(_ bytes: UnsafeRawBufferPointer) {
    append(
      contentsOf: UnsafeBufferPointer(start: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), count: bytes.count)
    )
  }
}

/// Eight bytes of JSON text at a time.
public enum JSONBytes {
  /// The high bit of each byte of `word` (eight bytes as loaded, little-endian) that is a
  /// quote, a backslash or a control byte (below 0x20): where a string ends or needs an escape.
  /// Bits above the lowest set one may be false alarms (borrows run upward from a real one),
  /// so only the lowest counts: `trailingZeroBitCount / 8` is that byte's offset.
  @inlinable @inline(__always)
  public static func stringSpecials(_ word: UInt64) -> UInt64 {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let quotes = word ^ (ones &* 0x22)
    let backslashes = word ^ (ones &* 0x5C)
    return ((quotes &- ones) & ~quotes | (backslashes &- ones) & ~backslashes | (word &- ones &* 0x20) & ~word)
      & (ones &* 0x80)
  }
}
