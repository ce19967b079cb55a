/// Tells a file's `LogFormat` from its first lines (`format: auto`).
///
/// Each line is recognised on its own, in this order:
/// 1. Not starting with `{`: `<time> <stdout|stderr> <P|F> …` is `cri`; `<time>\t<tag>\t{…}` is
///    `fluentd`; `<time> {…}` is a `cloudwatch` export line.
/// 2. A JSON object, by its top-level keys: `messageType` + `logEvents` → `cloudwatch`;
///    `records` (an array) or `properties` + `time` → `azure`; `log` (a string) + `stream` + `time`
///    → `docker`; `_source` → `elasticsearch` (a search hit); a single `index`/`create`/`update`/
///    `delete` key holding an object → `elasticsearch` (a bulk action); `jsonPayload`, or
///    `insertId`/`logName` with a `timestamp` → `gcp`; `@timestamp` → `logstash`; else `json`.
///
/// The file's format is the one most of its recognised lines have among the wrapper formats
/// (ties: the earliest), so an Elasticsearch bulk file — actions and plain documents
/// alternating — is `elasticsearch`; only when no line shows a wrapper is it `logstash` or
/// `json`, whichever more lines are. Lines that are no JSON and match no prefix are not counted.
public enum FormatDetector {
  /// How many lines of a file's head `detect` looks at.
  public static let sampleLines = 20

  /// The format of a file whose first lines are `lines`; nil when none is recognised.
  public static func detect(_ lines: [[UInt8]]) -> LogFormat? {
    var counts: [LogFormat: Int] = [:]
    var firstSeen: [LogFormat: Int] = [:]
    for (index, line) in lines.prefix(sampleLines).enumerated() {
      guard let format = recognize(line) else { continue }
      counts[format, default: 0] += 1
      if firstSeen[format] == nil { firstSeen[format] = index }
    }
    func best(_ candidates: [LogFormat]) -> LogFormat? {
      candidates.filter { counts[$0] != nil }.min {
        (-counts[$0]!, firstSeen[$0]!) < (-counts[$1]!, firstSeen[$1]!)
      }
    }
    return best(LogFormat.allCases.filter { $0 != .json && $0 != .logstash }) ?? best([.logstash, .json])
  }

  /// The format one line looks like on its own, nil when it looks like none.
  public static func recognize(_ line: [UInt8]) -> LogFormat? {
    var start = 0
    while start < line.count, ASCII.isWhitespace(line[start]) { start += 1 }
    guard start < line.count else { return nil }
    if line[start] != ASCII.openBrace { return recognizePrefixed(Array(line[start...])) }
    guard case .object(let members) = try? JSONValue.parse(line) else { return nil }
    var keys: [String: JSONValue] = [:]
    for member in members { keys[member.key] = member.value }
    if keys["messageType"] != nil, keys["logEvents"] != nil { return .cloudwatch }
    if case .array? = keys["records"] { return .azure }
    if keys["properties"] != nil, keys["time"] != nil { return .azure }
    if case .string? = keys["log"], keys["stream"] != nil, keys["time"] != nil { return .docker }
    if keys["_source"] != nil { return .elasticsearch }
    if members.count == 1, ["index", "create", "update", "delete"].contains(members[0].key),
      case .object = members[0].value
    {
      return .elasticsearch
    }
    if keys["jsonPayload"] != nil { return .gcp }
    if keys["timestamp"] != nil, keys["insertId"] != nil || keys["logName"] != nil { return .gcp }
    if keys["@timestamp"] != nil { return .logstash }
    return .json
  }

  private static func recognizePrefixed(_ line: [UInt8]) -> LogFormat? {
    line.withUnsafeBytes { bytes -> LogFormat? in
      if let tab = bytes.firstIndex(of: ASCII.tab) {
        let time = UnsafeRawBufferPointer(rebasing: bytes[..<tab])
        if Timestamp.parse(text: time) != nil || Timestamp.epochNanoseconds(numberText: time) != nil,
          let second = bytes[(tab + 1)...].firstIndex(of: ASCII.tab), second + 1 < bytes.count,
          bytes[second + 1] == ASCII.openBrace
        {
          return .fluentd
        }
      }
      guard let space = bytes.firstIndex(of: ASCII.space),
        Timestamp.parse(text: UnsafeRawBufferPointer(rebasing: bytes[..<space])) != nil
      else { return nil }
      let rest = UnsafeRawBufferPointer(rebasing: bytes[(space + 1)...])
      if rest.first == ASCII.openBrace { return .cloudwatch }
      for stream in ["stdout ", "stderr "] where rest.starts(with: stream.utf8) {
        let tag = rest.dropFirst(stream.utf8.count)
        if let first = tag.first, first == UInt8(ascii: "P") || first == UInt8(ascii: "F") { return .cri }
      }
      return nil
    }
  }
}
