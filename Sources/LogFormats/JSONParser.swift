/// ASCII byte constants shared by the parsers and the writer.
enum ASCII {
  static let quote = UInt8(ascii: "\"")
  static let backslash = UInt8(ascii: "\\")
  static let slash = UInt8(ascii: "/")
  static let comma = UInt8(ascii: ",")
  static let colon = UInt8(ascii: ":")
  static let openBracket = UInt8(ascii: "[")
  static let closeBracket = UInt8(ascii: "]")
  static let openBrace = UInt8(ascii: "{")
  static let closeBrace = UInt8(ascii: "}")
  static let minus = UInt8(ascii: "-")
  static let plus = UInt8(ascii: "+")
  static let dot = UInt8(ascii: ".")
  static let zero = UInt8(ascii: "0")
  static let nine = UInt8(ascii: "9")
  static let space = UInt8(ascii: " ")
  static let tab = UInt8(ascii: "\t")
  static let lf = UInt8(ascii: "\n")
  static let cr = UInt8(ascii: "\r")
  static let lowerE = UInt8(ascii: "e")
  static let upperE = UInt8(ascii: "E")

  @inline(__always) static func isDigit(_ byte: UInt8) -> Bool { byte &- zero < 10 }
  @inline(__always) static func isWhitespace(_ byte: UInt8) -> Bool {
    byte == space || byte == lf || byte == cr || byte == tab
  }
}

extension JSONValue {
  /// The deepest nesting of arrays and objects the parser accepts.
  public static let maximumDepth = 512

  /// Strict RFC 8259 parser over raw bytes: one value, optional surrounding whitespace
  /// (space, `\t`, `\n`, `\r`) and nothing else. Strings must be valid UTF-8.
  public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
    guard let base = bytes.baseAddress, bytes.count > 0 else {
      throw JSONParseError(offset: 0, message: "unexpected end of input")
    }
    var parser = JSONParser(bytes: base.assumingMemoryBound(to: UInt8.self), count: bytes.count)
    return try parser.parseDocument()
  }

  public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
    let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBytes { raw in
      Result { () throws(JSONParseError) -> JSONValue in try parse(raw) }
    }
    return try result.get()
  }

  public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
    var text = text
    let result: Result<JSONValue, JSONParseError> = text.withUTF8 { utf8 in
      Result { () throws(JSONParseError) -> JSONValue in try parse(UnsafeRawBufferPointer(utf8)) }
    }
    return try result.get()
  }
}

/// A recursive-descent parser over a contiguous byte buffer. Recursion depth is bounded by
/// `JSONValue.maximumDepth`, so hostile input cannot overflow the stack.
struct JSONParser {
  let bytes: UnsafePointer<UInt8>
  let count: Int
  var index = 0
  var depth = 0
  /// Reused buffer for strings that contain escapes.
  var scratch: [UInt8] = []

  init(bytes: UnsafePointer<UInt8>, count: Int) {
    self.bytes = bytes
    self.count = count
  }

  func error(_ message: String, at offset: Int? = nil) -> JSONParseError {
    JSONParseError(offset: offset ?? index, message: message)
  }

  mutating func parseDocument() throws(JSONParseError) -> JSONValue {
    skipWhitespace()
    let value = try parseValue()
    skipWhitespace()
    guard index == count else { throw error("unexpected data after the JSON value") }
    return value
  }

  @inline(__always) mutating func skipWhitespace() {
    while index < count, ASCII.isWhitespace(bytes[index]) { index += 1 }
  }

  mutating func parseValue() throws(JSONParseError) -> JSONValue {
    guard index < count else { throw error("unexpected end of input") }
    switch bytes[index] {
    case ASCII.quote: return .string(try parseString())
    case ASCII.openBrace: return try parseObject()
    case ASCII.openBracket: return try parseArray()
    case UInt8(ascii: "t"):
      try expectLiteral("true")
      return .bool(true)
    case UInt8(ascii: "f"):
      try expectLiteral("false")
      return .bool(false)
    case UInt8(ascii: "n"):
      try expectLiteral("null")
      return .null
    case ASCII.minus, ASCII.zero...ASCII.nine:
      return .number(try parseNumber())
    default:
      throw error("unexpected character")
    }
  }

  mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
    let length = literal.utf8CodeUnitCount
    guard count - index >= length else { throw error("invalid literal") }
    let expected = literal.utf8Start
    for offset in 0..<length where bytes[index + offset] != expected[offset] {
      throw error("invalid literal", at: index + offset)
    }
    index += length
  }

  mutating func enterContainer() throws(JSONParseError) {
    depth += 1
    guard depth <= JSONValue.maximumDepth else {
      throw error("nesting deeper than \(JSONValue.maximumDepth)")
    }
    index += 1
  }

  mutating func parseArray() throws(JSONParseError) -> JSONValue {
    try enterContainer()
    skipWhitespace()
    if index < count, bytes[index] == ASCII.closeBracket {
      index += 1
      depth -= 1
      return .array([])
    }
    var elements: [JSONValue] = []
    while true {
      skipWhitespace()
      let element = try parseValue()
      elements.append(element)
      skipWhitespace()
      guard index < count else { throw error("unterminated array") }
      let byte = bytes[index]
      index += 1
      if byte == ASCII.comma { continue }
      if byte == ASCII.closeBracket { break }
      throw error("expected ',' or ']' in array", at: index - 1)
    }
    depth -= 1
    return .array(elements)
  }

  mutating func parseObject() throws(JSONParseError) -> JSONValue {
    try enterContainer()
    skipWhitespace()
    if index < count, bytes[index] == ASCII.closeBrace {
      index += 1
      depth -= 1
      return .object([])
    }
    var members: [JSONMember] = []
    members.reserveCapacity(8)
    while true {
      skipWhitespace()
      guard index < count, bytes[index] == ASCII.quote else { throw error("expected a string key") }
      let key = try parseString()
      skipWhitespace()
      guard index < count, bytes[index] == ASCII.colon else { throw error("expected ':' after an object key") }
      index += 1
      skipWhitespace()
      let value = try parseValue()
      members.append(JSONMember(key: key, value: value))
      skipWhitespace()
      guard index < count else { throw error("unterminated object") }
      let byte = bytes[index]
      index += 1
      if byte == ASCII.comma { continue }
      if byte == ASCII.closeBrace { break }
      throw error("expected ',' or '}' in object", at: index - 1)
    }
    depth -= 1
    return .object(members)
  }

  /// A number, returned as its literal text.
  mutating func parseNumber() throws(JSONParseError) -> String {
    let start = index
    guard let end = JSONGrammar.numberEnd(bytes, index, count) else { throw error("invalid number") }
    index = end
    return makeString(start, index)
  }

  @inline(__always) func makeString(_ start: Int, _ end: Int) -> String {
    String(decoding: UnsafeBufferPointer(start: bytes + start, count: end - start), as: UTF8.self)
  }

  /// Parses a string starting at its opening quote.
  mutating func parseString() throws(JSONParseError) -> String {
    index += 1
    let start = index
    // Fast path: printable ASCII without escapes.
    while index < count {
      let byte = bytes[index]
      if byte == ASCII.quote {
        let text = makeString(start, index)
        index += 1
        return text
      }
      if byte == ASCII.backslash || byte < 0x20 || byte >= 0x80 { break }
      index += 1
    }
    return try parseStringSlow(start: start)
  }

  mutating func parseStringSlow(start: Int) throws(JSONParseError) -> String {
    var escaped = false
    var runStart = start
    while true {
      guard index < count else { throw error("unterminated string", at: start - 1) }
      let byte = bytes[index]
      if byte == ASCII.quote {
        let text: String
        if escaped {
          appendRun(runStart, index)
          text = String(decoding: scratch, as: UTF8.self)
        } else {
          text = makeString(start, index)
        }
        index += 1
        return text
      } else if byte == ASCII.backslash {
        if !escaped {
          escaped = true
          scratch.removeAll(keepingCapacity: true)
        }
        appendRun(runStart, index)
        try decodeEscape()
        runStart = index
      } else if byte < 0x20 {
        throw error("unescaped control character in string")
      } else if byte < 0x80 {
        index += 1
      } else {
        try skipUTF8Sequence()
      }
    }
  }

  @inline(__always) mutating func appendRun(_ start: Int, _ end: Int) {
    if end > start {
      scratch.append(contentsOf: UnsafeBufferPointer(start: bytes + start, count: end - start))
    }
  }

  /// Validates one multi-byte UTF-8 sequence.
  mutating func skipUTF8Sequence() throws(JSONParseError) {
    guard let length = JSONGrammar.utf8SequenceLength(bytes, index, count) else { throw error("invalid UTF-8") }
    index += length
  }

  /// Decodes the escape at `index` (a backslash) into `scratch`.
  mutating func decodeEscape() throws(JSONParseError) {
    guard count - index >= 2 else { throw error("unterminated escape") }
    let kind = bytes[index + 1]
    switch kind {
    case ASCII.quote, ASCII.backslash, ASCII.slash: scratch.append(kind)
    case UInt8(ascii: "b"): scratch.append(0x08)
    case UInt8(ascii: "f"): scratch.append(0x0C)
    case UInt8(ascii: "n"): scratch.append(0x0A)
    case UInt8(ascii: "r"): scratch.append(0x0D)
    case UInt8(ascii: "t"): scratch.append(0x09)
    case UInt8(ascii: "u"):
      var scalar = try hex4(at: index + 2)
      index += 6
      if scalar >= 0xD800 && scalar <= 0xDBFF {
        // A high surrogate: combine with a following low-surrogate escape, else U+FFFD.
        if count - index >= 6, bytes[index] == ASCII.backslash, bytes[index + 1] == UInt8(ascii: "u"),
          let low = try? hex4(at: index + 2), low >= 0xDC00 && low <= 0xDFFF
        {
          scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
          index += 6
        } else {
          scalar = 0xFFFD
        }
      } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
        scalar = 0xFFFD
      }
      appendUTF8(scalar)
      return
    default:
      throw error("invalid escape", at: index + 1)
    }
    index += 2
  }

  func hex4(at offset: Int) throws(JSONParseError) -> UInt32 {
    guard count - offset >= 4 else { throw error("truncated \\u escape", at: offset) }
    var value: UInt32 = 0
    for position in offset..<(offset + 4) {
      let byte = bytes[position]
      let digit: UInt8
      switch byte {
      case ASCII.zero...ASCII.nine: digit = byte - ASCII.zero
      case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
      default: throw error("invalid hex digit in \\u escape", at: position)
      }
      value = value << 4 | UInt32(digit)
    }
    return value
  }

  mutating func appendUTF8(_ scalar: UInt32) {
    switch scalar {
    case 0..<0x80:
      scratch.append(UInt8(scalar))
    case 0x80..<0x800:
      scratch.append(UInt8(0xC0 | scalar >> 6))
      scratch.append(UInt8(0x80 | scalar & 0x3F))
    case 0x800..<0x10000:
      scratch.append(UInt8(0xE0 | scalar >> 12))
      scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
      scratch.append(UInt8(0x80 | scalar & 0x3F))
    default:
      scratch.append(UInt8(0xF0 | scalar >> 18))
      scratch.append(UInt8(0x80 | scalar >> 12 & 0x3F))
      scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
      scratch.append(UInt8(0x80 | scalar & 0x3F))
    }
  }
}

/// The lexical rules the parser and the scanner share.
enum JSONGrammar {
  /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` from `start` (a `-` or a digit): the end of
  /// the number, or `nil`.
  static func numberEnd(_ bytes: UnsafePointer<UInt8>, _ start: Int, _ count: Int) -> Int? {
    var index = start
    if bytes[index] == ASCII.minus { index += 1 }
    guard index < count, ASCII.isDigit(bytes[index]) else { return nil }
    if bytes[index] == ASCII.zero {
      index += 1
    } else {
      while index < count, ASCII.isDigit(bytes[index]) { index += 1 }
    }
    if index < count, bytes[index] == ASCII.dot {
      index += 1
      guard index < count, ASCII.isDigit(bytes[index]) else { return nil }
      while index < count, ASCII.isDigit(bytes[index]) { index += 1 }
    }
    if index < count, bytes[index] == ASCII.lowerE || bytes[index] == ASCII.upperE {
      index += 1
      if index < count, bytes[index] == ASCII.plus || bytes[index] == ASCII.minus { index += 1 }
      guard index < count, ASCII.isDigit(bytes[index]) else { return nil }
      while index < count, ASCII.isDigit(bytes[index]) { index += 1 }
    }
    return index
  }

  /// `numberEnd`, inlined into its caller for the numbers logs hold: short (fewer than eight
  /// digits before and after the dot) and with no exponent. Each digit run is read as one word;
  /// any other number (or a text shorter than a word) is left to `numberEnd`. The call, and the
  /// caller's registers spilled and restored around it, cost a shape scan more than reading
  /// the digits did.
  @inline(__always)
  static func shortNumberEnd(_ bytes: UnsafePointer<UInt8>, _ start: Int, _ count: Int) -> Int? {
    var index = start &+ (bytes[start] == ASCII.minus ? 1 : 0)
    guard count >= 8, index < count else { return numberEnd(bytes, start, count) }
    let integer = leadingDigits(bytes, index, count)
    guard integer != 0 else { return nil }
    guard integer < 8 else { return numberEnd(bytes, start, count) }
    // A leading zero is the whole integer part.
    index &+= bytes[index] == ASCII.zero ? 1 : integer
    guard index < count else { return index }
    if bytes[index] == ASCII.dot {
      index &+= 1
      guard index < count else { return nil }
      let fraction = leadingDigits(bytes, index, count)
      guard fraction != 0 else { return nil }
      guard fraction < 8 else { return numberEnd(bytes, start, count) }
      index &+= fraction
      guard index < count else { return index }
    }
    // An exponent: the whole grammar.
    if bytes[index] | 0x20 == ASCII.lowerE { return numberEnd(bytes, start, count) }
    return index
  }

  /// How many of the bytes from `index` (below `count`, which is at least 8) are digits before
  /// the first that is not, up to 8. Reads the 8 bytes there, or the text's last 8 with those
  /// before `index` shifted out (what comes in counts as not a digit): never past `count`.
  @inline(__always)
  static func leadingDigits(_ bytes: UnsafePointer<UInt8>, _ index: Int, _ count: Int) -> Int {
    let rest = count &- index
    var word: UInt64
    if rest >= 8 {
      word = UInt64(littleEndian: UnsafeRawPointer(bytes + index).loadUnaligned(as: UInt64.self))
    } else {
      word = UInt64(littleEndian: UnsafeRawPointer(bytes + (count &- 8)).loadUnaligned(as: UInt64.self))
      word &>>= UInt64(truncatingIfNeeded: 8 &- rest) &<< 3
    }
    // Digits become 0...9; a byte is not one when it is 10 or more (its seven low bits plus
    // 0x76 reach the top bit, with no carry into the next byte) or has its top bit set.
    word ^= 0x3030_3030_3030_3030
    let notDigits = ((word & 0x7F7F_7F7F_7F7F_7F7F) &+ 0x7676_7676_7676_7676 | word) & 0x8080_8080_8080_8080
    return notDigits.trailingZeroBitCount &>> 3
  }

  /// The length of the multi-byte UTF-8 sequence at `index` (Unicode Table 3-7: no overlongs, no
  /// surrogates, ≤ U+10FFFF), or `nil` if it is invalid or truncated.
  static func utf8SequenceLength(_ bytes: UnsafePointer<UInt8>, _ index: Int, _ count: Int) -> Int? {
    var length = 0
    var low: UInt8 = 0x80
    var high: UInt8 = 0xBF
    switch bytes[index] {
    case 0xC2...0xDF: length = 2
    case 0xE0:
      length = 3
      low = 0xA0
    case 0xE1...0xEC, 0xEE...0xEF: length = 3
    case 0xED:
      length = 3
      high = 0x9F
    case 0xF0:
      length = 4
      low = 0x90
    case 0xF1...0xF3: length = 4
    case 0xF4:
      length = 4
      high = 0x8F
    default:
      return nil
    }
    guard count - index >= length else { return nil }
    let second = bytes[index + 1]
    guard second >= low, second <= high else { return nil }
    for offset in 2..<length where bytes[index + offset] & 0xC0 != 0x80 { return nil }
    return length
  }

  @inline(__always) static func isHex(_ byte: UInt8) -> Bool {
    ASCII.isDigit(byte) || (byte | 0x20) &- UInt8(ascii: "a") < 6
  }
}
