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
  // In line, read ahead with every line scanned there (a copy of it), and read ahead passing
  // over the lines the scanner says to: the same items (each run passed over standing for
  // exactly the lines it replaces), and a line's scan is of exactly its bytes.
  var runs: [[String]] = []
  for (scanAhead, passing) in [(false, false), (true, false), (true, true)] {
    guard let reader = try? LogFileReader(path: path) else { return 0 }
    if scanAhead {
      reader.enableReadAhead(plainFiles: true, scanner: FuzzCopyScanner(passing: passing), maxLineBytes: 64)
    }
    guard let cursor = try? LineCursor(reader: reader, from: 0, maxLineBytes: 64) else { return 0 }
    var end: Int64 = 0
    var items: [String] = []
    /// The lines of the first run that `passed` stands for, checked against it.
    func expand(_ passed: PassedLines) {
      guard !passed.isEmpty else { return }
      precondition(passed.offset == end && passed.end > end, "lines passed over out of place")
      let lines = runs[0][items.count..<items.count + passed.count]
      var bytes: Int64 = 0
      var latest = Int64.min
      for line in lines {
        // "offset end [b0, b1, …]"
        let fields = line.split(separator: " ", maxSplits: 2)
        precondition(fields.count == 3 && fields[2].hasPrefix("["), "a line passed over that is not one")
        let length = fields[2] == "[]" ? 0 : fields[2].filter { $0 == "," }.count + 1
        let first = UInt8(fields[2].dropFirst().prefix { $0 != "," && $0 != "]" }) ?? 1
        precondition(length > 0 && FuzzCopyScanner.passes(first), "a line passed over that the scanner keeps")
        bytes += Int64(length) + 1
        latest = max(latest, Int64(length))
      }
      precondition(lines.last.map { $0.split(separator: " ")[1] == "\(passed.end)" } ?? false, "wrong end")
      precondition(bytes == passed.bytes && latest == passed.latest, "lines passed over counted wrong")
      items += lines
      end = passed.end
    }
    while (try? cursor.step(maxLines: 16, flushPartial: true) { item in
      switch item {
      case .line(let bytes, let offset, let lineEnd):
        expand(cursor.passed)
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
      case .passed(let passed):
        expand(passed)
      }
    }) == .more {}
    items.append("damage \(String(describing: reader.damage))")
    runs.append(items)
  }
  precondition(runs[0] == runs[1], "read ahead, the lines differ")
  precondition(runs[0] == runs[2], "read ahead passing lines over, the lines differ")
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

/// Keeps a copy of each line; with `passing`, has the cursor pass over the non-empty lines
/// whose first byte `passes`, with their length as their time.
struct FuzzCopyScanner: LineScanner {
  var passing = false
  final class Batch: LineScanBatch {
    let passing: Bool
    var lines: [[UInt8]] = []
    init(passing: Bool) { self.passing = passing }
    func removeAll() { lines.removeAll() }
    func append(_ line: UnsafeRawBufferPointer) -> Int64? {
      lines.append(Array(line))
      guard passing, let first = line.first, FuzzCopyScanner.passes(first) else { return nil }
      return Int64(line.count)
    }
  }
  func makeBatch() -> any LineScanBatch { Batch(passing: passing) }
  static func passes(_ first: UInt8) -> Bool { first & 1 == 0 }
}
