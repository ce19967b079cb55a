/// feedbackd's version: what `feedbackd --version` prints, the daemon logs when it starts and
/// `/metrics` exports as `feedbackd_build_info{version="…"} 1`. Semantic versioning; bump it
/// with every release.
public enum FeedbackdVersion {
  public static let current = "0.1.0"
}
