// tokenize_corpus (train/tokenize_corpus.hpp): the token file holds each document's ids exactly as the
// tokenizer encodes the whole file, with EOS between documents; on a real corpus the count matches the
// reference library's (tests/data/tokenizers/file-token-counts.json).
#include <gtest/gtest.h>

#include <bimamba/io/tokenizer_loader.hpp>
#include <bimamba/train/tokenize_corpus.hpp>
#include <filesystem>
#include <fstream>

#include "temp_path.hpp"
#include "test_support.hpp"

namespace bimamba {
namespace {

namespace fs = std::filesystem;

const Tokenizer& neox() {
  static const std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(test::data_path("tokenizers/gpt-neox-20b.json"));
  return *tokenizer;
}

TEST(TokenizeCorpus, DocumentsEncodedWholeWithEosBetween) {
  const std::string a = test::temp_path("a.txt"), b = test::temp_path("b.txt"), out = test::temp_path("corpus.tokens");
  const std::string text_a = " = Valkyria Chronicles III = \n\n Senjō no Valkyria 3 : Unrecorded Chronicles\n";
  const std::string text_b = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n";
  std::ofstream(a, std::ios::binary) << text_a;
  std::ofstream(b, std::ios::binary) << text_b;
  const Tokenizer& tok = neox();
  ASSERT_GE(tok.eos_id(), 0);
  std::vector<int32_t> expected = tok.encode(text_a);
  expected.push_back(tok.eos_id());
  const auto ids_b = tok.encode(text_b);
  expected.insert(expected.end(), ids_b.begin(), ids_b.end());
  expected.push_back(tok.eos_id());

  EXPECT_EQ(tokenize_corpus(tok, {a, b}, out), int64_t(expected.size()));
  const TokenFile file = TokenFile::open(out);
  EXPECT_EQ(file.read_all(), expected);
  EXPECT_EQ(file.vocab_size(), tok.vocab_size());
  EXPECT_EQ(file.dtype(), TokenDType::U16);

  tokenize_corpus(tok, {a}, out, {.eos_between_documents = false});
  EXPECT_EQ(TokenFile::open(out).read_all(), tok.encode(text_a));
  EXPECT_THROW(tokenize_corpus(tok, {test::temp_path("missing.txt")}, out), Error);
  for (const auto& p : {a, b, out}) fs::remove(p);
}

TEST(TokenizeCorpus, WholeWikitextTestMatchesReferenceCount) {
  const std::string out = test::temp_path("wikitext.tokens");
  const int64_t n = tokenize_corpus(neox(), {bimamba::test::source_dir() + "/examples/data/wikitext-2/test.txt"},
                                    out, {.eos_between_documents = false});
  EXPECT_EQ(n, 295232);  // tests/data/tokenizers/file-token-counts.json, HF tokenizers
  EXPECT_EQ(TokenFile::open(out).size(), n);
  fs::remove(out);
}

}  // namespace
}  // namespace bimamba
