// Unicode support of the tokenizers against Python's unicodedata (the same Unicode version the tables were
// generated from) and the GPT-2 pre-tokenizer against HF tokenizers' ByteLevel pre-tokenizer.
#include <gtest/gtest.h>

#include <bimamba/io/bpe_pretokenizer.hpp>
#include <bimamba/io/unicode.hpp>
#include <string>
#include <vector>

namespace {

using namespace bimamba;

uint64_t fnv1a(const std::string& bytes, uint64_t h) {
  for (unsigned char b : bytes) {
    h ^= b;
    h *= 0x100000001b3ull;
  }
  return h;
}

// Every code point on its own (surrogates excluded): how many change, and an FNV-1a hash of all the results
// concatenated, computed by Python 3.11 (unicodedata 14.0.0) with unicodedata.normalize.
TEST(Unicode, SingleCodePointNormalizationMatchesPython) {
  ASSERT_STREQ(unicode::tables::kUnicodeVersion, "14.0.0");
  struct Expected {
    unicode::NormalForm form;
    int changed;
    uint64_t hash;
  };
  for (const Expected& e : {Expected{unicode::NormalForm::kNFD, 13233, 0x7255d347c74d6799ull},
                            Expected{unicode::NormalForm::kNFC, 1120, 0x23fc43766d7c2eb9ull}}) {
    uint64_t h = 0xcbf29ce484222325ull;
    int changed = 0;
    for (uint32_t cp = 0; cp < 0x110000; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      std::string one;
      unicode::append_utf8(one, cp);
      const std::string out = unicode::normalize(one, e.form);
      changed += out != one;
      h = fnv1a(out, h);
    }
    EXPECT_EQ(changed, e.changed) << (e.form == unicode::NormalForm::kNFC ? "NFC" : "NFD");
    EXPECT_EQ(h, e.hash) << (e.form == unicode::NormalForm::kNFC ? "NFC" : "NFD");
  }
}

// Sequences: composition, canonical reordering, blocking, Hangul, exclusions, singletons (Python's output).
TEST(Unicode, SequenceNormalizationMatchesPython) {
  struct Case {
    const char* in;
    const char* nfc;
    const char* nfd;
  };
  const Case cases[] = {
      {"e\u0301", "\u00e9", "e\u0301"},
      {"\u1e9b\u0323", "\u1e9b\u0323", "\u017f\u0323\u0307"},
      {"a\u0328\u0301\u0323", "\u0105\u0323\u0301", "a\u0328\u0323\u0301"},
      {"\u1100\u1161\u11a8", "\uac01", "\u1100\u1161\u11a8"},
      {"\uac00\u11a8", "\uac01", "\u1100\u1161\u11a8"},
      {"\u0958", "\u0915\u093c", "\u0915\u093c"},  // composition exclusion
      {"\u212b", "\u00c5", "A\u030a"},              // singleton
      {"\u0344", "\u0308\u0301", "\u0308\u0301"},   // non-starter decomposition
      {"\u1e0b\u0323", "\u1e0d\u0307", "d\u0323\u0307"},
      {"q\u0307\u0323", "q\u0323\u0307", "q\u0323\u0307"},
      {"\u0b47\u0b3e", "\u0b4b", "\u0b47\u0b3e"},   // two starters compose
      {"A\u030a\u0301x\u0300", "\u01fax\u0300", "A\u030a\u0301x\u0300"},
      {"\u0301abc", "\u0301abc", "\u0301abc"},
      {"a\u0301\u0301", "\u00e1\u0301", "a\u0301\u0301"},
      {"caf\xc3\xa9 plain ascii", "caf\xc3\xa9 plain ascii", "cafe\u0301 plain ascii"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(unicode::nfc(c.in), c.nfc) << c.in;
    EXPECT_EQ(unicode::nfd(c.in), c.nfd) << c.in;
  }
  // Ill-formed bytes pass through and block composition across them.
  EXPECT_EQ(unicode::nfc("e\xff\xcc\x81"), "e\xff\xcc\x81");
}

TEST(Unicode, CharacterClasses) {
  EXPECT_TRUE(unicode::is_letter(0xE9));     // é
  EXPECT_TRUE(unicode::is_letter(0x6771));   // 東
  EXPECT_FALSE(unicode::is_letter(0x0301));  // combining acute: Mn, not L
  EXPECT_TRUE(unicode::is_number(0x0663));   // Arabic-Indic three: Nd
  EXPECT_TRUE(unicode::is_number(0x00BD));   // ½: No
  EXPECT_FALSE(unicode::is_number('a'));
  for (uint32_t cp : {0x09u, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2003u, 0x2028u, 0x3000u})
    EXPECT_TRUE(unicode::is_whitespace(cp)) << std::hex << cp;
  for (uint32_t cp : {0x1Cu, 0x200Bu, 0xFEFFu, 0x08u}) EXPECT_FALSE(unicode::is_whitespace(cp)) << std::hex << cp;
}

TEST(Unicode, Utf8DecodingFollowsTable3_7) {
  struct Case {
    std::string bytes;
    uint32_t cp;
    size_t len;
  };
  const Case cases[] = {
      {"A", 'A', 1},
      {"\xc3\xa9", 0xE9, 2},
      {"\xf0\x9f\x99\x82", 0x1F642, 4},
      {"\xc0\x80", unicode::kInvalid, 1},          // overlong lead
      {"\xe0\x80\x80", unicode::kInvalid, 1},      // overlong: E0 needs A0..BF next
      {"\xed\xa0\x80", unicode::kInvalid, 1},      // surrogate
      {"\xf4\x90\x80\x80", unicode::kInvalid, 1},  // above U+10FFFF
      {"\xf0\x9f\x99", unicode::kInvalid, 3},      // truncated: maximal subpart of 3 bytes
      {"\x80", unicode::kInvalid, 1},
  };
  for (const Case& c : cases) {
    const unicode::DecodedChar d = unicode::decode_utf8(c.bytes.data(), c.bytes.size());
    EXPECT_EQ(d.cp, c.cp) << c.bytes.size();
    EXPECT_EQ(d.len, c.len);
  }
  std::string rust, sentencepiece;
  unicode::append_lossy_utf8(rust, "a\xf0\x9f" "b\xff", unicode::LossyMode::kMaximalSubpart);
  unicode::append_lossy_utf8(sentencepiece, "a\xf0\x9f" "b\xff", unicode::LossyMode::kPerByte);
  EXPECT_EQ(rust, "a\ufffd" "b\ufffd");
  EXPECT_EQ(sentencepiece, "a\ufffd\ufffd" "b\ufffd");
}

// Splits of HF tokenizers' ByteLevel(add_prefix_space=False, use_regex=True).pre_tokenize_str.
TEST(Gpt2Pretokenizer, SplitsLikeHfByteLevel) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"Hello world!", {"Hello", " world", "!"}},
      {"  multiple   spaces  ", {" ", " multiple", "  ", " spaces", "  "}},
      {"don't DON'T it's 'll", {"don", "'t", " DON", "'", "T", " it", "'s", " '", "ll"}},
      {"x\n\n y\t\tz \n", {"x", "\n\n", " y", "\t", "\t", "z", " \n"}},
      {"a1b2 \u0661\u0662\u0663 \u00bdx", {"a", "1", "b", "2", " \u0661\u0662\u0663", " \u00bd", "x"}},
      {"\u6771\u4eac t\u014dky\u014d", {"\u6771\u4eac", " t\u014dky\u014d"}},
      {"...'s ?! ", {"...'", "s", " ?!", " "}},
      {"\u00a0\u00a0a\u3000 b", {"\u00a0", "\u00a0", "a", "\u3000", " b"}},
      {"emoji \U0001f642\U0001f44d ok", {"emoji", " \U0001f642\U0001f44d", " ok"}},
      {" ", {" "}},
      {"  ", {"  "}},
      {"a ", {"a", " "}},
      {"\t", {"\t"}},
  };
  for (const auto& [text, expected] : cases) {
    std::vector<std::string> pieces;
    for (size_t pos = 0; pos < text.size();) {
      const size_t end = gpt2_pretoken_end(text, pos);
      ASSERT_GT(end, pos) << text;
      pieces.push_back(text.substr(pos, end - pos));
      pos = end;
    }
    EXPECT_EQ(pieces, expected) << text;
  }
}

TEST(Gpt2Pretokenizer, ByteAlphabetIsGpt2s) {
  const ByteLevelAlphabet alphabet;
  EXPECT_EQ(alphabet.byte_to_cp[' '], 0x120u);   // 'Ġ'
  EXPECT_EQ(alphabet.byte_to_cp['\n'], 0x10Au);  // 'Ċ'
  EXPECT_EQ(alphabet.byte_to_cp['A'], uint32_t{'A'});
  EXPECT_EQ(alphabet.byte_to_cp[0xAD], 0x143u);  // soft hyphen, the last remapped byte
  for (int b = 0; b < 256; ++b) EXPECT_EQ(alphabet.byte_of(alphabet.byte_to_cp[static_cast<size_t>(b)]), b);
  std::string bytes;
  EXPECT_TRUE(alphabet.to_bytes("\xc4\xa0the", bytes));
  EXPECT_EQ(bytes, " the");
  EXPECT_FALSE(alphabet.to_bytes("  ", bytes)) << "a plain space is not in the alphabet";
}

}  // namespace
