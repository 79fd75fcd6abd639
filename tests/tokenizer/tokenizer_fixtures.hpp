// The two real tokenizers of tests/data/tokenizers, each loaded at most once per process (ctest runs every
// test in its own process; a direct run of test_tokenizer shares them).
#pragma once

#include <bimamba/io/tokenizer_loader.hpp>
#include <memory>
#include <string>

#include "test_support.hpp"

namespace bimamba::test {

inline std::string tokenizer_path(const std::string& name) {
  return data_path("tokenizers/" + name + (name == "llama-2" ? ".model" : ".json"));
}

// name: "gpt-neox-20b" or "llama-2".
inline const Tokenizer& shared_tokenizer(const std::string& name) {
  if (name == "llama-2") {
    static const std::unique_ptr<Tokenizer> llama = load_tokenizer(tokenizer_path("llama-2"));
    return *llama;
  }
  static const std::unique_ptr<Tokenizer> neox = load_tokenizer(tokenizer_path("gpt-neox-20b"));
  return *neox;
}

}  // namespace bimamba::test
