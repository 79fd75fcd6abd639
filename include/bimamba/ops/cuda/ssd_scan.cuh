// Cuda chunked SSD scan (see ops/ssd_scan.hpp for the math). Chunks of Q = min(chunk_size, 256) tokens (the
// result does not depend on Q beyond rounding; 256 bounds the shared memory). Three kernels, all in float
// with the within-chunk cumulative sums cs_i = a_0 + ... + a_i (a_t = dt_t A) in double, so that
// seg(i, j) = cs_i - cs_j loses nothing however long the chunk or large the decay:
//   1. chunk_state  per (batch, head, chunk, tile of the N x P state):  the chunk's own contribution
//                   Z_c = sum_j exp(seg(Q-1, j)) dt_j B_j x_j^T (N x P) and its decay exp(cs_{Q-1}).
//   2. state_pass   per (batch, head, state element): the sequential pass over chunks,
//                   S_in[0] = initial state, S_in[c+1] = decay_c S_in[c] + Z_c; S_in[c] replaces Z_c in the
//                   workspace, and the last one is the final state.
//   3. chunk_output per (batch, head, chunk, tile of rows i):
//                   y_i = exp(cs_i) S_in C_i + sum_{j<=i} (C_i . B_j) exp(seg(i, j)) dt_j x_j + D x_i,
//                   with C_i . B_j as 16 x 16 score tiles in shared memory.
// Workspace: (B, H, chunks, N, P) states + (B, H, chunks) decays, in float. The states are kept as N x P
// (P fastest) so that threads of consecutive p read consecutive addresses.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../../core/workspace.hpp"
#include "../common.hpp"
#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
inline constexpr int kSsdMaxChunk = 256;    // tokens per chunk (one thread per token in the cumulative sum)
inline constexpr int kSsdOutPerThread = 8;  // state / output elements each thread accumulates
inline constexpr int kSsdTile = 16;         // rows / columns of the score tiles of chunk_output

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

template <class T>
__global__ void ssd_chunk_state_kernel(SsdGeometry geo, TensorView<const T, 4, Cuda> x, TensorView<const T, 3, Cuda> dt,
                                       TensorView<const T, 1, Cuda> A, TensorView<const T, 4, Cuda> Bm, int jt,
                                       float* states, float* decays) {
  extern __shared__ float smem[];
  double* cs = reinterpret_cast<double*>(smem);         // (Q)
  float* dts = smem + 2 * kSsdMaxChunk;                 // (Q)
  float* xs = dts + kSsdMaxChunk;                       // (jt, P) x_j * exp(seg(Q-1, j)) * dt_j
  float* bs = xs + jt * geo.P;                          // (jt, N)
  const int64_t pair = blockIdx.z, b = pair / geo.H, h = pair % geo.H, g = h / (geo.H / geo.G), c = blockIdx.y;
  const int64_t c0 = c * geo.Q, NP = geo.N * geo.P;
  const int Qc = int(geo.Q < geo.L - c0 ? geo.Q : geo.L - c0);
  load_chunk_decays(dt, float(A(h)), b, c0, h, Qc, dts, cs);
  const double total = cs[Qc - 1];
  if (blockIdx.x == 0 && threadIdx.x == 0) decays[pair * geo.chunks + c] = expf(float(total));

  const int64_t o0 = int64_t(blockIdx.x) * kSsdOutPerThread * blockDim.x;
  float acc[kSsdOutPerThread] = {};
  for (int j0 = 0; j0 < Qc; j0 += jt) {
    const int jn = min(jt, Qc - j0);
    for (int64_t k = threadIdx.x; k < jn * geo.P; k += blockDim.x) {
      const int jj = int(k / geo.P), j = j0 + jj;
      xs[k] = float(x(b, c0 + j, h, k % geo.P)) * expf(float(total - cs[j])) * dts[j];
    }
    for (int64_t k = threadIdx.x; k < jn * geo.N; k += blockDim.x) bs[k] = Bm(b, c0 + j0 + k / geo.N, g, k % geo.N);
    __syncthreads();
#pragma unroll
    for (int r = 0; r < kSsdOutPerThread; ++r) {
      const int64_t o = o0 + r * blockDim.x + threadIdx.x;
      if (o < NP) {
        const int64_t n = o / geo.P, p = o % geo.P;
        for (int jj = 0; jj < jn; ++jj) acc[r] += xs[jj * geo.P + p] * bs[jj * geo.N + n];
      }
    }
    __syncthreads();
  }
  float* out = states + (pair * geo.chunks + c) * NP;
#pragma unroll
  for (int r = 0; r < kSsdOutPerThread; ++r) {
    const int64_t o = o0 + r * blockDim.x + threadIdx.x;
    if (o < NP) out[o] = acc[r];
  }
}

template <class T>
__global__ void ssd_state_pass_kernel(SsdGeometry geo, float* states, const float* decays,
                                      TensorView<const T, 4, Cuda> initial_state, TensorView<T, 4, Cuda> final_state) {
  const int64_t NP = geo.N * geo.P, total = geo.B * geo.H * NP;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t pair = i / NP, o = i % NP, n = o / geo.P, p = o % geo.P, b = pair / geo.H, h = pair % geo.H;
    float running = present(initial_state) ? float(initial_state(b, h, p, n)) : 0.0f;
    for (int64_t c = 0; c < geo.chunks; ++c) {
      float* slot = states + (pair * geo.chunks + c) * NP + o;
      const float own = *slot;
      *slot = running;
      running = decays[pair * geo.chunks + c] * running + own;
    }
    if (present(final_state)) final_state(b, h, p, n) = running;
  }
}

template <class T>
__global__ void ssd_chunk_output_kernel(SsdGeometry geo, TensorView<const T, 4, Cuda> x, TensorView<const T, 3, Cuda> dt,
                                        TensorView<const T, 1, Cuda> A, TensorView<const T, 4, Cuda> Bm,
                                        TensorView<const T, 4, Cuda> Cm, TensorView<const T, 1, Cuda> D, int it,
                                        const float* states, TensorView<T, 4, Cuda> y) {
  extern __shared__ float smem[];
  const int64_t N = geo.N, P = geo.P;
  double* cs = reinterpret_cast<double*>(smem);  // (Q)
  float* dts = smem + 2 * kSsdMaxChunk;          // (Q)
  float* cs_tile = dts + kSsdMaxChunk;           // (it, N + 1)  C rows of the tile (padded: no bank conflicts)
  float* bs = cs_tile + it * (N + 1);            // (16, N + 1)  B rows of the j tile
  float* xs = bs + kSsdTile * (N + 1);           // (16, P)      x rows of the j tile
  float* scores = xs + kSsdTile * P;             // (it, 16)     (C_i . B_j) exp(seg(i, j)) dt_j, 0 for j > i
  const int64_t pair = blockIdx.z, b = pair / geo.H, h = pair % geo.H, g = h / (geo.H / geo.G), c = blockIdx.y;
  const int64_t c0 = c * geo.Q;
  const int Qc = int(geo.Q < geo.L - c0 ? geo.Q : geo.L - c0);
  const int i0 = blockIdx.x * it;
  if (i0 >= Qc) return;  // the whole block leaves together
  const int in = min(it, Qc - i0);
  load_chunk_decays(dt, float(A(h)), b, c0, h, Qc, dts, cs);
  for (int64_t k = threadIdx.x; k < in * N; k += blockDim.x)
    cs_tile[(k / N) * (N + 1) + k % N] = Cm(b, c0 + i0 + k / N, g, k % N);
  __syncthreads();

  // Inter-chunk part: exp(cs_i) sum_n S_in[n, p] C_i[n].
  const float* s_in = states + (pair * geo.chunks + c) * N * P;
  float acc[kSsdOutPerThread] = {};
#pragma unroll
  for (int r = 0; r < kSsdOutPerThread; ++r) {
    const int64_t o = r * blockDim.x + threadIdx.x, ii = o / P, p = o % P;
    if (ii < in) {
      float s = 0.0f;
      for (int64_t n = 0; n < N; ++n) s += s_in[n * P + p] * cs_tile[ii * (N + 1) + n];
      acc[r] = expf(float(cs[i0 + ii])) * s;
    }
  }
  // Intra-chunk part, one 16-token tile of j at a time up to the tile's last row.
  for (int j0 = 0; j0 < i0 + in; j0 += kSsdTile) {
    const int jn = min(kSsdTile, Qc - j0);
    for (int64_t k = threadIdx.x; k < jn * N; k += blockDim.x)
      bs[(k / N) * (N + 1) + k % N] = Bm(b, c0 + j0 + k / N, g, k % N);
    for (int64_t k = threadIdx.x; k < jn * P; k += blockDim.x) xs[k] = x(b, c0 + j0 + k / P, h, k % P);
    __syncthreads();
    if (threadIdx.x < it * kSsdTile) {
      const int ii = threadIdx.x / kSsdTile, jj = threadIdx.x % kSsdTile, i = i0 + ii, j = j0 + jj;
      float score = 0.0f;
      if (ii < in && jj < jn && j <= i) {
        for (int64_t n = 0; n < N; ++n) score += cs_tile[ii * (N + 1) + n] * bs[jj * (N + 1) + n];
        score *= expf(float(cs[i] - cs[j])) * dts[j];
      }
      scores[ii * kSsdTile + jj] = score;
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < kSsdOutPerThread; ++r) {
      const int64_t o = r * blockDim.x + threadIdx.x, ii = o / P, p = o % P;
      if (ii < in)
        for (int jj = 0; jj < jn; ++jj) acc[r] += scores[ii * kSsdTile + jj] * xs[jj * P + p];
    }
    __syncthreads();
  }
  const float d_skip = present(D) ? float(D(h)) : 0.0f;
#pragma unroll
  for (int r = 0; r < kSsdOutPerThread; ++r) {
    const int64_t o = r * blockDim.x + threadIdx.x, ii = o / P, p = o % P;
    if (ii < in) {
      const int64_t t = c0 + i0 + ii;
      y(b, t, h, p) = acc[r] + d_skip * float(x(b, t, h, p));
    }
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
  const int64_t Q = std::max<int64_t>(1, std::min<int64_t>({chunk_size, L, kSsdMaxChunk}));
  const SsdGeometry geo{B, L, H, P, G, N, Q, (L + Q - 1) / Q};
  const int64_t pairs = B * H, NP = N * P;
  if (pairs == 0 || P == 0) return;
  BIMAMBA_CHECK(pairs < 65536 && geo.chunks < 65536, "ssd_scan: ", pairs, " (batch, head) pairs or ", geo.chunks,
                " chunks exceed the Cuda grid limit of 65535");
  constexpr int threads = kThreads;
  constexpr size_t max_smem = 48 << 10;
  const size_t decay_bytes = kSsdMaxChunk * (sizeof(double) + sizeof(float));
  // chunk_state: as many tokens per shared-memory tile as fit.
  const int jt = int(std::min<int64_t>(32, int64_t((max_smem - decay_bytes) / sizeof(float)) / std::max<int64_t>(1, P + N)));
  // chunk_output: output tile of `it` rows x P fits the per-thread accumulators.
  const int it = int(std::clamp<int64_t>(kSsdOutPerThread * threads / P, 1, kSsdTile));
  const size_t output_smem = decay_bytes + sizeof(float) * size_t((it + kSsdTile) * (N + 1) + kSsdTile * P + it * kSsdTile);
  BIMAMBA_CHECK(jt >= 1 && output_smem <= max_smem && P <= kSsdOutPerThread * threads, "ssd_scan: head dim ", P,
                " and state size ", N, " exceed the Cuda kernel's shared memory");

  WorkspaceScope<Cuda> scope(ctx.workspace());
  float* states = ctx.workspace().take<float>(size_t(pairs * geo.chunks * std::max<int64_t>(NP, 1)));  // (B, H, chunks, N, P)
  float* decays = ctx.workspace().take<float>(size_t(pairs * geo.chunks));                              // (B, H, chunks)
  const cudaStream_t stream = ctx.stream();
  if (geo.chunks > 0 && NP > 0) {
    const dim3 grid(unsigned((NP + kSsdOutPerThread * threads - 1) / (kSsdOutPerThread * threads)), unsigned(geo.chunks),
                    unsigned(pairs));
    const size_t smem = decay_bytes + sizeof(float) * size_t(jt * (P + N));
    ssd_chunk_state_kernel<float><<<grid, threads, smem, stream>>>(geo, x, dt, A, Bm, jt, states, decays);
    check_launch();
  }
  if (NP > 0) {
    ssd_state_pass_kernel<float><<<grid_for(pairs * NP), threads, 0, stream>>>(geo, states, decays, initial_state, final_state);
    check_launch();
  }
  if (geo.chunks > 0) {
    const dim3 grid(unsigned((Q + it - 1) / it), unsigned(geo.chunks), unsigned(pairs));
    ssd_chunk_output_kernel<float><<<grid, threads, output_smem, stream>>>(geo, x, dt, A, Bm, Cm, D, it, states, y);
    check_launch();
  }
}

}  // namespace bimamba::detail
