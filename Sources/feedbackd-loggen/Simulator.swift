/// The shop simulation: a stream of log records in arrival (write) order.
///
/// Every prediction decides, when it is made, all the feedback it will ever get; those future
/// lines wait in a min-heap keyed by (arrival time, sequence number). Memory therefore holds
/// only the feedback still pending (roughly rate × longest delay), not the whole log.
///
/// Times are integer milliseconds since the Unix epoch. Each line has an *event time* (what it
/// carries) and an *arrival time* (when the shipper writes it) with
/// `0 <= arrival - event < 2000`, and lines are written in arrival order. So a line's timestamp
/// is never 2 s or more earlier than any line written before it, while the event times
/// themselves stay exact (a click 29:59.999 after its prediction really is inside a 30 m window).

enum ItemKind: UInt8 {
  case prediction, click, purchase, http
}

struct Item {
  var arrival: Int64
  var seq: UInt64
  var time: Int64
  var kind: ItemKind
  /// prediction: category; http: method/path kind
  var a: UInt8 = 0
  /// prediction: device; http: status class
  var b: UInt8 = 0
  /// prediction: position
  var c: UInt8 = 0
  /// prediction: model version index
  var d: UInt8 = 0
  /// prediction: score × 10 000; http: duration ms
  var score: UInt16 = 0
  /// user number; http: product / path id
  var user: UInt32 = 0
  /// prediction: price in cents; purchase: value in cents
  var cents: Int64 = 0
  var rid: UInt64 = 0
  /// purchase: order id
  var order: UInt64 = 0
}

enum JunkKind: UInt8, CaseIterable {
  case plainText, truncatedJSON, missingTime, badTime, emptyLine
}

enum Record {
  case item(Item)
  case junk(JunkKind, time: Int64, param: UInt64)
}

struct Stats {
  var lines = 0
  var predictions = 0
  var duplicatePredictions = 0
  var clicks = 0
  var clickRetries = 0
  var orphanClicks = 0
  var purchases = 0
  var purchaseResends = 0
  var http = 0
  var junk = 0
  var firstTime: Int64 = .max
  var lastTime: Int64 = .min
}

struct MinHeap {
  private(set) var items: [Item] = []

  var isEmpty: Bool { items.isEmpty }
  var peek: Item? { items.first }

  @inline(__always)
  private static func less(_ x: Item, _ y: Item) -> Bool {
    x.arrival < y.arrival || (x.arrival == y.arrival && x.seq < y.seq)
  }

  mutating func push(_ item: Item) {
    items.append(item)
    var child = items.count - 1
    while child > 0 {
      let parent = (child - 1) / 2
      if !Self.less(items[child], items[parent]) { break }
      items.swapAt(child, parent)
      child = parent
    }
  }

  mutating func pop() -> Item? {
    guard !items.isEmpty else { return nil }
    let top = items[0]
    let last = items.removeLast()
    if !items.isEmpty {
      items[0] = last
      var parent = 0
      let n = items.count
      while true {
        let left = 2 * parent + 1
        if left >= n { break }
        var smallest = left
        let right = left + 1
        if right < n && Self.less(items[right], items[left]) { smallest = right }
        if !Self.less(items[smallest], items[parent]) { break }
        items.swapAt(smallest, parent)
        parent = smallest
      }
    }
    return top
  }
}

/// One ground-truth record per prediction, handed to the truth writer (optional).
struct Truth {
  var rid: UInt64
  var time: Int64
  var duplicateAt: Int64?
  var clicks: [Int64] = []
  var purchases: [(order: UInt64, time: Int64, cents: Int64, resentAt: Int64?)] = []
}

struct SimulationOptions {
  var predictions: Int
  var startMs: Int64
  var ratePerSecond: Double
  var junkRate: Double
  var seed: UInt64
  var drift: Drift?
}

/// A change in how one slice's clicks relate to the score, to test model monitors: from `atMs`,
/// the slice's click probability moves from the score's to a constant (the overall mean), at
/// once (sudden) or linearly over `overMs` (gradual). The slice's click rate stays about the
/// same; only the ranking quality (AUC) falls.
struct Drift {
  enum Kind: String, CaseIterable {
    case sudden, gradual
  }
  var kind: Kind
  /// `category` or `device` and the value, e.g. category=shoes.
  var column: String
  var value: String
  var atMs: Int64
  var overMs: Int64

  static let meanClickProbability = 0.15

  /// How far the drift has gone at `time`: 0 (none) … 1 (clicks ignore the score).
  func progress(at time: Int64) -> Double {
    guard time >= atMs else { return 0 }
    switch kind {
    case .sudden: return 1
    case .gradual: return min(Double(time - atMs) / Double(max(overMs, 1)), 1)
    }
  }
}

struct Simulator {
  static let categoryCount = 8
  static let minute: Int64 = 60_000
  static let hour: Int64 = 3_600_000

  let options: SimulationOptions
  var stats = Stats()
  var collectTruth = false
  var truth: [Truth] = []

  private var rng: Xoshiro256
  private var heap = MinHeap()
  private var seq: UInt64 = 0
  private var made = 0
  /// Milliseconds (fractional) after `startMs` of the next prediction.
  private var nextOffset: Double = 0
  private var held: Item?
  private let meanGapMs: Double
  private let junkPerLine: Double
  private var orderCounter: UInt64 = 0
  private var orphanCounter: UInt64 = 0
  private let idSalt: UInt64

  init(options: SimulationOptions) {
    self.options = options
    rng = Xoshiro256(seed: options.seed)
    meanGapMs = 1000 / options.ratePerSecond
    let j = min(max(options.junkRate, 0), 0.5)
    junkPerLine = j / (1 - j)
    idSalt = mix64(options.seed ^ 0x6C6F_6767_656E)
  }

  private var nextPredictionMs: Int64 { options.startMs + Int64(nextOffset) }

  /// The next line of the logical log, in write order; nil at the end.
  mutating func next() -> Record? {
    if let item = held {
      held = nil
      return emit(item)
    }
    while true {
      if let top = heap.peek, made == options.predictions || top.arrival < nextPredictionMs {
        let item = heap.pop()!
        if junkPerLine > 0 && rng.chance(junkPerLine) {
          held = item
          stats.junk += 1
          stats.lines += 1
          let kind = JunkKind.allCases[rng.below(JunkKind.allCases.count)]
          return .junk(kind, time: item.time, param: rng.next())
        }
        return emit(item)
      }
      if made == options.predictions { return nil }
      makePrediction()
    }
  }

  private mutating func emit(_ item: Item) -> Record {
    stats.lines += 1
    if item.time < stats.firstTime { stats.firstTime = item.time }
    if item.time > stats.lastTime { stats.lastTime = item.time }
    return .item(item)
  }

  private mutating func push(_ item: Item, lag: Int64? = nil) {
    var item = item
    let lag = lag ?? (rng.chance(0.9) ? Int64(rng.below(200)) : Int64(rng.below(2000)))
    item.arrival = item.time + lag
    item.seq = seq
    seq += 1
    heap.push(item)
  }

  private mutating func makePrediction() {
    let tp = nextPredictionMs
    let gap = rng.exponential(mean: meanGapMs)
    nextOffset += gap
    made += 1
    stats.predictions += 1

    let rid = mix64(UInt64(made) ^ idSalt) & 0x7FFF_FFFF_FFFF_FFFF  // top bit clear: orphans set it
    var p = Item(arrival: 0, seq: 0, time: tp, kind: .prediction)
    p.rid = rid
    p.user = UInt32(1 + rng.below(100_000))
    p.d = rng.chance(0.6) ? 1 : 0  // ranker-v4 serves 60 %
    p.score = drawScore(model: p.d)
    p.a = UInt8(rng.below(Self.categoryCount))
    let device = rng.uniform()
    p.b = device < 0.6 ? 0 : (device < 0.9 ? 1 : 2)
    p.c = UInt8(1 + rng.below(20))
    p.cents = drawPrice(category: Int(p.a))
    push(p)
    var record = Truth(rid: rid, time: tp)

    // ~1 %: the same request logged again 0–3 s later with another score (first one wins).
    if rng.chance(0.01) {
      var dup = p
      dup.time = tp + 1 + Int64(rng.below(3000))
      repeat { dup.score = drawScore(model: p.d) } while dup.score == p.score
      push(dup)
      stats.duplicatePredictions += 1
      record.duplicateAt = dup.time
    }

    // Ordinary request logs, about one per prediction, spread over the gap to the next one.
    let u = rng.uniform()
    let requests = u < 0.25 ? 0 : (u < 0.75 ? 1 : 2)
    for _ in 0..<requests {
      var h = Item(arrival: 0, seq: 0, time: tp + Int64(rng.uniform() * gap), kind: .http)
      let route = rng.uniform()
      h.a = route < 0.6 ? 0 : (route < 0.8 ? 1 : (route < 0.95 ? 2 : 3))
      let status = rng.uniform()
      h.b = status < 0.95 ? 0 : (status < 0.98 ? 1 : 2)
      h.user = UInt32(1 + rng.below(99_999))
      h.score = UInt16(min(rng.logNormal(median: 18, sigma: 0.8), 30_000))
      push(h)
      stats.http += 1
    }

    // Clicks: probability rises with the score.
    let s = Double(p.score) / 10_000
    var clickProbability = 0.5 * s * s.squareRoot()
    if let drift = options.drift, drift.matches(category: Int(p.a), device: Int(p.b)) {
      let f = drift.progress(at: tp)
      clickProbability = (1 - f) * clickProbability + f * Drift.meanClickProbability
    }
    if rng.chance(clickProbability) {
      let tc = tp + drawClickDelay()
      pushClick(rid: rid, user: p.user, time: tc)
      record.clicks.append(tc)
      if rng.chance(0.10) {
        let again = tc + Int64(rng.logNormal(median: 60_000, sigma: 1.2))
        pushClick(rid: rid, user: p.user, time: again)
        record.clicks.append(again)
      }
      // ~0.5 % of clicks answer a request that was never predicted (orphans).
      if rng.chance(0.005) {
        orphanCounter += 1
        let orphan = mix64(orphanCounter ^ idSalt ^ 0x5A5A) | 0x8000_0000_0000_0000
        pushClick(rid: orphan, user: UInt32(1 + rng.below(100_000)), time: tc + Int64(rng.below(5000)))
        stats.orphanClicks += 1
      }
      // ~20 % of clicked predictions lead to a purchase 10 min … 30 h after the click.
      if rng.chance(0.20) {
        orderCounter += 1
        var o = Item(arrival: 0, seq: 0, time: tc + Int64(rng.logUniform(10 * 60_000, 30 * 3_600_000)), kind: .purchase)
        o.rid = rid
        o.order = mix64(orderCounter ^ idSalt ^ 0x0D0D)
        let q = rng.uniform()
        o.cents = p.cents * (q < 0.85 ? 1 : (q < 0.97 ? 2 : 3))
        push(o)
        stats.purchases += 1
        var resentAt: Int64?
        // ~5 %: re-sent later with the same order_id (different bytes: a later timestamp).
        if rng.chance(0.05) {
          var again = o
          again.time = o.time + Int64(rng.logUniform(1000, 15 * 60_000))
          push(again)
          stats.purchases += 1
          stats.purchaseResends += 1
          resentAt = again.time
        }
        record.purchases.append((o.order, o.time, o.cents, resentAt))
      }
    }
    if collectTruth { truth.append(record) }
  }

  private mutating func pushClick(rid: UInt64, user: UInt32, time: Int64) {
    var c = Item(arrival: 0, seq: 0, time: time, kind: .click)
    c.rid = rid
    c.user = user
    let lag = rng.chance(0.9) ? Int64(rng.below(200)) : Int64(rng.below(2000))
    push(c, lag: lag)
    stats.clicks += 1
    // ~3 %: the shipper writes the line twice, byte-identical: at once or a few lines later,
    // but always within 2 s of its event time.
    if rng.chance(0.03) {
      let dupLag = rng.chance(0.5) ? lag : lag + Int64(rng.below(Int(2000 - lag)))
      push(c, lag: dupLag)
      stats.clicks += 1
      stats.clickRetries += 1
    }
  }

  /// Mostly seconds to minutes (log-normal, median 25 s), ~8 % after 30 minutes (up to 4 h),
  /// plus a few clicks exactly at the 30 min boundary (29:59.999 and 30:00.000).
  private mutating func drawClickDelay() -> Int64 {
    let u = rng.uniform()
    if u < 0.0025 { return 30 * Self.minute - 1 }
    if u < 0.005 { return 30 * Self.minute }
    if u < 0.085 { return Int64(rng.logUniform(Double(30 * Self.minute + 1), Double(4 * Self.hour))) }
    let delay = Int64(rng.logNormal(median: 25_000, sigma: 1.3))
    return min(max(delay, 200), 30 * Self.minute - 2)
  }

  private mutating func drawScore(model: UInt8) -> UInt16 {
    // v4 is a little sharper than v3.
    let u = rng.uniform()
    let s = model == 1 ? u * u.squareRoot() : u * (0.3 + 0.7 * u)
    return UInt16(min(max((s * 10_000).rounded(), 1), 9_999))
  }

  static let basePrices: [Int64] = [59, 199, 14, 24, 19, 34, 44, 6]  // per category, in units
  static let priceEndings: [Int64] = [99, 90, 0, 50, 95]

  private mutating func drawPrice(category: Int) -> Int64 {
    let base = Self.basePrices[category]
    let units = base / 2 + Int64(rng.below(Int(base * 2)))
    return units * 100 + Self.priceEndings[rng.below(Self.priceEndings.count)]
  }
}
