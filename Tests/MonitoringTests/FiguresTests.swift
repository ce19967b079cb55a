import Foundation
import Monitoring
import Testing

/// The first `python3` on PATH (the one `pip install` went to), if any.
let python3: String? = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
  .map { $0 + "/python3" }.first { FileManager.default.isExecutableFile(atPath: $0) }

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
  .deletingLastPathComponent().path

@Suite struct FiguresTests {
  struct Case: CustomTestStringConvertible, Sendable {
    var name: String
    var rows: Int
    /// Score from a uniform draw.
    var score: @Sendable (Double) -> Double
    var seed: UInt64
    var testDescription: String { name }
  }

  static let cases: [Case] = [
    Case(name: "continuous scores", rows: 20_000, score: { u in u * u.squareRoot() }, seed: 1),
    Case(name: "four-decimal scores (ties)", rows: 20_000, score: { u in (u * 10_000).rounded() / 10_000 }, seed: 2),
    Case(name: "CTR-like scores near 0", rows: 30_000, score: { u in 0.002 + 0.08 * u * u * u }, seed: 3),
    Case(name: "small window", rows: 250, score: { u in u }, seed: 4),
  ]

  /// AUC and log loss against scikit-learn on the same rows (Scripts/sklearn_metrics.py).
  @Test(.enabled(if: python3 != nil, "python3 is not installed"), arguments: cases)
  func aucAndLogLossAgreeWithScikitLearn(_ c: Case) throws {
    var rng = SimulatedRows(seed: c.seed)
    var stats = SliceStats()
    var csv = ""
    for _ in 0..<c.rows {
      let s = min(max(c.score(rng.uniform()), 1e-6), 1 - 1e-6)
      let positive = rng.uniform() < 0.1 + 0.6 * s
      stats.add(score: s, positive: positive)
      csv += "\(positive ? 1 : 0),\(s)\n"
    }
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("sk-\(UUID().uuidString).csv").path
    try csv.write(toFile: path, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: path) }
    let reference = try scikitLearn(path)
    let f = stats.figures
    let auc = try #require(f.auc)
    let bound = try #require(f.aucErrorBound)
    #expect(abs(auc - reference.auc) < 0.002, "AUC \(auc) vs scikit-learn \(reference.auc)")
    #expect(abs(auc - reference.auc) <= bound + 1e-12, "the stated error bound \(bound) holds")
    #expect(bound < 0.002, "binning error bound \(bound)")
    let logLoss = try #require(f.logLoss)
    #expect(abs(logLoss - reference.logLoss) < 1e-9 * max(1, reference.logLoss), "\(logLoss) vs \(reference.logLoss)")
  }

  struct Reference: Decodable {
    var auc: Double
    var logLoss: Double
    enum CodingKeys: String, CodingKey {
      case auc
      case logLoss = "log_loss"
    }
  }

  func scikitLearn(_ csv: String) throws -> Reference {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python3!)
    process.arguments = [repositoryRoot + "/Scripts/sklearn_metrics.py", csv]
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    try #require(
      process.terminationStatus == 0,
      "Scripts/sklearn_metrics.py failed (pip install scikit-learn numpy; .ci/run does): \(errors)")
    return try JSONDecoder().decode(Reference.self, from: data)
  }

  /// The DeLong standard error matches the spread of AUCs over independent samples.
  @Test func delongStandardErrorMatchesTheSpreadOfSamples() throws {
    var rng = SimulatedRows(seed: 9)
    var aucs: [Double] = []
    var ses: [Double] = []
    for _ in 0..<200 {
      var stats = SliceStats()
      for _ in 0..<400 {
        let s = rng.uniform()
        stats.add(score: s, positive: rng.uniform() < 0.05 + 0.4 * s)
      }
      aucs.append(try #require(stats.figures.auc))
      ses.append(try #require(stats.figures.aucStandardError))
    }
    let mean = aucs.reduce(0, +) / Double(aucs.count)
    let sd = (aucs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(aucs.count - 1)).squareRoot()
    let meanSE = ses.reduce(0, +) / Double(ses.count)
    #expect(abs(meanSE / sd - 1) < 0.2, "DeLong SE \(meanSE) vs observed spread \(sd)")
  }

  @Test func labelRateMeanScoreAndCalibration() throws {
    var stats = SliceStats()
    stats.add(score: 0.2, positive: true)
    stats.add(score: 0.4, positive: false)
    stats.add(score: 0.6, positive: false)
    stats.add(score: 0.8, positive: true)
    let f = stats.figures
    #expect(f.rows == 4 && f.positives == 2)
    #expect(f.labelRate == 0.5)
    #expect(abs(try #require(f.meanScore) - 0.5) < 1e-12)
    #expect(abs(try #require(f.calibration) - 1.0) < 1e-12)
    #expect(f.auc == 0.5)
  }

  @Test func criticalZ() {
    #expect(abs(Statistics.criticalZ(alpha: 0.05) - 1.959964) < 1e-5)
    #expect(abs(Statistics.criticalZ(alpha: 1e-6) - 4.891638) < 1e-5)
  }
}
