import Dataset

/// A bounded, size-rotated JSONL file for records kept for inspection (rejects, orphans,
/// late events), committed with everything else.
///
/// Its committed length is part of each checkpoint; on start, bytes past it (written by a
/// run that crashed before committing) are cut, so a record is never kept twice.
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

  init(
    directory: String, baseName: String, committed: Position?, maxFileBytes: Int64 = 64 << 20, keepFiles: Int = 4,
    fixedName: String? = nil
  ) throws {
    self.directory = directory
    self.baseName = baseName
    self.fixedName = fixedName
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
    // Files a crashed run started after the committed one hold nothing committed.
    var next = index + 1
    while fixedName == nil, FileSystem.exists(self.path(next)) {
      FileSystem.remove(self.path(next))
      next += 1
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
  }

  /// Writes and fsyncs what was appended; returns the position to commit.
  func prepareCommit() throws -> Position {
    if !buffer.isEmpty {
      if fd < 0 { fd = try FileSystem.openForAppend(path(index)) }
      try FileSystem.writeAll(fd, buffer, path: path(index))
      try FileSystem.sync(fd, path: path(index))
      written += Int64(buffer.count)
      buffer.removeAll(keepingCapacity: true)
    }
    let position = Position(index: index, length: written)
    if written >= maxFileBytes {
      // Start the next file; the committed position stays valid for this one.
      closeFile(fd)
      fd = -1
      index += 1
      written = 0
      FileSystem.remove(path(index - keepFiles))
    }
    return position
  }
}

enum DatasetLayoutPad {
  static func pad(_ n: Int) -> String {
    let s = String(n)
    return s.count >= 6 ? s : String(repeating: "0", count: 6 - s.count) + s
  }
}
