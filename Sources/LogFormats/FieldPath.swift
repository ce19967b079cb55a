/// A dotted path into a JSON object, such as `features.item_category`.
///
/// A key that itself contains a dot is quoted: `"a.b".c` is the key `a.b`, then `c`.
/// Inside quotes, `\"` and `\\` escape a quote and a backslash.
public struct FieldPath: Hashable, Sendable, CustomStringConvertible {
  public let segments: [String]

  public init(segments: [String]) {
    self.segments = segments
  }

  public init(parsing text: String) throws(FieldPathError) {
    var segments: [String] = []
    var current = ""
    var quoted = false
    var wasQuoted = false
    var iterator = text.makeIterator()
    while let ch = iterator.next() {
      if quoted {
        switch ch {
        case "\\":
          guard let next = iterator.next() else { throw FieldPathError(path: text, problem: "ends inside an escape") }
          current.append(next)
        case "\"":
          quoted = false
        default:
          current.append(ch)
        }
        continue
      }
      switch ch {
      case ".":
        guard !current.isEmpty || wasQuoted else { throw FieldPathError(path: text, problem: "has an empty segment") }
        segments.append(current)
        current = ""
        wasQuoted = false
      case "\"":
        guard current.isEmpty, !wasQuoted else {
          throw FieldPathError(path: text, problem: "has a quote inside a segment")
        }
        quoted = true
        wasQuoted = true
      default:
        guard !wasQuoted else { throw FieldPathError(path: text, problem: "has text after a closing quote") }
        current.append(ch)
      }
    }
    if quoted { throw FieldPathError(path: text, problem: "has an unclosed quote") }
    guard !current.isEmpty || wasQuoted else {
      throw FieldPathError(path: text, problem: text.isEmpty ? "is empty" : "has an empty segment")
    }
    segments.append(current)
    self.segments = segments
  }

  /// The path as written in a configuration, quoting segments that need it.
  public var description: String {
    segments.map { segment in
      if segment.isEmpty || segment.contains(".") || segment.contains("\"") || segment.contains("\\") {
        var escaped = "\""
        for ch in segment {
          if ch == "\"" || ch == "\\" { escaped.append("\\") }
          escaped.append(ch)
        }
        return escaped + "\""
      }
      return segment
    }.joined(separator: ".")
  }
}

public struct FieldPathError: Error, Sendable, CustomStringConvertible {
  public let path: String
  public let problem: String
  public var description: String { "field path \"\(path)\" \(problem)" }
}
