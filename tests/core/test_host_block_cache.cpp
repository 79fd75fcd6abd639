// The host block cache: size classes, reuse of freed large blocks, the limit, release, and that small and
// zero-byte requests still get aligned unique memory.
#include <bimamba/core/memory.hpp>
#include <bimamba/tensor/tensor.hpp>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

namespace bimamba {
namespace {

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kAlignment == 0; }

TEST(HostBlockCache, SizeClassesCoverTheRequestWithAtMostAnEighthSlack) {
  using detail::host_block_size_class;
  EXPECT_EQ(host_block_size_class(0), 0u);
  EXPECT_EQ(host_block_size_class(1), 64u);
  EXPECT_EQ(host_block_size_class(65), 128u);
  const size_t mib = size_t(1) << 20;
  EXPECT_EQ(host_block_size_class(mib), mib);
  EXPECT_EQ(host_block_size_class(mib + 1), mib + mib / 8);
  EXPECT_EQ(host_block_size_class(2 * mib - 1), 2 * mib);
  for (size_t bytes = mib; bytes < (size_t(1) << 34); bytes = bytes * 5 / 3 + 12345) {
    const size_t size = host_block_size_class(bytes);
    EXPECT_GE(size, bytes);
    EXPECT_LE(size - bytes, bytes / 8) << bytes;  // the slack bound the header promises
    EXPECT_EQ(size % kAlignment, 0u) << bytes;
  }
}

TEST(HostBlockCache, SmallAndEmptyRequestsAreAlignedAndDistinct) {
  void* a = MemoryOps<Host>::allocate(0);
  void* b = MemoryOps<Host>::allocate(0);
  void* c = MemoryOps<Host>::allocate(100);
  EXPECT_TRUE(aligned(a) && aligned(b) && aligned(c));
  EXPECT_NE(a, b);
  std::memset(c, 1, 100);
  MemoryOps<Host>::deallocate(a);
  MemoryOps<Host>::deallocate(b);
  MemoryOps<Host>::deallocate(c);
  MemoryOps<Host>::deallocate(nullptr);  // a no-op, as free(nullptr)
}

TEST(HostBlockCache, AFreedLargeBlockServesTheNextRequestOfItsClass) {
  if (!detail::kHostBlockCacheEnabled) GTEST_SKIP() << "AddressSanitizer build: the cache is off";
  release_host_block_cache();
  const size_t bytes = (size_t(3) << 20) + 17;
  void* first = MemoryOps<Host>::allocate(bytes);
  ASSERT_TRUE(aligned(first));
  std::memset(first, 7, bytes);  // the whole request is usable
  MemoryOps<Host>::deallocate(first);
  EXPECT_GE(host_block_cache_stats().cached_bytes, int64_t(bytes));
  const int64_t hits = host_block_cache_stats().hits;
  void* second = MemoryOps<Host>::allocate(bytes + 1000);  // the same size class
  EXPECT_EQ(second, first);
  EXPECT_EQ(host_block_cache_stats().hits, hits + 1);
  EXPECT_EQ(host_block_cache_stats().cached_bytes, 0);
  MemoryOps<Host>::deallocate(second);
  release_host_block_cache();
  EXPECT_EQ(host_block_cache_stats().cached_bytes, 0);
}

TEST(HostBlockCache, TensorsReuseTheBlockAndAreStillZeroFilled) {
  if (!detail::kHostBlockCacheEnabled) GTEST_SKIP() << "AddressSanitizer build: the cache is off";
  release_host_block_cache();
  const float* first = nullptr;
  {
    Tensor<float, 2, Host> t({512, 1024});  // 2 MiB
    t.view()(3, 5) = 42.0f;
    first = t.data();
  }
  Tensor<float, 2, Host> again({512, 1024});
  EXPECT_EQ(again.data(), first);
  EXPECT_EQ(again(3, 5), 0.0f);  // a reused block is zero-filled like a fresh one
  release_host_block_cache();
}

TEST(HostBlockCache, TheLimitBoundsWhatIsKept) {
  if (!detail::kHostBlockCacheEnabled) GTEST_SKIP() << "AddressSanitizer build: the cache is off";
  release_host_block_cache();
  const int64_t default_limit = host_block_cache_stats().limit_bytes;
  const size_t mib = size_t(1) << 20;
  set_host_block_cache_limit(5 * mib);
  void* a = MemoryOps<Host>::allocate(4 * mib);
  void* b = MemoryOps<Host>::allocate(4 * mib);
  MemoryOps<Host>::deallocate(a);  // kept: 4 MiB <= 5 MiB
  MemoryOps<Host>::deallocate(b);  // over the limit: back to the system
  EXPECT_EQ(host_block_cache_stats().cached_bytes, int64_t(4 * mib));
  set_host_block_cache_limit(mib);  // lowering the limit frees the excess
  EXPECT_EQ(host_block_cache_stats().cached_bytes, 0);
  set_host_block_cache_limit(size_t(default_limit));
}

}  // namespace
}  // namespace bimamba
