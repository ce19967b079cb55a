import ArgumentParser
import Foundation

enum RotationStyle: String, CaseIterable, ExpressibleByArgument {
  case numbered, dated
}

extension LogFormat: ExpressibleByArgument {}
extension Drift.Kind: ExpressibleByArgument {}

extension Drift {
  /// Slice column names (as a dataset would call them, or their paths) → column.
  static let columns = [
    "category": "category", "features.item_category": "category", "item_category": "category",
    "device": "device", "features.device": "device",
  ]

  func matches(category: Int, device: Int) -> Bool {
    let actual = column == "category" ? Renderer.categories[category] : Renderer.devices[device]
    return actual.description == value
  }
}

@main
struct LogGen: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "feedbackd-loggen",
    abstract: "Writes deterministic, realistic shop logs (predictions, clicks, purchases, noise) for feedbackd.",
    discussion: """
      The logical log is generated in event-time order (each line at most 2 s earlier than any \
      line before it) and cut into --files files of about equal line counts: the newest is the \
      live file (--name), then NAME.1, NAME.2.gz, … (oldest = highest number), or with \
      --rotation dated NAME-YYYYMMDD[HH[MMSS]][.gz] named by the UTC time of the file's first \
      event (the shortest of day/hour/second stamps that keeps all names distinct).
      """
  )

  @Option(help: "Output directory (created if missing).")
  var out: String

  @Option(help: "Random seed; the same seed and options give byte-identical files.")
  var seed: UInt64

  @Option(help: "Number of predictions (not counting re-logged duplicates).")
  var predictions: Int = 2000

  @Option(help: "Event time of the first prediction (RFC 3339).")
  var start: String = "2026-11-30T00:00:00Z"

  @Option(
    help: "Predictions per second of event time (default: predictions spread over 2 days, i.e. predictions / 172800).")
  var rate: Double?

  @Option(help: "Number of files after rotation (live file included).")
  var files: Int = 5

  @Option(help: "Rotated files numbered >= this are gzipped (2 = delaycompress: NAME.1 stays plain).")
  var gzipFrom: Int = 2

  @Option(help: "Rotated file names: numbered (NAME.1, NAME.2.gz) or dated (NAME-20261130[09].gz).")
  var rotation: RotationStyle = .numbered

  @Option(
    help: """
      Line format: logstash, json ("time" field), fluentd (TIME<TAB>TAG<TAB>JSON), or the logstash line \
      wrapped as docker, cri (predictions split into P+F lines), gcp, cloudwatch (subscription records \
      of 4 events, a CONTROL_MESSAGE first), azure ({"records":[…]} of 4) or elasticsearch (_bulk NDJSON, \
      with an occasional delete action).
      """)
  var format: LogFormat = .logstash

  @Option(help: "Live file name.")
  var name: String = "app.log"

  @Option(help: "Fraction of junk lines (plain text, truncated JSON, no/bad timestamp, empty).")
  var junkRate: Double = 0.01

  @Flag(help: "Write each gzip file as several members (a new member after every --member-bytes of input).")
  var multiMember = false

  @Option(help: "Uncompressed bytes per gzip member with --multi-member (cut at the next line end).")
  var memberBytes: Int = 64 * 1024

  @Option(help: "zlib compression level for gzipped files (1 fastest … 9 smallest).")
  var gzipLevel: Int32 = 6

  @Option(help: "Also write ground truth: one JSON line per prediction with its feedback event times.")
  var truth: String?

  @Flag(help: "Replace existing NAME, NAME.* and NAME-* files in the output directory.")
  var force = false

  @Option(
    help: """
      Inject a drift into one slice (--drift-slice) from --drift-at on: its clicks stop following the \
      score at once (sudden) or less and less over --drift-over (gradual).
      """)
  var drift: Drift.Kind?

  @Option(help: "The drifting slice: category=VALUE or device=VALUE (e.g. category=shoes).")
  var driftSlice: String?

  @Option(help: "When the drift starts (RFC 3339).")
  var driftAt: String?

  @Option(help: "Hours a gradual drift takes to complete.")
  var driftOver: Double = 72

  mutating func validate() throws {
    guard predictions >= 1 else { throw ValidationError("--predictions must be >= 1") }
    guard files >= 1 else { throw ValidationError("--files must be >= 1") }
    guard gzipFrom >= 1 else { throw ValidationError("--gzip-from must be >= 1 (the live file is never compressed)") }
    if let rate, !(rate > 0 && rate.isFinite) { throw ValidationError("--rate must be > 0") }
    guard junkRate >= 0 && junkRate <= 0.5 else { throw ValidationError("--junk-rate must be in 0…0.5") }
    guard memberBytes >= 1 else { throw ValidationError("--member-bytes must be >= 1") }
    guard (1...9).contains(gzipLevel) else { throw ValidationError("--gzip-level must be in 1…9") }
    guard parseTimestamp(start) != nil else { throw ValidationError("--start: not an RFC 3339 time: \(start)") }
    guard !name.isEmpty, !name.contains("/") else { throw ValidationError("--name must be a plain file name") }
    _ = try driftOptions()
  }

  /// The `--drift*` options, checked; nil without `--drift`.
  func driftOptions() throws -> Drift? {
    guard let drift else {
      guard driftSlice == nil, driftAt == nil else {
        throw ValidationError("--drift-slice and --drift-at need --drift")
      }
      return nil
    }
    guard let slice = driftSlice, let at = driftAt else {
      throw ValidationError("--drift needs --drift-slice and --drift-at")
    }
    let parts = slice.split(separator: "=", maxSplits: 1).map(String.init)
    guard parts.count == 2, let column = Drift.columns[parts[0]] else {
      throw ValidationError("--drift-slice: expected category=VALUE or device=VALUE, got \(slice)")
    }
    let known = column == "category" ? Renderer.categories : Renderer.devices
    guard known.contains(where: { $0.description == parts[1] }) else {
      throw ValidationError(
        "--drift-slice: \(parts[1]) is not a \(column) (known: \(known.map(\.description).joined(separator: ", ")))")
    }
    guard let atMs = parseTimestamp(at) else { throw ValidationError("--drift-at: not an RFC 3339 time: \(at)") }
    guard driftOver > 0 else { throw ValidationError("--drift-over must be > 0") }
    return Drift(kind: drift, column: column, value: parts[1], atMs: atMs, overMs: Int64(driftOver * 3_600_000))
  }

  func run() throws {
    let clock = ContinuousClock()
    let began = clock.now
    let options = SimulationOptions(
      predictions: predictions,
      startMs: parseTimestamp(start)!,
      ratePerSecond: rate ?? Double(predictions) / 172_800,
      junkRate: junkRate,
      seed: seed,
      drift: try driftOptions()
    )
    try prepareDirectory()

    // Pass 1: count lines (the simulation is cheap next to rendering and compression).
    var counter = Simulator(options: options)
    while counter.next() != nil {}
    let totalLines = counter.stats.lines
    let boundaries = (0...files).map { totalLines * $0 / files }

    // Pass 2: render and write; files get temporary names until all first-event times are known.
    var sim = Simulator(options: options)
    sim.collectTruth = truth != nil
    let buffer = ByteBuffer(capacity: 2 << 20)
    var renderer = Renderer(format: format, out: buffer)
    let flushAt = multiMember ? memberBytes : 1 << 20
    var truthWriter = try truth.map { try TruthWriter(path: $0) }

    var firstEvent = [Int64?](repeating: nil, count: files)
    var rawBytes = 0
    var diskBytes = 0
    var tempPaths: [String] = []
    var line = 0
    for index in 0..<files {
      let number = files - 1 - index
      let temp = "\(out)/.loggen-\(index).tmp"
      tempPaths.append(temp)
      let sink = try FileSink(
        path: temp, gzip: number >= 1 && number >= gzipFrom, level: gzipLevel,
        memberBytes: multiMember ? memberBytes : .max)
      // Distinct per file: files are told apart by their first bytes.
      renderer.startFile(time: options.startMs + Int64(index))
      while line < boundaries[index + 1], let record = sim.next() {
        switch record {
        case .item(let item):
          if firstEvent[index] == nil { firstEvent[index] = item.time }
          renderer.render(item)
        case .junk(let kind, let time, let param):
          renderer.renderJunk(kind, time: time, param: param)
        }
        line += 1
        if buffer.count >= flushAt { try sink.write(buffer) }
        if let writer = truthWriter, !sim.truth.isEmpty {
          try writer.write(sim.truth)
          sim.truth.removeAll(keepingCapacity: true)
        }
      }
      renderer.endFile()
      if buffer.count > 0 { try sink.write(buffer) }
      try sink.close()
      rawBytes += sink.rawBytes
      diskBytes += sink.diskBytes
    }
    precondition(sim.next() == nil && line == totalLines, "count and write passes disagree")
    try truthWriter?.close()
    truthWriter = nil

    let names = try fileNames(firstEvent: firstEvent, fallback: options.startMs)
    for (temp, final) in zip(tempPaths, names) {
      if rename(temp, "\(out)/\(final)") != 0 {
        throw LogGenError("cannot rename \(temp) to \(out)/\(final)")
      }
    }

    let seconds =
      Double((clock.now - began).components.attoseconds) / 1e18
      + Double((clock.now - began).components.seconds)
    let s = sim.stats
    let mbps = Double(rawBytes) / 1e6 / max(seconds, 1e-9)
    let span = s.firstTime <= s.lastTime ? "\(rfc3339(s.firstTime))..\(rfc3339(s.lastTime))" : "-"
    var summary = "feedbackd-loggen: files=\(files) lines=\(s.lines) bytes=\(rawBytes) disk_bytes=\(diskBytes)"
    summary += " predictions=\(s.predictions) duplicate_predictions=\(s.duplicatePredictions)"
    summary += " clicks=\(s.clicks) click_retries=\(s.clickRetries) orphan_clicks=\(s.orphanClicks)"
    summary += " purchases=\(s.purchases) purchase_resends=\(s.purchaseResends) http_requests=\(s.http)"
    summary += " junk=\(s.junk) span=\(span) seconds=\(formatted(seconds)) mb_per_s=\(formatted(mbps))\n"
    FileHandle.standardError.write(Data(summary.utf8))
  }

  private func formatted(_ value: Double) -> String {
    let scaled = (value * 100).rounded() / 100
    return "\(scaled)"
  }

  private func prepareDirectory() throws {
    let fm = FileManager.default
    try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
    let existing = try fm.contentsOfDirectory(atPath: out).filter {
      $0 == name || $0.hasPrefix(name + ".") || $0.hasPrefix(name + "-") || $0.hasPrefix(".loggen-")
    }.sorted()
    if existing.isEmpty { return }
    guard force else {
      throw LogGenError(
        "\(out) already holds \(existing.joined(separator: ", ")); pass --force to replace them")
    }
    for entry in existing { try fm.removeItem(atPath: "\(out)/\(entry)") }
  }

  /// Final names, oldest file first.
  private func fileNames(firstEvent: [Int64?], fallback: Int64) throws -> [String] {
    let count = firstEvent.count
    func gz(_ number: Int) -> String { number >= gzipFrom ? ".gz" : "" }
    switch rotation {
    case .numbered:
      return (0..<count).map { index in
        let number = count - 1 - index
        return number == 0 ? name : "\(name).\(number)\(gz(number))"
      }
    case .dated:
      var time = fallback
      let times: [Int64] = firstEvent.map { t in
        if let t { time = t }
        return time
      }
      let rotated = Array(times.dropLast())
      for digits in [8, 10, 14, 17] {
        let stamps = rotated.map { dateStamp($0, digits: digits) }
        if Set(stamps).count == stamps.count {
          return stamps.enumerated().map { index, stamp in
            "\(name)-\(stamp)\(gz(count - 1 - index))"
          } + [name]
        }
      }
      throw LogGenError("--rotation dated: several files start in the same millisecond; use fewer --files")
    }
  }
}

/// `YYYYMMDD`, `YYYYMMDDHH`, `YYYYMMDDHHMMSS` or `YYYYMMDDHHMMSSmmm` (UTC).
func dateStamp(_ ms: Int64, digits: Int) -> String {
  let text = rfc3339(ms)  // 2026-11-30T09:00:00.123Z
  let compact = text.filter { $0.isNumber }  // 20261130090000123
  return String(compact.prefix(digits))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)` into epoch milliseconds.
func parseTimestamp(_ text: String) -> Int64? {
  let b = Array(text.utf8)
  func num(_ from: Int, _ len: Int) -> Int? {
    guard from + len <= b.count else { return nil }
    var v = 0
    for i in from..<(from + len) {
      guard (48...57).contains(b[i]) else { return nil }
      v = v * 10 + Int(b[i] - 48)
    }
    return v
  }
  guard b.count >= 20, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"),
    b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: " "),
    b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"),
    let year = num(0, 4), let month = num(5, 2), let day = num(8, 2),
    let hour = num(11, 2), let minute = num(14, 2), let second = num(17, 2),
    (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
  else { return nil }
  var i = 19
  var millis = 0
  if i < b.count && b[i] == UInt8(ascii: ".") {
    i += 1
    var scale = 100
    let digitsStart = i
    while i < b.count, (48...57).contains(b[i]) {
      millis += Int(b[i] - 48) * scale
      scale /= 10
      i += 1
    }
    if i == digitsStart { return nil }
  }
  var offsetMinutes = 0
  guard i < b.count else { return nil }
  if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
    i += 1
  } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
    guard let oh = num(i + 1, 2), i + 3 < b.count, b[i + 3] == UInt8(ascii: ":"), let om = num(i + 4, 2)
    else { return nil }
    offsetMinutes = (oh * 60 + om) * (b[i] == UInt8(ascii: "+") ? 1 : -1)
    i += 6
  } else {
    return nil
  }
  guard i == b.count else { return nil }
  let dayNumber = days(fromCivil: year, month, day)
  let secondsOfDay = Int64(hour * 3600 + minute * 60 + second - offsetMinutes * 60)
  return (dayNumber * 86_400 + secondsOfDay) * 1000 + Int64(millis)
}

/// Ground truth, one JSON line per prediction in prediction order.
final class TruthWriter {
  private let sink: FileSink
  private let buffer = ByteBuffer(capacity: 1 << 20)
  private var days = DayCache()

  init(path: String) throws {
    sink = try FileSink(path: path, gzip: false, level: 6, memberBytes: .max)
  }

  func write(_ records: [Truth]) throws {
    for r in records {
      buffer.reserve(256 + 40 * r.clicks.count + 160 * r.purchases.count)
      buffer.put("{\"request_id\":\"r-")
      buffer.putHex16(r.rid)
      buffer.put("\",\"predicted_at\":")
      time(r.time)
      buffer.put(",\"duplicate_at\":")
      if let d = r.duplicateAt { time(d) } else { buffer.put("null") }
      buffer.put(",\"clicks\":[")
      for (i, c) in r.clicks.enumerated() {
        if i > 0 { buffer.put(UInt8(ascii: ",")) }
        time(c)
      }
      buffer.put("],\"purchases\":[")
      for (i, p) in r.purchases.enumerated() {
        if i > 0 { buffer.put(UInt8(ascii: ",")) }
        buffer.put("{\"order_id\":\"o-")
        buffer.putHex16(p.order)
        buffer.put("\",\"at\":")
        time(p.time)
        buffer.put(",\"value\":")
        buffer.putCents(p.cents)
        buffer.put(",\"resent_at\":")
        if let at = p.resentAt { time(at) } else { buffer.put("null") }
        buffer.put(UInt8(ascii: "}"))
      }
      buffer.put("]}\n")
    }
    if buffer.count >= 1 << 20 { try sink.write(buffer) }
  }

  private func time(_ ms: Int64) {
    buffer.put(UInt8(ascii: "\""))
    days.putTime(ms, into: buffer, offsetStyle: false)
    buffer.put(UInt8(ascii: "\""))
  }

  func close() throws {
    if buffer.count > 0 { try sink.write(buffer) }
    try sink.close()
  }
}
