import CPrefetch

/// What `LineDecoder.scan` found in many lines, stored flat (no allocation per line), to be
/// loaded into a `ScannedEvent` later — on another thread (scan-ahead) — without scanning
/// again. Loading gives exactly what scanning the same bytes gives: the same reject reason, or
/// the same time, JSON range and fields.
///
/// Not thread-safe: one thread at a time fills or reads it.
public final class ScannedLines {
  /// What `append(_:digest:)`'s `digest` found out about a line, kept for the reader.
  public typealias Tag = (UInt64, UInt64, UInt64)

  @usableFromInline struct Line {
    var time: Int64 = 0
    /// The JSON record's range in the line.
    var jsonStart: Int32 = 0
    var jsonCount: Int32 = 0
    var documentStart: Int32 = 0
    var documentEnd: Int32 = 0
    var documentIsCompact = false
    var reason: RejectReason?
    /// What `append`'s `digest` said about the event.
    @usableFromInline var tag: Tag = (0, 0, 0)
  }

  public let decoder: LineDecoder
  public let selector: FieldSelector
  private let slotCount: Int
  /// `count` line records at `records` (room for `recordCapacity`), which this object owns:
  /// plain memory like the slots, so that reading a line's record (on another thread than
  /// the one that wrote it) checks no uniqueness and retains nothing.
  @usableFromInline private(set) var records: UnsafeMutablePointer<Line>
  @usableFromInline private(set) var recordCount = 0
  private var recordCapacity = 1024
  /// `slotCount` slots per line (left empty for a rejected line): `slotsUsed` of the
  /// `slotsCapacity` at `slots`, which this object owns. Plain memory rather than an array:
  /// a line's slots are copied in and out with no uniqueness or bounds check per slot (with an
  /// array, the scan took 2% more instructions and the engine's loads 2% more).
  private var slots: UnsafeMutablePointer<FieldSlot>
  private var slotsUsed = 0
  private var slotsCapacity: Int
  private var event: ScannedEvent

  public init(decoder: LineDecoder, selector: FieldSelector) {
    self.decoder = decoder
    self.selector = selector
    slotCount = selector.paths.count
    event = ScannedEvent(
      time: 0, json: UnsafeRawBufferPointer(start: nil, count: 0), fields: ScannedFields(count: slotCount))
    slotsCapacity = max(slotCount, 1) * 1024
    slots = .allocate(capacity: slotsCapacity)
    records = .allocate(capacity: recordCapacity)
  }

  deinit {
    slots.deinitialize(count: slotsUsed)
    slots.deallocate()
    records.deinitialize(count: recordCount)
    records.deallocate()
  }

  @inlinable public var count: Int { recordCount }

  public func removeAll() {
    records.deinitialize(count: recordCount)
    recordCount = 0
    slots.deinitialize(count: slotsUsed)
    slotsUsed = 0
  }

  /// Room for one more line's slots.
  @inline(__always) private func reserveLineSlots() {
    guard slotsUsed + slotCount > slotsCapacity else { return }
    OwnedBuffer.grow(&slots, count: slotsUsed, capacity: &slotsCapacity)
  }

  /// Scans `line` (as `LineDecoder.scan` takes it) and stores the result as line `count`.
  public func append(_ line: UnsafeRawBufferPointer) {
    append(line) { _, _ in (0, 0, 0) }
  }

  /// The same, and when the line is not rejected, hands the scanned event and the line to
  /// `digest` (on this thread: for work that can be done ahead, such as matching the event to
  /// rules) and keeps what it returns as the line's `tag`. `inout` only so that the event is passed in place:
  /// handed over by value (a class's stored property), it was copied and its slots retained.
  /// `digest` must leave it as it is.
  public func append(_ line: UnsafeRawBufferPointer, digest: (inout ScannedEvent, UnsafeRawBufferPointer) -> Tag) {
    var stored = Line()
    reserveLineSlots()
    if let reason = decoder.scan(line, selector: selector, into: &event) {
      stored.reason = reason
      (slots + slotsUsed).initialize(repeating: FieldSlot(), count: slotCount)
    } else {
      stored.time = event.time
      stored.jsonStart = Int32(truncatingIfNeeded: line.baseAddress!.distance(to: event.json.baseAddress!))
      stored.jsonCount = Int32(truncatingIfNeeded: event.json.count)
      stored.documentStart = event.fields.documentStart
      stored.documentEnd = event.fields.documentEnd
      stored.documentIsCompact = event.fields.documentIsCompact
      // Element by element: borrowing the event's array (a class's property) whole, as
      // `append(contentsOf:)` did, retained and released it at every line, an atomic pair.
      let target = slots + slotsUsed
      for k in 0..<slotCount { (target + k).initialize(to: event.fields.slots[k]) }
      stored.tag = digest(&event, line)
    }
    slotsUsed += slotCount
    if recordCount == recordCapacity { OwnedBuffer.grow(&records, count: recordCount, capacity: &recordCapacity) }
    (records + recordCount).initialize(to: stored)
    recordCount += 1
  }

  /// Starts loading line `index`'s record and slots, if there is such a line, into the
  /// cache: they were written on another core, and read in line order they missed the cache
  /// in `load` (its 96-byte copy of the slots took 5% of the engine thread's time).
  @inline(__always)
  public func prefetch(_ index: Int) {
    guard index < recordCount else { return }
    feedbackd_prefetch(records + index)
    let first = UnsafeRawPointer(slots + index * slotCount)
    feedbackd_prefetch(first)
    feedbackd_prefetch(first + (MemoryLayout<FieldSlot>.stride * slotCount - 1))
  }

  /// Line `index`'s reject reason, or nil and its event's time: what `load` gives without
  /// the event's fields (for a line whose fields are not needed, such as one that matches no
  /// rule).
  @inline(__always)
  public func outcome(_ index: Int) -> (reason: RejectReason?, time: Int64) {
    precondition(index >= 0 && index < recordCount, "no such line")
    return (records[index].reason, records[index].time)
  }

  /// What `append`'s `digest` returned for line `index` (zeros for a rejected line).
  @inlinable
  public func tag(_ index: Int) -> Tag {
    precondition(index >= 0 && index < recordCount, "no such line")
    return records[index].tag
  }

  /// The result of line `index`, whose bytes are `line` again (where they are now): the
  /// reject reason, or nil with `event` set as `LineDecoder.scan` sets it.
  @inline(__always)
  public func load(_ index: Int, line: UnsafeRawBufferPointer, into event: inout ScannedEvent) -> RejectReason? {
    precondition(index >= 0 && index < recordCount, "no such line")
    let stored = records[index]
    if let reason = stored.reason { return reason }
    event.time = stored.time
    event.json = UnsafeRawBufferPointer(
      rebasing: line[Int(stored.jsonStart)..<Int(stored.jsonStart) + Int(stored.jsonCount)])
    event.fields.documentStart = stored.documentStart
    event.fields.documentEnd = stored.documentEnd
    event.fields.documentIsCompact = stored.documentIsCompact
    // `index` was checked: the line's slots are there.
    let source = slots + index * slotCount
    let count = slotCount
    event.fields.slots.withUnsafeMutableBufferPointer { target in
      precondition(target.count == count, "an event with another selector's slots")
      if let base = target.baseAddress { base.update(from: source, count: count) }
    }
    return nil
  }
}
