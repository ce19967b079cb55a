/// Where a file stands in its rotation family, parsed from its name.
///
/// `app.log` is the live file; `app.log.3`, `app.log.3.gz` are numbered siblings (higher is
/// older); `app.log-20261130`, `app.log-2026113009.gz`, `app.log.2026-11-30` are dated
/// siblings (earlier is older). Compression is never decided from the name; `.gz` is only
/// stripped to find the family.
public struct RotationName: Sendable, Hashable {
  public enum Kind: Sendable, Hashable {
    case live
    case numbered(Int)
    case dated(String, Int)
  }

  /// The live file's name this file was rotated from.
  public let family: String
  public let kind: Kind

  public init(path: String) {
    var name = path
    for ext in [".gz", ".gzip", ".z"] where name.hasSuffix(ext) && name.count > ext.count {
      name.removeLast(ext.count)
      break
    }
    let bytes = Array(name.utf8)
    // Numbered: "<family>.<digits>" with a short number (a date would be 8+ digits).
    if let dot = bytes.lastIndex(of: UInt8(ascii: ".")), dot > 0, dot < bytes.count - 1 {
      let digits = bytes[(dot + 1)...]
      if digits.count <= 6, digits.allSatisfy(Self.isDigit) {
        family = String(decoding: bytes[..<dot], as: UTF8.self)
        kind = .numbered(Int(String(decoding: digits, as: UTF8.self))!)
        return
      }
    }
    if let (family, date, counter) = Self.parseDated(bytes) {
      self.family = family
      kind = .dated(date, counter)
      return
    }
    family = name
    kind = .live
  }

  /// Sort key: dated siblings (oldest first), then numbered (highest first), then live.
  var orderKey: (Int, String, Int) {
    switch kind {
    case .dated(let date, let counter): (0, date, counter)
    case .numbered(let n): (1, "", -n)
    case .live: (2, "", 0)
    }
  }

  private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

  /// `<family>[-._]<date>[-<counter>]`, the date as 8 to 14 digits (`20261130`,
  /// `2026113009`) or as `2026-11-30` optionally followed by `-09`; the family is as short as
  /// possible. Hand-written (the daemon lists directories several times a second).
  private static func parseDated(_ bytes: [UInt8]) -> (String, String, Int)? {
    var i = 1
    while i < bytes.count - 1 {
      let b = bytes[i]
      if b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "_"),
        let (date, counter) = matchDate(bytes, from: i + 1)
      {
        return (String(decoding: bytes[0..<i], as: UTF8.self), date, counter)
      }
      i += 1
    }
    return nil
  }

  private static func digitRun(_ bytes: [UInt8], _ start: Int) -> Int {
    var end = start
    while end < bytes.count, isDigit(bytes[end]) { end += 1 }
    return end - start
  }

  /// The end of the name (counter 0) or `-` and 1 to 4 digits ending it.
  private static func counter(_ bytes: [UInt8], _ start: Int) -> Int? {
    if start == bytes.count { return 0 }
    guard bytes[start] == UInt8(ascii: "-") else { return nil }
    let run = digitRun(bytes, start + 1)
    guard (1...4).contains(run), start + 1 + run == bytes.count else { return nil }
    return Int(String(decoding: bytes[(start + 1)...], as: UTF8.self))
  }

  private static func matchDate(_ bytes: [UInt8], from start: Int) -> (String, Int)? {
    func text(_ ranges: Range<Int>...) -> String {
      String(decoding: ranges.flatMap { bytes[$0] }, as: UTF8.self)
    }
    let run = digitRun(bytes, start)
    if (8...14).contains(run), let c = counter(bytes, start + run) { return (text(start..<(start + run)), c) }
    func dash(_ at: Int) -> Bool { at < bytes.count && bytes[at] == UInt8(ascii: "-") }
    guard run == 4, dash(start + 4), digitRun(bytes, start + 5) == 2, dash(start + 7),
      digitRun(bytes, start + 8) == 2
    else { return nil }
    let day = start..<(start + 4)
    let month = (start + 5)..<(start + 7)
    let date = (start + 8)..<(start + 10)
    let end = start + 10
    if dash(end), digitRun(bytes, end + 1) == 2, let c = counter(bytes, end + 3) {
      return (text(day, month, date, (end + 1)..<(end + 3)), c)
    }
    if let c = counter(bytes, end) { return (text(day, month, date), c) }
    return nil
  }
}

/// Orders the files a source's globs matched: families by name, and in each family the
/// oldest rotated sibling first and the live file last.
public func rotationOrdered(_ paths: [String]) -> [String] {
  let named = Set(paths).map { (path: $0, name: RotationName(path: $0)) }
  return named.sorted { a, b in
    if a.name.family != b.name.family { return a.name.family < b.name.family }
    let ka = a.name.orderKey
    let kb = b.name.orderKey
    if ka.0 != kb.0 { return ka.0 < kb.0 }
    if ka.1 != kb.1 { return ka.1 < kb.1 }
    if ka.2 != kb.2 { return ka.2 < kb.2 }
    return a.path < b.path
  }.map(\.path)
}
