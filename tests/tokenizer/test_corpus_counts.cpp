// Whole-file token counts: each data file, read as one string, must give exactly the number of ids that the
// reference libraries gave (tests/data/tokenizers/file-token-counts.json). This is how perplexity tokenizes.
// The files are examples/data/wikitext-2/test.txt (1.26 MB) and examples/data/ptb/test.txt (0.45 MB).
#include <gtest/gtest.h>

#include <bimamba/io/tokenizer_loader.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tokenizer_fixtures.hpp"

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class CorpusCounts : public ::testing::TestWithParam<const char*> {};

TEST_P(CorpusCounts, WholeFileCountsMatchReference) {
  const std::string name = GetParam();
  const bimamba::Tokenizer* tokenizer = &bimamba::test::shared_tokenizer(name);
  const auto expected = nlohmann::json::parse(read_all(bimamba::test::data_path("tokenizers/file-token-counts.json")));
  for (const char* file : {"wikitext-2/test.txt", "ptb/test.txt"}) {
    const std::string text = read_all(bimamba::test::source_dir() + "/examples/data/" + file);
    ASSERT_GT(text.size(), 100000u) << file << " is missing or truncated";
    const auto start = std::chrono::steady_clock::now();
    const std::vector<int32_t> ids = tokenizer->encode(text);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(static_cast<int64_t>(ids.size()), expected.at(file).at(name).get<int64_t>()) << name << " on " << file;
    RecordProperty(std::string(file) + " tokens/s", std::to_string(static_cast<int64_t>(ids.size() / seconds)));
    std::printf("%s %s: %zu tokens in %.3f s (%.2f M tokens/s)\n", name.c_str(), file, ids.size(), seconds,
                ids.size() / seconds / 1e6);
    EXPECT_EQ(tokenizer->decode(ids), text) << name << " on " << file << ": the corpus is valid NFC UTF-8";
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, CorpusCounts, ::testing::Values("gpt-neox-20b", "llama-2"));

}  // namespace
