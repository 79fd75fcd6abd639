// init_random<Backend>(cfg, seed): a LanguageModel with the random initialisation of mamba_ssm
// (std::mt19937_64 seeded with `seed`, parameters filled in declaration order, so the same seed gives the same
// model on every machine and backend):
//   embeddings, lm_head          normal(0, 0.02)
//   in_proj / out_proj / x_proj  uniform(-1/sqrt(in), 1/sqrt(in))        (PyTorch Linear default)
//   conv1d weight and bias       uniform(-1/sqrt(K), 1/sqrt(K))          (PyTorch Conv1d default, fan_in = K)
//   dt_bias, dt_proj.bias        softplus^-1(dt), dt = exp(uniform(log dt_min, log dt_max)) >= dt_floor
//   dt_proj.weight               uniform(-dt_rank^-1/2, dt_rank^-1/2)
//   A_log                        Mamba-2: log(uniform[a_min, a_max]) per head; Mamba-1: log(n + 1) per state n
//   D, norm weights              1;  projection biases 0
//   Bi-Mamba wscale / wbias      FBI init from the latent weight: beta_j = mean_i W[i, j], alpha_j = mean_i |W[i, j] - beta_j|
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>

#include "language_model.hpp"

namespace bimamba {

struct InitOptions {
  double embedding_std = 0.02;
  double dt_min = 1e-3, dt_max = 0.1, dt_floor = 1e-4;
  double a_min = 1.0, a_max = 16.0;
};

namespace detail {

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// softplus^-1 of a log-uniform time step.
inline float random_dt_bias(std::mt19937_64& rng, const InitOptions& o) {
  std::uniform_real_distribution<double> u(std::log(o.dt_min), std::log(o.dt_max));
  const double dt = std::max(std::exp(u(rng)), o.dt_floor);
  return float(dt + std::log(-std::expm1(-dt)));
}

inline void init_parameter(const ParamStore<Host>::Entry& e, float* p, ParamStore<Host>& store, std::mt19937_64& rng,
                           const InitOptions& o) {
  const int64_t n = e.numel;
  auto uniform = [&](double bound) {
    std::uniform_real_distribution<float> u(float(-bound), float(bound));
    for (int64_t i = 0; i < n; ++i) p[i] = u(rng);
  };
  auto fill = [&](float v) { std::fill(p, p + n, v); };
  const std::string& name = e.name;
  if (ends_with(name, "embeddings.weight") || name == "lm_head.weight") {
    std::normal_distribution<float> normal(0.0f, float(o.embedding_std));
    for (int64_t i = 0; i < n; ++i) p[i] = normal(rng);
  } else if (ends_with(name, "norm.weight") || ends_with(name, "norm_f.weight") || ends_with(name, ".D")) {
    fill(1.0f);
  } else if (ends_with(name, ".dt_bias") || ends_with(name, "dt_proj.bias")) {
    for (int64_t i = 0; i < n; ++i) p[i] = random_dt_bias(rng, o);
  } else if (ends_with(name, ".A_log")) {
    if (e.shape.size() == 1) {
      std::uniform_real_distribution<double> u(o.a_min, o.a_max);
      for (int64_t i = 0; i < n; ++i) p[i] = float(std::log(u(rng)));
    } else {
      for (int64_t i = 0; i < n; ++i) p[i] = float(std::log(double(i % e.shape[1] + 1)));
    }
  } else if (ends_with(name, "conv1d.weight") || ends_with(name, "conv1d.bias")) {
    const std::string weight = name.substr(0, name.rfind('.')) + ".weight";
    uniform(1.0 / std::sqrt(double(store.entries()[size_t(store.id(weight))].shape.back())));
  } else if (ends_with(name, "dt_proj.weight")) {
    uniform(1.0 / std::sqrt(double(e.shape[1])));
  } else if (ends_with(name, ".wscale") || ends_with(name, ".wbias")) {
    // FBI init from the latent weight declared just before (out, in).
    const auto& w = store.entries()[size_t(store.id(name.substr(0, name.rfind('.')) + ".weight"))];
    const float* W = store.params().data() + w.offset;
    const int64_t out = w.shape[0], in = w.shape[1];
    for (int64_t j = 0; j < in; ++j) {
      double beta = 0;
      for (int64_t i = 0; i < out; ++i) beta += W[i * in + j];
      beta /= double(out);
      double alpha = 0;
      for (int64_t i = 0; i < out; ++i) alpha += std::abs(W[i * in + j] - beta);
      alpha /= double(out);
      p[j] = float(ends_with(name, ".wscale") ? alpha : beta);
    }
  } else if (ends_with(name, ".weight")) {
    uniform(1.0 / std::sqrt(double(e.shape[1])));
  } else if (ends_with(name, ".bias")) {
    fill(0.0f);
  } else {
    BIMAMBA_FAIL("init_random: no initialisation rule for parameter '", name, "'");
  }
}

}  // namespace detail

template <class Backend = Host>
LanguageModel<Backend> init_random(const ModelConfig& cfg, uint64_t seed, const InitOptions& options = {}) {
  LanguageModel<Host> host(cfg);
  std::mt19937_64 rng(seed);
  auto& store = host.params();
  for (const auto& e : store.entries()) detail::init_parameter(e, store.params().data() + e.offset, store, rng, options);
  if constexpr (is_host_v<Backend>) {
    return host;
  } else {
    LanguageModel<Backend> model(cfg);
    copy(host.params().params(), model.params().params());
    return model;
  }
}

}  // namespace bimamba
