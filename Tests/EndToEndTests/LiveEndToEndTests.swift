import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// A `feedbackd run` process under test.
final class DaemonProcess {
  let process = Process()
  let stderrPath: String

  init(config: String, environment: [String: String] = [:], extra: [String] = []) throws {
    setCommand(
      process, Binaries.feedbackd,
      ["run", "--config", config, "--rotate-wait", "0.5", "--commit-interval", "0.2"] + extra)
    var env = ProcessInfo.processInfo.environment
    env["FEEDBACKD_LOG_LEVEL"] = "info"
    for (k, v) in environment { env[k] = v }
    process.environment = env
    stderrPath = Scratch.path("daemon", suffix: ".log")
    _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
    process.standardOutput = FileHandle.nullDevice
    try process.run()
  }

  var log: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

  func kill9() {
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
  }

  /// SIGTERM, then the exit status (nil if it did not exit within `timeout`).
  func terminate(timeout: Double = 30) -> Int32? {
    process.terminate()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
    if process.isRunning {
      kill9()
      return nil
    }
    return process.terminationStatus
  }
}

/// Runs the rotating writer (Scripts/rotating_writer.py) as a process.
func startWriter(
  input: String, dir: String, every: Int, styles: String, rate: Int, dated: Bool = false
) throws -> Process {
  let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../Scripts/rotating_writer.py").standardized.path
  let writer = Process()
  setCommand(
    writer, "/usr/bin/env",
    ["python3", script, input, dir, "--every", "\(every)", "--styles", styles, "--rate", "\(rate)"]
      + (dated ? ["--dated"] : []))
  try writer.run()
  return writer
}

func waitFor(_ process: Process, timeout: Double) -> Bool {
  let deadline = Date().addingTimeInterval(timeout)
  while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
  return !process.isRunning
}

@Suite(.serialized) struct LiveEndToEndTests {
  /// One generated log as the writer's input, and a config whose source follows DIR/logs.
  struct Setup {
    let httpPort: Int
    let dir: String
    let input: String
    let logs: String
    let config: String
  }

  static func setup(seed: Int, predictions: Int, httpPort: Int = Int.random(in: 20_000...60_000)) throws -> Setup {
    let dir = try makeTempDir("live\(seed)")
    let result = try run(
      Binaries.loggen,
      ["--out", dir + "/input", "--seed", "\(seed)", "--predictions", "\(predictions)", "--files", "1"])
    #expect(result.status == 0, "\(result.stderr)")
    let logs = dir + "/logs"
    try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
    let config = try writeConfig(
      dir: dir, logs: logs, stateDir: dir + "/state", datasets: dir + "/datasets", idleTimeout: "1h",
      httpPort: httpPort)
    return Setup(httpPort: httpPort, dir: dir, input: dir + "/input/app.log", logs: logs, config: config)
  }

  /// After the daemon stopped: flush what is still pending and compare every row with the
  /// oracle over everything the writer wrote.
  static func flushAndVerify(_ setup: Setup) throws {
    let flush = try run(Binaries.feedbackd, ["replay", "--config", setup.config, "--flush"])
    #expect(flush.status == 0, "\(flush.stderr)")
    #expect(flush.stdout.contains("lines       0 "), "the live daemon left lines unread:\n\(flush.stdout)")
    let oracle = try Oracle(files: [setup.input])
    try ReplayEndToEndTests.verify(datasets: setup.dir + "/datasets", oracle: oracle, flush: true)
    let leftovers = listFiles(setup.dir + "/datasets").filter { $0.contains(".inprogress") }
    #expect(leftovers.isEmpty, "\(leftovers)")
  }

  @Test(arguments: [false, true])
  func tailingThroughEveryRotationStyleLosesAndDoublesNothing(dated: Bool) throws {
    let setup = try Self.setup(seed: dated ? 31 : 29, predictions: 2500)
    let daemon = try DaemonProcess(config: setup.config)
    let writer = try startWriter(
      input: setup.input, dir: setup.logs, every: 250, styles: "rename,copytruncate,compress,delaycompress",
      rate: 4000, dated: dated)
    #expect(waitFor(writer, timeout: 120))
    Thread.sleep(forTimeInterval: 2)
    #expect(daemon.terminate() == 0, "\(daemon.log)")
    #expect(daemon.log.contains("copytruncate"), "no truncation was noticed")
    try Self.flushAndVerify(setup)
  }

  @Test func killedWithSIGKILLTwentyTimesLosesAndDoublesNothing() throws {
    let setup = try Self.setup(seed: 37, predictions: 3000)
    let writer = try startWriter(
      input: setup.input, dir: setup.logs, every: 400, styles: "rename,compress,copytruncate,delaycompress",
      rate: 900)
    var generator = SystemRandomNumberGenerator()
    var kills = 0
    var daemon = try DaemonProcess(config: setup.config)
    while kills < 20 || writer.isRunning {
      Thread.sleep(forTimeInterval: Double.random(in: 0.1...0.5, using: &generator))
      daemon.kill9()
      kills += 1
      daemon = try DaemonProcess(config: setup.config)
      if kills > 200 { break }
    }
    #expect(waitFor(writer, timeout: 60))
    Thread.sleep(forTimeInterval: 2)
    #expect(daemon.terminate() == 0, "\(daemon.log)")
    #expect(kills >= 20)
    try Self.flushAndVerify(setup)
  }

  /// A second `replay` or `run` on a state_dir a daemon uses stops at start, naming the daemon,
  /// and changes nothing; once the daemon is killed (SIGKILL: no clean-up), the lock is gone.
  @Test func aSecondFeedbackdOnTheSameStateDirStopsAtStartNamingTheFirst() throws {
    let setup = try Self.setup(seed: 47, predictions: 400)
    try FileManager.default.copyItem(atPath: setup.input, toPath: setup.logs + "/app.log")
    let daemon = try DaemonProcess(config: setup.config)
    let pid = daemon.process.processIdentifier
    let lockPath = setup.dir + "/state/lock"
    let deadline = Date().addingTimeInterval(30)
    while (try? String(contentsOfFile: lockPath, encoding: .utf8)) != "\(pid)\n" && Date() < deadline {
      Thread.sleep(forTimeInterval: 0.05)
    }
    #expect((try? String(contentsOfFile: lockPath, encoding: .utf8)) == "\(pid)\n", "\(daemon.log)")
    // Let it read and commit the log first: the refused ones must leave its work alone.
    Thread.sleep(forTimeInterval: 2)
    let replay = try run(Binaries.feedbackd, ["replay", "--config", setup.config, "--flush"])
    #expect(replay.status != 0)
    let lines = replay.stderr.split(separator: "\n")
    #expect(lines.count == 1, "\(replay.stderr)")
    #expect(replay.stderr.contains("is in use by another feedbackd (pid \(pid))"), "\(replay.stderr)")
    let second = try DaemonProcess(config: setup.config)
    #expect(waitFor(second.process, timeout: 30))
    #expect(second.process.terminationStatus != 0)
    #expect(second.log.contains("is in use by another feedbackd (pid \(pid))"), "\(second.log)")
    #expect(daemon.process.isRunning)
    daemon.kill9()
    // The kernel released the killed daemon's lock: the flush runs, and every row is right.
    try Self.flushAndVerify(setup)
  }

  @Test func restartAfterRotationsWhileStoppedLosesNothing() throws {
    let setup = try Self.setup(seed: 41, predictions: 1500)
    // Half the log, read live.
    let all = try String(contentsOfFile: setup.input, encoding: .utf8).split(
      separator: "\n", omittingEmptySubsequences: false)
    let half = all.count / 2
    try (all[0..<half].joined(separator: "\n") + "\n").write(
      toFile: setup.logs + "/app.log", atomically: false, encoding: .utf8)
    var daemon = try DaemonProcess(config: setup.config)
    Thread.sleep(forTimeInterval: 2)
    #expect(daemon.terminate() == 0)
    // While stopped: rotate and gzip twice, with more lines in between.
    let quarter = half + (all.count - half) / 2
    try FileManager.default.moveItem(atPath: setup.logs + "/app.log", toPath: setup.logs + "/app.log.1")
    try (all[half..<quarter].joined(separator: "\n") + "\n").write(
      toFile: setup.logs + "/app.log", atomically: false, encoding: .utf8)
    _ = try run("/bin/gzip", [setup.logs + "/app.log.1"])
    try FileManager.default.moveItem(atPath: setup.logs + "/app.log.1.gz", toPath: setup.logs + "/app.log.2.gz")
    try FileManager.default.moveItem(atPath: setup.logs + "/app.log", toPath: setup.logs + "/app.log.1")
    _ = try run("/bin/gzip", [setup.logs + "/app.log.1"])
    try (all[quarter...].joined(separator: "\n")).write(
      toFile: setup.logs + "/app.log", atomically: false, encoding: .utf8)
    daemon = try DaemonProcess(config: setup.config)
    Thread.sleep(forTimeInterval: 3)
    #expect(daemon.terminate() == 0, "\(daemon.log)")
    try Self.flushAndVerify(setup)
  }

  @Test func sigtermExitsZeroAndTellsSystemd() throws {
    let port = Int.random(in: 20_000...60_000)
    let setup = try Self.setup(seed: 43, predictions: 200, httpPort: port)
    try FileManager.default.copyItem(atPath: setup.input, toPath: setup.logs + "/app.log")
    let notify = NotifySocket(path: setup.dir + "/notify.sock")
    let daemon = try DaemonProcess(
      config: setup.config,
      environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000", "JOURNAL_STREAM": "8:1234"])
    notify.receive(for: 2)
    // `status` reads the committed state while the daemon holds its write transaction.
    let report = try run(Binaries.feedbackd, ["status", "--config", setup.config])
    #expect(report.status == 0, "\(report.stderr)")
    #expect(report.stdout.contains(setup.logs + "/app.log"), "\(report.stdout)")
    #expect(report.stdout.contains("last commit"), "\(report.stdout)")
    #expect(report.stdout.contains("pending"), "\(report.stdout)")
    // The operations endpoint on loopback.
    let health = try run(
      "/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/healthz"])
    #expect(health.stdout == "200", "\(health.stdout) \(health.stderr)")
    let metrics = try run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(port)/metrics"])
    for name in [
      "feedbackd_lines_read_total{source=\"shop\"}", "feedbackd_bytes_read_total", "feedbackd_lines_rejected_total",
      "feedbackd_events_total", "feedbackd_rows_written_total", "feedbackd_pending_predictions",
      "feedbackd_watermark_seconds", "feedbackd_watermark_lag_seconds", "feedbackd_label_delay_seconds_bucket",
      "feedbackd_commit_duration_seconds_bucket", "feedbackd_duplicate_predictions_total",
      "feedbackd_orphan_feedback_total{type=\"click\"}", "feedbackd_late_feedback_total{type=\"purchase\"}",
      "feedbackd_files_quarantined_total", "feedbackd_engine_wait_seconds_total{on=\"input\"}",
      "feedbackd_engine_wait_seconds_total{on=\"dataset_writer\"}",
    ] {
      #expect(metrics.stdout.contains(name), "\(name) missing from /metrics")
    }
    // The running build says which version it is, as `--version` does.
    let version = try run(Binaries.feedbackd, ["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(version.split(separator: ".").count == 3 && version.allSatisfy { $0.isNumber || $0 == "." }, "\(version)")
    #expect(metrics.stdout.contains("feedbackd_build_info{version=\"\(version)\"} 1"), "build info missing")
    let linesRead = metrics.stdout.split(separator: "\n").first { $0.hasPrefix("feedbackd_lines_read_total{") }
    let expectedLines = try String(contentsOfFile: setup.input, encoding: .utf8).split(separator: "\n").count
    #expect(linesRead?.hasSuffix(" \(expectedLines)") == true, "\(linesRead ?? "none")")
    let status = daemon.terminate()
    notify.receive(for: 1)
    #expect(status == 0, "\(daemon.log)")
    // Under journald: a priority prefix on every line, and no timestamp of our own.
    let logLines = daemon.log.split(separator: "\n")
    #expect(!logLines.isEmpty)
    #expect(logLines.allSatisfy { $0.hasPrefix("<") && $0.dropFirst(2).hasPrefix(">") }, "\(logLines.prefix(3))")
    #expect(logLines.contains { $0.hasPrefix("<5>started") }, "\(logLines.prefix(3))")
    #expect(!daemon.log.contains("2026-"), "timestamps in journald mode")
    let messages = notify.messages.map(\.text)
    let all = messages.joined(separator: "\n")
    #expect(all.contains("READY=1"))
    #expect(all.contains("STATUS="))
    #expect(all.contains("WATCHDOG=1"))
    #expect(all.contains("STOPPING=1"))
    #expect(messages.firstIndex { $0.contains("READY=1") }! < messages.firstIndex { $0.contains("STOPPING=1") }!)
    // Everything read was committed: a replay finds nothing new to read.
    let again = try run(Binaries.feedbackd, ["replay", "--config", setup.config])
    #expect(again.stdout.contains("lines       0 "), "\(again.stdout)")
  }
}

/// A fake `$NOTIFY_SOCKET`: a datagram socket the test reads sd_notify messages from.
final class NotifySocket {
  let path: String
  let fd: Int32
  private(set) var messages: [(at: Date, text: String)] = []

  init(path: String) {
    self.path = path
    fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
    _ = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
  }

  deinit { close(fd) }

  func receive(for seconds: Double) {
    let end = Date().addingTimeInterval(seconds)
    var buffer = [UInt8](repeating: 0, count: 4096)
    while Date() < end {
      let n = recv(fd, &buffer, buffer.count, 0)
      if n > 0 { messages.append((Date(), String(decoding: buffer[0..<n], as: UTF8.self))) }
    }
  }

  func count(_ text: String, since: Date) -> Int {
    messages.filter { $0.at >= since && $0.text.contains(text) }.count
  }
}

@Suite(.serialized) struct BackpressureTests {
  /// The dataset directory cannot be written for a while (a file stands where a partition
  /// directory must go): the daemon logs it, retries from its last commit, and once the
  /// obstacle is gone finishes with every row exactly once.
  @Test func unwritableDatasetPausesAndRecoversWithoutLoss() throws {
    let setup = try LiveEndToEndTests.setup(seed: 47, predictions: 1500, httpPort: Int.random(in: 20_000...60_000))
    let lines = try String(contentsOfFile: setup.input, encoding: .utf8).split(separator: "\n")
    // Block every partition of the second day in the ctr dataset.
    let ctr = setup.dir + "/datasets/ctr"
    try FileManager.default.createDirectory(atPath: ctr, withIntermediateDirectories: true)
    let blocker = ctr + "/date=2026-12-01"
    _ = FileManager.default.createFile(atPath: blocker, contents: Data("not a directory".utf8))
    try (lines.joined(separator: "\n") + "\n").write(
      toFile: setup.logs + "/app.log", atomically: false, encoding: .utf8)
    let notify = NotifySocket(path: setup.dir + "/notify.sock")
    let daemon = try DaemonProcess(
      config: setup.config, environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "300000"])
    let deadline = Date().addingTimeInterval(20)
    while !daemon.log.contains("pipeline failed") && Date() < deadline { notify.receive(for: 0.1) }
    // While it cannot write, the pipeline makes no progress and stops feeding the watchdog.
    let failing = Date()
    notify.receive(for: 2)
    #expect(notify.count("WATCHDOG=1", since: failing) == 0, "watchdog fed while stalled")
    #expect(daemon.log.contains("pipeline failed"), "the obstacle was not noticed: \(daemon.log)")
    let health = try run(
      "/usr/bin/curl", ["-s", "-w", " %{http_code}", "http://127.0.0.1:\(setup.httpPort)/healthz"])
    #expect(health.stdout.hasSuffix(" 503"), "\(health.stdout)")
    #expect(health.stdout.contains("cannot write"), "\(health.stdout)")
    #expect(!FileManager.default.fileExists(atPath: ctr + "/date=2026-12-01/hour=00"))
    try FileManager.default.removeItem(atPath: blocker)
    let recovered = Date()
    notify.receive(for: 4)
    #expect(notify.count("WATCHDOG=1", since: recovered) > 0, "watchdog not fed after recovery")
    #expect(daemon.terminate() == 0, "\(daemon.log)")
    try LiveEndToEndTests.flushAndVerify(setup)
  }
}

@Suite(.serialized) struct DaemonControlTests {
  static func line(_ event: String, _ id: String, at time: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return
      "{\"@timestamp\":\"\(formatter.string(from: time))\",\"event\":\"\(event)\",\"request_id\":\"\(id)\",\"score\":0.5}"
  }

  static func config(dir: String, paths: [String], idle: String) throws -> String {
    let yaml = """
      state_dir: \(dir)/state
      sources:
        - name: app
          paths: [\(paths.map { "\"\($0)\"" }.joined(separator: ", "))]
          format: logstash
      events:
        prediction: { where: { event: prediction }, key: request_id }
        feedback:
          click: { where: { event: click }, key: request_id }
      labels:
        clicked: { from: click, window: 10s }
      datasets:
        - name: ctr
          path: \(dir)/datasets/ctr
          labels: [clicked]
          columns: [score]
          roll: { max_bytes: 1MiB, max_age: 1s }
      watermark: { max_out_of_order: 1s, idle_timeout: \(idle) }
      http: { listen: "127.0.0.1:\(Int.random(in: 20_000...60_000))" }
      """
    try yaml.write(toFile: dir + "/feedbackd.yaml", atomically: true, encoding: .utf8)
    return dir + "/feedbackd.yaml"
  }

  /// With nothing written for `idle_timeout`, wall-clock time closes the windows.
  @Test func idleSourceLetsWallClockCloseWindows() throws {
    let dir = try makeTempDir("idle")
    try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
    let config = try Self.config(dir: dir, paths: [dir + "/logs/app.log*"], idle: "1s")
    let now = Date()
    let lines = [
      Self.line("prediction", "a", at: now), Self.line("click", "a", at: now.addingTimeInterval(2)),
      Self.line("prediction", "b", at: now.addingTimeInterval(3)),
    ]
    try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/logs/app.log", atomically: false, encoding: .utf8)
    let daemon = try DaemonProcess(config: config)
    // No event after b: only the wall clock can take the watermark past b's window end.
    let deadline = Date().addingTimeInterval(25)
    var rows: [[String: Any]] = []
    while rows.count < 2 && Date() < deadline {
      Thread.sleep(forTimeInterval: 0.5)
      rows = try readDataset(dir + "/datasets/ctr").map(\.row)
    }
    #expect(daemon.terminate() == 0, "\(daemon.log)")
    #expect(rows.count == 2, "rows: \(rows)")
    #expect(rows.first { $0["key"] as? String == "a" }?["clicked"] as? Int == 1)
    #expect(rows.first { $0["key"] as? String == "b" }?["clicked"] as? Int == 0)
  }

  /// SIGHUP re-reads the configuration and follows the sources' new paths.
  @Test func sighupFollowsNewSourcePaths() throws {
    let dir = try makeTempDir("hup")
    try FileManager.default.createDirectory(atPath: dir + "/one", withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: dir + "/two", withIntermediateDirectories: true)
    let base = Date().addingTimeInterval(-3600)
    try (Self.line("prediction", "p1", at: base) + "\n").write(
      toFile: dir + "/one/app.log", atomically: false, encoding: .utf8)
    try (Self.line("prediction", "p2", at: base.addingTimeInterval(1)) + "\n").write(
      toFile: dir + "/two/app.log", atomically: false, encoding: .utf8)
    let config = try Self.config(dir: dir, paths: [dir + "/one/app.log*"], idle: "1h")
    let daemon = try DaemonProcess(config: config)
    Thread.sleep(forTimeInterval: 2)
    _ = try Self.config(dir: dir, paths: [dir + "/one/app.log*", dir + "/two/app.log*"], idle: "1h")
    kill(daemon.process.processIdentifier, SIGHUP)
    let deadline = Date().addingTimeInterval(10)
    while !daemon.log.contains("source paths reloaded") && Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
    Thread.sleep(forTimeInterval: 1)
    #expect(daemon.terminate() == 0, "\(daemon.log)")
    #expect(daemon.log.contains("source paths reloaded"), "\(daemon.log)")
    let status = try run(Binaries.feedbackd, ["status", "--config", config])
    #expect(status.stdout.contains(dir + "/two/app.log"), "\(status.stdout)")
  }
}
