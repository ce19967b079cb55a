import FeedbackConfig
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import UnixSignals

/// The pipeline loop as a service: graceful shutdown (SIGTERM) drains and commits.
public struct PipelineService: Service {
  let runner: LiveRunner

  public init(runner: LiveRunner) {
    self.runner = runner
  }

  public func run() async throws {
    let runner = self.runner
    await withTaskCancellationHandler {
      await withGracefulShutdownHandler {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
          let thread = Thread {
            runner.run()
            continuation.resume()
          }
          thread.name = "feedbackd-pipeline"
          thread.stackSize = 8 << 20
          thread.start()
        }
      } onGracefulShutdown: {
        runner.requestStop()
      }
    } onCancel: {
      runner.requestStop()
    }
  }
}

/// SIGHUP reloads the configuration's sources.
public struct ReloadService: Service {
  let runner: LiveRunner
  let logger: Logger

  public init(runner: LiveRunner, logger: Logger) {
    self.runner = runner
    self.logger = logger
  }

  public func run() async throws {
    let signals = await UnixSignalsSequence(trapping: .sighup)
    for await _ in signals.cancelOnGracefulShutdown() {
      logger.notice("SIGHUP: reloading sources")
      runner.requestReload()
    }
  }
}

/// Assembles the daemon's services in one place, in dependency order.
public enum Daemon {
  public static func run(runner: LiveRunner, config: FeedbackConfig.Configuration, logger: Logger) async throws {
    // Before anything starts: a second daemon on the same state_dir stops here (`StateDirLock`).
    let lock = try StateDirLock.acquire(stateDir: config.stateDir)
    defer { withExtendedLifetime(lock) {} }
    let registry = PrometheusCollectorRegistry()
    var factory = PrometheusMetricsFactory(registry: registry)
    // Feedback arrives seconds (clicks) to days (purchases) after a prediction.
    factory.valueHistogramBuckets["feedbackd_label_delay_seconds"] = [
      1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21_600, 86_400, 259_200, 604_800,
    ]
    MetricsSystem.bootstrap(factory)
    let group = ServiceGroup(
      configuration: ServiceGroupConfiguration(
        services: [
          ServiceGroupConfiguration.ServiceConfiguration(
            service: PipelineService(runner: runner), successTerminationBehavior: .gracefullyShutdownGroup),
          ServiceGroupConfiguration.ServiceConfiguration(service: ReloadService(runner: runner, logger: logger)),
          ServiceGroupConfiguration.ServiceConfiguration(
            service: OperationsServer.make(config: config, runner: runner, registry: registry)),
        ],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger))
    try await group.run()
  }
}
