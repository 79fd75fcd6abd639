// Causal depthwise 1-D convolution over time, prefill and single-token step (Mamba's conv1d).
//
// Prefill, per batch b and channel c, with width K:
//   y[b, t, c] = act( bias[c] + sum_{k=0}^{K-1} weight[c, k] * x[b, t - (K-1) + k, c] )
// where x at negative times is taken from initial_state (zeros when absent):
//   x[b, -j, c] = initial_state[b, c, K - j]   for j = 1 .. K-1.
// final_state (when given) receives the last K inputs, oldest first: final_state[b, c, k] = x[b, L - K + k, c]
// (reaching into initial_state / zeros when L < K), which is exactly the rolling state the step consumes.
//
// Step (one token per sequence), the rolling state holds the last K inputs, oldest first:
//   state[b, c, :] <- [state[b, c, 1:], x[b, c]];  y[b, c] = act( bias[c] + sum_k weight[c, k] * state[b, c, k] )
//
//   x (B, L, C) prefill / (B, C) step — any strides (x, B, C are slices of in_proj's output);
//   weight (C, K); bias (C) or empty; y (B, L, C) / (B, C); state (B, C, K) contiguous.
// y must not overlap x; final_state may be the same memory as initial_state (a state continued in place).
#pragma once

#include "common.hpp"
#include "host/causal_conv1d.hpp"
#if defined(__CUDACC__) && __has_include("cuda/causal_conv1d.cuh")
#include "cuda/causal_conv1d.cuh"
#endif

namespace bimamba {

template <class Backend>
void causal_conv1d(Context<Backend>& ctx, View<const float, 3, Backend> x, View<const float, 2, Backend> weight,
                   View<const float, 1, Backend> bias, View<float, 3, Backend> y, Activation act,
                   View<const float, 3, Backend> initial_state = {}, View<float, 3, Backend> final_state = {}) {
  const int64_t B = x.size(0), L = x.size(1), C = x.size(2), K = weight.size(1);
  check_shape(weight, {C, K}, "causal_conv1d: weight");
  BIMAMBA_CHECK(K >= 1, "causal_conv1d: kernel width must be at least 1");
  if (present(bias)) check_shape(bias, {C}, "causal_conv1d: bias");
  check_shape(y, {B, L, C}, "causal_conv1d: y");
  if (present(initial_state)) check_shape(initial_state, {B, C, K}, "causal_conv1d: initial_state");
  if (present(final_state)) {
    check_shape(final_state, {B, C, K}, "causal_conv1d: final_state");
    BIMAMBA_CHECK(final_state.is_contiguous(), "causal_conv1d: final_state must be contiguous");
  }
  detail::causal_conv1d_impl(ctx, x, weight, bias, y, act, initial_state, final_state);
}

template <class Backend>
void causal_conv1d_step(Context<Backend>& ctx, View<const float, 2, Backend> x, View<const float, 2, Backend> weight,
                        View<const float, 1, Backend> bias, View<float, 3, Backend> state, View<float, 2, Backend> y,
                        Activation act) {
  const int64_t B = x.size(0), C = x.size(1), K = weight.size(1);
  check_shape(weight, {C, K}, "causal_conv1d_step: weight");
  BIMAMBA_CHECK(K >= 1, "causal_conv1d_step: kernel width must be at least 1");
  if (present(bias)) check_shape(bias, {C}, "causal_conv1d_step: bias");
  check_shape(state, {B, C, K}, "causal_conv1d_step: state");
  BIMAMBA_CHECK(state.is_contiguous(), "causal_conv1d_step: state must be contiguous");
  check_shape(y, {B, C}, "causal_conv1d_step: y");
  detail::causal_conv1d_step_impl(ctx, x, weight, bias, state, y, act);
}

}  // namespace bimamba
