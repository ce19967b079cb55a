// swift-tools-version:6.0
import PackageDescription

/// The modules every log line passes through. Release builds skip the runtime exclusivity
/// check on class properties there: it was 7% of replay time in the profile (swift_beginAccess
/// and its thread-local access set). Debug builds, which run every test, keep checking.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
  name: "feedbackd",
  platforms: [.macOS(.v14)],
  products: [
    .executable(name: "feedbackd", targets: ["feedbackd"]),
    .executable(name: "feedbackd-loggen", targets: ["feedbackd-loggen"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
  ],
  targets: [
    .systemLibrary(
      name: "CZlib",
      pkgConfig: "zlib",
      providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]
    ),
    .systemLibrary(
      name: "CISAL",
      pkgConfig: "libisal",
      providers: [.apt(["libisal-dev"]), .brew(["isa-l"])]
    ),
    .target(name: "Gzip", dependencies: ["CZlib", "CISAL"]),
    .target(name: "Threads", swiftSettings: hotPath),
    .target(name: "LogTail", dependencies: ["Gzip", "Threads", "CPrefetch"], swiftSettings: hotPath),
    .target(name: "CByteScan"),
    .target(name: "LogFormats", dependencies: ["CByteScan", "CPrefetch"], swiftSettings: hotPath),
    .target(name: "CPrefetch"),
    // `sqlite3_db_config` options (variadic, so not callable from Swift); the header includes
    // the system's <sqlite3.h>, which GRDBSQLite links.
    .target(name: "CSQLiteOptions"),
    .target(name: "Labeling", dependencies: ["LogFormats", "CPrefetch"], swiftSettings: hotPath),
    .target(
      name: "Dataset", dependencies: ["CByteScan", "Gzip", "LogFormats", "Labeling", "Threads"], swiftSettings: hotPath),
    .target(name: "Monitoring"),
    .target(
      name: "FeedbackConfig",
      dependencies: ["LogFormats", .product(name: "Yams", package: "Yams")]
    ),
    .target(
      name: "FeedbackDaemon",
      dependencies: [
        "Gzip", "LogTail", "LogFormats", "Labeling", "Dataset", "FeedbackConfig", "Monitoring", "Threads",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "GRDB", package: "GRDB.swift"),
        // GRDB's own SQLite module: commits bind their rows through the C API.
        .product(name: "GRDBSQLite", package: "GRDB.swift"),
        "CSQLiteOptions",
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        .product(name: "Metrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "Hummingbird", package: "hummingbird"),
      ],
      swiftSettings: hotPath
    ),
    .executableTarget(
      name: "feedbackd",
      dependencies: [
        "FeedbackDaemon", "FeedbackConfig",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    .executableTarget(
      name: "feedbackd-loggen",
      dependencies: [
        "Gzip",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    .executableTarget(
      name: "feedbackd-bench",
      dependencies: [
        "Gzip", "FeedbackDaemon", "FeedbackConfig", "Labeling", "LogFormats", "LogTail",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ],
      path: "Benchmarks/Sources/feedbackd-bench"
    ),
    .target(name: "TestSupport", path: "Tests/TestSupport"),
    .testTarget(name: "GzipTests", dependencies: ["Gzip", "TestSupport"]),
    .testTarget(name: "LogTailTests", dependencies: ["TestSupport", "LogTail", "Gzip", "Threads"]),
    .testTarget(name: "LogFormatsTests", dependencies: ["TestSupport", "LogFormats"]),
    .testTarget(name: "LabelingTests", dependencies: ["TestSupport", "Labeling", "LogFormats"]),
    .testTarget(name: "DatasetTests", dependencies: ["TestSupport", "Dataset", "Labeling", "LogFormats", "Gzip"]),
    .testTarget(name: "MonitoringTests", dependencies: ["TestSupport", "Monitoring"]),
    .testTarget(name: "FeedbackConfigTests", dependencies: ["TestSupport", "FeedbackConfig", "LogFormats"]),
    .testTarget(name: "FeedbackDaemonTests", dependencies: ["TestSupport", "FeedbackDaemon", "FeedbackConfig"]),
    .testTarget(
      name: "EndToEndTests",
      dependencies: ["TestSupport", "feedbackd", "feedbackd-loggen", "Gzip"]
    ),
  ]
)
