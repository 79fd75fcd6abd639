// Cuda causal conv1d + SiLU backward (see ops/causal_conv1d_backward.hpp), from a zero initial state:
//   kernel 1, one thread per (b, t, c): a = bias + sum_k w[c, k] x[t - K + 1 + k] (double), da = dy silu'(a),
//             stored to scratch (B, L, C doubles, ctx.workspace())
//   kernel 2, one thread per (b, s, c): dx[s] = sum_k w[c, k] da[s + K - 1 - k]
//   then dw[c, k] = sum_{b, t} da[t] x[t - K + 1 + k], dbias[c] = sum_{b, t} da[t], in double, by column_reduce
//             (ops/cuda/column_reduce.cuh): for K = 4 (every preset) one column per channel with K + 1 sums, so
//             da and the K inputs of a (row, channel) are loaded once; any other K one column per (c, k).
#pragma once

#include "../../core/workspace.hpp"
#include "column_reduce.cuh"

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

// Row (b, t) = b L + t, column (c, k) = c (K + 1) + k: the term of dw[c, k] (k < K) or of dbias[c] (k = K).
template <class T>
struct Conv1dParamTerm {
  TensorView<const T, 3, Cuda> x;
  const double* da;
  int64_t K;
  __device__ ColumnTerms<1> operator()(int64_t row, int64_t col) const {
    const int64_t L = x.size(1), C = x.size(2), c = col / (K + 1), k = col % (K + 1), t = row % L;
    const double d = da[row * C + c];
    if (k == K) return {{d}};
    const int64_t src = t - K + 1 + k;
    return {{src >= 0 ? d * x(row / L, src, c) : 0.0}};
  }
};

// Row (b, t) = b L + t, column c: the K + 1 terms of channel c, dw[c, 0..K) then dbias[c], for a K known here.
template <int K, class T>
struct Conv1dChannelTerms {
  TensorView<const T, 3, Cuda> x;
  const double* da;
  __device__ ColumnTerms<K + 1> operator()(int64_t row, int64_t c) const {
    const int64_t L = x.size(1), C = x.size(2), t = row % L;
    const double d = da[row * C + c];
    ColumnTerms<K + 1> terms;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int64_t src = t - K + 1 + k;
      terms.v[k] = src >= 0 ? d * x(row / L, src, c) : 0.0;
    }
    terms.v[K] = d;
    return terms;
  }
};

template <int K, class T>
struct Conv1dChannelFinish {
  TensorView<T, 2, Cuda> dw;
  TensorView<T, 1, Cuda> dbias;
  GradientMode mode;
  __device__ void operator()(int64_t c, const ColumnTerms<K + 1>& s) const {
    if (present(dw))
#pragma unroll
      for (int k = 0; k < K; ++k) put_grad(dw(c, k), s.v[k], mode);
    if (present(dbias)) put_grad(dbias(c), s.v[K], mode);
  }
};

template <class T>
struct Conv1dParamFinish {
  TensorView<T, 2, Cuda> dw;
  TensorView<T, 1, Cuda> dbias;
  int64_t K;
  GradientMode mode;
  __device__ void operator()(int64_t col, const ColumnTerms<1>& s) const {
    const int64_t c = col / (K + 1), k = col % (K + 1);
    if (k == K) {
      if (present(dbias)) put_grad(dbias(c), s.v[0], mode);
    } else if (present(dw)) {
      put_grad(dw(c, k), s.v[0], mode);
    }
  }
};
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
  constexpr int kTaps = 4;  // d_conv of every preset
  const int64_t rows = x.size(0) * x.size(1);
  if (K == kTaps)
    column_reduce<kTaps + 1>(ctx, rows, C, gpu::Conv1dChannelTerms<kTaps, float>{x, da},
                             gpu::Conv1dChannelFinish<kTaps, float>{dw, dbias, mode});
  else
    column_reduce<1>(ctx, rows, C * (K + 1), gpu::Conv1dParamTerm<float>{x, da, K},
                     gpu::Conv1dParamFinish<float>{dw, dbias, K, mode});
}

}  // namespace bimamba::detail
