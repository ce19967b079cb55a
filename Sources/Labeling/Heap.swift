/// A binary min-heap.
struct Heap<Element: Comparable> {
  private(set) var items: [Element] = []

  var isEmpty: Bool { items.isEmpty }
  var count: Int { items.count }
  @inline(__always) var min: Element? { items.first }

  /// A heap of `elements` (any order).
  init(_ elements: [Element] = []) {
    items = elements.sorted()
  }

  mutating func insert(_ element: Element) {
    items.append(element)
    items.withUnsafeMutableBufferPointer { Self.moveUp(element, from: $0.count - 1, in: $0) }
  }

  /// Puts `element` in the hole at `hole`, or higher: parents it is less than move down into
  /// the hole (no swaps).
  @inline(__always)
  private static func moveUp(_ element: Element, from hole: Int, in items: UnsafeMutableBufferPointer<Element>) {
    var hole = hole
    while hole > 0 {
      let parent = (hole - 1) / 2
      guard element < items[parent] else { break }
      items[hole] = items[parent]
      hole = parent
    }
    items[hole] = element
  }

  @discardableResult
  mutating func popMin() -> Element? {
    guard !items.isEmpty else { return nil }
    if items.count == 1 { return items.removeLast() }
    let last = items.removeLast()
    return items.withUnsafeMutableBufferPointer { items in
      let top = items[0]
      // Bottom-up: the hole at the root goes down to a leaf along the smaller children (one
      // comparison a level), then `last` moves up from there (usually a level or two: it
      // came from the bottom).
      let count = items.count
      var hole = 0
      while true {
        let left = 2 * hole + 1
        guard left < count else { break }
        let right = left + 1
        let child = right < count && items[right] < items[left] ? right : left
        items[hole] = items[child]
        hole = child
      }
      Self.moveUp(last, from: hole, in: items)
      return top
    }
  }
}

/// A priority queue for elements that arrive nearly in order within lanes (due rows: a
/// dataset's rows come due in about the order their predictions arrive, give or take the
/// jitter of concurrent requests' log lines).
///
/// Each lane collects new elements in a small unsorted batch; a full batch is sorted and
/// appended to the lane's run, a first-in, first-out queue in ascending order, except for
/// those of its elements that are less than the run's last (late ones), which go to a heap.
/// `min`/`popMin` take the least of the runs' heads and the heap's, after sorting in a batch
/// whose least element would come first. So most elements are popped in O(1) from
/// consecutive memory, and the order is exactly a heap's.
struct RunQueue<Element: Comparable> {
  private struct Lane {
    var run = Queue<Element>()
    var batch: [Element] = []
    var batchMin: Element?
  }
  private var lanes: [Lane] = []
  private var heap = Heap<Element>()
  /// Elements a lane collects before sorting them into its run.
  private let batchSize: Int

  /// Every element (`elements` in any order) in the heap.
  init(_ elements: [Element] = [], batchSize: Int = 256) {
    heap = Heap(elements)
    self.batchSize = Swift.max(1, batchSize)
  }

  var count: Int { lanes.reduce(heap.count) { $0 + $1.run.count + $1.batch.count } }
  var isEmpty: Bool { count == 0 }
  /// Every element, in no particular order.
  var items: [Element] {
    var all = heap.items
    all.reserveCapacity(count)
    for lane in lanes {
      all += lane.run.elements
      all += lane.batch
    }
    return all
  }

  /// How many elements satisfy `predicate`, read where they are (`items` copies them all).
  func count(where predicate: (Element) -> Bool) -> Int {
    var n = heap.items.count(where: predicate)
    for lane in lanes { n += lane.run.elements.count(where: predicate) + lane.batch.count(where: predicate) }
    return n
  }

  mutating func insert(_ element: Element, lane: Int) {
    while lanes.count <= lane { lanes.append(Lane()) }
    lanes[lane].batch.append(element)
    if lanes[lane].batchMin.map({ element < $0 }) ?? true { lanes[lane].batchMin = element }
    if lanes[lane].batch.count >= batchSize { sortBatch(lane) }
  }

  /// Moves a lane's batch into its run, and those less than the run's last into the heap.
  private mutating func sortBatch(_ lane: Int) {
    var batch = lanes[lane].batch
    lanes[lane].batch = []
    lanes[lane].batchMin = nil
    Self.sortNearlySorted(&batch)
    var late = 0
    if let last = lanes[lane].run.last {
      while late < batch.count && batch[late] < last { late += 1 }
    }
    for element in batch[..<late] { heap.insert(element) }
    lanes[lane].run.append(contentsOf: batch[late...])
    batch.removeAll(keepingCapacity: true)
    lanes[lane].batch = batch
  }

  /// Sorts `batch` by insertion: a lane's elements arrive nearly in order (a row is due a fixed
  /// time after its prediction, and predictions come nearly in time order), so most stay where
  /// they are or move a place or two. The standard library's stable sort took about 100
  /// instructions an element here. Insertion moves at most `count - 1` elements per element,
  /// so a long batch far out of order goes to that sort instead.
  static func sortNearlySorted(_ batch: inout [Element]) {
    guard batch.count <= 1024 else { return batch.sort() }
    batch.withUnsafeMutableBufferPointer { b in
      guard b.count > 1, let base = b.baseAddress else { return }
      for i in 1..<b.count {
        let element = base[i]
        guard element < base[i - 1] else { continue }
        var j = i - 1
        base[i] = base[j]
        while j > 0 && element < base[j - 1] {
          base[j] = base[j - 1]
          j -= 1
        }
        base[j] = element
      }
    }
  }

  /// Where the least element is: a lane's index (its run's first), `lanes.count` for the
  /// heap, nil when empty. Sorts in any batch holding a lesser element first.
  @inline(__always)
  private mutating func minSource() -> Int? {
    while true {
      var best: Int? = nil
      var least = heap.min
      if least != nil { best = lanes.count }
      var unsorted: Int? = nil
      for l in lanes.indices {
        if let first = lanes[l].run.first, least.map({ first < $0 }) ?? true {
          least = first
          best = l
        }
      }
      for l in lanes.indices {
        if let batchMin = lanes[l].batchMin, least.map({ batchMin < $0 }) ?? true {
          least = batchMin
          unsorted = l
        }
      }
      guard let lane = unsorted else { return best }
      sortBatch(lane)
    }
  }

  /// The least element (mutating: it may sort a batch in first).
  mutating func min() -> Element? { minAndPosition()?.element }

  @discardableResult
  mutating func popMin() -> Element? {
    guard let source = minSource() else { return nil }
    return popMin(at: source)
  }

  /// The least element and where it is, for `popMin(at:)` (nothing may change the queue in
  /// between): a look at the least element and its removal then find it once, not twice.
  @inline(__always)
  mutating func minAndPosition() -> (element: Element, position: Int)? {
    guard let source = minSource() else { return nil }
    guard let element = source == lanes.count ? heap.min : lanes[source].run.first else { return nil }
    return (element, source)
  }

  /// Removes the least element, found at `position` by `minAndPosition` with no change since.
  @discardableResult @inline(__always)
  mutating func popMin(at position: Int) -> Element? {
    position == lanes.count ? heap.popMin() : lanes[position].run.popFirst()
  }

  var laneCount: Int { lanes.count }

  /// The element `distance` places behind the head of a lane's run (popped soon: worth
  /// prefetching what it refers to).
  @inline(__always) func upcoming(lane: Int, distance: Int) -> Element? { lanes[lane].run[distance] }

  /// Where the element `distance` places behind the head of a lane's run is, to prefetch it
  /// (never read through: valid only until the queue changes).
  @inline(__always) func upcomingAddress(lane: Int, distance: Int) -> UnsafeRawPointer? {
    lanes[lane].run.address(offset: distance)
  }
}

/// A first-in, first-out queue over an array (amortised O(1) push and pop).
struct Queue<Element> {
  private var items: [Element] = []
  private var head = 0

  @inline(__always) var first: Element? { head < items.count ? items[head] : nil }
  var last: Element? { head < items.count ? items[items.count - 1] : nil }
  var count: Int { items.count - head }
  var elements: ArraySlice<Element> { items[head...] }

  /// The element `offset` places behind the first, if there is one.
  @inline(__always) subscript(offset: Int) -> Element? {
    head + offset < items.count ? items[head + offset] : nil
  }

  /// Where the element `offset` places behind the first is, if there is one (to prefetch).
  @inline(__always) func address(offset: Int) -> UnsafeRawPointer? {
    let i = head + offset
    guard i < items.count else { return nil }
    return items.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress! + i) }
  }

  /// Replaces each element by `transform`'s result, dropping those it returns nil for.
  mutating func compactMap(_ transform: (Element) -> Element?) {
    items = items[head...].compactMap(transform)
    head = 0
  }

  mutating func append(_ element: Element) { items.append(element) }
  mutating func append(contentsOf elements: ArraySlice<Element>) { items.append(contentsOf: elements) }

  @discardableResult @inline(__always)
  mutating func popFirst() -> Element? {
    guard head < items.count else { return nil }
    let element = items[head]
    head += 1
    if head == items.count || (head >= 4096 && head * 2 >= items.count) { dropPopped() }
    return element
  }

  /// Lets go of the popped elements' places (rarely: out of line, so that `popFirst` inlines
  /// small).
  @inline(never)
  private mutating func dropPopped() {
    if head == items.count {
      items.removeAll(keepingCapacity: true)
    } else {
      items.removeFirst(head)
    }
    head = 0
  }
}
