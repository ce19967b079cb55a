import ArgumentParser
import FeedbackConfig
import FeedbackDaemon
import Logging

/// The benchmark job's replay inside this process: what `feedbackd replay --flush` does, for
/// tools that cannot run `feedbackd` itself. Valgrind 3.19 dies when feedbackd's async `main`
/// hands the main thread to libdispatch; this command is synchronous, so callgrind can count a
/// whole replay's instructions, every thread's (`Benchmarks/callgrind.py replay`).
struct InProcessReplay: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "replay",
    abstract: "Run the benchmark job's replay (--flush) in this process, on fresh state and output.",
    discussion: """
      Sets DIR/state and DIR/out aside (deleted at the end), then runs `Replay.run` with DIR/bench.yaml and --flush, as \
      `feedbackd replay --config DIR/bench.yaml --flush` does, and prints its summary. For \
      timing, use `feedbackd-bench run` (it runs the real binary); this is for profilers.
      """
  )

  @OptionGroup var corpus: CorpusOptions

  func run() throws {
    let dir = corpus.absoluteDir
    let lock = try holdCorpus(dir: dir, name: "feedbackd-bench replay")
    defer { withExtendedLifetime(lock) {} }
    try setJobStateAside(dir: dir)
    defer { clearSetAside(dir: dir) }
    let config = try Configuration.load(path: dir + "/bench.yaml")
    var logger = Logger(label: "feedbackd-bench")
    logger.logLevel = .warning
    let summary = try Replay.run(config: config, options: ReplayOptions(flush: true), logger: logger)
    print(summary.text)
  }
}
