/// Hand-written line rendering into a raw byte buffer (no JSONEncoder on the write path).

enum LogFormat: String, CaseIterable {
  case logstash, json, fluentd, docker, cri, gcp, cloudwatch, azure, elasticsearch

  /// The wrapper formats carry the application's logstash line inside what a platform writes.
  var isWrapper: Bool {
    switch self {
    case .logstash, .json, .fluentd: false
    default: true
    }
  }
}

/// A growable byte buffer with unchecked appends; call `reserve` before each line.
final class ByteBuffer {
  private(set) var base: UnsafeMutablePointer<UInt8>
  private(set) var capacity: Int
  var count = 0

  init(capacity: Int = 1 << 20) {
    self.capacity = capacity
    base = .allocate(capacity: capacity)
  }

  deinit { base.deallocate() }

  var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

  func reserve(_ extra: Int) {
    if count + extra <= capacity { return }
    var newCapacity = capacity * 2
    while newCapacity < count + extra { newCapacity *= 2 }
    let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
    newBase.update(from: base, count: count)
    base.deallocate()
    base = newBase
    capacity = newCapacity
  }

  @inline(__always)
  func put(_ byte: UInt8) {
    base[count] = byte
    count += 1
  }

  @inline(__always)
  func put(_ string: StaticString) {
    let n = string.utf8CodeUnitCount
    (base + count).update(from: string.utf8Start, count: n)
    count += n
  }

  @inline(__always)
  func put(_ raw: UnsafeRawBufferPointer) {
    guard let start = raw.baseAddress, raw.count > 0 else { return }
    (base + count).update(from: start.assumingMemoryBound(to: UInt8.self), count: raw.count)
    count += raw.count
  }

  func put(_ string: String) {
    var s = string
    s.withUTF8 { utf8 in
      reserve(utf8.count)
      put(UnsafeRawBufferPointer(utf8))
    }
  }

  /// Non-negative decimal integer.
  @inline(__always)
  func putInt(_ value: Int64) {
    var v = UInt64(max(value, 0))
    if v < 10 {
      put(UInt8(48 + v))
      return
    }
    var digits = 0
    var t = v
    while t > 0 {
      digits += 1
      t /= 10
    }
    var i = count + digits - 1
    while v > 0 {
      base[i] = UInt8(48 + v % 10)
      v /= 10
      i -= 1
    }
    count += digits
  }

  @inline(__always)
  func putDigits2(_ v: Int) {
    base[count] = UInt8(48 + v / 10)
    base[count + 1] = UInt8(48 + v % 10)
    count += 2
  }

  @inline(__always)
  func putHex16(_ value: UInt64) {
    let hex: StaticString = "0123456789abcdef"
    let table = hex.utf8Start
    for i in 0..<16 {
      base[count + i] = table[Int((value >> UInt64(60 - 4 * i)) & 0xF)]
    }
    count += 16
  }

  /// `0.dddd` for a score in 1…9999 (four decimals).
  @inline(__always)
  func putScore(_ score: UInt16) {
    let v = Int(score)
    put(UInt8(ascii: "0"))
    put(UInt8(ascii: "."))
    base[count] = UInt8(48 + v / 1000)
    base[count + 1] = UInt8(48 + (v / 100) % 10)
    base[count + 2] = UInt8(48 + (v / 10) % 10)
    base[count + 3] = UInt8(48 + v % 10)
    count += 4
  }

  /// Cents as a JSON number: 5990 → `59.9`, 5999 → `59.99`, 6000 → `60.0`.
  @inline(__always)
  func putCents(_ cents: Int64) {
    putInt(cents / 100)
    put(UInt8(ascii: "."))
    let c = Int(cents % 100)
    put(UInt8(48 + c / 10))
    if c % 10 != 0 { put(UInt8(48 + c % 10)) }
  }
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
func civil(fromDays days: Int64) -> (year: Int, month: Int, day: Int) {
  let z = days + 719_468
  let era = (z >= 0 ? z : z - 146_096) / 146_097
  let doe = z - era * 146_097
  let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
  let y = yoe + era * 400
  let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
  let mp = (5 * doy + 2) / 153
  let d = doy - (153 * mp + 2) / 5 + 1
  let m = mp < 10 ? mp + 3 : mp - 9
  return (Int(m <= 2 ? y + 1 : y), Int(m), Int(d))
}

/// Days since 1970-01-01 of a civil date.
func days(fromCivil year: Int, _ month: Int, _ day: Int) -> Int64 {
  let y = Int64(month <= 2 ? year - 1 : year)
  let era = (y >= 0 ? y : y - 399) / 400
  let yoe = y - era * 400
  let m = Int64(month)
  let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
  let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
  return era * 146_097 + doe - 719_468
}

@inline(__always)
func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
  let q = a / b
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

/// Formats a millisecond timestamp as RFC 3339, e.g. `2026-11-30T09:00:00.123Z`.
func rfc3339(_ ms: Int64, offsetStyle: Bool = false) -> String {
  let buffer = ByteBuffer(capacity: 64)
  var cache = DayCache()
  cache.putTime(ms, into: buffer, offsetStyle: offsetStyle)
  return String(decoding: buffer.bytes, as: UTF8.self)
}

/// Caches the `YYYY-MM-DDT` prefix of the current day.
struct DayCache {
  private var day: Int64 = .min
  private var prefix: (UInt64, UInt64) = (0, 0)  // 11 bytes, stored in 16

  @inline(__always)
  mutating func putTime(_ ms: Int64, into out: ByteBuffer, offsetStyle: Bool) {
    let d = floorDiv(ms, 86_400_000)
    if d != day {
      day = d
      let (y, m, dd) = civil(fromDays: d)
      var text = [UInt8](repeating: 0, count: 16)
      let s = Array(String(y).utf8)
      let yearDigits = s.count >= 4 ? s : Array(repeating: UInt8(ascii: "0"), count: 4 - s.count) + s
      for i in 0..<4 { text[i] = yearDigits[yearDigits.count - 4 + i] }
      text[4] = UInt8(ascii: "-")
      text[5] = UInt8(48 + m / 10)
      text[6] = UInt8(48 + m % 10)
      text[7] = UInt8(ascii: "-")
      text[8] = UInt8(48 + dd / 10)
      text[9] = UInt8(48 + dd % 10)
      text[10] = UInt8(ascii: "T")
      text.withUnsafeBytes { raw in
        prefix = (
          raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
          raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        )
      }
    }
    withUnsafeBytes(of: prefix) { raw in
      out.put(UnsafeRawBufferPointer(rebasing: raw[0..<11]))
    }
    let inDay = Int(ms - d * 86_400_000)
    let secs = inDay / 1000
    out.putDigits2(secs / 3600)
    out.put(UInt8(ascii: ":"))
    out.putDigits2((secs / 60) % 60)
    out.put(UInt8(ascii: ":"))
    out.putDigits2(secs % 60)
    out.put(UInt8(ascii: "."))
    let frac = inDay % 1000
    out.put(UInt8(48 + frac / 100))
    out.putDigits2(frac % 100)
    if offsetStyle {
      out.put("+00:00")
    } else {
      out.put(UInt8(ascii: "Z"))
    }
  }
}

struct Renderer {
  let format: LogFormat
  let out: ByteBuffer
  var days = DayCache()
  private let scratch = ByteBuffer(capacity: 1024)
  /// The format of the application's line: logstash inside every wrapper.
  let lineFormat: LogFormat
  /// The application's line, before it is wrapped.
  let app = ByteBuffer(capacity: 4096)
  /// The open CloudWatch subscription record / Azure `records` line and its member count.
  let batch = ByteBuffer(capacity: 8192)
  var batched = 0
  /// Wrapped lines so far: ids, and which lines get a bulk delete or a partial split.
  var wrapped: UInt64 = 0

  init(format: LogFormat, out: ByteBuffer) {
    self.format = format
    self.out = out
    lineFormat = format.isWrapper ? .logstash : format
  }

  static let categories: [StaticString] = [
    "shoes", "electronics", "books", "toys", "beauty", "home_garden", "sports", "grocery",
  ]
  static let devices: [StaticString] = ["mobile", "desktop", "tablet"]
  static let models: [StaticString] = ["ranker-v3", "ranker-v4"]

  /// Opens the line: the time and envelope, then the object up to (not including) `"level"`.
  @inline(__always)
  private mutating func open(_ time: Int64, tag: StaticString, into out: ByteBuffer) {
    switch lineFormat {
    case .logstash:
      out.put("{\"@timestamp\":\"")
      days.putTime(time, into: out, offsetStyle: false)
      out.put("\",\"@version\":\"1\",")
    case .json:
      out.put("{\"time\":\"")
      days.putTime(time, into: out, offsetStyle: false)
      out.put("\",")
    case .fluentd:
      days.putTime(time, into: out, offsetStyle: true)
      out.put(UInt8(ascii: "\t"))
      out.put(tag)
      out.put("\t{")
    default:
      preconditionFailure("wrapper formats render the application's line as logstash")
    }
  }

  mutating func render(_ item: Item) {
    guard format.isWrapper else { return render(item, into: out) }
    app.count = 0
    render(item, into: app)
    wrap(time: item.time, isObject: true, stream: "stdout", split: item.kind == .prediction)
  }

  private mutating func render(_ item: Item, into out: ByteBuffer) {
    out.reserve(512)
    switch item.kind {
    case .prediction:
      open(item.time, tag: "shop.ranker", into: out)
      out.put("\"level\":\"INFO\",\"logger\":\"shop.ranker\",\"event\":\"prediction\",\"request_id\":\"r-")
      out.putHex16(item.rid)
      out.put("\",\"user_id\":\"u")
      out.putInt(Int64(item.user))
      out.put("\",\"model_version\":\"")
      out.put(Self.models[Int(item.d)])
      out.put("\",\"score\":")
      out.putScore(item.score)
      out.put(",\"features\":{\"item_category\":\"")
      out.put(Self.categories[Int(item.a)])
      out.put("\",\"device\":\"")
      out.put(Self.devices[Int(item.b)])
      out.put("\",\"position\":")
      out.putInt(Int64(item.c))
      out.put(",\"price\":")
      out.putCents(item.cents)
      out.put("}}\n")
    case .click:
      open(item.time, tag: "shop.web", into: out)
      out.put("\"level\":\"INFO\",\"logger\":\"shop.web\",\"event\":\"click\",\"request_id\":\"r-")
      out.putHex16(item.rid)
      out.put("\",\"user_id\":\"u")
      out.putInt(Int64(item.user))
      out.put("\"}\n")
    case .purchase:
      open(item.time, tag: "shop.orders", into: out)
      out.put("\"level\":\"INFO\",\"logger\":\"shop.orders\",\"event\":\"purchase\",\"request_id\":\"r-")
      out.putHex16(item.rid)
      out.put("\",\"order_id\":\"o-")
      out.putHex16(item.order)
      out.put("\",\"value\":")
      out.putCents(item.cents)
      out.put("}\n")
    case .http:
      open(item.time, tag: "shop.http", into: out)
      switch item.b {
      case 0: out.put("\"level\":\"INFO\"")
      case 1: out.put("\"level\":\"WARN\"")
      default: out.put("\"level\":\"ERROR\"")
      }
      out.put(",\"logger\":\"shop.http\",\"event\":\"http_request\",\"method\":")
      switch item.a {
      case 0:
        out.put("\"GET\",\"path\":\"/p/")
        out.putInt(Int64(item.user))
      case 1:
        out.put("\"GET\",\"path\":\"/search?q=")
        out.put(Self.categories[Int(item.user % 8)])
      case 2:
        out.put("\"POST\",\"path\":\"/cart")
      default:
        out.put("\"GET\",\"path\":\"/")
      }
      switch item.b {
      case 0: out.put("\",\"status\":200")
      case 1: out.put("\",\"status\":404")
      default: out.put("\",\"status\":500")
      }
      out.put(",\"duration_ms\":")
      out.putInt(Int64(item.score))
      out.put("}\n")
    }
  }

  mutating func renderJunk(_ kind: JunkKind, time: Int64, param: UInt64) {
    guard format.isWrapper else { return renderJunk(kind, time: time, param: param, into: out) }
    app.count = 0
    renderJunk(kind, time: time, param: param, into: app)
    let isObject = kind == .missingTime || kind == .badTime
    wrap(time: time, isObject: isObject, stream: kind == .plainText ? "stderr" : "stdout", split: false)
  }

  private mutating func renderJunk(_ kind: JunkKind, time: Int64, param: UInt64, into out: ByteBuffer) {
    out.reserve(1024)
    switch kind {
    case .plainText:
      switch param % 3 {
      case 0: out.put("WARN something odd: connection pool at 95% (pid 4242)\n")
      case 1: out.put("java.lang.IllegalStateException: unexpected state\n")
      default: out.put("    at shop.ranker.Ranker.score(Ranker.java:118)\n")
      }
    case .truncatedJSON:
      // A whole request line, cut somewhere inside (a crashed writer or a clipped buffer).
      scratch.count = 0
      var h = Item(arrival: 0, seq: 0, time: time, kind: .http)
      h.user = UInt32(param % 99_999) + 1
      h.score = UInt16(param >> 48 & 0xFF) + 3
      render(h, into: scratch)
      let cut = 10 + Int((param >> 20) % UInt64(scratch.count - 12))
      out.put(UnsafeRawBufferPointer(rebasing: scratch.bytes[0..<cut]))
      out.put(UInt8(ascii: "\n"))
    case .missingTime:
      switch lineFormat {
      case .logstash:
        out.put("{\"@version\":\"1\",\"level\":\"WARN\",\"logger\":\"shop.health\",\"event\":\"heartbeat\"}\n")
      case .json: out.put("{\"level\":\"WARN\",\"logger\":\"shop.health\",\"event\":\"heartbeat\"}\n")
      case .fluentd: out.put("{\"level\":\"WARN\",\"logger\":\"shop.health\",\"event\":\"heartbeat\"}\n")
      default: preconditionFailure("wrapped")
      }
    case .badTime:
      switch lineFormat {
      case .logstash:
        out.put(
          "{\"@timestamp\":\"2026-13-45T25:61:00Z\",\"@version\":\"1\",\"level\":\"WARN\",\"logger\":\"shop.health\",\"event\":\"heartbeat\"}\n"
        )
      case .json:
        out.put(
          "{\"time\":\"yesterday at noon\",\"level\":\"WARN\",\"logger\":\"shop.health\",\"event\":\"heartbeat\"}\n")
      case .fluentd:
        out.put("not-a-time\tshop.health\t{\"level\":\"WARN\",\"logger\":\"shop.health\",\"event\":\"heartbeat\"}\n")
      default: preconditionFailure("wrapped")
      }
    case .emptyLine:
      out.put(UInt8(ascii: "\n"))
    }
  }
}
