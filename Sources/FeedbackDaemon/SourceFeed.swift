import LogFormats
import LogTail
import Logging

/// Connects one source's tailer to the pipeline: lines in, positions to the checkpoint.
///
/// Line formats (`json`, `logstash`, `fluentd`) go straight to `Pipeline.handle(line:…)`. The
/// wrapper formats and `auto` get an `EventReader` per file, which may hold an incomplete event
/// across lines (CRI `P` lines, a docker line split by the driver, an Elasticsearch bulk action
/// waiting for its document).
///
/// Restart safety: while a file holds an incomplete event, the position saved for it is the
/// offset of the event's first line (`EventReader.pendingStart`), never a point between its
/// parts, and `Pipeline.processedTo` — committed in the same checkpoint — records how far its
/// lines were actually processed. When the file is opened again (after a restart, SIGKILL
/// included, or a reopen within the process) it is read from the saved position; lines before
/// `processedTo` only rebuild the reader's state (their events, rejects and counts were already
/// committed), and the held event is completed by the first line after them. So a joined event
/// is neither lost (its parts are read again) nor doubled (complete events between its parts,
/// e.g. the other stream's lines, are not handed out again). Commits are never held back.
final class SourceFeed: TailDelegate {
  let index: Int
  let name: String
  /// Unretained: the pipeline owns its feeds. (A strong or checked reference costs an atomic
  /// retain and release on every line; so did `unowned(unsafe)`, copied to a strong one for
  /// each call: `line` calls through `_withUnsafeGuaranteedRef`.)
  private let unretainedPipeline: Unmanaged<Pipeline>
  var pipeline: Pipeline { unretainedPipeline.takeUnretainedValue() }
  private(set) var tailer: SourceTailer!
  /// Nil for the line formats: one decoder for all files, no per-file state.
  private let format: LogFormat?
  private let usesReaders: Bool

  /// One file's reading state.
  final class FileReading {
    let key: String
    /// Nil until the format is known (`auto`: detected at the file's first line).
    var reader: EventReader?
    /// Lines starting before this offset were processed before the file was (re)opened.
    var processedTo: Int64
    init(key: String, reader: EventReader?, processedTo: Int64) {
      self.key = key
      self.reader = reader
      self.processedTo = processedTo
    }
  }
  private var files: [Fingerprint: FileReading] = [:]
  /// The file read last: consecutive lines mostly come from one file.
  private var current: (Fingerprint, FileReading)?

  init(index: Int, pipeline: Pipeline, live: Bool, rotateWait: Int64 = 5_000_000_000, paths: [String]? = nil) {
    self.index = index
    unretainedPipeline = .passUnretained(pipeline)
    let source = pipeline.config.sources[index]
    name = source.name
    format = LogFormat(rawValue: source.format)
    usesReaders = format.map { !$0.isLineFormat } ?? true
    // The line formats' lines are scanned ahead on each file's read-ahead thread; the wrapper
    // formats' events are read in line (an `EventReader` holds state across lines).
    let scanner =
      usesReaders || !pipeline.scanAhead
      ? nil
      : LineScanAhead(
        decoder: pipeline.decoders[index], selector: pipeline.selectors[index], rules: pipeline.rules,
        keyHashSeed: pipeline.state.keyHashSeed)
    tailer = SourceTailer(
      patterns: paths ?? source.paths, maxLineBytes: source.maxLineBytes, live: live, rotateWait: rotateWait,
      delegate: self, scanner: scanner, inputWaits: pipeline.inputWaits[index])
  }

  func position(of fingerprint: Fingerprint) throws -> TailPosition? {
    try pipeline.fileRecord(source: index, fingerprint: fingerprint).map {
      TailPosition(offset: $0.offset, finished: $0.finished, quarantined: $0.quarantined)
    }
  }

  func save(_ position: TailPosition, of fingerprint: Fingerprint, path: String) throws {
    var offset = position.offset
    if usesReaders, let reading = files[fingerprint] {
      let key = reading.key
      if position.finished || position.quarantined != nil {
        // The file is complete: what it still holds never completes.
        if let reader = reading.reader { pipeline.handleUnfinished(reader, source: index, file: path) }
        pipeline.processedTo[key] = nil
        files[fingerprint] = nil
        current = nil
      } else {
        reading.processedTo = max(reading.processedTo, position.offset)
        offset = min(position.offset, reading.reader?.pendingStart ?? .max)
        pipeline.processedTo[key] = reading.processedTo > offset ? reading.processedTo : nil
      }
    }
    pipeline.updateFile(
      FileRecord(
        source: name, fingerprint: fingerprint.description, path: path, offset: offset,
        finished: position.finished, quarantined: position.quarantined))
  }

  func line(
    _ bytes: UnsafeRawBufferPointer, file: String, fingerprint: Fingerprint, offset: Int64, scanned: ScannedLine?,
    passed: PassedLines
  ) throws {
    guard usesReaders else {
      return try unretainedPipeline._withUnsafeGuaranteedRef { pipeline in
        // A commit in the middle of the lines passed over saves the position of their first.
        setInFlight(pipeline, file: file, fingerprint: fingerprint, offset: passed.isEmpty ? offset : passed.offset)
        defer { pipeline.isLineInFlight = false }
        if !passed.isEmpty {
          try pipeline.handle(passed: passed, source: index)
          pipeline.inFlight.offset = offset
        }
        try pipeline.handle(line: bytes, source: index, file: file, offset: offset, ahead: scanned)
      }
    }
    precondition(passed.isEmpty, "lines passed over in a wrapper format")
    let reading = self.reading(fingerprint)
    let reader = try reading.reader ?? detect(reading, file: file, fingerprint: fingerprint)
    try pipeline.handle(
      line: bytes, reader: reader, source: index, file: file, offset: offset, replaying: offset < reading.processedTo)
  }

  /// Lines passed over on the read-ahead thread: only line formats' lines are scanned ahead
  /// (a wrapper format's reader holds state across lines: `init`).
  func passed(_ lines: PassedLines, file: String, fingerprint: Fingerprint) throws {
    precondition(!usesReaders, "lines passed over in a wrapper format")
    try unretainedPipeline._withUnsafeGuaranteedRef { pipeline in
      setInFlight(pipeline, file: file, fingerprint: fingerprint, offset: lines.offset)
      defer { pipeline.isLineInFlight = false }
      try pipeline.handle(passed: lines, source: index)
    }
  }

  /// Marks a line format's line (or lines passed over) starting at `offset` as in the engine:
  /// a commit in the middle of the settle it starts saves that position (`Pipeline.lineInFlight`).
  /// `inFlight` is only rewritten when the file changes, so a line costs no reference counting.
  @inline(__always)
  private func setInFlight(_ pipeline: Pipeline, file: String, fingerprint: Fingerprint, offset: Int64) {
    if pipeline.inFlight.source != index || pipeline.inFlight.fingerprint != fingerprint
      || pipeline.inFlight.path != file
    {
      pipeline.inFlight = .init(source: index, fingerprint: fingerprint, path: file, offset: offset)
    } else {
      pipeline.inFlight.offset = offset
    }
    pipeline.isLineInFlight = true
  }

  func tooLong(file: String, fingerprint: Fingerprint, offset: Int64, end: Int64) throws {
    if usesReaders, offset < reading(fingerprint).processedTo { return }
    pipeline.handleTooLong(source: index, file: file, offset: offset, end: end)
  }

  private func key(_ fingerprint: Fingerprint) -> String { name + "/" + fingerprint.description }

  private func reading(_ fingerprint: Fingerprint) -> FileReading {
    if let current, current.0 == fingerprint { return current.1 }
    let reading =
      files[fingerprint]
      ?? {
        let key = key(fingerprint)
        let made = FileReading(
          key: key, reader: format.map(makeReader), processedTo: pipeline.processedTo[key] ?? 0)
        files[fingerprint] = made
        return made
      }()
    current = (fingerprint, reading)
    return reading
  }

  private func makeReader(_ format: LogFormat) -> EventReader {
    let source = pipeline.config.sources[index]
    return EventReader(
      format: format, timeField: source.timeField, paths: pipeline.rules.fieldPaths, maxEventBytes: source.maxLineBytes)
  }

  /// `format: auto`: the file's format from its first lines, read through its path (the
  /// tailer has just read a line of it there).
  private func detect(_ reading: FileReading, file: String, fingerprint: Fingerprint) throws -> EventReader {
    let lines = FileSample.head(path: file, maxLineBytes: pipeline.config.sources[index].maxLineBytes)
    let detected = FormatDetector.detect(lines)
    pipeline.logger.notice(
      "format detected",
      metadata: [
        "source": "\(name)", "file": "\(file)",
        "format": "\(detected?.rawValue ?? "none recognised; reading as json")",
      ])
    let reader = makeReader(detected ?? .json)
    reading.reader = reader
    return reader
  }

  func note(_ event: TailEvent) {
    let logger = pipeline.logger
    switch event {
    case .opened(let path, let fingerprint, let offset):
      if usesReaders {
        // Read again from a saved position: held parts are read again too.
        let reading = self.reading(fingerprint)
        reading.reader?.reset()
        reading.processedTo = max(reading.processedTo, pipeline.processedTo[reading.key] ?? 0)
      }
      pipeline.sourceCounters[index].filesRead += 1
      logger.info("reading", metadata: ["file": "\(path)", "fingerprint": "\(fingerprint)", "offset": "\(offset)"])
    case .finished(let path, _):
      logger.info("file done", metadata: ["file": "\(path)"])
    case .truncated(let path, _, let size):
      pipeline.sourceCounters[index].truncations += 1
      logger.notice(
        "file truncated (copytruncate): rest is read from its copy", metadata: ["file": "\(path)", "size": "\(size)"])
    case .quarantined(let path, _, let reason):
      pipeline.sourceCounters[index].filesQuarantined += 1
      logger.warning("file quarantined", metadata: ["file": "\(path)", "reason": "\(reason)"])
    case .skipped:
      pipeline.sourceCounters[index].filesSkipped += 1
    case .unreadable(let path, let error):
      logger.debug("cannot read file yet", metadata: ["file": "\(path)", "error": "\(error)"])
    }
  }
}
