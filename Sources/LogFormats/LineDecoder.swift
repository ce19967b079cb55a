/// The layout of one log line.
public enum LogFormat: String, Sendable, CaseIterable {
  /// A JSON object per line; time in `time` by default.
  case json
  /// A JSON object per line; time in `@timestamp` by default.
  case logstash
  /// Fluentd `out_file`: `<time>\t<tag>\t<json object>`; time from the first column by default.
  case fluentd
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

  /// `timeField` nil → the format's default: json → `time`, logstash → `@timestamp`, fluentd → the first
  /// column. A `timeField` given for fluentd reads the time from that field of the JSON record instead.
  public init(format: LogFormat, timeField: FieldPath?) {
    self.format = format
    switch format {
    case .json: self.timeField = timeField ?? FieldPath(segments: ["time"])
    case .logstash: self.timeField = timeField ?? FieldPath(segments: ["@timestamp"])
    case .fluentd: self.timeField = timeField
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
    case .json, .logstash:
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

  private func scanObject(
    _ bytes: UnsafeRawBufferPointer, columnTime: Int64?, selector: FieldSelector, into event: inout ScannedEvent
  ) -> RejectReason? {
    event.json = bytes
    guard let kind = selector.scan(bytes, into: &event.fields) else { return invalidJSON(bytes) }
    guard kind == .object else { return .notAnObject }
    if let columnTime {
      event.time = columnTime
      return nil
    }
    let slot = event.fields.slots[selector.paths.count - 1]
    switch slot.kind {
    case .absent, .null:
      return .missingTime
    case .number:
      guard let time = Timestamp.epochNanoseconds(numberText: event.raw(slot)) else { return .badTime }
      event.time = time
    case .string where !slot.needsRewrite:
      let text = UnsafeRawBufferPointer(rebasing: event.raw(slot).dropFirst().dropLast())
      guard let time = Timestamp.parse(text: text) ?? Timestamp.epochNanoseconds(numberText: text) else {
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
