// Cuda fused Mamba-2 decode step (see ops/mamba2_decode.hpp): the conv step, dt, decay, state update and
// read-out, D skip, SiLU(z) gate and (optionally) the group-wise RMSNorm of one layer in a single kernel.
//
// Grid: one block per (sequence b, head h), 8 warps. A block
//   1. loads its first state rows into registers (the state is only touched by this kernel, so on sm_90 this
//      happens before the in_proj kernel has finished: wait_for_previous_kernel),
//   2. computes the conv step + SiLU of the head's P x channels (shifting their conv state: only this head
//      touches them), of its group's B and C channels (2N, shared by the H/G heads of the group: read here
//      from the state as it was, shifted later by the group's last block) and the gates SiLU(z_p) into shared
//      memory, in one round of independent loads,
//   3. updates the (P x N) state, one row per warp at a time and N along the lanes (float4 when N % 4 == 0),
//      reads y_p = S_p . C + D x_p out, gates it, stores y and (with a norm) the head's sum of squares, summed
//      per warp and then over the 8 warps,
//   4. arrives at the (b, g) counter; the group's last block (the others have read the B / C conv state and
//      written their y by then) shifts the B / C conv state and, with a norm, forms the RMS scale from the
//      heads' sums in head order and scales the group's y by it and the norm weight; it returns the counter to 0.
// Every latency on a block's path is one round of loads (no load waits on a store: the gates are staged
// before the read-out, the sums are trees), measured by ncu on the H100 (bench/RESULTS_CUDA.md, session 9).
// Every sum has a fixed order, so the result is deterministic; it agrees with the host op to float rounding
// (the read-out and the head's sum of squares are summed in another order).
#pragma once

#include "../../core/workspace.hpp"
#include "../common.hpp"
#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
inline constexpr int kDecodeWarps = 8;
inline constexpr int kDecodeRows = 8;  // state rows in flight per warp

struct Mamba2DecodeArgs {
  TensorView<const float, 2, Cuda> zxbcdt;  // (B, R)
  Mamba2DecodeWeights<Cuda> w;
  TensorView<float, 3, Cuda> conv_state;  // (B, C, K)
  float* ssm_state;                       // (B, H, P, N) contiguous
  TensorView<float, 2, Cuda> y;           // (B, E)
  float* sumsq;                           // (B, H)
  unsigned* counters;                     // (B, G), zero on entry and on exit
};

// silu(bias + sum_k w[k] s'[k]) with s' = the conv state row s shifted left by one and `in` appended.
__device__ inline float conv_step_value(const float* s, const float* w, float bias, float in, int64_t K) {
  float acc = bias;
  for (int64_t k = 0; k + 1 < K; ++k) acc += w[k] * s[k + 1];
  acc += w[K - 1] * in;
  return silu(acc);
}

__device__ inline void shift_conv_row(float* s, float in, int64_t K) {
  for (int64_t k = 0; k + 1 < K; ++k) s[k] = s[k + 1];
  s[K - 1] = in;
}

// V = 4: float4 along N (N % 4 == 0, state 16-byte aligned); V = 1: scalars.
template <int V>
struct Lanes {
  float v[V];
  __device__ static Lanes load(const float* p) {
    Lanes r;
    if constexpr (V == 4) {
      const float4 q = *reinterpret_cast<const float4*>(p);
      r.v[0] = q.x, r.v[1] = q.y, r.v[2] = q.z, r.v[3] = q.w;
    } else {
      r.v[0] = *p;
    }
    return r;
  }
  __device__ void store(float* p) const {
    if constexpr (V == 4) *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
    else *p = v[0];
  }
};

template <int V>
__global__ void __launch_bounds__(kDecodeWarps * 32) mamba2_decode_kernel(Mamba2DecodeArgs a) {
  extern __shared__ float smem[];
  __shared__ bool s_last;
  __shared__ float s_warp_sq[kDecodeWarps];
  const auto& w = a.w;
  const int64_t H = w.heads, P = w.headdim, G = w.groups, N = w.d_state, E = H * P, heads_per_group = H / G;
  const int64_t C = E + 2 * G * N, K = w.conv_weight.size(1), b = blockIdx.x / H, h = blockIdx.x % H;
  const int64_t g = h / heads_per_group;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const bool norm = present(w.norm_weight);
  float* bs = smem;           // (N) B of group g   (first: float4-aligned when N % 4 == 0)
  float* cs = bs + N;         // (N) C of group g
  float* xs = cs + N;         // (P) conv output of the head's x channels
  float* gate = xs + P;       // (P) SiLU(z_p), then the group's head sums
  float* state = a.ssm_state + (b * H + h) * P * N;  // (P, N)
  constexpr int64_t kStep = 32 * V;                  // columns a warp covers per pass

  // 1. The first rows of the state, before the previous kernel's results are needed.
  Lanes<V> rows[kDecodeRows];
  auto load_rows = [&](int64_t p0, int64_t n0) {
#pragma unroll
    for (int r = 0; r < kDecodeRows; ++r) {
      const int64_t p = p0 + warp + int64_t(kDecodeWarps) * r, n = n0 + V * lane;
      if (p < P && n < N) rows[r] = Lanes<V>::load(state + p * N + n);
    }
  };
  load_rows(0, 0);
  wait_for_previous_kernel();
  allow_next_kernel();

  // 2. Conv step of the group's B, C channels and the head's x channels, and the head's gates. Row pointers:
  //    zxbcdt and the conv weight have unit inner stride, the conv state is contiguous (mamba2_decode_step).
  const bool has_bias = present(w.conv_bias);
  const float* zrow = a.zxbcdt.data() + b * a.zxbcdt.stride(0);  // (R)
  float* conv_rows = a.conv_state.data() + b * C * K;            // (C, K)
  for (int j = tid; j < int(2 * P + 2 * N); j += blockDim.x) {
    // j < 2N: B then C of group g (smem[j] = bs / cs); then the head's x channels (xs[j - 2N]); then its gates.
    if (j >= 2 * N + P) {
      gate[j - 2 * N - P] = silu(zrow[h * P + (j - 2 * N - P)]);
      continue;
    }
    const int64_t c = j < N ? E + g * N + j : j < 2 * N ? E + G * N + g * N + (j - N) : h * P + (j - 2 * N);
    float* s = conv_rows + c * K;
    const float in = zrow[E + c];
    smem[j] = conv_step_value(s, w.conv_weight.data() + c * w.conv_weight.stride(0), has_bias ? w.conv_bias(c) : 0.0f,
                              in, K);
    if (j >= 2 * N) shift_conv_row(s, in, K);
  }
  const float dt = fminf(w.dt_hi, fmaxf(w.dt_lo, softplus(zrow[E + C + h] + w.dt_bias(h))));
  const float decay = expf(dt * -expf(w.A_log(h))), d_skip = present(w.D) ? w.D(h) : 0.0f;
  __syncthreads();

  // 3. State update and read-out, kDecodeWarps * kDecodeRows rows at a time.
  float* y_row = a.y.data() + b * a.y.stride(0);  // (E), unit stride
  float sq = 0.0f;  // lane 0: this warp's sum of squares of the gated outputs
  for (int64_t p0 = 0; p0 < P; p0 += int64_t(kDecodeWarps) * kDecodeRows) {
    float acc[kDecodeRows] = {};
    for (int64_t n0 = 0; n0 < N; n0 += kStep) {
      if (p0 > 0 || n0 > 0) load_rows(p0, n0);
      const int64_t n = n0 + V * lane;
      if (n < N) {
        const Lanes<V> bv = Lanes<V>::load(bs + n), cv = Lanes<V>::load(cs + n);
#pragma unroll
        for (int r = 0; r < kDecodeRows; ++r) {
          const int64_t p = p0 + warp + int64_t(kDecodeWarps) * r;
          if (p >= P) break;
          const float dx = dt * xs[p];
#pragma unroll
          for (int e = 0; e < V; ++e) {
            rows[r].v[e] = decay * rows[r].v[e] + dx * bv.v[e];
            acc[r] += rows[r].v[e] * cv.v[e];
          }
          rows[r].store(state + p * N + n);
        }
      }
    }
#pragma unroll
    for (int r = 0; r < kDecodeRows; ++r) {
      const int64_t p = p0 + warp + int64_t(kDecodeWarps) * r;
      const float total = warp_sum(acc[r]);
      if (lane == 0 && p < P) {
        const float v = (total + d_skip * xs[p]) * gate[p];
        y_row[h * P + p] = v;
        sq += v * v;
      }
    }
  }
  if (norm) {
    if (lane == 0) s_warp_sq[warp] = sq;
    __syncthreads();
    if (tid == 0) {
      float s = 0.0f;
      for (int k = 0; k < kDecodeWarps; ++k) s += s_warp_sq[k];
      a.sumsq[b * H + h] = s;
    }
  }

  // 4. The group's last block: B / C conv state, then the norm. Every block's reads of the B / C conv state
  //    have returned before its arrival (their values are in shared memory behind a barrier), so the shift
  //    needs no fence; the norm reads other blocks' y and sums, which the fence makes visible first.
  if (norm) __threadfence();
  __syncthreads();
  if (tid == 0) s_last = atomicAdd(&a.counters[b * G + g], 1u) == unsigned(heads_per_group - 1);
  __syncthreads();
  if (!s_last) return;
  if (norm) __threadfence();
  for (int j = tid; j < int(2 * N); j += blockDim.x) {
    const int64_t c = j < N ? E + g * N + j : E + G * N + g * N + (j - N);
    shift_conv_row(conv_rows + c * K, zrow[E + c], K);
  }
  if (tid == 0) a.counters[b * G + g] = 0;
  if (!norm) return;
  // The heads' sums, loaded in parallel (gate is free again: P >= 1 slots, reused in chunks), added in order.
  float* sums = gate;
  __shared__ float s_total;
  if (tid == 0) s_total = 0.0f;
  for (int64_t k0 = 0; k0 < heads_per_group; k0 += P) {
    __syncthreads();
    for (int64_t k = k0 + tid; k < k0 + P && k < heads_per_group; k += blockDim.x)
      sums[k - k0] = __ldcg(&a.sumsq[b * H + g * heads_per_group + k]);
    __syncthreads();
    if (tid == 0)
      for (int64_t k = k0; k < k0 + P && k < heads_per_group; ++k) s_total += sums[k - k0];
  }
  __syncthreads();
  const int64_t S = E / G;
  const float scale = 1.0f / sqrtf(s_total / float(S) + w.norm_eps);
#pragma unroll 8
  for (int64_t j = g * S + tid; j < (g + 1) * S; j += blockDim.x)
    a.y(b, j) = __ldcg(&a.y(b, j)) * scale * w.norm_weight(j);
}
}  // namespace gpu

inline void mamba2_decode_step_impl(Context<Cuda>& ctx, const Mamba2DecodeWeights<Cuda>& w,
                                    TensorView<const float, 2, Cuda> zxbcdt, TensorView<float, 3, Cuda> conv_state,
                                    TensorView<float, 4, Cuda> ssm_state, TensorView<float, 2, Cuda> y) {
  const int64_t B = zxbcdt.size(0), H = w.heads, P = w.headdim, G = w.groups, N = w.d_state;
  BIMAMBA_CHECK(B * H < (int64_t(1) << 31), "mamba2_decode_step: ", B, " sequences x ", H,
                " heads exceed the Cuda grid limit");
  int major = 0;
  BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, ctx.device()));
  WorkspaceScope<Cuda> scope(ctx.workspace());
  gpu::Mamba2DecodeArgs args{zxbcdt, w, conv_state, ssm_state.data(), y,
                             ctx.workspace().take<float>(size_t(B * H)), ctx.counters(size_t(B * G))};
  const int smem = int(sizeof(float) * (2 * P + 2 * N));
  const bool vec4 = N % 4 == 0 && reinterpret_cast<uintptr_t>(ssm_state.data()) % 16 == 0;
  const dim3 grid(unsigned(B * H)), block(gpu::kDecodeWarps * 32);
  if (vec4) gpu::launch_dependent(ctx.stream(), major, gpu::mamba2_decode_kernel<4>, grid, block, smem, args);
  else gpu::launch_dependent(ctx.stream(), major, gpu::mamba2_decode_kernel<1>, grid, block, smem, args);
}

}  // namespace bimamba::detail
