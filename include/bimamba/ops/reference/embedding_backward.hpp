// Reference embedding backward in double: dweight[v] = sum of dout over the positions holding token v.
// ids (T) in [0, V), dout (T, D); returns dweight (V, D).
#pragma once

#include <cstdint>
#include <vector>

namespace bimamba::reference {

inline std::vector<double> embedding_backward(const std::vector<int32_t>& ids, const std::vector<double>& dout,
                                              int64_t V, int64_t D) {
  std::vector<double> dw(size_t(V * D));
  for (size_t t = 0; t < ids.size(); ++t)
    for (int64_t j = 0; j < D; ++j) dw[size_t(ids[t] * D + j)] += dout[t * size_t(D) + size_t(j)];
  return dw;
}

}  // namespace bimamba::reference
