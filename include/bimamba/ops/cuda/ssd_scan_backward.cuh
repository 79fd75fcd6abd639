// Cuda Mamba-2 scan backward (see ops/ssd_scan_backward.hpp for the sequential formulas it equals), in the
// chunked SSD form of the forward (ops/cuda/ssd_scan.cuh): chunks of Q = 64 tokens, quadratic inside a chunk,
// the state carried between chunks by two passes over the chunks; every product batched on cuBLAS, the rest
// element-wise per (batch, head, chunk) or per token.
//
// Math. Per (b, h), chunk c of Qc <= Q tokens with local indices i, j; l_t = dt_t A_h; cs_i = l_0 + ... + l_i
// within the chunk (double, as the forward), cs_last = cs_{Qc-1}, el_j = exp(cs_last - cs_j); S0 = S_in[c], the
// state entering the chunk (S_in[0] = 0); F = F_c = dLoss / dS_in[c + 1], the gradient reaching the chunk's end
// from later chunks:
//   F_{last chunk} = 0,   F_{c-1} = exp(cs_last^c) F_c + sum_{i in c} exp(cs_i) dy_i C_i^T
//   M[i, j]  = (C_i . B_j) exp(cs_i - cs_j)                 (j <= i, else 0)
//   Wd[i, j] = exp(cs_i - cs_j) dt_j (dy_i . x_j)            (j <= i, else 0)
//   v_j  = sum_{i >= j} M[i, j] dy_i + el_j F B_j            (= dS_j B_j of the recurrence)
//   dx_j = dt_j v_j + D dy_j
//   dB_j = sum_h [ sum_i Wd[i, j] C_i + Xw_j F^T ]           (Xw_j = el_j dt_j x_j, the forward's; over the group)
//   dC_i = sum_h [ sum_j Wd[i, j] B_j + dyw_i S0^T ]         (dyw_i = exp(cs_i) dy_i)
//   dD   = sum dy . x
// B and C are shared by the heads of a group, so the sums over h are taken before the products: sum_h Wd times B
// (or C) is one Q x Q product per group, and sum_h Xw_j F^T (dyw_i S0^T) is one product over the group's Hg P
// columns: [Xw^1 .. Xw^Hg] [F^1 .. F^Hg]^T. The decay path, with Z[i, j] = (C_i . B_j) Wd[i, j], and per head
// s0_i = C_i . (dyw_i S0^T) = dyw_i . (C_i S0) and E_j = B_j . (Xw_j F^T) = Xw_j . (B_j F) (row dots over P of
// products the backward needs anyway or the forward's read-out form),
// dl_t = dLoss / dl_t (= exp(l_t) <dS_t, S_{t-1}> of the recurrence) in the form without cancellation:
//   dl_t = sum_{i >= t} sum_{j < t} Z[i, j] + sum_{i >= t} s0_i + sum_{j < t} E_j + exp(cs_last) <F, S0>
//   ddt_t = x_t . v_t + A_h dl_t,   dA_h = sum over b, t of dt_t dl_t.
// (Checked in float64 against the sequential recurrence at L = 1 .. 300 with chunks of 4 .. 64, G = 1, 2, 3,
// B = 1 .. 3: every gradient to ~1e-15 relative.)
//
// Steps per slab of batch rows (the cuBLAS products batched over (b, c, g), once over the full chunks and once
// over a last shorter one):
//   1. ssd_chunk_states (ops/cuda/ssd_chunks.cuh, the forward's): cs, decays, Xw, S_in[c]
//      with dyw = exp(cs_i) dy_i from the same prep kernel
//   2. F: C_c^T dyw_c (ssd_chunk_products), the carry from the last chunk
//   3. ssd_state_readout_kernel (ops/cuda/ssd_state_readouts.cuh), per (b, c, h) on tensor cores: Y0 = C_c S0 and
//      U = B_c F on chip, s0 = dyw . Y0 and E = Xw . U (row dots), v0 = el U, <F, S0>;
//      products that need only the states:  CB = C_c B_c^T (Q x Q per group), dCg = dyw_c S0^T and dBg = Xw_c F^T
//      (Q x N per group, over Hg P columns)
//   4. - 6. ssd_bwd_chunk_kernel (ops/cuda/ssd_bwd_chunk.cuh), per (b, c, h) on tensor cores: Gm = dy_c x_c^T, Wd
//      and M (masks and decays), Z's rectangle sums (warp scans), dl and the chunk's dA / dD terms, v = v0 + M^T dy_c,
//      dx = dt v + D dy, ddt = x . v + A dl; only Wd leaves the chip (session 24; before: a cuBLAS product, a decay
//      kernel, a second product and a token kernel, with Gm, Wd, M and v through HBM)
//   7. ssd_bwd_wsum_kernel                  thread per (b, c, g, i, j): Wsum = sum of Wd over the group's heads
//   8. products that need Wsum:             dCg += Wsum B_c, dBg += Wsum^T C_c (per group)
//   9. ssd_bwd_put_group_kernel             grid-stride over (b, t, g, n): dB, dC from dBg, dCg
//  10. ssd_bwd_heads_kernel (once)          one thread per head: dA, dD = sums over (b, chunk)
// Profiler ranges (core/profile_range.hpp) inside the caller's: states (1, 2), readouts (3's kernel),
// state_products (3's cuBLAS products), chunks (4 - 6), group_products (7 - 9).
// The products are float (cuBLAS SGEMM; 3xTF32 in the read-out and chunk kernels) when the context's GemmPrecision
// is Fp32, TF32 tensor cores otherwise (gemm_batched; one TF32 pass in those kernels), as in the forward. Every sum
// has a fixed order (cuBLAS's, warp trees, heads in head order, chunks in order; no atomics): the same bits on
// every run. Element arithmetic is float (Wsum too), with the cumulative sums, the decay-path sums and the
// reductions over tokens in double; against the host's double recurrence that is ~1e-6 relative in fp32.
//
// Cost at the 780M shape (B = 1, L = 2048, H = 48, P = 64, N = 128, G = 1: 32 chunks): per (b, h, c)
// Q^2 P (Gm) + 2 Q N P (Y0, U) + 2 Q N P (the head's share of dCg, dBg) + Q^2 P (M^T dy) = 2.6 M FMA, plus
// Q N P each in the products of steps 1 and 2, and per (b, g, c) Q^2 N for CB and 2 Q^2 N for Wsum B, Wsum^T C:
// ~5.7 G FMA (11 GFLOP) per layer, against 6.4 G before: session 13's form took the Wd products per head
// (2 Q^2 N each, 34% of a head's FMAs) and wrote each head's dB, dC (L, H, N) for a sum over the heads. The
// session-9 form ran the products as SIMT block products in one kernel per (b, h, c) at ~8 TFLOP/s (1.2 ms per
// layer on an H100; bench/RESULTS_CUDA.md).
//
// Contracts as ops/ssd_scan_backward.hpp: zero initial state; x, B, C, dy with unit stride along their last
// dimension, and B, C with rows along L that do not overlap (B and C are column ranges of one tensor in the model;
// cuBLAS's leading dimension), both checked; outputs of any strides, each put through put_grad under its mode (dD under
// modes.params, the others under modes.inputs); dD may be empty (then untouched). Everything runs on ctx.stream();
// nothing synchronizes.
//
// Scratch (ctx.workspace()), per slab of batch rows (as many as fit in 1 GiB, at least one): states S_in and
// F (rows, chunks, N, H, P), Xw, dyw, v (rows, L, H, P), Wd (rows, chunks, H, Q, Q), CB and Wsum (rows, chunks, G,
// Q, Q), dBg and dCg (rows, L, G, N) floats; cs, s0 and E (rows, H, chunks, Q), <F, S0> (rows, H, chunks) doubles;
// plus the dA / dD terms (B, H, chunks) doubles. At the 780M shape, B = 1, L = 2048:
// 2 x 50.3 + 3 x 25.2 + 25.2 + 2 x 0.5 + 2 x 1.0 + 3 x 0.8 MB = 207 MB.
// Refused: L beyond 65535 chunks, a slab's (row, head) pairs beyond 65535 (grid limits), input rows with a stride along
// their last dimension, overlapping rows of B or C.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>

#include "../../core/profile_range.hpp"
#include "../../core/workspace.hpp"
#include "gemm.cuh"
#include "launch_backward.cuh"
#include "ssd_bwd_chunk.cuh"
#include "ssd_chunks.cuh"
#include "ssd_state_readouts.cuh"

namespace bimamba::detail {

namespace gpu {
static_assert(kSsdBwdChunk <= kSsdReadoutChunk && kSsdBwdThreads == kSsdReadoutThreads,
              "the read-out kernel's chunk and block (ssd_bwd_launch)");

// wsum[b, c, g] = the sum of Wd over the heads of group g, in head order (Q x Q tiles, zeros outside Qc x Qc);
// grid (b * c * g, Q * Q / kSsdBwdThreads), a thread per tile element: a warp's loads of each head are coalesced
// and ~10^5 threads keep HBM busy (a block per tile, 32 blocks at B = 1, took 150 us for 25 MB on an H100).
// (A template, as every kernel of a header: no duplicate host stubs across translation units.)
template <class T>
__global__ void ssd_bwd_wsum_kernel(SsdGeometry geo, SsdBwdScratch s) {
  const int64_t QQ = geo.Q * geo.Q, Hg = geo.H / geo.G, bc = blockIdx.x / geo.G, g = blockIdx.x % geo.G;
  const int64_t e = blockIdx.y * int64_t(blockDim.x) + threadIdx.x;
  const float* wd = s.wd + (bc * geo.H + g * Hg) * QQ + e;
  T sum = 0;
  for (int64_t h = 0; h < Hg; ++h) sum += wd[h * QQ];
  s.wsum[blockIdx.x * QQ + e] = sum;
}

// dB, dC of the slab's rows from their contiguous (rows, L, G, N) products, under `mode`.
template <class T>
__global__ void ssd_bwd_put_group_kernel(SsdGeometry geo, SsdBwdScratch s, TensorView<T, 4, Cuda> dB,
                                         TensorView<T, 4, Cuda> dC, GradientMode mode) {
  const int64_t L = geo.L, G = geo.G, N = geo.N, n_items = geo.B * L * G * N;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n_items; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i % N, g = (i / N) % G, t = (i / (N * G)) % L, b = i / (N * G * L);
    put_grad(dB(b, t, g, n), double(s.dBg[i]), mode);
    put_grad(dC(b, t, g, n), double(s.dCg[i]), mode);
  }
}

// dA_h, dD_h: the (B, H, chunks) terms summed over b and the chunks, in order.
template <class T>
__global__ void ssd_bwd_heads_kernel(int64_t B, int64_t chunks, const double* dA_part, const double* dD_part,
                                     TensorView<T, 1, Cuda> dA, TensorView<T, 1, Cuda> dD, GradientModes modes) {
  const int64_t H = dA.size(0), h = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (h >= H) return;
  double sa = 0, sd = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < chunks; ++c) {
      sa += dA_part[(b * H + h) * chunks + c];
      sd += dD_part[(b * H + h) * chunks + c];
    }
  put_grad(dA(h), sa, modes.inputs);
  if (present(dD)) put_grad(dD(h), sd, modes.params);
}

// kernel<<<grid, kSsdBwdThreads, smem, stream>>>(args...): every launch of this file in one place, with its check.
template <class... KernelArgs, class... Args>
void ssd_bwd_launch(cudaStream_t stream, void (*kernel)(KernelArgs...), dim3 grid, size_t smem, Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = dim3(kSsdBwdThreads);
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  BIMAMBA_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}
}  // namespace gpu

// Steps 3 and 8 of the top comment: the batched products of one slab (rows of B and C with strides along (b, t,
// group), cuBLAS leading dimensions ld_b, ld_c; every scratch tensor contiguous as SsdBwdScratch says).
struct SsdBwdOperands {
  TensorView<const float, 4, Cuda> x, Bm, Cm, dy;
  int64_t ld_b, ld_c;
};

// The rows of v (B, L, group or head, .) as a batched product's operand over (b, chunk, group or head, -), from
// chunk `first` on.
inline gpu::BatchOperand ssd_chunk_rows(TensorView<const float, 4, Cuda> v, int64_t first, int64_t Q) {
  return {v.data() + first * Q * v.stride(1), {v.stride(0), Q * v.stride(1), v.stride(2), 0}};
}

inline void ssd_bwd_state_products(Context<Cuda>& ctx, const gpu::SsdGeometry& g, const gpu::SsdChunks& chunks,
                                   const gpu::SsdBwdScratch& s, const SsdBwdOperands& o) {
  const int64_t Q = g.Q, QQ = Q * Q, P = g.P, N = g.N, H = g.H, G = g.G, Hg = H / G, HP = H * P, GN = G * N,
                NHP = N * HP, L = g.L, C = g.chunks;
  for_each_chunk_round(g, [&](int64_t first, int64_t count, int64_t Qc) {
    // CB [j Q + i] = C_i . B_j: column-major (i, j) = C_c B_c^T, per (b, c, g).
    gemm_batched(ctx, CUBLAS_OP_T, CUBLAS_OP_N, Qc, Qc, N, {{g.B, count, G, 1}}, ssd_chunk_rows(o.Cm, first, Q),
                 o.ld_c, ssd_chunk_rows(o.Bm, first, Q), o.ld_b, 0.0f,
                 {s.cb + first * G * QQ, {C * G * QQ, G * QQ, QQ, 0}}, Q);
    // Per group: dCg = dyw_c S0^T, dBg = Xw_c F^T (Qc, N), over the group's Hg P columns at once (the heads' sum):
    // column-major (N, Qc) = the states' rows (N, Hg P) times the weighted rows transposed.
    const auto group_state_times = [&](const float* states, const float* w, float* out) {
      gemm_batched(ctx, CUBLAS_OP_T, CUBLAS_OP_N, N, Qc, Hg * P, {{g.B, count, G, 1}},
                   {states + first * NHP, {C * NHP, NHP, Hg * P, 0}}, HP,
                   {w + first * Q * HP, {L * HP, Q * HP, Hg * P, 0}}, HP, 0.0f,
                   {out + first * Q * GN, {L * GN, Q * GN, N, 0}}, GN);
    };
    group_state_times(chunks.states, s.dyw, s.dCg);
    group_state_times(s.dstates, chunks.xw, s.dBg);
  });
}

inline void ssd_bwd_group_products(Context<Cuda>& ctx, const gpu::SsdGeometry& g, const gpu::SsdBwdScratch& s,
                                   const SsdBwdOperands& o) {
  const int64_t Q = g.Q, QQ = Q * Q, N = g.N, G = g.G, GN = G * N, L = g.L, C = g.chunks;
  for_each_chunk_round(g, [&](int64_t first, int64_t count, int64_t Qc) {
    const gpu::BatchOperand wsum = {s.wsum + first * G * QQ, {C * G * QQ, G * QQ, QQ, 0}};
    // dCg[i] += sum_j Wsum[i, j] B_j: column-major (N, Qc) += B_c^T Wsum^T (Wsum [j Q + i] is column-major (i, j)).
    gemm_batched(ctx, CUBLAS_OP_N, CUBLAS_OP_T, N, Qc, Qc, {{g.B, count, G, 1}}, ssd_chunk_rows(o.Bm, first, Q),
                 o.ld_b, wsum, Q, 1.0f, {s.dCg + first * Q * GN, {L * GN, Q * GN, N, 0}}, GN);
    // dBg[j] += sum_i Wsum[i, j] C_i: column-major (N, Qc) += C_c^T Wsum.
    gemm_batched(ctx, CUBLAS_OP_N, CUBLAS_OP_N, N, Qc, Qc, {{g.B, count, G, 1}}, ssd_chunk_rows(o.Cm, first, Q),
                 o.ld_c, wsum, Q, 1.0f, {s.dBg + first * Q * GN, {L * GN, Q * GN, N, 0}}, GN);
  });
}

inline void ssd_scan_backward_impl(Context<Cuda>& ctx, TensorView<const float, 4, Cuda> x,
                                   TensorView<const float, 3, Cuda> dt, TensorView<const float, 1, Cuda> A,
                                   TensorView<const float, 4, Cuda> Bm, TensorView<const float, 4, Cuda> Cm,
                                   TensorView<const float, 1, Cuda> D, TensorView<const float, 4, Cuda> dy,
                                   TensorView<float, 4, Cuda> dx, TensorView<float, 3, Cuda> ddt,
                                   TensorView<float, 1, Cuda> dA, TensorView<float, 4, Cuda> dB,
                                   TensorView<float, 4, Cuda> dC, TensorView<float, 1, Cuda> dD, GradientModes modes) {
  using namespace gpu;
  const int64_t B = x.size(0), L = x.size(1), H = x.size(2), P = x.size(3), G = Bm.size(2), N = Bm.size(3);
  if (H == 0) return;
  const int64_t Q = kSsdBwdChunk, chunks = (L + Q - 1) / Q, QQ = Q * Q, HP = H * P;
  BIMAMBA_CHECK(chunks < 65536, "ssd_scan_backward (Cuda): L = ", L, " needs ", chunks, " chunks of ", Q,
                " tokens, above the Cuda grid limit of 65535");
  BIMAMBA_CHECK(H < 65536 && B * L < (int64_t(1) << 31), "ssd_scan_backward (Cuda): ", H, " heads or ", B * L,
                " tokens exceed the Cuda grid limits (65535 heads, 2^31 - 1 tokens)");
  BIMAMBA_CHECK(x.stride(3) == 1 && Bm.stride(3) == 1 && Cm.stride(3) == 1 && dy.stride(3) == 1,
                "ssd_scan_backward (Cuda): x, B, C and dy need unit stride along their last dimension (cuBLAS rows)");
  const SsdBwdOperands ops{x, Bm, Cm, dy, ssd_leading_dim(Bm.stride(1), N, L, "B"),
                           ssd_leading_dim(Cm.stride(1), N, L, "C")};
  const int64_t per_row = int64_t(sizeof(float)) * (2 * chunks * N * HP + H * chunks + 3 * L * HP +
                                                    chunks * (2 * G + H) * QQ + 2 * L * G * N) +
                          int64_t(sizeof(double)) * (3 * Q + 1) * H * chunks;
  const int64_t bs = std::max<int64_t>(
      1, std::min<int64_t>({B, 65535 / H, int64_t(kSsdBwdSlabBytes) / std::max<int64_t>(1, per_row)}));
  auto& ws = ctx.workspace();
  WorkspaceScope<Cuda> scope(ws);
  double* dA_part = ws.take<double>(size_t(B * H * chunks));  // (B, H, chunks)
  double* dD_part = ws.take<double>(size_t(B * H * chunks));  // (B, H, chunks)
  SsdChunks chunk_scratch = ssd_take_chunks(ws, SsdGeometry{bs, L, H, P, G, N, Q, chunks});
  SsdBwdScratch s;
  s.dstates = ws.take<float>(size_t(bs * chunks * N * HP));
  s.dyw = ws.take<float>(size_t(bs * L * HP));
  s.v = ws.take<float>(size_t(bs * L * HP));
  s.cb = ws.take<float>(size_t(bs * chunks * G * QQ));
  s.wd = ws.take<float>(size_t(bs * chunks * H * QQ));
  s.wsum = ws.take<float>(size_t(bs * chunks * G * QQ));
  s.dBg = ws.take<float>(size_t(bs * L * G * N));
  s.dCg = ws.take<float>(size_t(bs * L * G * N));
  s.s0 = ws.take<double>(size_t(bs * H * chunks * Q));
  s.e = ws.take<double>(size_t(bs * H * chunks * Q));
  s.fs = ws.take<double>(size_t(bs * H * chunks));
  const cudaStream_t stream = ctx.stream();

  for (int64_t b0 = 0; b0 < B && chunks > 0; b0 += bs) {
    const int64_t rows = std::min(bs, B - b0);
    const SsdGeometry geo{rows, L, H, P, G, N, Q, chunks};
    SsdBwdOperands slab = ops;
    slab.x = x.narrow(0, b0, rows);
    slab.Bm = Bm.narrow(0, b0, rows);
    slab.Cm = Cm.narrow(0, b0, rows);
    slab.dy = dy.narrow(0, b0, rows);
    const auto dts = dt.narrow(0, b0, rows);
    s.dA_part = dA_part + b0 * H * chunks;
    s.dD_part = dD_part + b0 * H * chunks;
    chunk_scratch.geo = geo;
    {  // 1., 2.: S_in[c] from zero; F from its own terms C_c^T dyw_c, carried from the last chunk.
      ProfileRange<Cuda> range(ctx, "states");
      ssd_chunk_states(ctx, chunk_scratch, slab.x, dts, A, slab.Bm, {}, {}, slab.dy, s.dyw);
      if (N > 0 && HP > 0) {
        ssd_chunk_products(ctx, geo, slab.Cm, s.dyw, s.dstates);
        ssd_bwd_launch(stream, ssd_carry_kernel<true, float>, dim3(grid_for(rows * N * HP)), 0, geo, s.dstates,
                       static_cast<const float*>(chunk_scratch.decays), TensorView<const float, 4, Cuda>{},
                       TensorView<float, 4, Cuda>{});
      }
    }
    {
      ProfileRange<Cuda> range(ctx, "readouts");
      const SsdReadoutArgs readout{chunk_scratch.states, s.dstates, s.dyw, chunk_scratch.xw, chunk_scratch.cs,
                                   s.v, s.s0, s.e, s.fs};
      const dim3 grid(unsigned(chunks), unsigned(rows * H));
      const bool vec = ssd_readout_vectorizable(geo, slab.Cm, slab.Bm);
      if (ctx.gemm_precision() == GemmPrecision::Fp32)
        ssd_bwd_launch(stream, ssd_state_readout_kernel<float, true>, grid, kSsdReadoutSmem, geo, readout, slab.Cm,
                       slab.Bm, vec);
      else
        ssd_bwd_launch(stream, ssd_state_readout_kernel<float, false>, grid, kSsdReadoutSmem, geo, readout, slab.Cm,
                       slab.Bm, vec);
    }
    {
      ProfileRange<Cuda> range(ctx, "state_products");
      ssd_bwd_state_products(ctx, geo, chunk_scratch, s, slab);  // 3.
    }
    {
      ProfileRange<Cuda> range(ctx, "chunks");  // 4. - 6.
      const auto dx_rows = dx.narrow(0, b0, rows);
      const bool quads = P % 4 == 0 && float4_rows(slab.x) && float4_rows(slab.dy) && float4_rows(dx_rows);
      auto kernel = ctx.gemm_precision() == GemmPrecision::Fp32 ? ssd_bwd_chunk_kernel<float, true>
                                                                : ssd_bwd_chunk_kernel<float, false>;
      BIMAMBA_CUDA_CHECK(
          cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kSsdBwdChunkSmem)));
      ssd_bwd_launch(stream, kernel, dim3(unsigned(chunks), unsigned(rows * H)), kSsdBwdChunkSmem, chunk_scratch, s,
                     slab.x, dts, A, D, slab.dy, dx_rows, ddt.narrow(0, b0, rows), modes.inputs, quads);
    }
    {
      ProfileRange<Cuda> range(ctx, "group_products");  // 7., 8.
      ssd_bwd_launch(stream, ssd_bwd_wsum_kernel<float>, dim3(unsigned(rows * chunks * G), QQ / kSsdBwdThreads), 0,
                     geo, s);
      ssd_bwd_group_products(ctx, geo, s, slab);
      if (N > 0)
        ssd_bwd_launch(stream, ssd_bwd_put_group_kernel<float>, dim3(grid_for(rows * L * G * N)), 0, geo, s,
                       dB.narrow(0, b0, rows), dC.narrow(0, b0, rows), modes.inputs);
    }
  }
  ssd_bwd_launch(stream, ssd_bwd_heads_kernel<float>, dim3(unsigned((H + kSsdBwdThreads - 1) / kSsdBwdThreads)), 0, B,
                 chunks, static_cast<const double*>(dA_part), static_cast<const double*>(dD_part), dA, dD, modes);
}

}  // namespace bimamba::detail
