// Naive double-precision reference of the training losses (train/losses.hpp), for tests: one row of
// logits at a time, no max subtraction tricks beyond what double needs, obviously correct.
//
//   cross_entropy:  L = (1/n) sum_{rows r with target != ignore} (logsumexp(x_r) - x_r[target_r])
//                   dL/dx_r = (softmax(x_r) - onehot(target_r)) / n,  n = number of counted rows
//   distill:        L = -(1/R) sum_r sum_v softmax(t_r)[v] * log_softmax(x_r)[v],  R = number of rows
//                   dL/dx_r = (softmax(x_r) - softmax(t_r)) / R
// Logits are row-major (rows, V) vectors; grad (same size) is overwritten.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace bimamba::reference {

inline std::vector<double> log_softmax(const double* x, int64_t V) {
  double m = x[0];
  for (int64_t v = 1; v < V; ++v) m = std::max(m, x[v]);
  double z = 0;
  for (int64_t v = 0; v < V; ++v) z += std::exp(x[v] - m);
  const double lse = m + std::log(z);
  std::vector<double> out(static_cast<size_t>(V));
  for (int64_t v = 0; v < V; ++v) out[size_t(v)] = x[v] - lse;
  return out;
}

inline double cross_entropy(const std::vector<double>& logits, const std::vector<int64_t>& targets, int64_t V,
                            int64_t ignore_index, std::vector<double>* grad) {
  const int64_t rows = int64_t(targets.size());
  int64_t n = 0;
  for (int64_t t : targets) n += t != ignore_index;
  if (grad) grad->assign(logits.size(), 0.0);
  double loss = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t target = targets[size_t(r)];
    if (target == ignore_index) continue;
    const std::vector<double> ls = log_softmax(logits.data() + r * V, V);
    loss -= ls[size_t(target)];
    if (grad)
      for (int64_t v = 0; v < V; ++v)
        (*grad)[size_t(r * V + v)] = (std::exp(ls[size_t(v)]) - (v == target ? 1.0 : 0.0)) / double(n);
  }
  return n == 0 ? 0.0 : loss / double(n);
}

inline double distill(const std::vector<double>& logits, const std::vector<double>& teacher, int64_t V,
                      std::vector<double>* grad) {
  const int64_t rows = int64_t(logits.size()) / V;
  if (grad) grad->assign(logits.size(), 0.0);
  double loss = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<double> ls = log_softmax(logits.data() + r * V, V);
    const std::vector<double> lt = log_softmax(teacher.data() + r * V, V);
    for (int64_t v = 0; v < V; ++v) {
      const double p = std::exp(lt[size_t(v)]);
      loss -= p * ls[size_t(v)];
      if (grad) (*grad)[size_t(r * V + v)] = (std::exp(ls[size_t(v)]) - p) / double(rows);
    }
  }
  return loss / double(rows);
}

}  // namespace bimamba::reference
