// Host time-step activation backward (see ops/dt_softplus_backward.hpp): one pass over (T, H) on the
// calling thread (T H is small next to the GEMMs), dbias summed in double in token order.
#pragma once

#include <cstdint>
#include <vector>

#include "../../core/context.hpp"
#include "backward_common.hpp"

namespace bimamba::detail {

inline void dt_softplus_backward_impl(Context<Host>&, TensorView<const float, 2, Host> dt,
                                      TensorView<const float, 1, Host> bias, float lo, float hi,
                                      TensorView<const float, 2, Host> dout, TensorView<float, 2, Host> ddt,
                                      TensorView<float, 1, Host> dbias, GradientModes modes) {
  const int64_t T = dt.size(0), H = dt.size(1);
  std::vector<double> sums(size_t(H), 0.0);  // (H)
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const float u = dt(t, h) + (present(bias) ? bias(h) : 0.0f);
      const float sp = softplus(u);
      const double d = (sp < lo || sp > hi) ? 0.0 : u > 20.0f ? 1.0 : sigmoid(u);
      const double g = double(dout(t, h)) * d;
      if (present(ddt)) put_grad(ddt(t, h), g, modes.inputs);
      sums[size_t(h)] += g;
    }
  if (present(dbias))
    for (int64_t h = 0; h < H; ++h) put_grad(dbias(h), sums[size_t(h)], modes.params);
}

}  // namespace bimamba::detail
