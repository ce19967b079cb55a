import CZlib

/// Reads one gzip member header (RFC 1952 §2.3) from input that may arrive in pieces of any
/// size, down to a byte at a time.
///
/// The inflater parses headers itself and hands ISA-L only the deflate data and the trailer:
/// ISA-L's own header parsing (2.30) rejects a valid header CRC (FHCRC) when the header comes
/// split across calls, and waits for a whole header before rejecting bytes that are not gzip.
struct GzipHeaderParser {
  enum Outcome: Equatable {
    /// The input was used up inside the header.
    case needMore
    /// The header ended; the deflate data starts right after the consumed bytes.
    case done
    case corrupt(String)
  }

  /// The header's parts in order; all but `fixed` and `done` are present only when flagged.
  private enum Phase: Equatable {
    case fixed
    case extraLength
    case extra(remaining: Int)
    case name
    case comment
    case headerCRC
    case done
  }

  private static let fhcrc: UInt8 = 0x02
  private static let fextra: UInt8 = 0x04
  private static let fname: UInt8 = 0x08
  private static let fcomment: UInt8 = 0x10
  private static let reservedFlags: UInt8 = 0xE0

  private var phase = Phase.fixed
  /// Bytes read of the current fixed-size part (the 10-byte start, XLEN, the header CRC).
  private var count = 0
  /// The low byte of XLEN or of the stored header CRC.
  private var low: UInt8 = 0
  private var flags: UInt8 = 0
  /// CRC-32 of the header bytes before the header CRC.
  private var crc: uLong = crc32(0, nil, 0)

  /// Consumes header bytes from the front of `input`: how many, and whether the header ended.
  mutating func consume(_ input: UnsafeRawBufferPointer) -> (consumed: Int, outcome: Outcome) {
    var i = 0
    while i < input.count && phase != .done {
      let start = i
      switch phase {
      case .fixed:
        let byte = input[i]
        i += 1
        // Magic, method and flags are checked as they arrive, as zlib does.
        switch count {
        case 0 where byte != 0x1f, 1 where byte != 0x8b:
          return (i, .corrupt("not a gzip member (bad magic, or garbage after the last member)"))
        case 2 where byte != 8:
          return (i, .corrupt("unknown compression method \(byte)"))
        case 3 where byte & Self.reservedFlags != 0:
          return (i, .corrupt("unknown header flags set"))
        case 3:
          flags = byte
        default:
          break
        }
        count += 1
        if count == 10 { advance(from: 0) }
      case .extraLength:
        let byte = input[i]
        i += 1
        if let length = twoByteField(byte) {
          if length > 0 { phase = .extra(remaining: length) } else { advance(from: 1) }
        }
      case .extra(let remaining):
        let n = min(remaining, input.count - i)
        i += n
        if n == remaining { advance(from: 1) } else { phase = .extra(remaining: remaining - n) }
      case .name, .comment:
        let wasName = phase == .name
        while i < input.count && input[i] != 0 { i += 1 }
        if i < input.count {
          i += 1  // the terminating zero
          advance(from: wasName ? 2 : 3)
        }
      case .headerCRC:
        let byte = input[i]
        i += 1
        if let stored = twoByteField(byte) {
          guard stored == crc & 0xFFFF else { return (i, .corrupt("header CRC mismatch")) }
          phase = .done
        }
        continue  // the header CRC does not cover itself
      case .done:
        break
      }
      let bytes = UnsafeRawBufferPointer(rebasing: input[start..<i])
      crc = crc32(crc, bytes.baseAddress?.assumingMemoryBound(to: Bytef.self), uInt(bytes.count))
    }
    return (i, phase == .done ? .done : .needMore)
  }

  /// Takes the next byte of a two-byte little-endian field (XLEN, the header CRC): the field's
  /// value once both bytes are in, nil after the first.
  private mutating func twoByteField(_ byte: UInt8) -> Int? {
    count += 1
    if count == 1 {
      low = byte
      return nil
    }
    return Int(low) | Int(byte) << 8
  }

  /// Moves to the first flagged part at or after `index` in (extra, name, comment, header CRC).
  private mutating func advance(from index: Int) {
    count = 0
    let parts: [(UInt8, Phase)] = [
      (Self.fextra, .extraLength), (Self.fname, .name), (Self.fcomment, .comment), (Self.fhcrc, .headerCRC),
    ]
    for (flag, part) in parts[index...] where flags & flag != 0 {
      phase = part
      return
    }
    phase = .done
  }
}
