import LogFormats
import Testing

private let nineAM: Int64 = 1_796_029_200 * 1_000_000_000  // 2026-11-30T09:00:00Z
private let paths = [FieldPath(segments: ["event"]), FieldPath(segments: ["id"])]

/// What one line turned into, in a comparable form.
enum Read: Equatable, CustomStringConvertible {
  /// The event's `id` field and time.
  case event(id: String?, time: Int64)
  case rejected(RejectReason, member: Int?)
  case skipped(EventReader.SkipReason)
  case held

  var description: String {
    switch self {
    case .event(let id, let time): "event(\(id ?? "nil"), \(time))"
    case .rejected(let reason, let member): "rejected(\(reason.rawValue), \(member.map(String.init) ?? "-"))"
    case .skipped(let reason): "skipped(\(reason.rawValue))"
    case .held: "held"
    }
  }
}

/// Feeds lines (offsets as if they were one file) and collects what they turned into.
final class Feeder {
  let reader: EventReader
  var offset: Int64 = 0

  init(_ format: LogFormat, timeField: FieldPath? = nil, maxEventBytes: Int = 1 << 20) {
    reader = EventReader(format: format, timeField: timeField, paths: paths, maxEventBytes: maxEventBytes)
  }

  func read(_ line: String) -> [Read] {
    var result: [Read] = []
    let bytes = Array(line.utf8)
    bytes.withUnsafeBytes { raw in
      reader.read(raw, offset: offset) { outcome, event in
        switch outcome {
        case .event(let record):
          // The event's text is the application's JSON object.
          #expect((try? JSONValue.parse(event.json))?.objectMembers != nil)
          #expect(!record.isEmpty)
          result.append(.event(id: event.keyText(1), time: event.time))
        case .rejected(let reason, let member, _): result.append(.rejected(reason, member: member))
        case .skipped(let reason): result.append(.skipped(reason))
        case .held: result.append(.held)
        }
      }
    }
    offset += Int64(bytes.count + 1)
    return result
  }
}

@Suite struct DockerReaderTests {
  @Test func unwrapsEscapedJSONAndTakesTheWrapperTime() {
    let feeder = Feeder(.docker)
    let line =
      #"{"log":"{\"event\":\"click\",\"id\":\"a\\\"b\",\"note\":\"caf\u00e9 \ud83d\ude00\"}\n","stream":"stdout","time":"2026-11-30T09:00:00.123456789Z"}"#
    #expect(feeder.read(line) == [.event(id: #"a"b"#, time: nineAM + 123_456_789)])
  }

  @Test func innerTimeFieldWinsWhenPresent() {
    let feeder = Feeder(.docker, timeField: FieldPath(segments: ["ts"]))
    let with =
      #"{"log":"{\"id\":\"a\",\"ts\":\"2026-11-30T10:00:00+01:00\"}\n","stream":"stdout","time":"2026-11-30T12:00:00Z"}"#
    let without = #"{"log":"{\"id\":\"b\"}\n","stream":"stdout","time":"2026-11-30T09:00:01Z"}"#
    #expect(feeder.read(with) == [.event(id: "a", time: nineAM)])
    #expect(feeder.read(without) == [.event(id: "b", time: nineAM + 1_000_000_000)])
  }

  @Test func rejectsWithTheirOwnReasons() {
    let feeder = Feeder(.docker)
    #expect(
      feeder.read(#"{"log":"plain text\n","stream":"stderr","time":"2026-11-30T09:00:00Z"}"#) == [
        .rejected(.invalidInnerJSON, member: nil)
      ])
    #expect(
      feeder.read(#"{"log":"[1,2]\n","stream":"stdout","time":"2026-11-30T09:00:00Z"}"#) == [
        .rejected(.innerNotAnObject, member: nil)
      ])
    #expect(
      feeder.read(#"{"log":"\n","stream":"stdout","time":"2026-11-30T09:00:00Z"}"#) == [
        .rejected(.invalidInnerJSON, member: nil)
      ])
    #expect(
      feeder.read(#"{"stream":"stdout","time":"2026-11-30T09:00:00Z"}"#) == [.rejected(.missingPayload, member: nil)])
    #expect(feeder.read(#"{"log":"{}\n","stream":"stdout","time":"later"}"#) == [.rejected(.badTime, member: nil)])
    #expect(feeder.read(#"{"log":"{}\n","stream":"stdout"}"#) == [.rejected(.missingTime, member: nil)])
    #expect(feeder.read(#"{"log":"{}\n""#) == [.rejected(.invalidJSON, member: nil)])
    #expect(feeder.read("") == [.rejected(.blankLine, member: nil)])
  }

  @Test func joinsLinesTheDriverSplitPerStream() {
    let feeder = Feeder(.docker)
    #expect(feeder.read(#"{"log":"{\"id\":","stream":"stdout","time":"2026-11-30T09:00:00Z"}"#) == [.held])
    #expect(feeder.reader.pendingStart == 0)
    #expect(
      feeder.read(#"{"log":"{\"id\":\"e\"}\n","stream":"stderr","time":"2026-11-30T09:00:02Z"}"#) == [
        .event(id: "e", time: nineAM + 2_000_000_000)
      ])
    #expect(
      feeder.read(#"{"log":"\"o\"}\n","stream":"stdout","time":"2026-11-30T09:00:01Z"}"#) == [
        .event(id: "o", time: nineAM)
      ])
    #expect(feeder.reader.pendingStart == nil)
  }
}

@Suite struct CRIReaderTests {
  @Test func fullLines() {
    let feeder = Feeder(.cri)
    #expect(
      feeder.read(#"2026-11-30T09:00:00.5Z stdout F {"id":"a"}"#) == [.event(id: "a", time: nineAM + 500_000_000)])
    #expect(feeder.read(#"2026-11-30T09:00:00Z stderr F:x {"id":"b"}"#) == [.event(id: "b", time: nineAM)])
    #expect(feeder.read("2026-11-30T09:00:00Z stdout F not json") == [.rejected(.invalidInnerJSON, member: nil)])
    #expect(feeder.read("2026-11-30T09:00:00Z stdout F") == [.rejected(.invalidInnerJSON, member: nil)])
    #expect(feeder.read(#"2026-11-30T09:00:00Z stdin F {"id":"c"}"#) == [.rejected(.badCRILine, member: nil)])
    #expect(feeder.read(#"2026-11-30T09:00:00Z stdout X {"id":"c"}"#) == [.rejected(.badCRILine, member: nil)])
    #expect(feeder.read(#"yesterday stdout F {"id":"c"}"#) == [.rejected(.badTime, member: nil)])
    #expect(feeder.read(#"{"id":"c"}"#) == [.rejected(.badCRILine, member: nil)])
  }

  @Test func partialLinesJoinPerStreamAndTakeTheFirstPartsTime() {
    let feeder = Feeder(.cri)
    #expect(feeder.read(#"2026-11-30T09:00:00Z stdout P {"event":"pre"#) == [.held])
    #expect(
      feeder.read(#"2026-11-30T09:00:05Z stderr F {"id":"err"}"#) == [.event(id: "err", time: nineAM + 5_000_000_000)])
    #expect(feeder.read(#"2026-11-30T09:00:01Z stdout P diction","#) == [.held])
    #expect(feeder.reader.pendingStart == 0)
    #expect(feeder.read(#"2026-11-30T09:00:02Z stdout F "id":"p"}"#) == [.event(id: "p", time: nineAM)])
    #expect(feeder.reader.pendingStart == nil)
  }

  @Test func unterminatedPartialsAreReportedAtTheEnd() {
    let feeder = Feeder(.cri)
    #expect(feeder.read(#"2026-11-30T09:00:00Z stdout F {"id":"a"}"#).count == 1)
    let start = feeder.offset
    #expect(feeder.read(#"2026-11-30T09:00:00Z stderr P {"id":"#) == [.held])
    #expect(feeder.reader.pendingStart == start)
    let unfinished = feeder.reader.finish()
    #expect(unfinished.count == 1)
    #expect(unfinished.first?.reason == .unterminatedPartial && unfinished.first?.offset == start)
    #expect(feeder.reader.pendingStart == nil)
  }

  @Test func joinedLinesLongerThanTheLimitAreRejected() {
    let feeder = Feeder(.cri, maxEventBytes: 16)
    #expect(feeder.read(#"2026-11-30T09:00:00Z stdout P {"id":"aaaaaaaa"#) == [.held])
    #expect(
      feeder.read(#"2026-11-30T09:00:00Z stdout F aaaaaaaaaaaaaaaaaaa"}"#) == [.rejected(.lineTooLong, member: nil)])
    #expect(feeder.read(#"2026-11-30T09:00:00Z stdout F {"id":"b"}"#) == [.event(id: "b", time: nineAM)])
  }
}

@Suite struct CloudReaderTests {
  @Test func gcpLogEntry() {
    let feeder = Feeder(.gcp)
    let entry =
      #"{"insertId":"x1","jsonPayload":{"event":"click","id":"g"},"timestamp":"2026-11-30T09:00:00.25Z","severity":"INFO","logName":"projects/p/logs/app"}"#
    #expect(feeder.read(entry) == [.event(id: "g", time: nineAM + 250_000_000)])
    #expect(
      feeder.read(#"{"insertId":"x2","textPayload":"hello","timestamp":"2026-11-30T09:00:00Z"}"#) == [
        .rejected(.missingPayload, member: nil)
      ])
    #expect(
      feeder.read(#"{"insertId":"x3","jsonPayload":[1],"timestamp":"2026-11-30T09:00:00Z"}"#) == [
        .rejected(.innerNotAnObject, member: nil)
      ])
    #expect(feeder.read(#"{"insertId":"x4","jsonPayload":{"id":"t"}}"#) == [.rejected(.missingTime, member: nil)])
  }

  @Test func cloudWatchSubscriptionRecordKeepsTheNeighboursOfABadMember() {
    let feeder = Feeder(.cloudwatch)
    let record =
      #"{"messageType":"DATA_MESSAGE","logGroup":"/shop","logEvents":[{"id":"1","timestamp":1796029200000,"message":"{\"id\":\"a\"}"},{"id":"2","timestamp":1796029201000,"message":"not json"},{"id":"3","timestamp":1796029202000},7,{"id":"5","timestamp":"soon","message":"{}"},{"id":"6","timestamp":1796029203000,"message":"{\"id\":\"f\"}"}]}"#
    #expect(
      feeder.read(record) == [
        .event(id: "a", time: nineAM), .rejected(.invalidInnerJSON, member: 1), .rejected(.missingPayload, member: 2),
        .rejected(.badBatch, member: 3), .rejected(.badTime, member: 4), .event(id: "f", time: nineAM + 3_000_000_000),
      ])
  }

  @Test func cloudWatchControlMessagesAndExportLines() {
    let feeder = Feeder(.cloudwatch)
    let control =
      #"{"messageType":"CONTROL_MESSAGE","logGroup":"","logEvents":[{"id":"","timestamp":1796029200000,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#
    #expect(feeder.read(control) == [.skipped(.controlMessage)])
    #expect(feeder.read(#"2026-11-30T09:00:00.000Z {"id":"x"}"#) == [.event(id: "x", time: nineAM)])
    #expect(feeder.read("2026-11-30T09:00:00.000Z START RequestId: 42") == [.rejected(.invalidInnerJSON, member: nil)])
    #expect(feeder.read("nonsense") == [.rejected(.badCloudWatchLine, member: nil)])
    #expect(feeder.read(#"{"messageType":"DATA_MESSAGE","logEvents":{}}"#) == [.rejected(.badBatch, member: nil)])
    #expect(feeder.read(#"{"messageType":"DATA_MESSAGE","logEvents":[]}"#) == [])
  }

  @Test func azureRecordsAndSingleRecords() {
    let feeder = Feeder(.azure)
    let blob =
      #"{"records":[{"time":"2026-11-30T09:00:00Z","category":"C","properties":{"id":"a"}},{"time":"2026-11-30T09:00:01Z","category":"C"},{"time":"2026-11-30T09:00:02Z","properties":"{\"id\":\"s\"}"},{"time":"2026-11-30T09:00:03Z","properties":"WARN low disk"}]}"#
    #expect(
      feeder.read(blob) == [
        .event(id: "a", time: nineAM), .rejected(.missingPayload, member: 1),
        .event(id: "s", time: nineAM + 2_000_000_000), .rejected(.invalidInnerJSON, member: 3),
      ])
    #expect(
      feeder.read(#"{"time":"2026-11-30T09:00:00Z","category":"C","properties":{"id":"one"}}"#) == [
        .event(id: "one", time: nineAM)
      ])
    #expect(feeder.read(#"{"records":"nope"}"#) == [.rejected(.badBatch, member: nil)])
  }
}

@Suite struct ElasticsearchReaderTests {
  @Test func searchHitsTakeTheDocumentsTimestamp() {
    let feeder = Feeder(.elasticsearch)
    let hit = #"{"_index":"shop","_id":"1","_score":1.0,"_source":{"@timestamp":"2026-11-30T09:00:00Z","id":"h"}}"#
    #expect(feeder.read(hit) == [.event(id: "h", time: nineAM)])
    #expect(feeder.read(#"{"_index":"shop","_id":"2","_source":{"id":"h"}}"#) == [.rejected(.missingTime, member: nil)])
  }

  @Test func bulkActionsAndTheirDocuments() {
    let feeder = Feeder(.elasticsearch)
    #expect(feeder.read(#"{"index":{"_index":"shop","_id":"1"}}"#) == [.held])
    #expect(feeder.reader.pendingStart == 0)
    #expect(feeder.read(#"{"@timestamp":"2026-11-30T09:00:00Z","id":"a"}"#) == [.event(id: "a", time: nineAM)])
    #expect(feeder.reader.pendingStart == nil)
    // A delete has no document: the next line is an action again.
    #expect(feeder.read(#"{"delete":{"_index":"shop","_id":"1"}}"#) == [.skipped(.bulkDelete)])
    #expect(feeder.read(#"{"create":{"_index":"shop"}}"#) == [.held])
    // Positional: whatever follows an action is its document, even a line that looks like an action.
    #expect(feeder.read(#"{"index":{"@timestamp":"x"}}"#) == [.rejected(.missingTime, member: nil)])
    #expect(feeder.read(#"{"update":{"_id":"1"}}"#) == [.held])
    #expect(feeder.read(#"{"doc":{"id":"partial"}}"#) == [.skipped(.bulkUpdate)])
    #expect(feeder.read(#"{"index":{}}"#) == [.held])
    #expect(feeder.read("not json") == [.rejected(.invalidJSON, member: nil)])
    #expect(feeder.read(#"{"id":"lonely"}"#) == [.rejected(.badBulkLine, member: nil)])
    let start = feeder.offset
    #expect(feeder.read(#"{"index":{}}"#) == [.held])
    let unfinished = feeder.reader.finish()
    #expect(unfinished.map(\.reason) == [.missingBulkDocument] && unfinished.first?.offset == start)
  }
}

@Suite struct FormatDetectorTests {
  static let samples: [(LogFormat, [String])] = [
    (.json, [#"{"time":"2026-11-30T09:00:00Z","event":"x"}"#]),
    (.logstash, [#"{"@timestamp":"2026-11-30T09:00:00Z","@version":"1"}"#]),
    (.fluentd, ["2026-11-30T09:00:00+00:00\tshop\t{\"event\":\"x\"}"]),
    (.docker, [#"{"log":"{}\n","stream":"stdout","time":"2026-11-30T09:00:00Z"}"#]),
    (.cri, [#"2026-11-30T09:00:00.1Z stdout P {"a""#, #"2026-11-30T09:00:00.1Z stdout F :1}"#]),
    (.gcp, [#"{"insertId":"1","jsonPayload":{},"timestamp":"2026-11-30T09:00:00Z","logName":"l"}"#]),
    (.cloudwatch, [#"{"messageType":"CONTROL_MESSAGE","logEvents":[]}"#]),
    (.cloudwatch, [#"2026-11-30T09:00:00.000Z {"event":"x"}"#]),
    (.azure, [#"{"records":[]}"#]),
    (.azure, [#"{"time":"2026-11-30T09:00:00Z","category":"c","properties":{}}"#]),
    (.elasticsearch, [#"{"_index":"i","_id":"1","_source":{}}"#]),
    (.elasticsearch, [#"{"index":{"_id":"1"}}"#, #"{"@timestamp":"2026-11-30T09:00:00Z"}"#]),
  ]

  @Test(arguments: samples)
  func recognisesEachFormat(format: LogFormat, lines: [String]) {
    #expect(FormatDetector.detect(lines.map { Array($0.utf8) }) == format)
  }

  @Test func junkFirstLinesDoNotDecide() {
    let lines = [
      "", "java.lang.IllegalStateException", #"{"log":"{}\n","stream":"stdout","time":"2026-11-30T09:00:00Z"}"#,
    ]
    #expect(FormatDetector.detect(lines.map { Array($0.utf8) }) == .docker)
    #expect(FormatDetector.detect([Array("plain text".utf8)]) == nil)
    #expect(FormatDetector.detect([]) == nil)
  }
}
