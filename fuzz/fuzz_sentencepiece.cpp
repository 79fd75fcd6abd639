// fuzz_sentencepiece: the input parsed as a SentencePiece ModelProto (protobuf reader, pieces, trainer and
// normalizer specs) and built into a SentencePieceTokenizer; a tokenizer that loads is then used on
// samples and on the input's own bytes (fuzz_tokenizer_use.hpp).
#include <bimamba/io/sentencepiece_tokenizer.hpp>

#include "fuzz_support.hpp"
#include "fuzz_tokenizer_use.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bimamba::fuzz::expect_ok_or_error([&] {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    const bimamba::SentencePieceTokenizer tokenizer(bimamba::parse_sentencepiece_model(bytes, "tokenizer.model"),
                                                    "tokenizer.model");
    bimamba::fuzz::use_tokenizer(tokenizer, data, size);
  });
  return 0;
}
