import LogFormats
import Testing

@testable import Labeling

@Suite struct ClassifyTests {
  static func path(_ text: String) -> FieldPath { FieldPath(segments: text.split(separator: ".").map(String.init)) }

  /// Rules with every kind of `where:` entry, strings of several lengths, a rule with no entry
  /// and a field shared by several rules.
  static let rules = makeRules(catchAll: true)
  static let rulesWithoutCatchAll = makeRules(catchAll: false)

  static func makeRules(catchAll: Bool) -> Rules {
    Rules(
      prediction: EventRule(
        matches: [
          FieldMatch(path: path("event"), value: .string("prediction")),
          FieldMatch(path: path("meta.level"), value: .string("INFO")),
        ], key: path("request_id")),
      feedbackTypes: [
        FeedbackType(
          name: "click",
          rule: EventRule(matches: [FieldMatch(path: path("event"), value: .string("click"))], key: path("rid"))),
        FeedbackType(
          name: "purchase",
          rule: EventRule(
            matches: [
              FieldMatch(path: path("event"), value: .string("purchase")),
              FieldMatch(path: path("test"), value: .bool(false)),
              FieldMatch(path: path("status"), value: .number(200)), FieldMatch(path: path("gone"), value: .null),
            ], key: path("request_id"))),
      ] + (catchAll ? [FeedbackType(name: "anything", rule: EventRule(matches: [], key: path("other_id")))] : []),
      labels: [LabelSpec(name: "clicked", feedbackType: 0, window: 60)],
      datasets: [DatasetSpec(name: "d", labels: [0], columns: nil)])
  }

  static let documents = [
    #"{"event":"prediction","meta":{"level":"INFO"},"request_id":"r-1"}"#,
    #"{"event":"prediction","meta":{"level":"DEBUG"},"request_id":"r-1"}"#,
    #"{"event":"prediction","request_id":"r-1"}"#,
    #"{"event":"prediction","meta":{"level":"INFO"}}"#,
    #"{"event":"prediction","meta":{"level":"INFO"},"request_id":17}"#,
    #"{"event":"click","rid":"r-2"}"#,
    #"{"event":"clicks","rid":"r-2","other_id":"o"}"#,
    #"{"event":"purchase","test":false,"status":200.0,"gone":null,"request_id":"r-3"}"#,
    #"{"event":"purchase","test":false,"status":200,"request_id":"r-3","other_id":"o"}"#,
    #"{"event":"purchase","test":true,"status":200,"gone":null,"request_id":"r-3"}"#,
    #"{"event":"purchase","test":false,"status":201,"gone":null,"request_id":"r-3"}"#,
    #"{"other_id":"o-4"}"#,
    #"{"nothing":1}"#,
  ]

  /// The obviously-correct classification, from the parsed document: the first rule (the
  /// prediction's, then each feedback type's in order) whose every `where:` entry holds.
  static func reference(_ rules: Rules, _ document: JSONValue) -> Rules.Classification {
    func holds(_ match: FieldMatch) -> Bool {
      let found = document.value(at: match.path)
      switch match.value {
      case .string(let text): return found?.stringValue == text
      case .number(let number): return found?.doubleValue == number
      case .bool(let bool): return found == .bool(bool)
      case .null: return found == .null
      }
    }
    func key(_ rule: EventRule) -> JoinKey? { document.value(at: rule.key)?.keyText.map { JoinKey($0) } }
    if rules.prediction.matches.allSatisfy(holds) {
      return key(rules.prediction).map { .prediction(key: $0) } ?? .missingKey
    }
    for (type, feedback) in rules.feedbackTypes.enumerated() where feedback.rule.matches.allSatisfy(holds) {
      return key(feedback.rule).map { .feedback(type: type, key: $0) } ?? .missingKey
    }
    return .ignored
  }

  /// `classify` reads the rules from tables in memory of their own, through plain pointers;
  /// it must decide as the reference does on the parsed document.
  @Test func classifiesAsTheReference() throws {
    var seen = Set<String>()
    for rules in [Self.rules, Self.rulesWithoutCatchAll] {
      for text in Self.documents {
        let object = try JSONValue.parse(Array(text.utf8))
        rules.withScanned(Event(time: 0, object: object)) { event in
          let classified = rules.classify(event)
          #expect(classified == Self.reference(rules, object), "\(text)")
          seen.insert("\(classified)")
          // Matched ahead (on a read-ahead thread), passed on as a number, keyed later: the same.
          let matched = rules.matcher.eventClass(event)
          #expect(Rules.EventClass(code: matched.code) == matched)
          #expect(rules.classify(event, as: Rules.EventClass(code: matched.code)) == classified, "\(text)")
          // The key's hash, computed ahead (for prefetching and for the lookup), is the key table's.
          let table = KeyTable(seed: 77)
          switch classified {
          case .prediction(let key), .feedback(_, let key):
            #expect(rules.matcher.keyHash(event, matched, seed: 77) == table.hash(key), "\(text)")
          case .ignored, .missingKey:
            #expect(rules.matcher.keyHash(event, matched, seed: 77) == nil, "\(text)")
          }
        }
      }
    }
    // Every outcome is met: the comparison covers them all.
    #expect(seen.contains { $0.hasPrefix("prediction") })
    #expect(seen.contains { $0.contains("type: 1") })
    #expect(seen.contains { $0.contains("type: 2") })
    #expect(seen.contains("missingKey"))
    #expect(seen.contains("ignored"))
  }
}
