// RMSNorm over the last dimension, and the fused residual add + RMSNorm of a prenorm block.
//   rms_norm:      y[t, :] = x[t, :] / sqrt(mean_j x[t, j]^2 + eps) * weight
//   add_rms_norm:  residual[t, :] += x[t, :];  y[t, :] = rms_norm(residual[t, :])
//   x, residual, y (T, D); weight (D). Rows are tokens (B*L flattened); every row is independent.
// y may alias x (rms_norm) but not residual (add_rms_norm). All float32; sums are accumulated in float.
#pragma once

#include "common.hpp"
#include "host/rms_norm.hpp"
#if defined(__CUDACC__) && __has_include("cuda/rms_norm.cuh")
#include "cuda/rms_norm.cuh"
#endif

namespace bimamba {

template <class Backend>
void rms_norm(Context<Backend>& ctx, View<const float, 2, Backend> x, View<const float, 1, Backend> weight, float eps,
              View<float, 2, Backend> y) {
  check_shape(weight, {x.size(1)}, "rms_norm: weight");
  check_shape(y, {x.size(0), x.size(1)}, "rms_norm: y");
  BIMAMBA_CHECK(eps > 0, "rms_norm: eps must be positive, got ", eps);
  detail::rms_norm_impl(ctx, x, weight, eps, y);
}

template <class Backend>
void add_rms_norm(Context<Backend>& ctx, View<float, 2, Backend> residual, View<const float, 2, Backend> x,
                  View<const float, 1, Backend> weight, float eps, View<float, 2, Backend> y) {
  check_shape(x, {residual.size(0), residual.size(1)}, "add_rms_norm: x");
  check_shape(weight, {x.size(1)}, "add_rms_norm: weight");
  check_shape(y, {x.size(0), x.size(1)}, "add_rms_norm: y");
  BIMAMBA_CHECK(eps > 0, "add_rms_norm: eps must be positive, got ", eps);
  BIMAMBA_CHECK(y.data() != residual.data() || y.numel() == 0, "add_rms_norm: y must not alias residual");
  detail::add_rms_norm_impl(ctx, residual, x, weight, eps, y);
}

}  // namespace bimamba
