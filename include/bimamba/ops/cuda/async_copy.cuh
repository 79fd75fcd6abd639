// Asynchronous 4- and 16-byte copies global -> shared memory (sm_80 cp.async): a thread issues copies, goes on
// with other work and waits for all of them later, so the copies' latency overlaps that work and no register
// holds the values in between.
//
//   async_copy_floats(dst, src, n);   // every thread of the block takes a share (strided by blockDim.x)
//   ... other work ...
//   async_copy_wait_all();            // this thread's copies have landed
//   __syncthreads();                  // ... and every thread's are visible to the block
//
// Contracts: src 4-byte aligned global memory that nothing writes until the wait (async_copy_float4: src and dst
// 16-byte aligned), dst shared memory. Before sm_80 (and in builds without device code paths for it) the copy is
// an ordinary load and store: the same result, without the overlap.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "bulk_copy.cuh"

namespace bimamba::detail::gpu {

__device__ inline void async_copy_float(float* dst, const float* src) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(shared_address(dst)), "l"(src) : "memory");
#else
  *dst = *src;
#endif
}

// Four floats, both addresses 16-byte aligned (one 16-byte copy, through L2 only).
__device__ inline void async_copy_float4(float* dst, const float* src) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(shared_address(dst)), "l"(src) : "memory");
#else
  *reinterpret_cast<float4*>(dst) = *reinterpret_cast<const float4*>(src);
#endif
}

// dst[i] = src[i] for i < n, shared among the threads of the block.
__device__ inline void async_copy_floats(float* dst, const float* src, int n) {
  for (int i = int(threadIdx.x); i < n; i += int(blockDim.x)) async_copy_float(dst + i, src + i);
}

// Waits until every copy this thread issued has landed in shared memory.
__device__ inline void async_copy_wait_all() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#endif
}

}  // namespace bimamba::detail::gpu
