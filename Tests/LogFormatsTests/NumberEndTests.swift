import Testing

@testable import LogFormats

/// `JSONGrammar.numberEnd`, and `shortNumberEnd` (digit runs read eight bytes at a time), against
/// the number grammar read byte by byte.
@Suite struct NumberEndTests {
  /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` from `start`, one byte at a time.
  static func reference(_ bytes: [UInt8], _ start: Int) -> Int? {
    var i = start
    func digit(_ at: Int) -> Bool { at < bytes.count && bytes[at] >= 0x30 && bytes[at] <= 0x39 }
    func byte(_ at: Int) -> UInt8? { at < bytes.count ? bytes[at] : nil }
    if byte(i) == UInt8(ascii: "-") { i += 1 }
    guard digit(i) else { return nil }
    if bytes[i] == UInt8(ascii: "0") {
      i += 1
    } else {
      while digit(i) { i += 1 }
    }
    if byte(i) == UInt8(ascii: ".") {
      i += 1
      guard digit(i) else { return nil }
      while digit(i) { i += 1 }
    }
    if byte(i) == UInt8(ascii: "e") || byte(i) == UInt8(ascii: "E") {
      i += 1
      if byte(i) == UInt8(ascii: "+") || byte(i) == UInt8(ascii: "-") { i += 1 }
      guard digit(i) else { return nil }
      while digit(i) { i += 1 }
    }
    return i
  }

  /// Texts of digits with signs, dots, exponents and the bytes next to the digits' range (and
  /// ones that differ from a digit only in the top bit), of every length around eight.
  @Test func agreesWithTheGrammarReadByteByByte() {
    let pieces: [[UInt8]] = [
      Array("0".utf8), Array("7".utf8), Array("123456789".utf8), Array("-".utf8), Array(".".utf8), Array("e".utf8),
      Array("E".utf8), Array("+".utf8), Array("/".utf8), Array(":".utf8), Array(",".utf8), Array("}".utf8),
      [0xB0], [0xB9], [0x0A], Array("00000000".utf8),
    ]
    var state: UInt64 = 99
    func below(_ n: Int) -> Int {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return Int(state >> 33) % n
    }
    var ended = 0
    var readByWords = 0
    for _ in 0..<50_000 {
      var text: [UInt8] = below(2) == 0 ? [] : Array("-".utf8)
      for _ in 0..<below(8) {
        text += below(3) == 0 ? pieces[below(pieces.count)] : Array(String(below(1_000_000_000)).utf8)
      }
      guard !text.isEmpty else { continue }
      // The number starts at a `-` or a digit, as the scanners call it.
      let start = below(min(3, text.count))
      guard text[start] == UInt8(ascii: "-") || (text[start] >= 0x30 && text[start] <= 0x39) else { continue }
      let expected = Self.reference(text, start)
      let actual = text.withUnsafeBufferPointer { JSONGrammar.numberEnd($0.baseAddress!, start, $0.count) }
      #expect(actual == expected, "\(String(decoding: text, as: UTF8.self)) from \(start)")
      if let end = expected, end - start >= 9 { ended += 1 }
      // The short path, with and without the 16 bytes after the digits that it reads by words
      // (a number in a line is followed by more of the line).
      let padded = text + Array(#"}, "x": [1, 2, 3]}"#.utf8)
      for bytes in [text, padded] {
        let short = bytes.withUnsafeBufferPointer { JSONGrammar.shortNumberEnd($0.baseAddress!, start, $0.count) }
        #expect(short == Self.reference(bytes, start), "short: \(String(decoding: bytes, as: UTF8.self)) from \(start)")
        if short != nil, bytes.count - start >= 17 { readByWords += 1 }
      }
    }
    // Many numbers long enough to be read by words, and many read by the short path's words.
    #expect(ended > 5_000)
    #expect(readByWords > 20_000)
  }
}
