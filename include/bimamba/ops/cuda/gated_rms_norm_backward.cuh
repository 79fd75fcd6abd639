// Cuda gated group-wise RMSNorm backward (see ops/gated_rms_norm_backward.hpp), the host's math in the host's
// precision (g = y silu(z) in double from float silu):
//   kernel 1, one block per (row t, group): sum g^2 and sum w dout g in double (tree sums), r = 1/sqrt(.),
//             dg_j = r w_j dout_j - (r^3 / S) g_j dot, dy_j = dg_j silu(z_j), dz_j = dg_j y_j silu'(z_j);
//             r stored to scratch (T x groups floats, ctx.workspace())
//   then dw_j = sum_t dout_tj g_tj r_t,group(j) in double by column_reduce (ops/cuda/column_reduce.cuh).
// Rows go on the grid's x axis (no 65535 limit), groups on y.
#pragma once

#include "../../core/workspace.hpp"
#include "column_reduce.cuh"

namespace bimamba::detail {

namespace gpu {
template <class T>
__device__ inline double gate_value(const TensorView<const T, 2, Cuda>& y, const TensorView<const T, 2, Cuda>& z,
                                    int64_t t, int64_t j) {
  return double(y(t, j)) * silu(z(t, j));
}

template <class T>
__global__ void gated_norm_backward_rows_kernel(TensorView<const T, 2, Cuda> y, TensorView<const T, 2, Cuda> z,
                                                TensorView<const T, 1, Cuda> w, int64_t S, float eps,
                                                TensorView<const T, 2, Cuda> dout, TensorView<T, 2, Cuda> dy,
                                                TensorView<T, 2, Cuda> dz, float* r, GradientMode mode) {
  __shared__ double scratch[32];
  const int64_t t = blockIdx.x, g = blockIdx.y, groups = gridDim.y;
  double sum = 0, dot = 0;
  for (int64_t j = g * S + threadIdx.x; j < (g + 1) * S; j += blockDim.x) {
    const double v = gate_value(y, z, t, j);
    sum += v * v;
    dot += double(w(j)) * dout(t, j) * v;
  }
  sum = block_sum(sum, scratch);
  dot = block_sum(dot, scratch);
  const double rt = 1.0 / sqrt(sum / double(S) + eps);
  if (threadIdx.x == 0) r[t * groups + g] = float(rt);
  const double c = rt * rt * rt * dot / double(S);
  const bool has_dy = present(dy), has_dz = present(dz);
  for (int64_t j = g * S + threadIdx.x; j < (g + 1) * S; j += blockDim.x) {
    const double dg = rt * w(j) * dout(t, j) - c * gate_value(y, z, t, j);
    if (has_dy) put_grad(dy(t, j), dg * silu(z(t, j)), mode);
    if (has_dz) put_grad(dz(t, j), dg * y(t, j) * dsilu_grad(z(t, j)), mode);
  }
}

// dw_j's term of row t.
template <class T>
struct GatedNormWeightTerm {
  TensorView<const T, 2, Cuda> y, z, dout;
  int64_t S, groups;
  const float* r;
  __device__ ColumnTerms<1> operator()(int64_t t, int64_t j) const {
    return {{double(dout(t, j)) * gate_value(y, z, t, j) * r[t * groups + j / S]}};
  }
};
}  // namespace gpu

inline void gated_rms_norm_backward_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> y,
                                         TensorView<const float, 2, Cuda> z, TensorView<const float, 1, Cuda> w,
                                         int64_t groups, float eps, TensorView<const float, 2, Cuda> dout,
                                         TensorView<float, 2, Cuda> dy, TensorView<float, 2, Cuda> dz,
                                         TensorView<float, 1, Cuda> dw, GradientMode mode) {
  const int64_t T = y.size(0), E = y.size(1), S = E / groups;
  if (E == 0) return;
  BIMAMBA_CHECK(groups <= 65535, "gated_rms_norm_backward (Cuda): at most 65535 groups, got ", groups);
  WorkspaceScope<Cuda> scope(ctx.workspace());
  float* r = ctx.workspace().take<float>(size_t(T * groups));  // (T, groups) 1 / rms of each group
  if (T > 0) {
    const int threads = int(std::min<int64_t>(gpu::kThreads, (S + 31) / 32 * 32));
    gpu::gated_norm_backward_rows_kernel<float><<<dim3(unsigned(T), unsigned(groups)), threads, 0, ctx.stream()>>>(
        y, z, w, S, eps, dout, dy, dz, r, mode);
    gpu::check_launch();
  }
  if (!present(dw)) return;
  column_reduce<1>(ctx, T, E, gpu::GatedNormWeightTerm<float>{y, z, dout, S, groups, r},
                   gpu::PutColumnGrad<float>{dw, mode});
}

}  // namespace bimamba::detail
