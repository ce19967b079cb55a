import Labeling
import LogFormats

/// A row, or a watermark advance, as flat bytes in a batch: what the caller's thread hands to
/// the writer thread. Writing one copies the row's bytes, so the batch holds no reference into
/// the row (neither thread retains or releases anything of it per row); reading one gives
/// pointers into the batch.
///
/// Row: tag 0, age clock, predicted at, key count, columns count, label count, the key's
/// UTF-8, the columns' JSON, then the labels' `LabelRecords` (per label: whether it has a
/// time, the time, the value's JSON count and the value's JSON, compact). Advance: tag 1,
/// watermark, age clock. Publish (what the last commit sealed, `DatasetWriter.afterCommit`):
/// tag 2. Prepare a commit (`DatasetWriter.prepareDeferredCommit`): tag 3. Integers
/// in native byte order, unaligned.
enum RowRecord {
  static let rowTag: UInt8 = 0
  static let advanceTag: UInt8 = 1
  static let publishTag: UInt8 = 2
  static let prepareCommitTag: UInt8 = 3
  static let rowHeaderCount = 1 + 8 + 8 + 4 + 4 + 4
  static let advanceCount = 1 + 8 + 8

  enum Entry {
    case row(RowView)
    case advance(watermark: Int64, ageClock: Int64)
    case publish
    case prepareCommit
  }

  static func write(_ row: LabeledRow, ageClock: Int64, to buffer: ByteBuffer) {
    row.withParts { write($0, ageClock: ageClock, to: buffer) }
  }

  /// The row's record: its header, key and columns, then its labels' records as they are.
  static func write(_ row: RowParts, ageClock: Int64, to buffer: ByteBuffer) {
    let columns = row.columnsJSON
    let labels = row.labelRecords
    let key = row.joinKey
    let p = UnsafeMutableRawPointer(buffer.reserve(rowHeaderCount + key.storeCount + columns.count + labels.count))
    p.storeBytes(of: rowTag, as: UInt8.self)
    p.storeBytes(of: ageClock, toByteOffset: 1, as: Int64.self)
    p.storeBytes(of: row.predictedAt, toByteOffset: 9, as: Int64.self)
    var q = p + rowHeaderCount
    // The key first: an inline key's bytes past its count are overwritten by the columns.
    let keyCount = key.store(to: q)
    q += keyCount
    p.storeBytes(of: UInt32(truncatingIfNeeded: keyCount), toByteOffset: 17, as: UInt32.self)
    p.storeBytes(of: UInt32(truncatingIfNeeded: columns.count), toByteOffset: 21, as: UInt32.self)
    p.storeBytes(of: UInt32(truncatingIfNeeded: row.labelCount), toByteOffset: 25, as: UInt32.self)
    if let base = columns.baseAddress { q.copyMemory(from: base, byteCount: columns.count) }
    q += columns.count
    if let base = labels.baseAddress { q.copyMemory(from: base, byteCount: labels.count) }
    q += labels.count
    buffer.commit(q.assumingMemoryBound(to: UInt8.self))
  }

  static func writeAdvance(watermark: Int64, ageClock: Int64, to buffer: ByteBuffer) {
    let p = UnsafeMutableRawPointer(buffer.reserve(advanceCount))
    p.storeBytes(of: advanceTag, as: UInt8.self)
    p.storeBytes(of: watermark, toByteOffset: 1, as: Int64.self)
    p.storeBytes(of: ageClock, toByteOffset: 9, as: Int64.self)
    buffer.commit((p + advanceCount).assumingMemoryBound(to: UInt8.self))
  }

  static func writePublish(to buffer: ByteBuffer) { writeTag(publishTag, to: buffer) }

  static func writePrepareCommit(to buffer: ByteBuffer) { writeTag(prepareCommitTag, to: buffer) }

  private static func writeTag(_ tag: UInt8, to buffer: ByteBuffer) {
    let p = UnsafeMutableRawPointer(buffer.reserve(1))
    p.storeBytes(of: tag, as: UInt8.self)
    buffer.commit((p + 1).assumingMemoryBound(to: UInt8.self))
  }

  /// The entry at `p`; moves `p` past it.
  @inline(__always)
  static func read(_ p: inout UnsafeRawPointer) -> Entry {
    let tag = p.load(as: UInt8.self)
    if tag != rowTag {
      if tag == publishTag {
        p += 1
        return .publish
      }
      if tag == prepareCommitTag {
        p += 1
        return .prepareCommit
      }
      let watermark = p.loadUnaligned(fromByteOffset: 1, as: Int64.self)
      let ageClock = p.loadUnaligned(fromByteOffset: 9, as: Int64.self)
      p += advanceCount
      return .advance(watermark: watermark, ageClock: ageClock)
    }
    let ageClock = p.loadUnaligned(fromByteOffset: 1, as: Int64.self)
    let predictedAt = p.loadUnaligned(fromByteOffset: 9, as: Int64.self)
    let keyCount = Int(p.loadUnaligned(fromByteOffset: 17, as: UInt32.self))
    let columnsCount = Int(p.loadUnaligned(fromByteOffset: 21, as: UInt32.self))
    let labelCount = Int(p.loadUnaligned(fromByteOffset: 25, as: UInt32.self))
    let key = p + rowHeaderCount
    let columns = key + keyCount
    let labels = columns + columnsCount
    let end = labels + LabelRecords.length(of: labelCount, at: labels)
    p = end
    return .row(
      RowView(
        ageClock: ageClock, predictedAt: predictedAt, key: UnsafeRawBufferPointer(start: key, count: keyCount),
        columns: UnsafeRawBufferPointer(start: columns, count: columnsCount), labelCount: labelCount,
        labels: UnsafeRawBufferPointer(start: labels, count: end - labels)))
  }
}

/// A row read from a batch: pointers into it, valid while the batch is.
struct RowView {
  var ageClock: Int64
  var predictedAt: Int64
  var key: UnsafeRawBufferPointer
  var columns: UnsafeRawBufferPointer
  var labelCount: Int
  /// The labels' records (see `RowRecord`); read them in order with `LabelRecords.read`.
  var labels: UnsafeRawBufferPointer

  /// The row as a `LabeledRow` again (the CSV path, which goes through `JSONValue`s): label
  /// values are what `RowEncoder.appendCSV` needs of them (a string's text, null, or the JSON
  /// text of anything else, which is what CSV writes for those).
  func labeledRow() -> LabeledRow {
    var labels: [LabelOutcome] = []
    labels.reserveCapacity(labelCount)
    if var p = self.labels.baseAddress {
      for _ in 0..<labelCount {
        let (at, json) = LabelRecords.read(&p)
        let value: JSONValue
        if json.first == UInt8(ascii: "\""), case .string(let text)? = try? JSONValue.parse(json) {
          value = .string(text)
        } else if json.elementsEqual("null".utf8) {
          value = .null
        } else {
          value = .number(String(decoding: json, as: UTF8.self))
        }
        labels.append(LabelOutcome(value: value, at: at))
      }
    }
    return LabeledRow(
      dataset: 0, key: String(decoding: key, as: UTF8.self), predictedAt: predictedAt, finalizeAt: 0,
      columnsJSON: Array(columns), labels: labels)
  }
}
