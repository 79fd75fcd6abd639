// Raw memory per backend. MemoryOps<Backend> allocates, frees, zeroes and copies bytes:
//   allocate(bytes) -> 64-byte aligned pointer (never null; bytes == 0 gives a valid unique pointer),
//   deallocate(p), fill_zero(p, bytes), copy_to_host / copy_from_host.
// Host memory comes from host_allocate (core/host_block_cache.hpp: large freed blocks are cached for reuse).
// MemoryOps<Cuda> lives in core/cuda_runtime.hpp (plain C++ may use it when linked with bimamba::cuda).
#pragma once

#include <cstddef>
#include <cstring>

#include "backend.hpp"
#include "error.hpp"
#include "host_block_cache.hpp"

namespace bimamba {

template <class Backend>
struct MemoryOps;

template <>
struct MemoryOps<Host> {
  static void* allocate(size_t bytes) { return host_allocate(bytes); }
  static void deallocate(void* p) { host_deallocate(p); }
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
