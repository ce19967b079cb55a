// libFuzzer target: the JSON parser, its writer, the field scanner, the line decoders and the
// dataset writer's split of simple column arrays (see Fuzz/run.sh). Compiled together with
// Sources/LogFormats into one module, so only the C helpers are imported.

import CByteScan

/// Paths that hit the shapes the fuzzer tends to build: top-level keys, nesting, prefixes.
let fuzzPaths: [FieldPath] = [
  FieldPath(segments: ["a"]), FieldPath(segments: ["a", "b"]), FieldPath(segments: ["time"]),
  FieldPath(segments: [""]), FieldPath(segments: ["@timestamp"]), FieldPath(segments: ["x", "y", "z"]),
]
let fuzzSelector = FieldSelector(paths: fuzzPaths)
/// The same paths, every text read byte by byte (no quote index): the slow path the indexed
/// one must match exactly.
let fuzzByteSelector = FieldSelector(paths: fuzzPaths, indexQuotes: false)
/// Fields kept from input to input: the shapes learnt from earlier inputs (`LineShapes`) are
/// tried on each new one (libFuzzer's inputs are mostly small changes of earlier ones).
nonisolated(unsafe) var fuzzLearnt = ScannedFields(count: fuzzPaths.count)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = UnsafeRawBufferPointer(start: data, count: size)
  let parsed = try? JSONValue.parse(bytes)
  if let value = parsed {
    // What the parser accepts, the writer writes back as the same value.
    var out: [UInt8] = []
    value.write(to: &out)
    guard let again = try? JSONValue.parse(out), again == value else {
      fatalError("round trip changed the value")
    }
    _ = Timestamp.parse(value)
  }
  // The scanner accepts exactly what the parser accepts and finds the same values.
  var event = ScannedEvent(time: 0, json: bytes, fields: ScannedFields(count: fuzzPaths.count))
  let kind = fuzzSelector.scan(bytes, into: &event.fields)
  guard (kind != nil) == (parsed != nil) else { fatalError("scanner and parser disagree on validity") }
  var byteByByte = ScannedFields(count: fuzzPaths.count)
  guard fuzzByteSelector.scan(bytes, into: &byteByByte) == kind, byteByByte == event.fields else {
    fatalError("the indexed scan and the byte-by-byte scan differ")
  }
  guard fuzzSelector.scan(bytes, into: &fuzzLearnt) == kind, kind == nil || fuzzLearnt == event.fields else {
    fatalError("the scan by learnt shapes and the full scan differ")
  }
  if let value = parsed {
    for (index, path) in fuzzPaths.enumerated() {
      let expected = value.value(at: path)
      guard event.value(index) == expected else { fatalError("scanner found another value for \(path)") }
      var compact: [UInt8] = []
      event.writeCompact(index, to: &compact)
      var reference: [UInt8] = []
      (expected ?? .null).write(to: &reference)
      guard compact == reference else { fatalError("compact text differs for \(path)") }
      guard event.keyText(index) == expected?.keyText else { fatalError("key text differs for \(path)") }
    }
    if case .object = value {
      var document: [UInt8] = []
      event.writeDocument(to: &document)
      var reference: [UInt8] = []
      value.write(to: &reference)
      guard document == reference else { fatalError("document text differs") }
    }
  }
  for format in LogFormat.allCases {
    let decoder = LineDecoder(format: format, timeField: nil)
    let decoded = decoder.decode(bytes)
    let selector = decoder.selector(for: fuzzPaths)
    var scanned = ScannedEvent(time: 0, json: bytes, fields: ScannedFields(count: selector.paths.count))
    let rejected = decoder.scan(bytes, selector: selector, into: &scanned)
    switch decoded {
    case .rejected(let reason):
      guard rejected == reason else { fatalError("scan and decode reject differently") }
    case .event(let event):
      guard rejected == nil, scanned.time == event.time else { fatalError("scan and decode disagree") }
    }
  }
  _ = Timestamp.parse(text: bytes)
  _ = FormatDetector.recognize(Array(bytes))
  fuzzReaders(bytes)
  fuzzSimpleArray(bytes, parsed: parsed)
  return 0
}

/// `feedbackd_simple_array_ends` (the dataset writer's split of a row's kept columns) reads
/// only the input's bytes (the address sanitizer watches), and splits a JSON array it accepts
/// into the elements `JSONValue.arrayElements` finds.
func fuzzSimpleArray(_ bytes: UnsafeRawBufferPointer, parsed: JSONValue?) {
  guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
  var ends = [Int32](repeating: 0, count: 64)
  let elements = ends.withUnsafeMutableBufferPointer {
    feedbackd_simple_array_ends(base, bytes.count, $0.baseAddress!, 64)
  }
  guard elements >= 0, case .array? = parsed else { return }
  var ranges: [Range<Int>] = []
  guard JSONValue.arrayElements(bytes, into: &ranges), ranges.count == elements else {
    fatalError("the simple array split and arrayElements differ on the element count")
  }
  var start = 1
  for (k, range) in ranges.enumerated() {
    guard range == start..<Int(ends[k]) else { fatalError("the simple array split and arrayElements differ") }
    start = Int(ends[k]) + 1
  }
}

/// Per wrapper format: the input's lines through one `EventReader` (state carried from line to
/// line). Every event is a JSON object, held events start at or before the line being read, and
/// nothing is held after `finish`.
func fuzzReaders(_ bytes: UnsafeRawBufferPointer) {
  for format in LogFormat.allCases where !format.isLineFormat {
    let reader = EventReader(format: format, timeField: nil, paths: fuzzPaths, maxEventBytes: 4096)
    var offset: Int64 = 0
    for line in bytes.split(separator: ASCII.lf, omittingEmptySubsequences: false) {
      let line = UnsafeRawBufferPointer(rebasing: line)
      reader.read(line, offset: offset) { outcome, event in
        if case .event = outcome {
          guard case .object? = try? JSONValue.parse(event.json) else { fatalError("\(format): event is no object") }
        }
      }
      if let start = reader.pendingStart, start > offset { fatalError("\(format): held past the line") }
      offset += Int64(line.count + 1)
    }
    _ = reader.finish()
    guard reader.pendingStart == nil else { fatalError("\(format): held after finish") }
  }
}
