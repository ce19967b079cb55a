/// A growable byte buffer written through raw pointers: the segment buffers and the batches
/// handed to the writer thread. Writers `reserve` room for a bound of what they write, store
/// through the pointer and `commit` the new end: no per-byte bounds or uniqueness checks, and
/// the storage is kept (and reused) until `release`.
final class ByteBuffer {
  private(set) var base: UnsafeMutablePointer<UInt8>
  private(set) var count = 0
  private(set) var capacity: Int

  init(capacity: Int = 64) {
    self.capacity = Swift.max(capacity, 64)
    base = .allocate(capacity: self.capacity)
  }

  deinit { base.deallocate() }

  var isEmpty: Bool { count == 0 }

  var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

  /// The end of the bytes, with room for at least `extra` more after it.
  @inline(__always) func reserve(_ extra: Int) -> UnsafeMutablePointer<UInt8> {
    if capacity &- count < extra { grow(count + extra) }
    return base + count
  }

  /// Makes `end` (inside the room of the last `reserve`) the end of the bytes.
  @inline(__always) func commit(_ end: UnsafeMutablePointer<UInt8>) {
    count = end - base
  }

  func append(_ bytes: UnsafeRawBufferPointer) {
    guard let source = bytes.baseAddress, bytes.count > 0 else { return }
    let p = reserve(bytes.count)
    UnsafeMutableRawPointer(p).copyMemory(from: source, byteCount: bytes.count)
    count += bytes.count
  }

  func append(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { append($0) }
  }

  func removeAll() { count = 0 }

  /// Empties the buffer and lets its storage go (a small one is kept).
  func release() {
    count = 0
    guard capacity > 64 else { return }
    base.deallocate()
    capacity = 64
    base = .allocate(capacity: capacity)
  }

  @inline(never) private func grow(_ needed: Int) {
    let newCapacity = Swift.max(capacity * 2, needed)
    let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
    newBase.initialize(from: base, count: count)
    base.deallocate()
    base = newBase
    capacity = newCapacity
  }

  /// Exchanges storage and bytes with `other` (a sealed segment's grown buffer goes to the next).
  func swapStorage(with other: ByteBuffer) {
    swap(&base, &other.base)
    swap(&count, &other.count)
    swap(&capacity, &other.capacity)
  }

  /// The bytes as an array (tests).
  var array: [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }
}

/// Copies `count` bytes; short runs (templates, column values) without a call to `memcpy`.
@inline(__always)
func copyBytes(_ source: UnsafeRawPointer, _ count: Int, to target: UnsafeMutablePointer<UInt8>) {
  let d = UnsafeMutableRawPointer(target)
  if count >= 8 {
    if count <= 16 {
      // Two overlapping words.
      d.storeBytes(of: source.loadUnaligned(as: UInt64.self), as: UInt64.self)
      d.storeBytes(
        of: source.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self), toByteOffset: count - 8, as: UInt64.self)
    } else if count <= 32 {
      // Two overlapping 16-byte blocks: templates such as `,"predicted_at":"` and timestamps.
      d.storeBytes(of: source.loadUnaligned(as: SIMD16<UInt8>.self), as: SIMD16<UInt8>.self)
      d.storeBytes(
        of: source.loadUnaligned(fromByteOffset: count - 16, as: SIMD16<UInt8>.self), toByteOffset: count - 16,
        as: SIMD16<UInt8>.self)
    } else {
      d.copyMemory(from: source, byteCount: count)
    }
  } else if count >= 4 {
    d.storeBytes(of: source.loadUnaligned(as: UInt32.self), as: UInt32.self)
    d.storeBytes(
      of: source.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self), toByteOffset: count - 4, as: UInt32.self)
  } else if count > 0 {
    let s = source.assumingMemoryBound(to: UInt8.self)
    target[0] = s[0]
    target[count >> 1] = s[count >> 1]
    target[count - 1] = s[count - 1]
  }
}
