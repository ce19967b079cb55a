import LogFormats

/// Parsers for the small value languages of the configuration. Each returns nil or a problem
/// text; the decoder attaches the key path.
enum Units {
  static let durationHint = "use e.g. 500ms, 30s, 5m, 1h30m, 7d; units: ms, s, m, h, d"
  static let sizeHint = "use e.g. 512KiB, 128MiB, 1GiB"

  /// `<integer><unit>` repeated with strictly decreasing units (`1h30m`); units ms, s, m, h, d.
  /// Returns nanoseconds.
  static func duration(_ text: String) -> Result<Int64, Problem> {
    let bad = Problem("\(quoted(text)) is not a duration (\(durationHint))")
    let units: [(String, Int64)] = [
      ("d", 86_400_000_000_000), ("h", 3_600_000_000_000), ("m", 60_000_000_000),
      ("s", 1_000_000_000), ("ms", 1_000_000),
    ]
    let chars = Array(text.unicodeScalars)
    guard !chars.isEmpty else { return .failure(bad) }
    var i = 0
    var total: Int64 = 0
    var lastRank = -1
    while i < chars.count {
      var number: Int64 = 0
      let start = i
      while i < chars.count, let d = digit(chars[i]) {
        let (m, o1) = number.multipliedReportingOverflow(by: 10)
        let (a, o2) = m.addingReportingOverflow(Int64(d))
        if o1 || o2 { return .failure(Problem("\(quoted(text)) is too long a duration")) }
        number = a
        i += 1
      }
      guard i > start else { return .failure(bad) }
      var unit = ""
      while i < chars.count, digit(chars[i]) == nil {
        unit.unicodeScalars.append(chars[i])
        i += 1
      }
      guard let rank = units.firstIndex(where: { $0.0 == unit }), rank > lastRank else {
        return .failure(bad)
      }
      lastRank = rank
      let (m, o1) = number.multipliedReportingOverflow(by: units[rank].1)
      let (a, o2) = total.addingReportingOverflow(m)
      if o1 || o2 { return .failure(Problem("\(quoted(text)) is too long a duration")) }
      total = a
    }
    return .success(total)
  }

  /// An integer, optionally followed by B, KiB, MiB or GiB. Returns bytes.
  static func size(_ text: String) -> Result<Int, Problem> {
    let bad = Problem("\(quoted(text)) is not a size (\(sizeHint))")
    let units: [(String, Int)] = [("", 1), ("B", 1), ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)]
    let scalars = Array(text.unicodeScalars)
    var i = 0
    var number = 0
    while i < scalars.count, let d = digit(scalars[i]) {
      let (m, o1) = number.multipliedReportingOverflow(by: 10)
      let (a, o2) = m.addingReportingOverflow(d)
      if o1 || o2 { return .failure(Problem("\(quoted(text)) is too large a size")) }
      number = a
      i += 1
    }
    guard i > 0 else { return .failure(bad) }
    var unitText = ""
    unitText.unicodeScalars.append(contentsOf: scalars[i...])
    guard let unit = units.first(where: { $0.0 == unitText }) else { return .failure(bad) }
    let (bytes, overflow) = number.multipliedReportingOverflow(by: unit.1)
    if overflow { return .failure(Problem("\(quoted(text)) is too large a size")) }
    return .success(bytes)
  }

  /// `host:port`, `[v6]:port`. The host is returned without brackets.
  static func listen(_ text: String) -> Result<(host: String, port: Int), Problem> {
    let bad = Problem("\(quoted(text)) is not host:port (use e.g. 127.0.0.1:9464 or [::1]:9464)")
    let host: Substring
    let portText: Substring
    if text.hasPrefix("[") {
      guard let close = text.firstIndex(of: "]") else { return .failure(bad) }
      host = text[text.index(after: text.startIndex)..<close]
      let rest = text[text.index(after: close)...]
      guard rest.hasPrefix(":") else { return .failure(bad) }
      portText = rest.dropFirst()
      guard !host.isEmpty, host.contains(":") else { return .failure(bad) }
    } else {
      guard let colon = text.lastIndex(of: ":") else { return .failure(bad) }
      host = text[..<colon]
      portText = text[text.index(after: colon)...]
      guard !host.isEmpty, !host.contains(":"), !host.contains("["), !host.contains("]") else {
        return .failure(bad)
      }
    }
    guard !host.contains(where: { $0 == " " || $0 == "\t" || $0 == "/" }) else { return .failure(bad) }
    guard !portText.isEmpty, portText.count <= 5, portText.unicodeScalars.allSatisfy({ digit($0) != nil }),
      let port = Int(portText)
    else { return .failure(bad) }
    guard port <= 65535 else {
      return .failure(Problem("port \(port) in \(quoted(text)) is out of range (0–65535)"))
    }
    return .success((String(host), port))
  }

  /// `binary`, `count`, `sum(path)`, `first(path)`.
  static func labelValue(_ text: String) -> Result<LabelValue, Problem> {
    let bad = Problem("\(quoted(text)) is not a label value (use binary, count, sum(path) or first(path))")
    switch text {
    case "binary": return .success(.binary)
    case "count": return .success(.count)
    default: break
    }
    for (function, make) in [("sum", LabelValue.sum), ("first", LabelValue.first)] {
      guard text.hasPrefix(function + "("), text.hasSuffix(")") else { continue }
      let inner = text.dropFirst(function.count + 1).dropLast()
      let trimmed = String(inner.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
      do {
        return .success(make(try FieldPath(parsing: trimmed)))
      } catch {
        return .failure(Problem("\(quoted(text)): \(error.description)"))
      }
    }
    return .failure(bad)
  }

  /// `[A-Za-z_][A-Za-z0-9_]*`.
  static func isName(_ text: String) -> Bool {
    guard let first = text.unicodeScalars.first else { return false }
    func letter(_ c: Unicode.Scalar) -> Bool { (c >= "A" && c <= "Z") || (c >= "a" && c <= "z") || c == "_" }
    return letter(first) && text.unicodeScalars.dropFirst().allSatisfy { letter($0) || digit($0) != nil }
  }

  /// Resolves `path` against `base` (both may be relative; a relative base is taken as is),
  /// dropping `.` segments and repeated slashes and folding `..` where the segment before it
  /// is a plain name. `~` is not expanded.
  static func absolutePath(_ path: String, base: String) -> String {
    let joined = path.hasPrefix("/") ? path : base + "/" + path
    var out: [Substring] = []
    for segment in joined.split(separator: "/", omittingEmptySubsequences: true) {
      switch segment {
      case ".": continue
      case "..":
        if let last = out.last, last != "..", !last.contains(where: { "*?[{".contains($0) }) {
          out.removeLast()
        } else if out.isEmpty, joined.hasPrefix("/") {
          continue  // "/.." is "/"
        } else {
          out.append(segment)
        }
      default: out.append(segment)
      }
    }
    let body = out.joined(separator: "/")
    return joined.hasPrefix("/") ? "/" + body : (body.isEmpty ? "." : body)
  }

  static func digit(_ c: Unicode.Scalar) -> Int? {
    c >= "0" && c <= "9" ? Int(c.value - 48) : nil
  }

  static func quoted(_ text: String) -> String {
    var out = "\""
    for c in text.unicodeScalars {
      switch c {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\t": out += "\\t"
      case "\r": out += "\\r"
      default: out.unicodeScalars.append(c)
      }
    }
    return out + "\""
  }
}

struct Problem: Error {
  let text: String
  init(_ text: String) { self.text = text }
}

/// YAML 1.2 core schema resolution of plain scalars.
enum CoreSchema {
  static func resolvePlain(_ text: String) -> ScalarValue {
    switch text {
    case "", "~", "null", "Null", "NULL": return .null
    case "true", "True", "TRUE": return .bool(true)
    case "false", "False", "FALSE": return .bool(false)
    case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .number(.infinity)
    case "-.inf", "-.Inf", "-.INF": return .number(-.infinity)
    case ".nan", ".NaN", ".NAN": return .number(.nan)
    default: break
    }
    if let n = integer(text) { return .number(n) }
    if let n = float(text) { return .number(n) }
    return .string(text)
  }

  /// `[-+]?[0-9]+`, `0o[0-7]+`, `0x[0-9a-fA-F]+`.
  static func integer(_ text: String) -> Double? {
    if text.hasPrefix("0o") {
      let digits = text.dropFirst(2)
      guard !digits.isEmpty, digits.allSatisfy({ $0 >= "0" && $0 <= "7" }) else { return nil }
      return UInt64(digits, radix: 8).map { Double($0) } ?? Double(sign: .plus, exponent: 64, significand: 1)
    }
    if text.hasPrefix("0x") {
      let digits = text.dropFirst(2)
      guard !digits.isEmpty, digits.allSatisfy(\.isHexDigit), digits.allSatisfy(\.isASCII) else { return nil }
      return UInt64(digits, radix: 16).map { Double($0) } ?? Double(sign: .plus, exponent: 64, significand: 1)
    }
    var body = Substring(text)
    if body.first == "-" || body.first == "+" { body = body.dropFirst() }
    guard !body.isEmpty, body.unicodeScalars.allSatisfy({ Units.digit($0) != nil }) else { return nil }
    return Double(text)
  }

  /// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
  static func float(_ text: String) -> Double? {
    var s = Array(text.unicodeScalars)
    var i = 0
    func digits() -> Int {
      let start = i
      while i < s.count, Units.digit(s[i]) != nil { i += 1 }
      return i - start
    }
    if i < s.count, s[i] == "-" || s[i] == "+" { i += 1 }
    let intDigits = digits()
    if i < s.count, s[i] == "." {
      i += 1
      let fraction = digits()
      guard intDigits > 0 || fraction > 0 else { return nil }
      if fraction == 0 {
        s.insert("0", at: i)  // "5." → "5.0" for Double(_:)
        i += 1
      }
    } else if intDigits == 0 {
      return nil
    }
    if i < s.count, s[i] == "e" || s[i] == "E" {
      i += 1
      if i < s.count, s[i] == "-" || s[i] == "+" { i += 1 }
      guard digits() > 0 else { return nil }
    }
    guard i == s.count else { return nil }
    var normalised = ""
    normalised.unicodeScalars.append(contentsOf: s)
    if normalised.hasPrefix(".") || normalised.hasPrefix("-.") || normalised.hasPrefix("+.") {
      normalised = normalised.replacingFirstDot()
    }
    return Double(normalised)
  }
}

extension String {
  /// ".5" → "0.5", "-.5" → "-0.5".
  fileprivate func replacingFirstDot() -> String {
    guard let dot = firstIndex(of: ".") else { return self }
    return String(self[..<dot]) + "0" + String(self[dot...])
  }
}
