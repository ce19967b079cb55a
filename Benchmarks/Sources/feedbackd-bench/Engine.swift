import ArgumentParser
import FeedbackConfig
import FeedbackDaemon
import Foundation
import Gzip
import Labeling
import LogFormats
import LogTail

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The replay's per-line work on its two kinds of threads, each measured alone on one thread,
/// without I/O, inflating or other threads: runs back to back agree within a few percent,
/// where the replay's wall time moves by 20% between them on this machine.
struct Engine: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Time the scanning and the labeling engine alone, on the corpus's plain files, one thread.",
    discussion: """
      Reads the corpus's plain (not gzipped) files into memory, oldest first, and times: (a) the \
      scan a file's read-ahead thread does for each line (`ScannedLines.append`: JSON \
      validated, the job's fields found, the time parsed); (b) the labeling engine the pipeline \
      thread runs (`LabelEngine.process` for each scanned line, then a flush), with \
      DIR/bench.yaml's rules, over an in-memory state store and an output that counts the rows; \
      (c) the same engine with every label window cut to --short-window seconds, so that the \
      join state stays small enough for the CPU's caches: the difference from (b) is what \
      the state's size costs. Lines are handed to the engine in chunks of 2048 whose bytes were \
      just read (untimed), as the pipeline finds them. With --repeat N the best round of each \
      is reported. Prints a table and one JSON line.
      """
  )

  @OptionGroup var corpus: CorpusOptions

  @Option(name: .customLong("repeat"), help: "Rounds; the best time of each measurement is reported.")
  var rounds: Int = 3

  @Option(help: "Label windows (seconds) of the small-state run.")
  var shortWindow: Int = 18

  mutating func validate() throws {
    guard rounds >= 1 else { throw ValidationError("--repeat must be >= 1") }
    guard shortWindow >= 1 else { throw ValidationError("--short-window must be >= 1") }
  }

  func run() throws {
    let dir = corpus.absoluteDir
    let config = try Configuration.load(path: dir + "/bench.yaml")
    guard let source = config.sources.first, let format = LogFormat(rawValue: source.format), format.isLineFormat
    else { throw BenchError("\(dir)/bench.yaml: the benchmark job reads one line-format source") }
    let rules = try RulesBuilder.rules(from: config)
    let decoder = LineDecoder(format: format, timeField: source.timeField)
    let selector = decoder.selector(for: rules.fieldPaths)

    let plain = try logFiles(dir: dir).filter { !isGzip($0) }
    guard !plain.isEmpty else { throw BenchError("no plain (not gzipped) files in \(dir)/logs") }
    var text: [UInt8] = []
    for path in plain {
      guard let data = FileManager.default.contents(atPath: path) else { throw BenchError("cannot read \(path)") }
      text += data
    }
    try text.withUnsafeBytes { all in
      let lines = splitLines(all)
      let scanned = ScannedLines(decoder: decoder, selector: selector)
      var scanSeconds = Double.infinity
      for _ in 0..<rounds {
        scanSeconds = min(scanSeconds, measuredScan(lines: lines, all: all, into: scanned))
      }
      var full = EngineRun()
      var small = EngineRun()
      for _ in 0..<rounds {
        full.keepBest(try measuredEngine(rules: rules, lines: lines, all: all, scanned: scanned, selector: selector))
        small.keepBest(
          try measuredShortWindowEngine(
            rules: rules, window: Int64(shortWindow) * 1_000_000_000, lines: lines, all: all, scanned: scanned,
            selector: selector))
      }
      report(
        files: plain, bytes: all.count, lines: lines.count, scanSeconds: scanSeconds, full: full, small: small)
    }
  }

  // The three measurements, each in a function of its own that is never inlined, so that
  // `Benchmarks/callgrind.py` can count each one's instructions (callgrind's inclusive
  // cost of the function).

  /// (a) Scans every line into `scanned` (emptied first); returns the seconds it took.
  @inline(never)
  private func measuredScan(lines: [Range<Int>], all: UnsafeRawBufferPointer, into scanned: ScannedLines) -> Double {
    scanned.removeAll()
    let start = ContinuousClock.now
    for range in lines { scanned.append(UnsafeRawBufferPointer(rebasing: all[range])) }
    return seconds(ContinuousClock.now - start)
  }

  /// (b) The engine with the job's windows.
  @inline(never)
  private func measuredEngine(
    rules: Rules, lines: [Range<Int>], all: UnsafeRawBufferPointer, scanned: ScannedLines, selector: FieldSelector
  ) throws -> EngineRun {
    try runEngine(rules: rules, lines: lines, all: all, scanned: scanned, selector: selector)
  }

  /// (c) The engine with every label window cut to at most `window`.
  @inline(never)
  private func measuredShortWindowEngine(
    rules: Rules, window: Int64, lines: [Range<Int>], all: UnsafeRawBufferPointer, scanned: ScannedLines,
    selector: FieldSelector
  ) throws -> EngineRun {
    try runEngine(
      rules: rules.withWindows(atMost: window), lines: lines, all: all, scanned: scanned, selector: selector)
  }

  private func isGzip(_ path: String) -> Bool {
    guard let handle = FileHandle(forReadingAtPath: path) else { return false }
    defer { try? handle.close() }
    return GzipInflater.hasMagic(handle.readData(ofLength: 2))
  }

  private func splitLines(_ all: UnsafeRawBufferPointer) -> [Range<Int>] {
    var lines: [Range<Int>] = []
    guard let base = all.baseAddress else { return lines }
    var start = 0
    while start < all.count, let found = memchr(base + start, 0x0A, all.count - start) {
      let newline = base.distance(to: UnsafeRawPointer(found))
      var end = newline
      if end > start && all[end - 1] == 0x0D { end -= 1 }
      lines.append(start..<end)
      start = newline + 1
    }
    return lines
  }

  /// One engine run over every scanned line, then a flush; timed without the untimed reads
  /// that bring each chunk's bytes into the cache first. (Inlined into each measurement.)
  @inline(__always)
  private func runEngine(
    rules: Rules, lines: [Range<Int>], all: UnsafeRawBufferPointer, scanned: ScannedLines, selector: FieldSelector
  ) throws -> EngineRun {
    let output = CountingOutput()
    let engine = try LabelEngine(rules: rules, store: MemoryStateStore(), output: output, sources: 1)
    var event = ScannedEvent(
      time: 0, json: UnsafeRawBufferPointer(start: nil, count: 0), fields: ScannedFields(count: selector.paths.count))
    var elapsed = Duration.zero
    var touched: UInt8 = 0
    var events = 0
    var chunk = 0
    while chunk < lines.count {
      let end = min(chunk + 2048, lines.count)
      var offset = lines[chunk].lowerBound
      while offset < lines[end - 1].upperBound {
        touched &+= all[offset]
        offset += 64
      }
      let start = ContinuousClock.now
      for i in chunk..<end {
        let line = UnsafeRawBufferPointer(rebasing: all[lines[i]])
        guard scanned.load(i, line: line, into: &event) == nil else { continue }
        events += 1
        try engine.process(event: &event, source: 0, lineHash: LogTail.lineHash(line))
      }
      elapsed += ContinuousClock.now - start
      chunk = end
    }
    let start = ContinuousClock.now
    try engine.flush()
    elapsed += ContinuousClock.now - start
    // Keeps the untimed reads from being optimized away.
    if touched == 1 && output.rows < 0 { print("") }
    return EngineRun(
      seconds: seconds(elapsed), events: events, predictions: engine.counters.predictions, rows: output.rows,
      positive: output.positive)
  }

  private func report(
    files: [String], bytes: Int, lines: Int, scanSeconds: Double, full: EngineRun, small: EngineRun
  ) {
    let mb = Double(bytes) / 1e6
    func nsPerLine(_ s: Double) -> String { fixed(s * 1e9 / Double(lines), 0) }
    print(
      "input   \(files.map { ($0 as NSString).lastPathComponent }.joined(separator: ", ")): \(fixed(mb)) MB, "
        + "\(lines) lines, \(full.events) events, \(full.predictions) predictions, \(full.rows) rows"
        + " (\(full.positive) labelled 1)")
    print("")
    func pad(_ text: String, _ width: Int) -> String {
      text.count >= width ? " " + text : String(repeating: " ", count: width - text.count) + text
    }
    print(
      "".padding(toLength: 34, withPad: " ", startingAt: 0) + pad("seconds", 10) + pad("ns/line", 10) + pad("MB/s", 10))
    func row(_ name: String, _ s: Double) {
      print(
        name.padding(toLength: 34, withPad: " ", startingAt: 0) + pad(fixed(s, 3), 10) + pad(nsPerLine(s), 10)
          + pad(fixed(mb / s), 10))
    }
    row("scan (read-ahead thread's part)", scanSeconds)
    row("engine (pipeline thread's part)", full.seconds)
    row("engine, windows \(shortWindow) s", small.seconds)
    let stateShare = full.seconds > 0 ? (full.seconds - small.seconds) / full.seconds : 0
    print("")
    print("the join state's size costs      \(fixed(100 * stateShare, 0))% of the engine's time")
    if small.rows != full.rows {
      print("  (the short windows give \(small.rows) rows: the same predictions, fewer late ones held)")
    }
    let json: [(String, String)] = [
      ("lines", "\(lines)"), ("mb", fixed(mb, 2)), ("events", "\(full.events)"),
      ("predictions", "\(full.predictions)"), ("rows", "\(full.rows)"), ("repeat", "\(rounds)"),
      ("scan_s", fixed(scanSeconds, 3)), ("scan_ns_per_line", nsPerLine(scanSeconds)),
      ("engine_s", fixed(full.seconds, 3)), ("engine_ns_per_line", nsPerLine(full.seconds)),
      ("engine_short_window_s", fixed(small.seconds, 3)), ("short_window_s", "\(shortWindow)"),
      ("state_share", fixed(stateShare, 3)),
    ]
    print("")
    print("{" + json.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}")
  }
}

/// What one engine run did and took.
struct EngineRun {
  var seconds = Double.infinity
  var events = 0
  var predictions = 0
  var rows = 0
  var positive = 0

  mutating func keepBest(_ other: EngineRun) {
    if other.seconds < seconds { self = other }
  }
}

/// Counts rows and positive first labels; writes nothing.
final class CountingOutput: EngineOutput {
  var rows = 0
  var positive = 0
  func write(parts row: RowParts) throws {
    rows += 1
    // The first label's JSON: a number other than 0.
    guard row.labelCount > 0, var p = row.labelRecords.baseAddress else { return }
    let json = LabelRecords.read(&p).value
    if let first = json.first, first == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first),
      !(json.count == 1 && first == UInt8(ascii: "0"))
    {
      positive += 1
    }
  }
  func side(_ record: SideRecord) throws {}
}

extension Rules {
  /// The same rules with every label window cut to at most `window`.
  func withWindows(atMost window: Int64) -> Rules {
    Rules(
      prediction: prediction, feedbackTypes: feedbackTypes,
      labels: labels.map {
        LabelSpec(name: $0.name, feedbackType: $0.feedbackType, window: min($0.window, window), value: $0.value)
      },
      datasets: datasets, clockSkew: clockSkew, maxOutOfOrder: maxOutOfOrder)
  }
}
