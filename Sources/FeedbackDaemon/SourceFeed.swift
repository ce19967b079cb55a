import LogTail
import Logging

/// Connects one source's tailer to the pipeline: lines in, positions to the checkpoint.
final class SourceFeed: TailDelegate {
  let index: Int
  let name: String
  unowned let pipeline: Pipeline
  private(set) var tailer: SourceTailer!

  init(index: Int, pipeline: Pipeline, live: Bool, rotateWait: Int64 = 5_000_000_000, paths: [String]? = nil) {
    self.index = index
    self.pipeline = pipeline
    let source = pipeline.config.sources[index]
    name = source.name
    tailer = SourceTailer(
      patterns: paths ?? source.paths, maxLineBytes: source.maxLineBytes, live: live, rotateWait: rotateWait,
      delegate: self)
  }

  func position(of fingerprint: Fingerprint) throws -> TailPosition? {
    try pipeline.fileRecord(source: index, fingerprint: fingerprint).map {
      TailPosition(offset: $0.offset, finished: $0.finished, quarantined: $0.quarantined)
    }
  }

  func save(_ position: TailPosition, of fingerprint: Fingerprint, path: String) throws {
    pipeline.updateFile(
      FileRecord(
        source: name, fingerprint: fingerprint.description, path: path, offset: position.offset,
        finished: position.finished, quarantined: position.quarantined))
  }

  func line(_ bytes: UnsafeRawBufferPointer, file: String, offset: Int64) throws {
    try pipeline.handle(line: bytes, source: index, file: file, offset: offset)
  }

  func tooLong(file: String, offset: Int64, end: Int64) throws {
    pipeline.handleTooLong(source: index, file: file, offset: offset, end: end)
  }

  func note(_ event: TailEvent) {
    let logger = pipeline.logger
    switch event {
    case .opened(let path, let fingerprint, let offset):
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
