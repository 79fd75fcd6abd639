// Added tokens of an HF tokenizer.json ("added_tokens"): strings that are cut out of the text before the
// pre-tokenizer and BPE run, each becoming its own id.
//
// Matching (as HF's AddedVocabulary): leftmost-longest over all contents (at the first position where any
// token matches, the longest one wins; the scan resumes after it). Then, per token flags:
//   single_word  the match counts only if the character before it and the one after it (when present) are
//                not word characters (letters, numbers, '_');
//   lstrip       the match extends left over whitespace (not past the previous match);
//   rstrip       the match extends right over whitespace.
// The scan resumes after the (extended) match, so pieces never overlap (HF can emit a second added token
// inside whitespace that an rstrip already took; this matcher does not).
// Tokens with normalized = false are matched on the raw text, those with normalized = true on the
// normalized text; BpeTokenizer runs the two passes in that order (two AddedTokenMatcher objects).
//
// find() yields the pieces of a text in order: {begin, end, id} with id = -1 for text between matches.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "unicode.hpp"

namespace bimamba {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

struct TextPiece {
  size_t begin, end;
  int32_t id;  // -1: plain text
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() { nodes_.emplace_back(); }

  void add(const AddedToken& token) {
    if (token.content.empty()) return;
    int32_t node = 0;
    for (char c : token.content) {
      const auto b = static_cast<unsigned char>(c);
      int32_t child = child_of(node, b);
      if (child < 0) {
        child = static_cast<int32_t>(nodes_.size());
        nodes_.emplace_back();
        nodes_[static_cast<size_t>(node)].children.push_back({b, child});
      }
      node = child;
    }
    if (nodes_[static_cast<size_t>(node)].token < 0) {
      nodes_[static_cast<size_t>(node)].token = static_cast<int32_t>(tokens_.size());
      tokens_.push_back(token);
    }
    first_byte_[static_cast<unsigned char>(token.content[0])] = true;
  }

  bool empty() const { return tokens_.empty(); }

  // Appends the pieces of text[begin, end) to out.
  void find(std::string_view text, size_t begin, size_t end, std::vector<TextPiece>& out) const {
    size_t done = begin;  // text before this is emitted
    for (size_t pos = begin; pos < end;) {
      if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
        ++pos;
        continue;
      }
      size_t match_end = 0;
      const AddedToken* token = longest_at(text, pos, end, match_end);
      if (!token || (token->single_word && !is_single_word(text, begin, end, pos, match_end))) {
        ++pos;
        continue;
      }
      size_t start = pos, stop = match_end;
      if (token->lstrip)
        while (start > done) {
          const size_t prev = previous_char(text, done, start);
          if (!unicode::is_whitespace(unicode::decode_utf8(text.data() + prev, start - prev).cp)) break;
          start = prev;
        }
      if (token->rstrip)
        while (stop < end) {
          const unicode::DecodedChar c = unicode::decode_utf8(text.data() + stop, end - stop);
          if (!unicode::is_whitespace(c.cp)) break;
          stop += c.len;
        }
      if (done < start) out.push_back({done, start, -1});
      out.push_back({start, stop, token->id});
      done = pos = stop;
    }
    if (done < end) out.push_back({done, end, -1});
  }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;
    int32_t token = -1;
  };

  int32_t child_of(int32_t node, unsigned char b) const {
    for (const auto& [byte, child] : nodes_[static_cast<size_t>(node)].children)
      if (byte == b) return child;
    return -1;
  }

  const AddedToken* longest_at(std::string_view text, size_t pos, size_t end, size_t& match_end) const {
    const AddedToken* best = nullptr;
    int32_t node = 0;
    for (size_t i = pos; i < end; ++i) {
      node = child_of(node, static_cast<unsigned char>(text[i]));
      if (node < 0) break;
      const int32_t token = nodes_[static_cast<size_t>(node)].token;
      if (token >= 0) {
        best = &tokens_[static_cast<size_t>(token)];
        match_end = i + 1;
      }
    }
    return best;
  }

  // Start of the character that ends at `pos` (not before `floor`).
  static size_t previous_char(std::string_view text, size_t floor, size_t pos) {
    size_t p = pos - 1;
    while (p > floor && pos - p < 4 && (static_cast<unsigned char>(text[p]) & 0xC0) == 0x80) --p;
    return p;
  }

  static bool is_word_char(uint32_t cp) { return cp == '_' || unicode::is_letter(cp) || unicode::is_number(cp); }

  static bool is_single_word(std::string_view text, size_t begin, size_t end, size_t start, size_t stop) {
    if (start > begin) {
      const size_t prev = previous_char(text, begin, start);
      if (is_word_char(unicode::decode_utf8(text.data() + prev, start - prev).cp)) return false;
    }
    return stop >= end || !is_word_char(unicode::decode_utf8(text.data() + stop, end - stop).cp);
  }

  std::vector<Node> nodes_;
  std::vector<AddedToken> tokens_;
  std::array<bool, 256> first_byte_{};
};

}  // namespace bimamba
