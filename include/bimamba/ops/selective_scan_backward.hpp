// Backward of the Mamba-1 selective scan (ops/selective_scan.hpp) from a zero initial state, as a sequential
// reverse-time recurrence. Per batch b and channel e, with a_t[n] = exp(dt_t A[e, n]) and the states s_t (N,
// s_{-1} = 0) recomputed from the inputs:
//   forward:  s_t = a_t ⊙ s_{t-1} + dt_t x_t B_t,   q_t = s_t . C_t + D_e x_t,   y_t = q_t silu(z_t)
//   reverse:  dq_t = dy_t silu(z_t);   dz_t = dy_t q_t silu'(z_t)          (no z: dq = dy, no dz)
//             ds_t = dq_t C_t + a_{t+1} ⊙ ds_{t+1}                        (ds_L = 0)
//             dC_t += dq_t s_t;   dB_t += dt_t x_t ds_t                  (summed over channels)
//             dx_t  = D_e dq_t + dt_t (ds_t . B_t)
//             ddt_t = x_t (ds_t . B_t) + sum_n ds_t[n] A[e, n] a_t[n] s_{t-1}[n]
//             dA[e, n] += ds_t[n] dt_t a_t[n] s_{t-1}[n];   dD_e += dq_t x_t   (summed over b and t)
// Shapes as the forward: x, dt, z, dy, dx, ddt, dz (B, L, E); A, dA (E, N); Bm, Cm, dB, dC (B, L, N); D, dD (E).
// z / dz and D / dD may be empty views. Every output follows `mode`. Scratch: per sequence L E N floats for
// the states and 2 L N doubles, from ctx.workspace().
#pragma once

#include "common.hpp"
#include "host/selective_scan_backward.hpp"
#if defined(__CUDACC__) && __has_include("cuda/selective_scan_backward.cuh")
#include "cuda/selective_scan_backward.cuh"
#endif

namespace bimamba {

template <class Backend>
void selective_scan_backward(Context<Backend>& ctx, View<const float, 3, Backend> x, View<const float, 3, Backend> dt,
                             View<const float, 2, Backend> A, View<const float, 3, Backend> Bm,
                             View<const float, 3, Backend> Cm, View<const float, 1, Backend> D,
                             View<const float, 3, Backend> z, View<const float, 3, Backend> dy,
                             View<float, 3, Backend> dx, View<float, 3, Backend> ddt, View<float, 2, Backend> dA,
                             View<float, 3, Backend> dB, View<float, 3, Backend> dC, View<float, 1, Backend> dD,
                             View<float, 3, Backend> dz, GradientMode mode) {
  const int64_t B = x.size(0), L = x.size(1), E = x.size(2), N = A.size(1);
  check_shape(dt, {B, L, E}, "selective_scan_backward: dt");
  check_shape(A, {E, N}, "selective_scan_backward: A");
  check_shape(Bm, {B, L, N}, "selective_scan_backward: B");
  check_shape(Cm, {B, L, N}, "selective_scan_backward: C");
  if (present(D)) check_shape(D, {E}, "selective_scan_backward: D");
  if (present(z)) check_shape(z, {B, L, E}, "selective_scan_backward: z");
  check_shape(dy, {B, L, E}, "selective_scan_backward: dy");
  check_shape(dx, {B, L, E}, "selective_scan_backward: dx");
  check_shape(ddt, {B, L, E}, "selective_scan_backward: ddt");
  check_shape(dA, {E, N}, "selective_scan_backward: dA");
  check_shape(dB, {B, L, N}, "selective_scan_backward: dB");
  check_shape(dC, {B, L, N}, "selective_scan_backward: dC");
  if (present(dD)) check_shape(dD, {E}, "selective_scan_backward: dD");
  if (present(dz)) check_shape(dz, {B, L, E}, "selective_scan_backward: dz");
  BIMAMBA_CHECK(present(z) || !present(dz), "selective_scan_backward: dz given without z");
  detail::selective_scan_backward_impl(ctx, x, dt, A, Bm, Cm, D, z, dy, dx, ddt, dA, dB, dC, dD, dz, mode);
}

}  // namespace bimamba
