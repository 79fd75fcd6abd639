// Host causal depthwise conv1d, prefill and step (see ops/causal_conv1d.hpp). Prefill runs over tokens in
// parallel (every output reads only inputs, so tokens are independent); the step runs over sequences.
#pragma once

#include <cstdint>
#include <vector>

#include <Eigen/Core>

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
  // Unit inner strides (the Mamba-2 mixer's case): tokens t >= K - 1 read only x, so channels are walked
  // contiguously on a transposed copy of the taps (vectorized, the same sums in the same order) and the SiLU
  // uses Eigen's vectorized exp (within a few ulp of expf); the first K - 1 tokens take the generic path.
  const bool contiguous = x.stride(2) == 1 && y.stride(2) == 1;
  std::vector<float> taps(contiguous ? size_t(K * C) : 0);  // (K, C)
  for (int64_t k = 0; contiguous && k < K; ++k)
    for (int64_t c = 0; c < C; ++c) taps[size_t(k * C + c)] = weight(c, k);
  ctx.parallel_for(B * L, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / L, t = i % L;
      if (contiguous && t >= K - 1) {
        float* yr = &y(b, t, 0);
        for (int64_t c = 0; c < C; ++c) yr[c] = has_bias ? bias(c) : 0.0f;
        for (int64_t k = 0; k < K; ++k) {
          const float* xr = &x(b, t - (K - 1) + k, 0);
          const float* w = taps.data() + k * C;
          for (int64_t c = 0; c < C; ++c) yr[c] += w[c] * xr[c];
        }
        if (act == Activation::Silu) {
          Eigen::Map<Eigen::ArrayXf> v(yr, C);
          v = v / (1.0f + (-v).exp());
        }
        continue;
      }
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
