import LogFormats

/// A value a `where:` entry compares a field with.
public enum MatchValue: Sendable, Hashable {
  case string(String)
  case number(Double)
  case bool(Bool)
  case null

  // Strings compare as text, numbers numerically (`200` matches `200.0`), `null` matches an
  // explicit JSON null: see `Rules.CompiledMatch.matches`.
}

public struct FieldMatch: Sendable, Hashable {
  public var path: FieldPath
  public var value: MatchValue
  public init(path: FieldPath, value: MatchValue) {
    self.path = path
    self.value = value
  }
}

/// How an event is recognised (`where`) and joined (`key`).
public struct EventRule: Sendable {
  public var matches: [FieldMatch]
  public var key: FieldPath
  public init(matches: [FieldMatch], key: FieldPath) {
    self.matches = matches
    self.key = key
  }
}

public struct FeedbackType: Sendable {
  public var name: String
  public var rule: EventRule
  public var dedupeBy: FieldPath?
  public init(name: String, rule: EventRule, dedupeBy: FieldPath? = nil) {
    self.name = name
    self.rule = rule
    self.dedupeBy = dedupeBy
  }
}

public enum LabelValue: Sendable, Hashable {
  case binary
  case count
  case sum(FieldPath)
  case first(FieldPath)

  var path: FieldPath? {
    switch self {
    case .binary, .count: nil
    case .sum(let p), .first(let p): p
    }
  }
}

public struct LabelSpec: Sendable {
  public var name: String
  /// Index into `Rules.feedbackTypes`.
  public var feedbackType: Int
  /// Window length in nanoseconds.
  public var window: Int64
  public var value: LabelValue
  public init(name: String, feedbackType: Int, window: Int64, value: LabelValue = .binary) {
    self.name = name
    self.feedbackType = feedbackType
    self.window = window
    self.value = value
  }
}

public struct ColumnSpec: Sendable {
  public var path: FieldPath
  public var name: String
  public init(path: FieldPath, name: String) {
    self.path = path
    self.name = name
  }
}

public struct DatasetSpec: Sendable {
  public var name: String
  /// Indices into `Rules.labels`.
  public var labels: [Int]
  /// Kept prediction columns; nil keeps the whole prediction object.
  public var columns: [ColumnSpec]?
  public init(name: String, labels: [Int], columns: [ColumnSpec]?) {
    self.name = name
    self.labels = labels
    self.columns = columns
  }
}

/// The compiled `where:` entries of every rule in memory of their own (`Rules.classify` reads
/// them through plain pointers: borrowing arrays for closures retained them on every line).
/// Immutable once built; freed with the last `Rules` holding it.
final class RuleTables: @unchecked Sendable {
  /// A rule: its matches are `matches[start..<start + count]`.
  struct Rule {
    var start: Int
    var count: Int
    var keySlot: Int
  }
  let matchBytes: UnsafeRawBufferPointer
  let matches: UnsafeBufferPointer<Rules.CompiledMatch>
  let prediction: Rule
  let feedback: UnsafeBufferPointer<Rule>
  /// Per dataset: its kept columns' slots, `columnSlots[start..<start + count]`; `count` -1:
  /// the whole object.
  let columns: UnsafeBufferPointer<(start: Int, count: Int)>
  let columnSlots: UnsafeBufferPointer<Int>
  /// The slots `eventClass` reads, one bit each; nil when one of them is past the 64th.
  let classSlots: UInt64?

  init(matchBytes: [UInt8], prediction: Rules.CompiledRule, feedback: [Rules.CompiledRule], columns: [[Int]?]) {
    var all: [Rules.CompiledMatch] = []
    func flat(_ rule: Rules.CompiledRule) -> Rule {
      defer { all += rule.matches }
      return Rule(start: all.count, count: rule.matches.count, keySlot: rule.keySlot)
    }
    self.prediction = flat(prediction)
    self.feedback = OwnedBuffer.copy(feedback.map(flat))
    self.matches = OwnedBuffer.copy(all)
    self.matchBytes = UnsafeRawBufferPointer(OwnedBuffer.copy(matchBytes))
    var slots: [Int] = []
    self.columns = OwnedBuffer.copy(
      columns.map { kept in
        defer { slots += kept ?? [] }
        return (slots.count, kept?.count ?? -1)
      })
    columnSlots = OwnedBuffer.copy(slots)
    classSlots =
      all.allSatisfy { $0.slot < 64 } ? all.reduce(0) { $0 | 1 << UInt64($1.slot) } : nil
  }

  /// Appends a prediction's payload: per dataset, its kept columns as a compact array (or the
  /// whole object), all in one array.
  func writePayload(_ event: borrowing ScannedEvent, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "["))
    for d in columns.indices {
      if d > 0 { out.append(UInt8(ascii: ",")) }
      let (start, count) = columns[d]
      if count < 0 {
        event.writeDocument(to: &out)
      } else {
        event.writeCompactArray(UnsafeBufferPointer(rebasing: columnSlots[start..<start + count]), to: &out)
      }
    }
    out.append(UInt8(ascii: "]"))
  }

  /// Room `writeExactPayload` may use for `event`: more than its payload ever takes (each
  /// kept value is at most the event's text), plus 16 bytes it may write past the payload.
  @inline(__always)
  func payloadRoom(_ event: borrowing ScannedEvent) -> Int {
    18 + 2 * columns.count + (columnSlots.count + columns.count) * (event.json.count + 5)
  }

  /// Writes the payload `writePayload` writes for `event` at `target` (room for
  /// `payloadRoom(event)` bytes), in one pass, and returns its length; nil (having written
  /// garbage) when a kept value's text differs from its compact form (an escape, whitespace),
  /// which only `writePayload` rewrites. Values of up to 16 bytes are copied as two words
  /// (each `memcpy` call cost about 25 instructions); bytes past the payload may be written.
  ///
  /// One pass: measuring the payload first, then copying it, took about 170 instructions a
  /// prediction more.
  func writeExactPayload(_ event: borrowing ScannedEvent, to target: UnsafeMutableRawPointer) -> Int? {
    let slots = event.fields.slots
    let json = UnsafeRawPointer(event.json.baseAddress!)
    let jsonCount = event.json.count
    var p = target
    @inline(__always) func put(_ byte: UInt8) {
      p.storeBytes(of: byte, as: UInt8.self)
      p += 1
    }
    put(UInt8(ascii: "["))
    for d in columns.indices {
      if d > 0 { put(UInt8(ascii: ",")) }
      let (start, count) = columns[d]
      if count < 0 {
        guard event.fields.documentIsCompact else { return nil }
        let length = Int(event.fields.documentEnd &- event.fields.documentStart)
        p.copyMemory(from: json + Int(event.fields.documentStart), byteCount: length)
        p += length
        continue
      }
      put(UInt8(ascii: "["))
      for i in start..<start + count {
        if i > start { put(UInt8(ascii: ",")) }
        let slot = slots[columnSlots[i]]
        if slot.kind == .absent {
          p.storeBytes(of: UInt32(littleEndian: 0x6C6C_756E), as: UInt32.self)  // "null"
          p += 4
        } else {
          guard !slot.needsRewrite else { return nil }
          let from = Int(slot.start)
          let length = Int(slot.end &- slot.start)
          if length <= 16 && from &+ 16 <= jsonCount {
            p.storeBytes(of: json.loadUnaligned(fromByteOffset: from, as: UInt64.self), as: UInt64.self)
            p.storeBytes(
              of: json.loadUnaligned(fromByteOffset: from &+ 8, as: UInt64.self), toByteOffset: 8, as: UInt64.self)
          } else {
            p.copyMemory(from: json + from, byteCount: length)
          }
          p += length
        }
      }
      put(UInt8(ascii: "]"))
    }
    put(UInt8(ascii: "]"))
    return target.distance(to: p)
  }

  deinit {
    UnsafeMutableRawPointer(mutating: matchBytes.baseAddress!).deallocate()
    OwnedBuffer.free(matches)
    OwnedBuffer.free(feedback)
    OwnedBuffer.free(columns)
    OwnedBuffer.free(columnSlots)
  }

  @inline(__always)
  func accepts(_ rule: Rule, _ event: borrowing ScannedEvent) -> Bool {
    for i in rule.start..<rule.start + rule.count where !matches[i].matches(event, matchBytes) { return false }
    return true
  }

  func classify(_ event: borrowing ScannedEvent) -> Rules.Classification {
    classify(event, as: eventClass(event))
  }

  /// Which rule `event` matches: the first of the prediction rule and the feedback rules.
  func eventClass(_ event: borrowing ScannedEvent) -> Rules.EventClass {
    if accepts(prediction, event) { return .prediction }
    for i in feedback.indices where accepts(feedback[i], event) { return .feedback(type: i) }
    return .ignored
  }

  /// `classify(event)`, given `eventClass(event)`: the join key is read from the event.
  @inline(__always)
  func classify(_ event: borrowing ScannedEvent, as eventClass: Rules.EventClass) -> Rules.Classification {
    switch eventClass {
    case .prediction:
      guard let key = event.joinKey(prediction.keySlot) else { return .missingKey }
      return .prediction(key: key)
    case .feedback(let i):
      guard let key = event.joinKey(feedback[i].keySlot) else { return .missingKey }
      return .feedback(type: i, key: key)
    case .ignored:
      return .ignored
    }
  }
}

/// Everything the engine needs to know about events and labels.
public struct Rules: Sendable {
  public var prediction: EventRule
  public var feedbackTypes: [FeedbackType]
  public var labels: [LabelSpec]
  public var datasets: [DatasetSpec]
  public var clockSkew: Int64
  public var maxOutOfOrder: Int64

  /// Per dataset: the longest window of its labels; its rows are final at `tp + maxWindow`.
  public let datasetMaxWindow: [Int64]
  /// Per feedback type: the fields its labels read (sum/first), stored with each event.
  let neededPaths: [[FieldPath]]
  /// Per label: index of its field in `neededPaths[type]`, if it reads one.
  let labelFieldIndex: [Int?]
  /// Per feedback type: the labels fed by it.
  let labelsOfType: [[Int]]
  /// The longest window of any label: how long a finished key is remembered.
  public let maxWindow: Int64

  /// Every field path the rules read, once each: a scan with a selector over these paths puts
  /// path `i` in slot `i`.
  public let fieldPaths: [FieldPath]
  /// Path `i` of `fieldPaths` is slot `i`.
  public let selector: FieldSelector
  /// A `where:` entry as plain values (no reference to count on every line): a string to
  /// match lies in `matchBytes`.
  struct CompiledMatch: Sendable {
    enum Kind { case string, number, bool, null }
    var slot: Int
    var kind: Kind
    var number = 0.0
    var bool = false
    var start = 0
    var count = 0

    @inline(__always)
    func matches(_ event: borrowing ScannedEvent, _ bytes: UnsafeRawBufferPointer) -> Bool {
      switch kind {
      case .string: event.stringEquals(slot, UnsafeRawBufferPointer(rebasing: bytes[start..<start + count]))
      case .number: event.doubleValue(slot) == number
      case .bool: event.boolValue(slot) == bool
      case .null: event.slot(slot).kind == .null
      }
    }
  }
  /// A rule as `init` compiles it, before `RuleTables` lays it out.
  struct CompiledRule: Sendable {
    var matches: [CompiledMatch]
    var keySlot: Int
  }
  /// The compiled rules and kept columns; `classifier` refers to `tables` without retaining
  /// it (a call through a stored reference retains it).
  let tables: RuleTables
  let classifier: Unmanaged<RuleTables>
  /// Per feedback type: the slot of `dedupe_by`.
  let dedupeSlots: [Int?]
  /// Per feedback type: the slots of `neededPaths`.
  let neededSlots: [[Int]]

  public init(
    prediction: EventRule, feedbackTypes: [FeedbackType], labels: [LabelSpec], datasets: [DatasetSpec],
    clockSkew: Int64 = 0, maxOutOfOrder: Int64 = 5_000_000_000
  ) {
    precondition(datasets.count <= 64, "at most 64 datasets")
    self.prediction = prediction
    self.feedbackTypes = feedbackTypes
    self.labels = labels
    self.datasets = datasets
    self.clockSkew = clockSkew
    self.maxOutOfOrder = maxOutOfOrder
    datasetMaxWindow = datasets.map { d in d.labels.map { labels[$0].window }.max() ?? 0 }
    var needed = [[FieldPath]](repeating: [], count: feedbackTypes.count)
    var fieldIndex: [Int?] = []
    var ofType = [[Int]](repeating: [], count: feedbackTypes.count)
    for (i, label) in labels.enumerated() {
      ofType[label.feedbackType].append(i)
      if let path = label.value.path {
        if let existing = needed[label.feedbackType].firstIndex(of: path) {
          fieldIndex.append(existing)
        } else {
          needed[label.feedbackType].append(path)
          fieldIndex.append(needed[label.feedbackType].count - 1)
        }
      } else {
        fieldIndex.append(nil)
      }
    }
    neededPaths = needed
    labelFieldIndex = fieldIndex
    labelsOfType = ofType
    maxWindow = labels.map(\.window).max() ?? 0

    var paths: [FieldPath] = []
    func slot(_ path: FieldPath) -> Int {
      if let existing = paths.firstIndex(of: path) { return existing }
      paths.append(path)
      return paths.count - 1
    }
    var matchBytes: [UInt8] = []
    func compile(_ rule: EventRule) -> CompiledRule {
      CompiledRule(
        matches: rule.matches.map { match in
          var compiled = CompiledMatch(slot: slot(match.path), kind: .null)
          switch match.value {
          case .string(let text):
            compiled.kind = .string
            compiled.start = matchBytes.count
            compiled.count = text.utf8.count
            matchBytes.append(contentsOf: text.utf8)
          case .number(let n):
            compiled.kind = .number
            compiled.number = n
          case .bool(let b):
            compiled.kind = .bool
            compiled.bool = b
          case .null:
            break
          }
          return compiled
        }, keySlot: slot(rule.key))
    }
    let compiledPrediction = compile(prediction)
    let compiledFeedback = feedbackTypes.map { compile($0.rule) }
    dedupeSlots = feedbackTypes.map { $0.dedupeBy.map(slot) }
    neededSlots = needed.map { $0.map(slot) }
    let columnSlots = datasets.map { $0.columns?.map { slot($0.path) } }
    tables = RuleTables(
      matchBytes: matchBytes, prediction: compiledPrediction, feedback: compiledFeedback, columns: columnSlots)
    classifier = .passUnretained(tables)
    fieldPaths = paths
    selector = FieldSelector(paths: paths)
  }

  /// What a scanned event is; its slots follow `fieldPaths`.
  public func classify(_ event: ScannedEvent) -> Classification {
    classifier._withUnsafeGuaranteedRef { $0.classify(event) }
  }

  /// `classify(event)`, given `matcher.eventClass(event)`.
  @inline(__always)
  public func classify(_ event: ScannedEvent, as eventClass: EventClass) -> Classification {
    classifier._withUnsafeGuaranteedRef { $0.classify(event, as: eventClass) }
  }

  /// Appends a prediction's payload (see `RuleTables.writePayload`).
  func writePayload(_ event: borrowing ScannedEvent, to out: inout [UInt8]) {
    classifier._withUnsafeGuaranteedRef { $0.writePayload(event, to: &out) }
  }

  /// `RuleTables.payloadRoom`.
  func payloadRoom(_ event: borrowing ScannedEvent) -> Int {
    classifier._withUnsafeGuaranteedRef { $0.payloadRoom(event) }
  }

  /// `RuleTables.writeExactPayload`.
  func writeExactPayload(_ event: borrowing ScannedEvent, to target: UnsafeMutableRawPointer) -> Int? {
    classifier._withUnsafeGuaranteedRef { $0.writeExactPayload(event, to: target) }
  }

  /// The rule an event matches (`eventClass`).
  public enum EventClass: Sendable, Equatable {
    case prediction
    case feedback(type: Int)
    case ignored

    /// As one number (0 ignored, 1 prediction, 2 + t feedback type t), to be kept per line.
    public var code: UInt32 {
      switch self {
      case .ignored: 0
      case .prediction: 1
      case .feedback(let type): 2 + UInt32(truncatingIfNeeded: type)
      }
    }

    public init(code: UInt32) {
      switch code {
      case 0: self = .ignored
      case 1: self = .prediction
      default: self = .feedback(type: Int(code - 2))
      }
    }
  }

  /// What can be found out about an event ahead, on another thread: a plain value holding no
  /// reference, valid while these rules are (a closure reading the rules themselves copied the
  /// whole struct every call).
  public struct Matcher: @unchecked Sendable {
    let tables: Unmanaged<RuleTables>
    /// Which rule the event matches, without its key: a plain value, handed over for free.
    @inline(__always)
    public func eventClass(_ event: borrowing ScannedEvent) -> EventClass {
      tables._withUnsafeGuaranteedRef { $0.eventClass(event) }
    }

    /// The slots `eventClass` reads (those of the `where:` fields), one bit each: two events
    /// with the same slots there and the same text in them are of the same class. Nil when a
    /// slot is past the 64th.
    public var classSlots: UInt64? { tables._withUnsafeGuaranteedRef { $0.classSlots } }

    /// The hash a key table seeded with `seed` gives the join key of an event of class
    /// `eventClass` (`nil`: ignored, or no usable key).
    @inline(__always)
    public func keyHash(_ event: borrowing ScannedEvent, _ eventClass: EventClass, seed: UInt64) -> UInt64? {
      let slot: Int
      switch eventClass {
      case .prediction: slot = tables._withUnsafeGuaranteedRef { $0.prediction.keySlot }
      case .feedback(let type): slot = tables._withUnsafeGuaranteedRef { $0.feedback[type].keySlot }
      case .ignored: return nil
      }
      guard let key = event.joinKey(slot) else { return nil }
      return key.hash(seed: seed)
    }
  }

  public var matcher: Matcher { Matcher(tables: classifier) }

  public enum Classification: Sendable, Equatable {
    case prediction(key: JoinKey)
    case feedback(type: Int, key: JoinKey)
    case ignored
    /// Matched a rule but has no usable key (missing, or not a string or integer).
    case missingKey
  }

  /// Scans a decoded event's object for `fieldPaths` (tests and tools: the pipeline scans lines).
  public func withScanned<R>(_ event: Event, _ body: (ScannedEvent) -> R) -> R {
    var bytes: [UInt8] = []
    event.object.write(to: &bytes)
    return bytes.withUnsafeBytes { raw in
      var scanned = ScannedEvent(time: event.time, json: raw, fields: ScannedFields(count: fieldPaths.count))
      _ = selector.scan(raw, into: &scanned.fields)
      return body(scanned)
    }
  }

  /// Whether feedback at `tf` lies in label `label`'s window of a prediction at `tp`:
  /// `tp - clock_skew <= tf < tp + W`.
  func inWindow(label: Int, predictionTime tp: Int64, feedbackTime tf: Int64) -> Bool {
    tp &- clockSkew <= tf && tf < tp &+ labels[label].window
  }
}
