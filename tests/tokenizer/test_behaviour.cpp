// Behaviour beyond the fixture lines: special ids, options, decoding details, normalization before BPE and
// added-token flags. Expected ids come from HF tokenizers 0.23 (GPT-NeoX-20B) and sentencepiece 0.2
// (LLaMA-2), run on the same files.
#include <gtest/gtest.h>

#include <bimamba/io/tokenizer_loader.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer_fixtures.hpp"

namespace {

using Ids = std::vector<int32_t>;

const bimamba::Tokenizer& neox() { return bimamba::test::shared_tokenizer("gpt-neox-20b"); }
const bimamba::Tokenizer& llama() { return bimamba::test::shared_tokenizer("llama-2"); }

TEST(BpeTokenizer, VocabularyAndSpecialIds) {
  const auto& t = neox();
  EXPECT_EQ(t.kind(), "bpe");
  EXPECT_EQ(t.vocab_size(), 50277);  // 50254 model tokens + 23 added whitespace tokens
  EXPECT_EQ(t.bos_id(), 0);          // <|endoftext|>
  EXPECT_EQ(t.eos_id(), 0);
  EXPECT_EQ(t.token_text(12092), "Hello");
  EXPECT_EQ(t.token_text(1533), "\xc4\xa0world");  // "Ġworld"
  EXPECT_EQ(t.token_bytes(1533), " world");
  EXPECT_EQ(t.token_text(50276), "  ");
  EXPECT_EQ(t.token_bytes(50276), "  ");
  EXPECT_EQ(t.encode("Hello world!", {/*add_bos=*/true, /*add_eos=*/true}), (Ids{0, 12092, 1533, 2, 0}));
  EXPECT_THROW(t.decode({50277}), bimamba::InvalidArgument);
  EXPECT_THROW(t.decode({-1}), bimamba::InvalidArgument);
  EXPECT_THROW(t.token_text(50277), bimamba::InvalidArgument);
}

TEST(BpeTokenizer, DecodeOptionsAndLossyBytes) {
  const auto& t = neox();
  EXPECT_EQ(t.decode({0, 2714}), "<|endoftext|> special");
  EXPECT_EQ(t.decode({0, 2714}, {/*skip_special_tokens=*/true}), " special");
  // "🙂" is [14931 'ðŁ', 18713 'ĻĤ']: alone, each half is ill-formed; HF gives one U+FFFD for the truncated
  // 4-byte sequence F0 9F and one per stray continuation byte 99 82.
  EXPECT_EQ(t.encode("\xf0\x9f\x99\x82"), (Ids{14931, 18713}));
  EXPECT_EQ(t.decode({14931}), "\ufffd");
  EXPECT_EQ(t.decode({18713}), "\ufffd\ufffd");
  EXPECT_EQ(t.decode({14931, 66}), "\ufffd" "a");
}

TEST(BpeTokenizer, NormalizesToNfcBeforeBpe) {
  const auto& t = neox();
  EXPECT_EQ(t.encode("e\u0301"), t.encode("\u00e9"));
  EXPECT_EQ(t.encode("e\u0301 \u212b x\u0323\u0307"), (Ids{860, 17732, 209, 9702, 222, 136, 98}));
  EXPECT_EQ(t.decode(t.encode("e\u0301")), "\u00e9") << "NFC does not round-trip a decomposed input";
}

TEST(BpeTokenizer, RejectsInvalidUtf8ThatHasNoByteToken) {
  // GPT-NeoX has no token for the bytes C0, C1, F5..FF, which never occur in UTF-8.
  EXPECT_THROW(neox().encode("a\xff"), bimamba::InvalidArgument);
}

// Added tokens with single_word / lstrip / rstrip (GPT-NeoX's own have none set): the real vocabulary plus
// "qzxq" (single_word), "<|L|>" (lstrip, special) and "<|R|>" (rstrip, special), ids 50277..50279.
TEST(BpeTokenizer, AddedTokenFlags) {
  std::ifstream in(bimamba::test::data_path("tokenizers/gpt-neox-20b.json"));
  nlohmann::json root = nlohmann::json::parse(in);
  const auto added = [](int id, const char* content, bool single_word, bool lstrip, bool rstrip, bool special) {
    return nlohmann::json{{"id", id},           {"content", content}, {"single_word", single_word},
                          {"lstrip", lstrip},   {"rstrip", rstrip},   {"normalized", !special},
                          {"special", special}};
  };
  root["added_tokens"].push_back(added(50277, "qzxq", true, false, false, false));
  root["added_tokens"].push_back(added(50278, "<|L|>", false, true, false, true));
  root["added_tokens"].push_back(added(50279, "<|R|>", false, false, true, true));
  const auto t = bimamba::bpe_tokenizer_from_json(root, "augmented gpt-neox-20b.json");
  const std::vector<std::pair<std::string, Ids>> cases = {
      {"a qzxq b", {66, 209, 50277, 270}},
      {".qzxq", {15, 50277}},
      {"xqzxq", {89, 82, 91, 89, 82}},  // a letter before: not a single word
      {"a\u00a0<|L|>\tb", {66, 50278, 186, 67}},
      {"x  <|L|>y", {89, 50278, 90}},  // the raw pass runs first: lstrip takes the spaces
      {"<|R|> \u3000 z", {50279, 91}},
      {"e\u0301<|R|>e\u0301", {860, 50279, 860}},
      {"<|L|> <|L|>", {50278, 50278}},
      {"qzxq<|R|>  qzxq", {50277, 50279, 50277}},
  };
  for (const auto& [text, ids] : cases) EXPECT_EQ(t->encode(text), ids) << text;
}

TEST(SentencePieceTokenizer, VocabularyAndSpecialIds) {
  const auto& t = llama();
  EXPECT_EQ(t.kind(), "sentencepiece");
  EXPECT_EQ(t.vocab_size(), 32000);
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.token_text(0), "<unk>");
  EXPECT_EQ(t.token_text(13), "<0x0A>");
  EXPECT_EQ(t.token_bytes(13), "\n");
  EXPECT_EQ(t.token_text(15043), "\xe2\x96\x81Hello");  // "▁Hello"
  EXPECT_EQ(t.token_bytes(15043), " Hello");
  EXPECT_EQ(t.token_bytes(1), "");
  EXPECT_EQ(t.encode("Hello world!"), (Ids{15043, 3186, 29991}));
  EXPECT_EQ(t.encode("Hello world!", {/*add_bos=*/true}), (Ids{1, 15043, 3186, 29991}));
  EXPECT_EQ(t.encode("Hello world!", {true, /*add_eos=*/true}), (Ids{1, 15043, 3186, 29991, 2}));
  EXPECT_EQ(t.encode(""), Ids{});
  EXPECT_THROW(t.decode({32000}), bimamba::InvalidArgument);
}

// sentencepiece's Decode: control pieces vanish, the first piece loses one leading "▁", <unk> is " ⁇ ",
// byte pieces are reassembled with U+FFFD per ill-formed byte.
TEST(SentencePieceTokenizer, DecodeLikeSentencepiece) {
  const auto& t = llama();
  const std::vector<std::pair<Ids, std::string>> cases = {
      {{8236}, "leading"},
      {{1, 8236}, "leading"},
      {{29871}, ""},
      {{29871, 29871}, " "},
      {{29871, 8236}, " leading"},
      {{0, 8236}, " \u2047  leading"},
      {{8236, 0}, "leading \u2047 "},
      {{68, 8236}, "A leading"},
      {{233, 8236}, "\ufffd leading"},
      {{233, 160}, "\ufffd\ufffd"},
      {{2, 8236}, "leading"},
      {{35, 8236}, "  leading"},
      {{1, 29871, 8236}, " leading"},
      {{259, 8236}, "  leading"},
  };
  for (const auto& [ids, text] : cases) EXPECT_EQ(t.decode(ids), text) << ids.size() << " ids, first " << ids[0];
}

TEST(SentencePieceTokenizer, NormalizationAndByteFallback) {
  const auto& t = llama();
  EXPECT_EQ(t.encode("\xff a"), (Ids{29871, 30140, 263}));  // ill-formed byte -> U+FFFD, a piece
  EXPECT_EQ(t.encode("a\xe6\x9d"), (Ids{263, 26308}));       // two ill-formed bytes -> "��"
  EXPECT_EQ(t.encode("a \u2581 b"), (Ids{263, 259, 289}));  // a literal "▁" is a space
  EXPECT_EQ(t.encode(" "), (Ids{259}));                      // dummy prefix + escaped space: "▁▁"
  // The raw text is matched, not the control piece: "<s>" is plain text.
  EXPECT_EQ(t.encode("<s>hi</s>"), (Ids{529, 29879, 29958, 2918, 829, 29879, 29958}));
}

}  // namespace
