// Shared pieces of the Host backward passes: how a gradient output honours its GradientMode.
//   Overwrite:  g  = dL/dx        Accumulate: g += dL/dx
// Scatter-style backward passes (a sum over tokens or over uses) start by calling begin_grad(g, mode), which
// zeroes g under Overwrite, then only add to it. Empty (absent) outputs are skipped.
#pragma once

#include <cstdint>

#include "../../tensor/tensor_view.hpp"
#include "../../train/gradient_mode.hpp"
#include "../common.hpp"

namespace bimamba::detail {

template <int Rank>
void begin_grad(TensorView<float, Rank, Host> g, GradientMode mode) {
  if (mode == GradientMode::Accumulate || !present(g)) return;
  if constexpr (Rank == 1) {
    for (int64_t i = 0; i < g.size(0); ++i) g(i) = 0.0f;
  } else {
    for (int64_t i = 0; i < g.size(0); ++i) begin_grad<Rank - 1>(g[i], mode);
  }
}

// g (= or +=) v.
inline void put_grad(float& g, double v, GradientMode mode) {
  g = mode == GradientMode::Overwrite ? float(v) : float(double(g) + v);
}

// sigmoid and the derivative of silu: silu'(x) = s (1 + x (1 - s)), s = sigmoid(x).
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double silu_grad(double x) {
  const double s = sigmoid(x);
  return s * (1.0 + x * (1.0 - s));
}

}  // namespace bimamba::detail
