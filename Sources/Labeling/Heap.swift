/// A binary min-heap.
struct Heap<Element: Comparable> {
  private(set) var items: [Element] = []

  var isEmpty: Bool { items.isEmpty }
  var count: Int { items.count }
  var min: Element? { items.first }

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

/// A first-in, first-out queue over an array (amortised O(1) push and pop).
struct Queue<Element> {
  private var items: [Element] = []
  private var head = 0

  var first: Element? { head < items.count ? items[head] : nil }
  var count: Int { items.count - head }

  /// Replaces each element by `transform`'s result, dropping those it returns nil for.
  mutating func compactMap(_ transform: (Element) -> Element?) {
    items = items[head...].compactMap(transform)
    head = 0
  }

  mutating func append(_ element: Element) { items.append(element) }

  @discardableResult
  mutating func popFirst() -> Element? {
    guard head < items.count else { return nil }
    let element = items[head]
    head += 1
    if head == items.count {
      items.removeAll(keepingCapacity: true)
      head = 0
    } else if head >= 4096 && head * 2 >= items.count {
      items.removeFirst(head)
      head = 0
    }
    return element
  }
}
