// Helpers of the op tests: random inputs on a backend, conversions to double for the references.
#pragma once

#include <test_support.hpp>

#include <vector>

namespace bimamba::test {

// A tensor on Backend holding the given host values.
template <class Backend, int Rank>
Tensor<float, Rank, Backend> on(const std::vector<float>& values, const Extents<Rank>& shape) {
  return to<Backend>(tensor_from<float, Rank>(values, shape));
}

inline std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

}  // namespace bimamba::test
