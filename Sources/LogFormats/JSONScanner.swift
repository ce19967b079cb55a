import CByteScan

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The paths a scan looks for, compiled into a trie of object keys.
///
/// Path `i` of `paths` is reported in slot `i` of `ScannedFields`. A path that is a prefix of
/// another (`features` and `features.device`) is fine: the outer value is recorded whole and
/// the scan still descends into it.
public final class FieldSelector: Sendable {
  public let paths: [FieldPath]
  /// Owned by this object: allocated in `init`, freed in `deinit`.
  let trie: Trie

  /// The key trie, flattened into buffers of plain values that this selector owns, so that
  /// a scan copies and retains nothing. Node 0 is the document; node `n`'s ranges run from
  /// `…Start[n]` to `…Start[n + 1]`.
  struct Trie: @unchecked Sendable {
    struct Edge: Sendable {
      var keyStart: Int
      var keyLength: Int
      var child: Int
      /// The key's first (up to) 8 bytes as a little-endian word, zero beyond its end: most
      /// keys of a log line are told apart from an edge's by one comparison (`findChild`).
      var head: UInt64
    }

    /// The first `min(length, 8)` bytes at `bytes` as a little-endian word, zero beyond.
    /// `readable`: how many bytes from `bytes` on may be read (at least `min(length, 8)`).
    @inline(__always)
    static func head(_ bytes: UnsafeRawPointer, length: Int, readable: Int) -> UInt64 {
      if readable >= 8 {
        let word = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        return length >= 8 ? word : word & ((1 << (UInt64(length) * 8)) &- 1)
      }
      var word: UInt64 = 0
      for i in 0..<min(length, 8) { word |= UInt64(bytes.load(fromByteOffset: i, as: UInt8.self)) << (UInt64(i) * 8) }
      return word
    }
    /// How a node's edges are searched: one probe of a collision-free hash table, or, when two
    /// of its keys share their length and first eight bytes, one by one.
    struct Lookup: Sendable {
      /// Where the node's table starts in `table`; -1: search the edges one by one.
      var tableStart: Int32
      /// 64 minus the table's size in bits (the hash's top bits index the table).
      var shift: UInt8
      var multiplier: UInt64
    }

    /// The table slot of the key with `head` and `length` (`lookup.tableStart` ≥ 0).
    @inline(__always)
    static func slot(head: UInt64, length: Int, _ lookup: Lookup) -> Int {
      let mixed = head &+ UInt64(truncatingIfNeeded: length) &* 0x9E37_79B9_7F4A_7C15
      return Int(truncatingIfNeeded: (mixed &* lookup.multiplier) &>> UInt64(lookup.shift))
    }

    let edgeStart: UnsafeBufferPointer<Int>
    let edges: UnsafeBufferPointer<Edge>
    let lookups: UnsafeBufferPointer<Lookup>
    /// The nodes' hash tables, back to back: an edge's index, or -1 for an empty slot.
    let table: UnsafeBufferPointer<Int32>
    /// Every edge's key, as UTF-8, back to back.
    let keyBytes: UnsafeBufferPointer<UInt8>
    /// The slots of the paths ending at a node (a path may be selected twice).
    let slotStart: UnsafeBufferPointer<Int>
    let slots: UnsafeBufferPointer<Int>
    /// The slots of the paths strictly below a node: reset when its key appears again (last wins).
    let belowStart: UnsafeBufferPointer<Int>
    let below: UnsafeBufferPointer<Int>
  }

  /// Whether a scan first indexes the text's quotes (`JSONScanner.indexQuotes`); `false` reads
  /// every text byte by byte, the slower path the tests hold the indexed one against.
  let indexQuotes: Bool

  public convenience init(paths: [FieldPath]) {
    self.init(paths: paths, indexQuotes: true)
  }

  init(paths: [FieldPath], indexQuotes: Bool) {
    self.paths = paths
    self.indexQuotes = indexQuotes
    // Built as nested nodes, then flattened.
    struct Node {
      var keys: [[UInt8]] = []
      var children: [Int] = []
      var slots: [Int] = []
    }
    var nodes = [Node()]
    for (slot, path) in paths.enumerated() {
      var current = 0
      for segment in path.segments {
        let key = Array(segment.utf8)
        if let found = nodes[current].keys.firstIndex(of: key) {
          current = nodes[current].children[found]
        } else {
          nodes.append(Node())
          nodes[current].keys.append(key)
          nodes[current].children.append(nodes.count - 1)
          current = nodes.count - 1
        }
      }
      nodes[current].slots.append(slot)
    }
    func below(_ node: Int) -> [Int] {
      nodes[node].children.flatMap { nodes[$0].slots + below($0) }
    }
    var edgeStart: [Int] = []
    var edges: [Trie.Edge] = []
    var keyBytes: [UInt8] = []
    var slotStart: [Int] = []
    var slots: [Int] = []
    var belowStart: [Int] = []
    var belowSlots: [Int] = []
    for (index, node) in nodes.enumerated() {
      edgeStart.append(edges.count)
      for (key, child) in zip(node.keys, node.children) {
        let head = key.withUnsafeBytes {
          $0.isEmpty ? 0 : Trie.head($0.baseAddress!, length: key.count, readable: key.count)
        }
        edges.append(Trie.Edge(keyStart: keyBytes.count, keyLength: key.count, child: child, head: head))
        keyBytes += key
      }
      slotStart.append(slots.count)
      slots += node.slots
      belowStart.append(belowSlots.count)
      belowSlots += below(index)
    }
    edgeStart.append(edges.count)
    slotStart.append(slots.count)
    belowStart.append(belowSlots.count)
    var lookups: [Trie.Lookup] = []
    var table: [Int32] = []
    for node in nodes.indices {
      let nodeEdges = Array(edges[edgeStart[node]..<edgeStart[node + 1]])
      let found = Self.perfectHash(nodeEdges)
      lookups.append(
        found.map { Trie.Lookup(tableStart: Int32(table.count), shift: $0.shift, multiplier: $0.multiplier) }
          ?? Trie.Lookup(tableStart: -1, shift: 0, multiplier: 0))
      table += found?.table.map { $0 < 0 ? -1 : Int32(edgeStart[node] + $0) } ?? []
    }
    trie = Trie(
      edgeStart: OwnedBuffer.copy(edgeStart), edges: OwnedBuffer.copy(edges),
      lookups: OwnedBuffer.copy(lookups), table: OwnedBuffer.copy(table), keyBytes: OwnedBuffer.copy(keyBytes),
      slotStart: OwnedBuffer.copy(slotStart), slots: OwnedBuffer.copy(slots), belowStart: OwnedBuffer.copy(belowStart),
      below: OwnedBuffer.copy(belowSlots))
  }

  /// A multiplier and table size under which no two of `edges` share a slot, with the table
  /// (the position of each slot's edge in `edges`, -1 for none); `nil` when two edges have the
  /// same length and head (the node's edges are then searched one by one) or there are none.
  /// Multipliers come from a fixed seed: the same paths give the same tables in every run. The
  /// table has at most 16 slots per edge (at most 32 for one edge); a node so large that no
  /// multiplier tried fits its keys in that (hundreds of selected keys) is searched one by one.
  static func perfectHash(_ edges: [Trie.Edge]) -> (shift: UInt8, multiplier: UInt64, table: [Int])? {
    guard !edges.isEmpty else { return nil }
    var distinct = Set<[UInt64]>()
    for edge in edges where !distinct.insert([edge.head, UInt64(edge.keyLength)]).inserted { return nil }
    var bits = 1
    while (1 << bits) < 2 * edges.count { bits += 1 }
    let maximumBits = bits + 3
    var state: UInt64 = 0x5EED_F1E1_D5E1_EC70
    while bits <= maximumBits {
      for _ in 0..<64 {
        // SplitMix64; odd, so that the multiplication is a bijection.
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        let multiplier = (z ^ (z >> 31)) | 1
        let lookup = Trie.Lookup(tableStart: 0, shift: UInt8(64 - bits), multiplier: multiplier)
        var table = [Int](repeating: -1, count: 1 << bits)
        var collided = false
        for (position, edge) in edges.enumerated() {
          let slot = Trie.slot(head: edge.head, length: edge.keyLength, lookup)
          if table[slot] >= 0 {
            collided = true
            break
          }
          table[slot] = position
        }
        if !collided { return (lookup.shift, multiplier, table) }
      }
      bits += 1
    }
    return nil
  }

  deinit {
    OwnedBuffer.free(trie.edgeStart)
    OwnedBuffer.free(trie.edges)
    OwnedBuffer.free(trie.lookups)
    OwnedBuffer.free(trie.table)
    OwnedBuffer.free(trie.keyBytes)
    OwnedBuffer.free(trie.slotStart)
    OwnedBuffer.free(trie.slots)
    OwnedBuffer.free(trie.belowStart)
    OwnedBuffer.free(trie.below)
  }
}

/// The kind of a JSON value found by a scan.
public enum JSONKind: UInt8, Sendable {
  case absent, null, bool, number, string, array, object
}

/// Where one selected value lies in the scanned bytes.
public struct FieldSlot: Sendable, Equatable {
  /// Offsets into the scanned bytes; a string's range includes its quotes.
  public var start: Int32 = 0
  public var end: Int32 = 0
  public var kind: JSONKind = .absent
  /// A string (or a container) whose text holds an escape or insignificant whitespace, so its
  /// bytes differ from the compact form `JSONValue.write` produces.
  public var needsRewrite = false
}

/// The result of scanning one JSON text: where each selected path's value is.
///
/// Reused from line to line, so scanning allocates nothing.
public struct ScannedFields: Sendable, Equatable {
  public internal(set) var slots: [FieldSlot]
  /// The whole document's range in the scanned bytes.
  public internal(set) var documentStart: Int32 = 0
  public internal(set) var documentEnd: Int32 = 0
  /// The document's bytes equal its compact serialization.
  public internal(set) var documentIsCompact = false
  /// The shapes of the lines scanned into these fields before (`LineShapes`).
  public internal(set) var shapes = LineShapes()

  public init(count: Int) {
    slots = Array(repeating: FieldSlot(), count: count)
  }

  /// The same scan results (the shapes learnt on the way are not compared).
  public static func == (a: ScannedFields, b: ScannedFields) -> Bool {
    a.slots == b.slots && a.documentStart == b.documentStart && a.documentEnd == b.documentEnd
      && a.documentIsCompact == b.documentIsCompact
  }
}

extension FieldSelector {
  /// Strictly validates `bytes` as one JSON text — accepting exactly what `JSONValue.parse`
  /// accepts — and records where each selected path's value lies. Returns the document's kind,
  /// or `nil` when the bytes are not JSON.
  public func scan(_ bytes: UnsafeRawBufferPointer, into fields: inout ScannedFields) -> JSONKind? {
    var document: (start: Int32, end: Int32, compact: Bool)?
    // The slots are written through a pointer taken once: through the array, every write
    // checked that it was not shared.
    let kind = fields.slots.withUnsafeMutableBufferPointer { slots -> JSONKind? in
      guard let base = bytes.baseAddress, bytes.count > 0 else {
        slots.update(repeating: FieldSlot())
        return nil
      }
      let text = base.assumingMemoryBound(to: UInt8.self)
      // A line of a shape seen before is read by its values alone (before a scanner is made:
      // that copies the trie), which writes every slot; any other, in full, which writes only
      // the slots of the paths it finds.
      if indexQuotes, bytes.count <= JSONScanner.indexedLength,
        let kind = fields.shapes.scan(text, bytes.count, slots: slots.baseAddress, slotCount: slots.count)
      {
        document = (0, Int32(truncatingIfNeeded: bytes.count), true)
        return kind
      }
      fields.shapes.lastFit = (0, 0)
      slots.update(repeating: FieldSlot())
      var scanner = JSONScanner(bytes: text, count: bytes.count, trie: trie, slots: slots.baseAddress)
      defer { document = scanner.document }
      guard indexQuotes, bytes.count <= JSONScanner.indexedLength else { return scanner.scanDocument() }
      return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: JSONScanner.indexedLength / 64) { quotes in
        let found = JSONScanner.indexQuotes(text, bytes.count, into: quotes.baseAddress!)
        guard found.plain else { return scanner.scanDocument() }
        let index = UnsafePointer(quotes.baseAddress!)
        scanner.quotes = index
        guard found.compact else { return scanner.scanDocument() }
        guard let kind = scanner.scanDocument(JSONCompactText.self) else { return nil }
        fields.shapes.noteMiss(
          text, bytes.count, quotes: index, trie: trie, slots: slots.baseAddress, slotCount: slots.count, kind: kind)
        return kind
      }
    }
    if kind != nil, let document {
      fields.documentStart = document.start
      fields.documentEnd = document.end
      fields.documentIsCompact = document.compact
    }
    return kind
  }
}

/// What a scan knows of a text before it starts: the scan is compiled once for each kind, so
/// that a text known to be plain and compact (most log lines) is scanned without the checks
/// and the paths it does not need.
protocol JSONScanMode {
  /// Whitespace may lie between tokens.
  static var mayHaveWhitespace: Bool { get }
  /// The text's quotes are indexed and no byte of it is special (`JSONScanner.quotes` is set):
  /// every string ends at the next quote and holds no escape.
  static var quotesIndexed: Bool { get }
}

/// Any JSON text (its quotes may still be indexed: `JSONScanner.quotes` says).
enum JSONAnyText: JSONScanMode {
  static var mayHaveWhitespace: Bool { true }
  static var quotesIndexed: Bool { false }
}

/// A plain text with no whitespace outside its strings (`JSONScanner.indexQuotes`'s `compact`).
enum JSONCompactText: JSONScanMode {
  static var mayHaveWhitespace: Bool { false }
  static var quotesIndexed: Bool { true }
}

/// The scanning twin of `JSONParser`: the same grammar and checks, no values built.
struct JSONScanner {
  let bytes: UnsafePointer<UInt8>
  let count: Int
  let trie: FieldSelector.Trie
  var index = 0
  var depth = 0
  /// Set when anything makes the text differ from its compact form.
  var rewrite = false
  /// Whether the string scanned last held an escape.
  var stringHadEscape = false
  /// Where the text's quotes are, one bit per byte (`indexQuotes`), when it has no byte that
  /// needs a closer look inside a string (backslash, control byte, non-ASCII): then every
  /// string ends at the next quote, found in one step. `nil`: strings are read byte by byte.
  var quotes: UnsafePointer<UInt64>?
  /// Where the selected values' slots are (`nil` only when nothing is selected).
  let slots: UnsafeMutablePointer<FieldSlot>?
  /// The whole text's value: its range, and whether its bytes are its compact form.
  var document: (start: Int32, end: Int32, compact: Bool)?

  /// The longest text whose quotes are indexed (its index lives on the stack); longer ones,
  /// rare in logs, are scanned byte by byte.
  static let indexedLength = 4096

  /// Sets one bit per quote of the `count` bytes at `bytes` (`count` > 0) into `quotes`
  /// (`(count + 63) / 64` words; bits past the end are zero). `plain`: no byte is special (a
  /// backslash, a control byte or non-ASCII); only then does the index tell where each string
  /// ends. `compact` (only when `plain`): besides, no space lies outside the strings (taking
  /// the quotes two by two as the strings' ends), so there is no whitespace to skip between
  /// tokens. The work is done in C (`CByteScan`), which has vector instructions.
  @inline(__always)
  static func indexQuotes(
    _ bytes: UnsafePointer<UInt8>, _ count: Int, into quotes: UnsafeMutablePointer<UInt64>
  )
    -> (plain: Bool, compact: Bool)
  {
    let found = feedbackd_json_index_quotes(bytes, count, quotes)
    return (found & FEEDBACKD_INDEX_PLAIN != 0, found & FEEDBACKD_INDEX_COMPACT != 0)
  }

  init(bytes: UnsafePointer<UInt8>, count: Int, trie: FieldSelector.Trie, slots: UnsafeMutablePointer<FieldSlot>?) {
    self.bytes = bytes
    self.count = count
    self.trie = trie
    self.slots = slots
  }

  /// Scans the whole text; on success, `document` says where its value is. `Mode`:
  /// `JSONCompactText` only for a text known to be one (and with `quotes` set).
  mutating func scanDocument<Mode: JSONScanMode>(_: Mode.Type = JSONAnyText.self) -> JSONKind? {
    skipWhitespace(Mode.self)
    let start = index
    rewrite = false
    guard let kind = scanValue(node: 0, Mode.self) else { return nil }
    let end = index
    let compact = !rewrite
    skipWhitespace(Mode.self)
    guard index == count else { return nil }
    document = (Int32(truncatingIfNeeded: start), Int32(truncatingIfNeeded: end), compact)
    return kind
  }

  @inline(__always) mutating func skipWhitespace<Mode: JSONScanMode>(_: Mode.Type = JSONAnyText.self) {
    // Nothing to skip in a compact text: the call is compiled away.
    guard Mode.mayHaveWhitespace else { return }
    // Whitespace is at most 0x20: one comparison tells most bytes apart (a log line has none).
    while index < count, bytes[index] <= ASCII.space, ASCII.isWhitespace(bytes[index]) {
      index += 1
      rewrite = true
    }
  }

  /// `node`: the selector node this value sits at (-1: not under any selected path).
  @inline(__always)
  mutating func scanValue<Mode: JSONScanMode>(node: Int, _: Mode.Type) -> JSONKind? {
    guard index < count else { return nil }
    switch bytes[index] {
    case ASCII.quote: return scanString(Mode.self) ? .string : nil
    case ASCII.openBrace: return scanObject(node: node, Mode.self) ? .object : nil
    case ASCII.openBracket: return scanArray(Mode.self) ? .array : nil
    case UInt8(ascii: "t"): return literal("true") ? .bool : nil
    case UInt8(ascii: "f"): return literal("false") ? .bool : nil
    case UInt8(ascii: "n"): return literal("null") ? .null : nil
    case ASCII.minus, ASCII.zero...ASCII.nine: return scanNumber() ? .number : nil
    default: return nil
    }
  }

  mutating func literal(_ text: StaticString) -> Bool {
    let length = text.utf8CodeUnitCount
    guard count - index >= length else { return false }
    let expected = text.utf8Start
    for offset in 0..<length where bytes[index + offset] != expected[offset] { return false }
    index += length
    return true
  }

  mutating func enterContainer() -> Bool {
    depth += 1
    index += 1
    return depth <= JSONValue.maximumDepth
  }

  /// With `elements`, notes where each element lies (`JSONValue.arrayElements`).
  mutating func scanArray<Mode: JSONScanMode>(
    _: Mode.Type = JSONAnyText.self, elements: UnsafeMutablePointer<[Range<Int>]>? = nil
  ) -> Bool {
    guard enterContainer() else { return false }
    skipWhitespace(Mode.self)
    if index < count, bytes[index] == ASCII.closeBracket {
      index += 1
      depth -= 1
      return true
    }
    while true {
      skipWhitespace(Mode.self)
      let start = index
      guard scanValue(node: -1, Mode.self) != nil else { return false }
      elements?.pointee.append(start..<index)
      skipWhitespace(Mode.self)
      guard index < count else { return false }
      let byte = bytes[index]
      index += 1
      if byte == ASCII.comma { continue }
      if byte == ASCII.closeBracket { break }
      return false
    }
    depth -= 1
    return true
  }

  mutating func scanObject<Mode: JSONScanMode>(node: Int, _: Mode.Type) -> Bool {
    guard enterContainer() else { return false }
    skipWhitespace(Mode.self)
    if index < count, bytes[index] == ASCII.closeBrace {
      index += 1
      depth -= 1
      return true
    }
    while true {
      skipWhitespace(Mode.self)
      guard index < count, bytes[index] == ASCII.quote else { return false }
      let keyStart = index + 1
      guard scanString(Mode.self) else { return false }
      var child = -1
      if node >= 0, trie.edgeStart[node] < trie.edgeStart[node + 1] {
        child = findChild(node, keyStart, index &- 1, escaped: Mode.quotesIndexed ? false : stringHadEscape)
      }
      skipWhitespace(Mode.self)
      guard index < count, bytes[index] == ASCII.colon else { return false }
      index += 1
      skipWhitespace(Mode.self)
      if child >= 0 {
        for position in trie.belowStart[child]..<trie.belowStart[child + 1] {
          slots.unsafelyUnwrapped[trie.below[position]] = FieldSlot()
        }
        let start = index
        let rewriteBefore = rewrite
        rewrite = false
        guard let kind = scanValue(node: child, Mode.self) else { return false }
        for position in trie.slotStart[child]..<trie.slotStart[child + 1] {
          slots.unsafelyUnwrapped[trie.slots[position]] = FieldSlot(
            start: Int32(truncatingIfNeeded: start), end: Int32(truncatingIfNeeded: index), kind: kind,
            needsRewrite: rewrite)
        }
        rewrite = rewrite || rewriteBefore
      } else {
        guard scanValue(node: -1, Mode.self) != nil else { return false }
      }
      skipWhitespace(Mode.self)
      guard index < count else { return false }
      let byte = bytes[index]
      index += 1
      if byte == ASCII.comma { continue }
      if byte == ASCII.closeBrace { break }
      return false
    }
    depth -= 1
    return true
  }

  /// The child of `node` named by the key in `start..<end` (raw bytes between the quotes).
  ///
  /// Inlined, as is the lookup it makes: a call from this mutating scan to a non-mutating
  /// method copied the whole scanner (146 bytes, `memcpy`) for every key looked up.
  @_transparent
  mutating func findChild(_ node: Int, _ start: Int, _ end: Int, escaped: Bool) -> Int {
    if !escaped { return findChild(node, bytes + start, end - start, readable: count - start) }
    return findEscapedChild(node, start)
  }

  /// Rare: decodes the key at `start` with the parser, then compares.
  @inline(never)
  mutating func findEscapedChild(_ node: Int, _ start: Int) -> Int {
    var parser = JSONParser(bytes: bytes, count: count)
    parser.index = start - 1
    guard var decoded = try? parser.parseString() else { return -1 }
    return decoded.withUTF8 { findChild(node, $0.baseAddress ?? bytes, $0.count, readable: $0.count) }
  }

  /// The child of `node` named by the `length` bytes at `key`; `readable` bytes from `key` on
  /// may be read (at least `length`: the first 8 are read in one load when there are 8).
  @_transparent
  func findChild(_ node: Int, _ key: UnsafePointer<UInt8>, _ length: Int, readable: Int) -> Int {
    let head = length == 0 ? 0 : FieldSelector.Trie.head(UnsafeRawPointer(key), length: length, readable: readable)
    let lookup = trie.lookups[node]
    if lookup.tableStart >= 0 {
      let found = trie.table[Int(lookup.tableStart) + FieldSelector.Trie.slot(head: head, length: length, lookup)]
      guard found >= 0 else { return -1 }
      let edge = trie.edges[Int(found)]
      guard edge.head == head, edge.keyLength == length else { return -1 }
      return restMatches(edge, key, length) ? edge.child : -1
    }
    var position = trie.edgeStart[node]
    let end = trie.edgeStart[node + 1]
    while position < end {
      let edge = trie.edges[position]
      position += 1
      guard edge.head == head, edge.keyLength == length else { continue }
      if restMatches(edge, key, length) { return edge.child }
    }
    return -1
  }

  /// Whether the `length` bytes at `key`, whose first eight match `edge`'s key, match the rest.
  @_transparent
  func restMatches(_ edge: FieldSelector.Trie.Edge, _ key: UnsafePointer<UInt8>, _ length: Int) -> Bool {
    length <= 8 || memcmp(trie.keyBytes.baseAddress! + edge.keyStart + 8, key + 8, length - 8) == 0
  }

  mutating func scanNumber() -> Bool {
    guard let end = JSONGrammar.numberEnd(bytes, index, count) else { return false }
    index = end
    return true
  }

  /// Scans a string from its opening quote to after its closing quote.
  @inline(__always)
  mutating func scanString<Mode: JSONScanMode>(_: Mode.Type) -> Bool {
    index &+= 1
    // A compact text's scan never reads `stringHadEscape`.
    if Mode.quotesIndexed { return scanIndexedString(quotes.unsafelyUnwrapped) }
    stringHadEscape = false
    if let quotes { return scanIndexedString(quotes) }
    while index < count {
      // Eight bytes at a time while none is special: a quote, a backslash, a control byte or
      // a non-ASCII byte (SWAR: a byte's high bit is set in `special` if it is one of those;
      // bits above the first real hit may be false alarms, so only the lowest one is used).
      while index + 8 <= count {
        let word = UInt64(littleEndian: UnsafeRawPointer(bytes + index).loadUnaligned(as: UInt64.self))
        let special = JSONBytes.stringSpecials(word) | word & 0x8080_8080_8080_8080
        if special == 0 {
          index += 8
        } else {
          index += special.trailingZeroBitCount / 8
          break
        }
      }
      guard index < count else { break }
      let byte = bytes[index]
      if byte == ASCII.quote {
        index += 1
        return true
      }
      if byte == ASCII.backslash {
        rewrite = true
        stringHadEscape = true
        guard skipEscape() else { return false }
      } else if byte < 0x20 {
        return false
      } else if byte < 0x80 {
        index += 1
      } else {
        guard let length = JSONGrammar.utf8SequenceLength(bytes, index, count) else { return false }
        index += length
      }
    }
    return false
  }

  /// The rest of a string (from after its opening quote) in a text whose quotes are indexed,
  /// with nothing to check in it: the string ends at the next quote.
  @inline(__always)
  mutating func scanIndexedString(_ quotes: UnsafePointer<UInt64>) -> Bool {
    guard index < count else { return false }
    var word = index &>> 6
    var bits = quotes[word] & (~0 &<< UInt64(index & 63))
    let lastWord = (count &- 1) &>> 6
    while bits == 0 {
      guard word < lastWord else { return false }
      word &+= 1
      bits = quotes[word]
    }
    index = word &<< 6 &+ bits.trailingZeroBitCount &+ 1
    return true
  }

  mutating func skipEscape() -> Bool {
    guard count - index >= 2 else { return false }
    switch bytes[index + 1] {
    case ASCII.quote, ASCII.backslash, ASCII.slash, UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
      UInt8(ascii: "r"), UInt8(ascii: "t"):
      index += 2
      return true
    case UInt8(ascii: "u"):
      guard count - index >= 6 else { return false }
      for position in (index + 2)..<(index + 6) where !JSONGrammar.isHex(bytes[position]) { return false }
      // Lone or mismatched surrogates decode to U+FFFD in the parser; they are valid here too.
      index += 6
      return true
    default:
      return false
    }
  }

}

// MARK: - Reading scanned values

/// One scanned JSON text and where its selected values are; valid while `json` is.
public struct ScannedEvent {
  public var time: Int64
  public var json: UnsafeRawBufferPointer
  public var fields: ScannedFields
  /// The last time read from text (`LineDecoder.scan`), kept from line to line: an event
  /// reused for a file's lines reads most of their times from the seconds on.
  public var timeMemo = Timestamp.Memo()

  public init(time: Int64, json: UnsafeRawBufferPointer, fields: ScannedFields) {
    self.time = time
    self.json = json
    self.fields = fields
  }

  @inline(__always) public func slot(_ index: Int) -> FieldSlot { fields.slots[index] }

  /// The raw bytes of a found value (a string with its quotes).
  @inline(__always) public func raw(_ slot: FieldSlot) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: json.baseAddress! + Int(slot.start), count: Int(slot.end &- slot.start))
  }

  /// The bytes between a found string's quotes (`raw` without its first and last byte).
  ///
  /// By pointer: `raw(slot).dropFirst().dropLast()` went through the generic `Collection`
  /// methods, about 60 instructions each, on every line's timestamp and key.
  @inline(__always) public func stringContents(_ slot: FieldSlot) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: json.baseAddress! + Int(slot.start) + 1, count: Int(slot.end &- slot.start) - 2)
  }

  /// The value as a `JSONValue` (parsed), `nil` when absent.
  public func value(_ index: Int) -> JSONValue? {
    let slot = fields.slots[index]
    guard slot.kind != .absent else { return nil }
    return try? JSONValue.parse(raw(slot))
  }

  /// Appends the value's compact serialization (`null` when absent), as `JSONValue.write` would.
  public func writeCompact(_ index: Int, to out: inout [UInt8]) {
    let slot = fields.slots[index]
    switch slot.kind {
    case .absent:
      JSONValue.appendLiteral("null", to: &out)
    case _ where !slot.needsRewrite:
      out.appendBytes(raw(slot))
    default:
      (try? JSONValue.parse(raw(slot)))?.write(to: &out)
    }
  }

  /// Appends `[v1,v2,…]`: the compact serializations of the values in `slots`.
  public func writeCompactArray(_ slots: [Int], to out: inout [UInt8]) {
    slots.withUnsafeBufferPointer { writeCompactArray($0, to: &out) }
  }

  /// The same, the slots given by pointer.
  public func writeCompactArray(_ slots: UnsafeBufferPointer<Int>, to out: inout [UInt8]) {
    out.append(ASCII.openBracket)
    for (position, slot) in slots.enumerated() {
      if position > 0 { out.append(ASCII.comma) }
      writeCompact(slot, to: &out)
    }
    out.append(ASCII.closeBracket)
  }

  /// Appends the whole document's compact serialization.
  public func writeDocument(to out: inout [UInt8]) {
    let range = Int(fields.documentStart)..<Int(fields.documentEnd)
    if fields.documentIsCompact {
      out.append(contentsOf: UnsafeRawBufferPointer(rebasing: json[range]))
    } else {
      (try? JSONValue.parse(UnsafeRawBufferPointer(rebasing: json[range])))?.write(to: &out)
    }
  }

  /// The compact text of a value, `nil` when absent.
  public func compactText(_ index: Int) -> String? {
    guard fields.slots[index].kind != .absent else { return nil }
    var out: [UInt8] = []
    writeCompact(index, to: &out)
    return String(decoding: out, as: UTF8.self)
  }

  /// Join-key text: a string's contents or a number's literal text; `nil` for other kinds.
  public func keyText(_ index: Int) -> String? {
    let slot = fields.slots[index]
    switch slot.kind {
    case .number:
      return String(decoding: raw(slot), as: UTF8.self)
    case .string where !slot.needsRewrite:
      return String(decoding: stringContents(slot), as: UTF8.self)
    case .string:
      return value(index)?.stringValue
    default:
      return nil
    }
  }

  /// Whether the value is the string whose UTF-8 is `utf8`.
  public func stringEquals(_ index: Int, _ utf8: [UInt8]) -> Bool {
    utf8.withUnsafeBytes { stringEquals(index, $0) }
  }

  /// Whether the value is the string whose UTF-8 is `utf8`.
  public func stringEquals(_ index: Int, _ utf8: UnsafeRawBufferPointer) -> Bool {
    let slot = fields.slots[index]
    guard slot.kind == .string else { return false }
    if slot.needsRewrite { return value(index)?.stringValue.map { $0.utf8.elementsEqual(utf8) } ?? false }
    let length = Int(slot.end - slot.start) - 2
    guard length == utf8.count else { return false }
    let inner = json.baseAddress! + Int(slot.start) + 1
    return length == 0 || memcmp(utf8.baseAddress!, inner, length) == 0
  }

  /// A number as `Double`, `nil` for other kinds.
  public func doubleValue(_ index: Int) -> Double? {
    let slot = fields.slots[index]
    guard slot.kind == .number else { return nil }
    return Double(String(decoding: raw(slot), as: UTF8.self))
  }

  /// `true`/`false` for a boolean, `nil` for other kinds.
  public func boolValue(_ index: Int) -> Bool? {
    let slot = fields.slots[index]
    guard slot.kind == .bool else { return nil }
    return json[Int(slot.start)] == UInt8(ascii: "t")
  }
}
