// Cuda Mamba-1 selective scan backward (see ops/selective_scan_backward.hpp): the host's sequential
// reverse-time recurrence, one thread per (batch, channel), written for correctness rather than speed.
//
// Per thread (b, e): the states s_t[n] (float, a = expf(dt A[e, n])) are recomputed forward into scratch, then
// in reverse time (a = exp(dt A[e, n]) in double): q_t = s_t . C_t + D_e x_t, the gate, dq, dz, ds update,
// dx, ddt, the per-(b, e) dA and dD sums, and the per-channel contributions dt x ds[n] (to dB) and dq s_t[n]
// (to dC). Then one thread per (b, t, n) adds the contributions over the channels e in order, and one thread per
// (e, n) (n = N: dD) adds the per-sequence sums over b in order. All sums in double, like the host.
//
// Scratch (ctx.workspace()), per slab of batch rows (as many as fit in 4 GiB, at least one): states (L, N)
// floats, ds (N) doubles and 2 (L, N) doubles of contributions per channel, laid out with the channel
// innermost (coalesced); plus (B, E, N + 1) doubles. One batch row at E = 3072, N = 16, L = 2048 is 2 GB.
#pragma once

#include <algorithm>

#include "../../core/workspace.hpp"
#include "launch_backward.cuh"

namespace bimamba::detail {

namespace gpu {
struct SelectiveBackwardScratch {
  float* states;    // (L, N, W), W = bs E threads of the slab
  double* ds;       // (N, W)
  double* chan_B;   // (bs, L, N, E) per-channel contributions to dB
  double* chan_C;   // (bs, L, N, E) per-channel contributions to dC
  double* dA_part;  // (B, E, N)
  double* dD_part;  // (B, E)
};

template <class T>
__global__ void selective_backward_channel_kernel(
    TensorView<const T, 3, Cuda> x, TensorView<const T, 3, Cuda> dt, TensorView<const T, 2, Cuda> A,
    TensorView<const T, 3, Cuda> Bm, TensorView<const T, 3, Cuda> Cm, TensorView<const T, 1, Cuda> D,
    TensorView<const T, 3, Cuda> z, TensorView<const T, 3, Cuda> dy, TensorView<T, 3, Cuda> dx, TensorView<T, 3, Cuda> ddt,
    TensorView<T, 3, Cuda> dz, int64_t b0, int64_t bs, SelectiveBackwardScratch s, GradientMode mode) {
  const int64_t L = x.size(1), E = x.size(2), N = A.size(1), W = bs * E;
  const int64_t w = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (w >= W) return;
  const int64_t bl = w / E, e = w % E, b = b0 + bl;
  float* S = s.states;
  double* ds = s.ds;
  double* dA_row = s.dA_part + (b * E + e) * N;
  for (int64_t t = 0; t < L; ++t) {
    const float d = dt(b, t, e), xv = x(b, t, e);
    for (int64_t n = 0; n < N; ++n)
      S[(t * N + n) * W + w] =
          expf(d * A(e, n)) * (t > 0 ? S[((t - 1) * N + n) * W + w] : 0.0f) + d * Bm(b, t, n) * xv;
  }
  for (int64_t n = 0; n < N; ++n) {
    ds[n * W + w] = 0.0;
    dA_row[n] = 0.0;
  }
  const bool has_z = present(z), has_dz = present(dz);
  const double De = present(D) ? D(e) : 0.0f;
  double sum_dD = 0;
  for (int64_t t = L - 1; t >= 0; --t) {
    const double d = dt(b, t, e), xv = x(b, t, e);
    double q = De * xv, gate = 1.0;
    for (int64_t n = 0; n < N; ++n) q += double(S[(t * N + n) * W + w]) * Cm(b, t, n);
    if (has_z) {
      gate = silu(z(b, t, e));
      if (has_dz) put_grad(dz(b, t, e), double(dy(b, t, e)) * q * dsilu_grad(z(b, t, e)), mode);
    }
    const double dq = dy(b, t, e) * gate;
    sum_dD += dq * xv;
    double dsB = 0, dd = 0;
    for (int64_t n = 0; n < N; ++n) {
      const double dsn = ds[n * W + w] + dq * Cm(b, t, n);
      const int64_t at = ((bl * L + t) * N + n) * E + e;
      s.chan_C[at] = dq * S[(t * N + n) * W + w];
      s.chan_B[at] = d * xv * dsn;
      dsB += dsn * Bm(b, t, n);
      const double a = exp(d * A(e, n)), prev = t > 0 ? S[((t - 1) * N + n) * W + w] : 0.0f;
      dd += dsn * A(e, n) * a * prev;
      dA_row[n] += dsn * d * a * prev;
      ds[n * W + w] = dsn * a;
    }
    put_grad(dx(b, t, e), De * dq + d * dsB, mode);
    put_grad(ddt(b, t, e), xv * dsB + dd, mode);
  }
  s.dD_part[b * E + e] = sum_dD;
}

// dB, dC of the slab's rows: sums over the channels in channel order.
template <class T>
__global__ void selective_backward_sum_kernel(int64_t b0, int64_t bs, int64_t E, SelectiveBackwardScratch s,
                                              TensorView<T, 3, Cuda> dB, TensorView<T, 3, Cuda> dC, GradientMode mode) {
  const int64_t L = dB.size(1), N = dB.size(2), n_items = bs * L * N;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n_items; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i % N, t = (i / N) % L, bl = i / (N * L);
    double sb = 0, sc = 0;
    for (int64_t e = 0; e < E; ++e) {
      sb += s.chan_B[i * E + e];
      sc += s.chan_C[i * E + e];
    }
    put_grad(dB(b0 + bl, t, n), sb, mode);
    put_grad(dC(b0 + bl, t, n), sc, mode);
  }
}

// (e, n < N): dA[e, n]; (e, n = N): dD[e]; sums over b in order.
template <class T>
__global__ void selective_backward_params_kernel(int64_t B, SelectiveBackwardScratch s, TensorView<T, 2, Cuda> dA,
                                                 TensorView<T, 1, Cuda> dD, GradientMode mode) {
  const int64_t E = dA.size(0), N = dA.size(1), i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= E * (N + 1)) return;
  const int64_t e = i / (N + 1), n = i % (N + 1);
  double sum = 0;
  if (n < N) {
    for (int64_t b = 0; b < B; ++b) sum += s.dA_part[(b * E + e) * N + n];
    put_grad(dA(e, n), sum, mode);
  } else if (present(dD)) {
    for (int64_t b = 0; b < B; ++b) sum += s.dD_part[b * E + e];
    put_grad(dD(e), sum, mode);
  }
}
}  // namespace gpu

inline void selective_scan_backward_impl(Context<Cuda>& ctx, TensorView<const float, 3, Cuda> x,
                                         TensorView<const float, 3, Cuda> dt, TensorView<const float, 2, Cuda> A,
                                         TensorView<const float, 3, Cuda> Bm, TensorView<const float, 3, Cuda> Cm,
                                         TensorView<const float, 1, Cuda> D, TensorView<const float, 3, Cuda> z,
                                         TensorView<const float, 3, Cuda> dy, TensorView<float, 3, Cuda> dx,
                                         TensorView<float, 3, Cuda> ddt, TensorView<float, 2, Cuda> dA,
                                         TensorView<float, 3, Cuda> dB, TensorView<float, 3, Cuda> dC,
                                         TensorView<float, 1, Cuda> dD, TensorView<float, 3, Cuda> dz, GradientMode mode) {
  const int64_t B = x.size(0), L = x.size(1), E = x.size(2), N = A.size(1);
  const int64_t per_row_bytes = L * N * E * 4 + N * E * 8 + 2 * L * N * E * 8;
  const int64_t bs = std::max<int64_t>(1, std::min<int64_t>(B, (int64_t(1) << 32) / std::max<int64_t>(1, per_row_bytes)));
  auto& ws = ctx.workspace();
  WorkspaceScope<Cuda> scope(ws);
  gpu::SelectiveBackwardScratch s;
  s.dA_part = ws.take<double>(size_t(B * E * N));
  s.dD_part = ws.take<double>(size_t(B * E));
  s.states = ws.take<float>(size_t(bs * L * N * E));
  s.ds = ws.take<double>(size_t(bs * N * E));
  s.chan_B = ws.take<double>(size_t(bs * L * N * E));
  s.chan_C = ws.take<double>(size_t(bs * L * N * E));
  for (int64_t b0 = 0; b0 < B; b0 += bs) {
    const int64_t rows = std::min(bs, B - b0), threads = rows * E;
    if (threads > 0) {
      gpu::selective_backward_channel_kernel<float><<<unsigned((threads + 127) / 128), 128, 0, ctx.stream()>>>(
          x, dt, A, Bm, Cm, D, z, dy, dx, ddt, dz, b0, rows, s, mode);
      gpu::check_launch();
    }
    const int64_t items = rows * L * N;
    if (items > 0) {
      gpu::selective_backward_sum_kernel<float><<<gpu::grid_for(items), gpu::kThreads, 0, ctx.stream()>>>(b0, rows, E, s,
                                                                                                        dB, dC, mode);
      gpu::check_launch();
    }
  }
  const int64_t items = E * (N + 1);
  if (items == 0) return;
  gpu::selective_backward_params_kernel<float><<<unsigned((items + gpu::kThreads - 1) / gpu::kThreads), gpu::kThreads,
                                                 0, ctx.stream()>>>(B, s, dA, dD, mode);
  gpu::check_launch();
}

}  // namespace bimamba::detail
