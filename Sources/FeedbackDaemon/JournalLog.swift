import Labeling

/// Checkpoint journals kept as records of a log (`journal_log` in the state file) instead of
/// being written into the state tables at once.
///
/// A replay's checkpoints between batches of lines write their journal as one record: a few
/// megabytes appended, where the tables took two or three B-tree inserts a row (the
/// benchmark's mid-run commit: about 40k rows and 0.13 s of CPU on a thread of its own, taken
/// from the replay's two cores). The records are applied to the tables, one after the other,
/// when something reads them, when the log grows past its bound, or at a commit that is not
/// deferred (`SQLiteStateStore.apply`); a replay that ends with an empty state (`--flush`)
/// empties the tables and the log at once and never writes them at all.
enum JournalRecord {
  /// The first byte of a record: its format.
  static let version: UInt8 = 1

  struct Damaged: Error, CustomStringConvertible {
    let why: String
    var description: String { "state.sqlite: a journal_log record is damaged (\(why))" }
  }

  /// `journal` and the watermark its finished keys are pruned by, as bytes (little-endian
  /// integers, lengths before byte strings). `count`: `encodedCount(journal)`, if the caller
  /// has it.
  static func encode(_ journal: StateJournal, pruneFinishedBy watermark: Int64?, count: Int? = nil) -> [UInt8] {
    var out = Writer()
    let count = count ?? encodedCount(journal)
    out.bytes.reserveCapacity(count)
    defer { assert(out.bytes.count == count, "encodedCount disagrees with encode") }
    out.bytes.append(version)
    out.bytes.append(watermark == nil ? 0 : 1)
    out.int(watermark ?? 0)
    out.count(journal.deletedPredictions.count)
    for d in journal.deletedPredictions {
      out.int(d.seq)
      out.int(d.keyHash)
    }
    out.count(journal.predictions.count)
    for p in journal.predictions {
      out.int(p.seq)
      out.key(p.joinKey)
      out.int(p.time)
      out.array(p.payload)
      out.int(Int64(bitPattern: p.datasets))
      out.int(Int64(bitPattern: p.pending))
    }
    out.count(journal.pendingUpdates.count)
    for u in journal.pendingUpdates {
      out.int(u.seq)
      out.int(Int64(bitPattern: u.pending))
    }
    out.count(journal.deletedFeedback.count)
    for seq in journal.deletedFeedback { out.int(seq) }
    out.count(journal.feedback.count)
    for f in journal.feedback {
      out.int(f.seq)
      out.key(f.joinKey)
      out.int(Int64(f.type))
      out.int(f.time)
      out.int(Int64(bitPattern: f.lineHash))
      if let dedupe = f.dedupe {
        out.bytes.append(1)
        out.string(dedupe)
      } else {
        out.bytes.append(0)
      }
      out.array(f.fields)
    }
    out.count(journal.deletedFinished.count)
    for key in journal.deletedFinished { out.string(key) }
    out.count(journal.finished.count)
    for f in journal.finished {
      out.key(f.joinKey)
      out.int(f.time)
      out.int(f.expiresAt)
    }
    return out.bytes
  }

  /// The bytes `encode` writes for `journal`, counted without writing them: a checkpoint
  /// whose record would not fit in the log goes into the tables, and its record is never
  /// built (it took its whole size in memory, and a journal that large is tens of MB).
  static func encodedCount(_ journal: StateJournal) -> Int {
    // Version, whether there is a watermark, the watermark; then each list's count.
    var n = 1 + 1 + 8 + 7 * 4
    n += journal.deletedPredictions.count * 16
    for p in journal.predictions { n += 8 + 4 + p.joinKey.count + 8 + 4 + p.payload.count + 16 }
    n += journal.pendingUpdates.count * 16
    n += journal.deletedFeedback.count * 8
    for f in journal.feedback {
      n += 8 + 4 + f.joinKey.count + 24 + 1 + (f.dedupe.map { 4 + $0.utf8.count } ?? 0) + 4 + f.fields.count
    }
    for key in journal.deletedFinished { n += 4 + key.utf8.count }
    for f in journal.finished { n += 4 + f.joinKey.count + 16 }
    return n
  }

  /// The journal and watermark `encode` wrote; throws `Damaged` for anything else.
  static func decode(_ bytes: UnsafeRawBufferPointer) throws -> (journal: StateJournal, watermark: Int64?) {
    var r = Reader(bytes: bytes)
    guard try r.byte() == version else { throw Damaged(why: "unknown format") }
    let hasWatermark = try r.byte()
    let watermarkValue = try r.int()
    let watermark: Int64? = hasWatermark == 0 ? nil : watermarkValue
    var journal = StateJournal()
    for _ in 0..<(try r.count(atLeast: 16)) {
      journal.deletedPredictions.append(DeletedPrediction(seq: try r.int(), keyHash: try r.int()))
    }
    for _ in 0..<(try r.count(atLeast: 44)) {
      let seq = try r.int()
      let key = try r.key()
      let time = try r.int()
      let payload = try r.array()
      let datasets = UInt64(bitPattern: try r.int())
      let pending = UInt64(bitPattern: try r.int())
      journal.predictions.append(
        StoredPrediction(seq: seq, joinKey: key, time: time, payload: payload, datasets: datasets, pending: pending))
    }
    for _ in 0..<(try r.count(atLeast: 16)) {
      journal.pendingUpdates.append(PendingUpdate(seq: try r.int(), pending: UInt64(bitPattern: try r.int())))
    }
    for _ in 0..<(try r.count(atLeast: 8)) { journal.deletedFeedback.append(try r.int()) }
    for _ in 0..<(try r.count(atLeast: 45)) {
      let seq = try r.int()
      let key = try r.key()
      let type = Int(try r.int())
      let time = try r.int()
      let lineHash = UInt64(bitPattern: try r.int())
      let dedupe = try r.byte() == 0 ? nil : try r.string()
      let fields = try r.array()
      journal.feedback.append(
        StoredFeedback(
          seq: seq, joinKey: key, type: type, time: time, lineHash: lineHash, dedupe: dedupe, fields: fields))
    }
    for _ in 0..<(try r.count(atLeast: 4)) { journal.deletedFinished.append(try r.string()) }
    for _ in 0..<(try r.count(atLeast: 20)) {
      journal.finished.append(FinishedKey(joinKey: try r.key(), time: try r.int(), expiresAt: try r.int()))
    }
    guard r.at == bytes.count else { throw Damaged(why: "\(bytes.count - r.at) bytes after its end") }
    return (journal, watermark)
  }

  private struct Writer {
    var bytes: [UInt8] = []

    mutating func int(_ value: Int64) {
      withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func count(_ n: Int) {
      withUnsafeBytes(of: UInt32(n).littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func raw(_ buffer: UnsafeRawBufferPointer) {
      count(buffer.count)
      bytes.append(contentsOf: buffer)
    }

    mutating func key(_ key: JoinKey) { key.withBytes { raw($0) } }
    mutating func array(_ array: [UInt8]) { array.withUnsafeBytes { raw($0) } }
    mutating func string(_ string: String) {
      var string = string
      string.withUTF8 { raw(UnsafeRawBufferPointer($0)) }
    }
  }

  private struct Reader {
    let bytes: UnsafeRawBufferPointer
    var at = 0

    mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
      guard n >= 0, n <= bytes.count - at else { throw Damaged(why: "cut short at byte \(at)") }
      defer { at += n }
      return UnsafeRawBufferPointer(rebasing: bytes[at..<(at + n)])
    }

    mutating func byte() throws -> UInt8 { try take(1)[0] }
    mutating func int() throws -> Int64 { Int64(littleEndian: try take(8).loadUnaligned(as: Int64.self)) }
    mutating func length() throws -> Int { Int(UInt32(littleEndian: try take(4).loadUnaligned(as: UInt32.self))) }

    /// A list's length, checked against the bytes left (each item takes at least `size`), so
    /// a damaged length cannot make a huge allocation or loop.
    mutating func count(atLeast size: Int) throws -> Int {
      let n = try length()
      guard n <= (bytes.count - at) / size else { throw Damaged(why: "a list of \(n) longer than the record") }
      return n
    }

    mutating func key() throws -> JoinKey { JoinKey(try take(try length())) }
    mutating func array() throws -> [UInt8] { Array(try take(try length())) }
    mutating func string() throws -> String { String(decoding: try take(try length()), as: UTF8.self) }
  }
}

/// What the log's records add to and take from the tables' pending predictions and feedback,
/// by sequence number (`status` counts them without writing the tables): a row a record
/// inserts and a later one deletes counts for neither.
struct LogCounts {
  private var inserted = Set<Int64>()
  private var deleted = Set<Int64>()
  private var feedbackInserted = Set<Int64>()
  private var feedbackDeleted = Set<Int64>()

  mutating func add(_ journal: StateJournal) {
    for d in journal.deletedPredictions where inserted.remove(d.seq) == nil { deleted.insert(d.seq) }
    for p in journal.predictions { inserted.insert(p.seq) }
    for seq in journal.deletedFeedback where feedbackInserted.remove(seq) == nil { feedbackDeleted.insert(seq) }
    for f in journal.feedback { feedbackInserted.insert(f.seq) }
  }

  /// Predictions and feedback events more (or fewer) than the tables hold.
  var predictions: Int { inserted.count - deleted.count }
  var feedback: Int { feedbackInserted.count - feedbackDeleted.count }
}
