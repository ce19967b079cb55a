import LogFormats
import TestSupport
import Testing

@testable import FeedbackDaemon

/// The reject record, written straight into bytes (`Pipeline.writeReject`), against the same
/// record built as a `JSONValue` and serialized: byte for byte, for lines with quotes,
/// backslashes, control bytes, characters that are not ASCII, bytes that are not UTF-8, and
/// lines longer than the 1024 bytes kept (cut inside a character, too).
struct RejectRecordTests {
  static func reference(
    source: String, file: String, offset: Int64, reason: String, member: Int?, line: [UInt8]?, length: Int64?
  ) -> [UInt8] {
    var members: [JSONMember] = [
      .init(key: "source", value: .string(source)),
      .init(key: "file", value: .string(file)),
      .init(key: "offset", value: .number(String(offset))),
      .init(key: "reason", value: .string(reason)),
    ]
    if let member { members.append(.init(key: "member", value: .number(String(member)))) }
    if let line {
      members.append(.init(key: "line", value: .string(String(decoding: line.prefix(1024), as: UTF8.self))))
    }
    if let length { members.append(.init(key: "length", value: .number(String(length)))) }
    var out: [UInt8] = []
    JSONValue.object(members).write(to: &out)
    return out
  }

  @Test func aRejectRecordIsWhatItsJSONValueWrites() throws {
    var rng = SplitMix64(seed: 1_024)
    let pieces: [[UInt8]] = [
      Array("abc".utf8), Array("{\"k\":1}".utf8), [0x22], [0x5C], [0x00], [0x09], [0x0A], [0x1F], [0x7F],
      Array("é".utf8), Array("€".utf8), Array("😀".utf8), [0xFF], [0xC3], [0xE2, 0x82], [0x80],
    ]
    var nonASCII = 0
    for round in 0..<3_000 {
      var line: [UInt8] = []
      let target = round % 10 == 0 ? 1_000 + rng.below(60) : rng.below(200)
      while line.count < target { line += pieces[rng.below(round % 3 == 0 ? 5 : pieces.count)] }
      if line.contains(where: { $0 >= 0x80 }) { nonASCII += 1 }
      let member = rng.below(4) == 0 ? rng.below(100) : nil
      let length = rng.below(4) == 0 ? Int64(rng.below(1 << 20)) : nil
      let withLine = rng.below(8) != 0
      let offset = Int64(rng.below(1 << 30)) - (round == 7 ? 1 << 31 : 0)
      let file = round % 5 == 0 ? "/var/log/app \"q\"\\é.log" : "/var/log/app.log.\(round % 7).gz"
      var written: [UInt8] = []
      line.withUnsafeBytes { raw in
        Pipeline.writeReject(
          source: "shop", file: file, offset: offset, reason: "invalid_json", member: member,
          line: withLine ? raw : nil, length: length, to: &written)
      }
      let expected = Self.reference(
        source: "shop", file: file, offset: offset, reason: "invalid_json", member: member,
        line: withLine ? line : nil, length: length)
      #expect(written == expected, "round \(round)")
      // And it is one JSON object.
      _ = try JSONValue.parse(written)
    }
    #expect(nonASCII > 1_000, "\(nonASCII)")
  }
}
