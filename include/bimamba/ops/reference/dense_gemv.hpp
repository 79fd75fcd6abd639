// Reference dense GEMV / small GEMM in double: y[t, v] = sum_d x[t, d] w[v, d] (the tied LM head
// logits = h E^T). x (T, D), w (V, D), y (T, V), row-major and dense; w already widened to double (tests
// convert bf16 storage with bimamba::to_float first).
#pragma once

#include <cstdint>
#include <vector>

#include "../../core/error.hpp"

namespace bimamba::reference {

inline std::vector<double> dense_gemv(const std::vector<double>& x, int64_t T, int64_t D, const std::vector<double>& w,
                                      int64_t V) {
  BIMAMBA_CHECK(int64_t(x.size()) == T * D, "reference::dense_gemv: x has ", x.size(), " values, expected ", T * D);
  BIMAMBA_CHECK(int64_t(w.size()) == V * D, "reference::dense_gemv: w has ", w.size(), " values, expected ", V * D);
  std::vector<double> y(size_t(T * V));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t v = 0; v < V; ++v) {
      double acc = 0;
      for (int64_t d = 0; d < D; ++d) acc += x[size_t(t * D + d)] * w[size_t(v * D + d)];
      y[size_t(t * V + v)] = acc;
    }
  return y;
}

}  // namespace bimamba::reference
