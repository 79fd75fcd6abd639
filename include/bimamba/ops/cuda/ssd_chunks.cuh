// The chunk states of the Mamba-2 scan (see ops/ssd_scan.hpp for the math), shared by the scan forward
// (ops/cuda/ssd_scan.cuh) and backward (ops/cuda/ssd_scan_backward.cuh). Per (batch b, chunk c of Qc <= Q
// tokens, head h of group g), a_t = dt_t A_h and the within-chunk cumulative sums cs_i = a_0 + ... + a_i in
// double (seg(i, j) = cs_i - cs_j loses nothing however long the chunk or large the decay):
//   ssd_prep_kernel          cs, the decays exp(cs_last), and Xw_j = exp(cs_last - cs_j) dt_j x_j; for the backward
//                            also dyw_i = exp(cs_i) dy_i (the weights of F's own terms and of dC's S0 term)
//   ssd_chunk_products       Out_c (N, H P) = Rows_c^T W_c: for each (b, c, g), the chunk's rows of B (or C) times
//                            the chunk's weighted x (or dy) of the heads of g: one batched cuBLAS call per round
//   ssd_carry_kernel         the carry over the chunks per state element (n, h, p), forward or from the last chunk:
//                            slot_c <- carry; carry <- exp(cs_last^c) carry + slot_c
// The forward's states: Z_c = B_c^T Xw_c, then the forward carry from the initial state gives S_in[c], the state
// entering chunk c, and the final state. States are (B, chunks, N, H, P) floats, P fastest.
// Rounds: a sequence whose length is not a multiple of Q ends in a shorter chunk, so the batched products run once
// over the full chunks and once over that chunk (for_each_chunk_round).
#pragma once

#include <algorithm>
#include <cstdint>

#include "../../core/workspace.hpp"
#include "../common.hpp"
#include "gemm.cuh"
#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
inline constexpr int kSsdMaxChunk = 256;  // tokens per chunk (one thread per token in the cumulative sum)

// cs[i] <- a_0 + ... + a_i for i < Qc (Hillis-Steele in double; all threads call it, blockDim >= Qc).
__device__ inline void chunk_cumsum(double* cs, int Qc) {
  for (int offset = 1; offset < Qc; offset <<= 1) {
    const double v = threadIdx.x < Qc && threadIdx.x >= offset ? cs[threadIdx.x - offset] : 0.0;
    __syncthreads();
    if (threadIdx.x < Qc) cs[threadIdx.x] += v;
    __syncthreads();
  }
}

struct SsdGeometry {
  int64_t B, L, H, P, G, N, Q, chunks;
  BIMAMBA_HOST_DEVICE int64_t tokens_in(int64_t c) const { return Q < L - c * Q ? Q : L - c * Q; }
};

// Loads dt of the chunk and its cumulative sums into shared memory (dts[Q] float, cs[Q] double).
template <class T>
__device__ inline void load_chunk_decays(TensorView<const T, 3, Cuda> dt, float a, int64_t b, int64_t c0, int64_t h,
                                         int Qc, float* dts, double* cs) {
  if (threadIdx.x < Qc) {
    dts[threadIdx.x] = dt(b, c0 + threadIdx.x, h);
    cs[threadIdx.x] = double(dts[threadIdx.x] * a);
  }
  __syncthreads();
  chunk_cumsum(cs, Qc);
}

// Scratch of the chunk states (workspace; ssd_take_chunks).
struct SsdChunks {
  SsdGeometry geo;
  double* cs;     // (B, H, chunks, Q)
  float* decays;  // (B, H, chunks)          exp(cs_last)
  float* xw;      // (B, L, H, P)            exp(cs_last - cs_j) dt_j x_j
  float* states;  // (B, chunks, N, H, P)    Z_c, then S_in[c]
};

// Grid (chunks, B * H), blockDim >= Q: cs and the decay of the chunk, then Xw over its tokens, and with kWithDy
// dyw (B, L, H, P) from dy (the backward's; the backward's dyw had a kernel of its own until session 19: a thread
// per element reading cs again, 0.2 ms a layer at batch 4 on the H100 at 0.95 TB/s). A template parameter, not a
// runtime test: with the test at run time the forward's `states` range went 0.309 -> 0.335 ms a layer at batch 4
// (H100, session 19; the template form is not yet timed on a GPU).
template <class T, bool kWithDy>
__global__ void ssd_prep_kernel(SsdChunks s, TensorView<const T, 4, Cuda> x, TensorView<const T, 3, Cuda> dt,
                                TensorView<const T, 1, Cuda> A, TensorView<const T, 4, Cuda> dy, float* dyw) {
  __shared__ double cs[kSsdMaxChunk];
  __shared__ float dts[kSsdMaxChunk];
  const SsdGeometry& g = s.geo;
  const int64_t c = blockIdx.x, pair = blockIdx.y, b = pair / g.H, h = pair % g.H, c0 = c * g.Q;
  const int Qc = int(g.tokens_in(c));
  load_chunk_decays(dt, float(A(h)), b, c0, h, Qc, dts, cs);
  const double last = cs[Qc - 1];
  if (threadIdx.x < Qc) s.cs[(pair * g.chunks + c) * g.Q + threadIdx.x] = cs[threadIdx.x];
  if (threadIdx.x == 0) s.decays[pair * g.chunks + c] = expf(float(last));
  // A warp per token, lanes along p (no 64-bit division per element); each warp takes kPrepTokens tokens
  // j0 + k warps at once and issues all their loads of x (and dy) before its stores to Xw (and dyw).
  constexpr int kPrepTokens = 8;
  const int lane = int(threadIdx.x) & 31, warp = int(threadIdx.x) >> 5, warps = int(blockDim.x) >> 5;
  for (int j0 = warp; j0 < Qc; j0 += kPrepTokens * warps)
    for (int64_t p = lane; p < g.P; p += 32) {
      float v[kPrepTokens], d[kPrepTokens];
#pragma unroll
      for (int k = 0; k < kPrepTokens; ++k) {
        const int j = j0 + k * warps;
        v[k] = j < Qc ? float(x(b, c0 + j, h, p)) : 0.0f;
        if constexpr (kWithDy) d[k] = j < Qc ? float(dy(b, c0 + j, h, p)) : 0.0f;
      }
#pragma unroll
      for (int k = 0; k < kPrepTokens; ++k) {
        const int j = j0 + k * warps;
        if (j >= Qc) continue;
        const int64_t at = ((b * g.L + c0 + j) * g.H + h) * g.P + p;
        s.xw[at] = v[k] * expf(float(last - cs[j])) * dts[j];
        if constexpr (kWithDy) dyw[at] = d[k] * expf(float(cs[j]));
      }
    }
}

// The carry of one state element through the chunks, in order (or from the last chunk with kReverse):
//   slot_c <- carry; carry <- decay_c carry + own_c      (own_c: the slot's value before)
// and returns the carry after the last chunk. The loads of 32 chunks (a whole 2048-token sequence at Q = 64) are
// issued before their stores, so a thread waits for one memory round trip per 32 chunks instead of one per chunk
// (a store may alias the next load). Against 8 chunks per round on the H100 (session 19, 780M shape, batch 4):
// the backward's `states` range (its two carries with the prep kernel and two products) 1.216 -> 0.863 ms a
// layer, the forward's 0.379 -> 0.322 ms. At 8 the kernel was bound by latency (ncu: 40 cycles per issued
// instruction, 0.9 - 1.35 TB/s).
template <bool kReverse>
__device__ inline float carry_through_chunks(float* slot0, int64_t slot_stride, const float* decay0, int64_t chunks,
                                             float carry) {
  constexpr int kBatch = 32;
  for (int64_t k0 = 0; k0 < chunks; k0 += kBatch) {
    float own[kBatch], decay[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int64_t k = k0 + u, c = kReverse ? chunks - 1 - k : k;
      if (k < chunks) {
        own[u] = slot0[c * slot_stride];
        decay[u] = decay0[c];
      }
    }
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int64_t k = k0 + u, c = kReverse ? chunks - 1 - k : k;
      if (k < chunks) {
        slot0[c * slot_stride] = carry;
        carry = decay[u] * carry + own[u];
      }
    }
  }
  return carry;
}

// Per (b, n, h, p): the carry over the chunks of `slots` (B, chunks, N, H, P), starting from initial_state
// (zeros when absent) and storing the last carry in final_state (when present); kReverse walks from the last chunk.
template <bool kReverse, class T>
__global__ void ssd_carry_kernel(SsdGeometry g, float* slots, const float* decays,
                                 TensorView<const T, 4, Cuda> initial_state, TensorView<T, 4, Cuda> final_state) {
  const int64_t HP = g.H * g.P, total = g.B * g.N * HP;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t col = e % HP, n = (e / HP) % g.N, b = e / (HP * g.N), h = col / g.P, p = col % g.P;
    const float initial = present(initial_state) ? float(initial_state(b, h, p, n)) : 0.0f;
    const float last = carry_through_chunks<kReverse>(slots + b * g.chunks * g.N * HP + n * HP + col, g.N * HP,
                                                      decays + (b * g.H + h) * g.chunks, g.chunks, initial);
    if (present(final_state)) final_state(b, h, p, n) = T(last);
  }
}
}  // namespace gpu

// Calls fn(first chunk, chunk count, tokens per chunk) for the full chunks and for a last shorter one.
template <class Fn>
void for_each_chunk_round(const gpu::SsdGeometry& g, Fn&& fn) {
  const int64_t full = g.L / g.Q;
  if (full > 0) fn(int64_t(0), full, g.Q);
  if (g.chunks > full) fn(full, g.chunks - full, g.L - full * g.Q);
}

// cuBLAS's leading dimension for a column-major view of `cols` columns of `rows` elements `stride` apart.
inline int64_t ssd_leading_dim(int64_t stride, int64_t rows, int64_t cols, const char* what) {
  if (cols <= 1) return std::max<int64_t>({stride, rows, 1});
  BIMAMBA_CHECK(stride >= rows, "ssd_scan (Cuda): rows of ", what, " overlap (stride ", stride, " along L, ", rows,
                " elements per row)");
  return stride;
}

inline gpu::SsdChunks ssd_take_chunks(Workspace<Cuda>& ws, const gpu::SsdGeometry& g) {
  const int64_t pairs = g.B * g.H;
  gpu::SsdChunks s{g, nullptr, nullptr, nullptr, nullptr};
  s.cs = ws.take<double>(size_t(pairs * g.chunks * g.Q));
  s.decays = ws.take<float>(size_t(pairs * g.chunks));
  s.xw = ws.take<float>(size_t(g.B * g.L * g.H * g.P));
  s.states = ws.take<float>(size_t(g.B * g.chunks * std::max<int64_t>(g.N, 1) * g.H * g.P));
  return s;
}

// out (B, chunks, N, H, P) = per (b, c, g): rows_c^T (N x Qc) w_c (Qc x Hg P), with rows (B, L, G, N) (B or C,
// unit stride along N) and w (B, L, H, P) contiguous (Xw, or the backward's weighted dy).
inline void ssd_chunk_products(Context<Cuda>& ctx, const gpu::SsdGeometry& g, TensorView<const float, 4, Cuda> rows,
                               const float* w, float* out) {
  const int64_t HP = g.H * g.P, Hg = g.H / g.G, NHP = g.N * HP;
  const int64_t ld = ssd_leading_dim(rows.stride(1), g.N, g.L, "B / C");
  const int64_t s0 = rows.stride(0), s1 = rows.stride(1), s2 = rows.stride(2);
  for_each_chunk_round(g, [&](int64_t first, int64_t count, int64_t Qc) {
    // column-major (Hg P, N) = w_c^T rows_c
    gemm_batched(ctx, CUBLAS_OP_N, CUBLAS_OP_T, Hg * g.P, g.N, Qc, {{g.B, count, g.G, 1}},
                 {w + first * g.Q * HP, {g.L * HP, g.Q * HP, Hg * g.P, 0}}, HP,
                 {rows.data() + first * g.Q * s1, {s0, g.Q * s1, s2, 0}}, ld, 0.0f,
                 {out + first * NHP, {g.chunks * NHP, NHP, Hg * g.P, 0}}, HP);
  });
}

// The forward's chunk states: cs, decays, Xw, then S_in[c] in s.states and the final state (when present); with
// dy present also dyw = exp(cs_i) dy_i into `dyw` (B, L, H, P) contiguous (the backward's).
inline void ssd_chunk_states(Context<Cuda>& ctx, const gpu::SsdChunks& s, TensorView<const float, 4, Cuda> x,
                             TensorView<const float, 3, Cuda> dt, TensorView<const float, 1, Cuda> A,
                             TensorView<const float, 4, Cuda> Bm, TensorView<const float, 4, Cuda> initial_state,
                             TensorView<float, 4, Cuda> final_state, TensorView<const float, 4, Cuda> dy = {},
                             float* dyw = nullptr) {
  using namespace gpu;
  const SsdGeometry& g = s.geo;
  const cudaStream_t stream = ctx.stream();
  const dim3 grid(unsigned(g.chunks), unsigned(g.B * g.H));
  if (present(dy))
    ssd_prep_kernel<float, true><<<grid, kThreads, 0, stream>>>(s, x, dt, A, dy, dyw);
  else
    ssd_prep_kernel<float, false><<<grid, kThreads, 0, stream>>>(s, x, dt, A, dy, dyw);
  check_launch();
  if (g.N == 0) return;
  ssd_chunk_products(ctx, g, Bm, s.xw, s.states);
  ssd_carry_kernel<false, float><<<grid_for(g.B * g.N * g.H * g.P), kThreads, 0, stream>>>(g, s.states, s.decays,
                                                                                         initial_state, final_state);
  check_launch();
}

}  // namespace bimamba::detail
