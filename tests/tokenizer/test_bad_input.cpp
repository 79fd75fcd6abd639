// Bad tokenizer files: every one throws FormatError (a missing file: Error) whose message starts with the path
// and says what is wrong; nothing is half-loaded.
#include <gtest/gtest.h>

#include <bimamba/io/tokenizer_loader.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;

std::string temp_file(const std::string& name, const std::string& bytes) {
  const fs::path path = fs::path(::testing::TempDir()) / ("bimamba_tokenizer_" + name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path.string();
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Loads `path`, expects FormatError whose message starts with the path and contains `needle`.
void expect_format_error(const std::string& path, const std::string& needle) {
  try {
    bimamba::load_tokenizer(path);
    ADD_FAILURE() << path << ": loaded without error";
  } catch (const bimamba::FormatError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(path, 0), 0u) << message;
    EXPECT_NE(message.find(needle), std::string::npos) << "'" << needle << "' not in: " << message;
  }
}

TEST(TokenizerBadInput, EmptyFile) { expect_format_error(temp_file("empty", ""), "empty file"); }

TEST(TokenizerBadInput, SafetensorsFile) {
  expect_format_error(bimamba::test::data_path("mamba2-tiny/model.safetensors"), "safetensors");
}

TEST(TokenizerBadInput, PytorchZipFile) {
  expect_format_error(bimamba::test::data_path("bimamba2-tiny-mamba-ssm/pytorch_model.bin"), "zip");
}

TEST(TokenizerBadInput, ConfigJsonWithoutModel) {
  // A model config.json (it also holds the non-standard literal Infinity, which nlohmann rejects first).
  expect_format_error(bimamba::test::data_path("mamba2-tiny/config.json"), "JSON");
  expect_format_error(temp_file("no_model.json", R"({"version": "1.0", "added_tokens": []})"), "no \"model\"");
}

TEST(TokenizerBadInput, BrokenJson) {
  expect_format_error(temp_file("broken.json", R"({"model": {"type": "BPE", "vocab": {)"), "not valid JSON");
}

TEST(TokenizerBadInput, UnsupportedOrInconsistentJson) {
  expect_format_error(temp_file("wordpiece.json", R"({"model": {"type": "WordPiece", "vocab": {}}})"),
                      "'WordPiece' is not supported");
  expect_format_error(temp_file("no_merges.json", R"({"model": {"type": "BPE", "vocab": {}}})"), "model.merges");
  // Byte-level BPE needs a token for every UTF-8 byte.
  expect_format_error(
      temp_file("few_bytes.json",
                R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}})"),
      "no token for byte");
  // The real file with a merge whose parts are not in the vocabulary.
  std::string text = read_all(bimamba::test::data_path("tokenizers/gpt-neox-20b.json"));
  const std::string first_merge = "\"\xc4\xa0 \xc4\xa0\"";
  const size_t at = text.find(first_merge);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, first_merge.size(), "\"\xc4\xa0 nonexistent_token\"");
  expect_format_error(temp_file("bad_merge.json", text), "merge 0");
}

TEST(TokenizerBadInput, TruncatedSentencePieceModel) {
  const std::string model = read_all(bimamba::test::data_path("tokenizers/llama-2.model"));
  ASSERT_GT(model.size(), 1000u);
  for (size_t keep : {size_t{3}, size_t{101}, model.size() / 2, model.size() - 1})
    expect_format_error(temp_file("truncated.model", model.substr(0, keep)), "protobuf");
}

TEST(TokenizerBadInput, TextFile) {
  expect_format_error(bimamba::test::source_dir() + "/examples/data/ptb/test.txt", "a text file");
  expect_format_error(temp_file("newline.txt", "\nstarts like a protobuf key\n"), "a text file");
}

TEST(TokenizerBadInput, UnknownBytes) {
  expect_format_error(temp_file("random.bin", std::string("\x7f" "ELF\x02\x01\x01", 7)), "neither");
}

TEST(TokenizerBadInput, MissingFileAndEmptyDirectory) {
  const std::string missing = (fs::path(::testing::TempDir()) / "bimamba_no_such_tokenizer.json").string();
  EXPECT_THROW(bimamba::load_tokenizer(missing), bimamba::Error);
  const fs::path dir = fs::path(::testing::TempDir()) / "bimamba_empty_tokenizer_dir";
  fs::create_directories(dir);
  expect_format_error(dir.string(), "neither tokenizer.json nor tokenizer.model");
}

TEST(TokenizerBadInput, DirectoryWithTokenizerJsonLoads) {
  const fs::path dir = fs::path(::testing::TempDir()) / "bimamba_tokenizer_dir";
  fs::create_directories(dir);
  fs::copy_file(bimamba::test::data_path("tokenizers/llama-2.model"), dir / "tokenizer.model",
                fs::copy_options::overwrite_existing);
  const auto tokenizer = bimamba::load_tokenizer(dir.string());
  EXPECT_EQ(tokenizer->kind(), "sentencepiece");
  EXPECT_EQ(tokenizer->vocab_size(), 32000);
}

}  // namespace
