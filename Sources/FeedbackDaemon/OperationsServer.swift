import FeedbackConfig
import Hummingbird
import Prometheus
import ServiceLifecycle

/// `/healthz` and `/metrics` on `http.listen` (loopback by default).
public enum OperationsServer {
  /// How long the pipeline may go without completing a commit before `/healthz` calls it stalled.
  static let stallAfterNanos: Int64 = 30_000_000_000

  public static func make(
    config: FeedbackConfig.Configuration, runner: LiveRunner, registry: PrometheusCollectorRegistry
  ) -> some Service {
    let router = Router()
    router.get("/healthz") { _, _ -> Response in
      let health = runner.health.withLock { $0 }
      let now = LiveRunner.wallNow()
      let problem: String? =
        if let failure = health.failure {
          "cannot write: \(failure)"
        } else if !health.ready {
          "starting"
        } else if now - health.lastProgress > stallAfterNanos {
          "stalled: no commit for \((now - health.lastProgress) / 1_000_000_000) s"
        } else {
          nil
        }
      let summary =
        "lines \(health.linesRead), rows \(health.rowsWritten), last commit \((now - health.lastCommit) / 1_000_000_000) s ago"
      let body = problem.map { "unhealthy: \($0)\n" } ?? "ok: \(summary)\n"
      return Response(
        status: problem == nil ? .ok : .serviceUnavailable,
        headers: [.contentType: "text/plain; charset=utf-8"],
        body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
    router.get("/metrics") { _, _ -> Response in
      var bytes: [UInt8] = []
      registry.emit(into: &bytes)
      return Response(
        status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
    return Application(
      router: router,
      configuration: ApplicationConfiguration(address: .hostname(config.http.host, port: config.http.port)))
  }
}
