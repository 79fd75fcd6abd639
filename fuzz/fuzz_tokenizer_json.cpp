// fuzz_tokenizer_json: the input is loaded as a tokenizer (tokenizer_from_bytes: tokenizer.json when it
// starts with '{'); a tokenizer that loads then encodes fixed samples and the input's last 256 bytes as
// text, decodes the ids back, and decodes ids taken from the input (in and out of range).
#include <bimamba/io/tokenizer_loader.hpp>

#include "fuzz_support.hpp"
#include "fuzz_tokenizer_use.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bimamba::fuzz::expect_ok_or_error([&] {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    const auto tokenizer = bimamba::tokenizer_from_bytes(bytes, "tokenizer.json");
    bimamba::fuzz::use_tokenizer(*tokenizer, data, size);
  });
  return 0;
}
