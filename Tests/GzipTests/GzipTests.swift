import Foundation
import Gzip
import TestSupport
import Testing

@Suite struct GzipTests {
  let text = Array((0..<5000).map { "line \($0) {\"event\":\"x\"}\n" }.joined().utf8)

  @Test func roundTrip() throws {
    let compressed = GzipDeflater.compress(text)
    #expect(GzipInflater.hasMagic(compressed))
    #expect(try GzipInflater.decompress(compressed) == text)
  }

  @Test func multiMemberIsReadWhole() throws {
    let a = Array(text[0..<1000])
    let b = Array(text[1000...])
    let joined = GzipDeflater.compress(a) + GzipDeflater.compress(b)
    #expect(try GzipInflater.decompress(joined) == text)
  }

  @Test func streamingInTinyChunksAcrossMembers() throws {
    let joined = GzipDeflater.compress(Array(text[0..<777])) + GzipDeflater.compress(Array(text[777...]))
    let inflater = GzipInflater()
    var out: [UInt8] = []
    for start in stride(from: 0, to: joined.count, by: 7) {
      let chunk = Array(joined[start..<min(start + 7, joined.count)])
      try chunk.withUnsafeBytes { try inflater.inflate($0, into: &out) }
    }
    try inflater.finish()
    #expect(out == text)
  }

  /// Inflates `input` through a buffer of `size` bytes (`inflate(_:through:_:)`).
  static func inflateThrough(_ input: [UInt8], size: Int, _ inflater: GzipInflater) -> ([UInt8], GzipError?) {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 1)
    defer { buffer.deallocate() }
    var out: [UInt8] = []
    let error = input.withUnsafeBytes { inflater.inflate($0, through: buffer) { out += $0 } }
    return (out, error)
  }

  /// Inflating into a buffer stops when it is full, and the decoder may hold decoded bytes back even
  /// when all the input was taken: the next call, with no input, must yield them.
  @Test(arguments: [1, 3, 64, 4096, 1 << 20])
  func inflatingStraightIntoBuffersOfAnySize(size: Int) throws {
    let joined = GzipDeflater.compress(Array(text[0..<777])) + GzipDeflater.compress(Array(text[777...]))
    let inflater = GzipInflater()
    let (out, error) = Self.inflateThrough(joined, size: size, inflater)
    #expect(error == nil)
    try inflater.finish()
    #expect(out == text)
  }

  /// At the end of a truncated stream, all input is taken while a full buffer left decoded
  /// bytes in the decoder: asking again with no input yields them, as much as one big buffer gets.
  @Test(arguments: [1, 5, 100])
  func aTruncatedStreamYieldsAllItsBytesIntoSmallBuffers(size: Int) throws {
    let compressed = GzipDeflater.compress(text)
    let cut = Array(compressed[0..<(compressed.count / 2)])
    let (whole, _) = Self.inflateThrough(cut, size: 1 << 20, GzipInflater())
    let inflater = GzipInflater()
    let (out, error) = Self.inflateThrough(cut, size: size, inflater)
    #expect(error == nil)
    #expect(throws: GzipError.truncated) { try inflater.finish() }
    // Compared as a flag: a failure would otherwise print both arrays whole.
    let same = out == whole
    #expect(out.count == whole.count)
    #expect(same)
  }

  @Test func inflatingStraightIntoABufferKeepsTheGoodPrefixOfACorruptStream() throws {
    let first = GzipDeflater.compress(Array(text[0..<2000]))
    var second = GzipDeflater.compress(Array(text[2000...]))
    for i in 20..<60 { second[i] = 0xFF }
    let (out, error) = Self.inflateThrough(first + second, size: 1000, GzipInflater())
    #expect(error != nil)
    #expect(out.count >= 2000)
    #expect(Array(out[0..<2000]) == Array(text[0..<2000]))
  }

  @Test func truncatedStreamKeepsWhatCameBefore() throws {
    let compressed = GzipDeflater.compress(text)
    let cut = Array(compressed[0..<(compressed.count / 2)])
    let inflater = GzipInflater()
    var out: [UInt8] = []
    try cut.withUnsafeBytes { try inflater.inflate($0, into: &out) }
    #expect(throws: GzipError.truncated) { try inflater.finish() }
    #expect(!out.isEmpty)
    #expect(Array(text[0..<out.count]) == out)
  }

  @Test func missingTrailerIsTruncated() throws {
    let compressed = GzipDeflater.compress(text)
    #expect(throws: GzipError.truncated) { try GzipInflater.decompress(Array(compressed.dropLast(4))) }
  }

  @Test func crcMismatchIsCorrupt() throws {
    var compressed = GzipDeflater.compress(text)
    compressed[compressed.count - 6] ^= 0xFF  // inside the CRC-32 of the trailer
    #expect {
      try GzipInflater.decompress(compressed)
    } throws: { error in
      if case .corrupt = error as? GzipError { return true }
      return false
    }
  }

  @Test func lengthMismatchIsCorrupt() throws {
    var compressed = GzipDeflater.compress(text)
    compressed[compressed.count - 3] ^= 0x01  // inside ISIZE, the length of the trailer
    #expect {
      try GzipInflater.decompress(compressed)
    } throws: { error in
      if case .corrupt = error as? GzipError { return true }
      return false
    }
  }

  @Test func corruptBlockKeepsGoodPrefix() throws {
    let first = GzipDeflater.compress(Array(text[0..<2000]))
    var second = GzipDeflater.compress(Array(text[2000...]))
    for i in 20..<60 { second[i] = 0xFF }
    let inflater = GzipInflater()
    var out: [UInt8] = []
    let joined = first + second
    #expect(throws: (any Error).self) {
      try joined.withUnsafeBytes { try inflater.inflate($0, into: &out) }
    }
    #expect(out.count >= 2000)
    #expect(Array(out[0..<2000]) == Array(text[0..<2000]))
  }

  /// A member whose header carries every optional field (FEXTRA, FNAME, FCOMMENT and a header
  /// CRC), as some archivers write: the fields are skipped, whole and byte by byte, and a wrong
  /// header CRC is corrupt.
  @Test func optionalHeaderFieldsAreSkipped() throws {
    let plain = GzipDeflater.compress(Array(text[0..<3000]))
    // 10-byte fixed header with FLG = FHCRC | FEXTRA | FNAME | FCOMMENT, then the fields.
    var header: [UInt8] = [0x1f, 0x8b, 8, 0x02 | 0x04 | 0x08 | 0x10] + Array(plain[4..<10])
    header += [5, 0] + Array("xtra!".utf8)
    header += Array("app.log.1\0".utf8) + Array("rotated by logrotate\0".utf8)
    let crc = Self.crc32(header)
    let member = header + [UInt8(crc & 0xff), UInt8(crc >> 8 & 0xff)] + Array(plain[10...])
    #expect(try GzipInflater.decompress(member + plain) == Array(text[0..<3000]) + Array(text[0..<3000]))
    let inflater = GzipInflater()
    var out: [UInt8] = []
    for byte in member { try [byte].withUnsafeBytes { try inflater.inflate($0, into: &out) } }
    try inflater.finish()
    #expect(out == Array(text[0..<3000]))
    // Split in two anywhere in the header (or just after it).
    for split in 1...(header.count + 4) {
      let inflater = GzipInflater()
      var out: [UInt8] = []
      try Array(member[..<split]).withUnsafeBytes { try inflater.inflate($0, into: &out) }
      try Array(member[split...]).withUnsafeBytes { try inflater.inflate($0, into: &out) }
      try inflater.finish()
      #expect(out == Array(text[0..<3000]), "split at \(split)")
    }
    var wrong = member
    wrong[header.count] ^= 0x01
    #expect {
      try GzipInflater.decompress(wrong)
    } throws: { error in
      if case .corrupt = error as? GzipError { return true }
      return false
    }
  }

  /// Bytes after the last member that do not start another one (garbage, zero padding) are
  /// corrupt, and the members before them are all yielded.
  @Test(arguments: [[UInt8](Array("garbage\n".utf8)), [UInt8](repeating: 0, count: 512)])
  func bytesAfterTheLastMemberAreCorrupt(tail: [UInt8]) throws {
    let members = GzipDeflater.compress(Array(text[0..<100])) + GzipDeflater.compress(Array(text[100...]))
    for size in [7, 4096] {
      let (out, error) = Self.inflateThrough(members + tail, size: size, GzipInflater())
      #expect(out == text)
      guard case .corrupt = error else {
        Issue.record("expected corrupt, got \(String(describing: error))")
        continue
      }
    }
  }

  /// Every kind of deflate block (stored, fixed and dynamic Huffman), matches reaching back the
  /// whole 32 KiB window, members at every level: inflated in chunks of many sizes into buffers
  /// of many sizes, each gives exactly the text that was compressed.
  @Test func everyBlockKindAndChunkingGivesTheText() throws {
    var generator = SplitMix64(seed: 7)
    var sample: [UInt8] = []
    // Incompressible stretches (stored blocks at level 0, literals elsewhere), runs, and
    // repeats of a line 30 KiB back.
    for round in 0..<40 {
      for _ in 0..<(round % 3 == 0 ? 3000 : 200) { sample.append(UInt8(truncatingIfNeeded: generator.next())) }
      sample += [UInt8](repeating: UInt8(ascii: "a") + UInt8(round % 26), count: round * 17)
      if sample.count > 30_000 { sample += sample[(sample.count - 30_000)..<(sample.count - 29_000)] }
      sample += Array("{\"@timestamp\":\"2026-12-01T00:00:\(round)Z\",\"event\":\"click\"}\n".utf8)
    }
    var stream: [UInt8] = []
    var expected: [UInt8] = []
    for level: Int32 in [0, 1, 6, 9] {
      stream += GzipDeflater.compress(sample, level: level)
      expected += sample
    }
    for (chunkSize, bufferSize) in [(1, 1), (3, 4096), (1000, 17), (65536, 1 << 16), (stream.count, 512 << 10)] {
      let inflater = GzipInflater()
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 1)
      defer { buffer.deallocate() }
      var out: [UInt8] = []
      for start in stride(from: 0, to: stream.count, by: chunkSize) {
        let chunk = Array(stream[start..<min(start + chunkSize, stream.count)])
        let error = chunk.withUnsafeBytes { inflater.inflate($0, through: buffer) { out += $0 } }
        #expect(error == nil)
      }
      try inflater.finish()
      #expect(out == expected, "chunks of \(chunkSize) into \(bufferSize)")
    }
  }

  static func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
      crc ^= UInt32(byte)
      for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
  }

  /// zlib's reader, the reference the fuzz target and the benchmark hold ISA-L's against,
  /// agrees with it: members across pieces, and a truncated stream left inside a member.
  @Test func zlibReferenceReadsWhatGzipInflaterReads() throws {
    let joined = GzipDeflater.compress(Array(text[0..<777])) + GzipDeflater.compress(Array(text[777...]))
    for (input, complete) in [(joined, true), (Array(joined.dropLast(4)), false)] {
      let zlib = ZlibInflater()
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 100, alignment: 1)
      defer { buffer.deallocate() }
      var out: [UInt8] = []
      for start in stride(from: 0, to: input.count, by: 333) {
        let piece = Array(input[start..<min(start + 333, input.count)])
        #expect(piece.withUnsafeBytes { zlib.inflate($0, through: buffer) { out += $0 } } == nil)
      }
      #expect(zlib.insideMember == !complete)
      let (isal, _) = Self.inflateThrough(input, size: 100, GzipInflater())
      #expect(out == isal)
      if complete { #expect(out == text) }
    }
  }

  @Test func emptyMemberDecodesToNothing() throws {
    #expect(try GzipInflater.decompress(GzipDeflater.compress([])) == [])
  }

  @Test func readsWhatSystemGzipWrites() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gz-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let file = dir.appendingPathComponent("a.log")
    try Data(text).write(to: file)
    let gzip = Process()
    gzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
    gzip.arguments = ["-9", file.path]
    try gzip.run()
    gzip.waitUntilExit()
    #expect(gzip.terminationStatus == 0)
    let compressed = [UInt8](try Data(contentsOf: dir.appendingPathComponent("a.log.gz")))
    #expect(try GzipInflater.decompress(compressed) == text)
  }

  @Test func systemGzipReadsWhatWeWrite() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gz-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let file = dir.appendingPathComponent("b.gz")
    try Data(GzipDeflater.compress(Array(text[0..<100])) + GzipDeflater.compress(Array(text[100...]))).write(to: file)
    let gzip = Process()
    gzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
    gzip.arguments = ["-t", file.path]
    try gzip.run()
    gzip.waitUntilExit()
    #expect(gzip.terminationStatus == 0)
  }
}
