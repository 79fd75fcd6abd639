// Cuda Mamba-2 scan backward (see ops/ssd_scan_backward.hpp): the sequential reverse-time recurrence, with the
// state split over blocks by rows so that each thread keeps its part of dS in registers.
//
// Blocks (h, batch row, slice): a slice is PS consecutive rows p of the head's P x N state, PS = min(P,
// kSliceElems / N), so a block owns PS N <= kSliceElems = 256 x 8 elements, element e = (p, n) with p = e / N,
// n = e % N held by thread e % 256 in register k = e / 256. Per block:
//   forward   S_t[e] = a_t S_{t-1}[e] + dt_t x_t[p] B_t[n]  (a_t = expf(dt_t A_h)) into scratch, t = 0 .. L-1
//   reverse   t = L-1 .. 0, with x_t, dy_t (the slice's rows) and B_t, C_t staged in shared memory:
//             dS[e] += dy_t[p] C_t[n];  the products dy_t[p] S_t[e], dt_t dS[e] x_t[p], dS[e] B_t[n] to shared
//             column sums (over the slice's rows, in row order) -> this slice's part of dC_t, dB_t
//             row sums (over n, one warp per row) -> dx_t[p] = dt_t dSB[p] + D_h dy_t[p]; xsb = sum_p x_t[p] dSB[p]
//             dprev = <dS, S_{t-1}> over the block;  dS[e] *= a_t
//   then ssd_backward_time_kernel: ddt_t = sum over slices of xsb + A_h a_t dprev, and the dA_h term
//   dt_t a_t dprev; ssd_backward_group_kernel: dB, dC = sums over the heads of the group and their slices;
//   ssd_backward_heads_kernel: dA, dD summed over batch and time.
// Two blocks fit an SM (__launch_bounds__(256, 2): at most 128 registers), so the 780M shape's 48 heads x 4
// slices run in one wave on 132 SMs. Every sum has a fixed order (no atomics): the same bits on every run. Per-element arithmetic is
// float and the sums over time (dA, dD) double; against the host's double recurrence that is ~1e-6 relative.
//
// Scratch (ctx.workspace()), per slab of batch rows (as many as fit in 4 GiB, at least one): the states
// (H, L, P, N) floats (3.2 GB per batch row at the 780M shape, L = 2048), per-slice column sums 2 (L, H, S, N)
// floats, per-slice scalars 2 (L, H, S) floats and the dA terms (L, H) doubles; plus 2 B H S doubles of dD and
// dA partials. d_state N above kSliceElems is refused.
#pragma once

#include <algorithm>

#include "../../core/workspace.hpp"
#include "launch_backward.cuh"

namespace bimamba::detail {

namespace gpu {
inline constexpr int kSsdBwdThreads = 256, kSsdBwdPerThread = 8;
inline constexpr int64_t kSliceElems = int64_t(kSsdBwdThreads) * kSsdBwdPerThread;

struct SsdBackwardScratch {
  int64_t slices, rows_per_slice;  // S, PS
  float* states;  // (bs, H, L, P, N)
  float* col_C;   // (bs, L, H, S, N) this slice's part of dC_t
  float* col_B;   // (bs, L, H, S, N) this slice's part of dB_t
  float* xsb;     // (bs, L, H, S)   sum_p x_t[p] dSB[p] over the slice's rows
  float* dprev;   // (bs, L, H, S)   <dS_t, S_{t-1}> over the slice
  double* dA_term;  // (bs, L, H)    dt_t a_t <dS_t, S_{t-1}>
  double* dD_part;  // (B, H, S)     sum_t dy_t . x_t over the slice's rows
};

template <class T>
__global__ void __launch_bounds__(kSsdBwdThreads, 2)
    ssd_backward_slice_kernel(TensorView<const T, 4, Cuda> x, TensorView<const T, 3, Cuda> dt,
                              TensorView<const T, 1, Cuda> A, TensorView<const T, 4, Cuda> Bm,
                              TensorView<const T, 4, Cuda> Cm, TensorView<const T, 1, Cuda> D,
                              TensorView<const T, 4, Cuda> dy, TensorView<T, 4, Cuda> dx, int64_t b0,
                              SsdBackwardScratch s, GradientMode mode) {
  constexpr int K = kSsdBwdPerThread, W = kSsdBwdThreads;
  extern __shared__ float smem[];  // xs, gys (PS); Bs, Cs (N); prod_C, prod_B, prod_SB (PS N)
  __shared__ float scratch[32];
  const int64_t L = x.size(1), H = x.size(2), P = x.size(3), G = Bm.size(2), PN = P * Bm.size(3);
  const int N = int(Bm.size(3));
  const int64_t h = blockIdx.x, bl = blockIdx.y, slice = blockIdx.z, b = b0 + bl, g = h / (H / G);
  const int64_t p0 = slice * s.rows_per_slice;
  const int PS = int(P - p0 < s.rows_per_slice ? P - p0 : s.rows_per_slice), E = PS * N;
  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5, R = int(s.rows_per_slice);
  float* xs = smem;
  float* gys = xs + R;
  float* Bs = gys + R;
  float* Cs = Bs + N;
  float* prod_C = Cs + N;
  float* prod_B = prod_C + R * N;
  float* prod_SB = prod_B + R * N;
  float* states = s.states + (bl * H + h) * L * PN + p0 * N;  // step t: states + t P N, the slice's E elements
  const float Ah = A(h), Dh = present(D) ? D(h) : 0.0f;
  // Element (t, row i of the slice) of x / dy, (t, n) of B / C, t of dt: base + t * step + i * inner.
  const T* x_at = &x(b, 0, h, p0);
  const T* dy_at = &dy(b, 0, h, p0);
  const T* B_at = &Bm(b, 0, g, 0);
  const T* C_at = &Cm(b, 0, g, 0);
  const T* dt_at = &dt(b, 0, h);
  const int64_t x_step = x.stride(1), x_inner = x.stride(3), dy_step = dy.stride(1), dy_inner = dy.stride(3);
  const int64_t B_step = Bm.stride(1), B_inner = Bm.stride(3), C_step = Cm.stride(1), C_inner = Cm.stride(3);
  const int64_t dt_step = dt.stride(1);

  int pk[K], nk[K];  // row and column of this thread's elements (-1: none)
  float S[K], dS[K], pre[K];
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int e = tid + k * W;
    pk[k] = e < E ? e / N : -1;
    nk[k] = e < E ? e % N : 0;
    S[k] = 0.0f, dS[k] = 0.0f;
  }
  for (int64_t t = 0; t < L; ++t) {  // forward: the states, element by element in registers
    const float d = dt_at[t * dt_step], a = expf(d * Ah);
    const T* xt = x_at + t * x_step;
    const T* Bt = B_at + t * B_step;
    float* St = states + t * PN;
#pragma unroll
    for (int k = 0; k < K; ++k)
      if (pk[k] >= 0) {
        S[k] = a * S[k] + d * xt[pk[k] * x_inner] * Bt[nk[k] * B_inner];
        St[tid + k * W] = S[k];
      }
  }

  // The inputs of step t - 1 are loaded into registers during step t (next_*), and S_{t-2} into pre: the
  // loads' latency overlaps the step instead of starting it.
  float next_x[K], next_gy[K], next_B[K], next_C[K], next_d = 0.0f;
  auto fetch = [&](int64_t t) {
    const T* xt = x_at + t * x_step;
    const T* gt = dy_at + t * dy_step;
    const T* Bt = B_at + t * B_step;
    const T* Ct = C_at + t * C_step;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int i = tid + k * W;
      if (i < PS) next_x[k] = xt[i * x_inner], next_gy[k] = gt[i * dy_inner];
      if (i < N) next_B[k] = Bt[i * B_inner], next_C[k] = Ct[i * C_inner];
    }
    next_d = dt_at[t * dt_step];
  };
  fetch(L - 1);
#pragma unroll
  for (int k = 0; k < K; ++k) pre[k] = pk[k] >= 0 && L >= 2 ? states[(L - 2) * PN + tid + k * W] : 0.0f;

  double sum_dD = 0;  // warp 0 (every lane holds the total)
  for (int64_t t = L - 1; t >= 0; --t) {
    __syncthreads();  // the previous step's readers of the shared arrays are done
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int i = tid + k * W;
      if (i < PS) xs[i] = next_x[k], gys[i] = next_gy[k];
      if (i < N) Bs[i] = next_B[k], Cs[i] = next_C[k];
    }
    const float d = next_d, a = expf(d * Ah);
    if (t > 0) fetch(t - 1);
    __syncthreads();
    const float* S_prev2 = states + (t >= 2 ? t - 2 : 0) * PN;  // S_{t-2}, read when t >= 2
    float dprev = 0.0f;
#pragma unroll
    for (int k = 0; k < K; ++k)
      if (pk[k] >= 0) {
        const int e = tid + k * W, p = pk[k], n = nk[k];
        const float ds = dS[k] + gys[p] * Cs[n];
        const float prev = pre[k];  // S_{t-1}; S[k] holds S_t
        prod_C[e] = gys[p] * S[k];
        prod_B[e] = d * ds * xs[p];
        prod_SB[e] = ds * Bs[n];
        dprev += ds * prev;
        dS[k] = ds * a;  // the gradient reaching S_{t-1}
        S[k] = prev;
        pre[k] = t >= 2 ? S_prev2[e] : 0.0f;
      }
    __syncthreads();
    const int64_t at = (bl * L + t) * H + h;  // (bs, L, H) index
    float* colC = s.col_C + (at * s.slices + slice) * N;
    float* colB = s.col_B + (at * s.slices + slice) * N;
    for (int n = tid; n < N; n += W) {  // column sums over the slice's rows, in row order
      float sc = 0.0f, sb = 0.0f;
      for (int p = 0; p < PS; ++p) sc += prod_C[p * N + n], sb += prod_B[p * N + n];
      colC[n] = sc;
      colB[n] = sb;
    }
    for (int r = warp; r < PS; r += W / 32) {  // row sums over n, one warp per row
      float sb = 0.0f;
      for (int n = lane; n < N; n += 32) sb += prod_SB[r * N + n];
      sb = warp_sum(sb);
      if (lane == 0) {
        put_grad(dx(b, t, h, p0 + r), double(d) * sb + double(Dh) * gys[r], mode);
        prod_SB[r * N] = xs[r] * sb;  // the row's x_t[p] dSB[p] (its other entries are no longer read)
      }
    }
    dprev = block_sum(dprev, scratch);  // its barriers also order the row sums before the reads below
    if (warp == 0) {
      float xsb = 0.0f;
      double dD = 0;
      for (int r = lane; r < PS; r += 32) xsb += prod_SB[r * N], dD += double(gys[r]) * xs[r];
      xsb = warp_sum(xsb);
      sum_dD += warp_sum(dD);
      if (lane == 0) {
        s.xsb[at * s.slices + slice] = xsb;
        s.dprev[at * s.slices + slice] = dprev;
      }
    }
  }
  if (tid == 0) s.dD_part[(b * H + h) * s.slices + slice] = sum_dD;
}

// ddt_t = sum over slices of xsb + A_h a_t dprev, and the dA term dt_t a_t dprev, per (row, t, h).
template <class T>
__global__ void ssd_backward_time_kernel(int64_t b0, int64_t bs, TensorView<const T, 3, Cuda> dt,
                                         TensorView<const T, 1, Cuda> A, SsdBackwardScratch s,
                                         TensorView<T, 3, Cuda> ddt, GradientMode mode) {
  const int64_t L = dt.size(1), H = dt.size(2), n_items = bs * L * H;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n_items; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t h = i % H, t = (i / H) % L, bl = i / (H * L);
    double xsb = 0, dprev = 0;
    for (int64_t k = 0; k < s.slices; ++k) xsb += s.xsb[i * s.slices + k], dprev += s.dprev[i * s.slices + k];
    const double d = dt(b0 + bl, t, h), a = double(expf(float(d) * A(h)));
    put_grad(ddt(b0 + bl, t, h), xsb + double(A(h)) * a * dprev, mode);
    s.dA_term[i] = d * a * dprev;
  }
}

// dB, dC of the slab's rows: sums over the heads of each group and their slices, in (head, slice) order.
template <class T>
__global__ void ssd_backward_group_kernel(int64_t b0, int64_t bs, int64_t H, SsdBackwardScratch s,
                                          TensorView<T, 4, Cuda> dB, TensorView<T, 4, Cuda> dC, GradientMode mode) {
  const int64_t L = dB.size(1), G = dB.size(2), N = dB.size(3), per_group = H / G, n_items = bs * L * G * N;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n_items; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i % N, g = (i / N) % G, t = (i / (N * G)) % L, bl = i / (N * G * L);
    double sb = 0, sc = 0;
    for (int64_t h = g * per_group; h < (g + 1) * per_group; ++h)
      for (int64_t k = 0; k < s.slices; ++k) {
        const int64_t at = (((bl * L + t) * H + h) * s.slices + k) * N + n;
        sb += s.col_B[at];
        sc += s.col_C[at];
      }
    put_grad(dB(b0 + bl, t, g, n), sb, mode);
    put_grad(dC(b0 + bl, t, g, n), sc, mode);
  }
}

// dA_h (this slab's terms added to the running dA_part) and, after the last slab, dA and dD.
template <class T>
__global__ void ssd_backward_heads_kernel(int64_t bs, int64_t L, SsdBackwardScratch s, double* dA_part,
                                          int64_t B, bool last, TensorView<T, 1, Cuda> dA, TensorView<T, 1, Cuda> dD,
                                          GradientMode mode) {
  const int64_t H = dA.size(0), h = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (h >= H) return;
  double sa = dA_part[h];
  for (int64_t i = 0; i < bs * L; ++i) sa += s.dA_term[i * H + h];
  dA_part[h] = sa;
  if (!last) return;
  put_grad(dA(h), sa, mode);
  if (present(dD)) {
    double sd = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t k = 0; k < s.slices; ++k) sd += s.dD_part[(b * H + h) * s.slices + k];
    put_grad(dD(h), sd, mode);
  }
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
  BIMAMBA_CHECK(N <= gpu::kSliceElems, "ssd_scan_backward (Cuda): d_state ", N, " is above the supported ",
                gpu::kSliceElems);
  gpu::SsdBackwardScratch s;
  s.rows_per_slice = std::max<int64_t>(1, std::min<int64_t>(P, gpu::kSliceElems / std::max<int64_t>(N, 1)));
  s.slices = P == 0 ? 0 : (P + s.rows_per_slice - 1) / s.rows_per_slice;
  BIMAMBA_CHECK(s.slices < 65536, "ssd_scan_backward (Cuda): ", s.slices, " state slices exceed the grid");
  const int64_t per_row_bytes = H * L * P * N * 4 + 2 * L * H * s.slices * (N + 1) * 4 + L * H * 8;
  const int64_t bs = std::max<int64_t>(1, std::min<int64_t>({B, 65535, (int64_t(1) << 32) / std::max<int64_t>(1, per_row_bytes)}));
  auto& ws = ctx.workspace();
  WorkspaceScope<Cuda> scope(ws);
  double* dA_part = ws.take<double>(size_t(H));
  s.dD_part = ws.take<double>(size_t(B * H * std::max<int64_t>(s.slices, 1)));
  s.states = ws.take<float>(size_t(bs * H * L * P * N));
  s.col_C = ws.take<float>(size_t(bs * L * H * s.slices * N));
  s.col_B = ws.take<float>(size_t(bs * L * H * s.slices * N));
  s.xsb = ws.take<float>(size_t(bs * L * H * s.slices));
  s.dprev = ws.take<float>(size_t(bs * L * H * s.slices));
  s.dA_term = ws.take<double>(size_t(bs * L * H));
  BIMAMBA_CUDA_CHECK(cudaMemsetAsync(dA_part, 0, size_t(H) * sizeof(double), ctx.stream()));
  BIMAMBA_CUDA_CHECK(cudaMemsetAsync(s.dD_part, 0, size_t(B * H * std::max<int64_t>(s.slices, 1)) * sizeof(double),
                                     ctx.stream()));  // L = 0 runs no slice kernel
  const size_t smem = size_t(2 * s.rows_per_slice + 2 * N + 3 * s.rows_per_slice * N) * sizeof(float);
  for (int64_t b0 = 0; b0 < B; b0 += bs) {
    const int64_t rows = std::min(bs, B - b0);
    if (s.slices > 0 && L > 0) {
      gpu::ssd_backward_slice_kernel<float>
          <<<dim3(unsigned(H), unsigned(rows), unsigned(s.slices)), gpu::kSsdBwdThreads, smem, ctx.stream()>>>(
              x, dt, A, Bm, Cm, D, dy, dx, b0, s, mode);
      gpu::check_launch();
    }
    const int64_t times = rows * L * H, items = rows * L * Bm.size(2) * N;
    if (times > 0) {
      gpu::ssd_backward_time_kernel<float><<<gpu::grid_for(times), gpu::kThreads, 0, ctx.stream()>>>(b0, rows, dt, A, s,
                                                                                                    ddt, mode);
      gpu::check_launch();
    }
    if (items > 0) {
      gpu::ssd_backward_group_kernel<float><<<gpu::grid_for(items), gpu::kThreads, 0, ctx.stream()>>>(b0, rows, H, s, dB,
                                                                                                     dC, mode);
      gpu::check_launch();
    }
    gpu::ssd_backward_heads_kernel<float><<<unsigned((H + gpu::kThreads - 1) / gpu::kThreads), gpu::kThreads, 0,
                                            ctx.stream()>>>(rows, L, s, dA_part, B, b0 + rows >= B, dA, dD, mode);
    gpu::check_launch();
  }
}

}  // namespace bimamba::detail
