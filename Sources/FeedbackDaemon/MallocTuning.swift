#if canImport(Glibc)
  import Glibc
#endif

/// Fixed malloc thresholds, so memory the process frees goes back to the system.
///
/// glibc's malloc adapts two thresholds upward as a process runs: once a large block is freed,
/// blocks up to that size come from its heaps instead of mappings of their own, and a heap is
/// trimmed only when twice that much is free at its top. With the join state's churn (entries,
/// payloads and due rows coming and going, arrays growing) a replay with long windows kept
/// several times its state resident (measured: 244 MB peak RSS for 32 MiB of state). Setting
/// the thresholds turns that adaptation off: blocks from 256 KiB get mappings of their own
/// (unmapped when freed) and a heap is trimmed once 1 MiB at its top is free.
public enum MallocTuning {
  /// Applies the thresholds; a no-op where `mallopt` does not exist.
  public static func apply() {
    #if canImport(Glibc)
      // `mallopt` is not in the Glibc module map; glibc's `RTLD_DEFAULT` is the null handle.
      guard let symbol = dlsym(nil, "mallopt") else { return }
      typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
      let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
      let trimThreshold: Int32 = -1  // M_TRIM_THRESHOLD
      let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD
      _ = mallopt(trimThreshold, 1 << 20)
      _ = mallopt(mmapThreshold, 256 << 10)
    #endif
  }
}
