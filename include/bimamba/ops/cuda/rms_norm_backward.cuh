// Cuda RMSNorm backward (see ops/rms_norm_backward.hpp), the host's math in the host's precision:
//   kernel 1, one block per row t (gpu::row_threads: about 4 elements a thread, the first kRowRegs of them kept in
//             registers and loaded before any store, as the forward): sum x^2 and sum_k w_k dy_k x_k in double
//             (tree sums), r_t = 1/sqrt(.), dx_j = r w_j dy_j - (r^3 / D) x_j dot; r_t stored to scratch (T floats,
//             ctx.workspace())
//   then dw_j = sum_t dy_tj x_tj r_t in double by column_reduce (ops/cuda/column_reduce.cuh).
#pragma once

#include "../../core/workspace.hpp"
#include "column_reduce.cuh"
#include "launch_backward.cuh"
#include "rms_norm.cuh"

namespace bimamba::detail {

namespace gpu {
template <class T>
__global__ void __launch_bounds__(1024)
    rms_norm_backward_rows_kernel(TensorView<const T, 2, Cuda> x, TensorView<const T, 1, Cuda> w, float eps,
                                  TensorView<const T, 2, Cuda> dy, TensorView<T, 2, Cuda> dx, float* r,
                                  GradientMode mode) {
  __shared__ double scratch[32];
  const int64_t t = blockIdx.x, D = x.size(1), step = blockDim.x;
  const bool has_dx = present(dx), accumulate = mode == GradientMode::Accumulate;
  float xv[kRowRegs], wv[kRowRegs], gv[kRowRegs], old[kRowRegs];
#pragma unroll
  for (int u = 0; u < kRowRegs; ++u) {
    const int64_t j = threadIdx.x + u * step;
    const bool in = j < D;
    xv[u] = in ? float(x(t, j)) : 0.0f;
    wv[u] = in && has_dx ? float(w(j)) : 0.0f;
    gv[u] = in && has_dx ? float(dy(t, j)) : 0.0f;
    old[u] = in && has_dx && accumulate ? float(dx(t, j)) : 0.0f;
  }
  double sum = 0, dot = 0;
#pragma unroll
  for (int u = 0; u < kRowRegs; ++u) {
    sum += double(xv[u]) * xv[u];
    dot += double(wv[u]) * gv[u] * xv[u];
  }
  for (int64_t j = threadIdx.x + kRowRegs * step; j < D; j += step) {
    sum += double(x(t, j)) * x(t, j);
    if (has_dx) dot += double(w(j)) * dy(t, j) * x(t, j);
  }
  sum = block_sum(sum, scratch);
  dot = block_sum(dot, scratch);
  const double rt = 1.0 / sqrt(sum / double(D) + eps);
  if (threadIdx.x == 0) r[t] = float(rt);
  if (!has_dx) return;
  const double c = rt * rt * rt * dot / double(D);
#pragma unroll
  for (int u = 0; u < kRowRegs; ++u) {
    const int64_t j = threadIdx.x + u * step;
    if (j >= D) continue;
    put_grad(old[u], rt * wv[u] * gv[u] - c * xv[u], mode);
    dx(t, j) = old[u];
  }
  for (int64_t j = threadIdx.x + kRowRegs * step; j < D; j += step)
    put_grad(dx(t, j), rt * w(j) * dy(t, j) - c * x(t, j), mode);
}

// dw_j's term of row t.
template <class T>
struct RmsNormWeightTerm {
  TensorView<const T, 2, Cuda> x, dy;
  const float* r;
  __device__ ColumnTerms<1> operator()(int64_t t, int64_t j) const { return {{double(dy(t, j)) * x(t, j) * r[t]}}; }
};
}  // namespace gpu

inline void rms_norm_backward_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> x,
                                   TensorView<const float, 1, Cuda> w, float eps, TensorView<const float, 2, Cuda> dy,
                                   TensorView<float, 2, Cuda> dx, TensorView<float, 1, Cuda> dw, GradientMode mode) {
  const int64_t T = x.size(0), D = x.size(1);
  if (D == 0) return;
  WorkspaceScope<Cuda> scope(ctx.workspace());
  float* r = ctx.workspace().take<float>(size_t(T));  // (T) 1 / rms of each row
  if (T > 0) {
    gpu::rms_norm_backward_rows_kernel<float>
        <<<unsigned(T), gpu::row_threads(D), 0, ctx.stream()>>>(x, w, eps, dy, dx, r, mode);
    gpu::check_launch();
  }
  if (!present(dw)) return;
  column_reduce<1>(ctx, T, D, gpu::RmsNormWeightTerm<float>{x, dy, r}, gpu::PutColumnGrad<float>{dw, mode});
}

}  // namespace bimamba::detail
