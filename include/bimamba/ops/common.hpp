// Shared pieces of the op entry points.
//
// View<T, Rank, Backend> is TensorView<T, Rank, Backend> with Backend in a non-deduced context: an op
// template deduces Backend from its Context<Backend>& alone, so callers may pass Tensors, views of T where
// views of const T are expected, and views of any strides without spelling the template arguments.
//
// Optional tensor arguments are views that may be empty (default-constructed, null data): present(v) says
// whether one was given. Activation names the pointwise function some ops fuse into their output.
#pragma once

#include <cmath>

#include "../core/config.hpp"
#include "../core/context.hpp"
#include "../tensor/tensor_view.hpp"

namespace bimamba {

namespace detail {
template <class T>
struct NonDeduced {
  using type = T;
};
}  // namespace detail

template <class T, int Rank, class Backend>
using View = TensorView<T, Rank, typename detail::NonDeduced<Backend>::type>;

template <class T, int Rank, class Backend>
BIMAMBA_HOST_DEVICE inline bool present(const TensorView<T, Rank, Backend>& v) {
  return v.data() != nullptr;
}

enum class Activation { None, Silu };

// silu(x) = x * sigmoid(x) = x / (1 + exp(-x)).
BIMAMBA_HOST_DEVICE inline float silu(float x) { return x / (1.0f + expf(-x)); }

// softplus(x) = log(1 + exp(x)), and x itself above 20 (where the two agree in float; torch's threshold).
BIMAMBA_HOST_DEVICE inline float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

BIMAMBA_HOST_DEVICE inline float activate(Activation a, float x) { return a == Activation::Silu ? silu(x) : x; }

}  // namespace bimamba
