import Labeling
import LogFormats
import Testing

/// Collects what the engine decides.
final class Recorder: EngineOutput {
  var rows: [LabeledRow] = []
  var side: [SideRecord] = []
  func write(parts: RowParts) { rows.append(parts.labeledRow) }
  func side(_ record: SideRecord) { side.append(record) }
}

let second: Int64 = 1_000_000_000
let minute = 60 * second
let t0: Int64 = 1_796_029_200 * second  // 2026-11-30T09:00:00Z

func path(_ s: String) -> FieldPath { try! FieldPath(parsing: s) }

func makeRules(
  clickWindow: Int64 = 30 * minute, skew: Int64 = 0, ooo: Int64 = 5 * second, extraLabels: [LabelSpec] = [],
  datasetLabels: [[Int]] = [[0]]
) -> Rules {
  Rules(
    prediction: EventRule(matches: [FieldMatch(path: path("event"), value: .string("prediction"))], key: path("id")),
    feedbackTypes: [
      FeedbackType(
        name: "click",
        rule: EventRule(matches: [FieldMatch(path: path("event"), value: .string("click"))], key: path("id"))),
      FeedbackType(
        name: "purchase",
        rule: EventRule(matches: [FieldMatch(path: path("event"), value: .string("purchase"))], key: path("id")),
        dedupeBy: path("order")),
    ],
    labels: [LabelSpec(name: "clicked", feedbackType: 0, window: clickWindow)] + extraLabels,
    datasets: datasetLabels.enumerated().map { DatasetSpec(name: "d\($0.offset)", labels: $0.element, columns: nil) },
    clockSkew: skew, maxOutOfOrder: ooo)
}

struct Harness {
  let engine: LabelEngine
  let recorder: Recorder

  init(_ rules: Rules) throws {
    recorder = Recorder()
    engine = try LabelEngine(rules: rules, store: InMemoryStateStore(), output: recorder, sources: 1)
  }

  func feed(_ event: String, _ id: String, at time: Int64, _ extra: String = "") throws {
    let text = "{\"event\":\"\(event)\",\"id\":\"\(id)\"\(extra)}"
    let object = try JSONValue.parse(text)
    let hash = text.utf8.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    try engine.process(Event(time: time, object: object), source: 0, lineHash: hash &+ UInt64(time))
  }

  /// Same bytes twice: the same line hash.
  func feedLine(_ text: String, at time: Int64, hash: UInt64) throws {
    try engine.process(Event(time: time, object: try JSONValue.parse(text)), source: 0, lineHash: hash)
  }

  func value(_ key: String, label: Int = 0) -> String? {
    guard let row = recorder.rows.first(where: { $0.key == key }) else { return nil }
    return row.labels[label].value.jsonText
  }
}

@Suite struct LabelEngineTests {
  /// Events are counted by source and kind (prediction, each feedback type, ignored, missing
  /// key), as the `feedbackd_events_total` metric reports them.
  @Test func eventsAreCountedBySourceAndKind() throws {
    let engine = try LabelEngine(rules: makeRules(), store: InMemoryStateStore(), output: Recorder(), sources: 3)
    let events: [(source: Int, text: String)] = [
      (0, #"{"event":"prediction","id":"a"}"#), (0, #"{"event":"prediction","id":"b"}"#),
      (0, #"{"event":"click","id":"a"}"#), (1, #"{"event":"purchase","id":"a","order":"o1"}"#),
      (1, #"{"event":"purchase","id":"b","order":"o2"}"#), (1, #"{"event":"other"}"#),
      (2, #"{"event":"click"}"#), (2, #"{"event":"prediction"}"#), (2, #"{"event":"prediction","id":"c"}"#),
      (2, #"{"event":"other"}"#), (2, #"{"event":"other"}"#),
    ]
    for (offset, event) in events.enumerated() {
      try engine.process(
        Event(time: t0 + Int64(offset) * second, object: try JSONValue.parse(event.text)), source: event.source,
        lineHash: UInt64(offset))
    }
    // Per source: prediction, click, purchase, ignored, missing key.
    #expect(engine.counters.eventsBySource == [[2, 1, 0, 0, 0], [0, 0, 2, 1, 0], [1, 0, 0, 2, 2]])
    #expect(engine.counters.predictions == 3 && engine.counters.feedback == [1, 2])
    #expect(engine.counters.ignored == 3 && engine.counters.missingKey == 2)
  }

  @Test func clickInsideWindowIsOne() throws {
    let h = try Harness(makeRules())
    try h.feed("prediction", "a", at: t0)
    try h.feed("click", "a", at: t0 + 10 * second)
    try h.engine.flush()
    #expect(h.value("a") == "1")
    #expect(h.recorder.rows.first?.labels.first?.at == t0 + 10 * second)
  }

  /// Payloads of every size, past the engine's 256-byte scratch and growing it several times,
  /// come back whole in their rows (the dataset keeps the whole object).
  @Test func payloadsOfEverySizeComeBackWhole() throws {
    let h = try Harness(makeRules())
    var expected: [String: String] = [:]
    for (n, size) in [0, 10, 200, 255, 256, 300, 1000, 5000, 40, 70_000, 3].enumerated() {
      let extra = ",\"pad\":\"" + String(repeating: "x", count: size) + "\""
      try h.feed("prediction", "p\(n)", at: t0 + Int64(n) * second, extra)
      expected["p\(n)"] = "{\"event\":\"prediction\",\"id\":\"p\(n)\"\(extra)}"
    }
    try h.engine.flush()
    #expect(h.recorder.rows.count == expected.count)
    for row in h.recorder.rows {
      #expect(row.columns.jsonText == expected[row.key], "\(row.key)")
    }
  }

  @Test func windowIsHalfOpen() throws {
    let h = try Harness(makeRules())
    try h.feed("prediction", "a", at: t0)
    try h.feed("click", "a", at: t0 + 30 * minute)  // exactly at tp + W: outside
    try h.feed("prediction", "b", at: t0)
    try h.feed("click", "b", at: t0 + 30 * minute - 1)  // one ns before: inside
    try h.engine.flush()
    #expect(h.value("a") == "0")
    #expect(h.value("b") == "1")
    #expect(h.engine.counters.orphans[0] == 1)
  }

  @Test func clockSkewLetsSlightlyEarlierFeedbackCount() throws {
    let strict = try Harness(makeRules())
    let lenient = try Harness(makeRules(skew: 2 * second))
    for h in [strict, lenient] {
      try h.feed("click", "a", at: t0 - 1 * second)
      try h.feed("prediction", "a", at: t0)
      try h.engine.flush()
    }
    #expect(strict.value("a") == "0")
    #expect(lenient.value("a") == "1")
  }

  @Test func rowIsWrittenOnlyWhenWatermarkPassesWindowEnd() throws {
    let h = try Harness(makeRules())
    try h.feed("prediction", "a", at: t0)
    try h.feed("other", "x", at: t0 + 30 * minute + 4 * second)  // watermark = that - 5s: not yet
    #expect(h.recorder.rows.isEmpty)
    try h.feed("other", "x", at: t0 + 30 * minute + 5 * second)  // watermark = tp + W
    #expect(h.recorder.rows.count == 1)
    #expect(h.value("a") == "0")
  }

  @Test func firstPredictionWinsByEventTime() throws {
    let h = try Harness(makeRules())
    try h.feed("prediction", "a", at: t0 + 2 * second, ",\"v\":2")
    try h.feed("prediction", "a", at: t0, ",\"v\":1")  // earlier event time, read later: it wins
    try h.feed("prediction", "a", at: t0 + 1 * second, ",\"v\":3")
    try h.feed("click", "a", at: t0 + 30 * minute + 1 * second)  // inside the losing one's window only
    try h.engine.flush()
    #expect(h.recorder.rows.count == 1)
    #expect(h.recorder.rows[0].predictedAt == t0)
    #expect(h.recorder.rows[0].columns["v"] == .number("1"))
    #expect(h.value("a") == "0")
    #expect(h.engine.counters.duplicatePredictions == 2)
  }

  @Test func identicalLinesCountOnceButDistinctOnesCount() throws {
    let rules = makeRules(
      extraLabels: [LabelSpec(name: "clicks", feedbackType: 0, window: 30 * minute, value: .count)],
      datasetLabels: [[0, 1]])
    let h = try Harness(rules)
    try h.feed("prediction", "a", at: t0)
    let line = "{\"event\":\"click\",\"id\":\"a\"}"
    try h.feedLine(line, at: t0 + second, hash: 42)
    try h.feedLine(line, at: t0 + second, hash: 42)  // shipper retry
    try h.feedLine(line, at: t0 + 2 * second, hash: 43)  // a second real click
    try h.engine.flush()
    #expect(h.value("a", label: 1) == "2")
  }

  @Test func dedupeByCountsEqualValuesOnceKeepingTheEarliest() throws {
    let rules = makeRules(
      extraLabels: [
        LabelSpec(name: "revenue", feedbackType: 1, window: 7 * 24 * 60 * minute, value: .sum(path("value"))),
        LabelSpec(name: "orders", feedbackType: 1, window: 7 * 24 * 60 * minute, value: .count),
        LabelSpec(name: "firstValue", feedbackType: 1, window: 7 * 24 * 60 * minute, value: .first(path("value"))),
      ], datasetLabels: [[1, 2, 3]])
    let h = try Harness(rules)
    try h.feed("prediction", "a", at: t0)
    try h.feed("purchase", "a", at: t0 + minute, ",\"order\":\"o1\",\"value\":10.5")
    try h.feed("purchase", "a", at: t0 + 2 * minute, ",\"order\":\"o1\",\"value\":99")  // re-sent order
    try h.feed("purchase", "a", at: t0 + 3 * minute, ",\"order\":\"o2\",\"value\":4.5")
    try h.engine.flush()
    #expect(h.value("a", label: 0) == "15")
    #expect(h.value("a", label: 1) == "2")
    #expect(h.value("a", label: 2) == "10.5")
    #expect(h.recorder.rows[0].labels[0].at == t0 + minute)
  }

  /// Few events of a key are checked for duplicates against the earlier ones in place, many
  /// through sets: both ways count identical lines once and equal `dedupe_by` values once.
  @Test(arguments: [3, 7, 30])
  func duplicatesAmongManyEventsOfOneKey(distinct: Int) throws {
    let week = 7 * 24 * 60 * minute
    let rules = makeRules(
      extraLabels: [
        LabelSpec(name: "clicks", feedbackType: 0, window: week, value: .count),
        LabelSpec(name: "orders", feedbackType: 1, window: week, value: .count),
        LabelSpec(name: "revenue", feedbackType: 1, window: week, value: .sum(path("value"))),
        LabelSpec(name: "firstValue", feedbackType: 1, window: week, value: .first(path("value"))),
      ], datasetLabels: [[1, 2, 3, 4]])
    let h = try Harness(rules)
    try h.feed("prediction", "a", at: t0)
    // Clicks: `distinct` lines, each also read again (a shipper's retry: same bytes, same hash).
    for j in 0..<distinct {
      let line = "{\"event\":\"click\",\"id\":\"a\",\"n\":\(j)}"
      try h.feedLine(line, at: t0 + Int64(j + 1) * second, hash: 1000 + UInt64(j))
      try h.feedLine(line, at: t0 + Int64(j + 1) * second, hash: 1000 + UInt64(j))
    }
    // Purchases: each order sent twice, the second time with another value (a re-send).
    for j in 0..<(2 * distinct) {
      let line = "{\"event\":\"purchase\",\"id\":\"a\",\"order\":\"o\(j % distinct)\",\"value\":\(j + 1)}"
      try h.feedLine(line, at: t0 + minute + Int64(j) * second, hash: 5000 + UInt64(j))
    }
    try h.engine.flush()
    #expect(h.value("a", label: 0) == "\(distinct)")
    #expect(h.value("a", label: 1) == "\(distinct)")
    #expect(h.value("a", label: 2) == "\(distinct * (distinct + 1) / 2)")
    #expect(h.value("a", label: 3) == "1")
    #expect(h.recorder.rows[0].labels[1].at == t0 + minute)
  }

  @Test func sumWithNoFeedbackIsZeroAndFirstIsNull() throws {
    let rules = makeRules(
      extraLabels: [
        LabelSpec(name: "revenue", feedbackType: 1, window: minute, value: .sum(path("value"))),
        LabelSpec(name: "firstValue", feedbackType: 1, window: minute, value: .first(path("value"))),
      ], datasetLabels: [[1, 2]])
    let h = try Harness(rules)
    try h.feed("prediction", "a", at: t0)
    try h.engine.flush()
    #expect(h.value("a", label: 0) == "0")
    #expect(h.value("a", label: 1) == "null")
    #expect(h.recorder.rows[0].labels[0].at == nil)
  }

  @Test func feedbackWithoutPredictionBecomesOrphanWhenWatermarkPasses() throws {
    let h = try Harness(makeRules())
    try h.feed("click", "nobody", at: t0)
    try h.feed("other", "x", at: t0 + 5 * second)  // watermark = t0: not passed yet
    #expect(h.engine.counters.orphans[0] == 0)
    try h.feed("other", "x", at: t0 + 5 * second + 1)
    #expect(h.engine.counters.orphans[0] == 1)
    guard case .orphan(_, let key, _)? = h.recorder.side.first else {
      Issue.record("no orphan record")
      return
    }
    #expect(key == "nobody")
  }

  @Test func feedbackReadBeforeItsPredictionStillCounts() throws {
    let h = try Harness(makeRules())
    try h.feed("prediction", "z", at: t0)
    try h.feed("click", "a", at: t0 + 3 * second)
    try h.feed("prediction", "a", at: t0 + 2 * second)  // out of order, within max_out_of_order
    try h.engine.flush()
    #expect(h.value("a") == "1")
    #expect(h.engine.counters.orphans[0] == 0)
  }

  @Test func feedbackAfterRowWrittenIsLateAndChangesNothing() throws {
    let h = try Harness(makeRules(ooo: 0))
    try h.feed("prediction", "a", at: t0)
    try h.feed("other", "x", at: t0 + 31 * minute)  // row for a is final and written
    #expect(h.recorder.rows.count == 1)
    try h.feed("click", "a", at: t0 + 10 * minute)  // belonged in the window, but too late
    try h.engine.flush()
    #expect(h.value("a") == "0")
    #expect(h.engine.counters.lateFeedback[0] == 1)
    #expect(h.recorder.rows.count == 1)
  }

  @Test func predictionWhoseWindowsClosedBeforeReadIsLate() throws {
    let h = try Harness(makeRules(ooo: 0))
    try h.feed("other", "x", at: t0 + 60 * minute)
    try h.feed("prediction", "a", at: t0)
    try h.engine.flush()
    #expect(h.recorder.rows.isEmpty)
    #expect(h.engine.counters.latePredictions == 1)
  }

  @Test func rowsComeInWindowEndThenReadOrder() throws {
    let rules = makeRules(datasetLabels: [[0]])
    let h = try Harness(rules)
    try h.feed("prediction", "b", at: t0 + second)
    try h.feed("prediction", "a", at: t0)
    try h.feed("prediction", "c", at: t0 + second)
    try h.engine.flush()
    #expect(h.recorder.rows.map(\.key) == ["a", "b", "c"])
  }

  @Test func eachDatasetFinalizesAtItsOwnLongestWindow() throws {
    let rules = makeRules(
      extraLabels: [LabelSpec(name: "bought", feedbackType: 1, window: 60 * minute)], datasetLabels: [[0], [1]])
    let h = try Harness(rules)
    try h.feed("prediction", "a", at: t0)
    try h.feed("other", "x", at: t0 + 31 * minute)
    #expect(h.recorder.rows.map(\.dataset) == [0])
    try h.feed("purchase", "a", at: t0 + 40 * minute, ",\"order\":\"o\"")
    try h.feed("other", "x", at: t0 + 61 * minute)
    #expect(h.recorder.rows.map(\.dataset) == [0, 1])
    #expect(h.value("a") == "0")
    #expect(h.recorder.rows[1].labels[0].value == .number("1"))
  }

  @Test func duplicatePredictionAfterFinishIsStillADuplicate() throws {
    let h = try Harness(makeRules(ooo: 0))
    try h.feed("prediction", "a", at: t0)
    try h.feed("other", "x", at: t0 + 31 * minute)
    try h.feed("prediction", "a", at: t0 + 31 * minute)
    try h.engine.flush()
    #expect(h.recorder.rows.count == 1)
    #expect(h.engine.counters.duplicatePredictions == 1)
  }

  @Test func numericKeysJoinWithStringKeys() throws {
    let h = try Harness(makeRules())
    try h.engine.process(
      Event(time: t0, object: try JSONValue.parse("{\"event\":\"prediction\",\"id\":123}")), source: 0, lineHash: 1)
    try h.engine.process(
      Event(time: t0 + second, object: try JSONValue.parse("{\"event\":\"click\",\"id\":\"123\"}")), source: 0,
      lineHash: 2)
    try h.engine.flush()
    #expect(h.value("123") == "1")
  }

  @Test func whereMatchesNumbersBoolsAndNulls() throws {
    func matches(_ value: MatchValue, _ json: String) throws -> Bool {
      let rules = Rules(
        prediction: EventRule(matches: [FieldMatch(path: path("v"), value: value)], key: path("id")),
        feedbackTypes: [], labels: [], datasets: [])
      let event = Event(time: t0, object: try JSONValue.parse(json))
      return rules.withScanned(event) { rules.classify($0) } == .prediction(key: JoinKey("k"))
    }
    #expect(try matches(.number(200), #"{"id":"k","v":200.0}"#))
    #expect(try !matches(.number(200), #"{"id":"k","v":"200"}"#))
    #expect(try matches(.bool(true), #"{"id":"k","v":true}"#))
    #expect(try !matches(.bool(true), #"{"id":"k","v":false}"#))
    #expect(try matches(.null, #"{"id":"k","v":null}"#))
    #expect(try !matches(.null, #"{"id":"k"}"#))
    #expect(try !matches(.string("a"), #"{"id":"k"}"#))
    #expect(try matches(.string("a\"é"), #"{"id":"k","v":"a\u0022\u00e9"}"#))
  }

  @Test func watermarkIsTheMinimumOverActiveSources() throws {
    let recorder = Recorder()
    let engine = try LabelEngine(rules: makeRules(ooo: 0), store: InMemoryStateStore(), output: recorder, sources: 2)
    let p = try JSONValue.parse("{\"event\":\"prediction\",\"id\":\"a\"}")
    let other = try JSONValue.parse("{\"event\":\"other\"}")
    try engine.process(Event(time: t0, object: p), source: 0, lineHash: 1)
    try engine.process(Event(time: t0 + 60 * minute, object: other), source: 0, lineHash: 2)
    #expect(recorder.rows.isEmpty)  // source 1 has read nothing: it holds the watermark
    try engine.process(Event(time: t0 + 10 * minute, object: other), source: 1, lineHash: 3)
    #expect(engine.watermark == t0 + 10 * minute)
    try engine.setSourceActive(1, false)
    #expect(engine.watermark == t0 + 60 * minute)
    #expect(recorder.rows.count == 1)
  }
}
