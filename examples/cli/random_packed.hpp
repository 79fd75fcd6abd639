// Random packed weights of a preset shape, generated tensor by tensor straight into the packed format (no
// full-precision model is built, so a 2.7B model needs only its packed size in memory).
//
// The values follow model/init.hpp (init_random) in distribution, not bit for bit:
//   signs          fair coin flips (the signs of a symmetric latent init), splitmix64 from the seed
//   wscale alpha   1 / (2 sqrt(in)): mean |W| of W ~ uniform(-1/sqrt(in), 1/sqrt(in))
//   wbias  beta    normal(0, 1 / sqrt(3 in out)): the column mean of `out` such weights
//   embedding      normal(0, 0.02); norms and D 1; A_log log uniform[1, 16]; dt_bias softplus^-1(dt),
//                  dt log-uniform in [1e-3, 0.1]; conv1d uniform(-1/sqrt(K), 1/sqrt(K)); other weights
//                  uniform(-1/sqrt(in), 1/sqrt(in)); biases 0.
#pragma once

#include <bimamba/io/packed_checkpoint.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace bimamba::cli {

namespace detail {
inline uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

inline bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Random signs packed in words of type Word, padding bits 0.
template <class Word>
HostTensor random_signs(const std::string& name, int64_t rows, int64_t cols, uint64_t& state) {
  const int64_t wpr = words_for<Word>(cols);
  std::vector<Word> words(size_t(rows * wpr));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t k = 0; k < wpr; ++k) {
      Word w = Word(splitmix64(state));
      const int64_t valid = std::min<int64_t>(kWordBits<Word>, cols - k * kWordBits<Word>);
      if (valid < kWordBits<Word>) w &= Word((uint64_t(1) << valid) - 1);
      words[size_t(i * wpr + k)] = w;
    }
  return HostTensor::from_values<Word>(name, {rows, wpr}, words);
}
}  // namespace detail

inline std::vector<float> random_float_values(const TensorSpec& spec, const ModelConfig& c, std::mt19937_64& rng) {
  using detail::has_suffix;
  const std::string& name = spec.name;
  std::vector<float> v(size_t(spec.numel()));
  auto uniform = [&](double bound) {
    std::uniform_real_distribution<float> u(float(-bound), float(bound));
    for (float& x : v) x = u(rng);
  };
  if (spec.kind == ParamKind::Embedding) {
    std::normal_distribution<float> normal(0.0f, 0.02f);
    for (float& x : v) x = normal(rng);
  } else if (has_suffix(name, ".wscale")) {
    std::fill(v.begin(), v.end(), float(0.5 / std::sqrt(double(spec.shape[1]))));
  } else if (has_suffix(name, ".wbias")) {
    const int64_t out = has_suffix(name, "in_proj.wbias") ? c.in_proj_rows() : c.d_model;
    std::normal_distribution<float> normal(0.0f, float(1.0 / std::sqrt(3.0 * double(spec.shape[1]) * double(out))));
    for (float& x : v) x = normal(rng);
  } else if (has_suffix(name, "norm.weight") || has_suffix(name, "norm_f.weight") || has_suffix(name, ".D")) {
    std::fill(v.begin(), v.end(), 1.0f);
  } else if (has_suffix(name, ".A_log")) {
    std::uniform_real_distribution<double> u(1.0, 16.0);
    for (float& x : v) x = float(std::log(u(rng)));
  } else if (has_suffix(name, ".dt_bias") || has_suffix(name, "dt_proj.bias")) {
    std::uniform_real_distribution<double> u(std::log(1e-3), std::log(0.1));
    for (float& x : v) {
      const double dt = std::exp(u(rng));
      x = float(dt + std::log(-std::expm1(-dt)));
    }
  } else if (has_suffix(name, "conv1d.weight") || has_suffix(name, "conv1d.bias")) {
    uniform(1.0 / std::sqrt(double(c.d_conv)));
  } else if (has_suffix(name, ".bias")) {
    std::fill(v.begin(), v.end(), 0.0f);
  } else {
    uniform(1.0 / std::sqrt(double(spec.shape.back())));
  }
  return v;
}

// The packed tensors of a random model of this config (any config; a full-precision one has no signs).
inline std::vector<HostTensor> random_packed_tensors(const ModelConfig& c, uint64_t seed, const PackedOptions& opts,
                                                     const std::function<void(int64_t, int64_t)>& progress = {}) {
  opts.validate();
  std::mt19937_64 rng(seed);
  uint64_t bit_state = seed ^ 0x5eed5eed5eed5eedull;
  const std::vector<TensorSpec> specs = model_tensor_specs(c);
  std::vector<HostTensor> out;
  for (const TensorSpec& s : specs) {
    const std::string signs = bimamba::detail::signs_name(s.name);
    if (s.kind == ParamKind::Binary)
      out.push_back(opts.sign_word == DType::U32 ? detail::random_signs<uint32_t>(signs, s.shape[0], s.shape[1], bit_state)
                                                 : detail::random_signs<uint8_t>(signs, s.shape[0], s.shape[1], bit_state));
    else
      out.push_back(bimamba::detail::float_tensor_as(s.name, s.shape, random_float_values(s, c, rng),
                                                     packed_float_dtype(s.name, s.kind, opts)));
    if (progress) progress(int64_t(out.size()), int64_t(specs.size()));
  }
  return out;
}

}  // namespace bimamba::cli
