// Shared pieces of the op entry points.
//
// View<T, Rank, Backend> is TensorView<T, Rank, Backend> with Backend in a non-deduced context: an op
// template deduces Backend from its Context<Backend>& alone, so callers may pass Tensors, views of T where
// views of const T are expected, and views of any strides without spelling the template arguments.
//
// Optional tensor arguments are views that may be empty (default-constructed, null data): present(v) says
// whether one was given. Activation names the pointwise function some ops fuse into their output.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

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

// Host threading grain: the fewest items a thread of ctx.parallel_for should get when one item costs
// `cost` elementary operations, so that a thread gets at least kParallelWork of them (about 10 us): tiny
// ops (decode steps, test shapes) then run on the calling thread instead of paying for a parallel region.
inline constexpr int64_t kParallelWork = int64_t(1) << 15;
inline int64_t grain(int64_t cost) { return std::max<int64_t>(1, kParallelWork / std::max<int64_t>(1, cost)); }

// silu(x) = x * sigmoid(x) = x / (1 + exp(-x)).
BIMAMBA_HOST_DEVICE inline float silu(float x) { return x / (1.0f + expf(-x)); }

// softplus(x) = log(1 + exp(x)), and x itself above 20 (where the two agree in float; torch's threshold).
BIMAMBA_HOST_DEVICE inline float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

BIMAMBA_HOST_DEVICE inline float activate(Activation a, float x) { return a == Activation::Silu ? silu(x) : x; }

}  // namespace bimamba
