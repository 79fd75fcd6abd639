// Reference embedding gather in double: out[t, :] = weight[ids[t], :] for T tokens; throws on a bad id.
#pragma once

#include <cstdint>
#include <vector>

#include "../../core/error.hpp"

namespace bimamba::reference {

inline std::vector<double> embedding(const std::vector<int32_t>& ids, const std::vector<double>& weight, int64_t V,
                                     int64_t D) {
  std::vector<double> out(ids.size() * size_t(D));
  for (size_t t = 0; t < ids.size(); ++t) {
    BIMAMBA_CHECK(ids[t] >= 0 && ids[t] < V, "reference::embedding: token id ", ids[t], " outside [0, ", V, ")");
    for (int64_t j = 0; j < D; ++j) out[t * size_t(D) + size_t(j)] = weight[size_t(ids[t] * D + j)];
  }
  return out;
}

}  // namespace bimamba::reference
