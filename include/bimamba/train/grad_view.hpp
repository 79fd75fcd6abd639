// grad_of(store, param): the gradient view of a parameter view. The ParamStore lays its params and grads out
// alike, so a view into the params buffer maps to the view at the same offset, shape and strides in the
// grads buffer; a module's parameter accessors (weight(), bias(), dt_bias(), ...) thus name their gradient
// without a second set of accessors. An empty view maps to an empty view; a view outside the store throws.
#pragma once

#include <cstdint>

#include "../ops/common.hpp"
#include "param_store.hpp"

namespace bimamba {

template <int Rank, class Backend>
TensorView<float, Rank, Backend> grad_of(ParamStore<Backend>& store, TensorView<float, Rank, Backend> param) {
  if (!present(param)) return {};
  const float* base = store.params().data();
  const int64_t offset = param.data() - base;
  BIMAMBA_CHECK(offset >= 0 && offset < store.flat_size(), "grad_of: the view is not a parameter of this store");
  return {store.grads().data() + offset, param.shape(), param.strides()};
}

}  // namespace bimamba
