import Testing

@testable import Labeling

@Suite struct DirtyListTests {
  /// Keys born and gone between two checkpoints (most of a replay's, with millions of lines
  /// between checkpoints) do not stay listed as dirty until the next one, and the journal still
  /// holds each entry that is left exactly once. Here nearly every entry is dirty, so the list
  /// is dropped and the checkpoint reads every entry's flag.
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
    #expect(store.dirtyListDrops == 1, "the list is dropped once, then nothing is listed")
    #expect(store.dirtyListCount == 0)
    #expect(most <= 2 * 64 + 4097, "the dirty list grew to \(most) entries for about 30 live ones")
    let journal = store.takeJournal()
    // Rows due at 99_999 and before are written; the last 10 predictions are pending, and the
    // 20 keys finished at 99_980 or later are remembered.
    #expect(journal.predictions.map(\.seq).sorted() == Array(99_991...100_000))
    #expect(journal.finished.count == 20)
    #expect(Set(journal.finished.map(\.key)).count == 20)
    #expect(store.takeJournal().predictions.isEmpty, "a second journal repeats nothing")
    #expect(store.dirtyCount == 0)
  }

  /// A few dirty entries among many clean ones (a live daemon between its checkpoints): the
  /// list is kept, cleared of released entries in passes, and the journal holds exactly the
  /// entries changed since the last checkpoint, once each — also after the list was dropped
  /// before the checkpoint before.
  @Test func fewDirtyAmongManyKeepTheirList() throws {
    let store = MemoryStateStore()
    store.dueOffsets = [10]
    // 20,000 predictions due far in the future stay pending throughout.
    for i in 0..<20_000 {
      let ref = try store.ref(key: JoinKey("kept-\(i)"))
      store.setPrediction(ref, seq: Int64(i + 1), time: 1_000_000_000, payload: Array("[1]".utf8), datasets: 1)
    }
    var seq: Int64 = 20_000
    /// Keys born and gone, a few alive at a time.
    func churn(_ name: String, from start: Int64) throws {
      for i in 0..<30_000 {
        let time = start + Int64(i)
        seq += 1
        let ref = try store.ref(key: JoinKey("\(name)-\(i)"))
        store.setPrediction(ref, seq: seq, time: time, payload: Array("[2]".utf8), datasets: 1)
        while let due = try store.popDue(through: time) {
          _ = store.rowWritten(due.ref, dataset: 0)
          store.finish(due.ref, expiresAt: time + 20)
        }
        store.pruneFinished(expiredBy: time)
      }
    }
    try churn("first", from: 0)
    #expect(store.dirtyListDrops == 1, "most entries were dirty: the list was dropped")
    let first = store.takeJournal()
    #expect(first.predictions.count == 20_010)
    #expect(first.finished.count == 20)
    #expect(store.dirtyCount == 0)
    try churn("second", from: 100_000)
    #expect(store.dirtyListDrops == 1, "not dropped again: few of the entries are dirty")
    #expect(store.dirtyListCompactions > 0)
    #expect(store.dirtyListCount <= 2 * 64 + 4097)
    let journal = store.takeJournal()
    #expect(journal.predictions.map(\.seq).sorted() == Array(79_991...80_000), "the last 10 pending")
    #expect(journal.predictions.allSatisfy { $0.key.hasPrefix("second-") }, "no clean entry is journaled again")
    #expect(journal.finished.count == 20)
    #expect(Set(journal.finished.map(\.key)).count == 20)
    #expect(journal.deletedPredictions.count == 10, "the first churn's 10 pending ones, written since")
  }
}
