// Cuda dense GEMV / small GEMM for the LM head (see ops/dense_gemv.hpp): y (T, V) = x (T, D) W^T.
//
// fp32 W: one cuBLAS SGEMM (ops/cuda/linear.cuh).
// bf16 W: the tensor cores multiply bf16 by bf16 only, so x is split into two bf16 terms,
//   x = x_hi + x_lo + r,  x_hi = bf16(x), x_lo = bf16(x - x_hi),  |r| <= 2^-17 |x|  (8 + 8 mantissa bits),
// and one cublasGemmEx (bf16 inputs, fp32 output and accumulation) computes W [x_hi; x_lo]^T into (2T, V)
// scratch; a last kernel adds the two halves. Every product of two bf16 values is exact in fp32, so the
// result is the fp32 GEMV of the bf16 weights up to the 2^-17 relative error of x: W streams from memory
// once for all 2T columns, half the bytes of the fp32 head.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <algorithm>

#include "../../core/dtype.hpp"
#include "../../core/workspace.hpp"
#include "../common.hpp"
#include "launch.cuh"
#include "linear.cuh"

namespace bimamba::detail {

namespace gpu {
// xs (2T, D): row t = bf16(x_t), row T + t = bf16(x_t - bf16(x_t)).
template <class T>
__global__ void split_bf16_kernel(TensorView<const T, 2, Cuda> x, __nv_bfloat16* xs) {
  const int64_t tokens = x.size(0), D = x.size(1), n = tokens * D;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = k / D, d = k % D;
    const float v = x(t, d);
    const __nv_bfloat16 hi = __float2bfloat16_rn(v);
    xs[t * D + d] = hi;
    xs[(tokens + t) * D + d] = __float2bfloat16_rn(v - __bfloat162float(hi));
  }
}

// y (T, V) = parts[t] + parts[T + t], parts (2T, V).
template <class T>
__global__ void add_halves_kernel(const T* parts, TensorView<T, 2, Cuda> y) {
  const int64_t tokens = y.size(0), V = y.size(1), n = tokens * V;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x)
    y(k / V, k % V) = parts[k] + parts[tokens * V + k];
}
}  // namespace gpu

inline void dense_gemv_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> x,  // (T, D)
                            TensorView<const float, 2, Cuda> weight,                 // (V, D)
                            TensorView<float, 2, Cuda> y) {                          // (T, V)
  linear_impl(ctx, x, weight, {}, y);
}

inline void dense_gemv_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> x,  // (T, D)
                            TensorView<const bfloat16, 2, Cuda> weight,              // (V, D)
                            TensorView<float, 2, Cuda> y) {                          // (T, V)
  const int64_t T = x.size(0), D = x.size(1), V = weight.size(0);
  BIMAMBA_CHECK(2 * T < (int64_t(1) << 31) && D < (int64_t(1) << 31) && V < (int64_t(1) << 31),
                "dense_gemv: dimensions beyond 2^31 are not supported by cuBLAS");
  static_assert(sizeof(bfloat16) == sizeof(__nv_bfloat16), "bfloat16 is the 16 bits of __nv_bfloat16");
  WorkspaceScope<Cuda> scope(ctx.workspace());
  auto* xs = ctx.workspace().take<__nv_bfloat16>(size_t(2 * T * D));  // (2T, D)
  float* parts = ctx.workspace().take<float>(size_t(2 * T * V));      // (2T, V)
  gpu::split_bf16_kernel<float><<<gpu::grid_for(T * D), gpu::kThreads, 0, ctx.stream()>>>(x, xs);
  gpu::check_launch();
  const float one = 1.0f, zero = 0.0f;
  const int ldw = int(std::max(weight.stride(0), D));
  BIMAMBA_CUBLAS_CHECK(cublasSetStream(ctx.cublas(), ctx.stream()));
  BIMAMBA_CUBLAS_CHECK(cublasGemmEx(ctx.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, int(V), int(2 * T), int(D), &one,
                                    weight.data(), CUDA_R_16BF, ldw, xs, CUDA_R_16BF, int(D), &zero, parts,
                                    CUDA_R_32F, int(V), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  gpu::add_halves_kernel<float><<<gpu::grid_for(T * V), gpu::kThreads, 0, ctx.stream()>>>(parts, y);
  gpu::check_launch();
}

}  // namespace bimamba::detail
