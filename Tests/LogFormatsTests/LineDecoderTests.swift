import LogFormats
import Testing

private let nineAM: Int64 = 1_796_029_200 * 1_000_000_000  // 2026-11-30T09:00:00Z

private func decode(_ decoder: LineDecoder, _ line: String) -> DecodeResult {
  Array(line.utf8).withUnsafeBytes { decoder.decode($0) }
}

private func event(_ result: DecodeResult, sourceLocation: SourceLocation = #_sourceLocation) -> Event? {
  switch result {
  case .event(let event):
    #expect(event.object.objectMembers != nil, "event object must be an object", sourceLocation: sourceLocation)
    return event
  case .rejected(let reason):
    Issue.record("unexpectedly rejected: \(reason)", sourceLocation: sourceLocation)
    return nil
  }
}

private func reason(_ result: DecodeResult) -> RejectReason? {
  if case .rejected(let reason) = result { return reason }
  return nil
}

struct LineDecoderJSONTests {
  let decoder = LineDecoder(format: .json, timeField: nil)

  @Test func decodesAnObjectWithDefaultTimeField() throws {
    let line = #"{"time":"2026-11-30T09:00:00.250Z","event":"prediction","id":"p1","score":0.75}"#
    let decoded = try #require(event(decode(decoder, line)))
    #expect(decoded.time == nineAM + 250_000_000)
    #expect(decoded.object["id"] == .string("p1"))
    #expect(decoded.object["score"] == .number("0.75"))
    #expect(decoded.object.jsonText == line)
  }

  @Test func numericTimes() throws {
    #expect(event(decode(decoder, #"{"time":1796029200}"#))?.time == nineAM)
    #expect(event(decode(decoder, #"{"time":1796029200.5}"#))?.time == nineAM + 500_000_000)
    #expect(event(decode(decoder, #"{"time":1796029200500}"#))?.time == nineAM + 500_000_000)
    #expect(event(decode(decoder, #"{"time":"1796029200"}"#))?.time == nineAM)
  }

  @Test func customNestedTimeField() throws {
    let custom = LineDecoder(format: .json, timeField: try FieldPath(parsing: #"meta."ts.utc""#))
    let line = #"{"time":"garbage","meta":{"ts.utc":"2026-11-30T10:00:00+01:00"}}"#
    #expect(event(decode(custom, line))?.time == nineAM)
    #expect(reason(decode(custom, #"{"time":"2026-11-30T09:00:00Z"}"#)) == .missingTime)
  }

  @Test func stripsCarriageReturn() {
    #expect(event(decode(decoder, "{\"time\":\"2026-11-30T09:00:00Z\"}\r"))?.time == nineAM)
    #expect(event(decode(decoder, "  {\"time\":\"2026-11-30T09:00:00Z\"}  \r"))?.time == nineAM)
    #expect(reason(decode(decoder, "\r")) == .blankLine)
    // Only one trailing CR is stripped; a CR elsewhere is JSON whitespace.
    #expect(event(decode(decoder, "{\"time\":\r\"2026-11-30T09:00:00Z\"}\r\r"))?.time == nineAM)
  }

  @Test(arguments: ["", " ", "\t", "  \t  ", "\r", " \r"])
  func blankLines(_ line: String) {
    #expect(reason(decode(decoder, line)) == .blankLine)
  }

  @Test(arguments: [#"{"time":"2026-11-30T09:00:00Z""#, "{", "nope", #"{"time":1,}"#, "{} {}", "\u{1}"])
  func invalidJSON(_ line: String) {
    #expect(reason(decode(decoder, line)) == .invalidJSON)
  }

  @Test func invalidUTF8IsInvalidJSON() {
    let bytes: [UInt8] = Array(#"{"time":"2026-11-30T09:00:00Z","x":""#.utf8) + [0xFF] + Array(#""}"#.utf8)
    #expect(reason(bytes.withUnsafeBytes { decoder.decode($0) }) == .invalidJSON)
  }

  @Test(arguments: [#"[{"time":"2026-11-30T09:00:00Z"}]"#, #""2026-11-30T09:00:00Z""#, "1796029200", "null", "true"])
  func notAnObject(_ line: String) {
    #expect(reason(decode(decoder, line)) == .notAnObject)
  }

  @Test(arguments: [
    #"{}"#, #"{"Time":"2026-11-30T09:00:00Z"}"#, #"{"time":null}"#, #"{"@timestamp":"2026-11-30T09:00:00Z"}"#,
  ])
  func missingTime(_ line: String) {
    #expect(reason(decode(decoder, line)) == .missingTime)
  }

  @Test(arguments: [
    #"{"time":"yesterday"}"#, #"{"time":"2026-02-30T09:00:00Z"}"#, #"{"time":true}"#, #"{"time":{}}"#,
    #"{"time":[1796029200]}"#, #"{"time":1e300}"#, #"{"time":""}"#,
  ])
  func badTime(_ line: String) {
    #expect(reason(decode(decoder, line)) == .badTime)
  }

  @Test func duplicateTimeKeyLastWins() {
    let line = #"{"time":"bad","time":"2026-11-30T09:00:00Z"}"#
    #expect(event(decode(decoder, line))?.time == nineAM)
  }

  @Test func convenienceOverloadsAgree() {
    let line = #"{"time":"2026-11-30T09:00:00Z"}"#
    #expect(event(decoder.decode(line))?.time == nineAM)
    #expect(event(decoder.decode(Array(line.utf8)))?.time == nineAM)
  }
}

struct LineDecoderLogstashTests {
  let decoder = LineDecoder(format: .logstash, timeField: nil)

  @Test func usesAtTimestamp() {
    let line = #"{"@timestamp":"2026-11-30T09:00:00.000Z","@version":"1","message":"hi","time":"garbage"}"#
    let decoded = event(decode(decoder, line))
    #expect(decoded?.time == nineAM)
    #expect(decoded?.object["message"] == .string("hi"))
  }

  @Test func rejectReasons() {
    #expect(reason(decode(decoder, #"{"time":"2026-11-30T09:00:00Z"}"#)) == .missingTime)
    #expect(reason(decode(decoder, #"{"@timestamp":"nope"}"#)) == .badTime)
    #expect(reason(decode(decoder, "[]")) == .notAnObject)
    #expect(reason(decode(decoder, "{")) == .invalidJSON)
    #expect(reason(decode(decoder, "   ")) == .blankLine)
  }

  @Test func customTimeField() throws {
    let custom = LineDecoder(format: .logstash, timeField: try FieldPath(parsing: "time"))
    #expect(event(decode(custom, #"{"time":"2026-11-30T09:00:00Z"}"#))?.time == nineAM)
  }

  @Test func crlf() {
    #expect(event(decode(decoder, "{\"@timestamp\":\"2026-11-30T09:00:00Z\"}\r"))?.time == nineAM)
  }
}

struct LineDecoderFluentdTests {
  let decoder = LineDecoder(format: .fluentd, timeField: nil)

  @Test func decodesOutFileLines() {
    let line = "2026-11-30T09:00:00+00:00\tapp.predictions\t{\"id\":\"p1\",\"score\":0.5}"
    let decoded = event(decode(decoder, line))
    #expect(decoded?.time == nineAM)
    #expect(
      decoded?.object
        == .object([
          JSONMember(key: "id", value: .string("p1")), JSONMember(key: "score", value: .number("0.5")),
        ]))
    #expect(event(decode(decoder, "2026-11-30T10:00:00+0100\ttag\t{}"))?.time == nineAM)
    #expect(event(decode(decoder, "1796029200\ttag\t{}"))?.time == nineAM)
  }

  @Test func crlf() {
    #expect(event(decode(decoder, "2026-11-30T09:00:00Z\ttag\t{\"a\":1}\r"))?.time == nineAM)
  }

  @Test func timeFromFieldWhenConfigured() throws {
    let custom = LineDecoder(format: .fluentd, timeField: try FieldPath(parsing: "ts"))
    let line = "not-a-time\ttag\t{\"ts\":\"2026-11-30T09:00:00Z\"}"
    #expect(event(decode(custom, line))?.time == nineAM)
    #expect(reason(decode(custom, "2026-11-30T09:00:00Z\ttag\t{\"x\":1}")) == .missingTime)
    #expect(reason(decode(custom, "2026-11-30T09:00:00Z\ttag\t{\"ts\":\"bad\"}")) == .badTime)
  }

  @Test(arguments: [
    "2026-11-30T09:00:00Z", "2026-11-30T09:00:00Z\t{}", "{\"time\":\"2026-11-30T09:00:00Z\"}",
    "2026-11-30T09:00:00Z\ttag\t{}\textra",
  ])
  func wrongColumnCount(_ line: String) {
    #expect(reason(decode(decoder, line)) == .badFluentdLine)
  }

  @Test func tabsAsJSONWhitespaceAreFine() {
    #expect(event(decode(decoder, "2026-11-30T09:00:00Z\ttag\t{\t\"a\":\t1}\t"))?.time == nineAM)
  }

  @Test(arguments: ["garbage\ttag\t{}", "\ttag\t{}", "2026-13-30T09:00:00Z\ttag\t{}", " 2026-11-30T09:00:00Z\ttag\t{}"])
  func badTimeColumn(_ line: String) {
    #expect(reason(decode(decoder, line)) == .badTime)
  }

  @Test func invalidAndNonObjectJSONColumn() {
    #expect(reason(decode(decoder, "2026-11-30T09:00:00Z\ttag\t{\"a\":")) == .invalidJSON)
    #expect(reason(decode(decoder, "2026-11-30T09:00:00Z\ttag\t")) == .invalidJSON)
    #expect(reason(decode(decoder, "2026-11-30T09:00:00Z\ttag\t[1,2]")) == .notAnObject)
    #expect(reason(decode(decoder, "2026-11-30T09:00:00Z\ttag\t\"s\"")) == .notAnObject)
  }

  @Test func blank() {
    #expect(reason(decode(decoder, " \t ")) == .blankLine)
    #expect(reason(decode(decoder, "")) == .blankLine)
  }
}

struct LineDecoderMetadataTests {
  @Test func rejectReasonRawValues() {
    #expect(
      RejectReason.allCases.map(\.rawValue) == [
        "blank_line", "invalid_json", "not_an_object", "missing_time", "bad_time", "bad_fluentd_line",
        "invalid_inner_json", "inner_not_an_object", "missing_payload", "bad_cri_line", "bad_cloudwatch_line",
        "bad_batch", "bad_bulk_line", "unterminated_partial", "missing_bulk_document", "line_too_long",
      ])
    #expect(
      LogFormat.allCases.map(\.rawValue) == [
        "json", "logstash", "fluentd", "docker", "cri", "gcp", "cloudwatch", "azure", "elasticsearch",
      ])
    #expect(LogFormat(rawValue: "fluentd") == .fluentd)
  }

  @Test func defaultTimeFields() {
    #expect(LineDecoder(format: .json, timeField: nil).timeField == FieldPath(segments: ["time"]))
    #expect(LineDecoder(format: .logstash, timeField: nil).timeField == FieldPath(segments: ["@timestamp"]))
    #expect(LineDecoder(format: .fluentd, timeField: nil).timeField == nil)
    #expect(LineDecoder(format: .elasticsearch, timeField: nil).timeField == FieldPath(segments: ["@timestamp"]))
    for format in [LogFormat.docker, .cri, .gcp, .cloudwatch, .azure] {
      #expect(LineDecoder(format: format, timeField: nil).timeField == nil, "\(format): the wrapper's time")
    }
  }
}
