// dt_softplus: the time step of the selective SSMs,
//   out[t, h] = clamp( softplus(dt[t, h] + bias[h]), lo, hi )
// softplus(u) = log(1 + exp(u)) (u itself above 20, as torch). Mamba-2: bias = dt_bias (H), [lo, hi] =
// time_step_limit (default [0, inf): no clamp). Mamba-1: dt is dt_proj's output without bias, bias =
// dt_proj.bias (E), no clamp.
//   dt (T, H) any strides (a slice of in_proj's output); bias (H) or empty; out (T, H).
#pragma once

#include "common.hpp"
#include "host/dt_softplus.hpp"
#if defined(__CUDACC__) && __has_include("cuda/dt_softplus.cuh")
#include "cuda/dt_softplus.cuh"
#endif

namespace bimamba {

template <class Backend>
void dt_softplus(Context<Backend>& ctx, View<const float, 2, Backend> dt, View<const float, 1, Backend> bias, float lo,
                 float hi, View<float, 2, Backend> out) {
  if (present(bias)) check_shape(bias, {dt.size(1)}, "dt_softplus: bias");
  check_shape(out, {dt.size(0), dt.size(1)}, "dt_softplus: out");
  BIMAMBA_CHECK(lo <= hi, "dt_softplus: empty clamp range [", lo, ", ", hi, "]");
  detail::dt_softplus_impl(ctx, dt, bias, lo, hi, out);
}

}  // namespace bimamba
