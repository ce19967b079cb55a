import Foundation
import Monitoring
import Testing

@Suite struct MonitorTests {
  /// Rows per hourly window: ~200 per category (the default min_rows), ~1600 per device slice.
  static let rowsPerHour = 1_800

  /// A month of hourly windows without drift: 12 slices × 3 metrics × 720 windows of tests,
  /// and the AUC CUSUM of every slice, raise nothing.
  @Test func cleanMonthRaisesNoAlert() {
    let monitor = Monitor(spec: makeSpec())
    var rows = SimulatedRows(seed: 42)
    let closed = simulate(monitor: monitor, rows: &rows, hours: 0..<(30 * 24), rowsPerHour: Self.rowsPerHour)
    let alerts = closed.flatMap(\.alerts)
    let tested = closed.flatMap(\.slices).flatMap(\.verdicts).filter { $0.verdict != .noVerdict }.count
    print("clean month: \(closed.count) windows, \(tested) tests, \(alerts.count) alerts")
    #expect(closed.count >= 30 * 24 - 2)
    #expect(tested > 20_000, "most windows are tested (\(tested))")
    #expect(alerts.isEmpty, "false alarms: \(alerts)")
  }

  /// Shoes' clicks stop following the score at hour 240: an AUC alert for that slice within two
  /// windows, nothing for the slices the drift does not touch.
  @Test func suddenDriftInOneSliceAlertsWithinTwoWindows() throws {
    let monitor = Monitor(spec: makeSpec())
    var rows = SimulatedRows(seed: 7)
    let changeHour = 240
    rows.drift = .sudden(at: Hours.start + Int64(changeHour) * Hours.hour)
    let closed = simulate(monitor: monitor, rows: &rows, hours: 0..<(changeHour + 24), rowsPerHour: Self.rowsPerHour)
    let alerts = closed.flatMap(\.alerts)
    let shoes = try #require(alerts.first { $0.slice == "category=shoes" && $0.metric == .auc })
    let windowsAfter = Int((shoes.windowStart - Hours.start) / Hours.hour) - changeHour
    print("sudden drift: first shoes AUC alert \(windowsAfter) window(s) after the change: \(shoes)")
    #expect(shoes.kind == .sudden)
    #expect(windowsAfter >= 0 && windowsAfter <= 1, "alert in the change's window or the next")
    #expect(shoes.value < shoes.baselineValue)
    let untouched = alerts.filter { $0.slice != "category=shoes" && $0.slice.hasPrefix("category=") }
    #expect(untouched.isEmpty, "alerts for untouched slices: \(untouched)")
    #expect(!alerts.contains { Int((($0.windowStart - Hours.start) / Hours.hour)) < changeHour }, "none before")
  }

  /// Shoes' clicks follow the score less and less over four days: the CUSUM catches it.
  @Test func gradualDriftIsCaught() throws {
    let monitor = Monitor(spec: makeSpec())
    var rows = SimulatedRows(seed: 11)
    let changeHour = 240
    rows.drift = .gradual(at: Hours.start + Int64(changeHour) * Hours.hour, over: 96 * Hours.hour)
    let closed = simulate(monitor: monitor, rows: &rows, hours: 0..<(changeHour + 120), rowsPerHour: Self.rowsPerHour)
    let alerts = closed.flatMap(\.alerts)
    let shoes = try #require(alerts.first { $0.slice == "category=shoes" && $0.metric == .auc })
    let windowsAfter = Int((shoes.windowStart - Hours.start) / Hours.hour) - changeHour
    print(
      "gradual drift: first shoes AUC alert (\(shoes.kind)) \(windowsAfter) windows after the drift began: \(shoes)")
    #expect(shoes.kind == .gradual)
    #expect(windowsAfter < 72, "caught before three quarters of the drift")
    let untouched = alerts.filter { $0.slice != "category=shoes" && $0.slice.hasPrefix("category=") }
    #expect(untouched.isEmpty, "alerts for untouched slices: \(untouched)")
    #expect(!alerts.contains { Int((($0.windowStart - Hours.start) / Hours.hour)) < changeHour }, "none before")
  }

  /// Saving and restoring the state anywhere gives exactly what one uninterrupted run gives.
  @Test func stateRoundTripsMidStream() throws {
    let spec = makeSpec(minRows: 50)
    var rowsA = SimulatedRows(seed: 5)
    rowsA.drift = .sudden(at: Hours.start + 200 * Hours.hour)
    var rowsB = rowsA
    let straight = Monitor(spec: spec)
    let expected = simulate(monitor: straight, rows: &rowsA, hours: 0..<240, rowsPerHour: 400)

    var resumed = Monitor(spec: spec)
    var got: [ClosedWindow] = []
    for chunk in stride(from: 0, to: 240, by: 37) {
      got += simulate(monitor: resumed, rows: &rowsB, hours: chunk..<min(chunk + 37, 240), rowsPerHour: 400)
      let saved = resumed.encodeState()
      resumed = try Monitor(spec: spec, state: saved)
      #expect(resumed.encodeState() == saved)
    }
    #expect(got.count == expected.count)
    #expect(got.flatMap(\.alerts) == expected.flatMap(\.alerts))
    #expect(got.flatMap(\.slices).map(\.figures) == expected.flatMap(\.slices).map(\.figures))
    #expect(!expected.flatMap(\.alerts).isEmpty)
  }

  /// Windows below min_rows get no verdict, and a flush closes what is open as truncated.
  @Test func smallWindowsGetNoVerdictAndFlushTruncates() {
    let monitor = Monitor(spec: makeSpec())
    var rows = SimulatedRows(seed: 3)
    let closed = simulate(monitor: monitor, rows: &rows, hours: 0..<48, rowsPerHour: 100)
    #expect(closed.flatMap(\.slices).allSatisfy { $0.verdicts.allSatisfy { $0.verdict == .noVerdict } })
    let flushed = monitor.advance(watermark: .max)
    #expect(flushed.count == 1 && flushed[0].truncated)
    #expect(monitor.openWindowCount == 0)
  }

  /// A row for a window already closed is counted, not added.
  @Test func lateRowsAreCounted() {
    let monitor = Monitor(spec: makeSpec())
    var rows = SimulatedRows(seed: 3)
    _ = simulate(monitor: monitor, rows: &rows, hours: 0..<5, rowsPerHour: 10)
    monitor.observe(rows.row(at: Hours.start))
    #expect(monitor.lateRows == 1)
  }
}
