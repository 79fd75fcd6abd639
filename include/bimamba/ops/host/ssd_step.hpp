// Host Mamba-2 recurrent step (see ops/ssd_step.hpp): (batch, head) pairs in parallel; each updates its
// (P x N) state row by row and reads it back against C.
#pragma once

#include <cmath>
#include <cstdint>

#include "../../core/context.hpp"
#include "../../tensor/tensor_view.hpp"
#include "../common.hpp"

namespace bimamba::detail {

inline void ssd_step_impl(Context<Host>& ctx, TensorView<const float, 3, Host> x, TensorView<const float, 2, Host> dt,
                          TensorView<const float, 1, Host> A, TensorView<const float, 3, Host> Bm,
                          TensorView<const float, 3, Host> Cm, TensorView<const float, 1, Host> D,
                          TensorView<float, 4, Host> state, TensorView<float, 3, Host> y) {
  const int64_t B = x.size(0), H = x.size(1), P = x.size(2), G = Bm.size(1), N = Bm.size(2);
  const int64_t heads_per_group = H / G;
  const bool has_d = present(D);
  ctx.parallel_for(B * H, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / H, h = i % H, g = h / heads_per_group;
      const float d = dt(b, h);
      const float decay = std::exp(d * A(h));
      for (int64_t p = 0; p < P; ++p) {
        float* s = &state(b, h, p, 0);
        const float dx = d * x(b, h, p);
        float acc = 0.0f;
        for (int64_t n = 0; n < N; ++n) {
          s[n] = decay * s[n] + dx * Bm(b, g, n);
          acc += s[n] * Cm(b, g, n);
        }
        y(b, h, p) = acc + (has_d ? D(h) * x(b, h, p) : 0.0f);
      }
    }
  }, grain(4 * P * N));
}

}  // namespace bimamba::detail
