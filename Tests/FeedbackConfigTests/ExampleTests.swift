import FeedbackConfig
import Foundation
import LogFormats
import Testing

/// DESIGN.md §7, verbatim.
let designExample = """
  state_dir: /var/lib/feedbackd
  sources:
    - name: shop
      paths: ["/var/log/shop/app.log*"]
      format: logstash            # json | logstash | fluentd | docker | cri
      # time_field: "@timestamp"  # default depends on format
  events:
    prediction: { where: { event: prediction }, key: request_id }
    feedback:
      click:    { where: { event: click },    key: request_id }
      purchase: { where: { event: purchase }, key: request_id, dedupe_by: order_id }
  labels:
    clicked:   { from: click,    window: 30m }
    purchased: { from: purchase, window: 7d }
    revenue:   { from: purchase, window: 7d, value: sum(value) }
  datasets:
    - name: ctr
      path: /var/lib/feedbackd/datasets/ctr
      labels: [clicked]
      columns: [model_version, score, { path: features.item_category, as: category }]
      format: jsonl               # jsonl | jsonl.gz | csv
      roll: { max_bytes: 128MiB, max_age: 5m }
  watermark: { max_out_of_order: 5s, idle_timeout: 30s }
  clock_skew: 0s
  http: { listen: 127.0.0.1:9464 }   # /metrics, /healthz
  """

@Suite struct ExampleTests {
  @Test func designExampleDecodes() throws {
    let config = try parse(designExample)
    #expect(config.stateDir == "/var/lib/feedbackd")

    #expect(config.sources.count == 1)
    let source = try #require(config.sources.first)
    #expect(source.name == "shop")
    #expect(source.paths == ["/var/log/shop/app.log*"])
    #expect(source.format == "logstash")
    #expect(source.timeField == nil)
    #expect(source.maxLineBytes == 1 << 20)

    let prediction = config.events.prediction
    #expect(prediction.matches == [FieldMatch(path: FieldPath(segments: ["event"]), value: .string("prediction"))])
    #expect(prediction.key == FieldPath(segments: ["request_id"]))

    #expect(config.events.feedback.map(\.name) == ["click", "purchase"])
    let click = config.events.feedback[0]
    #expect(click.matches == [FieldMatch(path: FieldPath(segments: ["event"]), value: .string("click"))])
    #expect(click.key == FieldPath(segments: ["request_id"]))
    #expect(click.dedupeBy == nil)
    let purchase = config.events.feedback[1]
    #expect(purchase.matches == [FieldMatch(path: FieldPath(segments: ["event"]), value: .string("purchase"))])
    #expect(purchase.dedupeBy == FieldPath(segments: ["order_id"]))

    #expect(config.labels.map(\.name) == ["clicked", "purchased", "revenue"])
    #expect(config.labels.map(\.from) == ["click", "purchase", "purchase"])
    #expect(config.labels.map(\.window) == [30 * minute, 7 * day, 7 * day])
    #expect(config.labels.map(\.value) == [.binary, .binary, .sum(FieldPath(segments: ["value"]))])

    #expect(config.datasets.count == 1)
    let ctr = try #require(config.datasets.first)
    #expect(ctr.name == "ctr")
    #expect(ctr.path == "/var/lib/feedbackd/datasets/ctr")
    #expect(ctr.labels == ["clicked"])
    #expect(
      ctr.columns == [
        ColumnConfig(path: FieldPath(segments: ["model_version"]), name: "model_version"),
        ColumnConfig(path: FieldPath(segments: ["score"]), name: "score"),
        ColumnConfig(path: FieldPath(segments: ["features", "item_category"]), name: "category"),
      ])
    #expect(ctr.format == .jsonl)
    #expect(ctr.roll == RollConfig(maxBytes: 128 * 1024 * 1024, maxAge: 5 * minute))

    #expect(config.watermark == WatermarkConfig(maxOutOfOrder: 5 * second, idleTimeout: 30 * second))
    #expect(config.clockSkew == 0)
    #expect(config.http == HTTPConfig(host: "127.0.0.1", port: 9464))
  }

  @Test func defaults() throws {
    let config = try parse(minimalYAML)
    let source = try #require(config.sources.first)
    #expect(source.format == "json")
    #expect(source.timeField == nil)
    #expect(source.maxLineBytes == 1_048_576)
    #expect(config.events.feedback[0].dedupeBy == nil)
    #expect(config.labels[0].value == .binary)
    let dataset = try #require(config.datasets.first)
    #expect(dataset.path == "/var/lib/feedbackd/datasets/ctr")
    #expect(dataset.columns == nil)
    #expect(dataset.format == .jsonl)
    #expect(dataset.roll.maxBytes == 134_217_728)
    #expect(dataset.roll.maxAge == 300 * second)
    #expect(config.watermark.maxOutOfOrder == 5 * second)
    #expect(config.watermark.idleTimeout == 30 * second)
    #expect(config.clockSkew == 0)
    #expect(config.http.host == "127.0.0.1")
    #expect(config.http.port == 9464)
  }

  @Test func everyOptionSet() throws {
    let config = try parse(
      """
      state_dir: /s
      sources:
        - name: a
          paths: [/x/a.log, /x/b.log]
          format: fluentd
          time_field: '"@meta.ts".value'
          max_line_bytes: 64KiB
        - { name: b, paths: /y/*.log }
      events:
        prediction: { where: { event: served, "meta.kind": 2 }, key: ids.request }
        feedback:
          view: { where: { event: view }, key: rid }
          buy: { where: { event: buy, test: false }, key: rid, dedupe_by: order.id }
      labels:
        bought: { from: buy, window: 1h30m, value: count }
        first_price: { from: buy, window: 2d, value: first(price.amount) }
        viewed: { from: view, window: 500ms }
      datasets:
        - name: one
          labels: [viewed, bought, first_price]
          format: jsonl.gz
          roll: { max_bytes: 1GiB }
        - name: two
          path: /data/two
          labels: [bought]
          columns: [user.id]
          format: csv
          roll: { max_age: 1h }
      watermark: { idle_timeout: 2m }
      clock_skew: 1500ms
      http: { listen: "[::1]:0" }
      """)
    #expect(config.sources.map(\.name) == ["a", "b"])
    #expect(config.sources[0].paths == ["/x/a.log", "/x/b.log"])
    #expect(config.sources[0].format == "fluentd")
    #expect(config.sources[0].timeField == FieldPath(segments: ["@meta.ts", "value"]))
    #expect(config.sources[0].maxLineBytes == 65536)
    #expect(config.sources[1].paths == ["/y/*.log"])
    #expect(
      config.events.prediction.matches == [
        FieldMatch(path: FieldPath(segments: ["event"]), value: .string("served")),
        FieldMatch(path: FieldPath(segments: ["meta", "kind"]), value: .number(2)),
      ])
    #expect(config.events.prediction.key == FieldPath(segments: ["ids", "request"]))
    #expect(config.events.feedback.map(\.name) == ["view", "buy"])
    #expect(
      config.events.feedback[1].matches.last == FieldMatch(path: FieldPath(segments: ["test"]), value: .bool(false)))
    #expect(config.events.feedback[1].dedupeBy == FieldPath(segments: ["order", "id"]))
    #expect(config.labels.map(\.name) == ["bought", "first_price", "viewed"])
    #expect(config.labels.map(\.window) == [90 * minute, 2 * day, 500_000_000])
    #expect(config.labels.map(\.value) == [.count, .first(FieldPath(segments: ["price", "amount"])), .binary])
    #expect(config.label(named: "viewed")?.from == "view")
    #expect(config.datasets[0].labels == ["viewed", "bought", "first_price"])
    #expect(config.datasets[0].path == "/s/datasets/one")
    #expect(config.datasets[0].format == .jsonlGz)
    #expect(config.datasets[0].roll == RollConfig(maxBytes: 1 << 30, maxAge: 5 * minute))
    #expect(config.datasets[1].path == "/data/two")
    #expect(config.datasets[1].columns == [ColumnConfig(path: FieldPath(segments: ["user", "id"]), name: "user.id")])
    #expect(config.datasets[1].format == .csv)
    #expect(config.datasets[1].roll == RollConfig(maxBytes: 128 << 20, maxAge: hour))
    #expect(config.watermark == WatermarkConfig(maxOutOfOrder: 5 * second, idleTimeout: 2 * minute))
    #expect(config.clockSkew == 1_500_000_000)
    #expect(config.http == HTTPConfig(host: "::1", port: 0))
  }

  @Test func columnNameIsThePathAsWritten() throws {
    let config = try parse(
      minimalYAML.replacingOccurrences(
        of: "labels: [clicked]",
        with: #"labels: [clicked]"# + "\n    columns: ['\"a.b\".c', { path: x.y }]"))
    let columns = try #require(config.datasets[0].columns)
    #expect(columns.map(\.name) == [#""a.b".c"#, "x.y"])
    #expect(columns.map(\.path) == [FieldPath(segments: ["a.b", "c"]), FieldPath(segments: ["x", "y"])])
  }

  @Test func anchorsAndAliasesAreFollowed() throws {
    let config = try parse(
      """
      state_dir: /s
      sources: [{ name: a, paths: /a.log }]
      events:
        prediction: { where: &w { event: p }, key: id }
        feedback:
          f: { where: *w, key: id }
      labels:
        l: { from: f, window: 1m }
      datasets: [{ name: d, labels: [l] }]
      """)
    #expect(config.events.feedback[0].matches == config.events.prediction.matches)
  }
}
