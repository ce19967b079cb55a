import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// An exclusive lock on a state directory (`flock` on `state_dir/lock`), held by `run` and
/// `replay` for as long as they use it.
///
/// One state directory is one pipeline's: its read positions, join state and segment numbers.
/// Before the lock, SQLite's write lock was the only guard. A second `replay` beside a running
/// daemon waited out the busy timeout (10 s) and failed with `SQLite error 5: database is
/// locked`. A second `run` retried that forever, logging an error every few seconds, and never
/// stopped. Now either stops at start with one line naming the process that holds the directory.
/// The kernel lets go of the lock when its process ends, however it ends (SIGKILL included), so
/// nothing is left to clean up after a crash. `status` only reads, and takes no lock.
public final class StateDirLock: Sendable {
  private let descriptor: Int32
  public let path: String

  private init(descriptor: Int32, path: String) {
    self.descriptor = descriptor
    self.path = path
  }

  deinit { close(descriptor) }

  /// Takes the lock of `stateDir` (created if missing), or throws naming the process holding it.
  public static func acquire(stateDir: String) throws -> StateDirLock {
    do {
      try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
    } catch {
      throw DaemonError.usage("state_dir: cannot create \(stateDir): \(error.localizedDescription)")
    }
    let path = stateDir + "/lock"
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      throw DaemonError.usage("state_dir: cannot open \(path): \(String(cString: strerror(errno)))")
    }
    guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
      let error = errno
      let holder = Self.holder(fd)
      close(fd)
      guard error == EWOULDBLOCK else {
        throw DaemonError.usage("state_dir: cannot lock \(path): \(String(cString: strerror(error)))")
      }
      throw DaemonError.usage(
        "state_dir: \(stateDir) is in use by another feedbackd (\(holder.map { "pid \($0)" } ?? "pid unknown")); "
          + "stop it first, or give this one a state_dir of its own")
    }
    // Who holds it, for the next one's message (and for operators: `cat state_dir/lock`).
    let text = Array("\(getpid())\n".utf8)
    if ftruncate(fd, 0) != 0 || pwrite(fd, text, text.count, 0) != text.count {
      let error = errno
      close(fd)
      throw DaemonError.usage("state_dir: cannot write \(path): \(String(cString: strerror(error)))")
    }
    return StateDirLock(descriptor: fd, path: path)
  }

  /// The process id written in the lock file by the process that holds it, if readable.
  private static func holder(_ fd: Int32) -> Int32? {
    var bytes = [UInt8](repeating: 0, count: 32)
    let count = pread(fd, &bytes, bytes.count, 0)
    guard count > 0 else { return nil }
    let text = String(decoding: bytes[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    return Int32(text)
  }
}
