import Foundation
import Logging

/// Logs to stderr in a form journald reads well: a `<N>` priority prefix and no timestamp
/// (journald adds its own) when `JOURNAL_STREAM` is set; a timestamped line otherwise.
public struct JournalLogHandler: LogHandler {
  public var logLevel: Logger.Level
  public var metadata: Logger.Metadata = [:]
  private let label: String
  private let underJournal: Bool

  public init(label: String, level: Logger.Level, environment: [String: String] = ProcessInfo.processInfo.environment) {
    self.label = label
    logLevel = level
    underJournal = environment["JOURNAL_STREAM"] != nil
  }

  public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  public func log(event: LogEvent) {
    var all = metadata
    if let extra = event.metadata { all.merge(extra) { $1 } }
    let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    let text = fields.isEmpty ? "\(event.message)" : "\(event.message) \(fields)"
    let line: String
    if underJournal {
      line = "<\(Self.priority(event.level))>\(text)\n"
    } else {
      line = "\(Date().formatted(.iso8601)) \(event.level) \(label): \(text)\n"
    }
    FileHandle.standardError.write(Data(line.utf8))
  }

  /// syslog priorities, as sd-daemon(3) prefixes expect.
  static func priority(_ level: Logger.Level) -> Int {
    switch level {
    case .trace, .debug: 7
    case .info: 6
    case .notice: 5
    case .warning: 4
    case .error: 3
    case .critical: 2
    }
  }
}
