import Foundation
import TestSupport
import Testing

@testable import FeedbackDaemon

/// The side logs (rejects, orphans, late events): bounded memory between commits, bounded
/// files, and after a crash exactly the committed records.
@Suite struct AppendLogTests {
  let root = Scratch.path("append-log")

  /// A record of exactly `size` bytes (the newline excluded) naming `n`.
  static func record(_ n: Int, size: Int = 99) -> [UInt8] {
    let text = "{\"n\":\(n),\"pad\":\"" + String(repeating: "x", count: size - 15 - String(n).count) + "\"}"
    precondition(text.utf8.count == size)
    return Array(text.utf8)
  }

  /// The numbers of the records in the log's files, oldest file first.
  func numbers(in directory: String) throws -> [Int] {
    let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".jsonl") }
      .sorted()
    var result: [Int] = []
    for name in names {
      let text = try String(contentsOfFile: directory + "/" + name, encoding: .utf8)
      for line in text.split(separator: "\n") {
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        result.append(object["n"] as! Int)
      }
    }
    return result
  }

  @Test func recordsAreWrittenAheadOfTheCommitAndMemoryStaysBounded() throws {
    defer { try? FileManager.default.removeItem(atPath: root) }
    let log = try AppendLog(
      directory: root, baseName: "rejects", committed: nil, maxFileBytes: 10_000, keepFiles: 3, flushBytes: 1000)
    for n in 0..<450 {
      log.append(Self.record(n))
      // Under the flush size: the record that reaches it is written with the others.
      #expect(log.bufferedBytes < 1000)
    }
    // 45 KB appended without a commit: written ahead, in files of 10 KB rotated as they fill
    // (the current one and the two before it are kept).
    let files = try FileManager.default.contentsOfDirectory(atPath: root).sorted()
    #expect(files == ["rejects-000003.jsonl", "rejects-000004.jsonl", "rejects-000005.jsonl"])
    let position = try log.prepareCommit()
    #expect(position == AppendLog.Position(index: 5, length: 5000))
    #expect(try numbers(in: root) == Array(200..<450))
  }

  @Test func aCrashBeforeTheCommitLeavesExactlyTheCommittedRecords() throws {
    defer { try? FileManager.default.removeItem(atPath: root) }
    var committed: AppendLog.Position
    do {
      let log = try AppendLog(
        directory: root, baseName: "rejects", committed: nil, maxFileBytes: 10_000, keepFiles: 4, flushBytes: 1000)
      for n in 0..<150 { log.append(Self.record(n)) }
      committed = try log.prepareCommit()
      // Written ahead of a commit that never comes, across a rotation.
      for n in 150..<260 { log.append(Self.record(n)) }
      #expect(try numbers(in: root).count > 150)
    }
    // The restart: bytes past the committed position are cut, later files removed.
    let log = try AppendLog(
      directory: root, baseName: "rejects", committed: committed, maxFileBytes: 10_000, keepFiles: 4, flushBytes: 1000)
    #expect(try numbers(in: root) == Array(0..<150))
    // The lines are read again: their records come once.
    for n in 150..<260 { log.append(Self.record(n)) }
    _ = try log.prepareCommit()
    #expect(try numbers(in: root) == Array(0..<260))
  }

  /// More rotations ahead of the commit than files are kept: the committed file is gone, and
  /// so are the ones right after it, but later ones are not.
  @Test func aCrashAfterManyRotationsLeavesNoUncommittedFile() throws {
    defer { try? FileManager.default.removeItem(atPath: root) }
    var committed: AppendLog.Position
    do {
      let log = try AppendLog(
        directory: root, baseName: "rejects", committed: nil, maxFileBytes: 10_000, keepFiles: 2, flushBytes: 1000)
      for n in 0..<150 { log.append(Self.record(n)) }
      committed = try log.prepareCommit()
      #expect(committed == AppendLog.Position(index: 2, length: 5000))
      for n in 150..<650 { log.append(Self.record(n)) }
      let files = try FileManager.default.contentsOfDirectory(atPath: root).sorted()
      #expect(files == ["rejects-000006.jsonl", "rejects-000007.jsonl"])
    }
    let log = try AppendLog(
      directory: root, baseName: "rejects", committed: committed, maxFileBytes: 10_000, keepFiles: 2, flushBytes: 1000)
    #expect(try FileManager.default.contentsOfDirectory(atPath: root).isEmpty)
    // The lines are read again: their records come once, in files numbered on from the commit.
    for n in 150..<650 { log.append(Self.record(n)) }
    _ = try log.prepareCommit()
    #expect(try numbers(in: root) == Array(550..<650))
  }

  @Test func aWriteThatFailsAheadOfTheCommitIsDoneByTheCommit() throws {
    defer { try? FileManager.default.removeItem(atPath: root) }
    let log = try AppendLog(
      directory: root, baseName: "rejects", committed: nil, maxFileBytes: 1 << 20, keepFiles: 4, flushBytes: 1000)
    // The log's file cannot be opened (a directory is in its place; permissions would not
    // stop root): records stay in memory.
    try FileManager.default.createDirectory(atPath: log.currentPath, withIntermediateDirectories: true)
    for n in 0..<50 { log.append(Self.record(n)) }
    #expect(log.bufferedBytes == 50 * 100)
    #expect(throws: (any Error).self) { try log.prepareCommit() }
    try FileManager.default.removeItem(atPath: log.currentPath)
    for n in 50..<60 { log.append(Self.record(n)) }
    let position = try log.prepareCommit()
    #expect(position.length == 60 * 100)
    #expect(try numbers(in: root) == Array(0..<60))
  }

  @Test func aFixedLogWritesAtCommitsOnly() throws {
    defer { try? FileManager.default.removeItem(atPath: root) }
    let log = try AppendLog(
      directory: root, baseName: "windows", committed: nil, fixedName: "windows.jsonl", flushBytes: 1000)
    for n in 0..<50 { log.append(Self.record(n)) }
    #expect(log.bufferedBytes == 50 * 100)
    #expect(!FileManager.default.fileExists(atPath: log.currentPath))
    _ = try log.prepareCommit()
    #expect(try numbers(in: root) == Array(0..<50))
  }
}
