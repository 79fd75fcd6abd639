// Cuda chunked SSD scan (see ops/ssd_scan.hpp for the math) with its products on cuBLAS: per (batch, chunk) of
// Qc <= Q = min(chunk_size, 128) tokens, group g and head h (heads of g: Hg = H / G), with a_t = dt_t A_h and the
// within-chunk cumulative sums cs_i = a_0 + ... + a_i in double (seg(i, j) = cs_i - cs_j loses nothing):
//   1. states    cs, decays, Xw_j = exp(cs_last - cs_j) dt_j x_j; Z_c = B_c^T Xw_c (N x Hg P) batched over
//                (b, c, g); the carry over the chunks gives S_in[c] and the final state (ops/cuda/ssd_chunks.cuh)
//   2. CB        CB[i, j] = C_i . B_j                                  (Qc x Qc x N)  batched over (b, c, g)
//   3. mask      M_h[i, j] = CB[i, j] exp(cs_i - cs_j) dt_j  for j <= i, else 0        (element-wise)
//   4. inter     y_c = C_c S_in[c]                    (Qc x P x N)  batched over (b, c, g, head of g)
//   5. scale     y_i = exp(cs_i) y_i + D x_i                                             (element-wise)
//   6. intra     y_c += M_h x_c                       (Qc x P x Qc) batched over (b, c, h)
// Profiler ranges (core/profile_range.hpp) inside the caller's: states (1), outputs (2 - 6).
// A sequence whose length is not a multiple of Q ends in a shorter chunk: each batched product runs once over the
// full chunks and once over that chunk. The products are float (cuBLAS SGEMM) when the context's GemmPrecision
// is Fp32 (the default; inference), TF32 tensor cores otherwise (training with --precision tf32 | bf16); the
// state, the decays and the element-wise steps are float, cs double.
//
// Cost at the 780M shape (B = 1, L = 2048, H = 48, P = 64, N = 128, G = 1, Q = 128): ~5 GFLOP per layer in
// products of thousands of rows; the earlier form (three SIMT kernels, 16 x 16 score tiles in shared memory)
// ran them at ~5 TFLOP/s, 1.5-2 ms per layer on an H100 (bench/RESULTS_CUDA.md, session 11).
//
// Contracts as ops/ssd_scan.hpp; on Cuda also the stride along L of x, y (B, C) is at least P (N) when L > 1
// (rows do not overlap: cuBLAS's leading dimension). Scratch (ctx.workspace()): cs (B, H, chunks, Q) doubles,
// decays (B, H, chunks), CB (B, chunks, G, Q, Q), M (B, chunks, H, Q, Q), Xw (B, L, H, P), states (B, chunks, N,
// H, P) floats: at the 780M shape and L = 2048, 4 + 50 + 25 + 25 MB.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../../core/profile_range.hpp"
#include "../../core/workspace.hpp"
#include "../common.hpp"
#include "gemm.cuh"
#include "launch.cuh"
#include "ssd_chunks.cuh"

namespace bimamba::detail {

namespace gpu {
inline constexpr int kSsdGemmChunk = 128;  // Q: tokens per chunk of the forward

// Block (x: b * chunks + c, y: head h), 32 x 8 threads: M_h[i, j] for i, j < Qc, j along x (coalesced rows);
// cb (B, chunks, G, Q, Q), mask (B, chunks, H, Q, Q). The chunk's cs and dt are staged in shared memory.
template <class T>
__global__ void ssd_mask_kernel(SsdChunks s, TensorView<const T, 3, Cuda> dt, const float* cb, float* mask) {
  __shared__ double cs[kSsdMaxChunk];
  __shared__ float dts[kSsdMaxChunk];
  const SsdGeometry& g = s.geo;
  const int64_t bc = blockIdx.x, h = blockIdx.y, c = bc % g.chunks, b = bc / g.chunks;
  const int Q = int(g.Q), Qc = int(g.tokens_in(c)), tid = int(threadIdx.y * blockDim.x + threadIdx.x);
  const double* cs_row = s.cs + ((b * g.H + h) * g.chunks + c) * g.Q;
  for (int k = tid; k < Qc; k += int(blockDim.x * blockDim.y)) {
    cs[k] = cs_row[k];
    dts[k] = float(dt(b, c * g.Q + k, h));
  }
  __syncthreads();
  const float* cbm = cb + (bc * g.G + h / (g.H / g.G)) * g.Q * g.Q;
  float* m = mask + (bc * g.H + h) * g.Q * g.Q;
  // kMaskLoads elements per thread and round, all loads before the stores to the mask.
  constexpr int kMaskLoads = 16;
  const int threads = int(blockDim.x * blockDim.y);
  for (int e0 = tid; e0 < Q * Q; e0 += kMaskLoads * threads) {
    float v[kMaskLoads];
#pragma unroll
    for (int u = 0; u < kMaskLoads; ++u) {
      const int e = e0 + u * threads, i = e / Q, j = e - i * Q;
      v[u] = e < Q * Q && j <= i && i < Qc ? cbm[e] : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kMaskLoads; ++u) {
      const int e = e0 + u * threads, i = e / Q, j = e - i * Q;
      if (e < Q * Q && i < Qc && j < Qc) m[e] = j <= i ? v[u] * expf(float(cs[i] - cs[j])) * dts[j] : 0.0f;
    }
  }
}

// Grid (tokens, H P / blockDim), a thread per element: y[b, t, h, p] = exp(cs_i) y + D_h x.
template <class T>
__global__ void ssd_output_scale_kernel(SsdChunks s, TensorView<const T, 4, Cuda> x, TensorView<const T, 1, Cuda> D,
                                        TensorView<T, 4, Cuda> y) {
  const SsdGeometry& g = s.geo;
  const int P = int(g.P), HP = int(g.H * g.P), k = int(blockIdx.y * blockDim.x + threadIdx.x);
  if (k >= HP) return;
  const int64_t b = blockIdx.x / g.L, t = blockIdx.x % g.L, c = t / g.Q, i = t % g.Q;
  const int h = k / P, p = k - h * P;
  const float decay = expf(float(s.cs[((b * g.H + h) * g.chunks + c) * g.Q + i]));
  const float skip = present(D) ? float(D(h)) * float(x(b, t, h, p)) : 0.0f;
  y(b, t, h, p) = T(decay * float(y(b, t, h, p)) + skip);
}
}  // namespace gpu

inline void ssd_scan_impl(Context<Cuda>& ctx, TensorView<const float, 4, Cuda> x, TensorView<const float, 3, Cuda> dt,
                          TensorView<const float, 1, Cuda> A, TensorView<const float, 4, Cuda> Bm,
                          TensorView<const float, 4, Cuda> Cm, TensorView<const float, 1, Cuda> D, int64_t chunk_size,
                          TensorView<float, 4, Cuda> y, TensorView<const float, 4, Cuda> initial_state,
                          TensorView<float, 4, Cuda> final_state) {
  using namespace gpu;
  const int64_t B = x.size(0), L = x.size(1), H = x.size(2), P = x.size(3), G = Bm.size(2), N = Bm.size(3);
  const int64_t Q = std::max<int64_t>(1, std::min<int64_t>({chunk_size, L, kSsdGemmChunk}));
  const SsdGeometry g{B, L, H, P, G, N, Q, (L + Q - 1) / Q};
  const int64_t Hg = H / G, HP = H * P, QQ = Q * Q, NHP = N * HP;
  if (B * H * P == 0) return;
  const cudaStream_t stream = ctx.stream();
  if (L == 0) {  // no tokens: the final state is the initial one
    if (present(final_state) && N > 0) {
      ssd_carry_kernel<false, float><<<grid_for(B * N * HP), kThreads, 0, stream>>>(g, nullptr, nullptr, initial_state,
                                                                                  final_state);
      check_launch();
    }
    return;
  }
  BIMAMBA_CHECK(B * H < 65536 && B * L < (int64_t(1) << 31), "ssd_scan: ", B * H, " (batch, head) pairs or ", B * L,
                " tokens exceed the Cuda grid limits (65535, 2^31 - 1)");
  const int64_t ld_x = ssd_leading_dim(x.stride(1), P, L, "x"), ld_y = ssd_leading_dim(y.stride(1), P, L, "y");
  const int64_t ld_c = ssd_leading_dim(Cm.stride(1), N, L, "C"), ld_b = ssd_leading_dim(Bm.stride(1), N, L, "B");

  WorkspaceScope<Cuda> scope(ctx.workspace());
  const SsdChunks s = ssd_take_chunks(ctx.workspace(), g);
  float* cb = ctx.workspace().take<float>(size_t(B * g.chunks * G * QQ));
  float* mask = ctx.workspace().take<float>(size_t(B * g.chunks * H * QQ));
  {
    ProfileRange<Cuda> range(ctx, "states");
    ssd_chunk_states(ctx, s, x, dt, A, Bm, initial_state, final_state);  // 1.
  }
  ProfileRange<Cuda> range(ctx, "outputs");

  const float* xp = x.data();
  const float* bp = Bm.data();
  const float* cp = Cm.data();
  float* yp = y.data();
  const int64_t xs0 = x.stride(0), xs1 = x.stride(1), xs2 = x.stride(2);
  const int64_t bs0 = Bm.stride(0), bs1 = Bm.stride(1), bs2 = Bm.stride(2);
  const int64_t cs0 = Cm.stride(0), cs1 = Cm.stride(1), cs2 = Cm.stride(2);
  const int64_t ys0 = y.stride(0), ys1 = y.stride(1), ys2 = y.stride(2);
  for_each_chunk_round(g, [&](int64_t first, int64_t count, int64_t Qc) {  // 2. CB, stored [i * Q + j]:
    // column-major (j, i) = B_c C_c^T
    gemm_batched(ctx, CUBLAS_OP_T, CUBLAS_OP_N, Qc, Qc, N, {{B, count, G, 1}},
                 {bp + first * Q * bs1, {bs0, Q * bs1, bs2, 0}}, ld_b, {cp + first * Q * cs1, {cs0, Q * cs1, cs2, 0}},
                 ld_c, 0.0f, {cb + first * G * QQ, {g.chunks * G * QQ, G * QQ, QQ, 0}}, Q);
  });
  ssd_mask_kernel<float><<<dim3(unsigned(B * g.chunks), unsigned(H)), dim3(32, 8), 0, stream>>>(s, dt, cb, mask);  // 3.
  check_launch();
  for_each_chunk_round(g, [&](int64_t first, int64_t count, int64_t Qc) {  // 4. y_c = C_c S_in[c]^T per head:
    // column-major (P, Qc) = S^T C_c^T
    gemm_batched(ctx, CUBLAS_OP_N, CUBLAS_OP_N, P, Qc, N, {{B, count, G, Hg}},
                 {s.states + first * NHP, {g.chunks * NHP, NHP, Hg * P, P}}, HP,
                 {cp + first * Q * cs1, {cs0, Q * cs1, cs2, 0}}, ld_c, 0.0f,
                 {yp + first * Q * ys1, {ys0, Q * ys1, Hg * ys2, ys2}}, ld_y);
  });
  ssd_output_scale_kernel<float>
      <<<dim3(unsigned(B * L), unsigned((HP + kThreads - 1) / kThreads)), kThreads, 0, stream>>>(s, x, D, y);  // 5.
  check_launch();
  for_each_chunk_round(g, [&](int64_t first, int64_t count, int64_t Qc) {  // 6. y_c += M_h x_c:
    // column-major (P, Qc) += x_c^T M_h^T
    gemm_batched(ctx, CUBLAS_OP_N, CUBLAS_OP_N, P, Qc, Qc, {{B, count, H, 1}},
                 {xp + first * Q * xs1, {xs0, Q * xs1, xs2, 0}}, ld_x,
                 {mask + first * H * QQ, {g.chunks * H * QQ, H * QQ, QQ, 0}}, Q, 1.0f,
                 {yp + first * Q * ys1, {ys0, Q * ys1, ys2, 0}}, ld_y);
  });
}

}  // namespace bimamba::detail
