// Cuda Mamba-2 scan backward (see ops/ssd_scan_backward.hpp): the host's sequential reverse-time recurrence,
// one block per (batch, head), written for correctness rather than speed (not the chunked SSD form).
//
// Per block (b, h), threads striding over the state columns n (phases 1, 3) and the head rows p (phase 2):
//   forward   S_t[p, n] = a_t S_{t-1}[p, n] + dt_t x_t[p] B_t[n] (float, a_t = expf(dt_t A_h)) into scratch
//   reverse, t = L-1 .. 0, a = exp(dt_t A_h) in double:
//     phase 1 (column n):  dS[p, n] += dy_t[p] C_t[n];  per-head sums sC = sum_p dy_t[p] S_t[p, n],
//                          sB = sum_p dt_t dS[p, n] x_t[p];  dprev += sum_p dS[p, n] S_{t-1}[p, n]
//     phase 2 (row p):     dSB = sum_n dS[p, n] B_t[n];  dx = dt dSB + D dy;  xSB += x dSB;  dD += dy x
//     ddt_t = <x, dSB> + A a <dS, S_{t-1}>;  dA += dt a <dS, S_{t-1}>   (block sums in double)
//     phase 3 (column n):  dS[:, n] *= a
// then one thread per (b, t, g, n) adds the per-head sums over the heads of the group in head order into dB,
// dC, and one thread per head adds the per-(b, h) dA, dD over b in order. All sums in double, like the host.
//
// Scratch (ctx.workspace()), per slab of batch rows (as many as fit in 4 GiB, at least one): the states
// (H, L, P, N) floats, dS (H, P, N) doubles and the per-head sums 2 (L, H, N) doubles per batch row; plus
// 2 B H doubles. At the 780M shape (H = 48, P = 64, N = 128, L = 2048) one batch row is 3.4 GB: this is the
// first, memory-hungry version (a chunked backward that keeps only chunk-boundary states is the next step).
#pragma once

#include <algorithm>

#include "../../core/workspace.hpp"
#include "launch_backward.cuh"

namespace bimamba::detail {

namespace gpu {
struct SsdBackwardScratch {
  float* states;    // (bs, H, L, P, N)
  double* dS;       // (bs, H, P, N)
  double* head_B;   // (bs, L, H, N) per-head contributions to dB
  double* head_C;   // (bs, L, H, N) per-head contributions to dC
  double* dA_part;  // (B, H)
  double* dD_part;  // (B, H)
};

template <class T>
__global__ void __launch_bounds__(kThreads)
    ssd_backward_head_kernel(TensorView<const T, 4, Cuda> x, TensorView<const T, 3, Cuda> dt,
                             TensorView<const T, 1, Cuda> A, TensorView<const T, 4, Cuda> Bm,
                             TensorView<const T, 4, Cuda> Cm, TensorView<const T, 1, Cuda> D,
                             TensorView<const T, 4, Cuda> dy, TensorView<T, 4, Cuda> dx, TensorView<T, 3, Cuda> ddt,
                             int64_t b0, SsdBackwardScratch s, GradientMode mode) {
  extern __shared__ float xs_gys[];  // 2 P floats: x_t and dy_t of this head
  __shared__ double scratch[32];
  const int64_t L = x.size(1), H = x.size(2), P = x.size(3), G = Bm.size(2), N = Bm.size(3);
  const int64_t h = blockIdx.x, bl = blockIdx.y, b = b0 + bl, g = h / (H / G), blk = bl * H + h;
  const int64_t tid = threadIdx.x, nthreads = blockDim.x;
  float* xs = xs_gys;
  float* gys = xs_gys + P;
  float* S = s.states + blk * L * P * N;  // (L, P, N)
  double* dS = s.dS + blk * P * N;        // (P, N)
  const float Ahf = A(h);
  const double Ah = Ahf, Dh = present(D) ? D(h) : 0.0f;

  for (int64_t n = tid; n < N; n += nthreads) {
    for (int64_t t = 0; t < L; ++t) {
      const float d = dt(b, t, h), a = expf(d * Ahf), Bn = Bm(b, t, g, n);
      for (int64_t p = 0; p < P; ++p) {
        const float prev = t > 0 ? S[((t - 1) * P + p) * N + n] : 0.0f;
        S[(t * P + p) * N + n] = a * prev + d * x(b, t, h, p) * Bn;
      }
    }
    for (int64_t p = 0; p < P; ++p) dS[p * N + n] = 0.0;
  }

  double sum_dA = 0, sum_dD = 0;
  for (int64_t t = L - 1; t >= 0; --t) {
    __syncthreads();  // the previous step's readers of xs / gys are done
    for (int64_t p = tid; p < P; p += nthreads) {
      xs[p] = x(b, t, h, p);
      gys[p] = dy(b, t, h, p);
    }
    __syncthreads();
    const double d = dt(b, t, h), a = exp(d * Ah);
    double dprev = 0;
    for (int64_t n = tid; n < N; n += nthreads) {  // phase 1
      const double Cn = Cm(b, t, g, n);
      double sc = 0, sb = 0;
      for (int64_t p = 0; p < P; ++p) {
        const double ds = dS[p * N + n] + double(gys[p]) * Cn;
        dS[p * N + n] = ds;
        sc += double(gys[p]) * S[(t * P + p) * N + n];
        sb += d * ds * xs[p];
        if (t > 0) dprev += ds * S[((t - 1) * P + p) * N + n];
      }
      const int64_t at = ((bl * L + t) * H + h) * N + n;
      s.head_C[at] = sc;
      s.head_B[at] = sb;
    }
    __syncthreads();  // dS of this step is complete
    double xsb = 0;
    for (int64_t p = tid; p < P; p += nthreads) {  // phase 2
      double dSB = 0;
      for (int64_t n = 0; n < N; ++n) dSB += dS[p * N + n] * Bm(b, t, g, n);
      put_grad(dx(b, t, h, p), d * dSB + Dh * gys[p], mode);
      xsb += double(xs[p]) * dSB;
      sum_dD += double(gys[p]) * xs[p];
    }
    dprev = block_sum(dprev, scratch);
    xsb = block_sum(xsb, scratch);  // (its barriers also end phase 2's reads of dS)
    if (tid == 0) {
      put_grad(ddt(b, t, h), xsb + Ah * a * dprev, mode);
      sum_dA += d * a * dprev;
    }
    for (int64_t n = tid; n < N; n += nthreads)  // phase 3
      for (int64_t p = 0; p < P; ++p) dS[p * N + n] *= a;
  }
  sum_dD = block_sum(sum_dD, scratch);
  if (tid == 0) {
    s.dA_part[b * H + h] = sum_dA;
    s.dD_part[b * H + h] = sum_dD;
  }
}

// dB, dC of the slab's rows: sums of the per-head contributions over the heads of each group, in head order.
template <class T>
__global__ void ssd_backward_group_kernel(int64_t b0, int64_t bs, int64_t H, SsdBackwardScratch s,
                                          TensorView<T, 4, Cuda> dB, TensorView<T, 4, Cuda> dC, GradientMode mode) {
  const int64_t L = dB.size(1), G = dB.size(2), N = dB.size(3), per_group = H / G, n_items = bs * L * G * N;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n_items; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i % N, g = (i / N) % G, t = (i / (N * G)) % L, bl = i / (N * G * L);
    double sb = 0, sc = 0;
    for (int64_t h = g * per_group; h < (g + 1) * per_group; ++h) {
      const int64_t at = ((bl * L + t) * H + h) * N + n;
      sb += s.head_B[at];
      sc += s.head_C[at];
    }
    put_grad(dB(b0 + bl, t, g, n), sb, mode);
    put_grad(dC(b0 + bl, t, g, n), sc, mode);
  }
}

template <class T>
__global__ void ssd_backward_heads_kernel(int64_t B, SsdBackwardScratch s, TensorView<T, 1, Cuda> dA,
                                          TensorView<T, 1, Cuda> dD, GradientMode mode) {
  const int64_t H = dA.size(0), h = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (h >= H) return;
  double sa = 0, sd = 0;
  for (int64_t b = 0; b < B; ++b) sa += s.dA_part[b * H + h], sd += s.dD_part[b * H + h];
  put_grad(dA(h), sa, mode);
  if (present(dD)) put_grad(dD(h), sd, mode);
}
}  // namespace gpu

inline void ssd_scan_backward_impl(Context<Cuda>& ctx, TensorView<const float, 4, Cuda> x,
                                   TensorView<const float, 3, Cuda> dt, TensorView<const float, 1, Cuda> A,
                                   TensorView<const float, 4, Cuda> Bm, TensorView<const float, 4, Cuda> Cm,
                                   TensorView<const float, 1, Cuda> D, TensorView<const float, 4, Cuda> dy,
                                   TensorView<float, 4, Cuda> dx, TensorView<float, 3, Cuda> ddt,
                                   TensorView<float, 1, Cuda> dA, TensorView<float, 4, Cuda> dB,
                                   TensorView<float, 4, Cuda> dC, TensorView<float, 1, Cuda> dD, GradientMode mode) {
  const int64_t B = x.size(0), L = x.size(1), H = x.size(2), P = x.size(3), N = Bm.size(3);
  if (H == 0) return;
  const int64_t per_row_bytes = H * L * P * N * 4 + H * P * N * 8 + 2 * L * H * N * 8;
  const int64_t bs = std::max<int64_t>(1, std::min<int64_t>({B, 65535, (int64_t(1) << 32) / std::max<int64_t>(1, per_row_bytes)}));
  auto& ws = ctx.workspace();
  WorkspaceScope<Cuda> scope(ws);
  gpu::SsdBackwardScratch s;
  s.dA_part = ws.take<double>(size_t(B * H));
  s.dD_part = ws.take<double>(size_t(B * H));
  s.states = ws.take<float>(size_t(bs * H * L * P * N));
  s.dS = ws.take<double>(size_t(bs * H * P * N));
  s.head_B = ws.take<double>(size_t(bs * L * H * N));
  s.head_C = ws.take<double>(size_t(bs * L * H * N));
  const int threads = gpu::threads_for(std::max(N, P));
  for (int64_t b0 = 0; b0 < B; b0 += bs) {
    const int64_t rows = std::min(bs, B - b0);
    gpu::ssd_backward_head_kernel<float><<<dim3(unsigned(H), unsigned(rows)), threads, size_t(2 * P) * sizeof(float),
                                           ctx.stream()>>>(x, dt, A, Bm, Cm, D, dy, dx, ddt, b0, s, mode);
    gpu::check_launch();
    const int64_t items = rows * L * Bm.size(2) * N;
    if (items > 0) {
      gpu::ssd_backward_group_kernel<float><<<gpu::grid_for(items), gpu::kThreads, 0, ctx.stream()>>>(b0, rows, H, s, dB,
                                                                                                     dC, mode);
      gpu::check_launch();
    }
  }
  gpu::ssd_backward_heads_kernel<float><<<unsigned((H + gpu::kThreads - 1) / gpu::kThreads), gpu::kThreads, 0,
                                          ctx.stream()>>>(B, s, dA, dD, mode);
  gpu::check_launch();
}

}  // namespace bimamba::detail
