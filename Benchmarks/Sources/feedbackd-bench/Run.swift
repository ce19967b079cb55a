import ArgumentParser
import FeedbackDaemon
import Foundation

struct Run: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Measure the floor, gzip -dcf and feedbackd replay on the corpus, side by side.",
    discussion: """
      Each round runs (a) the in-process floor: read every file, inflate the gzipped ones \
      (GzipInflater), split lines with memchr, and the same with zlib's inflate (the project's \
      before ISA-L); (b) `feedbackd replay --config DIR/bench.yaml \
      --flush` with the last DIR/state and DIR/out moved into DIR/set-aside first (deleted at the \
      end; wall time; peak RSS from \
      getrusage(RUSAGE_CHILDREN)); (c) `gzip -dcf FILES > /dev/null`. With --repeat N the best \
      (shortest) time of each is reported and the largest RSS. Prints a table and one JSON line.
      """
  )

  @OptionGroup var corpus: CorpusOptions

  @Option(help: "The feedbackd binary (default: feedbackd next to this executable).")
  var feedbackd: String?

  @Option(name: .customLong("repeat"), help: "Rounds; the best time of each measurement is reported.")
  var rounds: Int = 1

  @Flag(help: "Measure only the floor and gzip -dcf (no feedbackd replay).")
  var skipReplay = false

  mutating func validate() throws {
    guard rounds >= 1 else { throw ValidationError("--repeat must be >= 1") }
  }

  func run() throws {
    let dir = corpus.absoluteDir
    let lock = try holdCorpus(dir: dir, name: "feedbackd-bench run")
    defer { withExtendedLifetime(lock) {} }
    let files = (try? logFiles(dir: dir)) ?? []
    guard !files.isEmpty else {
      throw BenchError("no logs in \(dir)/logs: run `feedbackd-bench corpus --dir \(corpus.dir)` first")
    }
    let stamp = CorpusStamp.load(dir: dir)
    if let stamp, files.count != stamp.files {
      printError("warning: \(dir)/logs holds \(files.count) files, the corpus was made with \(stamp.files)")
    }
    let gzip = try which("gzip")
    var feedbackdPath: String?
    if !skipReplay {
      let path = try feedbackd ?? siblingExecutable("feedbackd")
      guard FileManager.default.isExecutableFile(atPath: path) else { throw BenchError("\(path) is not executable") }
      guard FileManager.default.fileExists(atPath: dir + "/bench.yaml") else {
        throw BenchError("\(dir)/bench.yaml missing: run `feedbackd-bench corpus --dir \(corpus.dir)` first")
      }
      feedbackdPath = path
    }

    defer { clearSetAside(dir: dir) }
    var floor: FloorResult?
    var zlibFloorSeconds = Double.infinity
    var gzipSeconds = Double.infinity
    var replay: ReplayRun?
    for round in 1...rounds {
      if rounds > 1 { printError("round \(round)/\(rounds)") }
      let f = try measureFloor(files: files)
      if let previous = floor, previous.bytes != f.bytes || previous.lines != f.lines {
        throw BenchError("the floor read different totals in two rounds: the corpus changed")
      }
      if floor == nil || f.seconds < floor!.seconds { floor = f }
      let z = try measureFloor(files: files, inflate: .zlib)
      if z.bytes != f.bytes || z.lines != f.lines {
        throw BenchError("the floor with zlib's inflate read other totals than with the replay's")
      }
      zlibFloorSeconds = min(zlibFloorSeconds, z.seconds)

      if let feedbackdPath {
        let r = try runReplay(feedbackd: feedbackdPath, dir: dir)
        if var best = replay {
          best.peakRSSBytes = max(best.peakRSSBytes, r.peakRSSBytes)
          if r.wallSeconds < best.wallSeconds {
            best.wallSeconds = r.wallSeconds
            best.summary = r.summary
          }
          replay = best
        } else {
          replay = r
        }
      }

      let g = try runChild(gzip, ["-dcf"] + files)
      guard g.status == 0 else { throw BenchError("gzip -dcf failed (exit \(g.status))") }
      gzipSeconds = min(gzipSeconds, g.wallSeconds)
    }
    guard let floor else { return }
    if let expected = stamp?.bytes, expected != floor.bytes {
      printError("warning: the floor read \(floor.bytes) decompressed bytes, the generator reported \(expected)")
    }
    report(dir: dir, floor: floor, zlibFloorSeconds: zlibFloorSeconds, gzipSeconds: gzipSeconds, replay: replay)
  }

  private func report(
    dir: String, floor: FloorResult, zlibFloorSeconds: Double, gzipSeconds: Double, replay: ReplayRun?
  ) {
    let mb = Double(floor.bytes) / 1e6
    let lines = Double(floor.lines)
    func row(_ name: String, _ secs: Double) -> String {
      name.padding(toLength: 28, withPad: " ", startingAt: 0)
        + pad(fixed(secs, 3), 10) + pad(fixed(mb / secs), 12) + pad(fixed(lines / secs, 0), 14)
    }
    print(
      "corpus  \(dir): \(floor.files) files (\(floor.gzipFiles) gzip), \(fixed(Double(floor.diskBytes) / 1e6)) MB on disk,"
        + " \(fixed(mb)) MB decompressed, \(floor.lines) lines (longest \(floor.longestLine) bytes)")
    print("")
    print(
      "".padding(toLength: 28, withPad: " ", startingAt: 0) + pad("seconds", 10) + pad("MB/s", 12) + pad("lines/s", 14))
    print(row("floor (inflate + split)", floor.seconds))
    print(row("  the same with zlib", zlibFloorSeconds))
    print(row("gzip -dcf > /dev/null", gzipSeconds))
    var json: [(String, String)] = [
      ("files", "\(floor.files)"), ("gzip_files", "\(floor.gzipFiles)"),
      ("disk_mb", fixed(Double(floor.diskBytes) / 1e6, 2)), ("decompressed_mb", fixed(mb, 2)),
      ("lines", "\(floor.lines)"), ("repeat", "\(rounds)"),
      ("floor_s", fixed(floor.seconds, 3)), ("floor_mb_s", fixed(mb / floor.seconds, 1)),
      ("floor_zlib_s", fixed(zlibFloorSeconds, 3)),
      ("gzip_s", fixed(gzipSeconds, 3)), ("gzip_mb_s", fixed(mb / gzipSeconds, 1)),
    ]
    if let replay {
      let wall = replay.wallSeconds
      print(row("feedbackd replay --flush", wall))
      print("")
      print("replay / floor time          \(fixed(wall / floor.seconds, 2))x")
      print("replay / gzip -dcf time      \(fixed(wall / gzipSeconds, 2))x   (goal <= 2)")
      print("replay peak RSS              \(fixed(Double(replay.peakRSSBytes) / 1e6)) MB   (goal < 100 MB)")
      let own = selfMaxRSSBytes()
      if replay.peakRSSBytes <= own + own / 20 {
        print(
          "  note: this process's own peak RSS is \(fixed(Double(own) / 1e6)) MB; a child's ru_maxrss cannot go below it"
        )
      }
      print("replay events/s              \(fixed(lines / wall, 0)) lines/s")
      let s = replay.summary
      if let rows = s.rows { print("rows written                 \(rows)") }
      if let secs = s.elapsedSeconds {
        print("replay's own elapsed         \(fixed(secs, 3)) s (from its summary; wall includes start-up)")
      }
      if let replayLines = s.lines, replayLines != floor.lines {
        print("note: feedbackd counted \(replayLines) lines, the floor \(floor.lines)")
      }
      json += [
        ("replay_s", fixed(wall, 3)), ("replay_mb_s", fixed(mb / wall, 1)),
        ("replay_events_s", fixed(lines / wall, 0)),
        ("replay_over_floor", fixed(wall / floor.seconds, 2)), ("replay_over_gzip", fixed(wall / gzipSeconds, 2)),
        ("peak_rss_mb", fixed(Double(replay.peakRSSBytes) / 1e6, 1)),
      ]
      if let rows = s.rows { json.append(("rows", "\(rows)")) }
      if let l = s.lines { json.append(("replay_lines", "\(l)")) }
      if let p = s.predictions { json.append(("predictions", "\(p)")) }
      if let e = s.elapsedSeconds { json.append(("replay_elapsed_s", fixed(e, 3))) }
    }
    print("")
    print("{" + json.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}")
  }

  private func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? " " + text : String(repeating: " ", count: width - text.count) + text
  }
}

/// One `feedbackd replay --flush` run.
struct ReplayRun {
  var wallSeconds: Double
  var peakRSSBytes: Int
  var summary: ReplaySummaryFigures
}

/// What feedbackd's replay summary says, where it could be read.
struct ReplaySummaryFigures {
  var lines: Int?
  var predictions: Int?
  var rows: Int?
  var elapsedSeconds: Double?

  /// Parses lines like `lines       1340000 (308.0 MB decompressed)`, `events      prediction 600000, …`,
  /// `rows        ctr 594000` and `elapsed     40.61 s, 7.6 MB/s`.
  init(text: String) {
    for line in text.split(separator: "\n") {
      let words = line.split(separator: " ")
      guard words.count >= 2 else { continue }
      switch words[0] {
      case "lines": lines = Int(words[1])
      case "events" where words.count >= 3 && words[1] == "prediction":
        predictions = Int(words[2].trimmingCharacters(in: CharacterSet(charactersIn: ",")))
      case "rows" where words.count >= 3: rows = Int(words[2].trimmingCharacters(in: CharacterSet(charactersIn: ",")))
      case "elapsed": elapsedSeconds = Double(words[1])
      default: break
      }
    }
  }
}

/// The job's state and output (DIR/state, DIR/out) moved into DIR/set-aside, not deleted: a
/// replay starts afresh. ext4 skips inodes freed in the last 60-300 s when it places a new file
/// (`recently_deleted`, reading each one's inode block), and the replay creates about 640 files
/// and directories: with the last output deleted just before, perf put that at about 3% of the
/// replay's samples (`Benchmarks/benchlock.py`'s `set_aside`, which the scripts use, does the
/// same). `clearSetAside` deletes them once the timed runs are done.
func setJobStateAside(dir: String) throws {
  let fm = FileManager.default
  let aside = dir + "/set-aside"
  try fm.createDirectory(atPath: aside, withIntermediateDirectories: true)
  for sub in ["state", "out"] where fm.fileExists(atPath: dir + "/" + sub) {
    let taken = try fm.contentsOfDirectory(atPath: aside).count
    try fm.moveItem(atPath: dir + "/" + sub, toPath: aside + "/\(sub)-\(taken)")
  }
}

/// Deletes what `setJobStateAside` moved (a replay started within minutes pays for it, see
/// there): after the timed runs.
func clearSetAside(dir: String) {
  try? FileManager.default.removeItem(atPath: dir + "/set-aside")
}

/// Sets the job's last state and output aside, writes back what is dirty (`sync`), runs the
/// replay, and checks that it succeeded.
func runReplay(feedbackd: String, dir: String) throws -> ReplayRun {
  try setJobStateAside(dir: dir)
  // The last round's output is written back first, untimed, so no round pays for another's.
  sync()
  let arguments = ["replay", "--config", dir + "/bench.yaml", "--flush"]
  let stdoutPath = dir + "/replay.stdout"
  let stderrPath = dir + "/replay.stderr"
  let result = try runChild(feedbackd, arguments, stdoutPath: stdoutPath, stderrPath: stderrPath)
  guard result.status == 0 else {
    let stderr = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
    throw BenchError(
      "\(commandLine(feedbackd, arguments)) failed (exit \(result.status)):\n\(stderr.suffix(2000))")
  }
  // ru_maxrss of RUSAGE_CHILDREN is the largest of all waited-for children: the gzip runs use
  // ~2 MB, so this is the largest replay's peak so far.
  let text = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
  return ReplayRun(
    wallSeconds: result.wallSeconds, peakRSSBytes: result.childrenMaxRSSBytes, summary: ReplaySummaryFigures(text: text)
  )
}

/// The corpus directory's benchmark lock, shared with the scripts (`Benchmarks/benchlock.py`):
/// an exclusive `flock` on DIR/.bench.lock, so two benchmarks never wipe each other's DIR/state
/// and DIR/out mid-run or time each other's CPU. The second one stops at once, naming the first.
func holdCorpus(dir: String, name: String) throws -> FileLock {
  try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
  do {
    return try FileLock.take(path: dir + "/.bench.lock", holder: "\(name), pid \(getpid())")
  } catch .held(let holder) {
    throw BenchError(
      "\(dir) is in use by another benchmark (\(holder.isEmpty ? "a process that wrote no name" : holder)); "
        + "run one at a time: they share its state/ and out/")
  } catch .failed(let message) {
    throw BenchError(message)
  }
}
