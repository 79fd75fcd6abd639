// Launch helpers shared by the Cuda op kernels (ops/cuda/*.cuh): grid sizes for grid-stride loops, the launch
// error check, and warp / block sums (float or double). Kernels live in namespace detail::gpu (a namespace named `cuda`
// would shadow ::cuda::std) and are templates on their element type, so that a header included by several
// translation units of one program defines no duplicate host stubs.
//
// Contracts: every launcher runs on ctx.stream(), launches nothing for empty work (a zero-sized grid is an
// error in CUDA), and throws CudaError (core/cuda_runtime.hpp) when the launch itself fails. Kernels index in
// int64_t, so tensors of more than 2^31 elements are fine.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "../../core/cuda_runtime.hpp"

namespace bimamba::detail::gpu {

inline constexpr int kThreads = 256;  // block size of the element-wise and row kernels

// Blocks for a grid-stride loop over n items (capped: the loop covers the rest).
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  return unsigned(std::min<int64_t>((n + threads - 1) / threads, int64_t(1) << 16));
}

inline void check_launch() { BIMAMBA_CUDA_CHECK(cudaGetLastError()); }

// Whether a float view of any rank (a TensorView) can be read along its last dimension in aligned float4s: unit
// stride there, every other stride a multiple of 4 elements, the data 16-byte aligned. Its last extent must still be
// checked against the quads a kernel takes.
template <class T, int Rank, class Backend, template <class, int, class> class View>
inline bool float4_rows(const View<T, Rank, Backend>& v) {
  if (!std::is_same<std::remove_const_t<T>, float>::value || reinterpret_cast<uintptr_t>(v.data()) % 16 != 0)
    return false;
  for (int d = 0; d < Rank; ++d)
    if (d == Rank - 1 ? v.stride(d) != 1 && v.size(d) > 1 : v.stride(d) % 4 != 0) return false;
  return true;
}

// Threads for a kernel with one block per row of n elements: about 4 elements per thread (a multiple of 32,
// at most 1024), so a short row (the decode step's single token) is read in one round of independent loads
// instead of a sequential walk of 256 threads.
inline unsigned row_threads(int64_t n) {
  const int64_t t = ((n + 3) / 4 + 31) / 32 * 32;
  return unsigned(std::clamp<int64_t>(t, 32, 1024));
}

// Sum over the 32 lanes of a warp; every lane gets the total. T: float, or double for the backward kernels.
template <class T>
__device__ inline T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the total. Contains
// __syncthreads(): call it from all threads of the block. `scratch` holds 32 values of T in shared memory.
template <class T>
__device__ inline T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : T(0);
  return warp_sum(v);
}

// Programmatic dependent launch (sm_90; a no-op before): a kernel launched by launch_dependent() may start
// while the previous kernel of the stream still runs. Everything it does before wait_for_previous_kernel()
// may only read inputs that no earlier kernel of the stream writes (weights, or state that only this kernel
// touches); allow_next_kernel() lets the next dependent launch start early in turn.
__device__ inline void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ inline void allow_next_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// The compute capability major of `device` (the `major` that launch_dependent takes).
inline int compute_major(int device) {
  int major = 0;
  BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  return major;
}

// Launches kernel<<<grid, block, smem, ctx.stream()>>>(args...), as a programmatic dependent launch on
// devices of compute capability 9.0 or newer (`major`: the device's). Raises the kernel's dynamic shared
// memory limit when smem needs more than the default 48 KiB.
template <class... KernelArgs, class... Args>
void launch_dependent(cudaStream_t stream, int major, void (*kernel)(KernelArgs...), dim3 grid, dim3 block, int smem,
                      Args&&... args) {
  if (smem > (48 << 10))
    BIMAMBA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = size_t(smem);
  config.stream = stream;
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attribute;
  config.numAttrs = major >= 9 ? 1 : 0;
  BIMAMBA_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

}  // namespace bimamba::detail::gpu
