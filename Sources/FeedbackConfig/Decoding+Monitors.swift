import LogFormats
import Yams

extension ConfigurationDecoder {
  static let monitorKeys = [
    "name", "dataset", "label", "score", "slices", "window", "baseline", "min_rows", "alpha",
  ]

  func monitors(
    _ node: Node, at path: String, labels: [LabelConfig], datasets: [DatasetConfig]
  ) throws(CE) -> [MonitorConfig] {
    let items = try list(node, at: path)
    var result: [MonitorConfig] = []
    var seen: [String: Int] = [:]
    for (i, item) in items.enumerated() {
      let itemPath = "\(path)[\(i)]"
      let map = try mapping(item, at: itemPath, known: Self.monitorKeys)
      let nameNode = try map.required("name")
      let name = try monitorName(nameNode, at: map.child("name"))
      if let previous = seen[name] {
        throw CE(
          keyPath: map.child("name"),
          problem: "duplicate monitor name \(Units.quoted(name)) (already used by \(path)[\(previous)])",
          line: nameNode.mark?.line)
      }
      seen[name] = i

      let datasetNode = try map.required("dataset")
      let datasetName = try string(datasetNode, at: map.child("dataset"))
      guard let dataset = datasets.first(where: { $0.name == datasetName }) else {
        throw CE(
          keyPath: map.child("dataset"),
          problem:
            "\(Units.quoted(datasetName)) is not a dataset (known: \(datasets.map(\.name).joined(separator: ", ")))",
          line: datasetNode.mark?.line)
      }

      let labelNode = try map.required("label")
      let label = try string(labelNode, at: map.child("label"))
      guard dataset.labels.contains(label) else {
        throw CE(
          keyPath: map.child("label"),
          problem:
            "\(Units.quoted(label)) is not a label of dataset \(Units.quoted(dataset.name)) (its labels: \(dataset.labels.joined(separator: ", ")))",
          line: labelNode.mark?.line)
      }
      if let config = labels.first(where: { $0.name == label }) {
        switch config.value {
        case .binary, .count: break
        case .sum, .first:
          throw CE(
            keyPath: map.child("label"),
            problem: "label \(Units.quoted(label)) must be a binary or count label to be monitored",
            line: labelNode.mark?.line)
        }
      }

      let scoreNode = try map.required("score")
      let score = try column(scoreNode, at: map.child("score"), of: dataset)

      var slices: [String] = []
      if let v = map.optional("slices") {
        let slicesPath = map.child("slices")
        for (j, entry) in try list(v, at: slicesPath).enumerated() {
          let entryPath = "\(slicesPath)[\(j)]"
          let column = try column(entry, at: entryPath, of: dataset)
          if let previous = slices.firstIndex(of: column) {
            throw CE(
              keyPath: entryPath,
              problem: "column \(Units.quoted(column)) is already listed at \(slicesPath)[\(previous)]",
              line: entry.mark?.line)
          }
          slices.append(column)
        }
      }

      let windowNode = try map.required("window")
      let window = try duration(windowNode, at: map.child("window"))
      guard window > 0 else {
        throw CE(keyPath: map.child("window"), problem: "must be greater than 0", line: windowNode.mark?.line)
      }
      let baselineNode = try map.required("baseline")
      let baseline = try duration(baselineNode, at: map.child("baseline"))
      guard baseline >= 2 * window else {
        throw CE(
          keyPath: map.child("baseline"), problem: "must be at least two windows (\(2 * window / 1_000_000_000)s)",
          line: baselineNode.mark?.line)
      }

      var monitor = MonitorConfig(
        name: name, dataset: dataset.name, label: label, score: score, slices: slices, window: window,
        baseline: baseline)
      if let v = map.optional("min_rows") {
        let p = map.child("min_rows")
        let text = try string(v, at: p, expected: "a positive whole number")
        guard let n = Int(text), n > 0 else {
          throw CE(keyPath: p, problem: "\"\(text)\" is not a positive whole number", line: v.mark?.line)
        }
        monitor.minRows = n
      }
      if let v = map.optional("alpha") {
        let p = map.child("alpha")
        let text = try string(v, at: p, expected: "a probability")
        guard let a = Double(text), a > 0, a < 0.5 else {
          throw CE(keyPath: p, problem: "\"\(text)\" is not a probability between 0 and 0.5", line: v.mark?.line)
        }
        monitor.alpha = a
      }
      result.append(monitor)
    }
    return result
  }

  /// Monitor names become directory names and metric labels: letters, digits, `_` and `-`.
  private func monitorName(_ node: Node, at path: String) throws(CE) -> String {
    let text = try string(node, at: path)
    let valid =
      !text.isEmpty && text.first != "-"
      && text.unicodeScalars.allSatisfy {
        ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-"
      }
    guard valid else {
      throw CE(
        keyPath: path,
        problem: "\(Units.quoted(text)) is not a valid monitor name (use letters, digits, _ and -)",
        line: node.mark?.line)
    }
    return text
  }

  /// A kept column's name; with the whole prediction kept, a field path into it.
  private func column(_ node: Node, at path: String, of dataset: DatasetConfig) throws(CE) -> String {
    let text = try string(node, at: path, expected: "a column name")
    if let columns = dataset.columns {
      guard columns.contains(where: { $0.name == text }) else {
        throw CE(
          keyPath: path,
          problem:
            "column \(Units.quoted(text)) is not a column of dataset \(Units.quoted(dataset.name)) (its columns: \(columns.map(\.name).joined(separator: ", ")))",
          line: node.mark?.line)
      }
    } else {
      do {
        _ = try FieldPath(parsing: text)
      } catch {
        throw CE(keyPath: path, problem: error.description, line: node.mark?.line)
      }
    }
    return text
  }
}
