/// The monitor's state as compact bytes, committed with each checkpoint (a JSON encoding of
/// every histogram bin would cost more than the rows it describes).
extension Monitor {
  static let stateVersion: Int64 = 1

  public func encodeState() -> [UInt8] {
    var w = BinaryWriter()
    w.int(Self.stateVersion)
    w.int(closedThrough)
    w.int(lastFiniteWatermark)
    w.int(lateRows)
    w.int(Int64(sliceNames.count))
    for name in sliceNames { w.string(name) }
    w.int(Int64(valueIds.count))
    for ids in valueIds {
      w.int(Int64(ids.count))
      for (value, id) in ids.sorted(by: { $0.value < $1.value }) {
        w.string(value)
        w.int(Int64(id))
      }
    }
    w.int(Int64(open.count))
    for start in open.keys.sorted() {
      w.int(start)
      let slices = open[start]!.slices
      w.int(Int64(slices.count))
      for stats in slices { w.stats(stats) }
    }
    w.int(Int64(baseline.count))
    for name in baseline.keys.sorted() {
      w.string(name)
      let buckets = baseline[name]!
      w.int(Int64(buckets.count))
      for start in buckets.keys.sorted() {
        w.int(start)
        w.stats(buckets[start]!)
      }
    }
    w.int(Int64(cusums.count))
    for name in cusums.keys.sorted() {
      let c = cusums[name]!
      w.string(name)
      w.double(c.sum)
      w.int(c.armed ? 1 : 0)
      w.int(c.since ?? .min)
    }
    w.int(Int64(changed.count))
    for key in changed.sorted() { w.string(key) }
    return w.bytes
  }

  func decodeState(_ bytes: [UInt8]) throws {
    var r = BinaryReader(bytes)
    guard try r.int() == Self.stateVersion else { throw BinaryReader.Invalid() }
    closedThrough = try r.int()
    lastFiniteWatermark = try r.int()
    lateRows = try r.int()
    sliceNames = []
    for _ in 0..<(try r.count()) { sliceNames.append(try r.string()) }
    guard sliceNames.first == MonitorSpec.wholeDataset else { throw BinaryReader.Invalid() }
    let columns = try r.count()
    guard columns == valueIds.count else { throw BinaryReader.Invalid() }
    for column in 0..<columns {
      for _ in 0..<(try r.count()) {
        let value = try r.string()
        let id = try r.count()
        guard id < sliceNames.count else { throw BinaryReader.Invalid() }
        valueIds[column][value] = id
      }
    }
    for _ in 0..<(try r.count()) {
      let start = try r.int()
      let window = OpenWindow(count: 0)
      for _ in 0..<(try r.count()) { window.slices.append(try r.stats()) }
      guard window.slices.count <= sliceNames.count else { throw BinaryReader.Invalid() }
      open[start] = window
    }
    for _ in 0..<(try r.count()) {
      let name = try r.string()
      var buckets: [Int64: SliceStats] = [:]
      for _ in 0..<(try r.count()) {
        let start = try r.int()
        buckets[start] = try r.stats()
      }
      baseline[name] = buckets
      var pooled = DenseHistogram()
      for start in buckets.keys.sorted() { pooled.add(buckets[start]!.histogram, sign: 1) }
      pooledHistograms[name] = pooled
    }
    for _ in 0..<(try r.count()) {
      let name = try r.string()
      var c = Cusum()
      c.sum = try r.double()
      c.armed = try r.int() != 0
      let since = try r.int()
      c.since = since == .min ? nil : since
      cusums[name] = c
    }
    for _ in 0..<(try r.count()) { changed.insert(try r.string()) }
    guard r.atEnd else { throw BinaryReader.Invalid() }
  }
}

struct BinaryWriter {
  var bytes: [UInt8] = []

  mutating func int(_ v: Int64) {
    withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
  }

  mutating func double(_ v: Double) { int(Int64(bitPattern: v.bitPattern)) }

  mutating func string(_ s: String) {
    int(Int64(s.utf8.count))
    bytes.append(contentsOf: s.utf8)
  }

  mutating func stats(_ s: SliceStats) {
    int(s.rows)
    int(s.positives)
    double(s.sumScore)
    double(s.sumScoreSquared)
    double(s.sumLogLoss)
    let bins = s.histogram.bins.sorted { $0.key < $1.key }
    int(Int64(bins.count))
    for (bin, counts) in bins {
      int(Int64(bin))
      int(counts.positives)
      int(counts.negatives)
    }
    int(Int64(s.delays.count))
    for row in s.delays {
      int(Int64(row.count))
      for c in row { int(c) }
    }
  }
}

struct BinaryReader {
  struct Invalid: Error, CustomStringConvertible {
    var description: String { "the saved monitor state is damaged or from another version" }
  }

  let bytes: [UInt8]
  var offset = 0

  init(_ bytes: [UInt8]) { self.bytes = bytes }

  var atEnd: Bool { offset == bytes.count }

  mutating func int() throws -> Int64 {
    guard offset + 8 <= bytes.count else { throw Invalid() }
    var v: UInt64 = 0
    for i in 0..<8 { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
    offset += 8
    return Int64(bitPattern: v)
  }

  mutating func count() throws -> Int {
    let n = try int()
    guard n >= 0, n <= bytes.count else { throw Invalid() }
    return Int(n)
  }

  mutating func double() throws -> Double { Double(bitPattern: UInt64(bitPattern: try int())) }

  mutating func string() throws -> String {
    let n = try count()
    guard offset + n <= bytes.count else { throw Invalid() }
    defer { offset += n }
    return String(decoding: bytes[offset..<(offset + n)], as: UTF8.self)
  }

  mutating func stats() throws -> SliceStats {
    var s = SliceStats()
    s.rows = try int()
    s.positives = try int()
    s.sumScore = try double()
    s.sumScoreSquared = try double()
    s.sumLogLoss = try double()
    var histogram = ScoreHistogram()
    for _ in 0..<(try count()) {
      let bin = try int()
      guard bin >= 0, bin < DenseHistogram.count, let b = Int32(exactly: bin) else { throw Invalid() }
      histogram.add(bin: b, positives: try int(), negatives: try int())
    }
    s.histogram = histogram
    for _ in 0..<(try count()) {
      var row: [Int64] = []
      for _ in 0..<(try count()) { row.append(try int()) }
      s.delays.append(row)
    }
    return s
  }
}
