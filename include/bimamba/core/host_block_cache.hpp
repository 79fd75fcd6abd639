// Host memory with a cache of freed large blocks, the host counterpart of the device's stream-ordered pool.
//
// Why: a training step creates and drops the same large tensors every step (logits and their gradient are
// B x L x vocab floats: 103 MB for 4 x 128 x 50280). glibc serves blocks above 32 MiB with mmap and returns
// them with munmap, so every step faulted in and zeroed ~400 MB of fresh pages in the kernel: a third of the
// CPU time of a small-model step. Freed blocks of at least kMinCachedBytes are kept here, keyed by size class,
// and handed out again to the next request of that class.
//
// Contracts:
//   host_allocate(bytes)   64-byte aligned, never null (bytes == 0 gives a valid unique pointer); throws
//                          std::bad_alloc when the system has no memory left.
//   host_deallocate(p)     p from host_allocate (or null). Blocks of a cached class go to the cache while it
//                          holds at most the limit; the rest go back to the system.
//   Size classes: below kMinCachedBytes, the size rounded up to 64 bytes (never cached); from it on, the size
//   rounded up to an eighth of its power of two (at most 12.5% slack), so steps whose shapes vary a little
//   still reuse blocks.
//   set_host_block_cache_limit(bytes)  the most the cache holds (default 1 GiB); lowering it frees the excess.
//   release_host_block_cache()         frees every cached block.
//   host_block_cache_stats()           cached bytes, the limit, and how many cacheable requests were hits.
// Thread-safe (one mutex, taken only for cacheable sizes). Builds with AddressSanitizer cache nothing, so a
// use after free is still reported.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace bimamba {

inline constexpr size_t kAlignment = 64;  // a cache line; also enough for any SIMD load

struct HostBlockCacheStats {
  int64_t cached_bytes = 0;  // bytes held in the cache now
  int64_t limit_bytes = 0;   // set_host_block_cache_limit
  int64_t hits = 0;          // cacheable requests served from the cache
  int64_t misses = 0;        // cacheable requests served by the system
};

namespace detail {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kHostBlockCacheEnabled = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kHostBlockCacheEnabled = false;
#else
inline constexpr bool kHostBlockCacheEnabled = true;
#endif
#else
inline constexpr bool kHostBlockCacheEnabled = true;
#endif

inline constexpr size_t kMinCachedBytes = size_t(1) << 20;

// The size class of a request: the bytes its block really has.
inline size_t host_block_size_class(size_t bytes) {
  if (bytes < kMinCachedBytes) return (bytes + kAlignment - 1) / kAlignment * kAlignment;
  size_t power = kMinCachedBytes;
  while (power <= bytes / 2) power *= 2;  // the largest power of two <= bytes
  const size_t step = power / 8;
  return (bytes + step - 1) / step * step;
}

// Every block carries a 64-byte header in front of the user pointer that records its size class.
class HostBlockCache {
 public:
  static HostBlockCache& instance() {
    static HostBlockCache* cache = new HostBlockCache;  // never destroyed: tensors in static storage free late
    return *cache;
  }

  void* allocate(size_t bytes) {
    const size_t size = host_block_size_class(bytes);
    if (kHostBlockCacheEnabled && size >= kMinCachedBytes) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= size;
        ++hits_;
        return p;
      }
      ++misses_;
    }
    auto* base = static_cast<unsigned char*>(std::aligned_alloc(kAlignment, kAlignment + size));
    if (!base) {
      release();  // the cache may hold what the system lacks: try once more without it
      base = static_cast<unsigned char*>(std::aligned_alloc(kAlignment, kAlignment + size));
      if (!base) throw std::bad_alloc();
    }
    *reinterpret_cast<size_t*>(base) = size;
    return base + kAlignment;
  }

  void deallocate(void* p) {
    if (!p) return;
    auto* base = static_cast<unsigned char*>(p) - kAlignment;
    const size_t size = *reinterpret_cast<const size_t*>(base);
    if (kHostBlockCacheEnabled && size >= kMinCachedBytes) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_bytes_ + size <= limit_) {
        free_[size].push_back(p);
        cached_bytes_ += size;
        return;
      }
    }
    std::free(base);
  }

  void set_limit(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = bytes;
    trim_to_limit_locked();
  }

  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    const size_t limit = limit_;
    limit_ = 0;
    trim_to_limit_locked();
    limit_ = limit;
  }

  HostBlockCacheStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {int64_t(cached_bytes_), int64_t(limit_), hits_, misses_};
  }

 private:
  HostBlockCache() = default;

  void trim_to_limit_locked() {
    for (auto& [size, blocks] : free_) {
      while (cached_bytes_ > limit_ && !blocks.empty()) {
        std::free(static_cast<unsigned char*>(blocks.back()) - kAlignment);
        blocks.pop_back();
        cached_bytes_ -= size;
      }
    }
  }

  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // size class -> cached user pointers
  size_t cached_bytes_ = 0;
  size_t limit_ = size_t(1) << 30;
  int64_t hits_ = 0;
  int64_t misses_ = 0;
};

}  // namespace detail

inline void* host_allocate(size_t bytes) { return detail::HostBlockCache::instance().allocate(bytes); }
inline void host_deallocate(void* p) { detail::HostBlockCache::instance().deallocate(p); }
inline void set_host_block_cache_limit(size_t bytes) { detail::HostBlockCache::instance().set_limit(bytes); }
inline void release_host_block_cache() { detail::HostBlockCache::instance().release(); }
inline HostBlockCacheStats host_block_cache_stats() { return detail::HostBlockCache::instance().stats(); }

}  // namespace bimamba
