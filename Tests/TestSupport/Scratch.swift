import Foundation

/// Where tests put their files: one directory per test process
/// (`$TMPDIR/feedbackd-tests-<pid>/`), removed when the process exits, so that runs leave
/// nothing behind in the temporary directory however a test ends. Set
/// `FEEDBACKD_KEEP_TEST_FILES=1` to keep it for a look after a failure (its path is printed).
public enum Scratch {
  /// A fresh path `<root>/<tag>-<uuid><suffix>` inside the process's scratch directory (not
  /// created: the caller makes a file or a directory there).
  public static func path(_ tag: String, suffix: String = "") -> String {
    root + "/\(tag)-\(UUID().uuidString)\(suffix)"
  }

  /// A fresh, created directory (`path(tag)`).
  public static func directory(_ tag: String) throws -> String {
    let dir = path(tag)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
  }

  /// The process's scratch directory, made on first use; its removal is registered then.
  public static let root: String = {
    let dir = FileManager.default.temporaryDirectory
      .appendingPathComponent("feedbackd-tests-\(getpid())").path
    try? FileManager.default.removeItem(atPath: dir)
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    if ProcessInfo.processInfo.environment["FEEDBACKD_KEEP_TEST_FILES"] == "1" {
      FileHandle.standardError.write(Data("test files are kept in \(dir)\n".utf8))
    } else {
      atexit { removeRoot() }
    }
    return dir
  }()

  private static func removeRoot() {
    try? FileManager.default.removeItem(atPath: root)
  }
}
