import Dataset
import Foundation
import Testing

@Suite struct FileSystemTests {
  @Test func makesEveryMissingDirectoryOfAPath() throws {
    let dir = try tempDir()
    let deep = dir + "/ctr/date=2026-11-30/hour=17"
    try FileSystem.makeDirectories(deep)
    var isDirectory: ObjCBool = false
    #expect(FileManager.default.fileExists(atPath: deep, isDirectory: &isDirectory) && isDirectory.boolValue)
    // Again: the directory is there, nothing to do.
    try FileSystem.makeDirectories(deep)
    // A sibling under an existing parent, written with a trailing slash.
    try FileSystem.makeDirectories(dir + "/ctr/date=2026-11-30/hour=18/")
    #expect(FileManager.default.fileExists(atPath: dir + "/ctr/date=2026-11-30/hour=18"))
  }

  @Test func namesTheComponentThatIsAFile() throws {
    let dir = try tempDir()
    #expect(FileManager.default.createFile(atPath: dir + "/plain", contents: Data("x".utf8)))
    do {
      try FileSystem.makeDirectories(dir + "/plain/below/deeper")
      Issue.record("made a directory under a file")
    } catch let error as FileSystemError {
      #expect(error.operation == "mkdir")
      #expect(error.path == dir + "/plain/below")
      #expect(error.code == ENOTDIR)
    }
  }
}
