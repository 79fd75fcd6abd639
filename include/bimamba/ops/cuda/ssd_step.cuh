// Cuda Mamba-2 recurrent step (see ops/ssd_step.hpp). Grid (batch * head, P / 8): a block of 8 warps holds 8
// state rows p of one (batch, head), one row per warp; the lanes walk the row's N entries (float4 when the
// layout allows: for N = 128 one load per lane, so the whole update is one memory round trip), update them
// in place and the warp sums s * C for y[b, h, p]. Accumulation is in float, like the host. The state is
// read and written once per step: the kernel is bound by those bytes (2 * B * H * P * N * 4).
#pragma once

#include "../common.hpp"
#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
inline constexpr int kSsdStepWarps = 8;  // state rows per block

template <bool Vec4>
__global__ void __launch_bounds__(kSsdStepWarps * 32)
    ssd_step_kernel(TensorView<const float, 3, Cuda> x, TensorView<const float, 2, Cuda> dt,
                    TensorView<const float, 1, Cuda> A, TensorView<const float, 3, Cuda> Bm,
                    TensorView<const float, 3, Cuda> Cm, TensorView<const float, 1, Cuda> D,
                    TensorView<float, 4, Cuda> state, TensorView<float, 3, Cuda> y) {
  const int64_t H = x.size(1), P = x.size(2), G = Bm.size(1), N = Bm.size(2);
  const int64_t b = blockIdx.x / H, h = blockIdx.x % H, g = h / (H / G);
  const int lane = threadIdx.x & 31;
  const int64_t p = int64_t(blockIdx.y) * kSsdStepWarps + (threadIdx.x >> 5);
  if (p >= P) return;
  const float d = dt(b, h), decay = expf(d * A(h)), xv = x(b, h, p), dx = d * xv;
  float* s = &state(b, h, p, 0);
  const float* bp = &Bm(b, g, 0);
  const float* cp = &Cm(b, g, 0);
  float acc = 0.0f;
  if constexpr (Vec4) {
    for (int64_t n = 4 * lane; n < N; n += 128) {
      const float4 sv = *reinterpret_cast<const float4*>(s + n);
      const float4 bv = __ldg(reinterpret_cast<const float4*>(bp + n));
      const float4 cv = __ldg(reinterpret_cast<const float4*>(cp + n));
      const float4 v = make_float4(decay * sv.x + dx * bv.x, decay * sv.y + dx * bv.y, decay * sv.z + dx * bv.z,
                                   decay * sv.w + dx * bv.w);
      *reinterpret_cast<float4*>(s + n) = v;
      acc += v.x * cv.x + v.y * cv.y + v.z * cv.z + v.w * cv.w;
    }
  } else {
    const int64_t sn = state.stride(3), bn = Bm.stride(2), cn = Cm.stride(2);
#pragma unroll 4
    for (int64_t n = lane; n < N; n += 32) {
      const float v = decay * s[n * sn] + dx * bp[n * bn];
      s[n * sn] = v;
      acc += v * cp[n * cn];
    }
  }
  acc = warp_sum(acc);
  if (lane == 0) y(b, h, p) = acc + (present(D) ? D(h) * xv : 0.0f);
}
}  // namespace gpu

inline void ssd_step_impl(Context<Cuda>& ctx, TensorView<const float, 3, Cuda> x, TensorView<const float, 2, Cuda> dt,
                          TensorView<const float, 1, Cuda> A, TensorView<const float, 3, Cuda> Bm,
                          TensorView<const float, 3, Cuda> Cm, TensorView<const float, 1, Cuda> D,
                          TensorView<float, 4, Cuda> state, TensorView<float, 3, Cuda> y) {
  const int64_t pairs = x.size(0) * x.size(1), P = x.size(2), N = Bm.size(2);
  if (pairs == 0 || P == 0) return;
  BIMAMBA_CHECK(pairs < (int64_t(1) << 31), "ssd_step: ", pairs, " (batch, head) pairs exceed the Cuda grid limit");
  auto aligned = [](const float* p, int64_t s0, int64_t s1, int64_t s2) {
    return reinterpret_cast<uintptr_t>(p) % 16 == 0 && s0 % 4 == 0 && s1 % 4 == 0 && s2 % 4 == 0;
  };
  const bool vec4 = N % 4 == 0 && state.stride(3) == 1 && Bm.stride(2) == 1 && Cm.stride(2) == 1 &&
                    aligned(state.data(), state.stride(0), state.stride(1), state.stride(2)) &&
                    aligned(Bm.data(), Bm.stride(0), Bm.stride(1), 4) && aligned(Cm.data(), Cm.stride(0), Cm.stride(1), 4);
  const dim3 grid{unsigned(pairs), unsigned((P + gpu::kSsdStepWarps - 1) / gpu::kSsdStepWarps)};
  BIMAMBA_CHECK(grid.y < 65536u, "ssd_step: headdim ", P, " exceeds the Cuda grid limit");
  if (vec4) gpu::ssd_step_kernel<true><<<grid, gpu::kSsdStepWarps * 32, 0, ctx.stream()>>>(x, dt, A, Bm, Cm, D, state, y);
  else gpu::ssd_step_kernel<false><<<grid, gpu::kSsdStepWarps * 32, 0, ctx.stream()>>>(x, dt, A, Bm, Cm, D, state, y);
  gpu::check_launch();
}

}  // namespace bimamba::detail
