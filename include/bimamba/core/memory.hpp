// Raw memory per backend. MemoryOps<Backend> allocates, frees, zeroes and copies bytes:
//   allocate(bytes) -> 64-byte aligned pointer (never null; bytes == 0 gives a valid unique pointer),
//   deallocate(p), fill_zero(p, bytes), copy_to_host / copy_from_host.
// MemoryOps<Cuda> lives in core/cuda_runtime.hpp (plain C++ may use it when linked with bimamba::cuda).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

#include "backend.hpp"
#include "error.hpp"

namespace bimamba {

inline constexpr size_t kAlignment = 64;  // a cache line; also enough for any SIMD load

template <class Backend>
struct MemoryOps;

template <>
struct MemoryOps<Host> {
  static void* allocate(size_t bytes) {
    const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    void* p = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
    if (!p) throw std::bad_alloc();
    return p;
  }
  static void deallocate(void* p) { std::free(p); }
  static void fill_zero(void* p, size_t bytes) {
    if (bytes) std::memset(p, 0, bytes);
  }
  static void copy_to_host(void* host_dst, const void* src, size_t bytes) {
    if (bytes) std::memcpy(host_dst, src, bytes);
  }
  static void copy_from_host(void* dst, const void* host_src, size_t bytes) {
    if (bytes) std::memcpy(dst, host_src, bytes);
  }
  static void copy_within(void* dst, const void* src, size_t bytes) {
    if (bytes) std::memmove(dst, src, bytes);
  }
};

}  // namespace bimamba
