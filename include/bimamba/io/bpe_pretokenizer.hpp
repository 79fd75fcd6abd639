// The ByteLevel pre-tokenizer of GPT-2 / GPT-NeoX (HF tokenizers "ByteLevel", use_regex = true): a
// hand-written matcher of the regex
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with backtracking semantics (alternatives tried in order, each greedy), and GPT-2's byte -> unicode map.
//
// Every character matches some alternative, so a text splits into consecutive pre-tokens with no gaps.
// Per alternative, at position p:
//   1. an ASCII apostrophe followed by s, t, m, d (2 bytes) or re, ve, ll (3 bytes), case-sensitive;
//   2-4. an optional U+0020 then a maximal run of letters (\p{L}), numbers (\p{N}) or "other" (neither
//      letter, number nor White_Space); the space is taken only when a run of one of these classes follows;
//   5. a maximal White_Space run that reaches the end of the text, or that run minus its last character
//      when that leaves at least one (the next character is then whitespace, so (?!\S) holds);
//   6. otherwise the single whitespace character.
// Ill-formed UTF-8 bytes count as "other" characters (the reference only takes valid strings).
//
// byte_to_unicode: bytes '!'..'~', 0xA1..0xAC, 0xAE..0xFF map to the same code point; the other 68 bytes map,
// in increasing order, to U+0100, U+0101, ... (so ' ' -> 'Ġ' U+0120, '\n' -> 'Ċ' U+010A).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "unicode.hpp"

namespace bimamba {

namespace detail {

enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

struct ClassifiedChar {
  CharClass cls;
  size_t len;
};

inline ClassifiedChar classify_at(std::string_view s, size_t pos) {
  const auto b = static_cast<unsigned char>(s[pos]);
  if (b < 0x80) {
    if (unicode::is_letter(b)) return {CharClass::kLetter, 1};
    if (unicode::is_number(b)) return {CharClass::kNumber, 1};
    if (unicode::is_whitespace(b)) return {CharClass::kSpace, 1};
    return {CharClass::kOther, 1};
  }
  const unicode::DecodedChar c = unicode::decode_utf8(s.data() + pos, s.size() - pos);
  if (c.cp == unicode::kInvalid) return {CharClass::kOther, c.len};
  if (unicode::is_letter(c.cp)) return {CharClass::kLetter, c.len};
  if (unicode::is_number(c.cp)) return {CharClass::kNumber, c.len};
  if (unicode::is_whitespace(c.cp)) return {CharClass::kSpace, c.len};
  return {CharClass::kOther, c.len};
}

}  // namespace detail

// End (exclusive) of the pre-token that starts at pos < s.size().
inline size_t gpt2_pretoken_end(std::string_view s, size_t pos) {
  using detail::CharClass;
  const size_t n = s.size();
  if (s[pos] == '\'' && pos + 1 < n) {
    const char c1 = s[pos + 1];
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return pos + 2;
    if (pos + 2 < n) {
      const char c2 = s[pos + 2];
      if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return pos + 3;
    }
  }
  size_t p = pos;
  detail::ClassifiedChar first = detail::classify_at(s, p);
  if (s[pos] == ' ' && pos + 1 < n) {
    const detail::ClassifiedChar next = detail::classify_at(s, pos + 1);
    if (next.cls != CharClass::kSpace) {
      p = pos + 1;
      first = next;
    }
  }
  if (first.cls != CharClass::kSpace) {  // alternatives 2-4
    p += first.len;
    while (p < n) {
      const detail::ClassifiedChar c = detail::classify_at(s, p);
      if (c.cls != first.cls) break;
      p += c.len;
    }
    return p;
  }
  // Alternatives 5-6: a whitespace run starting at pos.
  size_t last_start = pos;  // start of the run's last character
  p = pos + first.len;
  while (p < n) {
    const detail::ClassifiedChar c = detail::classify_at(s, p);
    if (c.cls != CharClass::kSpace) break;
    last_start = p;
    p += c.len;
  }
  if (p == n || last_start == pos) return p;
  return last_start;
}

// GPT-2's byte -> code point map and its inverse.
struct ByteLevelAlphabet {
  std::array<uint32_t, 256> byte_to_cp{};
  std::array<int16_t, 324> cp_to_byte{};  // code points < 324 only; -1: not in the alphabet

  ByteLevelAlphabet() {
    cp_to_byte.fill(-1);
    uint32_t extra = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      byte_to_cp[b] = printable ? b : extra++;
      cp_to_byte[byte_to_cp[b]] = static_cast<int16_t>(b);
    }
  }

  // The byte a code point stands for, or -1.
  int byte_of(uint32_t cp) const { return cp < cp_to_byte.size() ? cp_to_byte[cp] : -1; }

  // Decodes a byte-level string (e.g. "Ġthe") into bytes; false when a character is not in the alphabet.
  bool to_bytes(std::string_view text, std::string& out) const {
    out.clear();
    for (size_t i = 0; i < text.size();) {
      const unicode::DecodedChar c = unicode::decode_utf8(text.data() + i, text.size() - i);
      const int b = c.cp == unicode::kInvalid ? -1 : byte_of(c.cp);
      if (b < 0) return false;
      out += static_cast<char>(b);
      i += c.len;
    }
    return true;
  }
};

}  // namespace bimamba
