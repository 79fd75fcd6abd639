// Cuda dense linear layer (see ops/linear.hpp): y = x W^T (+ bias) with one GEMM (ops/cuda/gemm.cuh, in the
// context's GemmPrecision, fp32 unless set). Row-major y (T, out) is column-major y^T (out, T):
//   y^T = W x^T  ->  gemm(OP_T, OP_N, m = out, n = T, k = in, W (ld W.stride(0)), x (ld x.stride(0)), y)
// The bias is first broadcast into y, then the GEMM accumulates with beta = 1.
#pragma once

#include <algorithm>

#include "../common.hpp"
#include "gemm.cuh"
#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
// y[t, i] = bias[i] (or 0 without bias).
template <class T>
__global__ void broadcast_rows_kernel(TensorView<const T, 1, Cuda> bias, TensorView<T, 2, Cuda> y) {
  const int64_t out = y.size(1), n = y.size(0) * out;
  const bool has_bias = present(bias);
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x)
    y(k / out, k % out) = has_bias ? bias(k % out) : T(0);
}
}  // namespace gpu

inline void linear_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> x, TensorView<const float, 2, Cuda> weight,
                        TensorView<const float, 1, Cuda> bias, TensorView<float, 2, Cuda> y) {
  const int64_t T = x.size(0), in = x.size(1), out = weight.size(0);
  if (y.numel() == 0) return;
  const bool accumulate = present(bias) || in == 0;
  if (accumulate) {
    gpu::broadcast_rows_kernel<float><<<gpu::grid_for(y.numel()), gpu::kThreads, 0, ctx.stream()>>>(bias, y);
    gpu::check_launch();
  }
  if (in == 0) return;
  // Leading dimensions: a stride only matters when its dimension has more than one index.
  gemm(ctx, CUBLAS_OP_T, CUBLAS_OP_N, out, T, in, weight.data(), std::max(weight.stride(0), in), x.data(),
       std::max(x.stride(0), in), accumulate ? 1.0f : 0.0f, y.data(), std::max(y.stride(0), out));
}

}  // namespace bimamba::detail
