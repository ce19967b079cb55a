// libFuzzer target: the JSON parser, its writer and the line decoders (see Fuzz/run.sh).
// Compiled together with Sources/LogFormats into one module, so nothing is imported.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = UnsafeRawBufferPointer(start: data, count: size)
  if let value = try? JSONValue.parse(bytes) {
    // What the parser accepts, the writer writes back as the same value.
    var out: [UInt8] = []
    value.write(to: &out)
    guard let again = try? JSONValue.parse(out), again == value else {
      fatalError("round trip changed the value")
    }
    _ = Timestamp.parse(value)
  }
  for format in LogFormat.allCases {
    _ = LineDecoder(format: format, timeField: nil).decode(bytes)
  }
  _ = Timestamp.parse(text: bytes)
  return 0
}
