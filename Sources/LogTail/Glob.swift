#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Expands shell globs to the regular files they match, without duplicates.
public func expandGlobs(_ patterns: [String]) -> [String] {
  var seen = Set<String>()
  var result: [String] = []
  for pattern in patterns {
    var g = glob_t()
    defer { globfree(&g) }
    guard glob(pattern, 0, nil, &g) == 0 else { continue }
    for i in 0..<Int(g.gl_pathc) {
      guard let cPath = g.gl_pathv[i] else { continue }
      let path = String(cString: cPath)
      var st = stat()
      // stat follows symlinks: a symlinked live file counts as the file it points to.
      guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
      if seen.insert(path).inserted { result.append(path) }
    }
  }
  return result
}
