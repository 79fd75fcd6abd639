// ssd_scan: the Mamba-2 selective state space scan over a whole sequence (prefill), in the chunked SSD
// form. Per batch b and head h (using B/C group g = h / (H / G)), with state S (P x N), from S_0 =
// initial_state[b, h] (zeros when absent):
//   S_t = exp(dt[t, h] * A[h]) S_{t-1} + dt[t, h] * x[t, h, :] (outer) Bm[t, g, :]
//   y[t, h, :] = S_t Cm[t, g, :] + D[h] * x[t, h, :]
// and final_state[b, h] = S_L. Computed chunk by chunk (chunk_size Q, the last chunk may be shorter), with
// a_t = dt_t A, cs_i = a_{c0} + ... + a_i inside the chunk starting at c0:
//   y_i  = sum_{j <= i} (Cm_i . Bm_j) exp(cs_i - cs_j) dt_j x_j   (intra-chunk quadratic form, segment-sum mask)
//        + exp(cs_i) S_prev Cm_i                                 (inter-chunk: the state entering the chunk)
//        + D x_i
//   S_next = exp(cs_last) S_prev + sum_j exp(cs_last - cs_j) dt_j x_j Bm_j^T
// The result does not depend on chunk_size beyond float rounding (tests pin 1, 7 and 256).
//
//   x (B, L, H, P), y (B, L, H, P); dt (B, L, H) already softplus'ed (dt_softplus); A (H) = -exp(A_log);
//   Bm, Cm (B, L, G, N); D (H) or empty; initial_state, final_state (B, H, P, N) or empty.
//   Inputs may be strided (slices of the conv output) but need unit stride along P and N; y needs unit
//   stride along P and must not overlap the inputs. The state is float32. final_state may be the same memory
//   as initial_state (a state continued in place).
#pragma once

#include <cstdint>

#include "common.hpp"
#include "host/ssd_scan.hpp"
#if defined(__CUDACC__) && __has_include("cuda/ssd_scan.cuh")
#include "cuda/ssd_scan.cuh"
#endif

namespace bimamba {

template <class Backend>
void ssd_scan(Context<Backend>& ctx, View<const float, 4, Backend> x, View<const float, 3, Backend> dt,
              View<const float, 1, Backend> A, View<const float, 4, Backend> Bm, View<const float, 4, Backend> Cm,
              View<const float, 1, Backend> D, int64_t chunk_size, View<float, 4, Backend> y,
              View<const float, 4, Backend> initial_state = {}, View<float, 4, Backend> final_state = {}) {
  const int64_t B = x.size(0), L = x.size(1), H = x.size(2), P = x.size(3), G = Bm.size(2), N = Bm.size(3);
  check_shape(dt, {B, L, H}, "ssd_scan: dt");
  check_shape(A, {H}, "ssd_scan: A");
  check_shape(Bm, {B, L, G, N}, "ssd_scan: B");
  check_shape(Cm, {B, L, G, N}, "ssd_scan: C");
  BIMAMBA_CHECK(G > 0 && H % G == 0, "ssd_scan: ", H, " heads do not split into ", G, " groups");
  if (present(D)) check_shape(D, {H}, "ssd_scan: D");
  BIMAMBA_CHECK(chunk_size > 0, "ssd_scan: chunk_size must be positive, got ", chunk_size);
  check_shape(y, {B, L, H, P}, "ssd_scan: y");
  BIMAMBA_CHECK(x.stride(3) == 1 && Bm.stride(3) == 1 && Cm.stride(3) == 1 && y.stride(3) == 1,
                "ssd_scan: x, B, C and y need unit stride along their last dimension");
  if (present(initial_state)) {
    check_shape(initial_state, {B, H, P, N}, "ssd_scan: initial_state");
    BIMAMBA_CHECK(initial_state.is_contiguous(), "ssd_scan: initial_state must be contiguous");
  }
  if (present(final_state)) {
    check_shape(final_state, {B, H, P, N}, "ssd_scan: final_state");
    BIMAMBA_CHECK(final_state.is_contiguous(), "ssd_scan: final_state must be contiguous");
  }
  detail::ssd_scan_impl(ctx, x, dt, A, Bm, Cm, D, chunk_size, y, initial_state, final_state);
}

}  // namespace bimamba
