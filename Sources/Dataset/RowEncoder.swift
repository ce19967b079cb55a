import CByteScan
import Labeling
import LogFormats

/// Encodes rows without intermediate objects: straight into a byte buffer.
///
/// JSON Lines rows are written through a raw pointer into room reserved for a bound of the
/// row's size: the fixed parts come from one block of templates, the key is escaped in one
/// pass, timestamps keep their minute's text, and the kept columns are copied element by
/// element as the columns' JSON array is split. CSV goes through `encodeGeneric`.
final class RowEncoder {
  let layout: DatasetLayout
  private let isCSV: Bool
  /// Kept columns, or nil when the whole prediction is one column.
  private let columnCount: Int?
  private let labelCount: Int
  /// The templates, one after another: `{"key":`, `,"predicted_at":"`, then `,"name":` per
  /// kept column (or `,"prediction":`), then per label `,"name":` and `,"name_at":`, then `}\n`.
  private let templates: UnsafeMutablePointer<UInt8>
  /// Where each template starts in `templates` (and where the last ends).
  private let starts: UnsafeMutablePointer<Int>
  private let labelBase: Int
  private let endTemplate: Int
  /// The most a row writes besides its key (escaped), columns and labels' values.
  private let fixedBound: Int
  private var predictedAtFormatter = TimestampFormatter(fractionDigits: 3)
  private var atFormatter = TimestampFormatter(fractionDigits: 3)
  private var ranges: [Range<Int>] = []
  /// Where each kept column ends in the columns' JSON (`writeSimpleColumns`): `columnCount` of them.
  private let columnEnds: UnsafeMutablePointer<Int32>
  /// `encode(_: LabeledRow, …)`: the row as a record, and its encoding.
  private let record = ByteBuffer()
  private let encoded = ByteBuffer()

  init(layout: DatasetLayout) {
    self.layout = layout
    isCSV = layout.format == .csv
    columnCount = layout.columns?.count
    labelCount = layout.labels.count
    func prefix(_ name: String) -> [UInt8] {
      var out: [UInt8] = [UInt8(ascii: ",")]
      JSONValue.writeString(name, to: &out)
      out.append(UInt8(ascii: ":"))
      return out
    }
    var pieces: [[UInt8]] = [Array(#"{"key":"#.utf8), Array(#","predicted_at":""#.utf8)]
    if let columns = layout.columns {
      pieces += columns.map { prefix($0.name) }
    } else {
      pieces.append(Array(#","prediction":"#.utf8))
    }
    labelBase = pieces.count
    for label in layout.labels { pieces += [prefix(label.name), prefix(label.name + "_at")] }
    endTemplate = pieces.count
    pieces.append(Array("}\n".utf8))
    let total = pieces.reduce(0) { $0 + $1.count }
    templates = .allocate(capacity: Swift.max(total, 1))
    starts = .allocate(capacity: pieces.count + 1)
    var offset = 0
    for (i, piece) in pieces.enumerated() {
      starts[i] = offset
      (templates + offset).initialize(from: piece, count: piece.count)
      offset += piece.count
    }
    starts[pieces.count] = offset
    columnEnds = .allocate(capacity: Swift.max(columnCount ?? 0, 1))
    let timestamp = TimestampFormatter.maxCount
    // Templates, the predicted time and its closing quote, `null` per missing column, per label
    // `null` or a quoted time.
    fixedBound = total + timestamp + 1 + 4 * (columnCount ?? 0) + layout.labels.count * (timestamp + 2)
  }

  deinit {
    templates.deallocate()
    starts.deallocate()
    columnEnds.deallocate()
  }

  func header() -> [UInt8] {
    guard layout.format == .csv else { return [] }
    var out: [UInt8] = []
    for (i, name) in layout.columnNames.enumerated() {
      if i > 0 { out.append(UInt8(ascii: ",")) }
      appendCSV(.string(name), to: &out)
    }
    out.append(UInt8(ascii: "\n"))
    return out
  }

  /// Encodes one row (tests, and the writer without a thread go through the record too).
  func encode(_ row: LabeledRow, into out: inout [UInt8]) {
    record.removeAll()
    RowRecord.write(row, ageClock: 0, to: record)
    var p = UnsafeRawPointer(record.base)
    guard case .row(let view) = RowRecord.read(&p) else { return }
    encoded.removeAll()
    encode(view, into: encoded)
    out.append(contentsOf: UnsafeBufferPointer(start: encoded.base, count: encoded.count))
  }

  func encode(_ row: RowView, into out: ByteBuffer) {
    if isCSV {
      var bytes: [UInt8] = []
      encodeGeneric(row.labeledRow(), into: &bytes)
      out.append(bytes)
      return
    }
    let bound = fixedBound + JSONValue.maxQuotedCount(row.key.count) + row.columns.count + row.labels.count
    var p = out.reserve(bound)
    p = put(0, at: p)
    p = JSONValue.writeString(utf8: row.key, to: p)
    p = put(1, at: p)
    p += predictedAtFormatter.write(row.predictedAt, to: p)
    p[0] = UInt8(ascii: "\"")
    p += 1
    if let columnCount {
      p = writeColumns(row.columns, count: columnCount, at: p)
    } else {
      p = put(2, at: p)
      p = copy(row.columns, to: p)
    }
    if var label = row.labels.baseAddress {
      for i in 0..<Swift.min(labelCount, row.labelCount) {
        let (at, value) = LabelRecords.read(&label)
        p = put(labelBase + 2 * i, at: p)
        p = copy(value, to: p)
        p = put(labelBase + 2 * i + 1, at: p)
        if let at {
          p[0] = UInt8(ascii: "\"")
          p += 1
          p += atFormatter.write(at, to: p)
          p[0] = UInt8(ascii: "\"")
          p += 1
        } else {
          p = writeNull(at: p)
        }
      }
    }
    p = put(endTemplate, at: p)
    out.commit(p)
  }

  @inline(__always)
  private func put(_ template: Int, at p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
    let start = starts[template]
    let count = starts[template + 1] - start
    copyBytes(templates + start, count, to: p)
    return p + count
  }

  @inline(__always)
  private func copy(_ bytes: UnsafeRawBufferPointer, to p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
    guard let base = bytes.baseAddress else { return p }
    copyBytes(base, bytes.count, to: p)
    return p + bytes.count
  }

  @inline(__always)
  private func writeNull(at p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
    UnsafeMutableRawPointer(p).storeBytes(of: UInt32(littleEndian: 0x6C6C_756E), as: UInt32.self)  // "null"
    return p + 4
  }

  /// `,"name":value` per kept column from the columns' JSON array; `null` for a missing one.
  @inline(__always)
  private func writeColumns(
    _ json: UnsafeRawBufferPointer, count: Int, at p: UnsafeMutablePointer<UInt8>
  ) -> UnsafeMutablePointer<UInt8> {
    if let end = writeSimpleColumns(json, count: count, at: p) { return end }
    if let end = writeCompactColumns(json, count: count, at: p) { return end }
    return writeColumnsSplit(json, count: count, at: p)
  }

  /// The columns of a short array of plain scalars (what a log's kept columns mostly are: no
  /// escape, no nested value, at most `FEEDBACKD_SIMPLE_ARRAY_MAX` bytes), split by
  /// `feedbackd_simple_array_ends` 16 bytes at a time, then copied; nil (having written
  /// nothing) when the array is not that simple. Splitting element by element, byte by byte,
  /// and copying on the way (`writeCompactColumns`) took about 500 instructions a row of four
  /// columns; this takes about 120 fewer (callgrind: the split about 100, the copies about 170).
  /// (An earlier session's splitter took 279 to split and was dropped; this one's first version
  /// took 260, until the last block's bits were shifted once, not per block in a loop, and its
  /// block helper was always inlined.)
  @inline(__always)
  private func writeSimpleColumns(
    _ json: UnsafeRawBufferPointer, count columnCount: Int, at start: UnsafeMutablePointer<UInt8>
  ) -> UnsafeMutablePointer<UInt8>? {
    guard let src = json.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
    let elements = feedbackd_simple_array_ends(src, json.count, columnEnds, columnCount)
    guard elements >= 0 else { return nil }
    var p = start
    var from = 1
    for column in 0..<columnCount {
      p = put(2 + column, at: p)
      if column < elements {
        let end = Int(columnEnds[column])
        copyBytes(src + from, end - from, to: p)
        p += end - from
        from = end + 1
      } else {
        p = writeNull(at: p)
      }
    }
    return p
  }

  /// `feedbackd_simple_array_ends` on `json` (tests): each element's range, or nil when the
  /// array is not simple enough for it.
  static func simpleArrayElements(_ json: UnsafeRawBufferPointer) -> [Range<Int>]? {
    guard let src = json.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
    let ends = UnsafeMutablePointer<Int32>.allocate(capacity: 64)
    defer { ends.deallocate() }
    let elements = feedbackd_simple_array_ends(src, json.count, ends, 64)
    guard elements >= 0 else { return nil }
    var from = 1
    return (0..<elements).map { k in
      defer { from = Int(ends[k]) + 1 }
      return from..<Int(ends[k])
    }
  }

  /// The columns of compact JSON (no space between elements), split and copied in one pass;
  /// nil (having written garbage after `start`) when the JSON is not that simple.
  private func writeCompactColumns(
    _ json: UnsafeRawBufferPointer, count columnCount: Int, at start: UnsafeMutablePointer<UInt8>
  ) -> UnsafeMutablePointer<UInt8>? {
    let n = json.count
    guard n >= 2, let src = json.baseAddress?.assumingMemoryBound(to: UInt8.self), src[0] == UInt8(ascii: "[")
    else { return nil }
    let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
    let comma = UInt8(ascii: ","), close = UInt8(ascii: "]")
    var p = start
    var column = 0
    var i = 1
    if src[1] != close {
      while true {
        var j = i
        switch src[i] {
        case quote:
          j += 1
          while j < n {
            // Eight bytes at a time up to the first quote, backslash or control byte.
            while j &+ 8 <= n {
              let word = UInt64(littleEndian: UnsafeRawPointer(src + j).loadUnaligned(as: UInt64.self))
              let special = JSONBytes.stringSpecials(word)
              if special != 0 {
                j &+= special.trailingZeroBitCount >> 3
                break
              }
              j &+= 8
            }
            guard j < n else { break }
            let byte = src[j]
            if byte == backslash {
              j += 2
            } else if byte == quote {
              break
            } else if byte < 0x20 {
              // A raw control byte: not JSON (`arrayElements` rejects it).
              return nil
            } else {
              j += 1
            }
          }
          guard j < n else { return nil }
          j += 1
        case UInt8(ascii: "{"), UInt8(ascii: "["):
          var depth = 0
          var inString = false
          while j < n {
            let byte = src[j]
            if inString {
              if byte == backslash {
                j += 1
              } else if byte == quote {
                inString = false
              } else if byte < 0x20 {
                return nil
              }
            } else if byte == quote {
              inString = true
            } else if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
              depth += 1
            } else if byte == UInt8(ascii: "}") || byte == close {
              depth -= 1
              if depth == 0 { break }
            }
            j += 1
          }
          guard j < n else { return nil }
          j += 1
        default:
          // A number or literal: up to the separator, and nothing else structural or blank.
          while j < n {
            let byte = src[j]
            if byte == comma || byte == close { break }
            switch byte {
            case quote, UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "["), 0x20, 0x09, 0x0A, 0x0D: return nil
            default: j += 1
            }
          }
          guard j > i else { return nil }
        }
        guard j < n else { return nil }
        if column < columnCount {
          p = put(2 + column, at: p)
          copyBytes(src + i, j - i, to: p)
          p += j - i
        }
        column += 1
        if src[j] == close {
          // Anything after the array: not that simple.
          guard j == n - 1 else { return nil }
          break
        }
        guard src[j] == comma, j + 1 < n else { return nil }
        i = j + 1
      }
    } else {
      guard n == 2 else { return nil }
    }
    while column < columnCount {
      p = put(2 + column, at: p)
      p = writeNull(at: p)
      column += 1
    }
    return p
  }

  /// The general case: `JSONValue.arrayElements`, then the elements' bytes.
  @inline(never)
  private func writeColumnsSplit(
    _ json: UnsafeRawBufferPointer, count columnCount: Int, at start: UnsafeMutablePointer<UInt8>
  ) -> UnsafeMutablePointer<UInt8> {
    var p = start
    let isArray = JSONValue.arrayElements(json, into: &ranges)
    for i in 0..<columnCount {
      p = put(2 + i, at: p)
      // Not a well-formed array: every column null.
      if isArray, i < ranges.count {
        p = copy(UnsafeRawBufferPointer(rebasing: json[ranges[i]]), to: p)
      } else {
        p = writeNull(at: p)
      }
    }
    return p
  }

  /// Every format through `JSONValue`s: the reference the JSON Lines fast path is tested against.
  func encodeGeneric(_ row: LabeledRow, into out: inout [UInt8]) {
    var values: [(String, JSONValue)] = [
      ("key", .string(row.key)),
      ("predicted_at", .string(Timestamp.format(row.predictedAt, fractionDigits: 3))),
    ]
    if let columns = layout.columns {
      if case .array(let items) = row.columns {
        for (i, column) in columns.enumerated() {
          values.append((column.name, i < items.count ? items[i] : .null))
        }
      }
    } else {
      values.append(("prediction", row.columns))
    }
    for (label, outcome) in zip(layout.labels, row.labels) {
      values.append((label.name, outcome.value))
      values.append((label.name + "_at", outcome.at.map { .string(Timestamp.format($0, fractionDigits: 3)) } ?? .null))
    }
    switch layout.format {
    case .jsonl, .jsonlGz:
      out.append(UInt8(ascii: "{"))
      for (i, (name, value)) in values.enumerated() {
        if i > 0 { out.append(UInt8(ascii: ",")) }
        JSONValue.string(name).write(to: &out)
        out.append(UInt8(ascii: ":"))
        value.write(to: &out)
      }
      out.append(UInt8(ascii: "}"))
    case .csv:
      for (i, (_, value)) in values.enumerated() {
        if i > 0 { out.append(UInt8(ascii: ",")) }
        appendCSV(value, to: &out)
      }
    }
    out.append(UInt8(ascii: "\n"))
  }

  /// RFC 4180 field: quoted when it holds a comma, quote, CR or LF; nested JSON as its text.
  private func appendCSV(_ value: JSONValue, to out: inout [UInt8]) {
    let text: String
    switch value {
    case .null: return
    case .bool(let b): text = b ? "true" : "false"
    case .number(let n): text = n
    case .string(let s): text = s
    case .array, .object: text = value.jsonText
    }
    let needsQuotes = text.utf8.contains { $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }
    if !needsQuotes {
      out.append(contentsOf: text.utf8)
      return
    }
    out.append(0x22)
    for b in text.utf8 {
      if b == 0x22 { out.append(0x22) }
      out.append(b)
    }
    out.append(0x22)
  }
}
