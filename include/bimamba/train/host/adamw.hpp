// Host kernel of the AdamW update (train/adamw.hpp states the math): one pass over the flat buffers, split
// across threads; each thread walks the decay segments that overlap its range.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../../core/context.hpp"
#include "../../tensor/tensor_view.hpp"

namespace bimamba::detail {

// [begin, end) of the flat buffers with one weight-decay setting.
struct DecaySegment {
  int64_t begin = 0, end = 0;
  bool decay = true;
};

struct AdamWStepConstants {
  float lr = 0;            // this step's learning rate
  float decay_factor = 1;  // 1 - lr * weight_decay, for Decay segments
  float beta1 = 0, beta2 = 0, eps = 0;
  float step_size = 0;     // lr / (1 - beta1^t)
  float inv_sqrt_bc2 = 0;  // 1 / sqrt(1 - beta2^t)
  float grad_scale = 1;    // g is read as g * grad_scale (a clipping factor folded into the update; x * 1 == x)
};

inline void adamw_impl(Context<Host>& ctx, TensorView<float, 1, Host> params, TensorView<const float, 1, Host> grads,
                       TensorView<float, 1, Host> m, TensorView<float, 1, Host> v,
                       const std::vector<DecaySegment>& segments, const AdamWStepConstants& k) {
  float* p = params.data();
  const float* g = grads.data();
  float* mm = m.data();
  float* vv = v.data();
  ctx.parallel_for(
      params.size(0),
      [&](int64_t begin, int64_t end) {
        for (const DecaySegment& s : segments) {
          const int64_t lo = std::max(begin, s.begin), hi = std::min(end, s.end);
          const float decay = s.decay ? k.decay_factor : 1.0f;
          for (int64_t i = lo; i < hi; ++i) {
            const float gi = g[i] * k.grad_scale;
            const float mi = k.beta1 * mm[i] + (1.0f - k.beta1) * gi;
            const float vi = k.beta2 * vv[i] + (1.0f - k.beta2) * gi * gi;
            mm[i] = mi;
            vv[i] = vi;
            const float denom = std::sqrt(vi) * k.inv_sqrt_bc2 + k.eps;
            p[i] = p[i] * decay - k.step_size * mi / denom;
          }
        }
      },
      4096);
}

}  // namespace bimamba::detail
