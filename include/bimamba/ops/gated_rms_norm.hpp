// Gated group-wise RMSNorm of the Mamba-2 mixer output (norm_before_gate = False):
//   g[t, :]   = y[t, :] * silu(z[t, :])
//   out[t, j] = g[t, j] / sqrt(mean_{k in group(j)} g[t, k]^2 + eps) * weight[j]
// where the E channels are split into `groups` contiguous groups of E / groups channels.
//   y, z, out (T, E) (z may be a strided slice of in_proj's output); weight (E); E % groups == 0.
// out may alias y.
#pragma once

#include <cstdint>

#include "common.hpp"
#include "host/gated_rms_norm.hpp"
#if defined(__CUDACC__) && __has_include("cuda/gated_rms_norm.cuh")
#include "cuda/gated_rms_norm.cuh"
#endif

namespace bimamba {

template <class Backend>
void gated_rms_norm(Context<Backend>& ctx, View<const float, 2, Backend> y, View<const float, 2, Backend> z,
                    View<const float, 1, Backend> weight, int64_t groups, float eps, View<float, 2, Backend> out) {
  check_shape(z, {y.size(0), y.size(1)}, "gated_rms_norm: z");
  check_shape(weight, {y.size(1)}, "gated_rms_norm: weight");
  check_shape(out, {y.size(0), y.size(1)}, "gated_rms_norm: out");
  BIMAMBA_CHECK(groups > 0 && y.size(1) % groups == 0, "gated_rms_norm: ", y.size(1),
                " channels do not split into ", groups, " groups");
  BIMAMBA_CHECK(eps > 0, "gated_rms_norm: eps must be positive, got ", eps);
  detail::gated_rms_norm_impl(ctx, y, z, weight, groups, eps, out);
}

}  // namespace bimamba
