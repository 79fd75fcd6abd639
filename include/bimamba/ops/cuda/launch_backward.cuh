// Shared pieces of the Cuda backward kernels (ops/cuda/*_backward.cuh), the device side of
// ops/host/backward_common.hpp:
//   put_grad(g, v, mode)     g = v (Overwrite) or g += v (Accumulate), v a double rounded once to float
//   dsigmoid / dsilu_grad    sigmoid(x) and silu'(x) = s (1 + x (1 - s)) in double, as the host's
//   silu_grad_float          the same silu' in float (kernels bound by memory, whose double exp would cost more
//                            than their loads: ~1e-7 relative against the double form)
//   zero_grad(ctx, g)        g = 0 under Overwrite (scatter-style backward passes then only add)
//   gather_to_host(ctx, v)   the elements of a device view of any strides, row-major, on the host (packed by a
//                            kernel into workspace scratch first: copy() needs contiguous views across backends,
//                            and a Batch's targets() / inputs() are column ranges); synchronizes the stream
// Reductions over tokens are deterministic double sums: column_reduce (ops/cuda/column_reduce.cuh) for the
// weight gradients, a fixed slab order independent of the GPU; no backward kernel uses atomics.
#pragma once

#include <cstdint>
#include <vector>

#include "../../core/workspace.hpp"
#include "../../train/gradient_mode.hpp"
#include "../common.hpp"
#include "launch.cuh"

namespace bimamba::detail::gpu {

__device__ inline void put_grad(float& g, double v, GradientMode mode) {
  g = mode == GradientMode::Overwrite ? float(v) : float(double(g) + v);
}

__device__ inline double dsigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
__device__ inline double dsilu_grad(double x) {
  const double s = dsigmoid(x);
  return s * (1.0 + x * (1.0 - s));
}
__device__ inline float silu_grad_float(float x) {
  const float s = 1.0f / (1.0f + expf(-x));
  return s * (1.0f + x * (1.0f - s));
}

// Threads per block for n items of a block that strides over them: a multiple of 32 in [32, kThreads]. At most
// kThreads (256) so that a kernel of up to 255 registers per thread still launches (65536 registers per block;
// the SSD backward's head kernel uses ~165 on sm_80), with __launch_bounds__(kThreads) on such kernels.
inline int threads_for(int64_t n) {
  return int(std::min<int64_t>(kThreads, std::max<int64_t>(32, (n + 31) / 32 * 32)));
}

template <class T>
__global__ void zero_2d_kernel(TensorView<T, 2, Cuda> g) {
  const int64_t cols = g.size(1), n = g.size(0) * cols;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x)
    g(k / cols, k % cols) = T(0);
}

// dst[i] = src's i-th element in row-major order.
template <class T, int Rank>
__global__ void pack_kernel(TensorView<const T, Rank, Cuda> src, T* dst) {
  const int64_t n = src.numel();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rest = i, offset = 0;
    for (int d = Rank - 1; d >= 0; --d) {
      offset += (rest % src.size(d)) * src.stride(d);
      rest /= src.size(d);
    }
    dst[i] = src.data()[offset];
  }
}

}  // namespace bimamba::detail::gpu

namespace bimamba::detail {

template <class T, int Rank>
std::vector<T> gather_to_host(Context<Cuda>& ctx, TensorView<const T, Rank, Cuda> src) {
  const int64_t n = src.numel();
  std::vector<T> host(static_cast<size_t>(n));
  if (n == 0) return host;
  WorkspaceScope<Cuda> scope(ctx.workspace());
  T* packed = ctx.workspace().take<T>(size_t(n));
  gpu::pack_kernel<T, Rank><<<gpu::grid_for(n), gpu::kThreads, 0, ctx.stream()>>>(src, packed);
  gpu::check_launch();
  BIMAMBA_CUDA_CHECK(cudaMemcpyAsync(host.data(), packed, size_t(n) * sizeof(T), cudaMemcpyDeviceToHost, ctx.stream()));
  BIMAMBA_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  return host;
}

// g = 0 when mode is Overwrite and g is present (any strides).
inline void zero_grad(Context<Cuda>& ctx, TensorView<float, 2, Cuda> g, GradientMode mode) {
  if (mode == GradientMode::Accumulate || !present(g) || g.numel() == 0) return;
  gpu::zero_2d_kernel<float><<<gpu::grid_for(g.numel()), gpu::kThreads, 0, ctx.stream()>>>(g);
  gpu::check_launch();
}

}  // namespace bimamba::detail
