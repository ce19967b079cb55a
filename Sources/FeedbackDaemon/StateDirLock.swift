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
public enum StateDirLock {
  /// Takes the lock of `stateDir` (created if missing), or throws naming the process holding it.
  public static func acquire(stateDir: String) throws -> FileLock {
    do {
      try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
    } catch {
      throw DaemonError.usage("state_dir: cannot create \(stateDir): \(error.localizedDescription)")
    }
    // The pid, for the next one's message (and for operators: `cat state_dir/lock`).
    do {
      return try FileLock.take(path: stateDir + "/lock", holder: "\(getpid())")
    } catch .held(let holder) {
      throw DaemonError.usage(
        "state_dir: \(stateDir) is in use by another feedbackd (pid \(holder.isEmpty ? "unknown" : holder)); "
          + "stop it first, or give this one a state_dir of its own")
    } catch .failed(let message) {
      throw DaemonError.usage("state_dir: \(message)")
    }
  }
}

/// An exclusive `flock` on a file that names its holder (one line, written once taken), held
/// until the object goes; the kernel drops it when the process ends, however it ends. The
/// state directory's lock, and the benchmarks' on their corpus directory.
public final class FileLock: Sendable {
  private let descriptor: Int32

  public enum Failure: Error {
    /// Another process holds it; what it wrote (empty if nothing).
    case held(by: String)
    case failed(String)
  }

  private init(descriptor: Int32) { self.descriptor = descriptor }

  deinit { close(descriptor) }

  /// Takes the lock of `path` (created if missing) and writes `holder` into the file.
  public static func take(path: String, holder: String) throws(Failure) -> FileLock {
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw .failed("cannot open \(path): \(String(cString: strerror(errno)))") }
    guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
      let error = errno
      var bytes = [UInt8](repeating: 0, count: 200)
      let count = max(0, pread(fd, &bytes, bytes.count, 0))
      close(fd)
      guard error == EWOULDBLOCK else { throw .failed("cannot lock \(path): \(String(cString: strerror(error)))") }
      throw .held(
        by: String(decoding: bytes[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
    let text = Array("\(holder)\n".utf8)
    if ftruncate(fd, 0) != 0 || pwrite(fd, text, text.count, 0) != text.count {
      let error = errno
      close(fd)
      throw .failed("cannot write \(path): \(String(cString: strerror(error)))")
    }
    return FileLock(descriptor: fd)
  }
}
