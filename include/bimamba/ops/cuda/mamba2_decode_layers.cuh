// Cuda persistent decode of a packed Bi-Mamba-2 (one sequence): every block of the model for one token in a
// single cooperative launch (ops/mamba2_decode_layers.hpp states the op; docs/cuda.md says why).
//
// Per layer, on the residual stream h (D):
//   IN    zx   = r_h (S_in (alpha'_in ⊙ h) + beta'_in . h)         r_h = 1 / sqrt(mean h^2 + eps)
//   STEP  y    = the fused Mamba-2 step of zx (conv, dt, state update, read-out, D skip, SiLU(z) gate)
//   OUT  h    += r_y (S_out (alpha'_out ⊙ y) + beta'_out . y)      r_y = 1 / sqrt(mean y^2 + eps_gn)
// with alpha' = alpha ⊙ w and beta' = beta ⊙ w folding the block's RMSNorm weight (IN) and the gated norm's
// weight (OUT) into the FBI scale and offset: the same value as norm-then-project, to float rounding.
//
// Grid: at most one block per SM (all resident: cooperative launch), 16 warps. Every phase splits its rows over
// the blocks (BlockRows). No grid barrier and no counter (v9, session 24): every value one block hands to others
// is published in a tagged word (publish: the float and its round's tag, stored as one 8-byte word), and its
// readers await the tag on the value itself, so a hand-over costs one trip through L2 instead of a barrier's
// arrival, spin and fence followed by the loads. A block computes the in_proj rows of its own state rows (z, x,
// dt) into shared memory, finished there as they are written (the gate SiLU(z), x = SiLU(conv), dt and the decay:
// v12b), and its share of the B / C rows, which every block needs and awaits in STEP (v5). The
// vector a GEMV phase consumes (alpha' ⊙ h for IN, alpha' ⊙ y for OUT) is published by the owners of its entries
// in the phase before, with per-block partial sums of squares and of beta' ⊙ h / beta' ⊙ y; each block awaits
// every block's pair and adds them in block order (deterministic, and the same in every block). Every block
// publishes a pair in every phase, so awaiting them all is what ordered a phase after every block's phase before:
// a value of round r is rewritten only after every reader of round r has published its pair that follows the read.
// The tags are 1, 2, ... within a launch (the layer's index + 1), on words the launcher zeroes first.
//
// The projections read their sign words from shared memory: each block copies its rows once per layer
// (sm_90 cp.async.bulk on an mbarrier; a block's rows are one to four contiguous runs), the next layer's in the
// phase before they are needed, so the weight stream overlaps the waits and the other phases. The dot products
// go through a table per block (T-MAC's idea): for each 4-column group g of the input a,
//   T[q][idx][w] = sum_{i<4} (bit i of idx ? +a : -a)[32 w + 4 q + i]        (nibble q of word w)
// so a row costs one shared-memory lookup and one add per 4 weights. The table's pitch (words, a multiple of
// 32) keeps the lanes of a warp, which read consecutive words of a row, on distinct banks. A lane loads all its
// words of a row before its first lookup, and where in_proj's rows are at most 128 words (a multiple of 16) a warp
// takes two rows at once, a half-warp each, so no lane idles on a row of 80 words (v10, session 25).
// The step phase owns (head, p) state rows, also copied ahead into shared memory; every block recomputes the
// conv of the 2N B / C channels (shared by all heads), and the blocks shift their shares of its conv state.
// Every value that does not depend on the token (conv weights and states, the per-row and per-head parameters,
// the next block's norm weight, alpha and beta at the residual rows) is copied into shared memory by cp.async,
// and each block keeps its residual rows there across layers: STEP and OUT then wait on L2 only for the values
// written in the phase before (v4, session 22; before, each state row waited on a round trip to HBM for its
// parameters). The state rows and those parameters of layer l + 1 are requested as soon as layer l is done
// with their buffers (after its STEP, or its OUT), a layer ahead (v6, session 23; v4 / v5 requested them at the
// start of the layer's IN, and STEP waited for the state rows).
//
// Contracts (checked by the launcher): one sequence; G = 1; N % 4 == 0; sm_90 or newer; the shared memory of
// one block fits. Values written during the launch are read with relaxed device-scope atomic loads (L2), never
// from a stale L1 line.
// Included by ops/mamba2_decode_layers.hpp, which declares Mamba2BlockDecodeWeights and DecodeLayersPlan.
#pragma once

#include <cuda/atomic>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "../../core/cuda_runtime.hpp"
#include "../../core/workspace.hpp"
#include "../common.hpp"
#include "async_copy.cuh"
#include "bulk_copy.cuh"
#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
inline constexpr int kLayersWarps = 16;
inline constexpr int kLayersThreads = 32 * kLayersWarps;
inline constexpr int kLayersPerLaunch = 64;
inline constexpr int kStateRowLanes = 8;                    // STEP: lanes a state row (v12)
inline constexpr int kRowsPerWarp = 32 / kStateRowLanes;    // STEP: state rows a warp at once

struct DecodeLayerPointers {
  const float* norm_weight;                     // (D) the block's RMSNorm
  const uint32_t* in_signs;                     // (R, Wd) words
  const float* in_alpha;                        // (D)
  const float* in_beta;                         // (D)
  const float* conv_weight;                     // (C, K)
  const float* conv_bias;                       // (C) or nullptr
  const float* dt_bias;                         // (H)
  const float* A_log;                           // (H)
  const float* D;                               // (H) or nullptr
  const float* gn_weight;                       // (E) the gated norm
  const uint32_t* out_signs;                    // (Dm, We) words
  const float* out_alpha;                       // (E)
  const float* out_beta;                        // (E)
  float* conv_state;                            // (C, K)
  float* ssm_state;                             // (H, P, N)
  float norm_eps = 0.0f, gn_eps = 0.0f, dt_lo = 0.0f, dt_hi = 0.0f;
};

struct DecodeLayersArgs {
  DecodeLayerPointers layer[kLayersPerLaunch];
  int layers = 0;
  int D = 0, E = 0, H = 0, P = 0, N = 0, K = 0, C = 0;
  int Wd = 0, We = 0, Wp = 0;  // words per row of in_proj (D columns) and out_proj (E columns); table pitch
  bool bulk_in = false, bulk_out = false;  // sign rows 16-byte multiples: bulk copies, else word copies
  float* residual = nullptr;  // (D) in and out
  // Values published in the launch, each in a tagged word (publish / await): the round's tag beside the float.
  unsigned long long* h_in = nullptr;     // (D) alpha'_in ⊙ h of the next IN
  unsigned long long* y_out = nullptr;    // (E) alpha'_out ⊙ y of the next OUT
  unsigned long long* bc_rows = nullptr;  // (2N) the in_proj rows of B and C
  unsigned long long* slots_h = nullptr;  // (blocks, 2) per-block (sum of squares, beta' . h)
  unsigned long long* slots_y = nullptr;  // (blocks, 2) per-block (sum of squares, beta' . y)
  unsigned long long* stamps = nullptr;  // (1 + layers kDecodePhases, blocks) phase ends, ns, when profiling
};

// Profiling (DecodeLayersPlan::stamps): thread 0 of every block records %globaltimer at the start of the launch
// (row 0) and at the end of each phase of each layer (row 1 + l kDecodePhases + p), so a phase's time is its
// stamp minus the one before. A wait on the other blocks shows up in the phase it ends (thread 0 awaits a share of
// the values like every thread).
enum DecodePhase : int {
  kInTable,    // IN: every block's h sums and a_in awaited (the layer's first wait on the other blocks), the table
  kInSigns,    // the in_proj sign rows landed
  kInRows,     // thread 0's warp has its in_proj rows
  kInEnd,      // every warp done
  kStepBC,     // every thread done with the B / C rows (awaited) and their conv
  kStepState,  // the state rows landed
  kStepRows,   // thread 0's warp has its state rows
  kStepSlot,   // every warp done, the block's y sums published
  kOutTable,   // OUT: every block's y sums and a_out awaited, the table built
  kOutSigns,   // the out_proj sign rows landed
  kOutRows,    // thread 0's warp has its out_proj rows, the B / C conv state shifted
  kOutSlot,    // every warp done, the block's h sums published, the next sign rows requested
  kDecodePhases
};
inline constexpr const char* kDecodePhaseNames[kDecodePhases] = {
    "in_table",  "in_signs",  "in_rows",  "in_end",   "step_bc",  "step_state",
    "step_rows", "step_slot", "out_table", "out_signs", "out_rows", "out_slot"};
__device__ inline void stamp(unsigned long long* stamps, int row) {
#if defined(__CUDA_ARCH__)
  if (stamps && threadIdx.x == 0) {
    unsigned long long ns;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(ns));
    stamps[int64_t(row) * gridDim.x + blockIdx.x] = ns;
  }
#else
  (void)stamps, (void)row;
#endif
}

// The lookup table's pitch (words) for a GEMV phase over rows of W words: kFastPitch up to 128 words (4096
// columns), else Wp (DecodeLayersArgs': 256, the other power of two the lookups take as a constant, where that
// fits in shared memory, else W rounded up to 32); and the table region's floats, for both phases (16 entries x 8
// nibbles a word column).
inline constexpr int kFastPitch = 128;
__host__ __device__ inline int table_pitch(int W, int Wp) { return W <= kFastPitch ? kFastPitch : Wp; }
__host__ __device__ inline int64_t table_floats(const DecodeLayersArgs& a) {
  const int pitch =
      table_pitch(a.Wd, a.Wp) > table_pitch(a.We, a.Wp) ? table_pitch(a.Wd, a.Wp) : table_pitch(a.We, a.Wp);
  return 128 * int64_t(pitch);
}

// A row of W words as slices of 32 words (table_dot_slices), the last one partial where W % 32 != 0.
__host__ __device__ inline int slices_per_row(int W) { return (W + 31) / 32; }

// Shared memory of one block: offsets in 4-byte words (the first six 16-byte aligned), total in bytes.
struct DecodeLayersSmem {
  int64_t table, stage, sin, sout, sst, bc;  // lookup table, staged input, sign rows, state rows, SiLU(conv(B / C))
  int64_t bc_w, bc_b, bc_s, bc_in;           // the 2N B / C channels: conv weights (K), bias, conv state (K), input
  int64_t row_w, row_b, row_s, gn, alpha, beta;  // this block's state rows: conv as above, gated norm, out_proj
  int64_t dt_bias, a_log, d_skip;            // the heads of those rows
  int64_t next_w, next_alpha, next_beta, res;  // this block's residual rows: the next block's norm weight,
                                               // in_proj alpha and beta; h itself, kept across layers
  int64_t z, xin;                            // this block's state rows as IN leaves them: the gate SiLU(z)
                                             // and x = SiLU(conv)
  int64_t dt, decay;                         // this block's heads as IN leaves them: dt, exp(dt A)
  int64_t pairs;                             // every block's (sum of squares, beta' . v), as gemv_prologue awaits them
  int64_t part;                              // OUT: the sums of the warps' runs of row slices (table_dot_slices)
  int64_t total;
};
__host__ __device__ inline DecodeLayersSmem layers_smem(const DecodeLayersArgs& a, int blocks) {
  DecodeLayersSmem s{};
  const int64_t n2 = 2 * int64_t(a.N), rows_out = (a.D + blocks - 1) / blocks;
  const int64_t rows_state = (int64_t(a.H) * a.P + blocks - 1) / blocks, heads = rows_state / a.P + 2;
  const int64_t rows_in = (n2 + blocks - 1) / blocks + 2 * rows_state + heads;  // BlockRows' in_proj rows
  int64_t at = 0;  // each region starts where the one before ends; the first six on 16 bytes
  auto place = [&at](int64_t& region, int64_t floats, bool aligned) {
    region = at;
    at += aligned ? (floats + 3) / 4 * 4 : floats;
  };
  place(s.table, table_floats(a), true);
  place(s.stage, 32 * (int64_t(a.Wd > a.We ? a.Wd : a.We) + 1), true);
  place(s.sin, rows_in * a.Wd, true);
  place(s.sout, rows_out * a.We, true);
  place(s.sst, rows_state * a.N, true);
  place(s.bc, n2, true);
  for (int64_t* region : {&s.bc_w, &s.bc_s}) place(*region, n2 * a.K, false);
  for (int64_t* region : {&s.bc_b, &s.bc_in}) place(*region, n2, false);
  for (int64_t* region : {&s.row_w, &s.row_s}) place(*region, rows_state * a.K, false);
  for (int64_t* region : {&s.row_b, &s.gn, &s.alpha, &s.beta, &s.z, &s.xin}) place(*region, rows_state, false);
  for (int64_t* region : {&s.dt_bias, &s.a_log, &s.d_skip, &s.dt, &s.decay}) place(*region, heads, false);
  for (int64_t* region : {&s.next_w, &s.next_alpha, &s.next_beta, &s.res}) place(*region, rows_out, false);
  place(s.pairs, 2 * int64_t(blocks), false);
  place(s.part, rows_out * slices_per_row(a.We), false);
  s.total = 4 * at;
  return s;
}

__host__ __device__ inline int part_begin(int total, int parts, int i) { return int(int64_t(total) * i / parts); }

// A value published in the launch: its float bits and its round's tag (1, 2, ... within a launch; the words are
// zeroed before it) in one 8-byte word, stored and loaded whole, so a reader that sees the tag sees the value: no
// barrier or counter between the writer and its readers, and no fence (each word orders only itself).
__device__ inline void publish(unsigned long long* word, float v, unsigned tag) {
  cuda::atomic_ref<unsigned long long, cuda::thread_scope_device>(*word).store(
      (static_cast<unsigned long long>(tag) << 32) | __float_as_uint(v), cuda::memory_order_relaxed);
}
__device__ inline unsigned long long load_tagged(const unsigned long long* word) {
  return cuda::atomic_ref<unsigned long long, cuda::thread_scope_device>(*const_cast<unsigned long long*>(word))
      .load(cuda::memory_order_relaxed);
}
__device__ inline bool has_tag(unsigned long long v, unsigned tag) { return unsigned(v >> 32) == tag; }
// The value of round `tag` at `word`, given v, a load of it already issued (a thread issues all its loads before
// its first test, so that values already there cost one round trip to L2 together): spins until the tag is there.
__device__ inline float await_value(const unsigned long long* word, unsigned long long v, unsigned tag) {
  while (!has_tag(v, tag)) v = load_tagged(word);
  return __uint_as_float(unsigned(v));
}

// One buffer of shared memory refilled from global memory once per layer: a bulk copy on an mbarrier whose
// phase flips at each use, or (not 16-byte shaped) word copies by every thread, complete at the next
// __syncthreads().
struct RowRun {
  const void* src;
  uint32_t bytes;
};
struct StagedRows {
  uint64_t* bar;
  bool bulk;
  unsigned phase = 0;
  // The runs land one after another from dst; `bytes` is their total.
  __device__ void start(void* dst, const RowRun* runs, int n, uint32_t bytes) {
    if (bytes == 0) return;
    char* to = static_cast<char*>(dst);
    if (bulk) {
      if (threadIdx.x == 0) {
        bulk_copy_fence_shared();
        bulk_expect_bytes(bar, bytes);
        for (int k = 0; k < n; to += runs[k].bytes, ++k)
          if (runs[k].bytes) bulk_copy_part(to, runs[k].src, runs[k].bytes, bar);
      }
    } else {
      for (int k = 0; k < n; to += runs[k].bytes, ++k)
        for (uint32_t i = threadIdx.x; i < runs[k].bytes / 4; i += blockDim.x)
          reinterpret_cast<uint32_t*>(to)[i] = __ldcg(static_cast<const uint32_t*>(runs[k].src) + i);
    }
  }
  __device__ void start(void* dst, const void* src, uint32_t bytes) {
    const RowRun run{src, bytes};
    start(dst, &run, 1, bytes);
  }
  __device__ void wait(uint32_t bytes) {
    if (bytes == 0 || !bulk) return;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    uint32_t done = 0;
    while (!done)
      asm volatile(
          "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
          : "=r"(done)
          : "r"(shared_address(bar)), "r"(phase)
          : "memory");
#endif
    phase ^= 1u;
  }
};

// The lookup table of a (cols entries of round `tag`): T[(q * 16 + idx) * Wp + w], columns past cols as 0, in two
// steps. stage_input: a into shared memory with one coalesced pass (group (q, w), i.e. columns 32 w + 4 q .. + 3,
// at float4 (q (W + 1) + w): the odd pitch keeps both the staging stores and the table build's loads free of bank
// conflicts), so each block requests each line of a once, every load of a thread issued before its first test;
// build_table (after a __syncthreads): the 16 entries of each group.
__device__ inline void stage_input(float* stage, const unsigned long long* a, int cols, int W, unsigned tag) {
  constexpr int kGroups = 3;  // groups a thread awaits at once: 12 loads in flight (a thread has at most 3 groups
                              // at the 2.7B OUT, 8 W = 1280 for 512 threads)
  for (int g0 = threadIdx.x; g0 < 8 * W; g0 += kGroups * blockDim.x) {
    unsigned long long v[kGroups][4];
#pragma unroll
    for (int k = 0; k < kGroups; ++k) {
      const int c = 4 * (g0 + k * int(blockDim.x));
#pragma unroll
      for (int u = 0; u < 4; ++u)
        if (c + u < cols) v[k][u] = load_tagged(a + c + u);
    }
#pragma unroll
    for (int k = 0; k < kGroups; ++k) {
      const int g = g0 + k * int(blockDim.x), c = 4 * g;
      if (g >= 8 * W) break;
      float f[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        if (c + u >= cols) continue;  // await_value written out: through the call, ptxas spilled (sm_90)
        while (!has_tag(v[k][u], tag)) v[k][u] = load_tagged(a + c + u);
        f[u] = __uint_as_float(unsigned(v[k][u]));
      }
      const int w = g >> 3, q = g & 7;
      reinterpret_cast<float4*>(stage)[q * (W + 1) + w] = make_float4(f[0], f[1], f[2], f[3]);
    }
  }
}
__device__ inline void build_table(float* table, const float* stage, int W, int Wp) {
  for (int t = threadIdx.x; t < 8 * W; t += blockDim.x) {
    const int q = t / W, w = t - q * W;
    const float4 f = reinterpret_cast<const float4*>(stage)[q * (W + 1) + w];
    const float lo[4] = {-f.x - f.y, f.x - f.y, f.y - f.x, f.x + f.y};
    const float hi[4] = {-f.z - f.w, f.z - f.w, f.w - f.z, f.z + f.w};
    float* out = table + q * 16 * Wp + w;
#pragma unroll
    for (int idx = 0; idx < 16; ++idx) out[idx * Wp] = lo[idx & 3] + hi[idx >> 2];
  }
}

// The GEMV phases' prologue: the totals of the per-block pairs (sum of squares, beta' . v) of one kind, returned
// to every thread, and the table of a; both of round `tag`. Thread j awaits block j's pair (the plan keeps the grid
// within the block's threads) into `pairs`, its loads issued before stage_input's, so that when everything is
// there the prologue is one round trip to L2; waiting for every block's pair is this phase's barrier. The last
// warp adds the pairs in block order (the same order in every block) while the table is built. With wait_copies,
// every cp.async copy of the block has landed and is visible on return (they were issued a phase or more before).
__device__ inline float2 gemv_prologue(const unsigned long long* slots, const unsigned long long* a, int cols, int W,
                                       int Wp, unsigned tag, float* stage, float* table, float* pairs,
                                       float2* totals, bool wait_copies) {
  const int j = int(threadIdx.x), nb = int(gridDim.x);
  unsigned long long sq = 0, dot = 0;
  if (j < nb) sq = load_tagged(slots + 2 * j), dot = load_tagged(slots + 2 * j + 1);
  stage_input(stage, a, cols, W, tag);
  if (j < nb) {
    pairs[2 * j] = await_value(slots + 2 * j, sq, tag);
    pairs[2 * j + 1] = await_value(slots + 2 * j + 1, dot, tag);
  }
  if (wait_copies) async_copy_wait_all();  // IN: the layer's staged parameters, for the rows' epilogues
  __syncthreads();
  if (j / 32 == int(blockDim.x) / 32 - 1) {
    const int lane = j & 31;
    float s = 0.0f, d = 0.0f;
    for (int k = lane; k < nb; k += 32) s += pairs[2 * k], d += pairs[2 * k + 1];
    s = warp_sum(s), d = warp_sum(d);
    if (lane == 0) *totals = make_float2(s, d);
  }
  build_table(table, stage, W, Wp);
  __syncthreads();
  return *totals;
}

// The table lookups of one sign word w (its 8 nibbles), added to acc0 / acc1 (two chains). The table's pitch is
// kPitch words where it is a compile-time constant (kFastPitch: a power of two, so a lookup's offset is one shift
// and one mask of the word, v11), else Wp.
template <int kPitch>
__device__ inline void add_word(uint32_t bits, const float* column, int Wp, float& acc0, float& acc1) {
  if constexpr (kPitch > 0) {  // entry (q, idx) at byte (q * 16 + idx) * 4 kPitch: the word's bits shifted and masked
    static_assert((kPitch & (kPitch - 1)) == 0 && kPitch >= 4, "a power of two pitch");
    constexpr int kShift = __builtin_ctz(unsigned(kPitch)) + 2;  // log2 of the bytes between two idx
    const char* col = reinterpret_cast<const char*>(column);
    const auto at = [&](int q) {
      const uint32_t off = kShift >= 4 * q ? (bits << (kShift - 4 * q)) & (15u << kShift)
                                           : (bits >> (4 * q - kShift)) & (15u << kShift);
      return *reinterpret_cast<const float*>(col + off + q * 16 * (4 * kPitch));
    };
#pragma unroll
    for (int q = 0; q < 8; q += 2) acc0 += at(q), acc1 += at(q + 1);
  } else {
#pragma unroll
    for (int q = 0; q < 8; q += 2) {
      acc0 += column[(q * 16 + int((bits >> (4 * q)) & 15u)) * Wp];
      acc1 += column[((q + 1) * 16 + int((bits >> (4 * q + 4)) & 15u)) * Wp];
    }
  }
}
inline constexpr int kRowWordsPerLane = 8;  // words a lane loads before its first lookup (v10)

// sum_j s_j a_j of one row of W sign words (shared memory) through the table, a warp per row, lanes on words
// w = lane + 32 k; every lane gets the total. Up to 8 words a lane (W <= 256) the lane loads all its words before its
// first lookup, so the lookups of every word are independent (v10: the loop issued each word's lookups after its
// load).
template <int kPitch>
__device__ inline float table_dot(const uint32_t* row, const float* table, int W, int Wp, int lane) {
  float acc0 = 0.0f, acc1 = 0.0f;
  if (W <= 32 * kRowWordsPerLane) {
    uint32_t bits[kRowWordsPerLane];
#pragma unroll
    for (int k = 0; k < kRowWordsPerLane; ++k) bits[k] = lane + 32 * k < W ? row[lane + 32 * k] : 0u;
#pragma unroll
    for (int k = 0; k < kRowWordsPerLane; ++k)
      if (lane + 32 * k < W) add_word<kPitch>(bits[k], table + lane + 32 * k, Wp, acc0, acc1);
  } else {
    for (int w = lane; w < W; w += 32) add_word<kPitch>(row[w], table + w, Wp, acc0, acc1);
  }
  return warp_sum(acc0 + acc1);
}

// table_dot with the pitch table_pitch(W, Wp) as a constant where it is one of the two powers of two.
__device__ inline float table_dot_any(const uint32_t* row, const float* table, int W, int Wp, int lane) {
  if (W <= kFastPitch) return table_dot<kFastPitch>(row, table, W, Wp, lane);
  if (Wp == 2 * kFastPitch) return table_dot<2 * kFastPitch>(row, table, W, Wp, lane);
  return table_dot<0>(row, table, W, Wp, lane);
}

// Two rows at once, one a half-warp (row0 in lanes 0 - 15, row1 in 16 - 31; W <= 128 and a multiple of 16), each
// lane on words w = (lane % 16) + 16 k: every lane has W / 16 words, where a warp per row leaves lanes idle when W is
// not a multiple of 32 (in_proj at 2.7B: 80 words, 3 and 2 a lane), and a row's sum takes four shuffles instead of
// five. The upper half walks its words one step ahead (k + 1 mod W / 16), so that at each step the halves read
// columns 16 apart, on distinct banks (the table's pitch is a multiple of 32), except at the wrap when W / 16 is odd.
// Every lane of a half gets its row's total.
inline constexpr int kHalfRowWords = 128;
__device__ inline float table_dot_pair(const uint32_t* row0, const uint32_t* row1, const float* table, int W,
                                      int lane) {
  const int half = lane >> 4, hl = lane & 15, steps = W / 16;
  const uint32_t* row = half ? row1 : row0;
  const auto column = [&](int k) {  // the word of step k of this lane
    const int step = k + half < steps ? k + half : k + half - steps;
    return hl + 16 * step;
  };
  uint32_t bits[kHalfRowWords / 16];
#pragma unroll
  for (int k = 0; k < kHalfRowWords / 16; ++k) bits[k] = k < steps ? row[column(k)] : 0u;
  float acc0 = 0.0f, acc1 = 0.0f;
#pragma unroll
  for (int k = 0; k < kHalfRowWords / 16; ++k)
    if (k < steps) add_word<kFastPitch>(bits[k], table + column(k), kFastPitch, acc0, acc1);
  float v = acc0 + acc1;
  for (int offset = 8; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// The dot products of R rows of W sign words (shared memory, one after another) through the table, spread evenly
// over the warps (v12): the rows are R * S slices of 32 words (S = slices_per_row(W); lane l on word 32 j + l of
// slice j of its row), and warp w takes the run of slices [part_begin(R S, 16, w), part_begin(R S, 16, w + 1)),
// loading up to 8 words a lane before their lookups. At each end of a row within its run, the warp adds its lanes
// and lane 0 stores that sum at part[the run's first slice of the row]; slices_row_total (after a __syncthreads)
// adds a row's sums in warp order. Where R is not a multiple of the warps (OUT at 2.7B: 19 - 20 rows of 160 words a
// block), a warp a row left the slowest warps two rows (10 words a lane) where the runs take at most 7 slices.
template <int kPitch>
__device__ inline void table_dot_slices(const uint32_t* rows, int R, const float* table, int W, int Wp, float* part,
                                        int warp, int lane) {
  const int S = slices_per_row(W), n = R * S;
  const int begin = part_begin(n, kLayersWarps, warp), end = part_begin(n, kLayersWarps, warp + 1);
  int r = begin / S, j = begin - r * S;  // the row and slice of slice k
  float acc0 = 0.0f, acc1 = 0.0f;
  for (int k0 = begin; k0 < end; k0 += kRowWordsPerLane) {
    uint32_t bits[kRowWordsPerLane];
    {
      int rr = r, jj = j;
#pragma unroll
      for (int u = 0; u < kRowWordsPerLane; ++u) {
        const int c = 32 * jj + lane;
        bits[u] = k0 + u < end && c < W ? rows[int64_t(rr) * W + c] : 0u;
        if (++jj == S) jj = 0, ++rr;
      }
    }
#pragma unroll
    for (int u = 0; u < kRowWordsPerLane; ++u) {
      const int k = k0 + u;
      if (k >= end) break;
      const int c = 32 * j + lane;
      if (c < W) add_word<kPitch>(bits[u], table + c, Wp, acc0, acc1);
      if (j + 1 == S || k + 1 == end) {  // the run's last slice of row r
        const float v = warp_sum(acc0 + acc1);
        if (lane == 0) part[max(r * S, begin)] = v;
        acc0 = 0.0f, acc1 = 0.0f;
      }
      if (++j == S) j = 0, ++r;
    }
  }
}
// Row r's dot product from table_dot_slices' sums over R S slices: the runs that hold its slices, in warp order.
__device__ inline float slices_row_total(const float* part, int r, int S, int n) {
  const int first = r * S, last = first + S - 1;
  const auto warp_of = [n](int k) { return (kLayersWarps * (k + 1) - 1) / n; };  // the nonempty run holding slice k
  float total = 0.0f;
  for (int w = warp_of(first); w <= warp_of(last); ++w) {
    const int b = part_begin(n, kLayersWarps, w);
    if (part_begin(n, kLayersWarps, w + 1) > b) total += part[max(first, b)];
  }
  return total;
}
// table_dot_slices with the pitch table_pitch(W, Wp) as a constant where it is one of the two powers of two.
__device__ inline void table_dot_slices_any(const uint32_t* rows, int R, const float* table, int W, int Wp,
                                            float* part, int warp, int lane) {
  if (W <= kFastPitch) return table_dot_slices<kFastPitch>(rows, R, table, W, Wp, part, warp, lane);
  if (Wp == 2 * kFastPitch) return table_dot_slices<2 * kFastPitch>(rows, R, table, W, Wp, part, warp, lane);
  table_dot_slices<0>(rows, R, table, W, Wp, part, warp, lane);
}

// Lane 0 of every warp holds a partial pair; thread 0 adds them in warp order and publishes the block's slot.
__device__ inline void write_slot(unsigned long long* slot, float sq, float dot, unsigned tag, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) scratch[2 * warp] = sq, scratch[2 * warp + 1] = dot;
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.0f, d = 0.0f;
    for (int k = 0; k < kLayersWarps; ++k) s += scratch[2 * k], d += scratch[2 * k + 1];
    publish(slot, s, tag);
    publish(slot + 1, d, tag);
  }
}

// Owner of residual row o after its update hn: the next IN's input entry and partial sums, from the next block's
// norm weight w and in_proj alpha, beta at o.
__device__ inline void feed_next_in(float w, float alpha, float beta, unsigned long long* h_in, int o, float hn,
                                    unsigned tag, float& sq, float& dot) {
  publish(h_in + o, alpha * w * hn, tag);
  sq += hn * hn;
  dot += beta * w * hn;
}

// The rows each block owns: state (head, p) rows [s0, s1) of heads [h0, h0 + heads), B / C channels [j0, j1),
// out_proj / residual rows [o0, o1). Its in_proj rows follow from them, in this order in shared memory: the
// B / C rows of its channels (written to global memory for every block), then the z, x and dt rows of its own
// state rows and heads (kept in shared memory: no other block reads them; a head shared by two blocks has its
// dt row computed by both, to the same bits).
struct BlockRows {
  int s0, s1, h0, heads, j0, j1, o0, o1;
  __host__ __device__ BlockRows(const DecodeLayersArgs& a, int nb, int b)
      : s0(part_begin(a.H * a.P, nb, b)), s1(part_begin(a.H * a.P, nb, b + 1)), h0(s0 / a.P),
        heads(s1 > s0 ? (s1 - 1) / a.P - s0 / a.P + 1 : 0), j0(part_begin(2 * a.N, nb, b)),
        j1(part_begin(2 * a.N, nb, b + 1)), o0(part_begin(a.D, nb, b)), o1(part_begin(a.D, nb, b + 1)) {}
  __host__ __device__ int bc() const { return j1 - j0; }
  __host__ __device__ int state() const { return s1 - s0; }
  __host__ __device__ int in_rows() const { return bc() + 2 * state() + heads; }
  // The four runs of in_proj sign rows (R, W words each), in the order above.
  __device__ void in_runs(const DecodeLayersArgs& a, const uint32_t* signs, RowRun* runs) const {
    const int64_t W = a.Wd;
    const uint32_t row = uint32_t(W) * 4u;
    runs[0] = {signs + (2 * int64_t(a.E) + j0) * W, uint32_t(bc()) * row};
    runs[1] = {signs + int64_t(s0) * W, uint32_t(state()) * row};
    runs[2] = {signs + (int64_t(a.E) + s0) * W, uint32_t(state()) * row};
    runs[3] = {signs + (int64_t(a.E) + a.C + h0) * W, uint32_t(heads) * row};
  }
};

// Copies of the values of a layer that do not depend on the token into shared memory, issued one phase or more
// before they are needed (cp.async, waited for in IN's prologue), in two parts by when their buffers come free:
//   stage_step_params (after STEP of the layer before: its readers are done): the B / C conv weights and bias,
//     this block's state rows' conv weights, bias and state, gated-norm weight, out_proj alpha and beta, and its
//     heads' dt bias, A_log and D;
//   stage_out_params (after OUT of the layer before): the B / C conv state (OUT reads the staged copy of the
//     layer before to shift it) and the next block's norm weight, in_proj alpha and beta at this block's residual
//     rows.
// The conv states are rewritten in STEP (a block's own rows) and, after the grid barrier that ends STEP, in OUT
// (the B / C channels, whose staged state every block reads): both after the layer's copies have landed.
__device__ inline void stage_step_params(const DecodeLayersArgs& a, const DecodeLayerPointers& L,
                                         const BlockRows& rows, const DecodeLayersSmem& lay, float* smem) {
  const int K = a.K, n2 = 2 * a.N, E = a.E, s0 = rows.s0, nr = rows.s1 - rows.s0;
  async_copy_floats(smem + lay.bc_w, L.conv_weight + int64_t(E) * K, n2 * K);
  async_copy_floats(smem + lay.row_w, L.conv_weight + int64_t(s0) * K, nr * K);
  async_copy_floats(smem + lay.row_s, L.conv_state + int64_t(s0) * K, nr * K);
  if (L.conv_bias) {
    async_copy_floats(smem + lay.bc_b, L.conv_bias + E, n2);
    async_copy_floats(smem + lay.row_b, L.conv_bias + s0, nr);
  }
  async_copy_floats(smem + lay.gn, L.gn_weight + s0, nr);
  async_copy_floats(smem + lay.alpha, L.out_alpha + s0, nr);
  async_copy_floats(smem + lay.beta, L.out_beta + s0, nr);
  async_copy_floats(smem + lay.dt_bias, L.dt_bias + rows.h0, rows.heads);
  async_copy_floats(smem + lay.a_log, L.A_log + rows.h0, rows.heads);
  if (L.D) async_copy_floats(smem + lay.d_skip, L.D + rows.h0, rows.heads);
}
__device__ inline void stage_out_params(const DecodeLayersArgs& a, const DecodeLayerPointers& L,
                                        const DecodeLayerPointers* next, const BlockRows& rows,
                                        const DecodeLayersSmem& lay, float* smem) {
  const int K = a.K;
  async_copy_floats(smem + lay.bc_s, L.conv_state + int64_t(a.E) * K, 2 * a.N * K);
  if (next) {
    const int no = rows.o1 - rows.o0;
    async_copy_floats(smem + lay.next_w, next->norm_weight + rows.o0, no);
    async_copy_floats(smem + lay.next_alpha, next->in_alpha + rows.o0, no);
    async_copy_floats(smem + lay.next_beta, next->in_beta + rows.o0, no);
  }
}

// IN's epilogue at this block's rows (v12b; until v12 a thread a state row did this at the start of STEP, after the
// barrier that ends IN, 1.1 us a 2.7B layer), from the row's value v and the staged parameters:
//   x row r (state row s0 + r): x = SiLU(conv of the row's conv state and v) into shared memory, the row's conv
//     state shifted;
//   dt row of head hr: dt = clamp(softplus(v + dt_bias)) and the decay exp(dt A), A = -exp(A_log).
__device__ inline void in_x_row(const DecodeLayersArgs& a, const DecodeLayerPointers& L, const BlockRows& rows,
                                const DecodeLayersSmem& lay, float* smem, int r, float v) {
  const int K = a.K;
  const int64_t e = rows.s0 + r;
  const float* cw = smem + lay.row_w + int64_t(r) * K;
  const float* cs = smem + lay.row_s + int64_t(r) * K;
  float acc = L.conv_bias ? smem[lay.row_b + r] : 0.0f;
  for (int k = 0; k + 1 < K; ++k) acc += cw[k] * cs[k + 1];
  acc += cw[K - 1] * v;
  for (int k = 0; k + 1 < K; ++k) L.conv_state[e * K + k] = cs[k + 1];
  L.conv_state[e * K + K - 1] = v;
  smem[lay.xin + r] = silu(acc);
}
__device__ inline void in_dt_row(const DecodeLayerPointers& L, const DecodeLayersSmem& lay, float* smem, int hr,
                                 float v) {
  const float dt = fminf(L.dt_hi, fmaxf(L.dt_lo, softplus(v + smem[lay.dt_bias + hr])));
  smem[lay.dt + hr] = dt;
  smem[lay.decay + hr] = expf(dt * -expf(smem[lay.a_log + hr]));
}

// STEP's prologue: each of the 2N B / C inputs, published by their owners in IN (round `tag`), goes straight into
// its conv (bc = SiLU(conv)); the inputs are kept for the owners' conv state shift in OUT.
__device__ inline void step_bc_conv(const DecodeLayersArgs& a, const DecodeLayerPointers& L,
                                    const DecodeLayersSmem& lay, unsigned tag, float* smem) {
  const int K = a.K;
  for (int j = int(threadIdx.x); j < 2 * a.N; j += int(blockDim.x)) {
    const float in = await_value(a.bc_rows + j, load_tagged(a.bc_rows + j), tag);
    const float* w = smem + lay.bc_w + int64_t(j) * K;
    const float* s = smem + lay.bc_s + int64_t(j) * K;
    float acc = L.conv_bias ? smem[lay.bc_b + j] : 0.0f;
    for (int k = 0; k + 1 < K; ++k) acc += w[k] * s[k + 1];
    acc += w[K - 1] * in;
    smem[lay.bc + j] = silu(acc);
    smem[lay.bc_in + j] = in;
  }
}

template <class T>
__global__ void __launch_bounds__(kLayersThreads, 1) mamba2_decode_layers_kernel(const __grid_constant__ DecodeLayersArgs a) {
  static_assert(sizeof(T) == 4, "float only");
  extern __shared__ __align__(16) float smem[];
  __shared__ uint64_t bars[3];
  __shared__ float scratch[2 * kLayersWarps];
  __shared__ float2 totals;  // gemv_prologue's
  const int nb = int(gridDim.x), b = int(blockIdx.x), tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const DecodeLayersSmem lay = layers_smem(a, nb);
  float* table = smem + lay.table;
  float* stage = smem + lay.stage;
  float* pairs = smem + lay.pairs;
  float* part = smem + lay.part;
  uint32_t* sin = reinterpret_cast<uint32_t*>(smem + lay.sin);
  uint32_t* sout = reinterpret_cast<uint32_t*>(smem + lay.sout);
  float* sst = smem + lay.sst;
  const float* bc = smem + lay.bc;
  float* res = smem + lay.res;
  const int E = a.E, N = a.N, K = a.K, P = a.P;

  const BlockRows rows(a, nb, b);
  const int o0 = rows.o0, o1 = rows.o1, s0 = rows.s0, s1 = rows.s1, nbc = rows.bc(), nr = rows.state();
  const int n_in = rows.in_rows();
  const uint32_t in_bytes = uint32_t(n_in) * uint32_t(a.Wd) * 4u;
  const uint32_t out_bytes = uint32_t(o1 - o0) * uint32_t(a.We) * 4u;
  const uint32_t state_bytes = uint32_t(s1 - s0) * uint32_t(N) * 4u;
  if (tid == 0)
    for (auto& bar : bars) bulk_barrier_init(&bar);
  __syncthreads();
  StagedRows in_rows{&bars[0], a.bulk_in}, out_rows{&bars[1], a.bulk_out}, state_rows{&bars[2], true};
  RowRun in_runs[4];
  rows.in_runs(a, a.layer[0].in_signs, in_runs);
  in_rows.start(sin, in_runs, 4, in_bytes);
  out_rows.start(sout, a.layer[0].out_signs + int64_t(o0) * a.We, out_bytes);
  state_rows.start(sst, a.layer[0].ssm_state + int64_t(s0) * N, state_bytes);
  stage_step_params(a, a.layer[0], rows, lay, smem);
  stage_out_params(a, a.layer[0], a.layers > 1 ? &a.layer[1] : nullptr, rows, lay, smem);
  {  // The first IN's input from the residual stream, which this block keeps in shared memory from here on.
    float sq = 0.0f, dot = 0.0f;
    const DecodeLayerPointers& first = a.layer[0];
    for (int o = o0 + tid; o < o1; o += blockDim.x) {
      const float h = __ldcg(a.residual + o);
      res[o - o0] = h;
      feed_next_in(first.norm_weight[o], first.in_alpha[o], first.in_beta[o], a.h_in, o, h, 1u, sq, dot);
    }
    sq = warp_sum(sq), dot = warp_sum(dot);
    write_slot(a.slots_h + 2 * b, sq, dot, 1u, scratch);
  }
  stamp(a.stamps, 0);

  for (int l = 0; l < a.layers; ++l) {
    const DecodeLayerPointers& L = a.layer[l];
    const bool more = l + 1 < a.layers;
    const unsigned tag = unsigned(l) + 1u, next_tag = tag + 1u;  // the rounds of this layer's values and the next's
    auto phase_end = [&](DecodePhase p) { stamp(a.stamps, 1 + l * kDecodePhases + p); };

    // IN: zx = r_h (S_in a_in + beta'_in . h) at this block's rows: B / C first, each published as it is written,
    // so that the other blocks mostly find them all there when they need them; then z, x and dt into shared
    // memory.
    {
      const float2 tot = gemv_prologue(a.slots_h, a.h_in, a.D, a.Wd, table_pitch(a.Wd, a.Wp), tag, stage, table,
                                       pairs, &totals, true);
      phase_end(kInTable);
      const float r = 1.0f / sqrtf(tot.x / float(a.D) + L.norm_eps);
      in_rows.wait(in_bytes);
      phase_end(kInSigns);
      const bool pairs_of_rows = a.Wd <= kHalfRowWords && a.Wd % 16 == 0;  // two rows a warp, a half-warp each (v10)
      const int rows_per_warp = pairs_of_rows ? 2 : 1;
      for (int i0 = rows_per_warp * warp; i0 < n_in; i0 += rows_per_warp * kLayersWarps) {
        const int i = pairs_of_rows ? i0 + (lane >> 4) : i0;  // this lane's row
        float dot;
        if (pairs_of_rows) {
          dot = table_dot_pair(sin + int64_t(i0) * a.Wd, sin + int64_t(min(i0 + 1, n_in - 1)) * a.Wd, table, a.Wd,
                               lane);
        } else {
          dot = table_dot_any(sin + int64_t(i) * a.Wd, table, a.Wd, a.Wp, lane);
        }
        const float v = r * (dot + tot.y);
        if ((pairs_of_rows ? (lane & 15) : lane) == 0 && i < n_in) {
          if (i < nbc) {
            publish(a.bc_rows + rows.j0 + i, v, tag);
          } else if (i < nbc + nr) {
            smem[lay.z + (i - nbc)] = silu(v);
          } else if (i < nbc + 2 * nr) {
            in_x_row(a, L, rows, lay, smem, i - nbc - nr, v);
          } else {
            in_dt_row(L, lay, smem, i - nbc - 2 * nr, v);
          }
        }
      }
      phase_end(kInRows);
      __syncthreads();
      phase_end(kInEnd);
      if (more) {
        rows.in_runs(a, a.layer[l + 1].in_signs, in_runs);
        in_rows.start(sin, in_runs, 4, in_bytes);
      }
    }

    // STEP: once every B / C row is published, the conv of B / C (all blocks) and this block's state rows, from
    // shared memory but for the state stores.
    {
      step_bc_conv(a, L, lay, tag, smem);
      __syncthreads();
      phase_end(kStepBC);
      state_rows.wait(state_bytes);
      phase_end(kStepState);
      // A state row per kStateRowLanes lanes (v12: a warp per row left the slowest warps 3 rows at 2.7B, 39 a
      // block, with five shuffles each).
      const int sub = lane / kStateRowLanes, sl = lane % kStateRowLanes;
      float sq = 0.0f, ydot = 0.0f;  // each row's first lane, then lane 0: this warp's partial sums
      for (int e0 = s0 + kRowsPerWarp * warp; e0 < s1; e0 += kRowsPerWarp * kLayersWarps) {
        const int e = min(e0 + sub, s1 - 1);  // past the block's rows: its last row again, not published
        const int r = e - s0, hr = e / P - rows.h0;  // this block's state row and head
        const float x = smem[lay.xin + r], decay = smem[lay.decay + hr], dx = smem[lay.dt + hr] * x;
        const float* row = sst + int64_t(r) * N;
        float* dst = L.ssm_state + int64_t(e) * N;
        const bool mine = e0 + sub < s1;
        float out = 0.0f;
        for (int n = 4 * sl; n < N; n += 4 * kStateRowLanes) {
          const float4 s = *reinterpret_cast<const float4*>(row + n);
          const float4 bv = *reinterpret_cast<const float4*>(bc + n);
          const float4 cv = *reinterpret_cast<const float4*>(bc + N + n);
          const float4 v = make_float4(decay * s.x + dx * bv.x, decay * s.y + dx * bv.y, decay * s.z + dx * bv.z,
                                       decay * s.w + dx * bv.w);
          if (mine) *reinterpret_cast<float4*>(dst + n) = v;
          out += v.x * cv.x + v.y * cv.y + v.z * cv.z + v.w * cv.w;
        }
        for (int offset = kStateRowLanes / 2; offset > 0; offset >>= 1)
          out += __shfl_xor_sync(0xffffffffu, out, offset);
        out += (L.D ? smem[lay.d_skip + hr] : 0.0f) * x;
        if (mine && sl == 0) {
          const float v = out * smem[lay.z + r], gw = smem[lay.gn + r];
          publish(a.y_out + e, smem[lay.alpha + r] * gw * v, tag);
          sq += v * v;
          ydot += smem[lay.beta + r] * gw * v;
        }
      }
      sq = warp_sum(sq), ydot = warp_sum(ydot);
      phase_end(kStepRows);
      write_slot(a.slots_y + 2 * b, sq, ydot, tag, scratch);
      if (more) {  // every warp is past its state rows (write_slot's first __syncthreads): their buffers are free
        state_rows.start(sst, a.layer[l + 1].ssm_state + int64_t(s0) * N, state_bytes);
        stage_step_params(a, a.layer[l + 1], rows, lay, smem);
      }
      phase_end(kStepSlot);
    }

    // OUT: h += r_y (S_out a_out + beta'_out . y); the owners feed the next IN.
    {
      const float2 tot = gemv_prologue(a.slots_y, a.y_out, E, a.We, table_pitch(a.We, a.Wp), tag, stage, table,
                                       pairs, &totals, false);
      phase_end(kOutTable);
      const float r = 1.0f / sqrtf(tot.x / float(E) + L.gn_eps);
      out_rows.wait(out_bytes);
      phase_end(kOutSigns);
      const int n_out = o1 - o0, out_slices = slices_per_row(a.We);
      table_dot_slices_any(sout, n_out, table, a.We, a.Wp, part, warp, lane);
      __syncthreads();
      float sq = 0.0f, dot = 0.0f;  // each thread's, then lane 0: this warp's partial sums
      for (int k = tid; k < n_out; k += int(blockDim.x)) {  // a thread a residual row
        const int o = o0 + k;
        const float hn = res[k] + r * (slices_row_total(part, k, out_slices, n_out * out_slices) + tot.y);
        res[k] = hn;
        a.residual[o] = hn;
        if (more) feed_next_in(smem[lay.next_w + k], smem[lay.next_alpha + k], smem[lay.next_beta + k], a.h_in, o, hn,
                               next_tag, sq, dot);
      }
      sq = warp_sum(sq), dot = warp_sum(dot);
      for (int j = rows.j0 + tid; j < rows.j1; j += blockDim.x) {  // every block has staged this conv state
        float* cs = L.conv_state + int64_t(E + j) * K;
        const float* staged = smem + lay.bc_s + int64_t(j) * K;
        for (int k = 0; k + 1 < K; ++k) cs[k] = staged[k + 1];
        cs[K - 1] = smem[lay.bc_in + j];
      }
      phase_end(kOutRows);
      if (more) {
        write_slot(a.slots_h + 2 * b, sq, dot, next_tag, scratch);
        __syncthreads();
        out_rows.start(sout, a.layer[l + 1].out_signs + int64_t(o0) * a.We, out_bytes);
        stage_out_params(a, a.layer[l + 1], l + 2 < a.layers ? &a.layer[l + 2] : nullptr, rows, lay, smem);
      }
      phase_end(kOutSlot);
    }
  }
}
}  // namespace gpu

namespace decode_layers {
template <class T>
inline bool unit_stride(const TensorView<T, 1, Cuda>& v) {
  return !present(v) || v.stride(0) == 1;
}
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// The kernel's shape arguments (every field layers_smem reads), from the first block and the model width D:
// the plan sizes shared memory from the same values the launch passes.
inline gpu::DecodeLayersArgs shape_args(const Mamba2BlockDecodeWeights<Cuda>& first, int64_t D, int pitch = 0) {
  const auto& s = first.step;
  gpu::DecodeLayersArgs a;
  a.D = int(D), a.E = int(s.heads * s.headdim), a.H = int(s.heads), a.P = int(s.headdim), a.N = int(s.d_state);
  a.K = int(s.conv_weight.size(1)), a.C = a.E + 2 * a.N;
  a.Wd = int(words_for<uint32_t>(D)), a.We = int(words_for<uint32_t>(a.E));
  a.Wp = pitch > 0 ? pitch : (std::max(a.Wd, a.We) + 31) / 32 * 32;
  return a;
}
}  // namespace decode_layers

template <>
inline DecodeLayersPlan decode_layers_plan<Cuda>(Context<Cuda>& ctx,
                                                 const std::vector<Mamba2BlockDecodeWeights<Cuda>>& blocks,
                                                 TensorView<const float, 2, Cuda> residual, int max_blocks) {
  using decode_layers::aligned16;
  using decode_layers::unit_stride;
  if (blocks.empty() || residual.size(0) != 1 || residual.stride(1) != 1) return {};
  const auto& first = blocks[0].step;
  const int64_t H = first.heads, P = first.headdim, N = first.d_state, K = first.conv_weight.size(1);
  const int64_t D = residual.size(1);
  if (first.groups != 1 || N % 4 != 0 || D <= 0 || K <= 0) return {};
  for (const auto& b : blocks) {
    const auto& s = b.step;
    if (s.heads != H || s.headdim != P || s.d_state != N || s.groups != 1 || s.conv_weight.size(1) != K) return {};
    if (!s.conv_weight.is_contiguous() || !b.conv_state.is_contiguous() || !b.ssm_state.is_contiguous()) return {};
    if (!aligned16(b.ssm_state.data())) return {};
    for (const TensorView<const float, 1, Cuda>* v : {&b.norm_weight, &b.in_alpha, &b.in_beta, &b.out_alpha, &b.out_beta,
                                                     &s.conv_bias, &s.dt_bias, &s.A_log, &s.D, &s.norm_weight})
      if (!unit_stride(*v)) return {};
  }
  int major = 0, cooperative = 0, sms = 0, optin = 0;
  BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, ctx.device()));
  BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&cooperative, cudaDevAttrCooperativeLaunch, ctx.device()));
  BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, ctx.device()));
  BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, ctx.device()));
  if (major < 9 || !cooperative) return {};
  int nb = max_blocks > 0 ? std::min(sms, max_blocks) : sms;
  nb = std::min(nb, gpu::kLayersThreads);  // gemv_prologue: a thread per block's pair
  constexpr int64_t kStaticSmem = 1024;  // bound on the kernel's static shared memory (barriers, scratch)
  // Rows of 129 - 256 words take the table at pitch 256 (lookups with a constant pitch) where it fits.
  gpu::DecodeLayersArgs shape = decode_layers::shape_args(blocks[0], D, 2 * gpu::kFastPitch);
  if (std::max(shape.Wd, shape.We) > 2 * gpu::kFastPitch || gpu::layers_smem(shape, nb).total + kStaticSmem > optin)
    shape = decode_layers::shape_args(blocks[0], D);
  const int64_t smem = gpu::layers_smem(shape, nb).total;
  if (smem + kStaticSmem > optin) return {};
  auto kernel = gpu::mamba2_decode_layers_kernel<float>;
  BIMAMBA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  int per_sm = 0;
  BIMAMBA_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, gpu::kLayersThreads, size_t(smem)));
  if (per_sm < 1) return {};
  return {std::min(nb, per_sm * sms), smem, shape.Wp};
}

template <>
inline void decode_layers_persistent<Cuda>(Context<Cuda>& ctx, const std::vector<Mamba2BlockDecodeWeights<Cuda>>& blocks,
                                           TensorView<float, 2, Cuda> residual, const DecodeLayersPlan& plan) {
  using decode_layers::aligned16;
  const int64_t D = residual.size(1);
  gpu::DecodeLayersArgs a = decode_layers::shape_args(blocks[0], D, plan.pitch);
  WorkspaceScope<Cuda> scope(ctx.workspace());
  a.residual = residual.data();
  const size_t tagged = size_t(D + a.E + 2 * a.N + 4 * plan.blocks);
  a.h_in = ctx.workspace().take<unsigned long long>(tagged);
  a.y_out = a.h_in + D;
  a.bc_rows = a.y_out + a.E;
  a.slots_h = a.bc_rows + 2 * a.N;
  a.slots_y = a.slots_h + 2 * plan.blocks;
  auto kernel = gpu::mamba2_decode_layers_kernel<float>;
  for (size_t l0 = 0; l0 < blocks.size(); l0 += gpu::kLayersPerLaunch) {
    const size_t l1 = std::min(blocks.size(), l0 + size_t(gpu::kLayersPerLaunch));
    a.layers = int(l1 - l0);
    a.bulk_in = a.Wd % 4 == 0, a.bulk_out = a.We % 4 == 0;
    for (size_t l = l0; l < l1; ++l) {
      const auto& b = blocks[l];
      const auto& s = b.step;
      auto& p = a.layer[l - l0];
      p.norm_weight = b.norm_weight.data(), p.norm_eps = b.norm_eps;
      p.in_signs = b.in_signs.data(), p.in_alpha = b.in_alpha.data(), p.in_beta = b.in_beta.data();
      p.conv_weight = s.conv_weight.data(), p.conv_bias = present(s.conv_bias) ? s.conv_bias.data() : nullptr;
      p.dt_bias = s.dt_bias.data(), p.A_log = s.A_log.data(), p.D = present(s.D) ? s.D.data() : nullptr;
      p.gn_weight = s.norm_weight.data(), p.gn_eps = s.norm_eps, p.dt_lo = s.dt_lo, p.dt_hi = s.dt_hi;
      p.out_signs = b.out_signs.data(), p.out_alpha = b.out_alpha.data(), p.out_beta = b.out_beta.data();
      p.conv_state = b.conv_state.data(), p.ssm_state = b.ssm_state.data();
      a.bulk_in = a.bulk_in && aligned16(p.in_signs);
      a.bulk_out = a.bulk_out && aligned16(p.out_signs);
    }
    a.stamps = plan.stamps ? plan.stamps + l0 * gpu::kDecodePhases * size_t(plan.blocks) : nullptr;
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(unsigned(plan.blocks));
    config.blockDim = dim3(gpu::kLayersThreads);
    config.dynamicSmemBytes = size_t(plan.smem);
    config.stream = ctx.stream();
    cudaLaunchAttribute attribute{};
    attribute.id = cudaLaunchAttributeCooperative;
    attribute.val.cooperative = 1;
    config.attrs = &attribute;
    config.numAttrs = 1;
    BIMAMBA_CUDA_CHECK(cudaMemsetAsync(a.h_in, 0, tagged * sizeof(unsigned long long), ctx.stream()));  // no tag
    BIMAMBA_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, a));
  }
}

}  // namespace bimamba::detail
