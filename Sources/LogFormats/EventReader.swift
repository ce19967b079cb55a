/// Reads the events of one file's lines in any `LogFormat`: unwraps the application's JSON
/// object from what a shipper or platform wrote around it, splits lines that hold many events,
/// and joins partial lines.
///
/// One reader per file (its state belongs to that file's lines, in order). Each line's events
/// are handed to `read`'s body one by one; `event.json` points into the line or into this
/// reader's buffers, valid until the next `read`.
///
/// State across lines: CRI `P` lines and docker `log` texts without their final newline are
/// held per stream until the part that ends the line arrives; an Elasticsearch bulk action line
/// waits for its document. `pendingStart` is the offset of the oldest line whose event is not
/// complete yet: a position saved there (with the lines after it re-read only to rebuild the
/// state) never loses nor duplicates an event (see `SourceFeed`).
public final class EventReader {
  /// What one line (or one member of a line) turned into.
  public enum Outcome {
    /// `event` holds an event. `record` is the application's line it came from (for
    /// byte-identical duplicate detection, together with the event time).
    case event(record: UnsafeRawBufferPointer)
    /// Rejected: `member` is the index in a `logEvents`/`records` array; `text` the bytes at fault.
    case rejected(RejectReason, member: Int?, text: UnsafeRawBufferPointer)
    /// Valid input that holds no event.
    case skipped(SkipReason)
    /// Part of an event that a later line completes.
    case held
  }

  public enum SkipReason: String, Sendable, CaseIterable {
    /// A CloudWatch subscription `CONTROL_MESSAGE` (a health check of the destination).
    case controlMessage = "control_message"
    /// An Elasticsearch bulk `delete` action (no document).
    case bulkDelete = "bulk_delete"
    /// An Elasticsearch bulk `update` and its partial document (not a whole event).
    case bulkUpdate = "bulk_update"
  }

  public let format: LogFormat
  public let decoder: LineDecoder
  /// The rules' paths, then the decoder's time field (`LineDecoder.selector(for:)`).
  public let selector: FieldSelector
  /// Partial lines joined longer than this are rejected (`line_too_long`).
  public let maxEventBytes: Int
  /// The current event; valid inside `read`'s body.
  public private(set) var event: ScannedEvent

  private let wrapperSelector: FieldSelector
  private var wrapper: ScannedFields
  private let memberSelector: FieldSelector
  private var member: ScannedFields
  private var elements: [Range<Int>] = []
  /// Unescaped string payloads (docker `log`, CloudWatch `message`, Azure string `properties`).
  private let inner = ByteScratch()
  /// Partial lines per stream: stdout, stderr.
  private let partials = [Partial(), Partial()]
  private var bulk: (offset: Int64, action: BulkAction)?

  enum BulkAction { case index, update }

  final class Partial {
    /// Offset of the group's first line; nil when nothing is held.
    var start: Int64?
    var time: Int64?
    var overflow = false
    let content = ByteScratch()

    func reset() {
      start = nil
      time = nil
      overflow = false
      content.removeAll()
    }
  }

  public init(format: LogFormat, timeField: FieldPath?, paths: [FieldPath], maxEventBytes: Int = 1 << 20) {
    self.format = format
    decoder = LineDecoder(format: format, timeField: timeField)
    selector = decoder.selector(for: paths)
    self.maxEventBytes = maxEventBytes
    event = ScannedEvent(
      time: 0, json: UnsafeRawBufferPointer(start: nil, count: 0), fields: ScannedFields(count: selector.paths.count))
    func keys(_ names: [String]) -> FieldSelector { FieldSelector(paths: names.map { FieldPath(segments: [$0]) }) }
    switch format {
    case .json, .logstash, .fluentd, .cri:
      wrapperSelector = keys([])
      memberSelector = keys([])
    case .docker:
      wrapperSelector = keys(["log", "stream", "time"])
      memberSelector = keys([])
    case .gcp:
      wrapperSelector = keys(["jsonPayload", "timestamp"])
      memberSelector = keys([])
    case .cloudwatch:
      wrapperSelector = keys(["messageType", "logEvents"])
      memberSelector = keys(["message", "timestamp"])
    case .azure:
      wrapperSelector = keys(["records", "properties", "time"])
      memberSelector = keys(["properties", "time"])
    case .elasticsearch:
      wrapperSelector = keys(["_source", "index", "create", "update", "delete"])
      memberSelector = keys([])
    }
    wrapper = ScannedFields(count: wrapperSelector.paths.count)
    member = ScannedFields(count: memberSelector.paths.count)
  }

  /// Offset of the oldest line whose event is still incomplete (held), if any.
  public var pendingStart: Int64? {
    var start = bulk?.offset
    for partial in partials {
      if let s = partial.start { start = min(start ?? s, s) }
    }
    return start
  }

  /// Forgets everything held (the file is read again from a saved position).
  public func reset() {
    for partial in partials { partial.reset() }
    bulk = nil
  }

  /// The file ended for good: what was held can never complete. Returns the offsets of the
  /// held groups' first lines with why they are rejected, and forgets them.
  public func finish() -> [(reason: RejectReason, offset: Int64)] {
    var result: [(RejectReason, Int64)] = []
    if let bulk { result.append((.missingBulkDocument, bulk.offset)) }
    for partial in partials {
      if let start = partial.start { result.append((.unterminatedPartial, start)) }
    }
    reset()
    return result.sorted { $0.1 < $1.1 }
  }

  // MARK: Reading

  /// Reads one line given without its `\n` (a trailing `\r` is stripped), starting at `offset`
  /// in the file, and hands each outcome with the current event to `body`.
  public func read(
    _ line: UnsafeRawBufferPointer, offset: Int64, _ body: (Outcome, ScannedEvent) throws -> Void
  ) rethrows {
    var line = line
    if let last = line.last, last == ASCII.cr { line = UnsafeRawBufferPointer(rebasing: line.dropLast()) }
    if format.isLineFormat {
      if let reason = decoder.scan(line, selector: selector, into: &event) {
        try body(.rejected(reason, member: nil, text: line), event)
      } else {
        try body(.event(record: line), event)
      }
      return
    }
    if format == .elasticsearch, let pending = bulk {
      // Bulk NDJSON is positional: the line after an action is its document, whatever it holds.
      bulk = nil
      if pending.action == .update { return try body(.skipped(.bulkUpdate), event) }
      if let reason = decoder.scan(line, selector: selector, into: &event) {
        return try body(.rejected(reason, member: nil, text: line), event)
      }
      return try body(.event(record: line), event)
    }
    if line.allSatisfy(ASCII.isWhitespace) {
      return try body(.rejected(.blankLine, member: nil, text: line), event)
    }
    switch format {
    case .json, .logstash, .fluentd: return
    case .docker: try readDocker(line, offset: offset, body)
    case .cri: try readCRI(line, offset: offset, body)
    case .gcp: try readGCP(line, body)
    case .cloudwatch: try readCloudWatch(line, body)
    case .azure: try readAzure(line, body)
    case .elasticsearch: try readElasticsearch(line, offset: offset, body)
    }
  }

  /// Scans the application's object and hands over the event or the rejection.
  private func emit(
    _ json: UnsafeRawBufferPointer, time: Int64?, member: Int? = nil, _ body: (Outcome, ScannedEvent) throws -> Void
  ) rethrows {
    if let reason = decoder.scanInner(json, wrapperTime: time, selector: selector, into: &event) {
      try body(.rejected(reason, member: member, text: json), event)
    } else {
      try body(.event(record: json), event)
    }
  }

  /// Scans a wrapper object; nil after handing over its rejection.
  private func scanWrapper(
    _ line: UnsafeRawBufferPointer, _ body: (Outcome, ScannedEvent) throws -> Void
  ) rethrows -> Bool {
    switch wrapperSelector.scan(line, into: &wrapper) {
    case .object?: return true
    case nil: try body(.rejected(.invalidJSON, member: nil, text: line), event)
    case _?: try body(.rejected(.notAnObject, member: nil, text: line), event)
    }
    return false
  }

  /// The wrapper's time: nil when absent, or when unparseable but not needed (a time field of
  /// the application is configured). `.failure` when it is needed and bad.
  private func wrapperTime(_ raw: UnsafeRawBufferPointer, kind: JSONKind, needsRewrite: Bool) -> WrapperTime {
    var time: Int64?
    switch kind {
    case .absent, .null:
      return decoder.timeField == nil ? .failure(.missingTime) : .success(nil)
    case .number:
      time = Timestamp.epochNanoseconds(numberText: raw)
    case .string where !needsRewrite:
      let text = UnsafeRawBufferPointer(start: raw.baseAddress! + 1, count: raw.count - 2)
      time = Timestamp.parse(text: text) ?? Timestamp.epochNanoseconds(numberText: text)
    case .string:
      time = (try? JSONValue.parse(raw)).flatMap { Timestamp.parse($0) }
    default:
      time = nil
    }
    if time == nil, decoder.timeField == nil { return .failure(.badTime) }
    return .success(time)
  }

  enum WrapperTime {
    case success(Int64?)
    case failure(RejectReason)
  }

  private func slotBytes(_ base: UnsafeRawBufferPointer, _ slot: FieldSlot) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(rebasing: base[Int(slot.start)..<Int(slot.end)])
  }

  /// Joins a part of a line of `stream`. Returns the whole content once `last`, else nil (held).
  private func join(
    stream: Int, offset: Int64, time: Int64?, part: UnsafeRawBufferPointer, last: Bool
  ) -> (content: UnsafeRawBufferPointer, time: Int64?, tooLong: Bool)? {
    let partial = partials[stream]
    if partial.start == nil {
      if last { return (part, time, false) }
      partial.start = offset
      partial.time = time
    }
    if partial.content.count + part.count > maxEventBytes {
      partial.overflow = true
    } else if !partial.overflow {
      partial.content.append(part)
    }
    guard last else { return nil }
    let result = (partial.content.bytes, partial.time, partial.overflow)
    // The bytes stay where they are until the next append, after this line's events.
    partial.start = nil
    partial.time = nil
    partial.overflow = false
    partial.content.removeAll()
    return result
  }

  private func emitJoined(
    stream: Int, offset: Int64, time: Int64?, part: UnsafeRawBufferPointer, last: Bool, line: UnsafeRawBufferPointer,
    _ body: (Outcome, ScannedEvent) throws -> Void
  ) rethrows {
    guard let joined = join(stream: stream, offset: offset, time: time, part: part, last: last) else {
      return try body(.held, event)
    }
    if joined.tooLong { return try body(.rejected(.lineTooLong, member: nil, text: line), event) }
    try emit(joined.content, time: joined.time, body)
  }

  // MARK: Formats

  private func readDocker(
    _ line: UnsafeRawBufferPointer, offset: Int64, _ body: (Outcome, ScannedEvent) throws -> Void
  ) rethrows {
    guard try scanWrapper(line, body) else { return }
    let log = wrapper.slots[0]
    guard log.kind == .string else { return try body(.rejected(.missingPayload, member: nil, text: line), event) }
    let streamSlot = wrapper.slots[1]
    let stream =
      streamSlot.kind == .string && slotBytes(line, streamSlot).elementsEqual(#""stderr""#.utf8) ? 1 : 0
    let timeSlot = wrapper.slots[2]
    let time: Int64?
    switch wrapperTime(slotBytes(line, timeSlot), kind: timeSlot.kind, needsRewrite: timeSlot.needsRewrite) {
    case .success(let t): time = t
    case .failure(let reason): return try body(.rejected(reason, member: nil, text: line), event)
    }
    JSONString.unescape(slotBytes(line, log), into: inner)
    // The driver splits long lines: only the last part ends with the newline.
    var content = inner.bytes
    let last = content.last == ASCII.lf
    if last { content = UnsafeRawBufferPointer(rebasing: content.dropLast()) }
    try emitJoined(stream: stream, offset: offset, time: time, part: content, last: last, line: line, body)
  }

  private func readCRI(
    _ line: UnsafeRawBufferPointer, offset: Int64, _ body: (Outcome, ScannedEvent) throws -> Void
  ) rethrows {
    // <time> <stream> <tag[:tag…]> <content>; the content may be empty (and its space missing).
    let end = line.count
    guard let s1 = line.firstIndex(of: ASCII.space), let s2 = line[(s1 + 1)...].firstIndex(of: ASCII.space) else {
      return try body(.rejected(.badCRILine, member: nil, text: line), event)
    }
    let s3 = line[(s2 + 1)...].firstIndex(of: ASCII.space) ?? end
    let streamText = UnsafeRawBufferPointer(rebasing: line[(s1 + 1)..<s2])
    let stream: Int
    if streamText.elementsEqual("stdout".utf8) {
      stream = 0
    } else if streamText.elementsEqual("stderr".utf8) {
      stream = 1
    } else {
      return try body(.rejected(.badCRILine, member: nil, text: line), event)
    }
    let tag = UnsafeRawBufferPointer(rebasing: line[(s2 + 1)..<s3])
    guard let first = tag.first, first == UInt8(ascii: "P") || first == UInt8(ascii: "F"),
      tag.count == 1 || tag[1] == ASCII.colon
    else { return try body(.rejected(.badCRILine, member: nil, text: line), event) }
    let time = Timestamp.parse(text: UnsafeRawBufferPointer(rebasing: line[..<s1]))
    if time == nil, decoder.timeField == nil {
      return try body(.rejected(.badTime, member: nil, text: line), event)
    }
    let content = UnsafeRawBufferPointer(rebasing: line[min(s3 + 1, end)...])
    try emitJoined(
      stream: stream, offset: offset, time: time, part: content, last: first == UInt8(ascii: "F"), line: line, body)
  }

  private func readGCP(_ line: UnsafeRawBufferPointer, _ body: (Outcome, ScannedEvent) throws -> Void) rethrows {
    guard try scanWrapper(line, body) else { return }
    let payload = wrapper.slots[0]
    let timeSlot = wrapper.slots[1]
    switch payload.kind {
    case .object: break
    case .absent: return try body(.rejected(.missingPayload, member: nil, text: line), event)
    default: return try body(.rejected(.innerNotAnObject, member: nil, text: line), event)
    }
    switch wrapperTime(slotBytes(line, timeSlot), kind: timeSlot.kind, needsRewrite: timeSlot.needsRewrite) {
    case .success(let time): try emit(slotBytes(line, payload), time: time, body)
    case .failure(let reason): try body(.rejected(reason, member: nil, text: line), event)
    }
  }

  private func readCloudWatch(
    _ line: UnsafeRawBufferPointer, _ body: (Outcome, ScannedEvent) throws -> Void
  ) rethrows {
    var first = 0
    while first < line.count, ASCII.isWhitespace(line[first]) { first += 1 }
    guard line[first] == ASCII.openBrace else {
      // An export line: `<time> <message>`.
      guard let space = line.firstIndex(of: ASCII.space) else {
        return try body(.rejected(.badCloudWatchLine, member: nil, text: line), event)
      }
      let time = Timestamp.parse(text: UnsafeRawBufferPointer(rebasing: line[..<space]))
      if time == nil, decoder.timeField == nil {
        return try body(.rejected(.badCloudWatchLine, member: nil, text: line), event)
      }
      return try emit(UnsafeRawBufferPointer(rebasing: line[(space + 1)...]), time: time, body)
    }
    guard try scanWrapper(line, body) else { return }
    let type = wrapper.slots[0]
    if type.kind == .string, slotBytes(line, type).elementsEqual(#""CONTROL_MESSAGE""#.utf8) {
      return try body(.skipped(.controlMessage), event)
    }
    try forEachMember(of: wrapper.slots[1], in: line, body) { index, bytes in
      let message = member.slots[0]
      let timeSlot = member.slots[1]
      guard message.kind == .string else {
        return try body(.rejected(.missingPayload, member: index, text: bytes), event)
      }
      switch wrapperTime(slotBytes(bytes, timeSlot), kind: timeSlot.kind, needsRewrite: timeSlot.needsRewrite) {
      case .success(let time):
        JSONString.unescape(slotBytes(bytes, message), into: inner)
        try emit(inner.bytes, time: time, member: index, body)
      case .failure(let reason):
        try body(.rejected(reason, member: index, text: bytes), event)
      }
    }
  }

  private func readAzure(_ line: UnsafeRawBufferPointer, _ body: (Outcome, ScannedEvent) throws -> Void) rethrows {
    guard try scanWrapper(line, body) else { return }
    let records = wrapper.slots[0]
    guard records.kind != .absent else {
      return try emitAzure(line, payload: wrapper.slots[1], time: wrapper.slots[2], member: nil, body)
    }
    try forEachMember(of: records, in: line, body) { index, bytes in
      try emitAzure(bytes, payload: member.slots[0], time: member.slots[1], member: index, body)
    }
  }

  /// Scans each member of the array at `slot` (CloudWatch `logEvents`, Azure `records`) into
  /// `member` and hands it to `each`; a slot that is not an array, and members that are not
  /// objects, are rejected as `bad_batch` without losing their neighbours.
  private func forEachMember(
    of slot: FieldSlot, in line: UnsafeRawBufferPointer, _ body: (Outcome, ScannedEvent) throws -> Void,
    _ each: (Int, UnsafeRawBufferPointer) throws -> Void
  ) rethrows {
    let arrayBytes = slotBytes(line, slot)
    guard slot.kind == .array, JSONValue.arrayElements(arrayBytes, into: &elements) else {
      return try body(.rejected(.badBatch, member: nil, text: line), event)
    }
    for (index, range) in elements.enumerated() {
      let bytes = UnsafeRawBufferPointer(rebasing: arrayBytes[range])
      guard memberSelector.scan(bytes, into: &member) == .object else {
        try body(.rejected(.badBatch, member: index, text: bytes), event)
        continue
      }
      try each(index, bytes)
    }
  }

  /// An Azure record's `properties`: an object, or (some services) a string holding one.
  private func emitAzure(
    _ record: UnsafeRawBufferPointer, payload: FieldSlot, time timeSlot: FieldSlot, member: Int?,
    _ body: (Outcome, ScannedEvent) throws -> Void
  ) rethrows {
    let time: Int64?
    switch wrapperTime(slotBytes(record, timeSlot), kind: timeSlot.kind, needsRewrite: timeSlot.needsRewrite) {
    case .success(let t): time = t
    case .failure(let reason): return try body(.rejected(reason, member: member, text: record), event)
    }
    switch payload.kind {
    case .object:
      try emit(slotBytes(record, payload), time: time, member: member, body)
    case .string:
      JSONString.unescape(slotBytes(record, payload), into: inner)
      try emit(inner.bytes, time: time, member: member, body)
    case .absent:
      try body(.rejected(.missingPayload, member: member, text: record), event)
    default:
      try body(.rejected(.innerNotAnObject, member: member, text: record), event)
    }
  }

  private func readElasticsearch(
    _ line: UnsafeRawBufferPointer, offset: Int64, _ body: (Outcome, ScannedEvent) throws -> Void
  ) rethrows {
    guard try scanWrapper(line, body) else { return }
    let source = wrapper.slots[0]
    switch source.kind {
    case .object:
      return try emit(slotBytes(line, source), time: nil, body)
    case .absent:
      break
    default:
      return try body(.rejected(.innerNotAnObject, member: nil, text: line), event)
    }
    if wrapper.slots[1].kind == .object || wrapper.slots[2].kind == .object {
      bulk = (offset, .index)
      try body(.held, event)
    } else if wrapper.slots[3].kind == .object {
      bulk = (offset, .update)
      try body(.held, event)
    } else if wrapper.slots[4].kind == .object {
      try body(.skipped(.bulkDelete), event)
    } else {
      try body(.rejected(.badBulkLine, member: nil, text: line), event)
    }
  }
}

/// A growable byte buffer at a stable address between writes: scanned events point into it.
final class ByteScratch {
  private(set) var base: UnsafeMutableRawPointer
  private(set) var capacity: Int
  private(set) var count = 0

  init(capacity: Int = 4096) {
    self.capacity = capacity
    base = .allocate(byteCount: capacity, alignment: 8)
  }

  deinit { base.deallocate() }

  var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

  func removeAll() { count = 0 }

  func reserve(_ extra: Int) {
    guard count + extra > capacity else { return }
    var newCapacity = capacity * 2
    while newCapacity < count + extra { newCapacity *= 2 }
    let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 8)
    newBase.copyMemory(from: base, byteCount: count)
    base.deallocate()
    base = newBase
    capacity = newCapacity
  }

  func append(_ raw: UnsafeRawBufferPointer) {
    guard let start = raw.baseAddress, raw.count > 0 else { return }
    reserve(raw.count)
    (base + count).copyMemory(from: start, byteCount: raw.count)
    count += raw.count
  }

  @inline(__always) func append(_ byte: UInt8) {
    reserve(1)
    base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
    count += 1
  }
}

/// Decoding of JSON string literals already validated by the scanner.
enum JSONString {
  /// Appends the text of the string literal `raw` (with its quotes) to `out`, after emptying it.
  /// Lone surrogates become U+FFFD, as in the parser.
  static func unescape(_ raw: UnsafeRawBufferPointer, into out: ByteScratch) {
    out.removeAll()
    out.reserve(raw.count)
    var index = 1
    let end = raw.count - 1
    while index < end {
      let byte = raw[index]
      guard byte == ASCII.backslash, index + 1 < end else {
        // Copy the run up to the next backslash at once.
        var runEnd = index + 1
        while runEnd < end, raw[runEnd] != ASCII.backslash { runEnd += 1 }
        out.append(UnsafeRawBufferPointer(rebasing: raw[index..<runEnd]))
        index = runEnd
        continue
      }
      let escaped = raw[index + 1]
      index += 2
      switch escaped {
      case UInt8(ascii: "n"): out.append(ASCII.lf)
      case UInt8(ascii: "t"): out.append(ASCII.tab)
      case UInt8(ascii: "r"): out.append(ASCII.cr)
      case UInt8(ascii: "b"): out.append(0x08)
      case UInt8(ascii: "f"): out.append(0x0C)
      case UInt8(ascii: "u"):
        var scalar = hex4(raw, index, end)
        index += 4
        if (0xD800..<0xDC00).contains(scalar), index + 5 < end, raw[index] == ASCII.backslash,
          raw[index + 1] == UInt8(ascii: "u")
        {
          let low = hex4(raw, index + 2, end)
          if (0xDC00..<0xE000).contains(low) {
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            index += 6
          }
        }
        appendUTF8(Unicode.Scalar(scalar) ?? "\u{FFFD}", to: out)
      default: out.append(escaped)  // \" \\ \/
      }
    }
  }

  private static func hex4(_ raw: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> UInt32 {
    var value: UInt32 = 0
    for position in start..<min(start + 4, end) {
      let byte = raw[position]
      let digit: UInt8
      switch byte {
      case ASCII.zero...ASCII.nine: digit = byte - ASCII.zero
      case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
      default: digit = byte &- UInt8(ascii: "A") &+ 10
      }
      value = value << 4 | UInt32(digit & 0xF)
    }
    return value
  }

  private static func appendUTF8(_ scalar: Unicode.Scalar, to out: ByteScratch) {
    for unit in UTF8.encode(scalar)! { out.append(unit) }
  }
}
