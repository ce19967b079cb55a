import Testing

@testable import Labeling

@Suite struct HasFeedbackTests {
  /// `hasFeedback` is what the engine asks before it takes a row's feedback: it must say what
  /// `!feedback(ref).isEmpty` says, for both stores, through a key's life (a prediction alone,
  /// with feedback, its row due, finished), or rows with feedback would be written with empty
  /// labels.
  @Test(arguments: [false, true])
  func agreesWithTheFeedbackArray(memory: Bool) throws {
    let store: any StateStore = memory ? MemoryStateStore() : InMemoryStateStore()
    store.dueOffsets = [10]
    func check(_ ref: KeyRef, _ expected: Bool, _ moment: String) {
      #expect(store.hasFeedback(ref) == !store.feedback(ref).isEmpty, "\(moment)")
      #expect(store.hasFeedback(ref) == expected, "\(moment)")
    }
    let plain = try store.ref(key: JoinKey("plain"))
    try store.setPrediction(plain, seq: 1, time: 1, payload: Array("[1]".utf8), datasets: 1)
    let clicked = try store.ref(key: JoinKey("clicked"))
    try store.setPrediction(clicked, seq: 2, time: 2, payload: Array("[2]".utf8), datasets: 1)
    check(plain, false, "a prediction alone")
    check(clicked, false, "a prediction alone")
    store.addFeedback(
      clicked, StoredFeedback(seq: 3, key: "clicked", type: 0, time: 5, lineHash: 1, dedupe: nil, fields: []))
    check(plain, false, "another key's feedback")
    check(clicked, true, "after a click")
    var rows = 0
    while let due = try store.popDue(through: 20) {
      rows += 1
      check(due.ref, due.ref == clicked, "when the row is due")
      _ = store.rowWritten(due.ref, dataset: 0)
      store.finish(due.ref, expiresAt: 30)
      check(due.ref, false, "finished")
    }
    #expect(rows == 2)
  }
}
