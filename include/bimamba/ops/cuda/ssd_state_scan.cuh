// The chunk states of the SSD scan in one pass over the chunks (ops/cuda/ssd_chunks.cuh): per (b, head h of group
// g), for the chunks c in order (or from the last with kReverse), with Rows_c (Qc x N: the chunk's rows of B, or C)
// and W_c (Qc x P: the head's Xw, or dyw):
//   slot_c <- carry;   carry <- decay_c carry + Rows_c^T W_c          (carry: N x P, from initial_state or zeros)
// and the last carry into final_state. The forward's S_in[c] (Rows = B, W = Xw) and the backward's F (kReverse,
// Rows = C, W = dyw). Until session 20 this was a batched cuBLAS product writing every chunk's Rows_c^T W_c to the
// slots, then a carry kernel reading and rewriting them: three passes over the (B, chunks, N, H, P) states instead
// of one.
// How: a block per (32 rows n x 64 columns p of the state, b, h); the carry stays in the tensor-core accumulators
// (four warps, two 16 x 16 tiles each) and is scaled by decay_c in place (a uniform scale of every element: valid
// whatever the fragment layout). Each step stages kSsdStateScanK tokens of Rows_c (col-major A: rows n, k down the
// tokens) and of W_c in shared memory; the next step's loads are issued before this step's products, so a step's
// memory latency overlaps the previous step's work (the loads do not depend on the carry). Slots and the final
// state leave through a shared-memory tile (coalesced stores, any N and P).
// kSplit: 3xTF32 (fp32-level, GemmPrecision::Fp32), else one TF32 pass (ops/cuda/tf32_mma.cuh).
// Contracts: rows (B, L, G, N) of any strides; w (B, L, H, P) contiguous; decays (B, H, chunks); slots
// (B, chunks, N, H, P) contiguous; initial_state, final_state (B, H, P, N) or empty. Grid (ceil(N / 32) x
// ceil(P / 64), B x H), kSsdStateScanThreads threads, kSsdStateScanSmem bytes of shared memory.
#pragma once

#include <algorithm>
#include <cstdint>

#include "launch.cuh"
#include "ssd_geometry.cuh"
#include "tf32_mma.cuh"

namespace bimamba::detail::gpu {

inline constexpr int kSsdStateScanThreads = 128;
inline constexpr int kSsdStateScanN = 32;                          // rows n of the state per block
inline constexpr int kSsdStateScanCols = 64;                       // columns p of the state per block
inline constexpr int kSsdStateScanK = 64;                          // tokens per staged step
inline constexpr int kSsdStateScanPitchA = kSsdStateScanN + 4;     // (K, 32) slab of Rows_c
inline constexpr int kSsdStateScanPitchB = kSsdStateScanCols + 4;  // (K, 64) slab of W_c; the (32, 64) out tile
inline constexpr size_t kSsdStateScanSmem =
    size_t(kSsdStateScanK * (kSsdStateScanPitchA + kSsdStateScanPitchB) + kSsdStateScanN * kSsdStateScanPitchB) *
    sizeof(float);
static_assert(kSsdStateScanSmem <= (48 << 10), "no shared-memory opt-in");
static_assert((kSsdStateScanK * kSsdStateScanPitchA) % 32 == 0 && (kSsdStateScanK * kSsdStateScanPitchB) % 32 == 0,
              "the tiles 32 B aligned (wmma)");

template <class T, bool kSplit, bool kReverse>
__global__ void __launch_bounds__(kSsdStateScanThreads)
    ssd_state_scan_kernel(SsdGeometry g, TensorView<const T, 4, Cuda> rows, const float* w, const float* decays,
                          float* slots, TensorView<const T, 4, Cuda> initial_state, TensorView<T, 4, Cuda> final_state) {
  constexpr int NT = kSsdStateScanN, W = kSsdStateScanCols, K = kSsdStateScanK;
  constexpr int PA = kSsdStateScanPitchA, PB = kSsdStateScanPitchB, kThreads = kSsdStateScanThreads;
  constexpr int kALoads = K * NT / kThreads, kBLoads = K * W / kThreads;
  constexpr int kARowStep = kThreads / NT, kBRowStep = kThreads / W;
  extern __shared__ __align__(128) float state_scan_smem[];
  float* ta = state_scan_smem;  // (K, PA) Rows_c's tokens x the block's n
  float* tb = ta + K * PA;      // (K, PB) W_c's tokens x the block's p
  float* to = tb + K * PB;      // (NT, PB) the carry on its way out

  const int tid = int(threadIdx.x), warp = tid >> 5, row0 = 16 * (warp & 1), col0 = 32 * (warp >> 1);
  const int64_t n_tiles = (g.N + NT - 1) / NT, n0 = (blockIdx.x % n_tiles) * NT, p0 = (blockIdx.x / n_tiles) * W;
  const int64_t pair = blockIdx.y, b = pair / g.H, h = pair % g.H, grp = h / (g.H / g.G);
  const int64_t HP = g.H * g.P, NHP = g.N * HP;
  const int a_col = tid % NT, a_row = tid / NT, b_col = tid % W, b_row = tid / W;
  const bool a_in = n0 + a_col < g.N, b_in = p0 + b_col < g.P;

  // The carry: initial_state's tile through shared memory, or zeros.
  Tf32Accumulator acc[2];
  if (present(initial_state)) {
    for (int e = tid; e < NT * W; e += kThreads) {
      const int n = e / W, p = e % W;
      to[n * PB + p] = n0 + n < g.N && p0 + p < g.P ? float(initial_state(b, h, p0 + p, n0 + n)) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int t = 0; t < 2; ++t)
      wmma::load_matrix_sync(acc[t], to + row0 * PB + col0 + 16 * t, PB, wmma::mem_row_major);
  } else {
#pragma unroll
    for (int t = 0; t < 2; ++t) wmma::fill_fragment(acc[t], 0.0f);
  }

  // Steps: the chunks in scan order, each in slabs of K tokens. A step's loads into registers (zeros outside).
  const int64_t steps_per_chunk = (g.Q + K - 1) / K, steps = g.chunks * steps_per_chunk;
  float va[kALoads], vb[kBLoads];
  auto load_step = [&](int64_t s) {
    const int64_t k = s / steps_per_chunk, c = kReverse ? g.chunks - 1 - k : k;
    const int64_t j0 = (s % steps_per_chunk) * K, t0 = c * g.Q + j0;
    const int live = int(std::min<int64_t>(K, g.tokens_in(c) - j0));  // tokens of this step (may be <= 0)
    const T* ap = rows.data() + b * rows.stride(0) + (t0 + a_row) * rows.stride(1) + grp * rows.stride(2) +
                  (n0 + a_col) * rows.stride(3);
    const float* bp = w + ((b * g.L + t0 + b_row) * g.H + h) * g.P + p0 + b_col;
#pragma unroll
    for (int u = 0; u < kALoads; ++u)
      va[u] = a_in && a_row + u * kARowStep < live ? float(ap[u * kARowStep * rows.stride(1)]) : 0.0f;
#pragma unroll
    for (int u = 0; u < kBLoads; ++u) vb[u] = b_in && b_row + u * kBRowStep < live ? bp[u * kBRowStep * HP] : 0.0f;
  };
  // The carry's tile out to slots[b, c] (or final_state with c < 0), through `to`.
  auto put_carry = [&](int64_t c) {
#pragma unroll
    for (int t = 0; t < 2; ++t) wmma::store_matrix_sync(to + row0 * PB + col0 + 16 * t, acc[t], PB, wmma::mem_row_major);
    __syncthreads();
    for (int e = tid; e < NT * W; e += kThreads) {
      const int n = e / W, p = e % W;
      if (n0 + n >= g.N || p0 + p >= g.P) continue;
      if (c >= 0)
        slots[(b * g.chunks + c) * NHP + (n0 + n) * HP + h * g.P + p0 + p] = to[n * PB + p];
      else
        final_state(b, h, p0 + p, n0 + n) = T(to[n * PB + p]);
    }
  };

  if (steps > 0) load_step(0);
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t k = s / steps_per_chunk, c = kReverse ? g.chunks - 1 - k : k, j0 = (s % steps_per_chunk) * K;
    __syncthreads();  // the previous step's products (and the out tile's readers) are done
#pragma unroll
    for (int u = 0; u < kALoads; ++u) ta[(a_row + u * kARowStep) * PA + a_col] = va[u];
#pragma unroll
    for (int u = 0; u < kBLoads; ++u) tb[(b_row + u * kBRowStep) * PB + b_col] = vb[u];
    if (s + 1 < steps) load_step(s + 1);  // in flight during this step
    if (j0 == 0) {  // chunk c starts: its slot takes the carry, which then decays through the chunk
      put_carry(c);
      const float decay = decays[pair * g.chunks + c];
#pragma unroll
      for (int t = 0; t < 2; ++t)
#pragma unroll
        for (int e = 0; e < acc[t].num_elements; ++e) acc[t].x[e] *= decay;
    }
    __syncthreads();  // the slabs are staged
    const int live = int(std::min<int64_t>(K, g.tokens_in(c) - j0));
    tf32_mma<kSplit, 2, wmma::row_major, wmma::col_major>(ta + row0, PA, tb + col0, PB, (live + 7) / 8, acc);
  }
  if (present(final_state)) {
    __syncthreads();  // the out tile's last readers are done
    put_carry(-1);
  }
}

}  // namespace bimamba::detail::gpu
