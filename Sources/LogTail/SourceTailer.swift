import Threads

/// What is known about one file, by fingerprint.
public struct TailPosition: Sendable, Equatable {
  /// Decompressed offset just past the last line handed out.
  public var offset: Int64
  /// Read to its end after rotation: never read again.
  public var finished: Bool
  /// Why the file was given up on (damaged gzip), if it was.
  public var quarantined: String?

  public init(offset: Int64, finished: Bool, quarantined: String?) {
    self.offset = offset
    self.finished = finished
    self.quarantined = quarantined
  }
}

/// Notable things a tailer saw, for logs and counters.
public enum TailEvent: Sendable {
  case opened(path: String, fingerprint: Fingerprint, offset: Int64)
  case finished(path: String, fingerprint: Fingerprint)
  /// A file shrank under an open reader (copytruncate).
  case truncated(path: String, fingerprint: Fingerprint, at: Int64)
  case quarantined(path: String, fingerprint: Fingerprint, reason: String)
  case skipped(path: String)
  case unreadable(path: String, error: String)
}

/// Where a tailer's lines and positions go.
public protocol TailDelegate: AnyObject {
  func position(of fingerprint: Fingerprint) throws -> TailPosition?
  func save(_ position: TailPosition, of fingerprint: Fingerprint, path: String) throws
  /// One line of the file `fingerprint` (at `file` now), starting at `offset`; `scanned` is
  /// what the tailer's `scanner` found in it ahead of time, if it did. `passed`: the lines
  /// right before it that were passed over (`LineScanBatch.append`), to be taken first.
  func line(
    _ bytes: UnsafeRawBufferPointer, file: String, fingerprint: Fingerprint, offset: Int64, scanned: ScannedLine?,
    passed: PassedLines
  ) throws
  func tooLong(file: String, fingerprint: Fingerprint, offset: Int64, end: Int64) throws
  /// Lines passed over that no `line` call told of (`LineItem.passed`).
  func passed(_ lines: PassedLines, file: String, fingerprint: Fingerprint) throws
  func note(_ event: TailEvent)
}

/// Follows one source's files through every rotation style, oldest first.
///
/// Each poll lists the globs, identifies files by fingerprint (with device and inode only as a
/// hint for files already open), and reads every file with unread data. A reader stays open on
/// its descriptor until the file is drained, so a file renamed, compressed (the plain copy
/// deleted) or deleted while open is read to its end first. A file that no longer is the live
/// file is finished once it is drained and has not grown for `rotateWait` (live mode) or
/// at once (replay). A file that shrinks under its reader was copy-truncated: the rest of its
/// content is in the copy, which has the same fingerprint and is resumed there.
public final class SourceTailer {
  public let patterns: [String]
  public let maxLineBytes: Int
  /// Live mode waits for rotated files to settle; replay treats every file as complete.
  public let live: Bool
  public let rotateWait: Int64
  /// `unowned(unsafe)`: the delegate owns the tailer, and a checked reference costs an atomic
  /// retain and release on every line.
  public unowned(unsafe) let delegate: any TailDelegate
  /// Scans lines ahead of time on each file's read-ahead thread, if set.
  public let scanner: (any LineScanner)?
  /// Read-ahead buffers and scanned lines passed from file to file (not live: see there).
  public let readAheadPool: ReadAheadPool?
  /// Live mode reads a plain file ahead (on a thread of its own, until it reaches the file's
  /// end) only when it opens it with at least this many unread bytes: a thread handing over a
  /// few lines at a time would cost more than it saves. Replay always reads ahead.
  public var readAheadBacklog: Int64 = 4 << 20
  /// How often and how long reading this source's files waited for their read-ahead threads.
  public let inputWaits: WaitTally

  final class OpenFile {
    let fingerprint: Fingerprint
    var path: String
    let cursor: LineCursor
    let stat: FileStat
    var lastSize: Int64
    var lastGrowth: Int64
    init(fingerprint: Fingerprint, path: String, cursor: LineCursor, stat: FileStat, now: Int64) {
      self.fingerprint = fingerprint
      self.path = path
      self.cursor = cursor
      self.stat = stat
      lastSize = stat.size
      lastGrowth = now
    }
  }

  private var open: [Fingerprint: OpenFile] = [:]
  /// Fingerprints of files seen complete (finished or quarantined) in this process.
  private var done = Set<Fingerprint>()
  /// Fingerprints of files not open, by (device, inode, size, mtime): gzip heads are not
  /// inflated again on every poll.
  private var fingerprintCache: [FileStat: Fingerprint] = [:]
  /// A discovery the next poll may read from instead of listing again, without descriptors
  /// (see `poll`), and when it was made. Replay: the last poll's, when that poll took its whole
  /// budget (listing and identifying on every poll of 4096 lines was 3% of the pipeline
  /// thread in the benchmark replay). Live, with `reusesListing`: the last one made, until
  /// names may have changed.
  private var reusableDiscovery: (discovery: Discovery, at: Int64)?
  /// How many times the files were listed and identified (tests).
  public private(set) var discoveries = 0

  /// Live: reuse the last listing while no name in the source's directories changed, for up
  /// to `relistInterval`; the owner says when names may have changed (`namesMayHaveChanged`,
  /// from inotify: `DirectoryWatcher`). Off: every poll lists and identifies the files, which
  /// at 10k lines/s (a poll every few milliseconds) was 11% of a live daemon's CPU (two
  /// `glob`s and a `stat` per file each time).
  public var reusesListing = false
  /// Live, with `reusesListing`: the longest a listing is reused without a hint (inotify
  /// misses changes on some file systems, and directories created later are not watched).
  public var relistInterval: Int64 = 1_000_000_000
  /// Set when reading from a discovery met a file that could not be opened as identified, or
  /// an older file that holds back everything newer: the next poll lists again.
  private var discoveryWentStale = false

  /// A file in the source's directories may have been created, renamed or deleted: the next
  /// poll lists the files again (with `reusesListing`; without, every poll does).
  public func namesMayHaveChanged() { if live { reusableDiscovery = nil } }

  public init(
    patterns: [String], maxLineBytes: Int, live: Bool, rotateWait: Int64 = 5_000_000_000,
    delegate: any TailDelegate, scanner: (any LineScanner)? = nil, inputWaits: WaitTally = WaitTally()
  ) {
    self.scanner = scanner
    readAheadPool = live ? nil : ReadAheadPool()
    self.inputWaits = inputWaits
    self.patterns = patterns
    self.maxLineBytes = maxLineBytes
    self.live = live
    self.rotateWait = rotateWait
    self.delegate = delegate
  }

  struct Candidate {
    var path: String
    var isLiveName: Bool
    var stat: FileStat
    /// The descriptor the fingerprint was read through, if one was opened for it.
    var reader: LogFileReader?
  }

  /// Reads up to `budget` lines from the files with unread data. Returns how many lines
  /// were handed out (0: nothing new anywhere).
  public func poll(budget: Int, now: Int64) throws -> Int {
    // Copytruncate first: a reader whose file shrank below what was read, or was truncated and
    // written again since the last poll (its head changed), lets go. Its unread rest is in the
    // copy, which has the same fingerprint and takes its place in the reading order below.
    for (fingerprint, file) in open.sorted(by: { $0.value.path < $1.value.path }) where !file.cursor.reader.isGzip {
      guard let stat = file.cursor.reader.fileStat() else { continue }
      if stat.size < file.cursor.position || file.cursor.reader.headFingerprint() != fingerprint {
        delegate.note(.truncated(path: file.path, fingerprint: fingerprint, at: stat.size))
        open[fingerprint] = nil
        // Its copy is a file the listing has not seen.
        reusableDiscovery = nil
      }
    }
    // Replay: a poll that took its whole budget stopped inside a file, and the next one reads
    // on in it with the same discovery; no new listing is needed for that. Coming up short
    // (a file ended, or is blocked), it lists the files again, so none that appeared meanwhile
    // is missed before the source reports nothing left. Live: the discovery holds while no
    // hint came, it is younger than `relistInterval`, and reading from it met nothing stale.
    var handed = 0
    if let cached = reusableDiscovery {
      reusableDiscovery = nil
      if !live || (cached.at <= now && now - cached.at < relistInterval) {
        discoveryWentStale = false
        handed = try readFiles(budget: budget, now: now, discovered: cached.discovery)
        if live ? !discoveryWentStale : handed >= budget {
          reusableDiscovery = cached
          return handed
        }
      }
    }
    // A rotation can shift names while the directory is being listed: a file seen as
    // `app.log.1` may be `app.log.2` a moment later while another takes its name. Discovery is
    // only used when a second listing agrees with the first, so no older file is missed.
    var discovered: Discovery?
    for _ in 0..<5 {
      if let d = try discover(now: now) {
        discovered = d
        break
      }
    }
    guard let discovered else { return handed }
    if fingerprintCache.count > 4096 { fingerprintCache = [:] }
    discoveryWentStale = false
    handed += try readFiles(budget: budget - handed, now: now, discovered: discovered)
    if live ? reusesListing && !discoveryWentStale : handed >= budget {
      // Without the descriptors identification opened: a reader kept here would outlive its
      // file's reading, read-ahead buffers and all (20 MB more peak RSS in the benchmark). A
      // file not opened yet is opened again by path, and checked to be the one identified.
      var reusable = discovered
      for i in reusable.work.indices { reusable.work[i].1?.reader = nil }
      reusableDiscovery = (reusable, now)
    }
    return handed
  }

  /// Reads up to `budget` lines from the files of `discovered`, oldest first.
  private func readFiles(budget: Int, now: Int64, discovered: Discovery) throws -> Int {
    var work = discovered.work
    let livePathOf = discovered.livePathOf
    let seen = discovered.seen
    // Readers whose file left the globs (deleted, or renamed away) are drained first: they are older.
    let orphaned = open.keys.filter { !seen.contains($0) }.sorted { open[$0]!.path < open[$1]!.path }
    work = orphaned.map { ($0, nil) } + work

    var handed = 0
    for (index, (fingerprint, candidate)) in work.enumerated() {
      guard handed < budget else { break }
      if done.contains(fingerprint) { continue }
      let file: OpenFile
      if let existing = open[fingerprint] {
        file = existing
      } else {
        guard let candidate else { continue }
        switch try openFile(fingerprint: fingerprint, candidate: candidate, now: now) {
        case .opened(let opened): file = opened
        case .skip: continue
        case .blocked:
          discoveryWentStale = true
          return handed
        }
      }
      let isLive = livePathOf[fingerprint] ?? false
      let (lines, blocked) = try read(file, budget: budget - handed, isLive: isLive, now: now)
      handed += lines
      if !live && !blocked && open[fingerprint] != nil && file.cursor.reader.readAheadReachedEnd {
        try openAhead(work, after: index, now: now)
      }
      // An older file that cannot be read to its end yet (a gzip still being written) holds
      // back everything newer: reading order is event order.
      if blocked {
        discoveryWentStale = true
        return handed
      }
    }
    return handed
  }

  /// Replay: once a file's read-ahead thread has read it to its end, the next file to read
  /// is opened and its own read-ahead started, while the pipeline works through the chunks
  /// still queued (up to `ReadAhead.depth`). Otherwise the next file's thread started only
  /// when the pipeline asked for its first chunk: the pipeline waited for that chunk to be
  /// read (inflated) and scanned, and the other core had nothing to do while the last chunks
  /// were taken, at every file of a replay.
  private func openAhead(_ work: [(Fingerprint, Candidate?)], after index: Int, now: Int64) throws {
    for (fingerprint, candidate) in work[(index + 1)...] {
      if done.contains(fingerprint) { continue }
      // Opened ahead already.
      if open[fingerprint] != nil { return }
      guard let candidate else { continue }
      switch try openFile(fingerprint: fingerprint, candidate: candidate, now: now) {
      case .opened(let file):
        file.cursor.reader.startReadAhead(untilTaken: ReadAhead.depthOpenedAhead)
        return
      case .skip: continue
      // The reading loop meets it again in its turn.
      case .blocked: return
      }
    }
  }

  struct Discovery {
    var work: [(Fingerprint, Candidate?)]
    var livePathOf: [Fingerprint: Bool]
    var seen: Set<Fingerprint>
  }

  /// Paths the globs match now, with their (device, inode).
  private func listing() -> [(String, FileStat)] {
    rotationOrdered(expandGlobs(patterns)).compactMap { path in FileStat.of(path: path).map { (path, $0) } }
  }

  /// Lists, identifies and orders the source's files; nil if the files moved meanwhile.
  private func discover(now: Int64) throws -> Discovery? {
    discoveries += 1
    let before = listing()
    var candidates: [Candidate] = []
    for (path, stat) in before {
      candidates.append(
        Candidate(path: path, isLiveName: RotationName(path: path).kind == .live, stat: stat, reader: nil))
    }
    // Map open readers to the paths they are now found under (renames keep the inode).
    var livePathOf: [Fingerprint: Bool] = [:]
    var work: [(Fingerprint, Candidate?)] = []
    var seen = Set<Fingerprint>()
    discovery: for var candidate in candidates {
      // A rotated file changed within `rotateWait` may still be being written (a copy or a
      // gzip in progress): its head is trusted only once complete.
      let settled = !live || now - candidate.stat.modified >= rotateWait
      let fingerprint: Fingerprint
      if let file = open.values.first(where: { $0.stat.sameFile == candidate.stat.sameFile }) {
        fingerprint = file.fingerprint
        file.path = candidate.path
      } else if let known = fingerprintCache[candidate.stat] {
        fingerprint = known
      } else {
        let complete = !candidate.isLiveName && settled
        do {
          // Identity is read through a descriptor and paired with that descriptor's stat: the
          // path may name another file by the time it is opened again (rotation shifts names).
          let reader = try LogFileReader(path: candidate.path)
          guard let stat = reader.fileStat(), let fp = reader.contentFingerprint(isComplete: complete) else {
            // Not identifiable yet. A rotated file here is older than everything after it:
            // nothing newer is read until it can be.
            if !candidate.isLiveName && !settled { break discovery }
            continue
          }
          fingerprint = fp
          candidate.stat = stat
          candidate.reader = reader
          if settled || candidate.isLiveName { fingerprintCache[stat] = fp }
        } catch {
          delegate.note(.unreadable(path: candidate.path, error: "\(error)"))
          continue
        }
      }
      if candidate.isLiveName { livePathOf[fingerprint] = true }
      guard seen.insert(fingerprint).inserted else { continue }
      work.append((fingerprint, candidate))
    }
    // Every file identified must still be where it was listed, and nothing new may have
    // appeared in between.
    var listed: [String: (UInt64, UInt64)] = [:]
    for (path, stat) in before { listed[path] = stat.sameFile }
    for case (_, let candidate?) in work {
      guard let inode = listed[candidate.path], inode == candidate.stat.sameFile else { return nil }
    }
    let after = listing()
    guard after.count == before.count,
      zip(before, after).allSatisfy({ $0.0 == $1.0 && $0.1.sameFile == $1.1.sameFile })
    else { return nil }
    return Discovery(work: work, livePathOf: livePathOf, seen: seen)
  }

  enum OpenResult {
    case opened(OpenFile)
    case skip
    case blocked
  }

  private func openFile(fingerprint: Fingerprint, candidate: Candidate, now: Int64) throws -> OpenResult {
    let position = try delegate.position(of: fingerprint)
    if let position, position.finished || position.quarantined != nil {
      done.insert(fingerprint)
      delegate.note(.skipped(path: candidate.path))
      return .skip
    }
    let offset = position?.offset ?? 0
    do {
      let reader = try candidate.reader ?? LogFileReader(path: candidate.path)
      // The path must still name the file that was identified; if a rotation moved it, the
      // next poll finds it under its new name.
      guard let stat = reader.fileStat(), stat.sameFile == candidate.stat.sameFile,
        candidate.reader != nil || reader.contentFingerprint(isComplete: true) == fingerprint
      else { return .blocked }
      reader.enableReadAhead(
        plainFiles: !live || stat.size - offset >= readAheadBacklog, scanner: scanner, maxLineBytes: maxLineBytes,
        waits: inputWaits, pool: readAheadPool)
      let cursor = try LineCursor(reader: reader, from: offset, maxLineBytes: maxLineBytes)
      let file = OpenFile(fingerprint: fingerprint, path: candidate.path, cursor: cursor, stat: stat, now: now)
      open[fingerprint] = file
      delegate.note(.opened(path: candidate.path, fingerprint: fingerprint, offset: offset))
      return .opened(file)
    } catch {
      // Fewer bytes than the saved position. A rotated file that has settled was read past
      // its end through the live name (copytruncate copies what was already read): it is done.
      // Otherwise (a gzip file still being written) try again later.
      if !candidate.isLiveName && (!live || now - candidate.stat.modified >= rotateWait) {
        done.insert(fingerprint)
        try delegate.save(
          TailPosition(offset: offset, finished: true, quarantined: nil), of: fingerprint, path: candidate.path)
        delegate.note(.finished(path: candidate.path, fingerprint: fingerprint))
        return .skip
      }
      delegate.note(.unreadable(path: candidate.path, error: "\(error)"))
      return candidate.isLiveName ? .skip : .blocked
    }
  }

  /// Reads from one open file; `blocked` when it is a gzip file still being written.
  private func read(_ file: OpenFile, budget: Int, isLive: Bool, now: Int64) throws -> (Int, blocked: Bool) {
    let cursor = file.cursor
    var handed = 0
    let path = file.path
    let delegate = self.delegate
    // Lines of a file that is no longer live are complete even without a final newline only
    // once it is settled; until then a trailing partial line is held like on the live file.
    let settled = !live || (!isLive && now - file.lastGrowth >= rotateWait)
    // A plain file can be truncated and rewritten (copytruncate) between two reads: bytes are
    // handed out only if, after reading them, the file still starts with the same head.
    let fingerprint = file.fingerprint
    let validate: (() -> Bool)? =
      cursor.reader.isGzip ? nil : { cursor.reader.headFingerprint() == fingerprint }
    // Lines, those passed over included: what the budget counts (a poll that took fewer than
    // its budget found the file drained, and goes on to the next).
    let step = try cursor.step(maxLines: budget, flushPartial: settled && !isLive, validate: validate) { item in
      switch item {
      case .line(let bytes, let offset, _):
        let passed = cursor.passed
        handed += 1 + passed.count
        try delegate.line(
          bytes, file: path, fingerprint: fingerprint, offset: offset,
          scanned: cursor.reader.scannedLine(offset: offset, length: bytes.count), passed: passed)
      case .tooLong(let offset, let end):
        handed += 1
        try delegate.tooLong(file: path, fingerprint: fingerprint, offset: offset, end: end)
      case .passed(let lines):
        handed += lines.count
        try delegate.passed(lines, file: path, fingerprint: fingerprint)
      }
    }
    if let size = cursor.reader.fileStat()?.size, size != file.lastSize {
      file.lastSize = size
      file.lastGrowth = now
    }
    if handed > 0 { file.lastGrowth = now }
    var position = TailPosition(offset: cursor.position, finished: false, quarantined: nil)
    var blocked = false
    if step == .invalidated {
      delegate.note(.truncated(path: path, fingerprint: file.fingerprint, at: cursor.reader.fileStat()?.size ?? 0))
      open[file.fingerprint] = nil
      blocked = true
    } else if step == .endOfData {
      if let damage = cursor.reader.damage {
        let stable = !live || now - (cursor.reader.fileStat()?.modified ?? 0) >= rotateWait
        if stable {
          position.quarantined = damage.description
          delegate.note(.quarantined(path: path, fingerprint: file.fingerprint, reason: damage.description))
          done.insert(file.fingerprint)
        }
        // Not stable: a gzip file still being written; reopen it later at the saved position.
        blocked = !stable
        open[file.fingerprint] = nil
      } else if !isLive && settled {
        position.finished = true
        done.insert(file.fingerprint)
        open[file.fingerprint] = nil
        delegate.note(.finished(path: path, fingerprint: file.fingerprint))
      } else if !live && cursor.reader.isGzip {
        open[file.fingerprint] = nil
      }
    }
    if handed > 0 || position.finished || position.quarantined != nil {
      try delegate.save(position, of: file.fingerprint, path: path)
    }
    return (handed, blocked)
  }
}
