import Dataset
import FeedbackConfig
import Labeling
import LogFormats

/// Turns the validated configuration into the engine's rules and the datasets' layouts.
public enum RulesBuilder {
  /// The engine's rules for a configuration (public for `feedbackd-bench engine`).
  public static func rules(from config: FeedbackConfig.Configuration) throws -> Rules {
    func matches(_ list: [FeedbackConfig.FieldMatch]) -> [Labeling.FieldMatch] {
      list.map { m in
        let value: MatchValue =
          switch m.value {
          case .string(let s): .string(s)
          case .number(let n): .number(n)
          case .bool(let b): .bool(b)
          case .null: .null
          }
        return Labeling.FieldMatch(path: m.path, value: value)
      }
    }
    let types = config.events.feedback.map {
      FeedbackType(
        name: $0.name, rule: Labeling.EventRule(matches: matches($0.matches), key: $0.key), dedupeBy: $0.dedupeBy)
    }
    let typeIndex = Dictionary(uniqueKeysWithValues: types.enumerated().map { ($1.name, $0) })
    let labels = config.labels.map { label in
      let value: Labeling.LabelValue =
        switch label.value {
        case .binary: .binary
        case .count: .count
        case .sum(let p): .sum(p)
        case .first(let p): .first(p)
        }
      return LabelSpec(name: label.name, feedbackType: typeIndex[label.from]!, window: label.window, value: value)
    }
    let labelIndex = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1.name, $0) })
    let datasets = config.datasets.map { d in
      DatasetSpec(
        name: d.name, labels: d.labels.map { labelIndex[$0]! },
        columns: d.columns?.map { ColumnSpec(path: $0.path, name: $0.name) })
    }
    return Rules(
      prediction: Labeling.EventRule(
        matches: matches(config.events.prediction.matches), key: config.events.prediction.key),
      feedbackTypes: types, labels: labels, datasets: datasets, clockSkew: config.clockSkew,
      maxOutOfOrder: config.watermark.maxOutOfOrder)
  }

  static func layout(
    for dataset: DatasetConfig, index: Int, rules: Rules, config: FeedbackConfig.Configuration
  ) -> DatasetLayout {
    let labels = rules.datasets[index].labels.map { i -> DatasetLayout.Label in
      let spec = rules.labels[i]
      let (type, value): (String, String) =
        switch spec.value {
        case .binary: ("int64", "binary")
        case .count: ("int64", "count")
        case .sum(let p): ("double", "sum(\(p))")
        case .first(let p): ("json", "first(\(p))")
        }
      return DatasetLayout.Label(
        name: spec.name, type: type,
        describe: [
          ("from", .string(rules.feedbackTypes[spec.feedbackType].name)),
          ("window_seconds", .number(String(Double(spec.window) / 1e9))),
          ("value", .string(value)),
        ])
    }
    let format: OutputFormat =
      switch dataset.format {
      case .jsonl: .jsonl
      case .jsonlGz: .jsonlGz
      case .csv: .csv
      }
    return DatasetLayout(
      name: dataset.name, directory: dataset.path, format: format,
      columns: dataset.columns?.map { (name: $0.name, path: $0.path.description) }, labels: labels,
      rollMaxBytes: dataset.roll.maxBytes, rollMaxAge: dataset.roll.maxAge,
      maxWindow: rules.datasetMaxWindow[index])
  }
}
