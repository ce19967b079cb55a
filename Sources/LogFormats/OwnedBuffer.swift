/// Arrays copied into memory of their own, for tables read on every line through plain
/// pointers (borrowing an array for a closure, or reading a class's array property, retains
/// it). The owner frees each copy once, when it goes.
public enum OwnedBuffer {
  /// A copy of `array` (room for one element at least, so the address is never nil).
  public static func copy<T>(_ array: [T]) -> UnsafeBufferPointer<T> {
    let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: max(array.count, 1))
    _ = buffer.initialize(from: array)
    return UnsafeBufferPointer(start: buffer.baseAddress, count: array.count)
  }

  /// Frees a buffer `copy` made. Its elements are plain values: nothing to deinitialize.
  public static func free<T>(_ buffer: UnsafeBufferPointer<T>) {
    UnsafeMutableRawPointer(mutating: buffer.baseAddress!).deallocate()
  }

  /// Doubles the room of a growing buffer owned through a plain pointer: moves its `count`
  /// elements to memory for twice `capacity` and frees the old memory. (Called only when the
  /// buffer is full, so not worth inlining into the per-line code that appends.)
  public static func grow<T>(_ base: inout UnsafeMutablePointer<T>, count: Int, capacity: inout Int) {
    let grown = UnsafeMutablePointer<T>.allocate(capacity: 2 * capacity)
    grown.moveInitialize(from: base, count: count)
    base.deallocate()
    base = grown
    capacity *= 2
  }
}
