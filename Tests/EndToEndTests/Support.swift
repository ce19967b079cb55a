import Foundation
import TestSupport
import Testing

/// Runs the real binaries built by `swift build` / `swift test`.
enum Binaries {
  static let directory: URL = {
    let candidates = [
      Bundle.main.bundleURL,
      URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
      Bundle.main.bundleURL.deletingLastPathComponent(),
    ]
    return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("feedbackd").path) }
      ?? candidates[0]
  }()

  static var feedbackd: String { directory.appendingPathComponent("feedbackd").path }
  static var loggen: String { directory.appendingPathComponent("feedbackd-loggen").path }
}

/// Sets `process` to run `executable` with `arguments` under `setpriv --pdeathsig KILL` where
/// there is one: the child is killed when the test thread that started it goes away, say when
/// the test run is killed, instead of running on. (A `feedbackd run` once outlived a test run
/// cut short.) `setpriv` execs the executable, so the process id is the child's own.
func setCommand(_ process: Process, _ executable: String, _ arguments: [String]) {
  let setpriv = "/usr/bin/setpriv"
  if FileManager.default.isExecutableFile(atPath: setpriv) {
    process.executableURL = URL(fileURLWithPath: setpriv)
    process.arguments = ["--pdeathsig", "KILL", "--", executable] + arguments
  } else {
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
  }
}

struct ProcessResult {
  var status: Int32
  var stdout: String
  var stderr: String
}

@discardableResult
func run(_ executable: String, _ arguments: [String], cwd: String? = nil) throws -> ProcessResult {
  let process = Process()
  setCommand(process, executable, arguments)
  if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
  let out = URL(fileURLWithPath: Scratch.path("out"))
  let err = URL(fileURLWithPath: Scratch.path("err"))
  _ = FileManager.default.createFile(atPath: out.path, contents: nil)
  _ = FileManager.default.createFile(atPath: err.path, contents: nil)
  defer {
    try? FileManager.default.removeItem(at: out)
    try? FileManager.default.removeItem(at: err)
  }
  process.standardOutput = try FileHandle(forWritingTo: out)
  process.standardError = try FileHandle(forWritingTo: err)
  try process.run()
  process.waitUntilExit()
  return ProcessResult(
    status: process.terminationStatus,
    stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
    stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
}

/// Runs `feedbackd` with `arguments` once per delay, killing it with SIGKILL after that delay
/// if it is still running; `afterEach` runs once each run has ended. Returns how many runs
/// were killed.
func killRepeatedly(_ arguments: [String], delays: [Double], afterEach: () -> Void = {}) throws -> Int {
  var kills = 0
  for delay in delays {
    let process = Process()
    setCommand(process, Binaries.feedbackd, arguments)
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    Thread.sleep(forTimeInterval: delay)
    if process.isRunning {
      kill(process.processIdentifier, SIGKILL)
      kills += 1
    }
    process.waitUntilExit()
    afterEach()
  }
  return kills
}

func makeTempDir(_ tag: String) throws -> String {
  try Scratch.directory(tag)
}

/// File content, decompressed by the system's gzip when it starts with the gzip magic.
func readDecompressed(_ path: String) throws -> Data {
  let data = try Data(contentsOf: URL(fileURLWithPath: path))
  guard data.count >= 2, data[data.startIndex] == 0x1f, data[data.startIndex + 1] == 0x8b else { return data }
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/bin/gzip")
  process.arguments = ["-dc", path]
  let pipe = Pipe()
  process.standardOutput = pipe
  process.standardError = FileHandle.nullDevice
  try process.run()
  let output = pipe.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  return output
}

/// Regular files below `dir`, relative, sorted.
func listFiles(_ dir: String) -> [String] {
  let enumerator = FileManager.default.enumerator(atPath: dir)
  var result: [String] = []
  while let name = enumerator?.nextObject() as? String {
    var isDir: ObjCBool = false
    if FileManager.default.fileExists(atPath: dir + "/" + name, isDirectory: &isDir), !isDir.boolValue {
      result.append(name)
    }
  }
  return result.sorted()
}

/// A configuration exercising every label value kind, two datasets, two output formats.
func writeConfig(
  dir: String, logs: String, stateDir: String, datasets: String, format: String = "logstash",
  idleTimeout: String = "30s", httpPort: Int = Int.random(in: 20_000...60_000)
) throws -> String {
  let yaml = """
    state_dir: \(stateDir)
    sources:
      - name: shop
        paths: ["\(logs)/app.log*"]
        format: \(format)
    events:
      prediction: { where: { event: prediction }, key: request_id }
      feedback:
        click:    { where: { event: click },    key: request_id }
        purchase: { where: { event: purchase }, key: request_id, dedupe_by: order_id }
    labels:
      clicked:     { from: click,    window: 30m }
      clicks:      { from: click,    window: 30m, value: count }
      purchased:   { from: purchase, window: 1d }
      revenue:     { from: purchase, window: 1d, value: sum(value) }
      first_order: { from: purchase, window: 1d, value: first(order_id) }
    datasets:
      - name: ctr
        path: \(datasets)/ctr
        labels: [clicked, clicks]
        columns: [model_version, score, { path: features.item_category, as: category }]
        format: jsonl
        roll: { max_bytes: 64KiB, max_age: 3h }
      - name: conversions
        path: \(datasets)/conversions
        labels: [purchased, revenue, first_order]
        format: jsonl.gz
    watermark: { max_out_of_order: 5s, idle_timeout: \(idleTimeout) }
    http: { listen: "127.0.0.1:\(httpPort)" }
    """
  let path = dir + "/feedbackd.yaml"
  try yaml.write(toFile: path, atomically: true, encoding: .utf8)
  return path
}
