// Host y = -exp(x) (see ops/neg_exp.hpp).
#pragma once

#include <cmath>
#include <cstdint>

#include "../../core/context.hpp"
#include "../../tensor/tensor_view.hpp"

namespace bimamba::detail {

inline void neg_exp_impl(Context<Host>&, TensorView<const float, 1, Host> x, TensorView<float, 1, Host> y) {
  for (int64_t i = 0; i < x.size(0); ++i) y(i) = -std::exp(x(i));
}

}  // namespace bimamba::detail
