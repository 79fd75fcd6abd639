// Host causal conv1d backward (see ops/causal_conv1d_backward.hpp): channels in parallel (each channel's
// dx, dw and dbias depend on that channel alone); per channel the sums run in double over (b, t) in order.
#pragma once

#include <cstdint>
#include <vector>

#include "../../core/context.hpp"
#include "backward_common.hpp"

namespace bimamba::detail {

inline void causal_conv1d_backward_impl(Context<Host>& ctx, TensorView<const float, 3, Host> x,
                                        TensorView<const float, 2, Host> w, TensorView<const float, 1, Host> bias,
                                        TensorView<const float, 3, Host> dy, TensorView<float, 3, Host> dx,
                                        TensorView<float, 2, Host> dw, TensorView<float, 1, Host> dbias,
                                        GradientModes modes) {
  const int64_t B = x.size(0), L = x.size(1), C = x.size(2), K = w.size(1);
  ctx.parallel_for(C, [&](int64_t begin, int64_t end) {
    std::vector<double> da(static_cast<size_t>(L)), sw(static_cast<size_t>(K));  // (L) one sequence's da; (K) dw sums of a channel
    for (int64_t c = begin; c < end; ++c) {
      double sb = 0;
      std::fill(sw.begin(), sw.end(), 0.0);
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t t = 0; t < L; ++t) {
          double a = present(bias) ? bias(c) : 0.0f;
          for (int64_t k = 0; k < K; ++k) {
            const int64_t s = t - K + 1 + k;
            if (s >= 0) a += double(w(c, k)) * x(b, s, c);
          }
          da[size_t(t)] = dy(b, t, c) * silu_grad(a);
          sb += da[size_t(t)];
          for (int64_t k = 0; k < K; ++k) {
            const int64_t s = t - K + 1 + k;
            if (s >= 0) sw[size_t(k)] += da[size_t(t)] * x(b, s, c);
          }
        }
        if (!present(dx)) continue;
        for (int64_t s = 0; s < L; ++s) {
          double g = 0;
          for (int64_t k = 0; k < K; ++k) {
            const int64_t t = s + K - 1 - k;
            if (t < L) g += double(w(c, k)) * da[size_t(t)];
          }
          put_grad(dx(b, s, c), g, modes.inputs);
        }
      }
      if (present(dbias)) put_grad(dbias(c), sb, modes.params);
      if (present(dw))
        for (int64_t k = 0; k < K; ++k) put_grad(dw(c, k), sw[size_t(k)], modes.params);
    }
  }, grain(4 * B * L * K));
}

}  // namespace bimamba::detail
