// Sampler: picks the next token from a row of logits (V).
//   temperature <= 0: greedy, argmax (the lowest id among equal maxima, as torch.argmax).
//   otherwise: p = softmax(logits / temperature), restricted to the top_k most likely ids (top_k > 0) and
//   then to the smallest set of most likely ids whose probability reaches top_p (top_p < 1; never empty),
//   renormalized, and sampled with a std::mt19937_64 seeded with `seed`. Equal probabilities are ordered by
//   id, so a seed gives the same tokens on every platform with the same logits.
// Non-finite logits throw NumericError naming the id.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "../core/error.hpp"

namespace bimamba {

struct SamplingOptions {
  float temperature = 0.0f;  // <= 0: greedy
  int64_t top_k = 0;         // 0: no limit
  float top_p = 1.0f;        // 1: no limit
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options = {}) : options_(options), rng_(options.seed) {
    BIMAMBA_CHECK(options.top_k >= 0, "Sampler: top_k must be >= 0, got ", options.top_k);
    BIMAMBA_CHECK(options.top_p > 0.0f && options.top_p <= 1.0f, "Sampler: top_p must be in (0, 1], got ",
                  options.top_p);
  }
  Sampler(const SamplingOptions& options, std::seed_seq& seed) : Sampler(options) { rng_.seed(seed); }

  int32_t operator()(const float* logits, int64_t V) {
    BIMAMBA_CHECK(V > 0, "Sampler: empty logits");
    for (int64_t v = 0; v < V; ++v)
      if (!std::isfinite(logits[v])) BIMAMBA_THROW(NumericError, "Sampler: logit of token ", v, " is ", logits[v]);
    if (options_.temperature <= 0.0f) return int32_t(std::max_element(logits, logits + V) - logits);

    order_.resize(size_t(V));
    std::iota(order_.begin(), order_.end(), 0);
    std::stable_sort(order_.begin(), order_.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    int64_t keep = options_.top_k > 0 ? std::min<int64_t>(options_.top_k, V) : V;
    const double inv_t = 1.0 / double(options_.temperature), top = double(logits[order_[0]]);
    probs_.resize(size_t(keep));
    double total = 0;
    for (int64_t i = 0; i < keep; ++i) total += probs_[size_t(i)] = std::exp((double(logits[order_[size_t(i)]]) - top) * inv_t);
    if (options_.top_p < 1.0f) {
      double cumulative = 0;
      int64_t n = 0;
      while (n < keep && cumulative < double(options_.top_p) * total) cumulative += probs_[size_t(n++)];
      keep = std::max<int64_t>(1, n);
      total = std::accumulate(probs_.begin(), probs_.begin() + keep, 0.0);
    }
    const double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
    double cumulative = 0;
    for (int64_t i = 0; i < keep; ++i) {
      cumulative += probs_[size_t(i)];
      if (r < cumulative) return order_[size_t(i)];
    }
    return order_[size_t(keep - 1)];
  }

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::vector<int32_t> order_;
  std::vector<double> probs_;
};

}  // namespace bimamba
