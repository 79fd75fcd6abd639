// The inputs under tests/data/fuzz/<target>/ (seeds and regression inputs of the fuzz targets, fuzz/run.sh):
// the small SentencePiece seed (fuzz/make_sentencepiece_seed.py) is a valid model that round-trips text, so
// fuzz_sentencepiece starts from a model that loads; every file there either loads and encodes or is
// refused with a bimamba::Error (a regression input that crashed once must keep doing neither).
#include <gtest/gtest.h>

#include <bimamba/io/sentencepiece_tokenizer.hpp>
#include <filesystem>
#include <string>
#include <vector>

namespace bimamba {
namespace {

const std::string kDir = std::string(BIMAMBA_TEST_DATA_DIR) + "/fuzz/sentencepiece";

TEST(FuzzInputs, SmallSentencePieceSeedIsAValidModel) {
  const auto tokenizer = load_sentencepiece_tokenizer(kDir + "/small-bpe.model");
  // 3 specials + 256 byte pieces + 141 normal pieces + the space symbol (fuzz/make_sentencepiece_seed.py).
  EXPECT_EQ(tokenizer->vocab_size(), 401);
  // Byte fallback covers every character the normal pieces do not, so single-spaced text round-trips.
  const std::string text = "Hello world, caf\xC3\xA9 \xE2\x82\xAC 42";
  const std::vector<int32_t> ids = tokenizer->encode(text);
  ASSERT_FALSE(ids.empty());
  for (int32_t id : ids) {
    EXPECT_GE(id, 0);
    EXPECT_LT(id, 401);
  }
  EXPECT_EQ(tokenizer->decode(ids), text);
}

TEST(FuzzInputs, EverySentencePieceInputLoadsOrIsAFormatError) {
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kDir)) {
    SCOPED_TRACE(entry.path().string());
    ++files;
    try {
      const auto tokenizer = load_sentencepiece_tokenizer(entry.path().string());
      (void)tokenizer->decode(tokenizer->encode("fuzz input \xFF\xFE text"));
    } catch (const Error&) {
      // Refused with the library's error: the contract the fuzz target checks.
    }
  }
  EXPECT_GE(files, 1u);
}

}  // namespace
}  // namespace bimamba
