import LogFormats

extension Rules {
  /// A `where` condition an event fails: `rule` needs `path` to be `expected`, it is `found`
  /// (compact JSON; nil when missing).
  public struct Mismatch: Sendable, Equatable {
    public var rule: String
    public var path: String
    public var found: String?
    public var expected: String
  }

  /// Why `event` is not a prediction nor feedback: per rule, the first `where` condition it
  /// fails (`feedbackd check`).
  public func whyIgnored(_ event: ScannedEvent) -> [Mismatch] {
    var reasons: [Mismatch] = []
    func explain(_ name: String, _ rule: RuleTables.Rule, _ source: EventRule) {
      // Compiled matches are in the order of the rule's.
      for (k, written) in zip(rule.start..<rule.start + rule.count, source.matches)
      where !tables.matches[k].matches(event, tables.matchBytes) {
        let slot = tables.matches[k].slot
        reasons.append(
          Mismatch(
            rule: name, path: fieldPaths[slot].description, found: event.compactText(slot),
            expected: Self.text(written.value)))
        return
      }
    }
    explain("prediction", tables.prediction, prediction)
    for (type, rule) in zip(feedbackTypes, tables.feedback) { explain(type.name, rule, type.rule) }
    return reasons
  }

  /// Why an event that matches a rule has no usable key: the rule and what its key path holds.
  public func whyNoKey(_ event: ScannedEvent) -> String {
    var rule = tables.prediction
    var name = "prediction"
    if !tables.accepts(rule, event),
      let type = tables.feedback.indices.first(where: { tables.accepts(tables.feedback[$0], event) })
    {
      rule = tables.feedback[type]
      name = feedbackTypes[type].name
    }
    let path = fieldPaths[rule.keySlot].description
    let found = event.compactText(rule.keySlot).map { "is \($0)" } ?? "is missing"
    return "matches \(name), but its key \(path) \(found) (a string or integer is needed)"
  }

  static func text(_ value: MatchValue) -> String {
    switch value {
    case .string(let s):
      var out: [UInt8] = []
      JSONValue.writeString(s, to: &out)
      return String(decoding: out, as: UTF8.self)
    case .number(let n): return n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
    case .bool(let b): return String(b)
    case .null: return "null"
    }
  }
}
