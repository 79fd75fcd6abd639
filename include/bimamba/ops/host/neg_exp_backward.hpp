// Host backward of y = -exp(x) (see ops/neg_exp_backward.hpp): one pass on the calling thread.
#pragma once

#include <cstdint>

#include "../../core/context.hpp"
#include "backward_common.hpp"

namespace bimamba::detail {

inline void neg_exp_backward_impl(Context<Host>&, TensorView<const float, 1, Host> y, TensorView<const float, 1, Host> dy,
                                  TensorView<float, 1, Host> dx, GradientMode mode) {
  for (int64_t i = 0; i < y.size(0); ++i) put_grad(dx(i), double(dy(i)) * y(i), mode);
}

}  // namespace bimamba::detail
