// Cuda chunked SSD scan (see ops/ssd_scan.hpp for the math): per (batch, chunk) of Qc <= Q = min(chunk_size, 128)
// tokens, group g and head h (heads of g: Hg = H / G), with a_t = dt_t A_h and the within-chunk cumulative sums
// cs_i = a_0 + ... + a_i in double (seg(i, j) = cs_i - cs_j loses nothing):
//   1. states    cs, decays, Xw_j = exp(cs_last - cs_j) dt_j x_j; Z_c = B_c^T Xw_c (N x Hg P) batched over
//                (b, c, g) on cuBLAS; the carry over the chunks gives S_in[c] and the final state
//                (ops/cuda/ssd_chunks.cuh)
//   2. CB        CB[i, j] = C_i . B_j                     (Qc x Qc x N)  batched over (b, c, g) on cuBLAS
//   3. - 6.      ssd_chunk_scan_kernel, per (b, c, h):
//                y_c = (exp(cs) ⊙ C_c) S_in[c] + M' x_c,
//                M'[i, j] = CB[i, j] exp(cs_i - cs_j) dt_j (j <= i, else 0) + D_h [i = j]
//                on TF32 tensor cores, the mask built while staged: M and y's partial sums stay on chip
// Profiler ranges (core/profile_range.hpp) inside the caller's: states (1), outputs (2 - 6).
// A sequence whose length is not a multiple of Q ends in a shorter chunk: each batched product runs once over the
// full chunks and once over that chunk. The cuBLAS products are float (SGEMM) when the context's GemmPrecision is
// Fp32 (the default; inference), TF32 tensor cores otherwise (training with --precision tf32 | bf16); the chunk
// kernel's likewise: 3xTF32 (~fp32) under Fp32, TF32 otherwise. The state, the decays and the element-wise steps
// are float, cs double.
//
// Cost at the 780M shape (B = 1, L = 2048, H = 48, P = 64, N = 128, G = 1, Q = 128): ~5 GFLOP per layer. Until
// session 19 steps 3 - 6 were a mask kernel, two batched cuBLAS products and a scaling kernel, with the mask
// (B, chunks, H, Q, Q) and y going through HBM between them (~1.1 GB a layer at batch 4, 0.77 ms on an H100);
// session 11's form (three SIMT kernels, 16 x 16 score tiles in shared memory) ran at ~5 TFLOP/s, 1.5-2 ms per
// layer (bench/RESULTS_CUDA.md).
//
// Contracts as ops/ssd_scan.hpp; on Cuda also the stride along L of x, y (B, C) is at least P (N) when L > 1
// (rows do not overlap: cuBLAS's leading dimension). Scratch (ctx.workspace()): cs (B, H, chunks, Q) doubles,
// decays (B, H, chunks), CB (B, chunks, G, Q, Q), Xw (B, L, H, P), states (B, chunks, N, H, P) floats: at the
// 780M shape and L = 2048, 4 + 1 + 25 + 25 MB. The chunk kernel: 36 KB of shared memory per block.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../../core/profile_range.hpp"
#include "../../core/workspace.hpp"
#include "../common.hpp"
#include "gemm.cuh"
#include "launch.cuh"
#include "ssd_chunks.cuh"
#include "tf32_mma.cuh"

namespace bimamba::detail {

namespace gpu {
inline constexpr int kSsdGemmChunk = 128;  // Q: tokens per chunk of the forward

// The chunk kernel's shape: 8 warps, warp w owns the 16 rows 16 w .. 16 w + 15 of the chunk's output and the 64
// columns of a slab of P (four 16 x 16 accumulators); the products run over k in slabs of kSsdScanK staged in
// shared memory (pitches: wmma's ldm a multiple of 4 floats, fragment rows 32 B aligned, rows of a column read
// four banks apart).
inline constexpr int kSsdScanThreads = 256;
inline constexpr int kSsdScanK = 32;                          // k per staged slab (of N, then of the chunk's tokens)
inline constexpr int kSsdScanCols = 64;                       // columns of P per pass
inline constexpr int kSsdScanPitchA = kSsdScanK + 4;          // (Q, k) slabs: exp(cs_i) C, then M
inline constexpr int kSsdScanPitchB = kSsdScanCols + 4;       // (k, 64) slabs: S_in, then x; the output tile
inline constexpr size_t kSsdScanHead = kSsdGemmChunk * (sizeof(double) + 2 * sizeof(float));  // cs, dt, exp(cs)
inline constexpr size_t kSsdScanSmem =
    kSsdScanHead + std::max(size_t(kSsdGemmChunk) * kSsdScanPitchA + size_t(kSsdScanK) * kSsdScanPitchB,
                            size_t(kSsdGemmChunk) * kSsdScanPitchB) * sizeof(float);
static_assert(kSsdGemmChunk == 16 * (kSsdScanThreads / 32), "a warp per 16 rows of a full chunk");
static_assert(kSsdScanHead % 128 == 0 && kSsdScanSmem % 128 == 0, "the tiles 32 B aligned (wmma)");
static_assert(kSsdScanSmem <= (48 << 10), "no shared-memory opt-in");

// Whether a launch may stage in float4s (ssd_chunk_scan_kernel's `vec`): N, P and Q multiples of 4, x, C and y in
// aligned quads along their last dimension (the chunk states and CB are 64-byte aligned workspace scratch).
template <class T>
inline bool ssd_scan_vectorizable(const SsdGeometry& g, const TensorView<const T, 4, Cuda>& x,
                                  const TensorView<const T, 4, Cuda>& Cm, const TensorView<T, 4, Cuda>& y) {
  return g.N % 4 == 0 && g.P % 4 == 0 && g.Q % 4 == 0 && float4_rows(x) && float4_rows(Cm) && float4_rows(y);
}

// Steps 3 - 6 of the top comment in one kernel per (b, chunk, head): block (x: b * chunks + c, y: head h),
// kSsdScanThreads threads, kSsdScanSmem bytes of shared memory. Per slab of 64 columns of P:
//   y_c = (exp(cs) ⊙ C_c) S_in[c]      k over N: C's rows scaled while staged, S_in[c] (N, P) of the chunk states
//       + M' x_c                        k over the chunk's tokens j <= i: M'[i, j] = CB[i, j] exp(cs_i - cs_j) dt_j,
//                                       plus D_h on the diagonal (the skip term), built while staged; a warp skips
//                                       the steps above its rows
// on TF32 tensor cores (ops/cuda/tf32_mma.cuh): split in 3xTF32 (fp32-level products) with kSplit, under
// GemmPrecision::Fp32, one pass otherwise (as the cuBLAS products it replaced) with the operands rounded once while
// staged; then through shared memory to y. Every staging round issues all its loads before its stores, in float4s
// where `vec` (ssd_scan_vectorizable; session 20: the read-out kernel of the backward lost 37% of its instructions
// and 21% of its time to this), single floats otherwise.
template <class T, bool kSplit>
__global__ void __launch_bounds__(kSsdScanThreads, 2)
    ssd_chunk_scan_kernel(SsdChunks s, TensorView<const T, 4, Cuda> x, TensorView<const T, 3, Cuda> dt,
                          TensorView<const T, 4, Cuda> Cm, TensorView<const T, 1, Cuda> D, const float* cb,
                          TensorView<T, 4, Cuda> y, bool vec) {
  constexpr int Qm = kSsdGemmChunk, K = kSsdScanK, PA = kSsdScanPitchA, PB = kSsdScanPitchB, W = kSsdScanCols;
  constexpr int kThreads = kSsdScanThreads;
  constexpr int kALoads = Qm * K / kThreads, kBLoads = K * W / kThreads;
  constexpr int kARowStep = kThreads / K, kBRowStep = kThreads / W;
  constexpr int kAQuads = kALoads / 4, kBQuads = kBLoads / 4;
  constexpr int kAQuadRowStep = kThreads / (K / 4), kBQuadRowStep = kThreads / (W / 4);
  extern __shared__ __align__(128) double scan_smem[];
  double* cs = scan_smem;                                  // (Q) cumulative sums of dt A within the chunk
  float* dts = reinterpret_cast<float*>(cs + Qm);          // (Q) dt_i
  float* row_decay = dts + Qm;                             // (Q) exp(cs_i)
  float* ta = row_decay + Qm;                              // (Q, PA) a slab of exp(cs) C, then of M'
  float* tb = ta + Qm * PA;                                // (K, PB) a slab of S_in[c], then of x
  float* out = ta;                                         // (Q, PB) the output slab, after the products

  const SsdGeometry& g = s.geo;
  const int tid = int(threadIdx.x), row0 = 16 * (tid >> 5);
  const int64_t bc = blockIdx.x, h = blockIdx.y, c = bc % g.chunks, b = bc / g.chunks, c0 = c * g.Q;
  const int64_t grp = h / (g.H / g.G), HP = g.H * g.P;
  const int Q = int(g.Q), Qc = int(g.tokens_in(c));
  if (tid < Qc) {
    cs[tid] = s.cs[((b * g.H + h) * g.chunks + c) * g.Q + tid];
    dts[tid] = float(dt(b, c0 + tid, h));
    row_decay[tid] = expf(float(cs[tid]));
  }
  __syncthreads();
  const float Dh = present(D) ? float(D(h)) : 0.0f;
  const float* cbm = cb + (bc * g.G + grp) * g.Q * g.Q;
  const float* S = s.states + bc * g.N * HP + h * g.P;  // S_in[c] (N, P), rows HP apart
  const T* cbase = Cm.data() + b * Cm.stride(0) + c0 * Cm.stride(1) + grp * Cm.stride(2);  // C_c (Qc, N)
  const T* xbase = x.data() + b * x.stride(0) + c0 * x.stride(1) + h * x.stride(2);        // x_c (Qc, P)
  // M'[i, j] of the chunk (zero outside j <= i < Qc), as staged.
  auto mask = [&](int i, int j, float cbv) {
    const bool in = j <= i && i < Qc;
    return tf32_operand<kSplit>(in ? cbv * expf(float(cs[i] - cs[j])) * dts[j] + (i == j ? Dh : 0.0f) : 0.0f);
  };
  const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  auto put4 = [](float* dst, float4 v) { *reinterpret_cast<float4*>(dst) = v; };
  auto operand4 = [](float4 v) {
    return make_float4(tf32_operand<kSplit>(v.x), tf32_operand<kSplit>(v.y), tf32_operand<kSplit>(v.z),
                       tf32_operand<kSplit>(v.w));
  };

  for (int64_t p0 = 0; p0 < g.P; p0 += W) {
    Tf32Accumulator acc[4];
#pragma unroll
    for (int t = 0; t < 4; ++t) wmma::fill_fragment(acc[t], 0.0f);
    // (exp(cs) ⊙ C_c) S_in[c], k over N.
    for (int64_t n0 = 0; n0 < g.N; n0 += K) {
      if (vec) {
        const int a_col = 4 * (tid % (K / 4)), a_row = tid / (K / 4);
        const int b_col = 4 * (tid % (W / 4)), b_row = tid / (W / 4);
        const bool n_in = n0 + a_col < g.N, col_in = p0 + b_col < g.P;
        float4 va[kAQuads], vb[kBQuads];
#pragma unroll
        for (int u = 0; u < kAQuads; ++u) {
          const int i = a_row + u * kAQuadRowStep;
          va[u] = n_in && i < Qc ? *reinterpret_cast<const float4*>(cbase + i * Cm.stride(1) + n0 + a_col) : zero;
        }
#pragma unroll
        for (int u = 0; u < kBQuads; ++u) {
          const int64_t n = n0 + b_row + u * kBQuadRowStep;
          vb[u] = col_in && n < g.N ? *reinterpret_cast<const float4*>(S + n * HP + p0 + b_col) : zero;
        }
        __syncthreads();  // the previous slab's products are done
#pragma unroll
        for (int u = 0; u < kAQuads; ++u) {
          const int i = a_row + u * kAQuadRowStep;
          const float r = i < Qc ? row_decay[i] : 0.0f;
          put4(ta + i * PA + a_col, operand4(make_float4(r * va[u].x, r * va[u].y, r * va[u].z, r * va[u].w)));
        }
#pragma unroll
        for (int u = 0; u < kBQuads; ++u) put4(tb + (b_row + u * kBQuadRowStep) * PB + b_col, operand4(vb[u]));
      } else {
        const int a_col = tid % K, a_row = tid / K, b_col = tid % W, b_row = tid / W;
        const bool n_in = n0 + a_col < g.N, col_in = p0 + b_col < g.P;
        float va[kALoads], vb[kBLoads];
#pragma unroll
        for (int u = 0; u < kALoads; ++u) {
          const int i = a_row + u * kARowStep;
          va[u] = n_in && i < Qc ? float(cbase[i * Cm.stride(1) + (n0 + a_col) * Cm.stride(3)]) : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < kBLoads; ++u) {
          const int64_t n = n0 + b_row + u * kBRowStep;
          vb[u] = col_in && n < g.N ? S[n * HP + p0 + b_col] : 0.0f;
        }
        __syncthreads();  // the previous slab's products are done
#pragma unroll
        for (int u = 0; u < kALoads; ++u) {
          const int i = a_row + u * kARowStep;
          ta[i * PA + a_col] = i < Qc ? tf32_operand<kSplit>(row_decay[i] * va[u]) : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < kBLoads; ++u) tb[(b_row + u * kBRowStep) * PB + b_col] = tf32_operand<kSplit>(vb[u]);
      }
      __syncthreads();
      const int steps = int((std::min<int64_t>(K, g.N - n0) + 7) / 8);
      if (row0 < Qc)
        tf32_mma<kSplit, 4, wmma::row_major, !kSplit>(ta + row0 * PA, PA, tb, PB, steps, acc);
    }
    // + M' x_c, k over the chunk's tokens.
    for (int j0 = 0; j0 < Qc; j0 += K) {
      if (vec) {
        const int a_col = 4 * (tid % (K / 4)), a_row = tid / (K / 4);
        const int b_col = 4 * (tid % (W / 4)), b_row = tid / (W / 4);
        const int j = j0 + a_col;
        const bool col_in = p0 + b_col < g.P;
        float4 va[kAQuads], vb[kBQuads];
#pragma unroll
        for (int u = 0; u < kAQuads; ++u) {
          const int i = a_row + u * kAQuadRowStep;
          va[u] = j <= i && i < Qc ? *reinterpret_cast<const float4*>(cbm + i * Q + j) : zero;
        }
#pragma unroll
        for (int u = 0; u < kBQuads; ++u) {
          const int t = j0 + b_row + u * kBQuadRowStep;
          vb[u] = col_in && t < Qc ? *reinterpret_cast<const float4*>(xbase + t * x.stride(1) + p0 + b_col) : zero;
        }
        __syncthreads();
#pragma unroll
        for (int u = 0; u < kAQuads; ++u) {
          const int i = a_row + u * kAQuadRowStep;
          put4(ta + i * PA + a_col, make_float4(mask(i, j, va[u].x), mask(i, j + 1, va[u].y), mask(i, j + 2, va[u].z),
                                                mask(i, j + 3, va[u].w)));
        }
#pragma unroll
        for (int u = 0; u < kBQuads; ++u) put4(tb + (b_row + u * kBQuadRowStep) * PB + b_col, operand4(vb[u]));
      } else {
        const int a_col = tid % K, a_row = tid / K, b_col = tid % W, b_row = tid / W;
        const int j = j0 + a_col;
        const bool col_in = p0 + b_col < g.P;
        float va[kALoads], vb[kBLoads];
#pragma unroll
        for (int u = 0; u < kALoads; ++u) {
          const int i = a_row + u * kARowStep;
          va[u] = j <= i && i < Qc ? cbm[i * Q + j] : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < kBLoads; ++u) {
          const int t = j0 + b_row + u * kBRowStep;
          vb[u] = col_in && t < Qc ? float(xbase[t * x.stride(1) + (p0 + b_col) * x.stride(3)]) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int u = 0; u < kALoads; ++u) {
          const int i = a_row + u * kARowStep;
          ta[i * PA + a_col] = mask(i, j, va[u]);
        }
#pragma unroll
        for (int u = 0; u < kBLoads; ++u) tb[(b_row + u * kBRowStep) * PB + b_col] = tf32_operand<kSplit>(vb[u]);
      }
      __syncthreads();
      const int steps = std::min(K / 8, (row0 + 15 - j0) / 8 + 1);  // k-steps at or below the warp's last row
      if (row0 < Qc && row0 + 15 >= j0)
        tf32_mma<kSplit, 4, wmma::row_major, !kSplit>(ta + row0 * PA, PA, tb, PB, steps, acc);
    }
    __syncthreads();  // the slabs are read: the output tile takes their place
    if (row0 < Qc)
#pragma unroll
      for (int t = 0; t < 4; ++t) wmma::store_matrix_sync(out + row0 * PB + 16 * t, acc[t], PB, wmma::mem_row_major);
    __syncthreads();
    const int width = int(std::min<int64_t>(W, g.P - p0));
    if (vec) {
      for (int e = tid; e < Qc * (W / 4); e += kThreads) {
        const int i = e / (W / 4), p = 4 * (e % (W / 4));
        if (p < width)
          *reinterpret_cast<float4*>(&y(b, c0 + i, h, p0 + p)) = *reinterpret_cast<const float4*>(out + i * PB + p);
      }
    } else {
      for (int e = tid; e < Qc * W; e += kThreads) {
        const int i = e / W, p = e % W;
        if (p < width) y(b, c0 + i, h, p0 + p) = T(out[i * PB + p]);
      }
    }
    __syncthreads();  // the output tile is read before the next slab's staging
  }
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
  const int64_t HP = H * P, QQ = Q * Q;
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
  ssd_leading_dim(x.stride(1), P, L, "x");  // the contract of ops/ssd_scan.hpp (the backward reads x as rows)
  ssd_leading_dim(y.stride(1), P, L, "y");
  const int64_t ld_c = ssd_leading_dim(Cm.stride(1), N, L, "C"), ld_b = ssd_leading_dim(Bm.stride(1), N, L, "B");

  WorkspaceScope<Cuda> scope(ctx.workspace());
  const SsdChunks s = ssd_take_chunks(ctx.workspace(), g);
  float* cb = ctx.workspace().take<float>(size_t(B * g.chunks * G * QQ));
  {
    ProfileRange<Cuda> range(ctx, "states");
    ssd_chunk_states(ctx, s, x, dt, A, Bm, initial_state, final_state);  // 1.
  }
  ProfileRange<Cuda> range(ctx, "outputs");

  const float* bp = Bm.data();
  const float* cp = Cm.data();
  const int64_t bs0 = Bm.stride(0), bs1 = Bm.stride(1), bs2 = Bm.stride(2);
  const int64_t cs0 = Cm.stride(0), cs1 = Cm.stride(1), cs2 = Cm.stride(2);
  for_each_chunk_round(g, [&](int64_t first, int64_t count, int64_t Qc) {  // 2. CB, stored [i * Q + j]:
    // column-major (j, i) = B_c C_c^T
    gemm_batched(ctx, CUBLAS_OP_T, CUBLAS_OP_N, Qc, Qc, N, {{B, count, G, 1}},
                 {bp + first * Q * bs1, {bs0, Q * bs1, bs2, 0}}, ld_b, {cp + first * Q * cs1, {cs0, Q * cs1, cs2, 0}},
                 ld_c, 0.0f, {cb + first * G * QQ, {g.chunks * G * QQ, G * QQ, QQ, 0}}, Q);
  });
  const dim3 grid(unsigned(B * g.chunks), unsigned(H));  // 3. - 6.
  const bool vec = ssd_scan_vectorizable(g, x, Cm, y);
  if (ctx.gemm_precision() == GemmPrecision::Fp32)
    ssd_chunk_scan_kernel<float, true><<<grid, kSsdScanThreads, kSsdScanSmem, stream>>>(s, x, dt, Cm, D, cb, y, vec);
  else
    ssd_chunk_scan_kernel<float, false><<<grid, kSsdScanThreads, kSsdScanSmem, stream>>>(s, x, dt, Cm, D, cb, y, vec);
  check_launch();
}

}  // namespace bimamba::detail
