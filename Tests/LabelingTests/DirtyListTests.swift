import Testing

@testable import Labeling

@Suite struct DirtyListTests {
  /// Keys born and gone between two checkpoints (most of a replay's, with millions of lines
  /// between checkpoints) do not stay listed as dirty until the next one, and the journal still
  /// holds each entry that is left exactly once.
  @Test func releasedEntriesDoNotPileUpBetweenCheckpoints() throws {
    let store = MemoryStateStore()
    store.dueOffsets = [10]
    var most = 0
    for i in 0..<100_000 {
      let time = Int64(i)
      let ref = try store.ref(key: JoinKey("request-\(i)"))
      store.setPrediction(ref, seq: Int64(i + 1), time: time, payload: Array("[1]".utf8), datasets: 1)
      while let due = try store.popDue(through: time) {
        _ = store.rowWritten(due.ref, dataset: 0)
        store.finish(due.ref, expiresAt: time + 20)
      }
      store.pruneFinished(expiredBy: time)
      most = max(most, store.dirtyListCount)
    }
    #expect(store.dirtyListCompactions > 0)
    // Each compaction leaves the list near the live count, so the next comes thousands of
    // entries later (a listing kept twice would leave it full, and compact at every entry).
    #expect(store.dirtyListCompactions < 100, "\(store.dirtyListCompactions) compactions")
    #expect(most <= 2 * 64 + 4097, "the dirty list grew to \(most) entries for about 30 live ones")
    let journal = store.takeJournal()
    // Rows due at 99_999 and before are written; the last 10 predictions are pending, and the
    // 20 keys finished at 99_980 or later are remembered.
    #expect(journal.predictions.map(\.seq).sorted() == Array(99_991...100_000))
    #expect(journal.finished.count == 20)
    #expect(Set(journal.finished.map(\.key)).count == 20)
    #expect(store.takeJournal().predictions.isEmpty, "a second journal repeats nothing")
  }
}
