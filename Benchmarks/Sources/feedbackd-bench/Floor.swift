import Foundation
import Gzip

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// What the in-process floor read.
struct FloorResult {
  var files = 0
  var gzipFiles = 0
  var diskBytes = 0
  /// Decompressed bytes.
  var bytes = 0
  var lines = 0
  var longestLine = 0
  var seconds = 0.0
}

/// What inflates the floor's gzip files.
enum FloorInflate {
  /// `GzipInflater`, the replay's own (ISA-L's inflate).
  case replays
  /// zlib's `inflate`, as the project used before ISA-L: measured beside it, it is the reason
  /// for that dependency.
  case zlib
}

/// The in-process floor: read each file (1 MiB reads), inflate it when it starts with the gzip
/// magic (`GzipInflater`, multi-member; or zlib's inflate), and split the decompressed bytes into
/// lines with `memchr`, counting lines and bytes. One thread — no parsing, no labeling, no
/// writing: the least work any replay of these files has to do.
func measureFloor(files: [String], inflate: FloorInflate = .replays) throws -> FloorResult {
  let clock = ContinuousClock()
  let began = clock.now
  var result = FloorResult()
  let readSize = 1 << 20
  let input = UnsafeMutableRawBufferPointer.allocate(byteCount: readSize, alignment: 16)
  defer { input.deallocate() }
  let inflated = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
  defer { inflated.deallocate() }

  for path in files {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw BenchError("cannot open \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var splitter = LineSplitter()
    var inflater: GzipInflater?
    var zlib: ZlibInflater?
    var first = true
    while true {
      let n = read(fd, input.baseAddress, readSize)
      if n < 0 {
        if errno == EINTR { continue }
        throw BenchError("cannot read \(path): \(String(cString: strerror(errno)))")
      }
      if n == 0 { break }
      result.diskBytes += n
      let chunk = UnsafeRawBufferPointer(rebasing: input[0..<n])
      if first {
        first = false
        if GzipInflater.hasMagic(chunk) {
          switch inflate {
          case .replays: inflater = GzipInflater()
          case .zlib: zlib = ZlibInflater()
          }
          result.gzipFiles += 1
        }
      }
      if let zlib {
        if let error = zlib.inflate(chunk, through: inflated, { splitter.feed($0) }) {
          throw BenchError("\(path): \(error)")
        }
      } else if let inflater {
        // Straight into one 1 MiB buffer, as the replay's read-ahead inflates into its chunks.
        if let error = inflater.inflate(chunk, through: inflated, { splitter.feed($0) }) {
          throw BenchError("\(path): \(error)")
        }
      } else {
        splitter.feed(chunk)
      }
    }
    if let inflater {
      do {
        try inflater.finish()
      } catch {
        throw BenchError("\(path): \(error)")
      }
    }
    if let zlib, zlib.insideMember { throw BenchError("\(path): gzip stream is truncated (zlib)") }
    splitter.finish()
    result.files += 1
    result.bytes += splitter.bytes
    result.lines += splitter.lines
    result.longestLine = max(result.longestLine, splitter.longestLine)
  }
  result.seconds = seconds(clock.now - began)
  return result
}

/// Splits a byte stream into lines with `memchr`, across chunk boundaries.
struct LineSplitter {
  var bytes = 0
  var lines = 0
  var longestLine = 0
  /// Bytes of the line not yet ended by a newline.
  private var partial = 0

  mutating func feed(_ chunk: UnsafeRawBufferPointer) {
    guard let base = chunk.baseAddress, chunk.count > 0 else { return }
    bytes += chunk.count
    var start = base
    let end = base + chunk.count
    while start < end, let newline = memchr(start, 0x0A, end - start) {
      let nl = UnsafeRawPointer(newline)
      let length = partial + (nl - start)
      if length > longestLine { longestLine = length }
      lines += 1
      partial = 0
      start = nl + 1
    }
    partial += end - start
  }

  /// Counts a last line without a trailing newline (a rotated file's last line is a line).
  mutating func finish() {
    if partial > 0 {
      lines += 1
      if partial > longestLine { longestLine = partial }
      partial = 0
    }
  }
}
