import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// What a finished child process did.
struct ChildResult {
  var status: Int32
  var wallSeconds: Double
  /// Largest `ru_maxrss` of any child this process has waited for so far, in bytes (Linux reports KiB).
  var childrenMaxRSSBytes: Int
}

/// Largest resident set of any terminated, waited-for child so far (`getrusage(RUSAGE_CHILDREN)`).
func childrenMaxRSSBytes() -> Int {
  var usage = rusage()
  #if os(Linux)
    guard getrusage(__rusage_who_t(RUSAGE_CHILDREN.rawValue), &usage) == 0 else { return 0 }
    return Int(usage.ru_maxrss) * 1024
  #else
    guard getrusage(RUSAGE_CHILDREN, &usage) == 0 else { return 0 }
    return Int(usage.ru_maxrss)
  #endif
}

/// This process's own peak resident set (`getrusage(RUSAGE_SELF)`), in bytes.
///
/// On Linux a spawned child's `ru_maxrss` starts from its parent's peak (the child shares the
/// parent's memory until it calls exec), so a child's peak RSS below this figure cannot be seen.
func selfMaxRSSBytes() -> Int {
  var usage = rusage()
  #if os(Linux)
    guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
    return Int(usage.ru_maxrss) * 1024
  #else
    guard getrusage(RUSAGE_SELF, &usage) == 0 else { return 0 }
    return Int(usage.ru_maxrss)
  #endif
}

/// Runs `executable` with `arguments` and waits for it.
///
/// `stdoutPath` / `stderrPath`: files that receive the output (truncated first); nil sends it to
/// /dev/null (stdout) or to this process's stderr (stderr).
func runChild(
  _ executable: String, _ arguments: [String], stdoutPath: String? = nil, stderrPath: String? = nil
) throws -> ChildResult {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: executable)
  process.arguments = arguments
  var handles: [FileHandle] = []
  func sink(_ path: String) throws -> FileHandle {
    guard FileManager.default.createFile(atPath: path, contents: nil) else {
      throw BenchError("cannot create \(path)")
    }
    guard let handle = FileHandle(forWritingAtPath: path) else { throw BenchError("cannot open \(path)") }
    handles.append(handle)
    return handle
  }
  process.standardOutput = try stdoutPath.map(sink) ?? FileHandle.nullDevice
  if let stderrPath { process.standardError = try sink(stderrPath) }
  process.standardInput = FileHandle.nullDevice
  let clock = ContinuousClock()
  let began = clock.now
  try process.run()
  process.waitUntilExit()
  let wall = seconds(clock.now - began)
  for handle in handles { try? handle.close() }
  let status = process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
  return ChildResult(status: status, wallSeconds: wall, childrenMaxRSSBytes: childrenMaxRSSBytes())
}

/// A command line as a shell would show it (for messages).
func commandLine(_ executable: String, _ arguments: [String]) -> String {
  ([executable] + arguments).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
}
