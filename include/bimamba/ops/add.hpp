// add: y[t, j] += x[t, j] (the residual connection). x, y (T, D), any strides.
#pragma once

#include "common.hpp"
#include "host/add.hpp"
#if defined(__CUDACC__) && __has_include("cuda/add.cuh")
#include "cuda/add.cuh"
#endif

namespace bimamba {

template <class Backend>
void add(Context<Backend>& ctx, View<const float, 2, Backend> x, View<float, 2, Backend> y) {
  check_shape(y, {x.size(0), x.size(1)}, "add: y");
  detail::add_impl(ctx, x, y);
}

}  // namespace bimamba
