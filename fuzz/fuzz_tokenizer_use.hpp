// Exercises a loaded tokenizer with bytes from the fuzzer: encode of sample texts and of arbitrary bytes
// (the input's tail), decode of the result, decode of arbitrary ids, token text / bytes lookups. Errors
// must be bimamba::Error (an out-of-range id is InvalidArgument).
#pragma once

#include <bimamba/io/tokenizer.hpp>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_support.hpp"

namespace bimamba::fuzz {

inline void use_tokenizer(const Tokenizer& tok, const uint8_t* data, size_t size) {
  const size_t tail = size < 256 ? size : 256;
  const std::string texts[] = {"Hello world", " the  quick\tbrown\n\nfox 123 ", "\xe2\x96\x81x\xc3\xa9\xf0\x9f\x98\x80",
                               "\xff\xfe\x80 invalid", std::string(reinterpret_cast<const char*>(data + size - tail), tail)};
  for (const std::string& text : texts)
    expect_ok_or_error([&] {
      const std::vector<int32_t> ids = tok.encode(text);
      (void)tok.decode(ids);
    });
  std::vector<int32_t> ids;
  for (size_t i = 0; i + 4 <= size && ids.size() < 64; i += 4) {
    int32_t id = 0;
    std::memcpy(&id, data + i, 4);
    ids.push_back(id % (tok.vocab_size() + 8));  // mostly in range, some past the end, negatives too
  }
  expect_ok_or_error([&] { (void)tok.decode(ids); });
  for (int32_t id : ids) {
    expect_ok_or_error([&] { (void)tok.token_text(id); });
    expect_ok_or_error([&] { (void)tok.token_bytes(id); });
  }
}

}  // namespace bimamba::fuzz
