import CByteScan

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The shapes of compact lines scanned before, so that a line of a known shape is scanned by
/// comparing its fixed text and reading only its values.
///
/// A log's lines come from a few statements, each writing the same keys in the same order:
/// only the values change. A shape is one such line cut into its **constants** (everything
/// outside the scalar values: braces, keys, colons, commas) and the **values** between them
/// (`C0 V1 C1 V2 … Vn Cn`), with where each selected path's value lay. A new line has that
/// shape when each constant is found, byte for byte, right after the value before it, and each
/// value is one valid scalar (a string, number, `true`, `false` or `null`) read as the full
/// scan reads it. Then the line is the shape's line with other scalars in place of its own: the
/// same JSON structure, the same keys, so the same selected values, at the new places. Nothing
/// is looked up; no key is hashed.
///
/// Shapes are learnt only from plain, compact lines (`JSONScanner.indexQuotes`: no whitespace
/// between tokens, no escape, no control or non-ASCII byte), and a line fits one only if it is
/// plain and compact too: its constants are the shape's, and each string value is read up to
/// its closing quote only if no special byte comes before it. So no pass over the whole line
/// comes first. Any difference (another key, a value that is an object where the shape has a
/// scalar, a bad number, an escape) ends the attempt and the line is indexed and scanned in
/// full: this path only ever accepts what the full scan accepts, with the same result
/// (`LineShapesTests` and the fuzz target hold it to that).
///
/// Kept in `ScannedFields`, so each thread that scans has its own.
public struct LineShapes: Sendable {
  /// Where a selected path's value is in a line of the shape.
  struct Source: Sendable {
    /// The value's index (0 for V1), or -1: the path was absent (`constant` -1) or its value is
    /// an object or array, lying from `startOffset` bytes into constant `constant` to
    /// `endOffset` bytes into constant `endConstant` (the braces are part of the constants).
    var value: Int32
    var constant: Int32
    var startOffset: Int32
    var endConstant: Int32
    var endOffset: Int32
    var kind: JSONKind
  }

  /// One constant of a shape, as the words it is compared by.
  struct Constant: Sendable {
    var length: Int32
    /// Its first word in `Shape.words`; it has `(length + 7) / 8`, the last masked by `mask`.
    var word: Int32
    var mask: UInt64
  }

  /// One shape: plain pointers (so using one retains nothing), to memory owned by a `Memory`
  /// (`LineShapes.memory`); immutable once made, so copies of `LineShapes` may share it.
  struct Shape: @unchecked Sendable {
    /// The constants back to back.
    let constants: UnsafeMutablePointer<UInt8>
    /// Constant `i` ends at `ends[i]` in `constants` (`valueCount + 1` of them).
    let ends: UnsafeMutablePointer<Int32>
    /// Each constant's bytes as little-endian words, the last one zero past its end, and
    /// padded with a zero word to a whole 16-byte block.
    let words: UnsafeMutablePointer<UInt64>
    /// Per constant, a 16-byte block ending with its last (up to) 16 bytes, zeros before them:
    /// compared with the 16 bytes of a line that end where the constant ends, for a constant
    /// too near the line's end to be read in whole blocks (the last one).
    let tails: UnsafeMutablePointer<UInt8>
    let table: UnsafeMutablePointer<Constant>
    let valueCount: Int
    /// One per selected path.
    let sources: UnsafeMutablePointer<Source>
    /// Bit `p` (for the first 64 paths): path `p`'s slot is the same in every line of the shape
    /// (absent, or in a constant: a folded value, an object or an array).
    let sameSlots: UInt64
    /// Told apart from every other shape of the same `LineShapes` (set when it is learnt).
    var id = 0

    init(constants: [UInt8], ends: [Int32], sources: [Source]) {
      self.constants = .allocate(capacity: max(1, constants.count))
      self.constants.initialize(from: constants, count: constants.count)
      self.ends = .allocate(capacity: ends.count)
      self.ends.initialize(from: ends, count: ends.count)
      valueCount = ends.count - 1
      var words: [UInt64] = []
      var table: [Constant] = []
      var start = 0
      for end in ends.map(Int.init) {
        let length = end - start
        table.append(
          Constant(
            length: Int32(length), word: Int32(words.count),
            mask: length % 8 == 0 ? ~0 : (1 << (UInt64(length % 8) * 8)) - 1))
        for first in stride(from: start, to: end, by: 8) {
          var word: UInt64 = 0
          for k in 0..<min(8, end - first) { word |= UInt64(constants[first + k]) << (UInt64(k) * 8) }
          words.append(word)
        }
        // Each constant starts on a 16-byte block (`feedbackd_equal_blocks` reads whole ones).
        if words.count % 2 == 1 { words.append(0) }
        start = end
      }
      tails = .allocate(capacity: 16 * ends.count)
      tails.initialize(repeating: 0, count: 16 * ends.count)
      start = 0
      for (i, end) in ends.map(Int.init).enumerated() {
        let length = min(16, end - start)
        for k in 0..<length { tails[16 * i + 16 - length + k] = constants[end - length + k] }
        start = end
      }
      self.words = .allocate(capacity: max(1, words.count))
      self.words.initialize(from: words, count: words.count)
      self.table = .allocate(capacity: table.count)
      self.table.initialize(from: table, count: table.count)
      self.sources = .allocate(capacity: max(1, sources.count))
      self.sources.initialize(from: sources, count: sources.count)
      var same: UInt64 = 0
      for (p, source) in sources.prefix(64).enumerated() where source.value < 0 { same |= 1 << UInt64(p) }
      sameSlots = same
    }

    /// Frees what `init` allocated.
    final class Memory: @unchecked Sendable {
      let shape: Shape
      init(_ shape: Shape) { self.shape = shape }
      deinit {
        shape.constants.deallocate()
        shape.ends.deallocate()
        shape.words.deallocate()
        shape.tails.deallocate()
        shape.table.deallocate()
        shape.sources.deallocate()
      }
    }

    @inline(__always) func constantStart(_ i: Int) -> Int { i == 0 ? 0 : Int(ends[i - 1]) }

    /// Whether constant `i` is at `text` (`readable` bytes may be read there, and `before`
    /// bytes before it).
    @inline(__always) func fits(_ i: Int, at text: UnsafePointer<UInt8>, readable: Int, before: Int) -> Bool {
      let constant = table[i]
      let length = Int(constant.length)
      // Most constants are followed by more of the line: compared 16 bytes at a time.
      if readable >= (length &+ 15) & ~15 {
        return feedbackd_equal_blocks(
          text, UnsafeRawPointer(words + Int(constant.word)).assumingMemoryBound(to: UInt8.self), length) != 0
      }
      // The last constant: the line's 16 bytes that end where it ends.
      if length <= 16, readable >= length, before &+ length >= 16 {
        return feedbackd_equal_tail(text + length, tails + 16 &* i, length) != 0
      }
      let count = (length &+ 7) &>> 3
      if readable >= count &<< 3 {
        var word = words + Int(constant.word)
        var at = UnsafeRawPointer(text)
        var rest = count
        while rest > 1 {
          if UInt64(littleEndian: at.loadUnaligned(as: UInt64.self)) != word.pointee { return false }
          at += 8
          word += 1
          rest &-= 1
        }
        return rest == 0 || UInt64(littleEndian: at.loadUnaligned(as: UInt64.self)) & constant.mask == word.pointee
      }
      guard readable >= length else { return false }
      return memcmp(text, constants + constantStart(i), length) == 0
    }
  }

  /// At most this many shapes are kept; the least recently used makes room for a new one.
  static let capacity = 16
  /// Lines with more values than this are not learnt.
  static let maximumValues = 120
  /// While every place is taken (or most lines fit no shape), one line in this many of those
  /// fitting no shape is looked at: a log of ever new layouts costs little.
  static let learnEvery = 16

  var shapes: [Shape] = []
  /// Owns `shapes[i]`'s memory.
  var memory: [Shape.Memory] = []
  /// `common[a * capacity + b]`: how many leading constants shapes `a` and `b` share.
  /// (Both arrays are made with the first shape: some callers make a `ScannedFields`, and so a
  /// `LineShapes`, for every event they scan.)
  var common: [Int32] = []
  var lastUse: [Int] = []
  /// The shape the last line fitted: tried first when `lengthHints` names none.
  var recent = 0
  /// Per line length (`hintIndex`): the shape the last line of that length fitted, tried first
  /// (`UInt8.max`: none). A log's statements mostly write lines of lengths of their own. The
  /// previous line's shape, tried first, fitted about half the lines of a log interleaving a few
  /// statements, and each miss compared a constant and looked for another shape: about 60
  /// instructions a line on the benchmark corpus, where this tries 1.04 shapes a line.
  var lengthHints: [UInt8] = []
  static let hintCount = 4096

  @inline(__always) static func hintIndex(_ count: Int) -> Int { Swift.min(count, hintCount &- 1) }
  var clock = 0
  var misses = 0
  /// Lines scanned through a shape.
  public private(set) var hits = 0
  /// Lines the shape tried first did not fit (`lengthHints`): another was tried.
  public private(set) var retries = 0
  /// Lines that fitted no shape whose layout was read (to learn it).
  public private(set) var layoutsRead = 0
  /// The shape the last line scanned fitted (`FieldSelector.scan`): its `id` and `sameSlots`;
  /// id 0 when it fitted none.
  public internal(set) var lastFit: (id: Int, sameSlots: UInt64) = (0, 0)
  /// The last id given to a shape.
  var lastID = 0

  public init() {}

  public var count: Int { shapes.count }

  // MARK: Scanning

  /// Scans the `count` bytes at `text` (at most `JSONScanner.indexedLength`) as one of the
  /// known shapes: on success writes every selected slot and returns the document's kind (an
  /// object: only objects are learnt); nil when no shape fits (nothing useful is written then:
  /// the caller scans in full).
  ///
  /// Needs no index of the text's quotes and no pass over the whole text: a line that fits is
  /// plain and compact by what is checked on the way. The shapes were learnt from plain,
  /// compact lines, so their constants hold no special byte and no whitespace; a number or a
  /// literal cannot hold one; and each string is read up to its closing quote only when no
  /// special byte comes before it (`feedbackd_plain_string_end`).
  mutating func scan(
    _ text: UnsafePointer<UInt8>, _ count: Int, slots: UnsafeMutablePointer<FieldSlot>?, slotCount: Int
  ) -> JSONKind? {
    guard !shapes.isEmpty else { return nil }
    assert(count < 1 << 13, "positions are packed in 13 bits")
    // On the stack (at most 1 KiB is): where each constant starts, then each value's start,
    // end and kind packed into one word (a compact text is at most 4096 bytes: 13 bits each).
    return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 2 * Self.maximumValues + 1) { buffer in
      let constantAt = buffer.baseAddress!
      let values = constantAt + (Self.maximumValues + 1)
      let hint = lengthHints[Self.hintIndex(count)]
      var s = Int(hint) < shapes.count ? Int(hint) : recent
      var shape = shapes[s]
      var i = 0
      var position = 0
      // The shapes that did not fit (one bit each).
      var tried: UInt32 = 0
      while true {
        if shape.fits(i, at: text + position, readable: count &- position, before: position),
          i < shape.valueCount || position &+ Int(shape.table[i].length) == count
        {
          constantAt[i] = UInt32(truncatingIfNeeded: position)
          position &+= Int(shape.table[i].length)
          if i == shape.valueCount { break }
          // The line ends where a value should start: it fits no shape (and its byte after the
          // end is not to be read: the fuzzer's address sanitizer caught that read).
          guard position < count else { return nil }
          // A scalar, read as the full scan reads it. A value that is an object or an array
          // fits no shape with these constants before it: each has a scalar here.
          let start = position
          let kind: JSONKind
          switch text[position] {
          case ASCII.quote:
            let end = Self.plainStringEnd(text, position &+ 1, count)
            guard end >= 0 else { return nil }
            position = end &+ 1
            kind = .string
          case ASCII.minus, ASCII.zero...ASCII.nine:
            guard let end = JSONGrammar.shortNumberEnd(text, position, count) else { return nil }
            position = end
            kind = .number
          case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            guard let (literal, length) = Self.literal(at: text + position, readable: count &- position) else {
              return nil
            }
            position &+= length
            kind = literal
          default:
            return nil
          }
          values[i] =
            UInt32(truncatingIfNeeded: start) | UInt32(truncatingIfNeeded: position) &<< 13
            | UInt32(kind.rawValue) &<< 26
          i &+= 1
          continue
        }
        // Another shape with the same first `i` constants may go on from here; else another
        // starts over. (A shape that failed once fails again: each is tried once at most.)
        if tried == 0 { retries &+= 1 }
        tried |= 1 &<< UInt32(s)
        var next = -1
        var restart = -1
        for u in shapes.indices where tried & (1 &<< UInt32(u)) == 0 {
          if common[s &* Self.capacity &+ u] >= i && shapes[u].valueCount >= i {
            next = u
            break
          }
          if restart < 0 { restart = u }
        }
        if next < 0 {
          guard restart >= 0 else { return nil }
          next = restart
          i = 0
          position = 0
        }
        s = next
        shape = shapes[s]
      }
      let slots = slots.unsafelyUnwrapped
      for p in 0..<slotCount {
        let source = shape.sources[p]
        if source.value >= 0 {
          let value = values[Int(source.value)]
          slots[p] = FieldSlot(
            start: Int32(value & 0x1FFF), end: Int32(value &>> 13 & 0x1FFF),
            kind: JSONKind(rawValue: UInt8(value &>> 26)).unsafelyUnwrapped, needsRewrite: false)
        } else if source.constant >= 0 {
          slots[p] = FieldSlot(
            start: Int32(constantAt[Int(source.constant)]) &+ source.startOffset,
            end: Int32(constantAt[Int(source.endConstant)]) &+ source.endOffset, kind: source.kind,
            needsRewrite: false)
        } else {
          slots[p] = FieldSlot()
        }
      }
      recent = s
      if hint != UInt8(truncatingIfNeeded: s) { lengthHints[Self.hintIndex(count)] = UInt8(truncatingIfNeeded: s) }
      clock &+= 1
      lastUse[s] = clock
      hits &+= 1
      lastFit = (shape.id, shape.sameSlots)
      return .object
    }
  }

  /// Where a string whose contents start at `start` ends (its closing quote) when no special
  /// byte (a backslash, a control byte, one that is not ASCII) comes first; -1 otherwise, or
  /// when no quote follows. Reads only the `count` bytes at `text`.
  @inline(__always)
  static func plainStringEnd(_ text: UnsafePointer<UInt8>, _ start: Int, _ count: Int) -> Int {
    feedbackd_plain_string_end(text, start, count)
  }

  /// The literal (`true`, `false`, `null`) at `text`, and its length.
  @inline(__always)
  static func literal(at text: UnsafePointer<UInt8>, readable: Int) -> (JSONKind, Int)? {
    guard readable >= 4 else { return nil }
    switch UnsafeRawPointer(text).loadUnaligned(as: UInt32.self) {
    case UInt32(littleEndian: 0x6575_7274): return (.bool, 4)  // "true"
    case UInt32(littleEndian: 0x6c6c_756e): return (.null, 4)  // "null"
    case UInt32(littleEndian: 0x736c_6166):  // "fals"
      return readable >= 5 && text[4] == UInt8(ascii: "e") ? (.bool, 5) : nil
    default: return nil
    }
  }

  // MARK: Learning

  /// A line's layout: its constants and values, and where its selected values are.
  struct Layout {
    var constants: [UInt8] = []
    /// Constant `i` ends at `ends[i]` in `constants`.
    var ends: [Int32] = []
    /// The values' texts back to back, value `i` ending at `valueEnds[i]`.
    var values: [UInt8] = []
    var valueEnds: [Int32] = []
    var sources: [Source] = []

    func constant(_ i: Int) -> ArraySlice<UInt8> {
      constants[(i == 0 ? 0 : Int(ends[i - 1]))..<Int(ends[i])]
    }

    func value(_ i: Int) -> ArraySlice<UInt8> {
      values[(i == 0 ? 0 : Int(valueEnds[i - 1]))..<Int(valueEnds[i])]
    }
  }

  /// Lines of one layout seen so far (each fitted no shape), and which of their values were
  /// the same in all of them.
  struct Candidate {
    var layout: Layout
    var same: [Bool]
    var lines = 1
  }

  /// Lines of a layout needed for a shape: a value the same in all of them becomes part of the
  /// shape's constants (a log line's level, logger, event name…), compared with them, not read.
  static let linesPerShape = 4
  /// Layouts being watched.
  static let candidateCapacity = 8
  var candidates: [Candidate] = []

  /// Called for a line that fitted no shape, after its full scan found `slots` and `kind`:
  /// watches its layout, and makes it a shape once it has been seen in `linesPerShape` lines.
  /// Not every such line is looked at (`learnEvery`).
  mutating func noteMiss(
    _ text: UnsafePointer<UInt8>, _ count: Int, quotes: UnsafePointer<UInt64>, trie: FieldSelector.Trie,
    slots: UnsafePointer<FieldSlot>?, slotCount: Int, kind: JSONKind
  ) {
    misses &+= 1
    // Every such line is looked at while there is room and lines mostly fit; once every place
    // is taken, or in a log whose lines rarely share a layout, one in `learnEvery`.
    let sampling = shapes.count == Self.capacity || (misses > 1024 && hits < misses)
    guard kind == .object, !sampling || misses % Self.learnEvery == 0 else { return }
    layoutsRead &+= 1
    guard let layout = Self.layout(of: text, count, quotes: quotes, trie: trie, slots: slots, slotCount: slotCount)
    else { return }
    guard
      let c = candidates.firstIndex(where: {
        $0.layout.ends == layout.ends && $0.layout.constants == layout.constants
      })
    else {
      if candidates.count == Self.candidateCapacity { candidates.removeFirst() }
      candidates.append(Candidate(layout: layout, same: Array(repeating: true, count: layout.valueEnds.count)))
      return
    }
    for i in candidates[c].same.indices where candidates[c].same[i] {
      candidates[c].same[i] = candidates[c].layout.value(i) == layout.value(i)
    }
    candidates[c].lines += 1
    guard candidates[c].lines >= Self.linesPerShape else { return }
    var shape = Self.shape(folding: candidates.remove(at: c))
    lastID += 1
    shape.id = lastID
    if shapes.isEmpty {
      common = [Int32](repeating: 0, count: Self.capacity * Self.capacity)
      lastUse = [Int](repeating: 0, count: Self.capacity)
      lengthHints = [UInt8](repeating: .max, count: Self.hintCount)
    }
    var index = shapes.count
    if index < Self.capacity {
      shapes.append(shape)
      memory.append(Shape.Memory(shape))
    } else {
      index = lastUse.indices.min { lastUse[$0] < lastUse[$1] }!
      shapes[index] = shape
      memory[index] = Shape.Memory(shape)
    }
    clock &+= 1
    lastUse[index] = clock
    for other in shapes.indices {
      let shared = Int32(Self.sharedConstants(shapes[index], shapes[other]))
      common[index * Self.capacity + other] = shared
      common[other * Self.capacity + index] = shared
    }
  }

  /// The layout of a valid, plain and compact JSON object text whose full scan found `slots`;
  /// nil when it has too many values.
  static func layout(
    of text: UnsafePointer<UInt8>, _ count: Int, quotes: UnsafePointer<UInt64>, trie: FieldSelector.Trie,
    slots: UnsafePointer<FieldSlot>?, slotCount: Int
  ) -> Layout? {
    var scanner = JSONScanner(bytes: text, count: count, trie: trie, slots: nil)
    scanner.quotes = quotes
    var layout = Layout()
    // Where each constant starts in the text, and each value's range.
    var constantAt: [Int] = []
    var values: [Range<Int>] = []
    var constantStart = 0
    var position = 0
    func cut(before value: Range<Int>) {
      constantAt.append(constantStart)
      layout.constants.append(
        contentsOf: UnsafeBufferPointer(start: text + constantStart, count: value.lowerBound - constantStart))
      layout.ends.append(Int32(layout.constants.count))
      layout.values.append(contentsOf: UnsafeBufferPointer(start: text + value.lowerBound, count: value.count))
      layout.valueEnds.append(Int32(layout.values.count))
      values.append(value)
      constantStart = value.upperBound
    }
    while position < count {
      switch text[position] {
      case ASCII.quote:
        scanner.index = position
        guard scanner.scanString(JSONCompactText.self) else { return nil }
        let end = scanner.index
        if end < count, text[end] == ASCII.colon {
          // A key: part of the constant, with its colon.
          position = end &+ 1
        } else {
          cut(before: position..<end)
          position = end
        }
      case ASCII.minus, ASCII.zero...ASCII.nine, UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
        scanner.index = position
        guard scanner.scanValue(node: -1, JSONCompactText.self) != nil else { return nil }
        cut(before: position..<scanner.index)
        position = scanner.index
      default:
        // A brace, bracket, comma or colon.
        position &+= 1
      }
      guard values.count <= maximumValues else { return nil }
    }
    constantAt.append(constantStart)
    layout.constants.append(contentsOf: UnsafeBufferPointer(start: text + constantStart, count: count - constantStart))
    layout.ends.append(Int32(layout.constants.count))
    // The constant holding byte `offset` of the text.
    func constant(holding offset: Int) -> Int? {
      for c in constantAt.indices {
        if offset >= constantAt[c] && offset < constantAt[c] + layout.constant(c).count { return c }
      }
      return nil
    }
    for p in 0..<slotCount {
      let slot = slots.unsafelyUnwrapped[p]
      let range = Int(slot.start)..<Int(slot.end)
      var source = Source(value: -1, constant: -1, startOffset: 0, endConstant: 0, endOffset: 0, kind: slot.kind)
      switch slot.kind {
      case .absent: break
      case .object, .array:
        guard let a = constant(holding: range.lowerBound), let b = constant(holding: range.upperBound - 1) else {
          return nil
        }
        source.constant = Int32(a)
        source.startOffset = Int32(range.lowerBound - constantAt[a])
        source.endConstant = Int32(b)
        source.endOffset = Int32(range.upperBound - constantAt[b])
      default:
        guard let v = values.firstIndex(of: range) else { return nil }
        source.value = Int32(v)
      }
      layout.sources.append(source)
    }
    return layout
  }

  /// The shape of a candidate's lines: each value that was the same in all of them joins the
  /// constants around it.
  static func shape(folding candidate: Candidate) -> Shape {
    let layout = candidate.layout
    var constants: [UInt8] = []
    var ends: [Int32] = []
    // Old constant `i` starts at `constantAt[i]` of new constant `constantIndex[i]`; old value
    // `i` is new value `valueIndex[i]` (or, folded, lies like a constant: -1).
    var constantIndex: [Int] = []
    var constantAt: [Int] = []
    var valueIndex: [Int] = []
    var foldedAt: [(constant: Int, offset: Int)] = []
    var current: [UInt8] = []
    for i in layout.ends.indices {
      constantIndex.append(ends.count)
      constantAt.append(current.count)
      current += layout.constant(i)
      guard i < layout.valueEnds.count else { break }
      if candidate.same[i] {
        foldedAt.append((ends.count, current.count))
        valueIndex.append(-1)
        current += layout.value(i)
      } else {
        foldedAt.append((-1, 0))
        valueIndex.append(ends.count)
        constants += current
        ends.append(Int32(constants.count))
        current = []
      }
    }
    constants += current
    ends.append(Int32(constants.count))
    let sources = layout.sources.map { old -> Source in
      var source = old
      if old.value >= 0 {
        let v = Int(old.value)
        if valueIndex[v] < 0 {
          let value = layout.value(v)
          source.value = -1
          source.constant = Int32(foldedAt[v].constant)
          source.startOffset = Int32(foldedAt[v].offset)
          source.endConstant = source.constant
          source.endOffset = Int32(foldedAt[v].offset + value.count)
        } else {
          source.value = Int32(valueIndex[v])
        }
      } else if old.constant >= 0 {
        let a = Int(old.constant)
        let b = Int(old.endConstant)
        source.constant = Int32(constantIndex[a])
        source.startOffset = Int32(constantAt[a]) + old.startOffset
        source.endConstant = Int32(constantIndex[b])
        source.endOffset = Int32(constantAt[b]) + old.endOffset
      }
      return source
    }
    return Shape(constants: constants, ends: ends, sources: sources)
  }

  /// How many leading constants two shapes have in common.
  static func sharedConstants(_ a: Shape, _ b: Shape) -> Int {
    var shared = 0
    while shared <= min(a.valueCount, b.valueCount) {
      let start = a.constantStart(shared)
      let length = Int(a.ends[shared]) - start
      guard b.constantStart(shared) == start, Int(b.ends[shared]) - start == length,
        memcmp(a.constants + start, b.constants + start, length) == 0
      else { break }
      shared += 1
    }
    return shared
  }
}
