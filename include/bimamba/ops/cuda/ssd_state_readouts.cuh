// The SSD scan backward's read-outs of the two chunk states (ops/cuda/ssd_scan_backward.cuh, step 3), one kernel
// per (b, chunk c, head h) on TF32 tensor cores. With S0 = S_in[c] and F = F_c (N x P each, the head's columns of
// the (rows, chunks, N, H, P) states), the chunk's rows C_c, B_c (Qc x N, of the head's group), dyw_i =
// exp(cs_i) dy_i, Xw_j and el_j = exp(cs_last - cs_j):
//   Y0 = C_c S0,  U = B_c F                  (Qc x P)   on chip only
//   s0_i = dyw_i . Y0_i,  E_j = Xw_j . U_j              (Qc each, doubles: the decay path's row terms)
//   v_j  = el_j U_j                                     (v's first term; the mask products add M^T dy)
//   fs   = <F, S0>                                      (double: dl's constant term, before exp(cs_last))
// Until session 20 these were two batched cuBLAS products writing Y0 and U to HBM, the decay kernel's second phase
// reading them back with dyw and Xw, and a kernel of its own reading S0 and F again for <F, S0>: here S0 and F are
// read once (the dominant bytes: 2 x 32 KB a block at the 780M shape) and Y0 never leaves the SM.
//
// Block shape: kSsdReadoutThreads = 256 threads, 8 warps; warps 0 - 3 own Y0's rows 16 w .. 16 w + 15, warps 4 - 7
// U's, each 64 columns of P (four 16 x 16 accumulators) per slab of P; k runs over N in slabs of 32 staged in
// shared memory (C and B rows, S0 and F rows; every load of a round issued before its stores; in float4s where
// N, P and C, B's strides allow, ssd_readout_vectorizable). <F, S0> is summed from the staged S0 and F values (each
// element staged once). Then the accumulators go through shared memory and four threads per row take the row dots
// (16 columns each, two shuffle rounds) and write v. kSplit: 3xTF32 (fp32-level, GemmPrecision::Fp32), else one
// TF32 pass (Tf32 / Bf16, as the cuBLAS products this replaced), its operands rounded once while staged.
// (First form, session 20: single-float staging, rounding at every fragment load, a warp per row with five
// double shuffle rounds per dot: 0.53 ms a layer at batch 4 on the H100, ~4,850 instructions a warp.)
// Contracts: Q <= 64 tokens a chunk; Cm, Bm (rows, L, G, N) of any strides; dyw, xw, v (rows, L, H, P) contiguous;
// cs (rows, H, chunks, Q); s0, e (rows, H, chunks, Q); fs (rows, H, chunks). Grid (chunks, rows x H); vec only
// where ssd_readout_vectorizable.
#pragma once

#include <algorithm>
#include <cstdint>

#include "launch.cuh"
#include "ssd_chunks.cuh"
#include "tf32_mma.cuh"

namespace bimamba::detail::gpu {

inline constexpr int kSsdReadoutChunk = 64;    // Q at most (four row tiles a product)
inline constexpr int kSsdReadoutThreads = 256;
inline constexpr int kSsdReadoutK = 32;        // k (of N) per staged slab
inline constexpr int kSsdReadoutCols = 64;     // columns of P per pass
inline constexpr int kSsdReadoutPitchA = kSsdReadoutK + 4;     // (Q, k) slabs of C and B
inline constexpr int kSsdReadoutPitchB = kSsdReadoutCols + 4;  // (k, 64) slabs of S0 and F; the (Q, 64) output tiles
inline constexpr int kSsdReadoutSlabFloats =
    2 * kSsdReadoutChunk * kSsdReadoutPitchA + 2 * kSsdReadoutK * kSsdReadoutPitchB;
inline constexpr int kSsdReadoutOutFloats = 2 * kSsdReadoutChunk * kSsdReadoutPitchB;
// Shared memory: the slabs (later the two output tiles in their place), then s0, E (doubles) and el (floats).
inline constexpr size_t kSsdReadoutSmem =
    size_t(kSsdReadoutSlabFloats > kSsdReadoutOutFloats ? kSsdReadoutSlabFloats : kSsdReadoutOutFloats) *
        sizeof(float) +
    2 * kSsdReadoutChunk * sizeof(double) + kSsdReadoutChunk * sizeof(float);
static_assert(kSsdReadoutChunk == 16 * (kSsdReadoutThreads / 32 / 2), "four warps of 16 rows per product");
static_assert(kSsdReadoutSlabFloats % 32 == 0 && kSsdReadoutOutFloats % 32 == 0, "the tiles 32 B aligned (wmma)");
static_assert(kSsdReadoutSmem <= (48 << 10), "no shared-memory opt-in");

// Pointers of one read-out launch (the backward's scratch and operands of one slab of batch rows).
struct SsdReadoutArgs {
  const float* states;   // (rows, chunks, N, H, P)  S_in[c]
  const float* dstates;  // (rows, chunks, N, H, P)  F_c
  const float* dyw;      // (rows, L, H, P)
  const float* xw;       // (rows, L, H, P)
  const double* cs;      // (rows, H, chunks, Q)
  float* v;              // (rows, L, H, P)          out: el U
  double* s0;            // (rows, H, chunks, Q)     out: s0_i
  double* e;             // (rows, H, chunks, Q)     out: E_j
  double* fs;            // (rows, H, chunks)        out: <F, S0>
};

// Whether a launch may stage and read in float4s (ssd_state_readout_kernel's `vec`): N and P multiples of 4 (so the
// states' and the (L, H, P) rows' quads stay aligned; workspace scratch is 64-byte aligned) and C, B in aligned
// quads along N.
template <class T>
inline bool ssd_readout_vectorizable(const SsdGeometry& g, const TensorView<const T, 4, Cuda>& Cm,
                                     const TensorView<const T, 4, Cuda>& Bm) {
  return g.N % 4 == 0 && g.P % 4 == 0 && float4_rows(Cm) && float4_rows(Bm);
}

template <class T, bool kSplit>
__global__ void __launch_bounds__(kSsdReadoutThreads, 2)
    ssd_state_readout_kernel(SsdGeometry g, SsdReadoutArgs a, TensorView<const T, 4, Cuda> Cm,
                             TensorView<const T, 4, Cuda> Bm, bool vec) {
  constexpr int Qm = kSsdReadoutChunk, K = kSsdReadoutK, PA = kSsdReadoutPitchA, PB = kSsdReadoutPitchB;
  constexpr int W = kSsdReadoutCols, kThreads = kSsdReadoutThreads;
  constexpr int kALoads = Qm * K / kThreads, kBLoads = K * W / kThreads;
  constexpr int kARowStep = kThreads / K, kBRowStep = kThreads / W;
  constexpr int kAQuadRowStep = kThreads / (K / 4), kBQuadRowStep = kThreads / (W / 4);  // float4 staging
  constexpr int kAQuads = kALoads / 4, kBQuads = kBLoads / 4;
  extern __shared__ __align__(128) double readout_smem[];
  float* ta = reinterpret_cast<float*>(readout_smem);  // (2, Q, PA) slabs of C_c, B_c
  float* tb = ta + 2 * Qm * PA;                         // (2, K, PB) slabs of S0, F
  float* out = ta;                                      // (2, Q, PB) Y0, U after the products
  constexpr int kSlabFloats = kSsdReadoutSlabFloats > kSsdReadoutOutFloats ? kSsdReadoutSlabFloats
                                                                           : kSsdReadoutOutFloats;
  double* s0 = readout_smem + kSlabFloats / 2;  // (Q) s0_i over the slabs of P
  double* ej = s0 + Qm;                         // (Q) E_j
  float* el = reinterpret_cast<float*>(ej + Qm);  // (Q) exp(cs_last - cs_j)
  __shared__ double red[32];

  const int tid = int(threadIdx.x), warp = tid >> 5, half = warp / 4, row0 = 16 * (warp % 4);
  const int64_t c = blockIdx.x, pair = blockIdx.y, b = pair / g.H, h = pair % g.H, grp = h / (g.H / g.G);
  const int64_t c0 = c * g.Q, HP = g.H * g.P, NHP = g.N * HP;
  const int Qc = int(g.tokens_in(c));
  const double* cs = a.cs + (pair * g.chunks + c) * g.Q;
  if (tid < Qm) {
    el[tid] = tid < Qc ? expf(float(cs[Qc - 1] - cs[tid])) : 0.0f;
    s0[tid] = 0.0;
    ej[tid] = 0.0;
  }
  const float* S = a.states + (b * g.chunks + c) * NHP + h * g.P;  // (N, P), rows HP apart
  const float* F = a.dstates + (b * g.chunks + c) * NHP + h * g.P;
  const T* cbase = Cm.data() + b * Cm.stride(0) + c0 * Cm.stride(1) + grp * Cm.stride(2);  // C_c (Qc, N)
  const T* bbase = Bm.data() + b * Bm.stride(0) + c0 * Bm.stride(1) + grp * Bm.stride(2);  // B_c (Qc, N)
  double fs = 0.0;

  // Stages the slabs of k = n0 .. n0 + K - 1 (zeros outside Qc x N and N x P): all loads of a thread, the barrier
  // after the previous slab's products, then the stores. In quads (vec) or single floats.
  auto stage_quads = [&](int64_t n0, int64_t p0) {
    const int a_col = 4 * (tid % (K / 4)), a_row = tid / (K / 4), b_col = 4 * (tid % (W / 4)), b_row = tid / (W / 4);
    const bool n_in = n0 + a_col < g.N, col_in = p0 + b_col < g.P;
    float4 vc[kAQuads], vb[kAQuads], vs[kBQuads], vf[kBQuads];
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int u = 0; u < kAQuads; ++u) {
      const int i = a_row + u * kAQuadRowStep;
      const bool in = n_in && i < Qc;
      vc[u] = in ? *reinterpret_cast<const float4*>(cbase + i * Cm.stride(1) + n0 + a_col) : zero;
      vb[u] = in ? *reinterpret_cast<const float4*>(bbase + i * Bm.stride(1) + n0 + a_col) : zero;
    }
#pragma unroll
    for (int u = 0; u < kBQuads; ++u) {
      const int64_t n = n0 + b_row + u * kBQuadRowStep, at = n * HP + p0 + b_col;
      const bool in = col_in && n < g.N;
      vs[u] = in ? *reinterpret_cast<const float4*>(S + at) : zero;
      vf[u] = in ? *reinterpret_cast<const float4*>(F + at) : zero;
    }
    __syncthreads();  // the previous slab's products are done
    auto put = [](float* dst, float4 v) {
      *reinterpret_cast<float4*>(dst) = make_float4(tf32_operand<kSplit>(v.x), tf32_operand<kSplit>(v.y),
                                                    tf32_operand<kSplit>(v.z), tf32_operand<kSplit>(v.w));
    };
#pragma unroll
    for (int u = 0; u < kAQuads; ++u) {
      const int i = a_row + u * kAQuadRowStep;
      put(ta + i * PA + a_col, vc[u]);
      put(ta + (Qm + i) * PA + a_col, vb[u]);
    }
#pragma unroll
    for (int u = 0; u < kBQuads; ++u) {
      const int k = b_row + u * kBQuadRowStep;
      put(tb + k * PB + b_col, vs[u]);
      put(tb + (K + k) * PB + b_col, vf[u]);
      fs += double(vs[u].x) * vf[u].x + double(vs[u].y) * vf[u].y + double(vs[u].z) * vf[u].z +
            double(vs[u].w) * vf[u].w;
    }
  };
  auto stage_floats = [&](int64_t n0, int64_t p0) {
    const int a_col = tid % K, a_row = tid / K, b_col = tid % W, b_row = tid / W;
    const bool n_in = n0 + a_col < g.N, col_in = p0 + b_col < g.P;
    float vc[kALoads], vb[kALoads], vs[kBLoads], vf[kBLoads];
#pragma unroll
    for (int u = 0; u < kALoads; ++u) {
      const int i = a_row + u * kARowStep;
      const bool in = n_in && i < Qc;
      vc[u] = in ? float(cbase[i * Cm.stride(1) + (n0 + a_col) * Cm.stride(3)]) : 0.0f;
      vb[u] = in ? float(bbase[i * Bm.stride(1) + (n0 + a_col) * Bm.stride(3)]) : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kBLoads; ++u) {
      const int64_t n = n0 + b_row + u * kBRowStep, at = n * HP + p0 + b_col;
      const bool in = col_in && n < g.N;
      vs[u] = in ? S[at] : 0.0f;
      vf[u] = in ? F[at] : 0.0f;
    }
    __syncthreads();  // the previous slab's products are done
#pragma unroll
    for (int u = 0; u < kALoads; ++u) {
      const int i = a_row + u * kARowStep;
      ta[i * PA + a_col] = tf32_operand<kSplit>(vc[u]);
      ta[(Qm + i) * PA + a_col] = tf32_operand<kSplit>(vb[u]);
    }
#pragma unroll
    for (int u = 0; u < kBLoads; ++u) {
      const int k = b_row + u * kBRowStep;
      tb[k * PB + b_col] = tf32_operand<kSplit>(vs[u]);
      tb[(K + k) * PB + b_col] = tf32_operand<kSplit>(vf[u]);
      fs += double(vs[u]) * double(vf[u]);
    }
  };

  for (int64_t p0 = 0; p0 < g.P; p0 += W) {
    Tf32Accumulator acc[4];
#pragma unroll
    for (int t = 0; t < 4; ++t) wmma::fill_fragment(acc[t], 0.0f);
    for (int64_t n0 = 0; n0 < g.N; n0 += K) {
      if (vec) stage_quads(n0, p0);
      else stage_floats(n0, p0);
      __syncthreads();
      const int steps = int((std::min<int64_t>(K, g.N - n0) + 7) / 8);
      if (row0 < Qc)
        tf32_mma<kSplit, 4, wmma::row_major, !kSplit>(ta + (half * Qm + row0) * PA, PA, tb + half * K * PB, PB, steps,
                                                       acc);
    }
    __syncthreads();  // the slabs are read: the output tiles take their place
    if (row0 < Qc)
#pragma unroll
      for (int t = 0; t < 4; ++t)
        wmma::store_matrix_sync(out + (half * Qm + row0) * PB + 16 * t, acc[t], PB, wmma::mem_row_major);
    __syncthreads();
    // Row i's dots by the four threads 4 i .. 4 i + 3 (lanes of one warp; the same threads for row i in every slab
    // of P: s0[i], ej[i] without races), each over 16 columns: their loads first, then two shuffle rounds.
    constexpr int kQuarter = W / 4;
    const int i = tid >> 2, q0 = kQuarter * (tid & 3);
    const int width = int(std::min<int64_t>(W, g.P - p0));
    const int64_t row_at = (b * g.L + c0 + i) * HP + h * g.P + p0;
    double sc = 0.0, se = 0.0;
    if (i < Qc) {
      float dw[kQuarter], xv[kQuarter];
      if (vec) {
#pragma unroll
        for (int k = 0; k < kQuarter; k += 4) {
          const bool in = q0 + k < width;
          const float4 d4 = in ? *reinterpret_cast<const float4*>(a.dyw + row_at + q0 + k) : make_float4(0, 0, 0, 0);
          const float4 x4 = in ? *reinterpret_cast<const float4*>(a.xw + row_at + q0 + k) : make_float4(0, 0, 0, 0);
          dw[k] = d4.x, dw[k + 1] = d4.y, dw[k + 2] = d4.z, dw[k + 3] = d4.w;
          xv[k] = x4.x, xv[k + 1] = x4.y, xv[k + 2] = x4.z, xv[k + 3] = x4.w;
        }
      } else {
#pragma unroll
        for (int k = 0; k < kQuarter; ++k) {
          const bool in = q0 + k < width;
          dw[k] = in ? a.dyw[row_at + q0 + k] : 0.0f;
          xv[k] = in ? a.xw[row_at + q0 + k] : 0.0f;
        }
      }
      float vv[kQuarter];
#pragma unroll
      for (int k = 0; k < kQuarter; ++k) {
        const float y0 = out[i * PB + q0 + k], u = out[(Qm + i) * PB + q0 + k];
        sc += double(dw[k]) * y0;
        se += double(xv[k]) * u;
        vv[k] = el[i] * u;
      }
      if (vec) {
#pragma unroll
        for (int k = 0; k < kQuarter; k += 4)
          if (q0 + k < width)
            *reinterpret_cast<float4*>(a.v + row_at + q0 + k) = make_float4(vv[k], vv[k + 1], vv[k + 2], vv[k + 3]);
      } else {
#pragma unroll
        for (int k = 0; k < kQuarter; ++k)
          if (q0 + k < width) a.v[row_at + q0 + k] = vv[k];
      }
    }
    // The four partial sums of row i, in a fixed order (all lanes take part: i >= Qc adds zeros).
    sc += __shfl_xor_sync(0xffffffffu, sc, 1);
    se += __shfl_xor_sync(0xffffffffu, se, 1);
    sc += __shfl_xor_sync(0xffffffffu, sc, 2);
    se += __shfl_xor_sync(0xffffffffu, se, 2);
    if ((tid & 3) == 0 && i < Qc) {
      s0[i] += sc;
      ej[i] += se;
    }
    __syncthreads();  // the output tiles are read before the next slab's staging
  }
  fs = block_sum(fs, red);
  if (tid < Qc) {
    a.s0[(pair * g.chunks + c) * g.Q + tid] = s0[tid];
    a.e[(pair * g.chunks + c) * g.Q + tid] = ej[tid];
  }
  if (tid == 0) a.fs[pair * g.chunks + c] = fs;
}

}  // namespace bimamba::detail::gpu
