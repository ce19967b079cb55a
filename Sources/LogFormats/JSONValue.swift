/// A JSON value.
///
/// Numbers keep their literal text exactly as in the input (for example `"1.50"` or `"-3e2"`),
/// so they are re-emitted unchanged. Object members stay in input order and duplicate keys are kept.
public enum JSONValue: Sendable, Hashable {
  case null
  case bool(Bool)
  case number(String)
  case string(String)
  case array([JSONValue])
  case object([JSONMember])
}

/// One `"key": value` member of a JSON object.
public struct JSONMember: Sendable, Hashable {
  public var key: String
  public var value: JSONValue

  public init(key: String, value: JSONValue) {
    self.key = key
    self.value = value
  }
}

/// Why a byte sequence is not a JSON text. `offset` is the byte offset where the problem was found.
public struct JSONParseError: Error, Sendable, Hashable, CustomStringConvertible {
  public let offset: Int
  public let message: String

  public init(offset: Int, message: String) {
    self.offset = offset
    self.message = message
  }

  public var description: String { "invalid JSON at byte \(offset): \(message)" }
}

extension JSONValue {
  /// Member lookup on an object. For duplicate keys the last one wins. `nil` for a missing key or a non-object.
  public subscript(key: String) -> JSONValue? {
    guard case .object(let members) = self else { return nil }
    var index = members.endIndex
    while index > members.startIndex {
      index -= 1
      if members[index].key == key { return members[index].value }
    }
    return nil
  }

  /// Walks `path` through nested objects; `nil` if a segment is missing or a non-object is met on the way.
  public func value(at path: FieldPath) -> JSONValue? {
    var current = self
    for segment in path.segments {
      guard let next = current[segment] else { return nil }
      current = next
    }
    return current
  }

  /// Text used for join keys: a string's contents or a number's literal text; `nil` for other kinds.
  public var keyText: String? {
    switch self {
    case .string(let text), .number(let text): return text
    default: return nil
    }
  }

  /// A number as `Double`; `nil` for non-numbers.
  public var doubleValue: Double? {
    guard case .number(let literal) = self else { return nil }
    return Double(literal)
  }

  /// The string's contents, or `nil` for other kinds.
  public var stringValue: String? {
    guard case .string(let text) = self else { return nil }
    return text
  }

  /// The members of an object, or `nil` for other kinds.
  public var objectMembers: [JSONMember]? {
    guard case .object(let members) = self else { return nil }
    return members
  }
}
