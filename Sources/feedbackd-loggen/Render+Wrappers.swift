/// The wrapper formats: the application's logstash line (in `app`, with its newline) inside what
/// Docker, Kubernetes, Cloud Logging, CloudWatch, Azure or Elasticsearch write around it.
extension Renderer {
  /// Members per CloudWatch subscription record / Azure `records` line.
  static let batchSize = 4

  /// Wraps the line in `app`. `isObject`: the line is a JSON object (junk may not be);
  /// `split`: write it as two CRI/docker partial lines.
  mutating func wrap(time: Int64, isObject: Bool, stream: StaticString, split: Bool) {
    var line = app.bytes
    if line.last == UInt8(ascii: "\n") { line = UnsafeRawBufferPointer(rebasing: line.dropLast()) }
    wrapped += 1
    out.reserve(2 * line.count + 512)
    switch format {
    case .logstash, .json, .fluentd:
      preconditionFailure("not a wrapper")
    case .docker:
      if split && line.count > 40 {
        docker(UnsafeRawBufferPointer(rebasing: line[..<40]), time: time, stream: stream, last: false)
        docker(UnsafeRawBufferPointer(rebasing: line[40...]), time: time, stream: stream, last: true)
      } else {
        docker(line, time: time, stream: stream, last: true)
      }
    case .cri:
      if split && line.count > 40 {
        cri(UnsafeRawBufferPointer(rebasing: line[..<40]), time: time, stream: stream, tag: "P")
        cri(UnsafeRawBufferPointer(rebasing: line[40...]), time: time, stream: stream, tag: "F")
      } else {
        cri(line, time: time, stream: stream, tag: "F")
      }
    case .gcp:
      out.put("{\"insertId\":\"")
      out.putHex16(wrapped)
      if isObject {
        out.put("\",\"jsonPayload\":")
        out.put(line)
      } else {
        out.put("\",\"textPayload\":")
        putString(line, into: out)
      }
      out.put(",\"resource\":{\"type\":\"k8s_container\",\"labels\":{\"container_name\":\"shop\"}},\"timestamp\":\"")
      putNanos(time, into: out)
      out.put("\",\"severity\":\"INFO\",\"logName\":\"projects/shop/logs/stdout\"}\n")
    case .cloudwatch:
      batch.reserve(2 * line.count + 256)
      batch.put(batched == 0 ? UInt8(ascii: "[") : UInt8(ascii: ","))
      batch.put("{\"id\":\"")
      batch.putInt(Int64(wrapped))
      batch.put("\",\"timestamp\":")
      batch.putInt(time)
      batch.put(",\"message\":")
      putString(line, into: batch)
      batch.put(UInt8(ascii: "}"))
      batched += 1
      if batched == Self.batchSize { endBatch() }
    case .azure:
      batch.reserve(2 * line.count + 512)
      batch.put(batched == 0 ? UInt8(ascii: "[") : UInt8(ascii: ","))
      batch.put("{\"time\":\"")
      putNanos(time, into: batch)
      batch.put(
        "\",\"resourceId\":\"/SUBSCRIPTIONS/0000/RESOURCEGROUPS/SHOP/PROVIDERS/MICROSOFT.WEB/SITES/SHOP\",\"category\":\"AppServiceConsoleLogs\",\"operationName\":\"Microsoft.Web/sites/log\",\"properties\":"
      )
      if isObject { batch.put(line) } else { putString(line, into: batch) }
      batch.put(UInt8(ascii: "}"))
      batched += 1
      if batched == Self.batchSize { endBatch() }
    case .elasticsearch:
      if wrapped % 97 == 0 {
        out.put("{\"delete\":{\"_index\":\"shop\",\"_id\":\"gone-")
        out.putInt(Int64(wrapped))
        out.put("\"}}\n")
      }
      out.put("{\"index\":{\"_index\":\"shop\",\"_id\":\"")
      out.putInt(Int64(wrapped))
      out.put("\"}}\n")
      out.put(line)
      out.put(UInt8(ascii: "\n"))
    }
  }

  /// Called when a file starts: CloudWatch subscriptions begin with a control message.
  mutating func startFile(time: Int64) {
    guard format == .cloudwatch else { return }
    out.reserve(512)
    out.put(
      "{\"messageType\":\"CONTROL_MESSAGE\",\"owner\":\"CloudwatchLogs\",\"logGroup\":\"\",\"logStream\":\"\",\"subscriptionFilters\":[],\"logEvents\":[{\"id\":\"\",\"timestamp\":"
    )
    out.putInt(time)
    out.put(",\"message\":\"CWL CONTROL MESSAGE: Checking health of destination Firehose.\"}]}\n")
  }

  /// Called before a file is closed: the open batch becomes a line of it.
  mutating func endFile() {
    if batched > 0 { endBatch() }
  }

  private mutating func endBatch() {
    out.reserve(batch.count + 256)
    switch format {
    case .cloudwatch:
      out.put(
        "{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"123456789012\",\"logGroup\":\"/shop/app\",\"logStream\":\"shop-1\",\"subscriptionFilters\":[\"feedbackd\"],\"logEvents\":"
      )
      out.put(batch.bytes)
      out.put("]}\n")
    default:
      out.put("{\"records\":")
      out.put(batch.bytes)
      out.put("]}\n")
    }
    batch.count = 0
    batched = 0
  }

  private mutating func docker(_ part: UnsafeRawBufferPointer, time: Int64, stream: StaticString, last: Bool) {
    out.put("{\"log\":")
    putString(part, into: out, newline: last)
    out.put(",\"stream\":\"")
    out.put(stream)
    out.put("\",\"time\":\"")
    putNanos(time, into: out)
    out.put("\"}\n")
  }

  private mutating func cri(_ part: UnsafeRawBufferPointer, time: Int64, stream: StaticString, tag: StaticString) {
    putNanos(time, into: out)
    out.put(UInt8(ascii: " "))
    out.put(stream)
    out.put(UInt8(ascii: " "))
    out.put(tag)
    out.put(UInt8(ascii: " "))
    out.put(part)
    out.put(UInt8(ascii: "\n"))
  }

  /// RFC 3339 with nanoseconds, as Docker and containerd write it.
  private mutating func putNanos(_ ms: Int64, into buffer: ByteBuffer) {
    buffer.reserve(40)
    days.putTime(ms, into: buffer, offsetStyle: false)
    buffer.count -= 1
    buffer.put("000000Z")
  }

  /// A JSON string literal of `text` (and an escaped newline at its end with `newline`).
  private func putString(_ text: UnsafeRawBufferPointer, into buffer: ByteBuffer, newline: Bool = false) {
    buffer.reserve(6 * text.count + 8)
    buffer.put(UInt8(ascii: "\""))
    let hex: StaticString = "0123456789abcdef"
    for byte in text {
      switch byte {
      case UInt8(ascii: "\""), UInt8(ascii: "\\"):
        buffer.put(UInt8(ascii: "\\"))
        buffer.put(byte)
      case 0..<0x20:
        buffer.put("\\u00")
        buffer.put(hex.utf8Start[Int(byte >> 4)])
        buffer.put(hex.utf8Start[Int(byte & 0xF)])
      default:
        buffer.put(byte)
      }
    }
    if newline { buffer.put("\\n") }
    buffer.put(UInt8(ascii: "\""))
  }
}
