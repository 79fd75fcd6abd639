// Mamba-1 selective scan, prefill and single-token step. Per batch b and channel e, state s (N), from s_0 =
// initial_state[b, e] (zeros when absent):
//   s_t[n]    = exp(dt[t, e] * A[e, n]) s_{t-1}[n] + dt[t, e] * Bm[t, n] * x[t, e]
//   y[t, e]   = (sum_n s_t[n] Cm[t, n] + D[e] x[t, e]) * (z present ? silu(z[t, e]) : 1)
// final_state[b, e] = s_L. The step applies one t to state in place.
//   prefill: x, dt, z, y (B, L, E); Bm, Cm (B, L, N); initial_state, final_state (B, E, N) or empty.
//   step:    x, dt, z, y (B, E);    Bm, Cm (B, N);    state (B, E, N).
//   A (E, N) = -exp(A_log); D (E) or empty; dt already softplus'ed; inputs may be strided; state contiguous;
//   y must not overlap the inputs; final_state may be the same memory as initial_state.
#pragma once

#include "common.hpp"
#include "host/selective_scan.hpp"
#if defined(__CUDACC__) && __has_include("cuda/selective_scan.cuh")
#include "cuda/selective_scan.cuh"
#endif

namespace bimamba {

template <class Backend>
void selective_scan(Context<Backend>& ctx, View<const float, 3, Backend> x, View<const float, 3, Backend> dt,
                    View<const float, 2, Backend> A, View<const float, 3, Backend> Bm, View<const float, 3, Backend> Cm,
                    View<const float, 1, Backend> D, View<const float, 3, Backend> z, View<float, 3, Backend> y,
                    View<const float, 3, Backend> initial_state = {}, View<float, 3, Backend> final_state = {}) {
  const int64_t B = x.size(0), L = x.size(1), E = x.size(2), N = A.size(1);
  check_shape(dt, {B, L, E}, "selective_scan: dt");
  check_shape(A, {E, N}, "selective_scan: A");
  check_shape(Bm, {B, L, N}, "selective_scan: B");
  check_shape(Cm, {B, L, N}, "selective_scan: C");
  if (present(D)) check_shape(D, {E}, "selective_scan: D");
  if (present(z)) check_shape(z, {B, L, E}, "selective_scan: z");
  check_shape(y, {B, L, E}, "selective_scan: y");
  if (present(initial_state)) check_shape(initial_state, {B, E, N}, "selective_scan: initial_state");
  if (present(final_state)) {
    check_shape(final_state, {B, E, N}, "selective_scan: final_state");
    BIMAMBA_CHECK(final_state.is_contiguous(), "selective_scan: final_state must be contiguous");
  }
  detail::selective_scan_impl(ctx, x, dt, A, Bm, Cm, D, z, y, initial_state, final_state);
}

template <class Backend>
void selective_scan_step(Context<Backend>& ctx, View<const float, 2, Backend> x, View<const float, 2, Backend> dt,
                         View<const float, 2, Backend> A, View<const float, 2, Backend> Bm,
                         View<const float, 2, Backend> Cm, View<const float, 1, Backend> D,
                         View<const float, 2, Backend> z, View<float, 3, Backend> state, View<float, 2, Backend> y) {
  const int64_t B = x.size(0), E = x.size(1), N = A.size(1);
  check_shape(dt, {B, E}, "selective_scan_step: dt");
  check_shape(A, {E, N}, "selective_scan_step: A");
  check_shape(Bm, {B, N}, "selective_scan_step: B");
  check_shape(Cm, {B, N}, "selective_scan_step: C");
  if (present(D)) check_shape(D, {E}, "selective_scan_step: D");
  if (present(z)) check_shape(z, {B, E}, "selective_scan_step: z");
  check_shape(state, {B, E, N}, "selective_scan_step: state");
  BIMAMBA_CHECK(state.is_contiguous(), "selective_scan_step: state must be contiguous");
  check_shape(y, {B, E}, "selective_scan_step: y");
  detail::selective_scan_step_impl(ctx, x, dt, A, Bm, Cm, D, z, state, y);
}

}  // namespace bimamba
