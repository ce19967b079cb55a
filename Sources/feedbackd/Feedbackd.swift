import ArgumentParser
import FeedbackConfig
import FeedbackDaemon
import Foundation
import Logging

@main
struct Feedbackd: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "feedbackd",
    abstract: "Turns prediction and feedback events in application logs into a labeled training dataset.",
    version: FeedbackdVersion.current,
    subcommands: [RunCommand.self, ReplayCommand.self, CheckCommand.self, StatusCommand.self, ReportCommand.self]
  )
}

/// `--config FILE`, shared by every command.
struct ConfigFileOption: ParsableArguments {
  @Option(name: .long, help: "The configuration file (YAML).")
  var config: String

  /// Loads the configuration or exits 2 with one line naming the key and the problem.
  func load() -> Configuration {
    do {
      return try Configuration.load(path: config)
    } catch {
      FileHandle.standardError.write(Data("feedbackd: configuration error: \(error.description)\n".utf8))
      Foundation.exit(2)
    }
  }
}

func makeLogger() -> Logger {
  let level =
    ProcessInfo.processInfo.environment["FEEDBACKD_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .notice
  LoggingSystem.bootstrap { label in JournalLogHandler(label: label, level: level) }
  return Logger(label: "feedbackd")
}

struct RunCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run",
    abstract: "The daemon: tail the sources through rotation and write rows as their windows close."
  )

  @OptionGroup var configFile: ConfigFileOption

  @Option(name: .long, help: "Seconds a rotated file must stay unchanged before it is finished.")
  var rotateWait: Double = 5

  @Option(name: .long, help: "Seconds between commits.")
  var commitInterval: Double = 1

  func run() async throws {
    let configuration = configFile.load()
    let logger = makeLogger()
    var options = LiveOptions()
    options.rotateWait = .milliseconds(Int64(rotateWait * 1000))
    options.commitInterval = .milliseconds(Int64(commitInterval * 1000))
    let runner = LiveRunner(config: configuration, configPath: configFile.config, options: options, logger: logger)
    try await Daemon.run(runner: runner, config: configuration, logger: logger)
  }
}

struct ReplayCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "replay",
    abstract: "Replay historical (rotated, gzipped) logs into the datasets, then exit."
  )

  @OptionGroup var configFile: ConfigFileOption

  @Flag(name: .long, help: "Treat the end of input as the end of time: write every pending row.")
  var flush = false

  @Option(name: .long, help: "The source PATH arguments belong to (needed with several sources).")
  var source: String?

  @Flag(
    name: .customLong("no-scan-ahead"),
    help: ArgumentHelp("Scan lines on the main thread, not ahead (to compare; same output).", visibility: .hidden))
  var noScanAhead = false

  @Option(
    name: .customLong("commit-every-lines"),
    help: ArgumentHelp("Commit every N lines (tests: commits in the middle of a small replay).", visibility: .hidden))
  var commitEveryLines: Int = ReplayOptions.defaultCommitEveryLines

  @Argument(help: "Files or globs to read instead of the source's configured paths.")
  var paths: [String] = []

  mutating func validate() throws {
    guard commitEveryLines >= 1 else { throw ValidationError("--commit-every-lines must be >= 1") }
  }

  func run() throws {
    let configuration = configFile.load()
    let logger = makeLogger()
    let summary = try Replay.run(
      config: configuration,
      options: ReplayOptions(
        flush: flush, paths: paths, source: source, commitEveryLines: commitEveryLines, scanAhead: !noScanAhead),
      logger: logger)
    print(summary.text)
    for dataset in configuration.datasets {
      print("dataset     \(dataset.name): \(dataset.path)")
    }
  }
}

struct CheckCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "check",
    abstract: "Validate the configuration, list the files each source matches, classify sample lines."
  )

  @OptionGroup var configFile: ConfigFileOption

  func run() throws {
    let configuration = configFile.load()
    print(try Check.report(config: configuration), terminator: "")
  }
}

struct StatusCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "status",
    abstract: "Read positions, pending predictions, watermark and lag, last commit (safe while the daemon runs)."
  )

  @OptionGroup var configFile: ConfigFileOption

  func run() throws {
    let configuration = configFile.load()
    print(try Status.report(config: configuration), terminator: "")
  }
}

struct ReportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "report",
    abstract: "Write one self-contained HTML page: model quality per monitor and slice over time, alerts, data volume."
  )

  @OptionGroup var configFile: ConfigFileOption

  @Option(name: .long, help: "The HTML file to write.")
  var out: String = "report.html"

  func run() throws {
    let configuration = configFile.load()
    let html = try Report.html(config: configuration, configPath: configFile.config)
    try html.write(toFile: out, atomically: true, encoding: .utf8)
    print("report      \(out) (\(configuration.monitors.count) monitor(s))")
  }
}
