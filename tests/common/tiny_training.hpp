// A training setup small enough for unit tests on both backends: a 2-layer Mamba-2 (D 16, N 8, P 8, vocabulary
// kTinyVocab) and a token file with structure to learn (a noisy cycle through the vocabulary).
#pragma once

#include <bimamba/model/config.hpp>
#include <bimamba/io/token_file.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace bimamba::test {

inline constexpr int64_t kTinyVocab = 64;

inline ModelConfig tiny_training_config(bool binary) {
  ModelConfig c;
  c.architecture = Architecture::Mamba2;
  c.binary = binary;
  c.d_model = 16;
  c.n_layer = 2;
  c.vocab_size = kTinyVocab;
  c.d_state = 8;
  c.headdim = 8;
  c.chunk_size = 8;
  return c;
}

// 4000 tokens: t -> t + 1 (mod V), with a jump of up to 4 more one time in eight (seeded, the same on every run).
inline void write_cycle_corpus(const std::string& path) {
  std::mt19937_64 rng(7);
  std::vector<int32_t> tokens(4000);
  int32_t t = 0;
  for (auto& x : tokens) {
    t = int32_t((t + 1 + (rng() % 8 == 0 ? rng() % 5 : 0)) % kTinyVocab);
    x = t;
  }
  write_token_file(path, tokens, kTinyVocab);
}

}  // namespace bimamba::test
