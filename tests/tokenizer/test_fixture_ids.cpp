// Exact ids against the reference libraries: every line of tests/data/tokenizers/<name>.jsonl holds a text and
// the ids that HF tokenizers (gpt-neox-20b.json) or sentencepiece (llama-2.model, no BOS) gave for it.
// Also decode(encode(text)) == text for every fixture line: both tokenizers are lossless on these strings
// (valid UTF-8, already NFC, no unknown characters: LLaMA-2 falls back to bytes).
#include <gtest/gtest.h>

#include <bimamba/io/tokenizer_loader.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer_fixtures.hpp"

namespace {

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<Case> read_cases(const std::string& path) {
  std::ifstream in(path);
  std::vector<Case> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    cases.push_back({j.at("text").get<std::string>(), j.at("ids").get<std::vector<int32_t>>()});
  }
  return cases;
}

class FixtureIds : public ::testing::TestWithParam<const char*> {};

TEST_P(FixtureIds, EncodeMatchesReferenceAndDecodeRoundTrips) {
  const std::string name = GetParam();
  const bimamba::Tokenizer* tokenizer = &bimamba::test::shared_tokenizer(name);
  const auto cases = read_cases(bimamba::test::data_path("tokenizers/" + name + ".jsonl"));
  ASSERT_EQ(cases.size(), 69u) << "the fixture file has 69 lines";
  int mismatches = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::vector<int32_t> ids = tokenizer->encode(cases[i].text);
    EXPECT_EQ(ids, cases[i].ids) << name << " line " << i << ": '" << cases[i].text.substr(0, 80) << "'";
    mismatches += ids != cases[i].ids;
    EXPECT_EQ(tokenizer->decode(ids), cases[i].text) << name << " line " << i;
  }
  EXPECT_EQ(mismatches, 0);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, FixtureIds, ::testing::Values("gpt-neox-20b", "llama-2"));

}  // namespace
