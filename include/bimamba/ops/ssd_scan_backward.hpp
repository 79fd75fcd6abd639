// Backward of the Mamba-2 SSM scan (ops/ssd_scan.hpp) from a zero initial state, as a sequential reverse-time
// recurrence. Per batch b and head h (group g = h / (H / G)), with a_t = exp(dt_t A_h) and the states S_t
// (P x N, S_{-1} = 0) recomputed from the inputs (nothing is saved by the forward):
//   forward:  S_t = a_t S_{t-1} + dt_t x_t B_t^T,   y_t = S_t C_t + D_h x_t
//   reverse:  dS_t = dy_t C_t^T + a_{t+1} dS_{t+1}                        (dS_L = 0)
//             dC_t  += S_t^T dy_t                     (summed over the heads of the group)
//             dB_t  += dt_t dS_t^T x_t                (summed over the heads of the group)
//             dx_t   = dt_t dS_t B_t + D_h dy_t
//             ddt_t  = x_t^T dS_t B_t + A_h a_t <dS_t, S_{t-1}>
//             dA_h  += dt_t a_t <dS_t, S_{t-1}>       (summed over b and t)
//             dD_h  += dy_t . x_t                     (summed over b and t)
// Shapes as the forward: x, dy, dx (B, L, H, P); dt, ddt (B, L, H); A, dA, D, dD (H); Bm, Cm, dB, dC
// (B, L, G, N); any strides on Host; on Cuda x, B, C and dy need unit stride along their last dimension and
// rows along L that do not overlap (checked: its chunk products are cuBLAS calls). dx, ddt, dA, dB, dC follow
// `modes.inputs`, dD `modes.params` (train/gradient_mode.hpp); dD may be empty (and D then absent). Scratch
// (Host): L P N floats per worker for the states plus 2 L N doubles for the group sums, from ctx.workspace().
#pragma once

#include "common.hpp"
#include "host/ssd_scan_backward.hpp"
#if defined(__CUDACC__) && __has_include("cuda/ssd_scan_backward.cuh")
#include "cuda/ssd_scan_backward.cuh"
#endif

namespace bimamba {

template <class Backend>
void ssd_scan_backward(Context<Backend>& ctx, View<const float, 4, Backend> x, View<const float, 3, Backend> dt,
                       View<const float, 1, Backend> A, View<const float, 4, Backend> Bm,
                       View<const float, 4, Backend> Cm, View<const float, 1, Backend> D,
                       View<const float, 4, Backend> dy, View<float, 4, Backend> dx, View<float, 3, Backend> ddt,
                       View<float, 1, Backend> dA, View<float, 4, Backend> dB, View<float, 4, Backend> dC,
                       View<float, 1, Backend> dD, GradientModes modes) {
  const int64_t B = x.size(0), L = x.size(1), H = x.size(2), P = x.size(3), G = Bm.size(2), N = Bm.size(3);
  BIMAMBA_CHECK(G > 0 && H % G == 0, "ssd_scan_backward: ", G, " groups do not divide ", H, " heads");
  check_shape(dt, {B, L, H}, "ssd_scan_backward: dt");
  check_shape(A, {H}, "ssd_scan_backward: A");
  check_shape(Bm, {B, L, G, N}, "ssd_scan_backward: B");
  check_shape(Cm, {B, L, G, N}, "ssd_scan_backward: C");
  if (present(D)) check_shape(D, {H}, "ssd_scan_backward: D");
  check_shape(dy, {B, L, H, P}, "ssd_scan_backward: dy");
  check_shape(dx, {B, L, H, P}, "ssd_scan_backward: dx");
  check_shape(ddt, {B, L, H}, "ssd_scan_backward: ddt");
  check_shape(dA, {H}, "ssd_scan_backward: dA");
  check_shape(dB, {B, L, G, N}, "ssd_scan_backward: dB");
  check_shape(dC, {B, L, G, N}, "ssd_scan_backward: dC");
  if (present(dD)) check_shape(dD, {H}, "ssd_scan_backward: dD");
  detail::ssd_scan_backward_impl(ctx, x, dt, A, Bm, Cm, D, dy, dx, ddt, dA, dB, dC, dD, modes);
}

}  // namespace bimamba
