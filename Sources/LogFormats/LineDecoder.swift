/// The layout of a source's log lines.
///
/// `json`, `logstash` and `fluentd` are line formats: one line, one event, decoded by
/// `LineDecoder` alone. The others wrap the application's JSON object in what a log shipper or
/// platform writes around it; `EventReader` unwraps them (several events per line, partial
/// lines continued on the next line) and hands the application's object to a `LineDecoder`.
public enum LogFormat: String, Sendable, CaseIterable {
  /// A JSON object per line; time in `time` by default.
  case json
  /// A JSON object per line; time in `@timestamp` by default.
  case logstash
  /// Fluentd `out_file`: `<time>\t<tag>\t<json object>`; time from the first column by default.
  case fluentd
  /// Docker's json-file driver: `{"log":"<app line>\n","stream":"stdout","time":"…"}`.
  case docker
  /// Kubernetes CRI: `<time> <stream> <P|F> <content>`; `P` lines continue on the next line of
  /// the same stream.
  case cri
  /// A Google Cloud Logging `LogEntry` per line; the event is `jsonPayload`, time `timestamp`.
  case gcp
  /// AWS CloudWatch Logs: an export line `<time> <message>`, or a subscription record (one
  /// line, many `logEvents`, each with a `message` and a millisecond `timestamp`).
  case cloudwatch
  /// Azure diagnostic records: one per line, or many in a `{"records":[…]}` line; the event is
  /// `properties`, time `time`.
  case azure
  /// Elasticsearch: search hits (`_source`) or `_bulk` NDJSON (an action line, then its
  /// document); time `@timestamp` of the document by default.
  case elasticsearch

  /// One line is one event and carries its own JSON object (no wrapper, no state).
  public var isLineFormat: Bool {
    switch self {
    case .json, .logstash, .fluentd: true
    default: false
    }
  }
}

/// One decoded log record.
public struct Event: Sendable {
  /// Nanoseconds since the Unix epoch, UTC.
  public var time: Int64
  /// The record; always a `.object`.
  public var object: JSONValue

  public init(time: Int64, object: JSONValue) {
    self.time = time
    self.object = object
  }
}

/// Why a line did not become an event.
public enum RejectReason: String, Sendable, CaseIterable, Hashable {
  case blankLine = "blank_line"
  case invalidJSON = "invalid_json"
  case notAnObject = "not_an_object"
  case missingTime = "missing_time"
  case badTime = "bad_time"
  case badFluentdLine = "bad_fluentd_line"
  /// The wrapper is fine, but the application's text inside it is not JSON.
  case invalidInnerJSON = "invalid_inner_json"
  /// The application's text inside the wrapper is JSON, but not an object.
  case innerNotAnObject = "inner_not_an_object"
  /// The wrapper is JSON, but lacks the field that holds the event (`log`, `jsonPayload`,
  /// `message`, `properties`, `_source`), or that field has the wrong kind.
  case missingPayload = "missing_payload"
  /// A CRI line that is not `<time> <stdout|stderr> <P|F> <content>`.
  case badCRILine = "bad_cri_line"
  /// A CloudWatch line that is neither `<time> <message>` nor a subscription record.
  case badCloudWatchLine = "bad_cloudwatch_line"
  /// A CloudWatch subscription record or Azure `records` line whose array is missing or holds
  /// something other than objects (the neighbours of a bad member are kept).
  case badBatch = "bad_batch"
  /// An Elasticsearch line that is neither a search hit nor a bulk action (and no action waits
  /// for its document).
  case badBulkLine = "bad_bulk_line"
  /// Partial lines (CRI `P`, docker `log` without its newline) whose last part never came:
  /// the file ended.
  case unterminatedPartial = "unterminated_partial"
  /// A bulk `index`/`create` action whose document never came: the file ended.
  case missingBulkDocument = "missing_bulk_document"
  /// Partial lines that together grew longer than `max_line_bytes`.
  case lineTooLong = "line_too_long"
}

public enum DecodeResult: Sendable {
  case event(Event)
  case rejected(RejectReason)
}

/// Turns single log lines into events.
public struct LineDecoder: Sendable {
  public let format: LogFormat
  /// Where the time is read from; `nil` only for fluentd without an explicit field (time from column 1).
  public let timeField: FieldPath?

  /// `timeField` nil → the format's default: json → `time`, logstash and elasticsearch →
  /// `@timestamp`, fluentd → the first column, the other wrappers → the wrapper's time. A
  /// `timeField` given for fluentd reads the time from that field of the JSON record instead; for
  /// a wrapper format it names a field of the application's object, and the wrapper's time is
  /// used only where that field is absent.
  ///
  /// For the wrapper formats (`!format.isLineFormat`) this decodes the application's object
  /// once `EventReader` has taken it out of its wrapper.
  public init(format: LogFormat, timeField: FieldPath?) {
    self.format = format
    switch format {
    case .json: self.timeField = timeField ?? FieldPath(segments: ["time"])
    case .logstash, .elasticsearch: self.timeField = timeField ?? FieldPath(segments: ["@timestamp"])
    case .fluentd, .docker, .cri, .gcp, .cloudwatch, .azure: self.timeField = timeField
    }
  }

  /// Where a line's JSON record is, and the time its other columns give (fluentd).
  private enum Frame {
    case rejected(RejectReason)
    case json(UnsafeRawBufferPointer, columnTime: Int64?)
  }

  /// Strips a trailing `\r`, rejects blank lines, and finds the JSON record of the format.
  private func frame(_ line: UnsafeRawBufferPointer) -> Frame {
    var end = line.count
    if end > 0, line[end - 1] == ASCII.cr { end -= 1 }
    var start = 0
    while start < end, ASCII.isWhitespace(line[start]) { start += 1 }
    if start == end { return .rejected(.blankLine) }
    let content = UnsafeRawBufferPointer(rebasing: line[0..<end])
    switch format {
    case .json, .logstash, .docker, .cri, .gcp, .cloudwatch, .azure, .elasticsearch:
      return .json(content, columnTime: nil)
    case .fluentd:
      guard let firstTab = content.firstIndex(of: ASCII.tab),
        let secondTab = content[(firstTab + 1)...].firstIndex(of: ASCII.tab)
      else { return .rejected(.badFluentdLine) }
      let timeColumn = UnsafeRawBufferPointer(rebasing: content[0..<firstTab])
      let jsonColumn = UnsafeRawBufferPointer(rebasing: content[(secondTab + 1)...])
      guard timeField == nil else { return .json(jsonColumn, columnTime: nil) }
      guard let time = Timestamp.parse(text: timeColumn) ?? Timestamp.epochNanoseconds(numberText: timeColumn) else {
        return .rejected(.badTime)
      }
      return .json(jsonColumn, columnTime: time)
    }
  }

  /// A record that is not JSON: in fluentd lines an extra column is the likelier cause (JSON
  /// text may contain tabs only as insignificant whitespace).
  private func invalidJSON(_ json: UnsafeRawBufferPointer) -> RejectReason {
    format == .fluentd && json.contains(ASCII.tab) ? .badFluentdLine : .invalidJSON
  }

  /// Decodes one line given WITHOUT its trailing `\n`; a trailing `\r` is stripped here.
  ///
  /// A time field that is present but `null` counts as missing (`missingTime`).
  public func decode(_ line: UnsafeRawBufferPointer) -> DecodeResult {
    switch frame(line) {
    case .rejected(let reason): return .rejected(reason)
    case .json(let json, let columnTime): return decodeObject(json, columnTime: columnTime)
    }
  }

  public func decode(_ line: [UInt8]) -> DecodeResult {
    line.withUnsafeBytes { decode($0) }
  }

  public func decode(_ line: String) -> DecodeResult {
    var line = line
    return line.withUTF8 { decode(UnsafeRawBufferPointer($0)) }
  }

  // MARK: Scanning

  /// A selector for `paths` plus, last, this decoder's time field (if it reads one from the JSON).
  public func selector(for paths: [FieldPath]) -> FieldSelector {
    FieldSelector(paths: timeField.map { paths + [$0] } ?? paths)
  }

  /// Like `decode`, but only finds the fields of `selector` (made by `selector(for:)`), without
  /// building values; rejects exactly the lines `decode` rejects, for the same reasons.
  /// On success `event.json` is the JSON part of `line` and `event.fields` locates the fields.
  public func scan(
    _ line: UnsafeRawBufferPointer, selector: FieldSelector, into event: inout ScannedEvent
  ) -> RejectReason? {
    switch frame(line) {
    case .rejected(let reason): return reason
    case .json(let json, let columnTime):
      return scanObject(json, columnTime: columnTime, selector: selector, into: &event)
    }
  }

  /// Scans an application's object taken out of its wrapper (`EventReader`): the time is
  /// `wrapperTime` unless this decoder's time field is present in the object.
  public func scanInner(
    _ json: UnsafeRawBufferPointer, wrapperTime: Int64?, selector: FieldSelector, into event: inout ScannedEvent
  ) -> RejectReason? {
    var end = json.count
    while end > 0, ASCII.isWhitespace(json[end - 1]) { end -= 1 }
    if end == 0 { return .invalidInnerJSON }
    let reason: RejectReason?
    if timeField == nil {
      guard let wrapperTime else { return .missingTime }
      reason = scanObject(json, columnTime: wrapperTime, selector: selector, into: &event)
    } else {
      reason = scanObject(json, columnTime: nil, fallbackTime: wrapperTime, selector: selector, into: &event)
    }
    switch reason {
    case .invalidJSON?: return .invalidInnerJSON
    case .notAnObject?: return .innerNotAnObject
    default: return reason
    }
  }

  private func scanObject(
    _ bytes: UnsafeRawBufferPointer, columnTime: Int64?, fallbackTime: Int64? = nil, selector: FieldSelector,
    into event: inout ScannedEvent
  ) -> RejectReason? {
    event.json = bytes
    guard let kind = selector.scan(bytes, into: &event.fields) else { return invalidJSON(bytes) }
    guard kind == .object else { return .notAnObject }
    if let columnTime {
      event.time = columnTime
      return nil
    }
    // A wrapper format's time comes from its wrapper (`scanInner`): none here.
    guard timeField != nil else { return .missingTime }
    let slot = event.fields.slots[selector.paths.count - 1]
    switch slot.kind {
    case .absent, .null:
      guard let fallbackTime else { return .missingTime }
      event.time = fallbackTime
      return nil
    case .number:
      guard let time = Timestamp.epochNanoseconds(numberText: event.raw(slot)) else { return .badTime }
      event.time = time
    case .string where !slot.needsRewrite:
      let text = event.stringContents(slot)
      guard
        let time = Timestamp.parse(text: text, memo: &event.timeMemo) ?? Timestamp.epochNanoseconds(numberText: text)
      else {
        return .badTime
      }
      event.time = time
    case .string:
      guard let value = event.value(selector.paths.count - 1), let time = Timestamp.parse(value) else {
        return .badTime
      }
      event.time = time
    default:
      return .badTime
    }
    return nil
  }

  private func decodeObject(_ bytes: UnsafeRawBufferPointer, columnTime: Int64?) -> DecodeResult {
    let value: JSONValue
    do {
      value = try JSONValue.parse(bytes)
    } catch {
      return .rejected(invalidJSON(bytes))
    }
    guard case .object = value else { return .rejected(.notAnObject) }
    if let columnTime { return .event(Event(time: columnTime, object: value)) }
    guard let timeField, let timeValue = value.value(at: timeField), timeValue != .null else {
      return .rejected(.missingTime)
    }
    guard let time = Timestamp.parse(timeValue) else { return .rejected(.badTime) }
    return .event(Event(time: time, object: value))
  }
}
