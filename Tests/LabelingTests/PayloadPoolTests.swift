import Testing

@testable import Labeling

@Suite struct PayloadPoolTests {
  private func predict(_ store: MemoryStateStore, key: String, seq: Int64, payload text: String) throws -> KeyRef {
    let ref = try store.ref(key: JoinKey(key))
    let payload = Array(text.utf8).withUnsafeBufferPointer { store.payloadArray(copying: $0) }
    store.setPrediction(ref, seq: seq, time: seq, payload: payload, datasets: 1)
    return ref
  }

  private func storage(_ view: UnsafeRawBufferPointer) -> UnsafeRawPointer? { view.baseAddress }

  /// A finished prediction's payload storage holds the next payload of about its size, and
  /// the bytes are the new payload's alone; a payload of another length gets other storage.
  @Test func aFinishedPredictionsPayloadStorageIsReused() throws {
    let store = MemoryStateStore()
    store.dueOffsets = [10]
    let first = try predict(store, key: "k1", seq: 1, payload: #"["ranker-v4",0.0169,"books","tablet"]"#)
    let address = storage(store.payloadBytes(first))
    store.finish(first, expiresAt: 100)
    #expect(store.payloadBytes(first).isEmpty)
    let second = try predict(store, key: "k2", seq: 2, payload: #"["ranker-v5",0.9999,"games","laptop"]"#)
    #expect(Array(store.payloadBytes(second)) == Array(#"["ranker-v5",0.9999,"games","laptop"]"#.utf8))
    #expect(storage(store.payloadBytes(second)) == address, "the retired storage, reused")
    store.finish(second, expiresAt: 100)
    let long = String(repeating: "x", count: 200)
    let third = try predict(store, key: "k3", seq: 3, payload: #"[""# + long + #""]"#)
    #expect(Array(store.payloadBytes(third)) == Array((#"[""# + long + #""]"#).utf8))
    #expect(storage(store.payloadBytes(third)) != address, "a payload of another length")
  }

  /// A payload retired while something still holds its array (a journal taken before the
  /// prediction finished) is not written over: the holder keeps its bytes.
  @Test func aRetiredPayloadStillHeldIsNotWrittenOver() throws {
    let store = MemoryStateStore()
    store.dueOffsets = [10]
    let text = #"["ranker-v4",0.25,"books","tablet"]"#
    let first = try predict(store, key: "k1", seq: 1, payload: text)
    let journal = store.takeJournal()
    #expect(journal.predictions.map(\.payload) == [Array(text.utf8)])
    store.finish(first, expiresAt: 100)
    let second = try predict(store, key: "k2", seq: 2, payload: #"["ranker-v9",0.75,"games","phones"]"#)
    #expect(Array(store.payloadBytes(second)) == Array(#"["ranker-v9",0.75,"games","phones"]"#.utf8))
    #expect(journal.predictions.map(\.payload) == [Array(text.utf8)], "the journal's payload changed")
  }
}
