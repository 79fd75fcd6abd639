// ssd_step: one token of the Mamba-2 recurrence (decoding), per batch b and head h (group g = h / (H / G)):
//   state[b, h] <- exp(dt[b, h] * A[h]) state[b, h] + dt[b, h] * x[b, h, :] (outer) Bm[b, g, :]
//   y[b, h, :]   = state[b, h] Cm[b, g, :] + D[h] * x[b, h, :]
//   x, y (B, H, P); dt (B, H) already softplus'ed; A (H); Bm, Cm (B, G, N); D (H) or empty;
//   state (B, H, P, N) contiguous, float32, updated in place. Inputs may be strided; y must not overlap them.
#pragma once

#include "common.hpp"
#include "host/ssd_step.hpp"
#if defined(__CUDACC__) && __has_include("cuda/ssd_step.cuh")
#include "cuda/ssd_step.cuh"
#endif

namespace bimamba {

template <class Backend>
void ssd_step(Context<Backend>& ctx, View<const float, 3, Backend> x, View<const float, 2, Backend> dt,
              View<const float, 1, Backend> A, View<const float, 3, Backend> Bm, View<const float, 3, Backend> Cm,
              View<const float, 1, Backend> D, View<float, 4, Backend> state, View<float, 3, Backend> y) {
  const int64_t B = x.size(0), H = x.size(1), P = x.size(2), G = Bm.size(1), N = Bm.size(2);
  check_shape(dt, {B, H}, "ssd_step: dt");
  check_shape(A, {H}, "ssd_step: A");
  check_shape(Bm, {B, G, N}, "ssd_step: B");
  check_shape(Cm, {B, G, N}, "ssd_step: C");
  BIMAMBA_CHECK(G > 0 && H % G == 0, "ssd_step: ", H, " heads do not split into ", G, " groups");
  if (present(D)) check_shape(D, {H}, "ssd_step: D");
  check_shape(state, {B, H, P, N}, "ssd_step: state");
  BIMAMBA_CHECK(state.is_contiguous(), "ssd_step: state must be contiguous");
  check_shape(y, {B, H, P}, "ssd_step: y");
  detail::ssd_step_impl(ctx, x, dt, A, Bm, Cm, D, state, y);
}

}  // namespace bimamba
