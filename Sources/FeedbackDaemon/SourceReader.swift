import LogTail

/// Reads one source's files oldest first, resuming each at its saved position.
///
/// A file is known by its fingerprint, so a file read before under another name (or before it
/// was gzipped) is resumed, and one read to its end is skipped.
final class SourceReader {
  let index: Int
  let name: String
  let maxLineBytes: Int
  private var files: [String]
  private var cursor: LineCursor?
  private var current: FileRecord?
  private var currentIsLive = false
  private var seenThisRun = Set<String>()
  private(set) var exhausted = false

  init(index: Int, name: String, paths: [String], maxLineBytes: Int) {
    self.index = index
    self.name = name
    self.maxLineBytes = maxLineBytes
    files = rotationOrdered(expandGlobs(paths))
  }

  var fileCount: Int { files.count }

  /// Hands up to `maxLines` lines to the pipeline. Returns false once every file is read.
  func step(maxLines: Int, pipeline: Pipeline) throws -> Bool {
    var budget = maxLines
    while budget > 0 {
      guard let cursor, var record = current else {
        if !openNext(pipeline: pipeline) {
          exhausted = true
          return false
        }
        continue
      }
      var handed = 0
      let path = record.path
      let result = try cursor.step(maxLines: budget, flushPartial: !currentIsLive) { item in
        handed += 1
        switch item {
        case .line(let bytes, let offset, _):
          try pipeline.handle(line: bytes, source: index, file: path, offset: offset)
        case .tooLong(let offset, let end):
          pipeline.handleTooLong(source: index, file: path, offset: offset, end: end)
        }
      }
      budget -= handed
      record.offset = cursor.position
      if result == .endOfData {
        if let damage = cursor.reader.damage {
          record.quarantined = damage.description
          pipeline.sourceCounters[index].filesQuarantined += 1
          pipeline.logger.warning(
            "file quarantined", metadata: ["file": "\(path)", "reason": "\(damage)", "offset": "\(record.offset)"])
        } else if !currentIsLive {
          record.finished = true
        }
        pipeline.updateFile(record)
        self.cursor = nil
        current = nil
      } else {
        pipeline.updateFile(record)
        current = record
      }
    }
    return true
  }

  /// Opens the next file that still has unread data.
  private func openNext(pipeline: Pipeline) -> Bool {
    while !files.isEmpty {
      let path = files.removeFirst()
      let isLive = RotationName(path: path).kind == .live
      let fingerprint: Fingerprint?
      do {
        fingerprint = try Fingerprint.of(path: path, isComplete: !isLive)
      } catch {
        pipeline.logger.warning("cannot read file", metadata: ["file": "\(path)", "error": "\(error)"])
        continue
      }
      guard let fingerprint else { continue }  // empty, or no full first line yet
      guard seenThisRun.insert(fingerprint.description).inserted else {
        pipeline.sourceCounters[index].filesSkipped += 1
        continue
      }
      do {
        var record =
          try pipeline.fileRecord(source: index, fingerprint: fingerprint)
          ?? FileRecord(
            source: name, fingerprint: fingerprint.description, path: path, offset: 0, finished: false,
            quarantined: nil)
        if record.finished || record.quarantined != nil {
          pipeline.sourceCounters[index].filesSkipped += 1
          continue
        }
        record.path = path
        cursor = try LineCursor(path: path, from: record.offset, maxLineBytes: maxLineBytes)
        current = record
        currentIsLive = isLive
        pipeline.sourceCounters[index].filesRead += 1
        return true
      } catch {
        pipeline.logger.warning("cannot resume file", metadata: ["file": "\(path)", "error": "\(error)"])
        continue
      }
    }
    return false
  }
}
