// Cuda causal conv1d + SiLU backward (see ops/causal_conv1d_backward.hpp), from a zero initial state:
//   kernel 1, one thread per (b, t, c): a = bias + sum_k w[c, k] x[t - K + 1 + k] (double), da = dy silu'(a),
//             stored to scratch (B, L, C doubles, ctx.workspace())
//   kernel 2, one thread per (b, s, c): dx[s] = sum_k w[c, k] da[s + K - 1 - k]
//   kernel 3, one thread per (c, k), k = K meaning the bias: dw[c, k] = sum_{b, t} da[t] x[t - K + 1 + k],
//             dbias[c] = sum_{b, t} da[t], in double in (b, t) order (the host's).
#pragma once

#include "../../core/workspace.hpp"
#include "launch_backward.cuh"

namespace bimamba::detail {

namespace gpu {
template <class T>
__global__ void conv1d_backward_da_kernel(TensorView<const T, 3, Cuda> x, TensorView<const T, 2, Cuda> w,
                                          TensorView<const T, 1, Cuda> bias, TensorView<const T, 3, Cuda> dy, double* da) {
  const int64_t L = x.size(1), C = x.size(2), K = w.size(1), n = x.size(0) * L * C;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % C, t = (i / C) % L, b = i / (C * L);
    double a = present(bias) ? bias(c) : 0.0f;
    for (int64_t k = 0; k < K; ++k) {
      const int64_t s = t - K + 1 + k;
      if (s >= 0) a += double(w(c, k)) * x(b, s, c);
    }
    da[i] = dy(b, t, c) * dsilu_grad(a);
  }
}

template <class T>
__global__ void conv1d_backward_dx_kernel(TensorView<const T, 2, Cuda> w, const double* da, TensorView<T, 3, Cuda> dx,
                                          GradientMode mode) {
  const int64_t L = dx.size(1), C = dx.size(2), K = w.size(1), n = dx.size(0) * L * C;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % C, s = (i / C) % L, b = i / (C * L);
    double g = 0;
    for (int64_t k = 0; k < K; ++k) {
      const int64_t t = s + K - 1 - k;
      if (t < L) g += double(w(c, k)) * da[(b * L + t) * C + c];
    }
    put_grad(dx(b, s, c), g, mode);
  }
}

template <class T>
__global__ void conv1d_backward_params_kernel(TensorView<const T, 3, Cuda> x, const double* da, int64_t K,
                                              TensorView<T, 2, Cuda> dw, TensorView<T, 1, Cuda> dbias, GradientMode mode) {
  const int64_t B = x.size(0), L = x.size(1), C = x.size(2);
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= C * (K + 1)) return;
  const int64_t c = i / (K + 1), k = i % (K + 1);
  if (k == K ? !present(dbias) : !present(dw)) return;
  double s = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t) {
      const double d = da[(b * L + t) * C + c];
      if (k == K) {
        s += d;
      } else {
        const int64_t src = t - K + 1 + k;
        if (src >= 0) s += d * x(b, src, c);
      }
    }
  if (k == K) put_grad(dbias(c), s, mode);
  else put_grad(dw(c, k), s, mode);
}
}  // namespace gpu

inline void causal_conv1d_backward_impl(Context<Cuda>& ctx, TensorView<const float, 3, Cuda> x,
                                        TensorView<const float, 2, Cuda> w, TensorView<const float, 1, Cuda> bias,
                                        TensorView<const float, 3, Cuda> dy, TensorView<float, 3, Cuda> dx,
                                        TensorView<float, 2, Cuda> dw, TensorView<float, 1, Cuda> dbias,
                                        GradientMode mode) {
  const int64_t C = x.size(2), K = w.size(1), n = x.numel();
  if (C == 0) return;
  WorkspaceScope<Cuda> scope(ctx.workspace());
  double* da = ctx.workspace().take<double>(size_t(n));  // (B, L, C)
  if (n > 0) {
    gpu::conv1d_backward_da_kernel<float><<<gpu::grid_for(n), gpu::kThreads, 0, ctx.stream()>>>(x, w, bias, dy, da);
    gpu::check_launch();
    if (present(dx)) {
      gpu::conv1d_backward_dx_kernel<float><<<gpu::grid_for(n), gpu::kThreads, 0, ctx.stream()>>>(w, da, dx, mode);
      gpu::check_launch();
    }
  }
  if (!present(dw) && !present(dbias)) return;
  const int64_t items = C * (K + 1);
  gpu::conv1d_backward_params_kernel<float><<<unsigned((items + gpu::kThreads - 1) / gpu::kThreads), gpu::kThreads, 0,
                                               ctx.stream()>>>(x, da, K, dw, dbias, mode);
  gpu::check_launch();
}

}  // namespace bimamba::detail
