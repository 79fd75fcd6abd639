// Cuda Mamba-2 recurrent step (see ops/ssd_step.hpp): one block per (batch, head), one warp per state row p
// (rows p = warp, warp + warps, ...); the lanes walk the row's N entries (coalesced), update them in place,
// and the warp sums s * C for y[b, h, p]. Accumulation is in float, like the host.
#pragma once

#include "../common.hpp"
#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
template <class T>
__global__ void ssd_step_kernel(TensorView<const T, 3, Cuda> x, TensorView<const T, 2, Cuda> dt,
                                TensorView<const T, 1, Cuda> A, TensorView<const T, 3, Cuda> Bm,
                                TensorView<const T, 3, Cuda> Cm, TensorView<const T, 1, Cuda> D,
                                TensorView<T, 4, Cuda> state, TensorView<T, 3, Cuda> y) {
  const int64_t H = x.size(1), P = x.size(2), G = Bm.size(1), N = Bm.size(2);
  const int64_t b = blockIdx.x / H, h = blockIdx.x % H, g = h / (H / G);
  const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  const float d = dt(b, h), decay = expf(d * A(h));
  for (int64_t p = threadIdx.x >> 5; p < P; p += warps) {
    T* s = &state(b, h, p, 0);
    const float xv = x(b, h, p), dx = d * xv;
    float acc = 0.0f;
    for (int64_t n = lane; n < N; n += 32) {
      const float v = decay * s[n] + dx * Bm(b, g, n);
      s[n] = v;
      acc += v * Cm(b, g, n);
    }
    acc = warp_sum(acc);
    if (lane == 0) y(b, h, p) = acc + (present(D) ? D(h) * xv : 0.0f);
  }
}
}  // namespace gpu

inline void ssd_step_impl(Context<Cuda>& ctx, TensorView<const float, 3, Cuda> x, TensorView<const float, 2, Cuda> dt,
                          TensorView<const float, 1, Cuda> A, TensorView<const float, 3, Cuda> Bm,
                          TensorView<const float, 3, Cuda> Cm, TensorView<const float, 1, Cuda> D,
                          TensorView<float, 4, Cuda> state, TensorView<float, 3, Cuda> y) {
  const int64_t pairs = x.size(0) * x.size(1);
  if (pairs == 0 || x.size(2) == 0) return;
  BIMAMBA_CHECK(pairs < (int64_t(1) << 31), "ssd_step: ", pairs, " (batch, head) pairs exceed the Cuda grid limit");
  gpu::ssd_step_kernel<float><<<unsigned(pairs), 128, 0, ctx.stream()>>>(x, dt, A, Bm, Cm, D, state, y);
  gpu::check_launch();
}

}  // namespace bimamba::detail
