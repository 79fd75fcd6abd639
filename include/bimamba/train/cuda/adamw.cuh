// Cuda kernel of the AdamW update (train/adamw.hpp states the math; host version train/host/adamw.hpp): one
// grid-stride launch per decay segment of the flat buffers, each element updated by one thread with the host's
// float operations (the compiler may contract a multiply-add into an FMA: results can differ from the host's
// in the last bit).
#pragma once

#include <vector>

#include "../../ops/cuda/launch.cuh"
#include "../host/adamw.hpp"

namespace bimamba::detail {

namespace gpu {
template <class T>
__global__ void adamw_kernel(T* p, const T* g, T* m, T* v, int64_t begin, int64_t end, float decay,
                             AdamWStepConstants k) {
  for (int64_t i = begin + blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < end; i += int64_t(gridDim.x) * blockDim.x) {
    const float gi = g[i] * k.grad_scale;
    const float mi = k.beta1 * m[i] + (1.0f - k.beta1) * gi;
    const float vi = k.beta2 * v[i] + (1.0f - k.beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float denom = sqrtf(vi) * k.inv_sqrt_bc2 + k.eps;
    p[i] = p[i] * decay - k.step_size * mi / denom;
  }
}
}  // namespace gpu

inline void adamw_impl(Context<Cuda>& ctx, TensorView<float, 1, Cuda> params, TensorView<const float, 1, Cuda> grads,
                       TensorView<float, 1, Cuda> m, TensorView<float, 1, Cuda> v,
                       const std::vector<DecaySegment>& segments, const AdamWStepConstants& k) {
  for (const DecaySegment& s : segments) {
    if (s.end <= s.begin) continue;
    gpu::adamw_kernel<float><<<gpu::grid_for(s.end - s.begin), gpu::kThreads, 0, ctx.stream()>>>(
        params.data(), grads.data(), m.data(), v.data(), s.begin, s.end, s.decay ? k.decay_factor : 1.0f, k);
    gpu::check_launch();
  }
}

}  // namespace bimamba::detail
