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
  // Straight into a small buffer, as the read-ahead inflates into its chunks: stopping when
  // the buffer is full (and asking again with no input for what the decoder held back) loses nothing.
  let stepped = GzipInflater()
  var c: [UInt8] = []
  let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 + size % 13, alignment: 1)
  defer { buffer.deallocate() }
  var errorC = input.withUnsafeBytes { stepped.inflate($0, through: buffer) { c += $0 } }
  if errorC == nil {
    do throws(GzipError) { try stepped.finish() } catch { errorC = error }
  }
  if (errorA == nil) != (errorC == nil) {
    fatalError("verdicts differ (into a buffer): \(String(describing: errorA)) vs \(String(describing: errorC))")
  }
  if errorA == nil && a != c { fatalError("outputs differ (into a buffer)") }
  if (errorA == nil) != (errorB == nil) {
    fatalError("verdicts differ: \(String(describing: errorA)) vs \(String(describing: errorB))")
  }
  if errorA == nil && a != b { fatalError("outputs differ") }
  // Against zlib: what zlib reads to a clean end, ISA-L (with our header parsing) reads to the
  // same bytes. (ISA-L may accept a few malformed streams zlib rejects; that is not compared.)
  if let reference = zlibInflate(input) {
    if let errorA { fatalError("zlib reads the stream, we do not: \(errorA)") }
    if a != reference { fatalError("outputs differ from zlib's") }
  }
  // The input as data: deflated by zlib at a level the input picks, then inflated in pieces the
  // input sizes, it comes back exactly.
  let level = Int32(input.first.map { $0 % 10 } ?? 6)
  let packed = GzipDeflater.compress(input, level: level) + GzipDeflater.compress(Array(input.prefix(40)), level: 1)
  let back = GzipInflater()
  var unpacked: [UInt8] = []
  var at = 0
  while at < packed.count {
    let end = min(packed.count, at + 1 + Int(input.isEmpty ? 0 : input[at % input.count]) * 3)
    let failed = Array(packed[at..<end]).withUnsafeBytes { back.inflate($0, through: buffer) { unpacked += $0 } }
    if let failed { fatalError("a zlib stream does not inflate: \(failed)") }
    at = end
  }
  do throws(GzipError) { try back.finish() } catch { fatalError("a zlib stream ends early: \(error)") }
  if unpacked != input + input.prefix(40) { fatalError("a zlib stream inflates to other bytes") }
  // The line reader over the same bytes as a file (gzip or plain, by magic).
  let path = NSTemporaryDirectory() + "fuzz-gzip-\(getpid())"
  FileManager.default.createFile(atPath: path, contents: Data(input))
  defer { unlink(path) }
  // In line, and read ahead with every line scanned there (a copy of it): the same items, and
  // a line's scan is of exactly its bytes.
  var runs: [[String]] = []
  for scanAhead in [false, true] {
    guard let reader = try? LogFileReader(path: path) else { return 0 }
    if scanAhead { reader.enableReadAhead(plainFiles: true, scanner: FuzzCopyScanner(), maxLineBytes: 64) }
    guard let cursor = try? LineCursor(reader: reader, from: 0, maxLineBytes: 64) else { return 0 }
    var end: Int64 = 0
    var items: [String] = []
    while (try? cursor.step(maxLines: 16, flushPartial: true) { item in
      switch item {
      case .line(let bytes, let offset, let lineEnd):
        precondition(offset == end && lineEnd > offset)
        end = lineEnd
        items.append("\(offset) \(lineEnd) \(Array(bytes))")
        if let hit = reader.scannedLine(offset: offset, length: bytes.count) {
          precondition((hit.batch as! FuzzCopyScanner.Batch).lines[hit.index] == Array(bytes))
        }
      case .tooLong(let offset, let lineEnd):
        precondition(offset == end && lineEnd > offset)
        end = lineEnd
        items.append("\(offset) \(lineEnd) too long")
      }
    }) == .more {}
    items.append("damage \(String(describing: reader.damage))")
    runs.append(items)
  }
  precondition(runs[0] == runs[1], "read ahead, the lines differ")
  return 0
}

/// zlib's inflate of a multi-member gzip stream (`ZlibInflater`): its output when it reads to a
/// clean end.
func zlibInflate(_ input: [UInt8]) -> [UInt8]? {
  let zlib = ZlibInflater()
  let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 1)
  defer { buffer.deallocate() }
  var output: [UInt8] = []
  let error = input.withUnsafeBytes { zlib.inflate($0, through: buffer) { output += $0 } }
  return error == nil && !zlib.insideMember ? output : nil
}

struct FuzzCopyScanner: LineScanner {
  final class Batch: LineScanBatch {
    var lines: [[UInt8]] = []
    func removeAll() { lines.removeAll() }
    func append(_ line: UnsafeRawBufferPointer) { lines.append(Array(line)) }
  }
  func makeBatch() -> any LineScanBatch { Batch() }
}
