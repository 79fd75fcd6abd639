// mamba2_decode_step: everything of one Mamba-2 decode step between in_proj and out_proj, fused (Host, Cuda).
// For each sequence b, with zxbcdt (B, R) the in_proj output, rows [z (E) | x (E) | B (GN) | C (GN) | dt (H)]:
//   conv_state[b] <- shift left, append xBC;  xBC = silu(conv_state[b] . conv_weight + conv_bias)   (C = E + 2GN)
//   dt = clamp(softplus(dt_raw + dt_bias), dt_lo, dt_hi);  A = -exp(A_log)
//   per head h (group g = h / (H / G)):  S <- exp(dt A) S + dt x_h (outer) B_g;  y_h = S C_g + D x_h
//   y = groupwise_rmsnorm(y * silu(z), groups G, eps) * norm_weight              (norm_before_gate = False)
// With norm_weight empty the step stops before the norm: y = y * silu(z), and the caller applies it (a
// Bi-Mamba block with G = 1 folds it into out_proj's decode kernel: nn/mamba2_mixer.hpp, step_residual).
// Shapes: conv_weight (C, K), conv_bias (C) or empty, dt_bias / A_log / D (H) (D may be empty),
// norm_weight (E) or empty, conv_state (B, C, K) and ssm_state (B, H, P, N) contiguous, updated in place; y (B, E)
// overwritten (unit inner stride). Scratch comes from ctx.workspace(): nothing is allocated once warm. The
// result does not depend on ctx.threads() (bit for bit; host/mamba2_decode.hpp). On Cuda the whole step is
// one kernel instead of five (cuda/mamba2_decode.cuh), deterministic as well.
// The same math as the unfused step of nn/mamba2_mixer.hpp; results agree to float rounding (tested).
#pragma once

#include <cstdint>

#include "common.hpp"

namespace bimamba {

// One layer's parameters, as views.
template <class Backend>
struct Mamba2DecodeWeights {
  TensorView<const float, 2, Backend> conv_weight;       // (C, K)
  TensorView<const float, 1, Backend> conv_bias;         // (C) or empty
  TensorView<const float, 1, Backend> dt_bias, A_log, D;  // (H); D may be empty
  TensorView<const float, 1, Backend> norm_weight;       // (E), or empty: y is the gated output, not normalized
  int64_t heads = 0, headdim = 0, groups = 1, d_state = 0;
  float norm_eps = 1e-5f, dt_lo = 0.0f, dt_hi = 0.0f;
};

}  // namespace bimamba

#include "host/mamba2_decode.hpp"
#if defined(__CUDACC__) && __has_include("cuda/mamba2_decode.cuh")
#include "cuda/mamba2_decode.cuh"
#endif

namespace bimamba {

template <class Backend>
void mamba2_decode_step(Context<Backend>& ctx, const Mamba2DecodeWeights<Backend>& w,
                        View<const float, 2, Backend> zxbcdt,  // (B, R)
                        View<float, 3, Backend> conv_state,    // (B, C, K)
                        View<float, 4, Backend> ssm_state,     // (B, H, P, N)
                        View<float, 2, Backend> y) {           // (B, E)
  const int64_t B = zxbcdt.size(0), H = w.heads, P = w.headdim, G = w.groups, N = w.d_state;
  BIMAMBA_CHECK(H > 0 && P > 0 && N > 0 && G > 0 && H % G == 0, "mamba2_decode_step: ", H, " heads do not split into ",
                G, " groups");
  const int64_t E = H * P, C = E + 2 * G * N, K = w.conv_weight.size(1);
  check_shape(zxbcdt, {B, E + C + H}, "mamba2_decode_step: zxbcdt");
  BIMAMBA_CHECK(zxbcdt.stride(1) == 1, "mamba2_decode_step: zxbcdt needs unit inner stride");
  check_shape(w.conv_weight, {C, K}, "mamba2_decode_step: conv_weight");
  BIMAMBA_CHECK(K > 0 && w.conv_weight.stride(1) == 1, "mamba2_decode_step: conv_weight needs K > 0 and unit inner stride");
  if (present(w.conv_bias)) check_shape(w.conv_bias, {C}, "mamba2_decode_step: conv_bias");
  check_shape(w.dt_bias, {H}, "mamba2_decode_step: dt_bias");
  check_shape(w.A_log, {H}, "mamba2_decode_step: A_log");
  if (present(w.D)) check_shape(w.D, {H}, "mamba2_decode_step: D");
  if (present(w.norm_weight)) check_shape(w.norm_weight, {E}, "mamba2_decode_step: norm_weight");
  check_shape(conv_state, {B, C, K}, "mamba2_decode_step: conv_state");
  check_shape(ssm_state, {B, H, P, N}, "mamba2_decode_step: ssm_state");
  BIMAMBA_CHECK(conv_state.is_contiguous() && ssm_state.is_contiguous(), "mamba2_decode_step: states must be contiguous");
  check_shape(y, {B, E}, "mamba2_decode_step: y");
  BIMAMBA_CHECK(y.stride(1) == 1, "mamba2_decode_step: y needs unit inner stride");
  if (B == 0) return;
  detail::mamba2_decode_step_impl(ctx, w, zxbcdt, conv_state, ssm_state, y);
}

}  // namespace bimamba
