import ArgumentParser
import Foundation

@main
struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "feedbackd-bench",
    abstract: "Replay benchmark for feedbackd (issue #4): a fixed-seed corpus of rotated gzip logs and its figures.",
    discussion: """
      feedbackd-bench corpus   generates the corpus once (about --mb MB of decompressed logs) and \
      DIR/bench.yaml, the benchmark job (click labels, one dataset).
      feedbackd-bench run      measures, on that corpus: the in-process floor (inflate + line split), \
      `gzip -dcf` to /dev/null, and `feedbackd replay --flush` (wall time, throughput, peak RSS).
      feedbackd-bench engine   times the replay's per-line work alone, one thread, on the corpus's \
      plain files: the scanning and the labeling engine (and what the join state's size costs it).
      feedbackd-bench replay   runs the job's replay in this process, for profilers that cannot run       `feedbackd` itself (callgrind).
      """,
    subcommands: [Corpus.self, Run.self, Engine.self, InProcessReplay.self]
  )
}

/// Options shared by both subcommands.
struct CorpusOptions: ParsableArguments {
  @Option(help: "Corpus directory (logs/, bench.yaml, corpus.json, state/, out/).")
  var dir: String = ".build/bench-corpus"

  /// `dir` made absolute against the current directory, without a trailing slash.
  var absoluteDir: String {
    let url = URL(fileURLWithPath: dir, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
    return url.standardizedFileURL.path
  }
}

struct BenchError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// The directory of this executable, where SwiftPM also puts `feedbackd` and `feedbackd-loggen`.
func executableDirectory() -> String {
  if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
    return (target as NSString).deletingLastPathComponent
  }
  if let path = Bundle.main.executablePath {
    return ((path as NSString).resolvingSymlinksInPath as NSString).deletingLastPathComponent
  }
  let arg0 = CommandLine.arguments[0]
  let url = URL(fileURLWithPath: arg0, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
  return url.standardizedFileURL.deletingLastPathComponent().path
}

/// A sibling executable of this one, or an error naming where it was looked for.
func siblingExecutable(_ name: String) throws -> String {
  let path = executableDirectory() + "/" + name
  guard FileManager.default.isExecutableFile(atPath: path) else {
    throw BenchError("\(path) not found: build it first (swift build -c release)")
  }
  return path
}

/// `name` looked up in `PATH`.
func which(_ name: String) throws -> String {
  let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
  for dir in path.split(separator: ":") {
    let candidate = "\(dir)/\(name)"
    if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
  }
  throw BenchError("\(name) not found in PATH")
}

func seconds(_ duration: Duration) -> Double {
  Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// `value` with `digits` decimals.
func fixed(_ value: Double, _ digits: Int = 1) -> String {
  guard value.isFinite else { return "null" }
  return String(format: "%.\(digits)f", value)
}

func printError(_ message: String) {
  FileHandle.standardError.write(Data((message + "\n").utf8))
}
