import LogFormats
import TestSupport
import Testing

@testable import Labeling

@Suite struct JoinKeyTests {
  /// Inline and long keys keep their text, compare and hash by it, and hash in the key table
  /// exactly as their `String` does (keys read back from SQLite are hashed as strings).
  @Test func keysOfEveryLengthRoundTripCompareAndHashByText() {
    let table = KeyTable(seed: 9)
    var rng = SplitMix64(seed: 4)
    var texts: [String] = ["", "a", "é", "r-3c1b3b92f91ad839", "2f1b7c4e-9a0d-4c1e-8f2b-6d3a5e7c9b10"]
    for length in [15, 16, 31, 32, 33, 64, 200] {
      texts.append(String((0..<length).map { _ in Character(UnicodeScalar(UInt8(97 + rng.below(26)))) }))
    }
    for text in texts {
      let key = JoinKey(text)
      #expect(key.description == text)
      #expect(key.count == text.utf8.count)
      #expect(key == JoinKey(text))
      #expect(key.hashValue == JoinKey(text).hashValue)
      #expect(table.hash(key) == table.hash(text), "\(text)")
      #expect((key.heapBytes > 0) == (text.utf8.count > JoinKey.inlineCapacity))
    }
    for (i, a) in texts.enumerated() {
      for (j, b) in texts.enumerated() where i != j {
        #expect(JoinKey(a) != JoinKey(b), "\(a) vs \(b)")
      }
    }
    // A prefix differs from the whole key though the bytes past it are zero.
    #expect(JoinKey("ab") != JoinKey("ab\u{0}"))
  }

  /// `bytesPrecede` is the order of the keys' bytes (`memcmp`, then the shorter first), for
  /// inline keys (compared a word at a time) and long ones alike: keys of every length up to
  /// past the inline capacity, sharing prefixes, with zero bytes and bytes of 0x80 and up.
  @Test func bytesPrecedeIsTheOrderOfTheKeysBytes() {
    var rng = SplitMix64(seed: 31)
    let alphabet: [UInt8] = [0x00, 0x01, 0x41, 0x42, 0x7F, 0x80, 0xC3, 0xFF]
    var keys: [[UInt8]] = [[], [0], [0, 0], [0x41], [0x41, 0]]
    for _ in 0..<150 {
      let length = rng.below(30)
      var bytes = (0..<length).map { _ in alphabet[rng.below(alphabet.count)] }
      // Now and then a prefix of a key already made, extended.
      if rng.below(3) == 0, let base = keys.randomElement(using: &rng) { bytes = base + bytes.prefix(rng.below(3)) }
      keys.append(bytes)
    }
    for a in keys {
      for b in keys {
        let x = a.withUnsafeBytes { JoinKey($0) }
        let y = b.withUnsafeBytes { JoinKey($0) }
        #expect(x.bytesPrecede(y) == a.lexicographicallyPrecedes(b), "\(a) vs \(b)")
      }
    }
  }

  /// A key made from bytes (read word by word, never past them) is the key of the same text
  /// made from a `String`, for every length and at every alignment, with the bytes after it in
  /// memory set to anything.
  @Test func keysFromBytesOfEveryLengthAndAlignment() {
    var rng = SplitMix64(seed: 23)
    for length in 0...40 {
      for offset in 0..<8 {
        let memory = (0..<(offset + length + 8)).map { _ in UInt8(33 + rng.below(90)) }
        let text = String(decoding: memory[offset..<(offset + length)], as: UTF8.self)
        // The last key is written at the end of its buffer: nothing after it can be read.
        let exact = Array(memory[offset..<(offset + length)])
        memory.withUnsafeBytes { raw in
          let key = JoinKey(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + length)]))
          #expect(key == JoinKey(text) && key.description == text, "\(length) at \(offset)")
        }
        exact.withUnsafeBytes { #expect(JoinKey($0) == JoinKey(text)) }
      }
    }
  }

  /// `store(to:)` writes the key's text and stays within `storeCount` bytes, for inline keys
  /// of every length and for long ones.
  @Test func storeWritesTheTextWithinItsRoom() {
    for length in 0...40 {
      let text = String((0..<length).map { Character(UnicodeScalar(UInt8(97 + $0 % 26))) })
      let key = JoinKey(text)
      #expect(key.storeCount >= key.count)
      // Guard bytes after the room must survive.
      var buffer = [UInt8](repeating: 0xEE, count: key.storeCount + 8)
      let written = buffer.withUnsafeMutableBytes { key.store(to: $0.baseAddress!) }
      #expect(written == length)
      #expect(Array(buffer[0..<written]) == Array(text.utf8), "length \(length)")
      #expect(buffer[key.storeCount...].allSatisfy { $0 == 0xEE }, "length \(length)")
    }
  }

  /// A key read from a line is the text `keyText` gives: escapes decoded, numbers as written.
  @Test func scannedKeysMatchTheirText() throws {
    let selector = FieldSelector(paths: [try FieldPath(parsing: "k")])
    let lines = [
      #"{"k":"plain-key"}"#, #"{"k":"\u006b-escaped"}"#, #"{"k":12345}"#, #"{"k":-1.5e3}"#,
      #"{"k":"0123456789abcdef0123456789abcdef-long"}"#, #"{"k":true}"#, #"{"k":null}"#, #"{"x":1}"#,
    ]
    for line in lines {
      var bytes = Array(line.utf8)
      let (key, text): (JoinKey?, String?) = bytes.withUnsafeMutableBytes { raw in
        let json = UnsafeRawBufferPointer(raw)
        var event = ScannedEvent(time: 0, json: json, fields: ScannedFields(count: 1))
        _ = selector.scan(json, into: &event.fields)
        return (event.joinKey(0), event.keyText(0))
      }
      #expect(key?.description == text, "\(line)")
      if let text { #expect(key == JoinKey(text)) }
    }
  }

  /// A stored feedback event keeps its key as a `JoinKey`: the text it was given comes back,
  /// short or long, with a NUL or characters that are not ASCII, and two events are equal
  /// exactly when their keys' texts are.
  @Test func aStoredFeedbackKeyIsTheTextItWasGiven() {
    let keys = [
      "", "r-1", "r-3c1b3b92f91ad839", String(repeating: "k", count: 23), String(repeating: "k", count: 24),
      "0123456789abcdef0123456789abcdef-long", "nul\u{0}inside", "clé-é", "🔑",
    ]
    let stored = keys.map {
      StoredFeedback(seq: 1, key: $0, type: 0, time: 5, lineHash: 9, dedupe: nil, fields: [])
    }
    for (key, f) in zip(keys, stored) {
      #expect(f.key == key)
      #expect(f.joinKey == JoinKey(key))
      var changed = f
      changed.key = key + "x"
      #expect(changed.key == key + "x" && changed != f)
    }
    for a in stored.indices {
      for b in stored.indices { #expect((stored[a] == stored[b]) == (a == b)) }
    }
  }
}
