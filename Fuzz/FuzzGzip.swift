// libFuzzer target: streaming gzip inflate and line splitting (see Fuzz/run.sh).
// Compiled together with Sources/Gzip and Sources/LogTail into one module.

import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGzip(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let input = Array(UnsafeBufferPointer(start: data, count: size))
  // One shot and in small chunks must agree, on output and on the verdict.
  let whole = GzipInflater()
  var a: [UInt8] = []
  var errorA: GzipError?
  input.withUnsafeBytes { raw in
    do throws(GzipError) { try whole.inflate(raw, into: &a) } catch { errorA = error }
  }
  if errorA == nil {
    do throws(GzipError) { try whole.finish() } catch { errorA = error }
  }
  let chunked = GzipInflater()
  var b: [UInt8] = []
  var errorB: GzipError?
  var start = 0
  while start < input.count && errorB == nil {
    let end = min(input.count, start + 1 + (start % 7))
    Array(input[start..<end]).withUnsafeBytes { raw in
      do throws(GzipError) { try chunked.inflate(raw, into: &b) } catch { errorB = error }
    }
    start = end
  }
  if errorB == nil {
    do throws(GzipError) { try chunked.finish() } catch { errorB = error }
  }
  if (errorA == nil) != (errorB == nil) {
    fatalError("verdicts differ: \(String(describing: errorA)) vs \(String(describing: errorB))")
  }
  if errorA == nil && a != b { fatalError("outputs differ") }
  // The line reader over the same bytes as a file (gzip or plain, by magic).
  let path = NSTemporaryDirectory() + "fuzz-gzip-\(getpid())"
  FileManager.default.createFile(atPath: path, contents: Data(input))
  defer { unlink(path) }
  if let cursor = try? LineCursor(path: path, from: 0, maxLineBytes: 64) {
    var end: Int64 = 0
    while (try? cursor.step(maxLines: 16, flushPartial: true) { item in
      switch item {
      case .line(_, let offset, let lineEnd):
        precondition(offset == end && lineEnd > offset)
        end = lineEnd
      case .tooLong(let offset, let lineEnd):
        precondition(offset == end && lineEnd > offset)
        end = lineEnd
      }
    }) == .more {}
  }
  return 0
}
