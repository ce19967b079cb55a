/// Everything `feedbackd report` shows, gathered from the state directory and datasets.
public struct ReportInput: Sendable {
  public var title: String
  /// Nanoseconds since the epoch.
  public var generatedAt: Int64
  public var configPath: String
  public var monitors: [MonitorReport] = []
  public var datasets: [DatasetVolume] = []
  public var labelDelays: [LabelDelays] = []
  public var rejects: [Count] = []
  public var orphans: [Count] = []
  /// Orphaned feedback per hour (start of the hour, count).
  public var orphansPerHour: [TimeCount] = []

  public init(title: String, generatedAt: Int64, configPath: String) {
    self.title = title
    self.generatedAt = generatedAt
    self.configPath = configPath
  }
}

public struct Count: Sendable {
  public var name: String
  public var count: Int64
  public init(name: String, count: Int64) {
    self.name = name
    self.count = count
  }
}

public struct TimeCount: Sendable {
  public var time: Int64
  public var count: Int64
  public init(time: Int64, count: Int64) {
    self.time = time
    self.count = count
  }
}

public struct MonitorReport: Sendable {
  public var name: String
  public var dataset: String
  public var label: String
  public var window: Int64
  public var minRows: Int
  /// The whole dataset first.
  public var slices: [SliceSeries] = []
  public var alerts: [ReportAlert] = []

  public init(name: String, dataset: String, label: String, window: Int64, minRows: Int) {
    self.name = name
    self.dataset = dataset
    self.label = label
    self.window = window
    self.minRows = minRows
  }
}

public struct SliceSeries: Sendable {
  public var name: String
  public var points: [WindowPoint] = []
  public init(name: String) { self.name = name }
}

public struct WindowPoint: Sendable {
  public var start: Int64
  public var rows: Int64
  public var values: [Metric: Double] = [:]
  public var baseline: [Metric: Double] = [:]
  /// Had enough rows for a verdict.
  public var tested: Bool
  public init(start: Int64, rows: Int64, tested: Bool) {
    self.start = start
    self.rows = rows
    self.tested = tested
  }
}

public struct ReportAlert: Sendable {
  public var slice: String
  public var metric: Metric
  public var kind: AlertKind
  public var windowStart: Int64
  public var windowEnd: Int64
  public var baselineValue: Double?
  public var value: Double?
  public var since: Int64?
  public init(
    slice: String, metric: Metric, kind: AlertKind, windowStart: Int64, windowEnd: Int64, baselineValue: Double?,
    value: Double?, since: Int64?
  ) {
    self.slice = slice
    self.metric = metric
    self.kind = kind
    self.windowStart = windowStart
    self.windowEnd = windowEnd
    self.baselineValue = baselineValue
    self.value = value
    self.since = since
  }
}

public struct DatasetVolume: Sendable {
  public var name: String
  /// Rows per hour partition.
  public var perHour: [TimeCount]
  public init(name: String, perHour: [TimeCount]) {
    self.name = name
    self.perHour = perHour
  }
}

public struct LabelDelays: Sendable {
  public var label: String
  public var dataset: String
  /// Per `LabelDelay.edges` bin.
  public var counts: [Int64]
  /// Rows whose label had no feedback.
  public var withoutFeedback: Int64
  public init(label: String, dataset: String, counts: [Int64], withoutFeedback: Int64) {
    self.label = label
    self.dataset = dataset
    self.counts = counts
    self.withoutFeedback = withoutFeedback
  }
}
