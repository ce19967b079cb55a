import LogFormats
import TestSupport
import Testing

/// Scan results stored by `ScannedLines` (scan-ahead) load into exactly what scanning the same
/// bytes gives: reject reason, time, JSON range and every field slot.
struct ScannedLinesTests {
  static let paths = ["event", "request_id", "features.device", "features", "score", "missing.deep"].map {
    try! FieldPath(parsing: $0)
  }

  /// Lines of every kind a line format meets: valid, escaped, spaced, CR endings, blank, not
  /// JSON, not an object, missing or bad time, fluentd columns good and bad.
  static let lines: [String] = [
    #"{"@timestamp":"2026-11-30T09:00:00.250Z","time":1796029200,"event":"prediction","request_id":"r1","score":0.5,"features":{"device":"ios","n":[1,2]}}"#,
    #"{"@timestamp":"2026-11-30T09:00:01Z","time":"2026-11-30T09:00:01Z","event":"cl\u0069ck","request_id":"r\"2"}"#,
    #"  { "@timestamp" : "2026-11-30T09:00:02Z" , "time":1796029202.5, "features" : { "device" : null } }  "#,
    #"{"@timestamp":"2026-11-30T09:00:03Z","time":1796029203,"event":"prediction"}"# + "\r",
    #"{"@timestamp":"2026-11-30T09:00:03Z","time":1796029203}"# + "\r\r",
    "", "   ", "\r", "not json", #"{"event":"x""#, "[1,2,3]", #""string""#, "42",
    #"{"event":"no time"}"#, #"{"@timestamp":null,"time":null}"#, #"{"@timestamp":"yesterday","time":"soon"}"#,
    #"{"@timestamp":true,"time":[1]}"#, #"{"a":1,"a":2,"features":{"device":"x"},"features":7}"#,
    "2026-11-30T09:00:00Z\tapp.tag\t" + #"{"event":"prediction","request_id":"f1","time":1796029200}"#,
    "1796029200.5\tapp.tag\t" + #"{"event":"click","request_id":"f2"}"#,
    "bad-time\tapp.tag\t{}", "no tabs at all", "2026-11-30T09:00:00Z\tapp.tag\t{\"a\":1}\textra",
    "2026-11-30T09:00:00Z\tapp.tag\tnot json", "2026-11-30T09:00:00Z\tapp.tag\t[1]\r",
  ]

  static let decoders: [LineDecoder] = [
    LineDecoder(format: .json, timeField: nil), LineDecoder(format: .logstash, timeField: nil),
    LineDecoder(format: .fluentd, timeField: nil),
    LineDecoder(format: .fluentd, timeField: try! FieldPath(parsing: "time")),
  ]

  struct Outcome: Equatable {
    var reason: RejectReason?
    var time: Int64 = 0
    var jsonStart = 0
    var jsonCount = 0
    var slots: [FieldSlot] = []
    var document: [Int32] = []
    var compact = false

    init(_ reason: RejectReason?, _ event: ScannedEvent, line: UnsafeRawBufferPointer) {
      self.reason = reason
      guard reason == nil else { return }
      time = event.time
      jsonStart = line.baseAddress!.distance(to: event.json.baseAddress!)
      jsonCount = event.json.count
      slots = event.fields.slots
      document = [event.fields.documentStart, event.fields.documentEnd]
      compact = event.fields.documentIsCompact
    }
  }

  static func check(_ lines: [[UInt8]], decoder: LineDecoder) {
    let selector = decoder.selector(for: paths)
    let empty = UnsafeRawBufferPointer(start: nil, count: 0)
    var inline = ScannedEvent(time: 0, json: empty, fields: ScannedFields(count: selector.paths.count))
    var loaded = ScannedEvent(time: 0, json: empty, fields: ScannedFields(count: selector.paths.count))
    let stored = ScannedLines(decoder: decoder, selector: selector)
    // Twice: a batch is reused chunk after chunk.
    for _ in 0..<2 {
      stored.removeAll()
      for line in lines { line.withUnsafeBytes { stored.append($0) } }
      #expect(stored.count == lines.count)
      // Loaded from a copy of the bytes elsewhere, as the reader's thread has them.
      for (index, line) in lines.enumerated() {
        let copy = line.withUnsafeBufferPointer { Array($0) }
        copy.withUnsafeBytes { bytes in
          let expected = Outcome(decoder.scan(bytes, selector: selector, into: &inline), inline, line: bytes)
          let got = Outcome(stored.load(index, line: bytes, into: &loaded), loaded, line: bytes)
          #expect(got == expected, "\(decoder.format) line \(index): \(String(decoding: line, as: UTF8.self))")
          if expected.reason == nil {
            var a: [UInt8] = []
            var b: [UInt8] = []
            inline.writeDocument(to: &a)
            loaded.writeDocument(to: &b)
            #expect(a == b)
          }
        }
      }
    }
  }

  @Test(arguments: decoders)
  func loadsWhatScanningGives(decoder: LineDecoder) {
    Self.check(Self.lines.map { Array($0.utf8) }, decoder: decoder)
  }

  /// Random mutations of the lines (bytes flipped, cut short): whatever scanning says, loading says.
  @Test(arguments: decoders)
  func loadsWhatScanningGivesForMutatedLines(decoder: LineDecoder) {
    var rng = SplitMix64(seed: 42)
    let alphabet = Array(#"{}[]":,\ 0a"#.utf8)
    var lines: [[UInt8]] = []
    for _ in 0..<2000 {
      var line = Array(Self.lines[rng.below(Self.lines.count)].utf8)
      if !line.isEmpty {
        for _ in 0..<rng.below(3) {
          line[rng.below(line.count)] = alphabet[rng.below(alphabet.count)]
        }
        if rng.below(4) == 0 { line = Array(line.prefix(rng.below(line.count))) }
      }
      lines.append(line)
    }
    Self.check(lines, decoder: decoder)
  }
}
