import Labeling
import Testing

@testable import Dataset

/// Segments' buffers are reused: when two partitions' segments are open at once (the turn of
/// an hour: the last hour's takes its late rows) and both are sealed, the next two segments
/// both start with grown storage. With one spare, the second grew a new buffer from nothing:
/// past 256 KiB each step of that is a fresh mapping, faulted in and unmapped again.
struct SpareBufferTests {
  @Test func twoSegmentsOpenAtOnceBothGetGrownStorageNextTime() throws {
    let dir = try tempDir()
    let writer = try DatasetWriter(layout: layout(dir), recovering: DatasetCheckpoint())
    // Two partitions (hours 09 and 10), about 300 KB of rows each, interleaved.
    for i in 0..<2000 {
      try writer.append(row("k\(i)", at: t0 + Int64(i) * 1_000_000, score: "0.\(i)"), ageClock: 0)
      try writer.append(row("l\(i)", at: t0 + hour + Int64(i) * 1_000_000, score: "0.\(i)"), ageClock: 0)
    }
    let grown = writer.bufferCapacities.open
    #expect(grown.count == 2)
    #expect(grown.values.allSatisfy { $0 >= 256 << 10 }, "\(grown)")
    try writer.sealAll()
    #expect(writer.bufferCapacities.spare.allSatisfy { $0 >= 256 << 10 }, "\(writer.bufferCapacities.spare)")
    // The next two segments (hours 11 and 12), one row each: both have grown storage at once.
    try writer.append(row("m", at: t0 + 2 * hour), ageClock: 0)
    try writer.append(row("n", at: t0 + 3 * hour), ageClock: 0)
    let reused = writer.bufferCapacities.open
    #expect(reused.count == 2)
    #expect(reused.values.allSatisfy { $0 >= 256 << 10 }, "\(reused)")
    #expect(writer.bufferCapacities.spare.allSatisfy { $0 < 256 << 10 })
    // Their rows are written as ever.
    try writer.sealAll()
    _ = try writer.prepareCommit()
    try writer.afterCommit()
    #expect(text(dir + "/date=2026-11-30/hour=11/part-000002.jsonl").contains("\"key\":\"m\""))
    #expect(text(dir + "/date=2026-11-30/hour=12/part-000003.jsonl").contains("\"key\":\"n\""))
  }
}
