// Cuda causal conv1d + SiLU backward (see ops/causal_conv1d_backward.hpp), from a zero initial state. A block per
// (kConvChannels channels, kConvTokens tokens [t0, t1) of one sequence), a thread per channel (the tiles of
// ops/cuda/causal_conv1d.cuh), computing
//   da[t] = dy[t] silu'(bias + sum_k w[k] x[t - K + 1 + k]) for t in [t0, min(L, t1 + K - 1)) (the K - 1 tokens
//           after the tile are recomputed by both tiles that need them),
//   dx[s] = sum_k w[k] da[s + K - 1 - k] for s in the tile,
//   the tile's K + 1 weight sums, sum_t da[t] x[t - K + 1 + k] and sum_t da[t], to scratch (B x tiles, K + 1, C
//           doubles from ctx.workspace()),
// then column_reduce (ops/cuda/column_reduce.cuh) sums the tiles: dw[c, k] / dbias[c].
//   K <= kConvRegisterTaps (every Mamba preset: K = 4): conv1d_backward_registers_kernel keeps the tile in
//     registers, float arithmetic (silu' by silu_grad_float), the tile sums in float. All of a thread's loads (x,
//     dy, and dx under Accumulate) are independent and issued before any arithmetic: ~100 loads in flight per
//     thread. Through shared memory (a thread's loads one after another, each behind the store before it; a, da,
//     dx and the sums in double) the op took 35.8 ms of a 780M training step at batch 4 on an H100, 0.75 ms a
//     layer for ~0.44 GB; in registers 9.6 ms (bench/RESULTS_CUDA.md, session 18).
//   larger K: conv1d_backward_tile_kernel, the same math through shared memory in double (above 48 KB the limit is
//     raised to the device's opt-in; a K that needs more throws, naming it).
// Every addition's order depends only on the shapes: reruns give the same bits. Index arithmetic per element is
// multiplications by the views' strides (x and dx are column ranges of in_proj's output); divisions only per tile.
// Against the host's double arithmetic the float form differs by ~1e-7 relative.
#pragma once

#include "../../core/workspace.hpp"
#include "causal_conv1d.cuh"
#include "column_reduce.cuh"
#include "launch_backward.cuh"

namespace bimamba::detail {

namespace gpu {
template <class T>
__global__ void __launch_bounds__(kConvChannels)
    conv1d_backward_registers_kernel(TensorView<const T, 3, Cuda> x, TensorView<const T, 2, Cuda> w,
                                     TensorView<const T, 1, Cuda> bias, TensorView<const T, 3, Cuda> dy,
                                     TensorView<T, 3, Cuda> dx, GradientMode mode, double* sums) {
  constexpr int KR = kConvRegisterTaps, Q = kConvTokens;
  const int64_t L = x.size(1), C = x.size(2), K = w.size(1), pad = KR - K;
  const int64_t c = blockIdx.x * int64_t(kConvChannels) + threadIdx.x;
  if (c >= C) return;
  float taps[KR];
  padded_conv_taps(w, c, taps);
  const float b0 = present(bias) ? float(bias(c)) : 0.0f;
  const bool has_dx = present(dx), accumulate = mode == GradientMode::Accumulate;
  const int64_t tiles = (L + Q - 1) / Q, sx = x.stride(1), sdy = dy.stride(1), sdx = has_dx ? dx.stride(1) : 0;
  for (int64_t bt = blockIdx.y; bt < x.size(0) * tiles; bt += gridDim.y) {
    const int64_t b = bt / tiles, t0 = bt % tiles * Q;
    const int n = int(min(int64_t(Q), L - t0));  // tokens of the tile
    const T* xp = &x(b, 0, c);
    const T* dyp = &dy(b, 0, c);
    T* dxp = has_dx ? &dx(b, 0, c) : nullptr;
    // Every load first: xs[r] = x[t0 - KR + 1 + r], da[r] = dy[t0 + r] (0 outside [0, L)), old[q] = dx[t0 + q].
    float xs[Q + 2 * (KR - 1)], da[Q + KR - 1], old[Q];
#pragma unroll
    for (int r = 0; r < Q + 2 * (KR - 1); ++r) {
      const int64_t s = t0 - (KR - 1) + r;
      xs[r] = s >= 0 && s < L ? float(xp[s * sx]) : 0.0f;
    }
#pragma unroll
    for (int r = 0; r < Q + KR - 1; ++r) da[r] = t0 + r < L ? float(dyp[(t0 + r) * sdy]) : 0.0f;
#pragma unroll
    for (int q = 0; q < Q; ++q) old[q] = has_dx && accumulate && q < n ? float(dxp[(t0 + q) * sdx]) : 0.0f;
#pragma unroll
    for (int r = 0; r < Q + KR - 1; ++r) {  // token t0 + r reads inputs t0 + r - KR + 1 .. t0 + r: xs[r .. r + KR - 1]
      float a = b0;
#pragma unroll
      for (int k = 0; k < KR; ++k) a += taps[k] * xs[r + k];
      da[r] *= silu_grad_float(a);
    }
    if (has_dx)
#pragma unroll
      for (int q = 0; q < Q; ++q) {
        if (q >= n) break;
        float g = 0.0f;  // da[t0 + q + KR - 1 - k]
#pragma unroll
        for (int k = 0; k < KR; ++k) g += taps[k] * da[q + KR - 1 - k];
        dxp[(t0 + q) * sdx] = old[q] + g;
      }
    if (!sums) continue;
    float tap_sums[KR] = {}, bias_sum = 0.0f;  // x[t - K + 1 + k] is xs[t - t0 + pad + k]
#pragma unroll
    for (int r = 0; r < Q; ++r) {
      if (r >= n) break;
#pragma unroll
      for (int k = 0; k < KR; ++k) tap_sums[k] += da[r] * xs[r + k];
      bias_sum += da[r];
    }
    double* out = sums + bt * (K + 1) * C + c;  // the K + 1 sums of this tile, C apart
#pragma unroll
    for (int k = 0; k < KR; ++k)
      if (k >= pad) out[(k - pad) * C] = tap_sums[k];
    out[K * C] = bias_sum;
  }
}

// Shared memory of a tile, per channel column: da (kConvTokens + K - 1 doubles: da[t0 + r] at row r), then x
// (kConvTokens + 2 (K - 1) floats: x[t0 - K + 1 + r] at row r, zero before 0).
inline size_t conv1d_backward_smem(int64_t K) {
  return (size_t(kConvTokens + K - 1) * sizeof(double) + size_t(kConvTokens + 2 * (K - 1)) * sizeof(float)) *
         kConvChannels;
}

// K > kConvRegisterTaps: the tile through shared memory, in double.
template <class T>
__global__ void __launch_bounds__(kConvChannels)
    conv1d_backward_tile_kernel(TensorView<const T, 3, Cuda> x, TensorView<const T, 2, Cuda> w,
                                TensorView<const T, 1, Cuda> bias, TensorView<const T, 3, Cuda> dy,
                                TensorView<T, 3, Cuda> dx, GradientMode mode, double* sums) {
  extern __shared__ double tile_smem[];
  const int64_t B = x.size(0), L = x.size(1), C = x.size(2), K = w.size(1);
  const int64_t c = blockIdx.x * int64_t(kConvChannels) + threadIdx.x;
  if (c >= C) return;  // no block barrier below: each thread reads only its own column of shared memory
  double* da = tile_smem + threadIdx.x;
  float* xs = reinterpret_cast<float*>(tile_smem + (kConvTokens + K - 1) * kConvChannels) + threadIdx.x;
  const double b0 = present(bias) ? bias(c) : 0.0f;
  const int64_t tiles = (L + kConvTokens - 1) / kConvTokens;
  for (int64_t bt = blockIdx.y; bt < B * tiles; bt += gridDim.y) {
    const int64_t b = bt / tiles, t0 = bt % tiles * kConvTokens, t1 = min(L, t0 + kConvTokens),
                  te = min(L, t1 + K - 1);  // da is needed for [t0, te)
    for (int64_t r = 0; r < te - t0 + K - 1; ++r) {
      const int64_t s = t0 - K + 1 + r;
      xs[r * kConvChannels] = s >= 0 ? float(x(b, s, c)) : 0.0f;
    }
    for (int64_t t = t0; t < te; ++t) da[(t - t0) * kConvChannels] = dy(b, t, c);
    for (int64_t r = 0; r < te - t0; ++r) {  // da[t0 + r] from inputs at rows r .. r + K - 1
      double a = b0;
      for (int64_t k = 0; k < K; ++k) a += double(w(c, k)) * xs[(r + k) * kConvChannels];
      da[r * kConvChannels] *= dsilu_grad(a);
    }
    if (present(dx))
      for (int64_t s = t0; s < t1; ++s) {
        double g = 0;
        for (int64_t k = max(int64_t(0), s + K - te); k < K; ++k)
          g += double(w(c, k)) * da[(s + K - 1 - k - t0) * kConvChannels];
        put_grad(dx(b, s, c), g, mode);
      }
    if (!sums) continue;
    double* out = sums + bt * (K + 1) * C + c;  // the K + 1 sums of this tile, C apart
    for (int64_t k = 0; k < K; ++k) {
      double s = 0;  // x[t - K + 1 + k] is row t - t0 + k; rows before x[0] hold 0
      for (int64_t r = 0; r < t1 - t0; ++r) s += da[r * kConvChannels] * xs[(r + k) * kConvChannels];
      out[k * C] = s;
    }
    double s = 0;
    for (int64_t r = 0; r < t1 - t0; ++r) s += da[r * kConvChannels];
    out[K * C] = s;
  }
}

// Column i = k C + c of the tiles' sums: dw[c, k] (k < K) or dbias[c] (k = K).
template <class T>
struct Conv1dWeightFinish {
  TensorView<T, 2, Cuda> dw;
  TensorView<T, 1, Cuda> dbias;
  int64_t K, C;
  GradientMode mode;
  __device__ void operator()(int64_t i, const ColumnTerms<1>& s) const {
    const int64_t k = i / C, c = i % C;
    if (k < K) {
      if (present(dw)) put_grad(dw(c, k), s.v[0], mode);
    } else if (present(dbias)) {
      put_grad(dbias(c), s.v[0], mode);
    }
  }
};
}  // namespace gpu

inline void causal_conv1d_backward_impl(Context<Cuda>& ctx, TensorView<const float, 3, Cuda> x,
                                        TensorView<const float, 2, Cuda> w, TensorView<const float, 1, Cuda> bias,
                                        TensorView<const float, 3, Cuda> dy, TensorView<float, 3, Cuda> dx,
                                        TensorView<float, 2, Cuda> dw, TensorView<float, 1, Cuda> dbias,
                                        GradientModes modes) {
  const int64_t B = x.size(0), L = x.size(1), C = x.size(2), K = w.size(1);
  if (C == 0) return;
  const bool in_registers = K <= gpu::kConvRegisterTaps;
  const size_t smem = in_registers ? 0 : gpu::conv1d_backward_smem(K);
  if (!in_registers)
    gpu::allow_conv_tile_smem(ctx, gpu::conv1d_backward_tile_kernel<float>, smem, K, "causal_conv1d_backward");
  const bool weights = present(dw) || present(dbias);
  const int64_t tiles = (L + gpu::kConvTokens - 1) / gpu::kConvTokens, rows = B * tiles;
  WorkspaceScope<Cuda> scope(ctx.workspace());
  double* sums = weights ? ctx.workspace().take<double>(size_t(rows * (K + 1) * C)) : nullptr;  // (rows, K + 1, C)
  if (rows > 0) {
    const dim3 grid(unsigned((C + gpu::kConvChannels - 1) / gpu::kConvChannels),
                    unsigned(std::min<int64_t>(rows, 65535)));
    if (in_registers)
      gpu::conv1d_backward_registers_kernel<float>
          <<<grid, gpu::kConvChannels, 0, ctx.stream()>>>(x, w, bias, dy, dx, modes.inputs, sums);
    else
      gpu::conv1d_backward_tile_kernel<float>
          <<<grid, gpu::kConvChannels, smem, ctx.stream()>>>(x, w, bias, dy, dx, modes.inputs, sums);
    gpu::check_launch();
  }
  if (!weights) return;  // with no rows, column_reduce's sums are 0: Overwrite writes zeros
  const int64_t n = (K + 1) * C;
  column_reduce<1>(ctx, rows, n, gpu::MatrixTerm{sums, n},
                   gpu::Conv1dWeightFinish<float>{dw, dbias, K, C, modes.params});
}

}  // namespace bimamba::detail
