/// What `LineDecoder.scan` found in many lines, stored flat (no allocation per line), to be
/// loaded into a `ScannedEvent` later — on another thread (scan-ahead) — without scanning
/// again. Loading gives exactly what scanning the same bytes gives: the same reject reason, or
/// the same time, JSON range and fields.
///
/// Not thread-safe: one thread at a time fills or reads it.
public final class ScannedLines {
  struct Line {
    var time: Int64 = 0
    /// The JSON record's range in the line.
    var jsonStart: Int32 = 0
    var jsonCount: Int32 = 0
    var documentStart: Int32 = 0
    var documentEnd: Int32 = 0
    var documentIsCompact = false
    var reason: RejectReason?
  }

  public let decoder: LineDecoder
  public let selector: FieldSelector
  private let slotCount: Int
  private var lines: [Line] = []
  /// `slotCount` slots per line (left empty for a rejected line).
  private var slots: [FieldSlot] = []
  private var event: ScannedEvent

  public init(decoder: LineDecoder, selector: FieldSelector) {
    self.decoder = decoder
    self.selector = selector
    slotCount = selector.paths.count
    event = ScannedEvent(
      time: 0, json: UnsafeRawBufferPointer(start: nil, count: 0), fields: ScannedFields(count: slotCount))
  }

  public var count: Int { lines.count }

  public func removeAll() {
    lines.removeAll(keepingCapacity: true)
    slots.removeAll(keepingCapacity: true)
  }

  /// Scans `line` (as `LineDecoder.scan` takes it) and stores the result as line `count`.
  public func append(_ line: UnsafeRawBufferPointer) {
    var stored = Line()
    if let reason = decoder.scan(line, selector: selector, into: &event) {
      stored.reason = reason
      slots.append(contentsOf: repeatElement(FieldSlot(), count: slotCount))
    } else {
      stored.time = event.time
      stored.jsonStart = Int32(truncatingIfNeeded: line.baseAddress!.distance(to: event.json.baseAddress!))
      stored.jsonCount = Int32(truncatingIfNeeded: event.json.count)
      stored.documentStart = event.fields.documentStart
      stored.documentEnd = event.fields.documentEnd
      stored.documentIsCompact = event.fields.documentIsCompact
      // Element by element, as `load` reads them back: `append(contentsOf:)` of the event's
      // array (a class's property) retained and released it at every line, an atomic pair.
      // (Profiles put 7-23% of the scanning threads' samples there; their CPU time did not
      // change measurably without it.)
      for k in 0..<slotCount { slots.append(event.fields.slots[k]) }
    }
    lines.append(stored)
  }

  /// The result of line `index`, whose bytes are `line` again (where they are now): the
  /// reject reason, or nil with `event` set as `LineDecoder.scan` sets it.
  @inline(__always)
  public func load(_ index: Int, line: UnsafeRawBufferPointer, into event: inout ScannedEvent) -> RejectReason? {
    let stored = lines[index]
    if let reason = stored.reason { return reason }
    event.time = stored.time
    event.json = UnsafeRawBufferPointer(
      rebasing: line[Int(stored.jsonStart)..<Int(stored.jsonStart) + Int(stored.jsonCount)])
    event.fields.documentStart = stored.documentStart
    event.fields.documentEnd = stored.documentEnd
    event.fields.documentIsCompact = stored.documentIsCompact
    let first = index * slotCount
    // Element by element from `slots` itself: borrowing the whole array for a closure made
    // Swift retain and release it at every line.
    event.fields.slots.withUnsafeMutableBufferPointer { target in
      for k in 0..<slotCount { target[k] = slots[first + k] }
    }
    return nil
  }
}
