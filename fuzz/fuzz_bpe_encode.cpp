// fuzz_bpe_encode: arbitrary bytes through the GPT-NeoX tokenizer.json (byte-level BPE): pre-tokenizer,
// added tokens, merges, decode.
#include "fuzz_encode.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)bimamba::fuzz::fuzz_tokenizer("tokenizers/gpt-neox-20b.json");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return bimamba::fuzz::encode_one_input("tokenizers/gpt-neox-20b.json", data, size);
}
