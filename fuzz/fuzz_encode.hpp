// One fuzz target body for encoding arbitrary bytes with a real tokenizer (loaded once from the test data,
// BIMAMBA_FUZZ_DATA_DIR, set by fuzz/CMakeLists.txt): encode the input as text, decode the ids, and decode
// ids read from the input.
#pragma once

#include <bimamba/io/tokenizer_loader.hpp>
#include <memory>
#include <string>

#include "fuzz_support.hpp"
#include "fuzz_tokenizer_use.hpp"

namespace bimamba::fuzz {

// The tokenizer, loaded on the first call; each target calls it from LLVMFuzzerInitialize so that the load
// (seconds for the 2 MB tokenizer.json under ASan) does not count against the first input's timeout.
inline const Tokenizer& fuzz_tokenizer(const char* tokenizer_file) {
  static const std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(std::string(BIMAMBA_FUZZ_DATA_DIR) + "/" + tokenizer_file);
  return *tokenizer;
}

inline int encode_one_input(const char* tokenizer_file, const uint8_t* data, size_t size) {
  const Tokenizer* tokenizer = &fuzz_tokenizer(tokenizer_file);
  expect_ok_or_error([&] {
    const std::vector<int32_t> ids = tokenizer->encode(std::string_view(reinterpret_cast<const char*>(data), size));
    for (int32_t id : ids)
      if (id < 0 || id >= tokenizer->vocab_size()) throw std::logic_error("encode produced an id outside the vocabulary");
    (void)tokenizer->decode(ids);
  });
  use_tokenizer(*tokenizer, data, size);
  return 0;
}

}  // namespace bimamba::fuzz
