// Bulk copies global -> shared memory through the copy engine (sm_90 cp.async.bulk), completed on an mbarrier.
//
//   __shared__ uint64_t bar;
//   if (threadIdx.x == 0) { bulk_barrier_init(&bar); bulk_copy_to_shared(dst, src, bytes, &bar); }  // one thread
//   ... (every thread passes a __syncthreads() after the init before it waits) ...
//   bulk_copy_wait(&bar);                                                                            // any thread
//
// One arrival per barrier use (phase 0): bulk_copy_to_shared, or bulk_expect_bytes of the total and then one
// bulk_copy_part per piece. Contracts: src and dst 16-byte aligned, bytes a multiple of 16. The copy does not pass
// through the load/store units, so the loads a thread issues while it is in flight do not queue behind it. Before
// sm_90 (and in builds without device code for it, such as the CPU emulator's) a part is an ordinary copy by the
// calling thread, complete when it returns, and the barrier calls do nothing: the same result once the other
// threads pass a __syncthreads() after it, which every caller has before it reads the copy.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

namespace bimamba::detail::gpu {

__device__ inline uint32_t shared_address(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }

__device__ inline void bulk_barrier_init(uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(shared_address(bar)) : "memory");
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#else
  (void)bar;
#endif
}

// Orders earlier ordinary (generic-proxy) accesses to shared memory, the block's made visible to this thread by
// a __syncthreads(), before a following bulk copy into that memory (the async proxy): for a buffer refilled in a
// loop.
__device__ inline void bulk_copy_fence_shared() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// Arrives on `bar` expecting `bytes`, to be completed by the copies started after it (bulk_copy_part).
__device__ inline void bulk_expect_bytes(uint64_t* bar, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(shared_address(bar)), "r"(bytes)
               : "memory");
#else
  (void)bar, (void)bytes;
#endif
}

// Starts one copy that completes `bytes` of what the barrier's arrival expects.
__device__ inline void bulk_copy_part(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                   shared_address(dst)),
               "l"(src), "r"(bytes), "r"(shared_address(bar))
               : "memory");
#else
  (void)bar;
  memcpy(dst, src, bytes);
#endif
}

// Arrives on `bar` expecting `bytes`, then starts the copy that completes them.
__device__ inline void bulk_copy_to_shared(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  bulk_expect_bytes(bar, bytes);
  bulk_copy_part(dst, src, bytes, bar);
}

// Waits until the copy on `bar` (phase 0) has landed in shared memory.
__device__ inline void bulk_copy_wait(uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  uint32_t done = 0;
  while (!done) {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], 0;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(shared_address(bar))
        : "memory");
  }
#else
  (void)bar;
#endif
}

}  // namespace bimamba::detail::gpu
