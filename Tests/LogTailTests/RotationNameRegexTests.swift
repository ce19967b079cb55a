import LogTail
import Testing

/// The hand-written dated-name parser against the regular expression it replaced.
@Suite struct RotationNameRegexTests {
  nonisolated(unsafe) static let pattern =
    /(.+?)[-._]([0-9]{8,14}|[0-9]{4}-[0-9]{2}-[0-9]{2}(?:-[0-9]{2})?)(?:-([0-9]{1,4}))?/

  static func expected(_ name: String) -> RotationName.Kind? {
    guard let match = name.wholeMatch(of: pattern), !match.1.isEmpty else { return nil }
    return .dated(String(match.2).filter(\.isNumber), match.3.map { Int($0)! } ?? 0)
  }

  @Test func agreesWithTheRegexOnGeneratedNames() {
    let families = ["app", "a.log", "x-y_z.log", "a"]
    let separators = ["-", ".", "_"]
    let dates = [
      "20261130", "2026113009", "20261130093000", "202611300930001", "2026113", "2026-11-30", "2026-11-30-09",
      "2026-11-3", "2026-11-30-9", "2026-11-30-093", "2026-1-30", "2026-11-30T09",
    ]
    let counters = ["", "-1", "-12", "-1234", "-12345", "-x", "-"]
    var checked = 0
    for family in families {
      for separator in separators {
        for date in dates {
          for counter in counters {
            let name = family + separator + date + counter
            let parsed = RotationName(path: name)
            // Numbered names (".<up to 6 digits>") are decided before dated ones.
            if case .numbered = parsed.kind { continue }
            let want = Self.expected(name)
            if let want {
              #expect(parsed.kind == want, "\(name)")
            } else {
              #expect(parsed.kind == .live, "\(name)")
            }
            checked += 1
          }
        }
      }
    }
    #expect(checked > 500)
  }
}
