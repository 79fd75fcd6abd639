// The inputs under tests/data/fuzz/<target>/ (seeds and regression inputs of the fuzz targets, fuzz/run.sh):
// the small SentencePiece seed (fuzz/make_sentencepiece_seed.py) is a valid model that round-trips text, so
// fuzz_sentencepiece starts from a model that loads; every file there either loads and encodes or is
// refused with a bimamba::Error (a regression input that crashed once must keep doing neither). The
// tokenizer.json regression inputs (fuzz_tokenizer_json findings) are refused with a FormatError naming the
// field, as are the other fields read by type from a tokenizer.json component.
#include <gtest/gtest.h>

#include <bimamba/io/sentencepiece_tokenizer.hpp>
#include <bimamba/io/tokenizer_loader.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <utility>
#include <string>
#include <test_support.hpp>
#include <vector>

namespace bimamba {
namespace {

const std::string kDir = bimamba::test::data_path("fuzz/sentencepiece");
const std::string kTokenizerJsonDir = bimamba::test::data_path("fuzz/tokenizer_json");

// The message of the FormatError that loading `json` as a tokenizer.json throws ("" when it loads, or when
// anything else is thrown: both fail the tests below).
std::string tokenizer_json_error(const std::string& json) {
  try {
    (void)tokenizer_from_bytes(json, "tokenizer.json");
  } catch (const FormatError& e) {
    return e.what();
  } catch (...) {
  }
  return "";
}

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

// fuzz_tokenizer_json found "add_prefix_space": "ByteLevel" escaping as nlohmann's type_error (a crash of
// the fuzz target, an unexpected exception type for a user).
TEST(FuzzInputs, EveryTokenizerJsonRegressionInputIsAFormatError) {
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kTokenizerJsonDir)) {
    SCOPED_TRACE(entry.path().string());
    ++files;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(tokenizer_json_error(json), "");
  }
  EXPECT_GE(files, 1u);
  std::ifstream in(kTokenizerJsonDir + "/crash-add-prefix-space-string.json", std::ios::binary);
  const std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(tokenizer_json_error(json).find("pre_tokenizer.add_prefix_space has the wrong type"), std::string::npos)
      << tokenizer_json_error(json);
}

// Every typed field of the normalizer, pre_tokenizer and decoder specs: a value of the wrong JSON type is a
// FormatError, never nlohmann's exception.
TEST(FuzzInputs, WrongTypesInTokenizerComponentsAreFormatErrors) {
  const std::string model = R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";
  const std::string byte_level = R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})";
  auto doc = [&](const std::string& normalizer, const std::string& pre, const std::string& decoder) {
    return "{\"normalizer\": " + normalizer + ", \"pre_tokenizer\": " + pre + ", \"decoder\": " + decoder + ", " +
           model + "}";
  };
  // With valid components, loading gets past them to the vocabulary, which is deliberately too small.
  ASSERT_NE(tokenizer_json_error(doc("null", byte_level, "null")).find("the vocabulary has no token for byte"),
            std::string::npos);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {doc(R"({"type": 5})", byte_level, "null"), "normalizer"},
      {doc("null", R"({"type": ["ByteLevel"]})", "null"), "pre_tokenizer"},
      {doc("null", R"({"type": "ByteLevel", "use_regex": "yes"})", "null"), "pre_tokenizer.use_regex"},
      {doc("null", R"({"type": "Sequence", "pretokenizers": [{"type": "ByteLevel", "add_prefix_space": 1}]})", "null"),
       "pre_tokenizer.add_prefix_space"},
      {doc("null", byte_level, R"({"type": 7})"), "decoder"},
  };
  for (const auto& [json, field] : cases) {
    SCOPED_TRACE(json);
    EXPECT_NE(tokenizer_json_error(json).find(field), std::string::npos) << tokenizer_json_error(json);
  }
}

// fuzz_tokenizer_json found an added token id of 5.6e53 converted to int with undefined behaviour (a
// UndefinedBehaviorSanitizer report); an id must be an integer in int32's range.
TEST(FuzzInputs, AddedTokenIdsOutsideInt32AreFormatErrors) {
  const std::string model = R"("model": {"type": "BPE", "vocab": {"a": 0}, "merges": []})";
  for (const std::string id : {"5.55e53", "1.5", "4294967296", "18446744073709551615", "-2147483649", "\"7\""}) {
    SCOPED_TRACE(id);
    const std::string json = R"({"added_tokens": [{"id": )" + id + R"(, "content": "<x>"}], )" + model + "}";
    EXPECT_NE(tokenizer_json_error(json).find("added_tokens[].id has the wrong type or range"), std::string::npos)
        << tokenizer_json_error(json);
  }
}

}  // namespace
}  // namespace bimamba
