// fuzz_sentencepiece_encode: arbitrary bytes through the LLaMA-2 SentencePiece model (BPE with byte
// fallback): normalisation, merges, byte pieces, decode.
#include "fuzz_encode.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)bimamba::fuzz::fuzz_tokenizer("tokenizers/llama-2.model");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return bimamba::fuzz::encode_one_input("tokenizers/llama-2.model", data, size);
}
