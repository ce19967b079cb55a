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
    var child = items.count - 1
    while child > 0 {
      let parent = (child - 1) / 2
      guard items[child] < items[parent] else { break }
      items.swapAt(child, parent)
      child = parent
    }
  }

  @discardableResult
  mutating func popMin() -> Element? {
    guard !items.isEmpty else { return nil }
    if items.count == 1 { return items.removeLast() }
    let top = items[0]
    items[0] = items.removeLast()
    var parent = 0
    while true {
      let left = 2 * parent + 1
      let right = left + 1
      var smallest = parent
      if left < items.count && items[left] < items[smallest] { smallest = left }
      if right < items.count && items[right] < items[smallest] { smallest = right }
      if smallest == parent { break }
      items.swapAt(parent, smallest)
      parent = smallest
    }
    return top
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
