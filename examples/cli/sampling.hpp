// Choosing the next token from a logits row.
//   greedy:   argmax (the lowest id among equal maxima, as torch.argmax)
//   sampling: p ∝ exp(logit / temperature), restricted to the top_k most likely tokens (0: all), then to the
//             smallest prefix of them (by decreasing p) whose mass reaches top_p (1: all), renormalised, drawn
//             with the given generator.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "args.hpp"

namespace bimamba::cli {

struct SamplingOptions {
  bool greedy = true;
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;

  void validate() const {
    if (!(temperature > 0)) throw UsageError("--temperature must be > 0");
    if (top_k < 0) throw UsageError("--top-k must be >= 0");
    if (!(top_p > 0 && top_p <= 1)) throw UsageError("--top-p must be in (0, 1]");
  }
};

inline int32_t choose_token(const float* logits, int64_t V, const SamplingOptions& o, std::mt19937_64& rng) {
  if (o.greedy) return int32_t(std::max_element(logits, logits + V) - logits);
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  if (o.top_k > 0 && o.top_k < V) order.resize(static_cast<size_t>(o.top_k));
  std::vector<double> p(order.size());
  const double max = logits[order[0]];
  double sum = 0;
  for (size_t i = 0; i < order.size(); ++i) sum += p[i] = std::exp((double(logits[order[i]]) - max) / o.temperature);
  double mass = 0;
  size_t keep = order.size();
  for (size_t i = 0; i < order.size(); ++i) {
    mass += p[i] / sum;
    if (mass >= o.top_p) {
      keep = i + 1;
      break;
    }
  }
  std::discrete_distribution<size_t> pick(p.begin(), p.begin() + std::ptrdiff_t(keep));
  return order[pick(rng)];
}

}  // namespace bimamba::cli
