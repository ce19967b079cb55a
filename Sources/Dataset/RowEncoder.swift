import Labeling
import LogFormats

/// Encodes rows without intermediate objects: straight into a byte buffer.
struct RowEncoder {
  let layout: DatasetLayout
  /// JSON Lines: `,"name":` before each kept column, and before each label and its `_at`.
  private let columnPrefixes: [[UInt8]]
  private let labelPrefixes: [([UInt8], [UInt8])]
  private var ranges: [Range<Int>] = []

  init(layout: DatasetLayout) {
    self.layout = layout
    func prefix(_ name: String) -> [UInt8] {
      var out: [UInt8] = [UInt8(ascii: ",")]
      JSONValue.writeString(name, to: &out)
      out.append(UInt8(ascii: ":"))
      return out
    }
    columnPrefixes = (layout.columns ?? []).map { prefix($0.name) }
    labelPrefixes = layout.labels.map { (prefix($0.name), prefix($0.name + "_at")) }
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

  mutating func encode(_ row: LabeledRow, into out: inout [UInt8]) {
    if layout.format == .csv {
      encodeGeneric(row, into: &out)
      return
    }
    out.append(contentsOf: #"{"key":"#.utf8)
    JSONValue.writeString(row.key, to: &out)
    out.append(contentsOf: #","predicted_at":""#.utf8)
    Timestamp.write(row.predictedAt, fractionDigits: 3, to: &out)
    out.append(UInt8(ascii: "\""))
    if layout.columns != nil {
      row.columnsJSON.withUnsafeBytes { raw in
        let isArray = JSONValue.arrayElements(raw, into: &ranges)
        for (i, prefix) in columnPrefixes.enumerated() {
          out.append(contentsOf: prefix)
          if isArray, i < ranges.count {
            out.append(contentsOf: raw[ranges[i]])
          } else {
            out.append(contentsOf: "null".utf8)
          }
        }
      }
    } else {
      out.append(contentsOf: #","prediction":"#.utf8)
      out.append(contentsOf: row.columnsJSON)
    }
    for ((valuePrefix, atPrefix), outcome) in zip(labelPrefixes, row.labels) {
      out.append(contentsOf: valuePrefix)
      outcome.value.write(to: &out)
      out.append(contentsOf: atPrefix)
      if let at = outcome.at {
        out.append(UInt8(ascii: "\""))
        Timestamp.write(at, fractionDigits: 3, to: &out)
        out.append(UInt8(ascii: "\""))
      } else {
        out.append(contentsOf: "null".utf8)
      }
    }
    out.append(contentsOf: "}\n".utf8)
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
