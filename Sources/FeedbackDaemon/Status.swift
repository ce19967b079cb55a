import FeedbackConfig
import Foundation
import GRDB
import LogFormats
import LogTail

/// `feedbackd status`: what the last commit says, readable while the daemon runs (WAL lets a
/// reader see the last committed state next to a writer's open transaction).
public enum Status {
  public static func report(config: FeedbackConfig.Configuration) throws -> String {
    let path = config.stateDir + "/state.sqlite"
    guard FileManager.default.fileExists(atPath: path) else {
      return "no state yet at \(path): feedbackd has not run with this configuration\n"
    }
    var configuration = GRDB.Configuration()
    configuration.readonly = true
    configuration.busyMode = .timeout(5)
    let queue = try DatabaseQueue(path: path, configuration: configuration)
    return try queue.read { db in
      let store = SQLiteStateStore(db: db)
      let checkpoint = try store.meta("checkpoint").map { try JSONDecoder().decode(Checkpoint.self, from: $0) }
      let now = LiveRunner.wallNow()
      var out = "state        \(path)\n"
      if let at = checkpoint?.committedAt {
        out += "last commit  \(Timestamp.format(at, fractionDigits: 0)) (\((now - at) / 1_000_000_000) s ago)\n"
      }
      if let watermark = checkpoint?.watermark, watermark > .min {
        let lag = Double(now - watermark) / 1e9
        out += "watermark    \(Timestamp.format(watermark, fractionDigits: 3)) (lag \(String(format: "%.0f", lag)) s)\n"
      } else {
        out += "watermark    none yet\n"
      }
      let (pending, feedback) = try SQLiteStateStore.pendingCounts(db)
      out += "pending      \(pending) predictions, \(feedback) feedback events\n"
      for dataset in config.datasets {
        let state = checkpoint?.datasets[dataset.name]
        out += "dataset      \(dataset.name): \(dataset.path), next segment \(state?.nextSegment ?? 0), "
        out += "\(state?.segments.count ?? 0) in progress, \(state?.openPartitions.count ?? 0) partitions open\n"
      }
      out += "files\n"
      for record in try store.allFiles() {
        let state =
          record.quarantined.map { "quarantined: \($0)" } ?? (record.finished ? "done" : "reading")
        var size = ""
        if !record.finished, let stat = FileStat.of(path: record.path),
          let reader = try? LogFileReader(path: record.path, chunkSize: 4096), !reader.isGzip
        {
          size = " of \(stat.size) (\(stat.size - record.offset) bytes behind)"
        }
        out += "  \(record.source)  \(record.path)  offset \(record.offset)\(size)  \(state)\n"
      }
      return out
    }
  }
}
