// Reference backward of out = clamp(softplus(dt + bias), lo, hi) in double (math in
// ops/dt_softplus_backward.hpp): ddt (T, H) and dbias (H), zero where the clamp is active.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace bimamba::reference {

struct DtSoftplusGrads {
  std::vector<double> ddt, dbias;  // (T, H), (H)
};

inline DtSoftplusGrads dt_softplus_backward(const std::vector<double>& dt, const std::vector<double>& bias,
                                            const std::vector<double>& dout, int64_t T, int64_t H, double lo, double hi) {
  DtSoftplusGrads g{std::vector<double>(size_t(T * H)), std::vector<double>(size_t(H))};
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const double u = dt[size_t(t * H + h)] + bias[size_t(h)], sp = std::log1p(std::exp(u));
      const double d = (sp < lo || sp > hi) ? 0.0 : dout[size_t(t * H + h)] / (1.0 + std::exp(-u));
      g.ddt[size_t(t * H + h)] = d;
      g.dbias[size_t(h)] += d;
    }
  return g;
}

}  // namespace bimamba::reference
