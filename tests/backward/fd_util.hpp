// Helpers of the backward tests: central finite differences in double, random inputs, float <-> double.
#pragma once

#include <test_support.hpp>

#include <bimamba/train/gradient_mode.hpp>

#include <algorithm>
#include <functional>
#include <vector>

namespace bimamba::test {

// dL/dv[i] ~ (L(v + h e_i) - L(v - h e_i)) / 2h for every i; v is restored.
inline std::vector<double> numeric_grad(std::vector<double>& v, const std::function<double()>& loss, double h = 1e-6) {
  std::vector<double> g(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const double keep = v[i];
    v[i] = keep + h;
    const double up = loss();
    v[i] = keep - h;
    const double down = loss();
    v[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Random values that are exactly representable in float (so float and double paths see the same inputs).
inline std::vector<double> random_doubles(size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  const std::vector<float> f = random_floats(n, seed, float(lo), float(hi));
  return std::vector<double>(f.begin(), f.end());
}

template <int Rank>
Tensor<float, Rank, Host> to_float_tensor(const std::vector<double>& v, const Extents<Rank>& shape) {
  return tensor_from<float, Rank>(std::vector<float>(v.begin(), v.end()), shape);
}

template <class T, int Rank>
std::vector<double> to_doubles(const Tensor<T, Rank, Host>& t) {
  const auto v = to_vector(t);
  return std::vector<double>(v.begin(), v.end());
}

// Gradient outputs that start at 1, to tell the modes apart: after the op, an output holds the reference under
// Overwrite and 1 + the reference under Accumulate.
template <int Rank>
Tensor<float, Rank, Host> ones_tensor(const Extents<Rank>& shape) {
  Tensor<float, Rank, Host> t(shape);
  std::fill(t.data(), t.data() + t.numel(), 1.0f);
  return t;
}
inline std::vector<double> expected_after(GradientMode mode, std::vector<double> ref) {
  if (mode == GradientMode::Accumulate)
    for (double& v : ref) v += 1.0;
  return ref;
}
// Both splits of a backward op's modes (train/gradient_mode.hpp): each output class must follow its own.
constexpr GradientModes kSplitModes[] = {{GradientMode::Overwrite, GradientMode::Accumulate},
                                         {GradientMode::Accumulate, GradientMode::Overwrite}};

// Central differences with h = 1e-6 in double have truncation error O(h^2 f''') ~ 1e-12 and rounding error
// ~ 1e-16 |L| / h ~ 1e-10 relative: 1e-6 relative L2 leaves a wide margin and still catches any wrong term.
constexpr double kFdTol = 1e-6;
// Host (float32 inputs, float32 outputs, sums in double) against the double reference on the same inputs:
// a few float roundings per element, relative ~1e-7; 1e-5 leaves room for cancellation in small sums.
constexpr double kHostTol = 1e-5;

}  // namespace bimamba::test
