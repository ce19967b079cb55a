import Foundation
import Gzip
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

  /// Inflating into a buffer stops when it is full, and zlib may hold decoded bytes back even
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
  /// bytes in zlib: asking again with no input yields them, as much as one big buffer gets.
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
