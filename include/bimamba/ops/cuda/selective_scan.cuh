// Cuda Mamba-1 selective scan, prefill and step (see ops/selective_scan.hpp): one warp per (batch, channel);
// lane l holds the state entries n = l, l + 32, ... (N <= 32 * kMaxStateRegs) in registers, walks the tokens
// in order, and the warp sums s * C for each y. The step is the same kernel over one token, in place.
#pragma once

#include "../common.hpp"
#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
inline constexpr int kMaxStateRegs = 8;  // N <= 256

// x, dt, z, y are (B, L, E); Bm, Cm (B, L, N); states (B, E, N) (init may be empty; final may alias init).
template <class T>
__global__ void selective_scan_kernel(TensorView<const T, 3, Cuda> x, TensorView<const T, 3, Cuda> dt,
                                      TensorView<const T, 2, Cuda> A, TensorView<const T, 3, Cuda> Bm,
                                      TensorView<const T, 3, Cuda> Cm, TensorView<const T, 1, Cuda> D,
                                      TensorView<const T, 3, Cuda> z, TensorView<T, 3, Cuda> y,
                                      TensorView<const T, 3, Cuda> initial_state, TensorView<T, 3, Cuda> final_state) {
  const int64_t B = x.size(0), L = x.size(1), E = x.size(2), N = A.size(1);
  const int64_t pair = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5;
  if (pair >= B * E) return;  // whole warps leave together
  const int64_t b = pair / E, e = pair % E;
  const int lane = threadIdx.x & 31;
  float s[kMaxStateRegs], a[kMaxStateRegs];
#pragma unroll
  for (int r = 0; r < kMaxStateRegs; ++r) {
    const int64_t n = lane + 32 * r;
    s[r] = n < N && present(initial_state) ? float(initial_state(b, e, n)) : 0.0f;
    a[r] = n < N ? float(A(e, n)) : 0.0f;
  }
  const float d_skip = present(D) ? float(D(e)) : 0.0f;
  for (int64_t t = 0; t < L; ++t) {
    const float d = dt(b, t, e), xv = x(b, t, e), dx = d * xv;
    float acc = 0.0f;
#pragma unroll
    for (int r = 0; r < kMaxStateRegs; ++r) {
      const int64_t n = lane + 32 * r;
      if (n < N) {
        s[r] = expf(d * a[r]) * s[r] + dx * Bm(b, t, n);
        acc += s[r] * Cm(b, t, n);
      }
    }
    acc = warp_sum(acc);
    const float out = acc + d_skip * xv;
    if (lane == 0) y(b, t, e) = present(z) ? out * silu(z(b, t, e)) : out;
  }
  if (present(final_state)) {
#pragma unroll
    for (int r = 0; r < kMaxStateRegs; ++r)
      if (lane + 32 * r < N) final_state(b, e, lane + 32 * r) = s[r];
  }
}

template <class T>
void launch_selective_scan(Context<Cuda>& ctx, TensorView<const T, 3, Cuda> x, TensorView<const T, 3, Cuda> dt,
                           TensorView<const T, 2, Cuda> A, TensorView<const T, 3, Cuda> Bm, TensorView<const T, 3, Cuda> Cm,
                           TensorView<const T, 1, Cuda> D, TensorView<const T, 3, Cuda> z, TensorView<T, 3, Cuda> y,
                           TensorView<const T, 3, Cuda> initial_state, TensorView<T, 3, Cuda> final_state) {
  const int64_t pairs = x.size(0) * x.size(2), N = A.size(1);
  BIMAMBA_CHECK(N <= 32 * kMaxStateRegs, "selective_scan: d_state ", N, " exceeds the Cuda kernel's limit of ",
                32 * kMaxStateRegs);
  if (pairs == 0) return;
  const int64_t blocks = (pairs * 32 + kThreads - 1) / kThreads;
  BIMAMBA_CHECK(blocks < (int64_t(1) << 31), "selective_scan: ", pairs, " (batch, channel) pairs are too many");
  selective_scan_kernel<T><<<unsigned(blocks), kThreads, 0, ctx.stream()>>>(x, dt, A, Bm, Cm, D, z, y, initial_state,
                                                                            final_state);
  check_launch();
}

// A (B, E) step tensor as a (B, 1, E) sequence of one token (strides kept).
template <class T>
TensorView<T, 3, Cuda> one_token(TensorView<T, 2, Cuda> v) {
  return {v.data(), {v.size(0), 1, v.size(1)}, {v.stride(0), 0, v.stride(1)}};
}
}  // namespace gpu

inline void selective_scan_impl(Context<Cuda>& ctx, TensorView<const float, 3, Cuda> x, TensorView<const float, 3, Cuda> dt,
                                TensorView<const float, 2, Cuda> A, TensorView<const float, 3, Cuda> Bm,
                                TensorView<const float, 3, Cuda> Cm, TensorView<const float, 1, Cuda> D,
                                TensorView<const float, 3, Cuda> z, TensorView<float, 3, Cuda> y,
                                TensorView<const float, 3, Cuda> initial_state, TensorView<float, 3, Cuda> final_state) {
  gpu::launch_selective_scan<float>(ctx, x, dt, A, Bm, Cm, D, z, y, initial_state, final_state);
}

inline void selective_scan_step_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> x, TensorView<const float, 2, Cuda> dt,
                                     TensorView<const float, 2, Cuda> A, TensorView<const float, 2, Cuda> Bm,
                                     TensorView<const float, 2, Cuda> Cm, TensorView<const float, 1, Cuda> D,
                                     TensorView<const float, 2, Cuda> z, TensorView<float, 3, Cuda> state,
                                     TensorView<float, 2, Cuda> y) {
  gpu::launch_selective_scan<float>(ctx, gpu::one_token(x), gpu::one_token(dt), A, gpu::one_token(Bm), gpu::one_token(Cm),
                                    D, present(z) ? gpu::one_token(z) : TensorView<const float, 3, Cuda>{},
                                    gpu::one_token(y), state, state);
}

}  // namespace bimamba::detail
