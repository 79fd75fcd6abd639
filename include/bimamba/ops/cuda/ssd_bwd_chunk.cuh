// The SSD scan backward's per-chunk work (ops/cuda/ssd_scan_backward.cuh, steps 4 - 6), one kernel per (b, chunk c,
// head h) on TF32 tensor cores: everything of the head's Q x Q tiles stays on chip. With the chunk's local indices
// i, j < Qc, cs the cumulative sums of dt A, CB[i, j] = C_i . B_j (the group's, from cuBLAS), v0 = el U and s0, E,
// <F, S0> from the read-out kernel (ops/cuda/ssd_state_readouts.cuh):
//   Gm[i, j] = dy_i . x_j                                         (tensor cores, over P in slabs of 64)
//   Wd[i, j] = exp(cs_i - cs_j) dt_j Gm[i, j],  M[i, j] = CB[i, j] exp(cs_i - cs_j)          (j <= i, else 0)
//   dl_t     = sum_{i >= t} sum_{j < t} CB[i, j] Wd[i, j] + sum_{i >= t} s0_i + sum_{j < t} E_j
//              + exp(cs_last) <F, S0>                            (the decay path, double sums)
//   v_j      = v0_j + sum_i M[i, j] dy_i                          (tensor cores)
//   dx_j     = dt_j v_j + D dy_j,   ddt_j = x_j . v_j + A dl_j    (under the caller's mode)
// and the chunk's dA term sum_t dt_t dl_t and dD term sum_i Gm[i, i]. Wd goes to global memory for the sum over the
// group's heads (ssd_bwd_wsum_kernel); Gm, M and v never do. Until session 24 these were a batched cuBLAS product
// writing Gm, a decay kernel reading it and writing Wd and M, a batched product adding M^T dy into v, and a token
// kernel reading v, x and dy again: at the 780M shape and batch 4 ~1.5 GB a layer through HBM, here ~0.6 GB
// (docs/cuda.md, "The SSD backward moves bytes, not FLOPs").
//
// Block: kSsdBwdThreads = 256 threads, 8 warps; warp w owns the 16 x 32 output block at rows 16 (w % 4), columns
// 32 (w / 4) of each 64 x 64 product (two 16 x 16 accumulators). x and dy are staged per slab of 64 columns of P by
// cp.async (16-byte copies where P and the rows allow: no register holds them); with one slab (P <= 64, every
// preset) they stay for the second product and the token math, else each slab is staged again for it. The Q x Q
// tiles (CB and Wd in global memory, Gm / M in shared memory) are column-major, i fastest, so each element is read
// and written by one thread, coalesced. kSplit: 3xTF32 (fp32-level, GemmPrecision::Fp32), else one TF32 pass
// (Tf32 / Bf16), as the cuBLAS products this replaced; the staged x and dy keep their float values (the token math
// reads them) and are rounded at each fragment load. Sums in a fixed order (no atomics). 125 - 128 registers
// (two blocks an SM), no spills (ptxas, sm_90).
// Contracts: Q = kSsdBwdChunk; x, dy (rows, L, H, P) of any strides (quads: P % 4 == 0 and aligned float4 rows);
// the scratch as SsdBwdScratch says. Grid (chunks, rows x H); kSsdBwdChunkSmem bytes of dynamic shared memory
// (above 48 KiB: the launcher opts in).
#pragma once

#include <algorithm>
#include <cstdint>

#include "async_copy.cuh"
#include "launch_backward.cuh"
#include "ssd_chunks.cuh"
#include "tf32_mma.cuh"

namespace bimamba::detail::gpu {

inline constexpr int kSsdBwdChunk = 64;     // Q: tokens per chunk
inline constexpr int kSsdBwdThreads = 256;  // threads of the per-chunk and per-token kernels
inline constexpr int kSsdBwdCols = 64;      // columns of P per staged slab
inline constexpr int kSsdBwdPitch = kSsdBwdChunk + 4;  // floats per row of the 64-wide tiles (wmma: a multiple of 4)
inline constexpr int kSsdBwdScanPitch = kSsdBwdChunk + 1;  // the decay path's tile: a column read hits 32 banks
inline constexpr size_t kSsdBwdSlabBytes = size_t(1) << 30;  // scratch per slab of batch rows (at least one row)
static_assert(kSsdBwdChunk == 64 && kSsdBwdCols == 64, "the warp scans hold two of the 64 tokens per lane; "
                                                     "8 warps of 16 x 32 outputs cover a 64 x 64 product");
static_assert(kSsdBwdChunk * kSsdBwdChunk % kSsdBwdThreads == 0, "whole tiles per thread");

// Shared memory of ssd_bwd_chunk_kernel: the x and dy slabs and the Gm / M tile (Q x kSsdBwdPitch floats each), the
// decay path's Z tile (later the v tile), then 5 Q doubles (cs, s0, E, dl, x . v) and 3 Q floats (dt, the diagonal,
// dlz).
inline constexpr int kSsdBwdTileFloats = kSsdBwdChunk * kSsdBwdPitch;
inline constexpr int kSsdBwdZFloats = kSsdBwdChunk * kSsdBwdPitch;  // >= Q x kSsdBwdScanPitch: Z, then v
inline constexpr size_t kSsdBwdChunkSmem = size_t(3 * kSsdBwdTileFloats + kSsdBwdZFloats) * sizeof(float) +
                                           5 * kSsdBwdChunk * sizeof(double) + 3 * kSsdBwdChunk * sizeof(float);
static_assert(kSsdBwdZFloats >= kSsdBwdChunk * kSsdBwdScanPitch, "Z fits the v tile's place");
static_assert(kSsdBwdTileFloats % 8 == 0, "each tile 32-byte aligned (wmma)");

// Scratch of one slab beyond the chunk states (SsdChunks: cs, decays, Xw, S_in).
struct SsdBwdScratch {
  float* dstates;   // (rows, chunks, N, H, P)  F_c = dLoss / dS_in[c + 1]
  float* dyw;       // (rows, L, H, P)          exp(cs_i) dy_i
  float* v;         // (rows, L, H, P)          el U (the read-out kernel's; the chunk kernel adds M^T dy on chip)
  float* cb;        // (rows, chunks, G, Q, Q)  [j Q + i] = C_i . B_j  (the Q x Q tiles column-major: i fastest)
  float* wd;        // (rows, chunks, H, Q, Q)  [j Q + i] = Wd[i, j] (zeros outside Qc x Qc)
  float* wsum;      // (rows, chunks, G, Q, Q)  [j Q + i] = sum of Wd[i, j] over the heads of the group, in head order
  float* dBg;       // (rows, L, G, N)          dB of the slab before put_grad
  float* dCg;       // (rows, L, G, N)          dC of the slab before put_grad
  double* s0;       // (rows, H, chunks, Q)     s0_i = dyw_i . (C_i S0)
  double* e;        // (rows, H, chunks, Q)     E_j = Xw_j . (B_j F)
  double* fs;       // (rows, H, chunks)        <F, S0> of the head's state at the chunk's start
  double* dA_part;  // (rows, H, chunks)        sum over the chunk of dt_t dl_t (the slab's rows of (B, H, chunks))
  double* dD_part;  // (rows, H, chunks)        sum over the chunk of dy . x
};

// Exclusive prefix sums of 64 values in scan order, by one warp (all lanes): lane l holds the values at
// positions 2 l and 2 l + 1 (v0, v1) and gets the sums of all values before each (e0, e1).
__device__ inline void ssd_bwd_warp_scan64(double v0, double v1, double& e0, double& e1) {
  const int lane = int(threadIdx.x) & 31;
  double inclusive = v0 + v1;
  for (int offset = 1; offset < 32; offset <<= 1) {
    const double u = __shfl_up_sync(0xffffffffu, inclusive, offset);
    if (lane >= offset) inclusive += u;
  }
  double before = __shfl_up_sync(0xffffffffu, inclusive, 1);
  if (lane == 0) before = 0.0;
  e0 = before;
  e1 = before + v0;
}

// Requests the chunk's rows i < Qc of x or dy, columns p0 .. p0 + 63, into a (Q, kSsdBwdPitch) tile by cp.async
// (zeros outside, stored directly); complete at the thread's async_copy_wait_all and the block's barrier after it.
// quads: four columns a copy.
template <class T>
__device__ inline void ssd_bwd_stage(float* tile, const TensorView<const T, 4, Cuda>& v, int64_t b, int64_t t0,
                                     int64_t h, int64_t p0, int Qc, bool quads) {
  constexpr int Q = kSsdBwdChunk, W = kSsdBwdCols, PT = kSsdBwdPitch;
  const int tid = int(threadIdx.x);
  const int64_t P = v.size(3);
  const T* base = &v(b, t0, h, 0);
  const int64_t row_stride = v.stride(1);
  if (quads) {
    constexpr int kRowStep = kSsdBwdThreads / (W / 4);
    const int col = 4 * (tid % (W / 4));
    const bool in_p = p0 + col < P;
    for (int i = tid / (W / 4); i < Q; i += kRowStep) {
      float* dst = tile + i * PT + col;
      if (in_p && i < Qc) async_copy_float4(dst, base + i * row_stride + p0 + col);
      else *reinterpret_cast<float4*>(dst) = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
  } else {
    constexpr int kRowStep = kSsdBwdThreads / W;
    const int col = tid % W;
    const bool in_p = p0 + col < P;
    for (int i = tid / W; i < Q; i += kRowStep) {
      float* dst = tile + i * PT + col;
      if (in_p && i < Qc) async_copy_float(dst, base + i * row_stride + (p0 + col) * v.stride(3));
      else *dst = 0.0f;
    }
  }
}

// One (b, h, chunk) per block (top comment).
template <class T, bool kSplit>
__global__ void __launch_bounds__(kSsdBwdThreads, 2)
    ssd_bwd_chunk_kernel(SsdChunks chunks, SsdBwdScratch s, TensorView<const T, 4, Cuda> x,
                         TensorView<const T, 3, Cuda> dt, TensorView<const T, 1, Cuda> A,
                         TensorView<const T, 1, Cuda> D, TensorView<const T, 4, Cuda> dy, TensorView<T, 4, Cuda> dx,
                         TensorView<T, 3, Cuda> ddt, GradientMode mode, bool quads) {
  constexpr int Q = kSsdBwdChunk, W = kSsdBwdCols, PT = kSsdBwdPitch, QP = kSsdBwdScanPitch;
  extern __shared__ __align__(128) double chunk_smem[];
  float* tx = reinterpret_cast<float*>(chunk_smem);  // (Q, PT) x slab
  float* td = tx + kSsdBwdTileFloats;                // (Q, PT) dy slab
  float* tg = td + kSsdBwdTileFloats;                // (Q, PT) row j: Gm[., j], then M[., j] (rounded as an operand)
  float* Z = tg + kSsdBwdTileFloats;                 // (Q, QP) Z and its row prefix sums; then (Q, PT) the v slab
  double* cs = reinterpret_cast<double*>(Z + kSsdBwdZFloats);  // (Q) cumulative sums of dt A within the chunk
  double* s0 = cs + Q;                                        // (Q) s0_i, then its suffix sums
  double* ej = s0 + Q;                                        // (Q) E_j, then its prefix sums
  double* dl = ej + Q;                                        // (Q) dl_t
  double* xv = dl + Q;                                        // (Q) x_t . v_t over the slabs
  float* dts = reinterpret_cast<float*>(xv + Q);              // (Q) dt_j
  float* diag = dts + Q;                                      // (Q) dy_i . x_i
  float* dlz = diag + Q;                                      // (Q) sum_{i >= t} sum_{j < t} Z[i, j]

  const SsdGeometry& geo = chunks.geo;
  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  constexpr int kWarps = kSsdBwdThreads / 32;
  const int row0 = 16 * (warp % 4), col0 = 32 * (warp / 4);  // this warp's 16 x 32 block of each product
  const int64_t c = blockIdx.x, pair = blockIdx.y, b = pair / geo.H, h = pair % geo.H, g = h / (geo.H / geo.G);
  const int64_t c0 = c * Q;
  const int Qc = int(geo.tokens_in(c));
  const int slabs = int((geo.P + W - 1) / W);
  const float* cb = s.cb + ((b * geo.chunks + c) * geo.G + g) * Q * Q;
  float* wd = s.wd + ((b * geo.chunks + c) * geo.H + h) * Q * Q;

  if (tid < Q) {
    const int64_t at = (pair * geo.chunks + c) * Q + tid;
    const bool in = tid < Qc;
    cs[tid] = in ? chunks.cs[at] : 0.0;
    s0[tid] = in ? s.s0[at] : 0.0;
    ej[tid] = in ? s.e[at] : 0.0;
    dts[tid] = in ? float(dt(b, c0 + tid, h)) : 0.0f;
    xv[tid] = 0.0;
  }

  // Gm = dy x^T over the slabs of P.
  Tf32Accumulator acc[2];
  wmma::fill_fragment(acc[0], 0.0f);
  wmma::fill_fragment(acc[1], 0.0f);
  for (int k = 0; k < slabs; ++k) {
    if (k > 0) __syncthreads();  // the previous slab's products are done
    ssd_bwd_stage(tx, x, b, c0, h, int64_t(k) * W, Qc, quads);
    ssd_bwd_stage(td, dy, b, c0, h, int64_t(k) * W, Qc, quads);
    async_copy_wait_all();
    __syncthreads();
    const int steps = int((std::min<int64_t>(W, geo.P - int64_t(k) * W) + 7) / 8);
    tf32_mma<kSplit, 2, wmma::col_major>(td + row0 * PT, PT, tx + col0 * PT, PT, steps, acc);
  }
#pragma unroll
  for (int t = 0; t < 2; ++t)  // transposed: Gm[i, j] at tg[j PT + i], where M[i, j] goes
    wmma::store_matrix_sync(tg + (col0 + 16 * t) * PT + row0, acc[t], PT, wmma::mem_col_major);
  __syncthreads();
  const double last = cs[Qc - 1];

  // Gm -> Wd (to global memory, zeros outside Qc x Qc for the sum over heads), M in Gm's place, Z = CB Wd (j < i)
  // and the diagonal of Gm; element e = j Q + i (i fastest: the CB and Wd tiles' order, conflict-free on Z's odd
  // pitch). Each element is read and written by one thread.
  constexpr int kTileLoads = Q * Q / kSsdBwdThreads;
#pragma unroll 4
  for (int u = 0; u < kTileLoads; ++u) {
    const int e = tid + u * kSsdBwdThreads, i = e % Q, j = e / Q;
    const bool in = j <= i && i < Qc;
    const float cbv = in ? cb[e] : 0.0f;
    const float gm = i < Qc && j < Qc ? tg[j * PT + i] : 0.0f;
    const float decay = in ? expf(float(cs[i] - cs[j])) : 0.0f;
    const float w = decay * dts[j] * gm;
    wd[e] = w;
    tg[j * PT + i] = tf32_operand<kSplit>(cbv * decay);
    Z[i * QP + j] = j < i ? cbv * w : 0.0f;
    if (i == j) diag[i] = gm;
  }
  __syncthreads();

  // The decay path. Exclusive row prefix sums R[i, t] = sum_{j < t} Z[i, j], one warp per row (in place); then
  // dlz_t = sum_{i >= t} R[i, t], one warp per t.
  for (int i = warp; i < Q; i += kWarps) {
    const int j0 = 2 * lane, j1 = j0 + 1;
    double r0, r1;
    ssd_bwd_warp_scan64(Z[i * QP + j0], Z[i * QP + j1], r0, r1);
    Z[i * QP + j0] = float(r0);
    Z[i * QP + j1] = float(r1);
  }
  __syncthreads();
  for (int t = warp; t < Q; t += kWarps) {
    const int i0 = 2 * lane, i1 = i0 + 1;
    double v = (i0 >= t ? double(Z[i0 * QP + t]) : 0.0) + (i1 >= t ? double(Z[i1 * QP + t]) : 0.0);
    v = warp_sum(v);
    if (lane == 0) dlz[t] = float(v);  // float, as the rows' prefix sums it adds
  }
  __syncthreads();  // dlz published; Z is free for the v slabs
  const double fs = s.fs[pair * geo.chunks + c] * exp(last);  // exp(cs_last) <F, S0>
  // dl_t = dlz_t + sum_{i >= t} s0_i + sum_{j < t} E_j + exp(cs_last) <F, S0>; the chunk's dA and dD terms.
  if (warp == 0) {
    const int k0 = 2 * lane, k1 = k0 + 1;
    const double e_0 = ej[k0], e_1 = ej[k1];  // zeros past Qc
    const int r0 = Q - 1 - k0, r1 = Q - 1 - k1;  // reversed: suffix sums as prefix sums
    const double s_0 = s0[r0], s_1 = s0[r1];
    double pe0, pe1, ps0, ps1;
    ssd_bwd_warp_scan64(e_0, e_1, pe0, pe1);  // sum_{j < t} E_j at t = k0, k1
    ssd_bwd_warp_scan64(s_0, s_1, ps0, ps1);  // sum_{i > t} s0_i at t = r0, r1
    __syncwarp();
    ej[k0] = pe0;
    ej[k1] = pe1;
    s0[r0] = ps0 + s_0;
    s0[r1] = ps1 + s_1;
    __syncwarp();
    double da = 0.0, dd = 0.0;
    for (int t = lane; t < Qc; t += 32) {
      const double v = double(dlz[t]) + s0[t] + ej[t] + fs;
      dl[t] = v;
      da += double(dts[t]) * v;
      dd += diag[t];
    }
    da = warp_sum(da);
    dd = warp_sum(dd);
    if (lane == 0) {
      s.dA_part[pair * geo.chunks + c] = da;
      s.dD_part[pair * geo.chunks + c] = dd;
    }
  }

  // v = v0 + M^T dy, slab by slab of P; then dx and the rows' x . v. Row i of a slab by the four threads 4 i ..
  // 4 i + 3 (lanes of one warp), 16 columns each, every load of a quad before its stores; the four partial dots
  // added in a fixed order by every lane (rows past Qc add zeros), into xv[i] by thread 4 i.
  float* tv = Z;
  const float Dh = present(D) ? float(D(h)) : 0.0f;
  constexpr int kQuarter = W / 4;
  const int i = tid >> 2, q0 = kQuarter * (tid & 3);
  const float* v0 = s.v + ((b * geo.L + c0 + i) * geo.H + h) * geo.P;  // row i of v0 (contiguous rows)
  const bool accumulate = mode == GradientMode::Accumulate;
  for (int k = 0; k < slabs; ++k) {
    const int64_t p0 = int64_t(k) * W;
    if (slabs > 1) {  // with one slab, x and dy are still staged
      __syncthreads();  // the previous slab's reads are done
      ssd_bwd_stage(tx, x, b, c0, h, p0, Qc, quads);
      ssd_bwd_stage(td, dy, b, c0, h, p0, Qc, quads);
      async_copy_wait_all();
    }
    __syncthreads();  // M^T and the slab in place
    wmma::fill_fragment(acc[0], 0.0f);
    wmma::fill_fragment(acc[1], 0.0f);
    tf32_mma<kSplit, 2, wmma::row_major>(tg + row0 * PT, PT, td + col0, PT, (Qc + 7) / 8, acc);
#pragma unroll
    for (int t = 0; t < 2; ++t)
      wmma::store_matrix_sync(tv + row0 * PT + col0 + 16 * t, acc[t], PT, wmma::mem_row_major);
    __syncthreads();
    const int width = int(std::min<int64_t>(W, geo.P - p0));
    double dot = 0.0;
    if (i < Qc) {
      const float dth = dts[i];
      for (int q = 0; q < kQuarter; q += 4) {
        const int col = q0 + q;
        if (col >= width) break;
        float v[4] = {}, old[4] = {};
        if (quads) {  // width % 4 == 0: the quad is whole
          const float4 a4 = *reinterpret_cast<const float4*>(v0 + p0 + col);
          v[0] = a4.x, v[1] = a4.y, v[2] = a4.z, v[3] = a4.w;
          if (accumulate) {
            const float4 o4 = *reinterpret_cast<const float4*>(&dx(b, c0 + i, h, p0 + col));
            old[0] = o4.x, old[1] = o4.y, old[2] = o4.z, old[3] = o4.w;
          }
        } else {
#pragma unroll
          for (int u = 0; u < 4; ++u)
            if (col + u < width) {
              v[u] = v0[p0 + col + u];
              old[u] = accumulate ? float(dx(b, c0 + i, h, p0 + col + u)) : 0.0f;
            }
        }
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          if (col + u >= width) continue;
          v[u] += tv[i * PT + col + u];
          dot += double(tx[i * PT + col + u]) * v[u];
          put_grad(old[u], double(dth) * v[u] + double(Dh) * double(td[i * PT + col + u]), mode);
        }
        if (quads) {
          *reinterpret_cast<float4*>(&dx(b, c0 + i, h, p0 + col)) = make_float4(old[0], old[1], old[2], old[3]);
        } else {
#pragma unroll
          for (int u = 0; u < 4; ++u)
            if (col + u < width) dx(b, c0 + i, h, p0 + col + u) = old[u];
        }
      }
    }
    dot += __shfl_xor_sync(0xffffffffu, dot, 1);
    dot += __shfl_xor_sync(0xffffffffu, dot, 2);
    if ((tid & 3) == 0 && i < Qc) xv[i] += dot;
  }
  __syncthreads();
  if (tid < Qc) put_grad(ddt(b, c0 + tid, h), xv[tid] + double(A(h)) * dl[tid], mode);
}

}  // namespace bimamba::detail::gpu
