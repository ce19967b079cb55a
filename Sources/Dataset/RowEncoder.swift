import Labeling
import LogFormats

/// Encodes rows without intermediate objects: straight into a byte buffer.
struct RowEncoder {
  let layout: DatasetLayout

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

  func encode(_ row: LabeledRow, into out: inout [UInt8]) {
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
