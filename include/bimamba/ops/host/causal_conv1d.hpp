// Host causal depthwise conv1d, prefill and step (see ops/causal_conv1d.hpp). Prefill runs over tokens in
// parallel (every output reads only inputs, so tokens are independent); the step runs over sequences.
#pragma once

#include <cstdint>

#include "../../core/context.hpp"
#include "../../tensor/tensor_view.hpp"
#include "../common.hpp"

namespace bimamba::detail {

inline void causal_conv1d_impl(Context<Host>& ctx, TensorView<const float, 3, Host> x, TensorView<const float, 2, Host> weight,
                               TensorView<const float, 1, Host> bias, TensorView<float, 3, Host> y, Activation act,
                               TensorView<const float, 3, Host> initial_state, TensorView<float, 3, Host> final_state) {
  const int64_t B = x.size(0), L = x.size(1), C = x.size(2), K = weight.size(1);
  const bool has_bias = present(bias), has_init = present(initial_state);
  // Input at time s in [-(K-1), L) of sequence b, channel c.
  auto input = [&](int64_t b, int64_t s, int64_t c) -> float {
    if (s >= 0) return x(b, s, c);
    return has_init ? initial_state(b, c, K + s) : 0.0f;
  };
  ctx.parallel_for(B * L, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / L, t = i % L;
      for (int64_t c = 0; c < C; ++c) {
        float acc = has_bias ? bias(c) : 0.0f;
        for (int64_t k = 0; k < K; ++k) acc += weight(c, k) * input(b, t - (K - 1) + k, c);
        y(b, t, c) = activate(act, acc);
      }
    }
  }, grain(2 * C * K));
  if (present(final_state)) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t k = 0; k < K; ++k) final_state(b, c, k) = input(b, L - K + k, c);
  }
}

inline void causal_conv1d_step_impl(Context<Host>& ctx, TensorView<const float, 2, Host> x,
                                    TensorView<const float, 2, Host> weight, TensorView<const float, 1, Host> bias,
                                    TensorView<float, 3, Host> state, TensorView<float, 2, Host> y, Activation act) {
  const int64_t B = x.size(0), C = x.size(1), K = weight.size(1);
  const bool has_bias = present(bias);
  ctx.parallel_for(B * C, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / C, c = i % C;
      float* s = &state(b, c, 0);
      for (int64_t k = 0; k + 1 < K; ++k) s[k] = s[k + 1];
      s[K - 1] = x(b, c);
      float acc = has_bias ? bias(c) : 0.0f;
      for (int64_t k = 0; k < K; ++k) acc += weight(c, k) * s[k];
      y(b, c) = activate(act, acc);
    }
  }, grain(2 * K + 8));
}

}  // namespace bimamba::detail
