import Foundation
import LogFormats
import Yams

extension Configuration {
  /// Reads and decodes the YAML file at `path`. Relative paths inside it resolve against the
  /// file's directory.
  public static func load(path: String) throws(ConfigurationError) -> Configuration {
    let absolute = Units.absolutePath(path, base: FileManager.default.currentDirectoryPath)
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory) else {
      throw ConfigurationError(keyPath: "", problem: "configuration file \(Units.quoted(absolute)) does not exist")
    }
    guard !isDirectory.boolValue else {
      throw ConfigurationError(keyPath: "", problem: "configuration file \(Units.quoted(absolute)) is a directory")
    }
    guard let data = FileManager.default.contents(atPath: absolute) else {
      throw ConfigurationError(keyPath: "", problem: "configuration file \(Units.quoted(absolute)) cannot be read")
    }
    guard let text = String(data: data, encoding: .utf8) else {
      throw ConfigurationError(keyPath: "", problem: "configuration file \(Units.quoted(absolute)) is not UTF-8 text")
    }
    let slash = absolute.lastIndex(of: "/")!  // absolute paths start with "/"
    let directory = slash == absolute.startIndex ? "/" : String(absolute[..<slash])
    return try parse(yaml: text, baseDirectory: directory)
  }

  /// Decodes YAML text. Relative paths in it (and a relative `baseDirectory`, against the
  /// current directory) resolve against `baseDirectory`.
  public static func parse(yaml: String, baseDirectory: String) throws(ConfigurationError) -> Configuration {
    let base = Units.absolutePath(baseDirectory, base: FileManager.default.currentDirectoryPath)
    let root: Node?
    do {
      // The basic resolver leaves plain scalars untyped; ScalarValue applies the YAML 1.2 core
      // schema itself (Yams' default resolver is YAML 1.1: `yes`, `on`, `0o7`, `1:30`).
      root = try Yams.compose(yaml: yaml, Resolver.basic)
    } catch let error as YamlError {
      throw ConfigurationDecoder.convert(error)
    } catch {
      throw ConfigurationError(keyPath: "", problem: "invalid YAML: \(error)")
    }
    guard let root else {
      throw ConfigurationError(
        keyPath: "",
        problem: "the configuration is empty (expected a mapping with state_dir, sources, events, labels, datasets)")
    }
    return try ConfigurationDecoder(base: base).configuration(root)
  }
}

typealias CE = ConfigurationError

/// Walks the composed YAML tree, checking every key and value.
struct ConfigurationDecoder {
  let base: String

  // MARK: Top level

  static let topKeys = [
    "state_dir", "sources", "events", "labels", "datasets", "watermark", "clock_skew", "http", "max_in_memory",
    "state_memory", "monitors",
  ]

  func configuration(_ root: Node) throws(CE) -> Configuration {
    guard case .mapping = root else {
      throw CE(
        keyPath: "",
        problem:
          "the configuration must be a mapping (state_dir, sources, events, labels, datasets, …), got \(kind(root))",
        line: root.mark?.line)
    }
    let top = try mapping(root, at: "", known: Self.topKeys)

    let stateDirPath = top.child("state_dir")
    let stateDir = Units.absolutePath(try nonEmptyString(try top.required("state_dir"), at: stateDirPath), base: base)

    let sources = try self.sources(try top.required("sources"), at: top.child("sources"))
    let events = try self.events(try top.required("events"), at: top.child("events"))
    let labels = try self.labels(
      try top.required("labels"), at: top.child("labels"), feedback: events.feedback.map(\.name))
    let datasets = try self.datasets(
      try top.required("datasets"), at: top.child("datasets"), labels: labels, stateDir: stateDir)

    var watermark = WatermarkConfig()
    if let node = top.optional("watermark") {
      let path = top.child("watermark")
      let map = try mapping(node, at: path, known: ["max_out_of_order", "idle_timeout"])
      if let v = map.optional("max_out_of_order") {
        watermark.maxOutOfOrder = try duration(v, at: map.child("max_out_of_order"))
      }
      if let v = map.optional("idle_timeout") { watermark.idleTimeout = try duration(v, at: map.child("idle_timeout")) }
    }
    var clockSkew: Int64 = 0
    if let node = top.optional("clock_skew") { clockSkew = try duration(node, at: top.child("clock_skew")) }
    var http = HTTPConfig()
    if let node = top.optional("http") {
      let map = try mapping(node, at: top.child("http"), known: ["listen"])
      if let v = map.optional("listen") {
        let path = map.child("listen")
        switch Units.listen(try string(v, at: path, expected: "host:port")) {
        case .success(let hp): http = HTTPConfig(host: hp.host, port: hp.port)
        case .failure(let p): throw CE(keyPath: path, problem: p.text, line: v.mark?.line)
        }
      }
    }
    var maxInMemory = Configuration.defaultMaxInMemory
    if let node = top.optional("max_in_memory") {
      let path = top.child("max_in_memory")
      let text = try string(node, at: path, expected: "a positive whole number")
      guard let n = Int(text), n > 0 else {
        throw CE(keyPath: path, problem: "\"\(text)\" is not a positive whole number", line: node.mark?.line)
      }
      maxInMemory = n
    }
    var stateMemory = Configuration.defaultStateMemory
    if let node = top.optional("state_memory") {
      let path = top.child("state_memory")
      stateMemory = try positiveSize(node, at: path)
      guard stateMemory >= 1 << 20 else {
        throw CE(keyPath: path, problem: "must be at least 1MiB", line: node.mark?.line)
      }
    }
    var configuration = Configuration(
      stateDir: stateDir, sources: sources, events: events, labels: labels, datasets: datasets,
      watermark: watermark, clockSkew: clockSkew, http: http)
    configuration.maxInMemory = maxInMemory
    configuration.stateMemory = stateMemory
    if let node = top.optional("monitors") {
      configuration.monitors = try monitors(node, at: top.child("monitors"), labels: labels, datasets: datasets)
    }
    return configuration
  }

  // MARK: Sections

  static let sourceKeys = ["name", "paths", "format", "time_field", "max_line_bytes"]

  func sources(_ node: Node, at path: String) throws(CE) -> [SourceConfig] {
    let items = try nonEmptyList(node, at: path, what: "source")
    var result: [SourceConfig] = []
    var seen: [String: Int] = [:]
    for (i, item) in items.enumerated() {
      let itemPath = "\(path)[\(i)]"
      let map = try mapping(item, at: itemPath, known: Self.sourceKeys)
      let nameNode = try map.required("name")
      let name = try self.name(nameNode, at: map.child("name"), what: "source")
      if let previous = seen[name] {
        throw CE(
          keyPath: map.child("name"),
          problem: "duplicate source name \(Units.quoted(name)) (already used by \(path)[\(previous)])",
          line: nameNode.mark?.line)
      }
      seen[name] = i

      let pathsPath = map.child("paths")
      let pathsNode = try map.required("paths")
      var globs: [String] = []
      if case .sequence(let seq) = pathsNode {
        guard !seq.isEmpty else {
          throw CE(keyPath: pathsPath, problem: "expected at least one path or glob", line: pathsNode.mark?.line)
        }
        for (j, p) in seq.enumerated() {
          globs.append(Units.absolutePath(try nonEmptyString(p, at: "\(pathsPath)[\(j)]"), base: base))
        }
      } else if case .scalar = pathsNode {
        globs.append(Units.absolutePath(try nonEmptyString(pathsNode, at: pathsPath), base: base))
      } else {
        throw CE(
          keyPath: pathsPath, problem: "expected a path or a list of paths, got \(kind(pathsNode))",
          line: pathsNode.mark?.line)
      }

      var source = SourceConfig(name: name, paths: globs)
      if let v = map.optional("format") {
        let p = map.child("format")
        let format = try string(v, at: p)
        guard Configuration.knownFormats.contains(format) else {
          throw CE(
            keyPath: p,
            problem:
              "\(Units.quoted(format)) is not a known format (known: \(Configuration.knownFormats.joined(separator: ", ")))",
            line: v.mark?.line)
        }
        source.format = format
      }
      if let v = map.optional("time_field") { source.timeField = try fieldPath(v, at: map.child("time_field")) }
      if let v = map.optional("max_line_bytes") {
        source.maxLineBytes = try positiveSize(v, at: map.child("max_line_bytes"))
        // Field offsets inside a line are 32-bit.
        guard source.maxLineBytes <= 1 << 30 else {
          throw CE(keyPath: map.child("max_line_bytes"), problem: "must be at most 1GiB", line: v.mark?.line)
        }
      }
      result.append(source)
    }
    return result
  }

  func events(_ node: Node, at path: String) throws(CE) -> EventsConfig {
    let map = try mapping(node, at: path, known: ["prediction", "feedback"])
    let predictionPath = map.child("prediction")
    let predictionMap = try mapping(try map.required("prediction"), at: predictionPath, known: ["where", "key"])
    let prediction = EventRule(
      matches: try matches(try predictionMap.required("where"), at: predictionMap.child("where")),
      key: try fieldPath(try predictionMap.required("key"), at: predictionMap.child("key")))

    let feedbackPath = map.child("feedback")
    let feedbackNode = try map.required("feedback")
    let feedbackMap = try mapping(feedbackNode, at: feedbackPath, known: nil)
    guard !feedbackMap.entries.isEmpty else {
      throw CE(
        keyPath: feedbackPath,
        problem: "expected at least one feedback type (e.g. click: { where: { event: click }, key: request_id })",
        line: feedbackNode.mark?.line)
    }
    var feedback: [FeedbackRule] = []
    for entry in feedbackMap.entries {
      let rulePath = feedbackMap.child(entry.key)
      let name = try self.name(entry.keyNode, at: rulePath, what: "feedback type")
      let rule = try mapping(entry.value, at: rulePath, known: ["where", "key", "dedupe_by"])
      var dedupe: FieldPath?
      if let v = rule.optional("dedupe_by") { dedupe = try fieldPath(v, at: rule.child("dedupe_by")) }
      feedback.append(
        FeedbackRule(
          name: name,
          matches: try matches(try rule.required("where"), at: rule.child("where")),
          key: try fieldPath(try rule.required("key"), at: rule.child("key")),
          dedupeBy: dedupe))
    }
    return EventsConfig(prediction: prediction, feedback: feedback)
  }

  func matches(_ node: Node, at path: String) throws(CE) -> [FieldMatch] {
    let map = try mapping(node, at: path, known: nil)
    guard !map.entries.isEmpty else {
      throw CE(keyPath: path, problem: "expected at least one `path: value` condition", line: node.mark?.line)
    }
    var result: [FieldMatch] = []
    for entry in map.entries {
      let entryPath = map.child(entry.key)
      let fieldPath: FieldPath
      do {
        fieldPath = try FieldPath(parsing: entry.key)
      } catch {
        throw CE(keyPath: entryPath, problem: error.description, line: entry.keyNode.mark?.line)
      }
      guard case .scalar(let scalar) = entry.value else {
        throw CE(
          keyPath: entryPath,
          problem: "expected a scalar value (string, number, bool or null), got \(kind(entry.value))",
          line: entry.value.mark?.line)
      }
      result.append(FieldMatch(path: fieldPath, value: Self.scalarValue(scalar)))
    }
    return result
  }

  static let reservedColumns = ["key", "predicted_at"]

  func labels(_ node: Node, at path: String, feedback: [String]) throws(CE) -> [LabelConfig] {
    let map = try mapping(node, at: path, known: nil)
    guard !map.entries.isEmpty else {
      throw CE(
        keyPath: path, problem: "expected at least one label (e.g. clicked: { from: click, window: 30m })",
        line: node.mark?.line)
    }
    let names = Set(map.entries.map(\.key))
    var result: [LabelConfig] = []
    for entry in map.entries {
      let labelPath = map.child(entry.key)
      let name = try self.name(entry.keyNode, at: labelPath, what: "label")
      if Self.reservedColumns.contains(name) {
        throw CE(
          keyPath: labelPath,
          problem: "label name \(Units.quoted(name)) collides with the \(name) column of every dataset",
          line: entry.keyNode.mark?.line)
      }
      if name.hasSuffix("_at"), names.contains(String(name.dropLast(3))) {
        throw CE(
          keyPath: labelPath,
          problem:
            "label name \(Units.quoted(name)) collides with the \(name) column of label \(Units.quoted(String(name.dropLast(3))))",
          line: entry.keyNode.mark?.line)
      }
      let label = try mapping(entry.value, at: labelPath, known: ["from", "window", "value"])
      let fromNode = try label.required("from")
      let from = try string(fromNode, at: label.child("from"))
      guard feedback.contains(from) else {
        throw CE(
          keyPath: label.child("from"),
          problem: "\(Units.quoted(from)) is not a feedback type (known: \(feedback.joined(separator: ", ")))",
          line: fromNode.mark?.line)
      }
      let windowNode = try label.required("window")
      let window = try duration(windowNode, at: label.child("window"))
      guard window > 0 else {
        throw CE(keyPath: label.child("window"), problem: "must be greater than 0", line: windowNode.mark?.line)
      }
      var value = LabelValue.binary
      if let v = label.optional("value") {
        switch Units.labelValue(try string(v, at: label.child("value"))) {
        case .success(let lv): value = lv
        case .failure(let p): throw CE(keyPath: label.child("value"), problem: p.text, line: v.mark?.line)
        }
      }
      result.append(LabelConfig(name: name, from: from, window: window, value: value))
    }
    return result
  }

  static let datasetKeys = ["name", "path", "labels", "columns", "format", "roll"]

  func datasets(_ node: Node, at path: String, labels: [LabelConfig], stateDir: String) throws(CE) -> [DatasetConfig] {
    let items = try nonEmptyList(node, at: path, what: "dataset")
    let labelNames = labels.map(\.name)
    var result: [DatasetConfig] = []
    var seenNames: [String: Int] = [:]
    var seenPaths: [String: Int] = [:]
    for (i, item) in items.enumerated() {
      let itemPath = "\(path)[\(i)]"
      let map = try mapping(item, at: itemPath, known: Self.datasetKeys)
      let nameNode = try map.required("name")
      let name = try self.name(nameNode, at: map.child("name"), what: "dataset")
      if let previous = seenNames[name] {
        throw CE(
          keyPath: map.child("name"),
          problem: "duplicate dataset name \(Units.quoted(name)) (already used by \(path)[\(previous)])",
          line: nameNode.mark?.line)
      }
      seenNames[name] = i

      var directory = stateDir + "/datasets/" + name
      if let v = map.optional("path") {
        directory = Units.absolutePath(try nonEmptyString(v, at: map.child("path")), base: base)
        if let previous = seenPaths[directory] {
          throw CE(
            keyPath: map.child("path"),
            problem: "\(Units.quoted(directory)) is already the path of \(path)[\(previous)]", line: v.mark?.line)
        }
      } else if let previous = seenPaths[directory] {
        throw CE(
          keyPath: map.child("path"),
          problem: "the default \(Units.quoted(directory)) is already the path of \(path)[\(previous)]",
          line: item.mark?.line)
      }
      seenPaths[directory] = i

      // Columns first: label names are checked against them.
      var columns: [ColumnConfig]?
      var taken: [String: String] = [
        "key": "the built-in key column", "predicted_at": "the built-in predicted_at column",
      ]
      if let v = map.optional("columns") {
        let columnsPath = map.child("columns")
        let entries = try list(v, at: columnsPath)
        guard !entries.isEmpty else {
          throw CE(
            keyPath: columnsPath,
            problem: "expected at least one column (omit `columns` to keep the whole prediction object)",
            line: v.mark?.line)
        }
        var list: [ColumnConfig] = []
        for (j, entry) in entries.enumerated() {
          let columnPath = "\(columnsPath)[\(j)]"
          let column = try self.column(entry, at: columnPath)
          if let owner = taken[column.name] {
            throw CE(
              keyPath: columnPath, problem: "column name \(Units.quoted(column.name)) is already used by \(owner)",
              line: entry.mark?.line)
          }
          taken[column.name] = "\(columnPath)"
          list.append(column)
        }
        columns = list
      } else {
        taken["prediction"] = "the prediction column (the whole prediction object, as `columns` is absent)"
      }

      let labelsPath = map.child("labels")
      let labelsNode = try map.required("labels")
      let labelEntries = try list(labelsNode, at: labelsPath)
      guard !labelEntries.isEmpty else {
        throw CE(
          keyPath: labelsPath, problem: "expected at least one label (known: \(labelNames.joined(separator: ", ")))",
          line: labelsNode.mark?.line)
      }
      var datasetLabels: [String] = []
      for (j, entry) in labelEntries.enumerated() {
        let entryPath = "\(labelsPath)[\(j)]"
        let label = try string(entry, at: entryPath)
        guard labelNames.contains(label) else {
          throw CE(
            keyPath: entryPath,
            problem: "\(Units.quoted(label)) is not a label (known: \(labelNames.joined(separator: ", ")))",
            line: entry.mark?.line)
        }
        if let previous = datasetLabels.firstIndex(of: label) {
          throw CE(
            keyPath: entryPath, problem: "label \(Units.quoted(label)) is already listed at \(labelsPath)[\(previous)]",
            line: entry.mark?.line)
        }
        for column in [label, label + "_at"] {
          if let owner = taken[column] {
            throw CE(
              keyPath: entryPath,
              problem: "label \(Units.quoted(label)) needs a column \(Units.quoted(column)), already used by \(owner)",
              line: entry.mark?.line)
          }
          taken[column] = "the \(column) column of label \(Units.quoted(label))"
        }
        datasetLabels.append(label)
      }

      var format = DatasetFormat.jsonl
      if let v = map.optional("format") {
        let text = try string(v, at: map.child("format"))
        guard let f = DatasetFormat(rawValue: text) else {
          throw CE(
            keyPath: map.child("format"),
            problem:
              "\(Units.quoted(text)) is not a dataset format (known: \(DatasetFormat.allCases.map(\.rawValue).joined(separator: ", ")))",
            line: v.mark?.line)
        }
        format = f
      }

      var roll = RollConfig()
      if let v = map.optional("roll") {
        let rollMap = try mapping(v, at: map.child("roll"), known: ["max_bytes", "max_age"])
        if let b = rollMap.optional("max_bytes") { roll.maxBytes = try positiveSize(b, at: rollMap.child("max_bytes")) }
        if let a = rollMap.optional("max_age") {
          roll.maxAge = try duration(a, at: rollMap.child("max_age"))
          guard roll.maxAge > 0 else {
            throw CE(keyPath: rollMap.child("max_age"), problem: "must be greater than 0", line: a.mark?.line)
          }
        }
      }
      result.append(
        DatasetConfig(name: name, path: directory, labels: datasetLabels, columns: columns, format: format, roll: roll))
    }
    return result
  }

  func column(_ node: Node, at path: String) throws(CE) -> ColumnConfig {
    switch node {
    case .scalar:
      let text = try string(node, at: path, expected: "a field path")
      return ColumnConfig(path: try fieldPath(node, at: path), name: text)
    case .mapping:
      let map = try mapping(node, at: path, known: ["path", "as"])
      let pathNode = try map.required("path")
      let fieldPath = try self.fieldPath(pathNode, at: map.child("path"))
      var name = try string(pathNode, at: map.child("path"))
      if let v = map.optional("as") { name = try nonEmptyString(v, at: map.child("as")) }
      return ColumnConfig(path: fieldPath, name: name)
    default:
      throw CE(
        keyPath: path, problem: "expected a field path or a mapping { path: ..., as: ... }, got \(kind(node))",
        line: node.mark?.line)
    }
  }

  // MARK: Typed accessors

  struct Map {
    struct Entry {
      let key: String
      let keyNode: Node
      let value: Node
    }
    let path: String
    let line: Int?
    let entries: [Entry]

    func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
    func optional(_ key: String) -> Node? { entries.first { $0.key == key }?.value }
    func required(_ key: String) throws(CE) -> Node {
      guard let value = optional(key) else {
        throw CE(keyPath: child(key), problem: "required key is missing", line: line)
      }
      return value
    }
  }

  /// A mapping with string keys; `known` (when given) lists the allowed keys.
  func mapping(_ node: Node, at path: String, known: [String]?) throws(CE) -> Map {
    guard case .mapping(let mapping) = node else {
      throw CE(keyPath: path, problem: "expected a mapping, got \(kind(node))", line: node.mark?.line)
    }
    var entries: [Map.Entry] = []
    for (keyNode, value) in mapping {
      guard case .scalar(let scalar) = keyNode else {
        throw CE(
          keyPath: path, problem: "expected string keys, got \(kind(keyNode)) as a key", line: keyNode.mark?.line)
      }
      let key = scalar.string
      let keyPath = path.isEmpty ? key : "\(path).\(key)"
      if let known, !known.contains(key) {
        throw CE(
          keyPath: keyPath, problem: "unknown key (known: \(known.joined(separator: ", ")))", line: keyNode.mark?.line)
      }
      entries.append(Map.Entry(key: key, keyNode: keyNode, value: value))
    }
    return Map(path: path, line: node.mark?.line, entries: entries)
  }

  func list(_ node: Node, at path: String) throws(CE) -> [Node] {
    guard case .sequence(let sequence) = node else {
      throw CE(keyPath: path, problem: "expected a list, got \(kind(node))", line: node.mark?.line)
    }
    return Array(sequence)
  }

  func nonEmptyList(_ node: Node, at path: String, what: String) throws(CE) -> [Node] {
    let items = try list(node, at: path)
    guard !items.isEmpty else {
      throw CE(keyPath: path, problem: "expected at least one \(what)", line: node.mark?.line)
    }
    return items
  }

  /// Any non-null scalar, as its text.
  func string(_ node: Node, at path: String, expected: String = "a string") throws(CE) -> String {
    guard case .scalar(let scalar) = node, Self.scalarValue(scalar) != .null else {
      throw CE(keyPath: path, problem: "expected \(expected), got \(kind(node))", line: node.mark?.line)
    }
    return scalar.string
  }

  func nonEmptyString(_ node: Node, at path: String) throws(CE) -> String {
    let text = try string(node, at: path)
    guard !text.isEmpty else { throw CE(keyPath: path, problem: "must not be empty", line: node.mark?.line) }
    return text
  }

  func name(_ node: Node, at path: String, what: String) throws(CE) -> String {
    let text = try string(node, at: path)
    guard Units.isName(text) else {
      throw CE(
        keyPath: path,
        problem:
          "\(Units.quoted(text)) is not a valid \(what) name (use letters, digits and _, not starting with a digit)",
        line: node.mark?.line)
    }
    return text
  }

  func fieldPath(_ node: Node, at path: String) throws(CE) -> FieldPath {
    let text = try string(node, at: path, expected: "a field path")
    do {
      return try FieldPath(parsing: text)
    } catch {
      throw CE(keyPath: path, problem: error.description, line: node.mark?.line)
    }
  }

  func duration(_ node: Node, at path: String) throws(CE) -> Int64 {
    switch Units.duration(try string(node, at: path, expected: "a duration")) {
    case .success(let ns): return ns
    case .failure(let p): throw CE(keyPath: path, problem: p.text, line: node.mark?.line)
    }
  }

  func positiveSize(_ node: Node, at path: String) throws(CE) -> Int {
    switch Units.size(try string(node, at: path, expected: "a size")) {
    case .success(let bytes):
      guard bytes > 0 else { throw CE(keyPath: path, problem: "must be greater than 0", line: node.mark?.line) }
      return bytes
    case .failure(let p): throw CE(keyPath: path, problem: p.text, line: node.mark?.line)
    }
  }

  // MARK: Scalars

  static let strTag = "tag:yaml.org,2002:str"

  /// Plain scalars by the YAML 1.2 core schema; quoted and block scalars and `!!str` are
  /// strings; other explicit core tags are honoured.
  static func scalarValue(_ scalar: Node.Scalar) -> ScalarValue {
    switch scalar.tag.description {
    case "":
      return scalar.style == .plain ? CoreSchema.resolvePlain(scalar.string) : .string(scalar.string)
    case "tag:yaml.org,2002:null":
      return .null
    case "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float":
      let resolved = CoreSchema.resolvePlain(scalar.string)
      if case .string = resolved { return .string(scalar.string) }
      return resolved
    default:  // !!str, "!" and unknown tags
      return .string(scalar.string)
    }
  }

  func kind(_ node: Node) -> String {
    switch node {
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    case .alias: return "an alias"
    case .scalar(let scalar):
      switch Self.scalarValue(scalar) {
      case .null: return "null"
      case .bool: return "a bool"
      case .number: return "a number"
      case .string: return "a string"
      }
    }
  }

  // MARK: YAML syntax errors

  static func convert(_ error: YamlError) -> CE {
    func context(_ c: YamlError.Context?) -> String {
      guard let c, !c.text.isEmpty else { return "" }
      return " (\(c.text) at line \(c.mark.line), column \(c.mark.column))"
    }
    switch error {
    case .scanner(let c, let problem, let mark, _), .parser(let c, let problem, let mark, _),
      .composer(let c, let problem, let mark, _):
      return CE(keyPath: "", problem: "invalid YAML at column \(mark.column): \(problem)\(context(c))", line: mark.line)
    case .duplicatedKeysInMapping(let duplicates, let c):
      let keys = duplicates.sorted().map(Units.quoted).joined(separator: ", ")
      return CE(keyPath: "", problem: "duplicate key \(keys) in a mapping", line: c.mark.line)
    case .reader(let problem, let offset, _, _):
      return CE(keyPath: "", problem: "invalid YAML text: \(problem)" + (offset.map { " at byte \($0)" } ?? ""))
    default:
      return CE(keyPath: "", problem: "invalid YAML: \(ConfigurationError.oneLine(error.description))")
    }
  }
}
