import Dataset

/// A bounded, size-rotated JSONL file for records kept for inspection (rejects, orphans,
/// late events), committed with everything else.
///
/// Its committed length is part of each checkpoint; on start, bytes past it (written by a
/// run that crashed before committing) are cut, so a record is never kept twice.
///
/// Records are held in memory until the next commit, but a numbered log writes them out (and
/// rotates) as soon as `flushBytes` are held: a replay commits every few million lines, and
/// with every line rejected (a source read in the wrong format) the records between two
/// commits took gigabytes (2 M junk lines of 250 bytes: peak RSS 763 MB). Bytes written ahead
/// of their commit are cut on start like any others past the committed length.
final class AppendLog {
  struct Position: Codable, Equatable, Sendable {
    var index: Int
    var length: Int64
  }

  let directory: String
  let baseName: String
  let maxFileBytes: Int64
  let keepFiles: Int
  /// A single, never rotated file of this name instead of numbered ones.
  let fixedName: String?
  private var index: Int
  private var written: Int64
  private var fd: Int32 = -1
  private var buffer: [UInt8] = []
  /// A numbered log writes what it holds once it holds this many bytes (`nil`: a fixed one,
  /// written at commits only).
  let flushBytes: Int?
  /// A write ahead of a commit failed: the file may hold part of the buffer past `written`,
  /// cut before the next write. Records stay in memory until a commit's write succeeds.
  private var aheadWriteFailed = false
  /// Bytes were written to the current file since it was last fsynced.
  private var unsynced = false
  /// Bytes held in memory, not written yet (tests).
  var bufferedBytes: Int { buffer.count }

  init(
    directory: String, baseName: String, committed: Position?, maxFileBytes: Int64 = 64 << 20, keepFiles: Int = 4,
    fixedName: String? = nil, flushBytes: Int = 1 << 20
  ) throws {
    self.directory = directory
    self.baseName = baseName
    self.fixedName = fixedName
    self.flushBytes = fixedName == nil ? max(1, flushBytes) : nil
    self.maxFileBytes = fixedName == nil ? maxFileBytes : .max
    self.keepFiles = keepFiles
    index = committed?.index ?? 1
    written = committed?.length ?? 0
    try FileSystem.makeDirectories(directory)
    let path = self.path(index)
    if FileSystem.exists(path) {
      try FileSystem.truncate(path, to: written)
    } else {
      written = 0
    }
    // Files a crashed run started after the committed one hold nothing committed. Records
    // written ahead of a commit may have rotated through more files than are kept, so the
    // committed file and those right after it may be gone while later ones are not: every
    // file numbered past the committed one goes.
    if fixedName == nil {
      let prefix = baseName + "-"
      for name in FileSystem.list(directory) where name.hasPrefix(prefix) && name.hasSuffix(".jsonl") {
        if let number = Int(name.dropFirst(prefix.count).dropLast(".jsonl".count)), number > index {
          FileSystem.remove(directory + "/" + name)
        }
      }
    }
  }

  deinit {
    if fd >= 0 { closeFile(fd) }
  }

  func path(_ index: Int) -> String {
    if let fixedName { return "\(directory)/\(fixedName)" }
    return "\(directory)/\(baseName)-\(DatasetLayoutPad.pad(index)).jsonl"
  }

  var currentPath: String { path(index) }

  func append(_ record: [UInt8]) {
    buffer.append(contentsOf: record)
    buffer.append(UInt8(ascii: "\n"))
    if let flushBytes, buffer.count >= flushBytes, !aheadWriteFailed {
      // Ahead of the commit; should it fail, the commit writes them (or says why it cannot).
      do {
        let start = written
        try writeBuffer()
        // Written back from now on, so the commit's fsync does not wait for all of it: a
        // replay's mid-run commit waited 16 ms for 9 MB of rejects (`strace -T`).
        FileSystem.startWriteback(fd, offset: start, count: written - start)
        if written >= maxFileBytes {
          // The next commit counts this file's bytes as committed: they must be durable.
          try syncFile()
          rotate()
        }
      } catch {
        aheadWriteFailed = true
      }
    }
  }

  /// Writes what is held to the current file (not synced).
  private func writeBuffer() throws {
    guard !buffer.isEmpty else { return }
    let path = path(index)
    if fd < 0 { fd = try FileSystem.openForAppend(path) }
    if aheadWriteFailed {
      // Whatever part of a failed write reached the file goes first.
      try FileSystem.truncate(path, to: written)
      aheadWriteFailed = false
    }
    do {
      try FileSystem.writeAll(fd, buffer, path: path)
    } catch {
      aheadWriteFailed = true
      throw error
    }
    written += Int64(buffer.count)
    unsynced = true
    // A buffer that grew past twice the flush size (a fixed log, or writes that failed) goes.
    buffer.removeAll(keepingCapacity: buffer.capacity <= 2 * (flushBytes ?? 0))
  }

  private func syncFile() throws {
    guard unsynced, fd >= 0 else { return }
    try FileSystem.sync(fd, path: path(index))
    unsynced = false
  }

  /// Starts the next file, and lets the oldest kept one go.
  private func rotate() {
    closeFile(fd)
    fd = -1
    index += 1
    written = 0
    FileSystem.remove(path(index - keepFiles))
  }

  /// Writes and fsyncs what was appended; returns the position to commit.
  func prepareCommit() throws -> Position {
    try writeBuffer()
    try syncFile()
    let position = Position(index: index, length: written)
    // Start the next file; the committed position stays valid for this one.
    if written >= maxFileBytes { rotate() }
    return position
  }
}

enum DatasetLayoutPad {
  static func pad(_ n: Int) -> String {
    let s = String(n)
    return s.count >= 6 ? s : String(repeating: "0", count: 6 - s.count) + s
  }
}
