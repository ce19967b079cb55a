#ifndef FEEDBACKD_CPREFETCH_H
#define FEEDBACKD_CPREFETCH_H

/// Asks the CPU to start loading the cache line holding `address` for reading (it never
/// faults, whatever the address). Swift has no way to emit a prefetch instruction itself.
static inline void feedbackd_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

#endif
