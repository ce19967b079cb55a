/// Deterministic randomness: xoshiro256** seeded through SplitMix64, plus `exp`/`ln` built
/// from IEEE basic operations only, so the same seed gives byte-identical logs on every
/// machine (platform libm functions may differ in the last bit between systems).

/// The SplitMix64 finaliser: a bijection on UInt64, used for ids that must never collide.
@inline(__always)
func mix64(_ value: UInt64) -> UInt64 {
  var z = value &+ 0x9E37_79B9_7F4A_7C15
  z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
  z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
  return z ^ (z >> 31)
}

struct Xoshiro256 {
  private var s0: UInt64
  private var s1: UInt64
  private var s2: UInt64
  private var s3: UInt64

  init(seed: UInt64) {
    var state = seed
    func splitmix(_ state: inout UInt64) -> UInt64 {
      state = state &+ 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    s0 = splitmix(&state)
    s1 = splitmix(&state)
    s2 = splitmix(&state)
    s3 = splitmix(&state)
  }

  @inline(__always)
  private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

  @inline(__always)
  mutating func next() -> UInt64 {
    let result = Self.rotl(s1 &* 5, 7) &* 9
    let t = s1 << 17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = Self.rotl(s3, 45)
    return result
  }

  /// Uniform in [0, 1).
  @inline(__always)
  mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

  /// Uniform integer in 0..<n (n > 0).
  @inline(__always)
  mutating func below(_ n: Int) -> Int {
    Int(UInt64(n).multipliedFullWidth(by: next()).high)
  }

  @inline(__always)
  mutating func chance(_ p: Double) -> Bool { uniform() < p }

  /// Approximately standard normal (Irwin–Hall: sum of 12 uniforms − 6, bounded to ±6).
  mutating func normal() -> Double {
    var sum = 0.0
    for _ in 0..<12 { sum += uniform() }
    return sum - 6
  }

  /// Log-normal with the given median and shape.
  mutating func logNormal(median: Double, sigma: Double) -> Double {
    median * detExp(sigma * normal())
  }

  /// Log-uniform in [low, high).
  mutating func logUniform(_ low: Double, _ high: Double) -> Double {
    low * detExp(uniform() * detLn(high / low))
  }

  /// Exponential with the given mean.
  mutating func exponential(mean: Double) -> Double {
    -detLn(1 - uniform()) * mean  // 1 - u is in (0, 1]
  }
}

private let ln2 = 0.693_147_180_559_945_3

/// e^x from basic operations only (bit-identical everywhere).
func detExp(_ x: Double) -> Double {
  if x > 700 { return .infinity }
  if x < -700 { return 0 }
  let k = (x / ln2).rounded()
  let r = x - k * ln2
  var term = 1.0
  var sum = 1.0
  for i in 1...18 {
    term = term * r / Double(i)
    sum += term
  }
  return sum * Double(sign: .plus, exponent: Int(k), significand: 1)
}

/// ln x (x > 0) from basic operations only.
func detLn(_ x: Double) -> Double {
  precondition(x > 0)
  var e = Int(x.exponent)
  var m = x.significand  // [1, 2)
  if m > 1.414_213_562_373_095 {
    m /= 2
    e += 1
  }
  let s = (m - 1) / (m + 1)
  let s2 = s * s
  var power = s
  var sum = 0.0
  for n in 0..<14 {
    sum += power / Double(2 * n + 1)
    power *= s2
  }
  return Double(e) * ln2 + 2 * sum
}
