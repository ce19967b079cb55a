import FeedbackConfig
import Testing

/// A small valid configuration; tests replace parts of it.
let minimalYAML = """
  state_dir: /var/lib/feedbackd
  sources:
    - name: shop
      paths: /var/log/shop/app.log*
  events:
    prediction: { where: { event: prediction }, key: request_id }
    feedback:
      click: { where: { event: click }, key: request_id }
  labels:
    clicked: { from: click, window: 30m }
  datasets:
    - name: ctr
      labels: [clicked]
  """

/// `minimalYAML` with `extra` appended (top-level keys).
func minimal(plus extra: String) -> String { minimalYAML + "\n" + extra }

func parse(_ yaml: String, base: String = "/etc/feedbackd") throws(ConfigurationError) -> Configuration {
  try Configuration.parse(yaml: yaml, baseDirectory: base)
}

/// The error `yaml` fails with; records a test issue when it decodes.
func failure(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigurationError? {
  do {
    _ = try parse(yaml)
    Issue.record("expected a configuration error, but the YAML decoded", sourceLocation: sourceLocation)
    return nil
  } catch {
    #expect(
      !error.description.contains("\n"), "message is not one line: \(error.description)", sourceLocation: sourceLocation
    )
    return error
  }
}

let second: Int64 = 1_000_000_000
let minute: Int64 = 60 * second
let hour: Int64 = 60 * minute
let day: Int64 = 24 * hour
