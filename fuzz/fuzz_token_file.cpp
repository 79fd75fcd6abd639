// fuzz_token_file: TokenFile (magic, version, header checksum, width, count against the payload, data
// checksum, every token < vocab), then read_all and range reads.
#include <bimamba/io/token_file.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = bimamba::fuzz::write_input(data, size, "input.tokens");
  bimamba::fuzz::expect_ok_or_error([&] {
    const bimamba::TokenFile file = bimamba::TokenFile::open(path);
    const std::vector<int32_t> all = file.read_all();
    for (int32_t t : all)
      if (t < 0 || t >= file.vocab_size()) throw std::logic_error("TokenFile served a token outside the vocabulary");
    int32_t two[2];
    bimamba::fuzz::expect_ok_or_error([&] { file.read(file.size() - 1, 2, two); });  // past the end: InvalidArgument
  });
  return 0;
}
