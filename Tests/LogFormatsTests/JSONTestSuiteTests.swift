import Foundation
import LogFormats
import Testing

/// Runs nst/JSONTestSuite's `test_parsing` files: `y_` must parse, `n_` must throw, `i_` must not crash.
///
/// The data lives at `<repo root>/../shared/testdata/JSONTestSuite/test_parsing`, where the repo root is
/// three levels above this file (`<root>/Tests/LogFormatsTests/<file>.swift`).
struct JSONTestSuiteTests {
  static let minimumFileCount = 300

  static func suiteDirectory(filePath: String = #filePath) -> URL {
    let repoRoot = URL(fileURLWithPath: filePath)
      .deletingLastPathComponent()  // LogFormatsTests
      .deletingLastPathComponent()  // Tests
      .deletingLastPathComponent()  // repo root
    return repoRoot.deletingLastPathComponent()
      .appendingPathComponent("shared/testdata/JSONTestSuite/test_parsing", isDirectory: true)
  }

  /// All suite files with the given prefix; records an issue if the directory is missing or too small.
  static func files(prefix: String) throws -> [URL] {
    let directory = suiteDirectory()
    let names = try #require(
      try? FileManager.default.contentsOfDirectory(atPath: directory.path),
      "JSONTestSuite directory missing: \(directory.path)"
    )
    let jsonNames = names.filter { $0.hasSuffix(".json") }
    try #require(
      jsonNames.count >= minimumFileCount,
      "JSONTestSuite at \(directory.path) has only \(jsonNames.count) files (expected ≥ \(minimumFileCount))"
    )
    return jsonNames.filter { $0.hasPrefix(prefix) }.sorted().map { directory.appendingPathComponent($0) }
  }

  @Test func directoryIsPresentAndComplete() throws {
    let all = try Self.files(prefix: "")
    #expect(all.count >= Self.minimumFileCount)
    #expect(try Self.files(prefix: "y_").count >= 90)
    #expect(try Self.files(prefix: "n_").count >= 180)
  }

  @Test func acceptsEveryYCase() throws {
    for file in try Self.files(prefix: "y_") {
      let bytes = [UInt8](try Data(contentsOf: file))
      do {
        let value = try JSONValue.parse(bytes)
        // And the value survives a write/parse round trip.
        var out: [UInt8] = []
        value.write(to: &out)
        let again = try JSONValue.parse(out)
        #expect(again == value, "round trip changed \(file.lastPathComponent)")
      } catch {
        Issue.record("\(file.lastPathComponent) should parse: \(error)")
      }
    }
  }

  @Test func rejectsEveryNCase() throws {
    for file in try Self.files(prefix: "n_") {
      let bytes = [UInt8](try Data(contentsOf: file))
      if let value = try? JSONValue.parse(bytes) {
        Issue.record("\(file.lastPathComponent) should be rejected, parsed as \(value.jsonText)")
      }
    }
  }

  @Test func survivesEveryICase() throws {
    var accepted = 0
    let files = try Self.files(prefix: "i_")
    for file in files {
      let bytes = [UInt8](try Data(contentsOf: file))
      if let value = try? JSONValue.parse(bytes) {
        accepted += 1
        #expect(try JSONValue.parse(value.jsonText) == value, "\(file.lastPathComponent)")
      }
    }
    #expect(files.count >= 30)
  }
}
