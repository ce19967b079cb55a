import FeedbackConfig
import Testing

/// `minimalYAML`'s dataset with kept columns, a count label, and `monitors:` as given.
func withMonitors(
  _ monitors: String, columns: String = "[model_version, score, { path: features.item_category, as: category }]"
)
  -> String
{
  minimalYAML.replacingOccurrences(
    of: "    labels: [clicked]",
    with: "    labels: [clicked, clicks, revenue]\n    columns: \(columns)"
  ).replacingOccurrences(
    of: "  clicked: { from: click, window: 30m }",
    with: """
        clicked: { from: click, window: 30m }
        clicks: { from: click, window: 30m, value: count }
        revenue: { from: click, window: 30m, value: sum(value) }
      """
  ) + "\nmonitors:\n" + monitors
}

let monitorOK = """
    - name: ctr-quality
      dataset: ctr
      label: clicked
      score: score
      slices: [category, model_version]
      window: 1h
      baseline: 7d
  """

let monitorErrorCases: [ErrorCase] = [
  ErrorCase(
    label: "score not a column",
    yaml: withMonitors(monitorOK.replacingOccurrences(of: "score: score", with: "score: x")),
    keyPath: "monitors[0].score",
    problem: #"column "x" is not a column of dataset "ctr" (its columns: model_version, score, category)"#),
  ErrorCase(
    label: "slice not a column",
    yaml: withMonitors(monitorOK.replacingOccurrences(of: "[category, model_version]", with: "[category, devce]")),
    keyPath: "monitors[0].slices[1]", problem: #"column "devce" is not a column of dataset "ctr""#),
  ErrorCase(
    label: "unknown dataset",
    yaml: withMonitors(monitorOK.replacingOccurrences(of: "dataset: ctr", with: "dataset: cr")),
    keyPath: "monitors[0].dataset", problem: #""cr" is not a dataset (known: ctr)"#),
  ErrorCase(
    label: "label not in dataset",
    yaml: withMonitors(monitorOK.replacingOccurrences(of: "label: clicked", with: "label: bought")),
    keyPath: "monitors[0].label", problem: #""bought" is not a label of dataset "ctr""#),
  ErrorCase(
    label: "sum label",
    yaml: withMonitors(monitorOK.replacingOccurrences(of: "label: clicked", with: "label: revenue")),
    keyPath: "monitors[0].label", problem: "must be a binary or count label"),
  ErrorCase(
    label: "baseline shorter than two windows",
    yaml: withMonitors(monitorOK.replacingOccurrences(of: "baseline: 7d", with: "baseline: 1h")),
    keyPath: "monitors[0].baseline", problem: "must be at least two windows"),
  ErrorCase(
    label: "zero window", yaml: withMonitors(monitorOK.replacingOccurrences(of: "window: 1h", with: "window: 0s")),
    keyPath: "monitors[0].window", problem: "must be greater than 0"),
  ErrorCase(
    label: "missing score", yaml: withMonitors(monitorOK.replacingOccurrences(of: "    score: score\n", with: "")),
    keyPath: "monitors[0].score", problem: "required key is missing"),
  ErrorCase(
    label: "unknown monitor key", yaml: withMonitors(monitorOK + "\n    min_row: 5"), keyPath: "monitors[0].min_row",
    problem: "unknown key (known: name, dataset, label, score, slices, window, baseline, min_rows, alpha)"),
  ErrorCase(
    label: "bad min_rows", yaml: withMonitors(monitorOK + "\n    min_rows: -3"), keyPath: "monitors[0].min_rows",
    problem: "is not a positive whole number"),
  ErrorCase(
    label: "bad alpha", yaml: withMonitors(monitorOK + "\n    alpha: 0.9"), keyPath: "monitors[0].alpha",
    problem: "is not a probability between 0 and 0.5"),
  ErrorCase(
    label: "duplicate name", yaml: withMonitors(monitorOK + "\n" + monitorOK), keyPath: "monitors[1].name",
    problem: #"duplicate monitor name "ctr-quality""#),
  ErrorCase(
    label: "bad name", yaml: withMonitors(monitorOK.replacingOccurrences(of: "ctr-quality", with: "ctr quality")),
    keyPath: "monitors[0].name", problem: "is not a valid monitor name"),
]

@Suite struct MonitorConfigTests {
  @Test func decodesAMonitor() throws {
    let config = try parse(withMonitors(monitorOK + "\n    min_rows: 50\n    alpha: 1e-4"))
    let m = try #require(config.monitors.first)
    #expect(m.name == "ctr-quality" && m.dataset == "ctr" && m.label == "clicked" && m.score == "score")
    #expect(m.slices == ["category", "model_version"])
    #expect(m.window == 3_600_000_000_000 && m.baseline == 7 * 24 * 3_600_000_000_000)
    #expect(m.minRows == 50 && m.alpha == 1e-4)
  }

  @Test func defaults() throws {
    let m = try #require(try parse(withMonitors(monitorOK)).monitors.first)
    #expect(m.minRows == 200 && m.alpha == 1e-6)
    #expect(try parse(minimalYAML).monitors.isEmpty)
  }

  /// With the whole prediction kept, score and slices are field paths into it.
  @Test func wholePredictionTakesPaths() throws {
    let yaml =
      minimalYAML + "\nmonitors:\n"
      + monitorOK.replacingOccurrences(
        of: "[category, model_version]", with: "[features.item_category]")
    #expect(try parse(yaml).monitors.first?.slices == ["features.item_category"])
  }

  @Test(arguments: monitorErrorCases)
  func rejects(_ c: ErrorCase) throws {
    let error = try #require(failure(c.yaml))
    #expect(error.keyPath == c.keyPath, "\(error)")
    #expect(error.description.contains(c.problem), "\(error)")
    #expect(error.description.contains(c.keyPath + ": "), "\(error)")
  }
}
