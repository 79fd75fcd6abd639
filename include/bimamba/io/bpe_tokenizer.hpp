// Byte-level BPE tokenizer with the pipeline of an HF tokenizer.json (GPT-2, GPT-NeoX-20B, the state-spaces
// Mamba models). Loading the JSON file is in bpe_json.hpp; this file is the tokenizer itself.
//
// encode(text):
//   1. cut out the added tokens with normalized = false (on the raw text);
//   2. normalize each remaining piece (a chain of NFC / NFD, possibly empty);
//   3. cut out the added tokens with normalized = true (on the normalized text);
//   4. pre-tokenize each remaining piece: prepend ' ' when add_prefix_space and the piece does not start
//      with one, then split with the GPT-2 regex (bpe_pretokenizer.hpp) unless use_regex is false;
//   5. BPE each pre-token's bytes (bpe_model.hpp); with ignore_merges a pre-token that is itself in the
//      vocabulary is taken whole. Results are cached per distinct pre-token within one call.
// decode(ids): the ByteLevel decoder: each token's characters are mapped back to bytes (a token with a
// character outside the byte alphabet, e.g. an added token of spaces, contributes its own UTF-8 bytes), the
// bytes are concatenated and ill-formed UTF-8 becomes U+FFFD per maximal subpart (as Rust's
// from_utf8_lossy). skip_special_tokens drops added tokens marked special.
// Post-processors are not applied: encode adds no special tokens unless EncodeOptions asks for them.
//
// Contract: the vocabulary holds a token for every byte that occurs in well-formed UTF-8 (checked:
// FormatError otherwise), so every valid text encodes; bytes 0xC0, 0xC1, 0xF5..0xFF may lack one (GPT-NeoX's
// vocabulary has none), and a text containing such a byte throws InvalidArgument. Ids are dense in
// [0, vocab_size()), possibly with unused ids (empty text).
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "bpe_added_tokens.hpp"
#include "bpe_model.hpp"
#include "bpe_pretokenizer.hpp"
#include "bpe_string_map.hpp"
#include "limits.hpp"
#include "tokenizer.hpp"
#include "tokenizer_word_cache.hpp"
#include "unicode.hpp"

namespace bimamba {

struct BpeOptions {
  std::vector<unicode::NormalForm> normalizers;  // applied in order
  bool add_prefix_space = false;
  bool use_regex = true;
  bool ignore_merges = false;
};

class BpeTokenizer : public Tokenizer {
 public:
  // vocab: (byte-level token text such as "Ġthe", id) pairs; merges in rank order as (left text, right text).
  // `source` names where the data came from in error messages.
  BpeTokenizer(const std::vector<std::pair<std::string, int32_t>>& vocab,
               const std::vector<std::pair<std::string, std::string>>& merges, const std::vector<AddedToken>& added,
               BpeOptions options, const std::string& source)
      : options_(std::move(options)) {
    // Ids index per-token tables of max id + 1 entries: bound them before allocating.
    const int64_t max_vocab = io_limits().max_vocab_size;
    int32_t size = 0;
    StringIdMap ids;  // token text -> id
    ids.reserve(vocab.size());
    for (const auto& [text, id] : vocab) {
      if (id < 0) BIMAMBA_THROW(FormatError, source, ": vocabulary token '", text, "' has negative id ", id);
      if (id >= max_vocab)
        BIMAMBA_THROW(FormatError, source, ": vocabulary token '", text, "' has id ", id, ", over the vocabulary limit of ",
                      max_vocab, " (io_limits().max_vocab_size)");
      if (!ids.insert(text, id)) BIMAMBA_THROW(FormatError, source, ": vocabulary token '", text, "' appears twice");
      size = std::max(size, id + 1);
    }
    for (const AddedToken& token : added) {
      if (token.id < 0) BIMAMBA_THROW(FormatError, source, ": added token '", token.content, "' has negative id ", token.id);
      if (token.id >= max_vocab)
        BIMAMBA_THROW(FormatError, source, ": added token '", token.content, "' has id ", token.id,
                      ", over the vocabulary limit of ", max_vocab, " (io_limits().max_vocab_size)");
      if (token.content.empty()) BIMAMBA_THROW(FormatError, source, ": added token ", token.id, " has empty content");
      size = std::max(size, token.id + 1);
    }
    text_.assign(static_cast<size_t>(size), std::string());
    bytes_.assign(static_cast<size_t>(size), std::string());
    special_.assign(static_cast<size_t>(size), false);
    for (const auto& [text, id] : vocab) set_token(id, text);
    for (const AddedToken& token : added) {
      set_token(token.id, token.content);
      special_[static_cast<size_t>(token.id)] = token.special;
      (token.normalized ? normalized_added_ : raw_added_).add(token);
    }
    std::string key;
    for (int b = 0; b < 256; ++b) {
      key.clear();
      unicode::append_utf8(key, alphabet_.byte_to_cp[static_cast<size_t>(b)]);
      const int32_t id = ids.find(key);
      if (id >= 0) {
        model_.set_byte_id(static_cast<unsigned char>(b), id);
      } else if (b < 0xC0 || (b >= 0xC2 && b <= 0xF4)) {
        BIMAMBA_THROW(FormatError, source, ": the vocabulary has no token for byte ", b, " ('", key,
                      "'); byte-level BPE needs every byte that occurs in UTF-8");
      }
    }
    model_.merges().reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const auto& [left, right] = merges[rank];
      key.assign(left).append(right);
      const int32_t l = ids.find(left), r = ids.find(right), m = ids.find(key);
      if (l < 0 || r < 0 || m < 0)
        BIMAMBA_THROW(FormatError, source, ": merge ", rank, " ('", left, "' '", right,
                      "') uses or makes a token that is not in the vocabulary");
      model_.merges().insert(l, r, static_cast<int32_t>(rank), m);
    }
    if (options_.ignore_merges)
      for (const auto& [text, id] : vocab)
        if (alphabet_.to_bytes(text, key)) whole_words_.insert(key, id);
    for (const char* name : {"<|endoftext|>", "<s>", "<|begin_of_text|>"})
      if (bos_id_ < 0) bos_id_ = special_id(added, name);
    for (const char* name : {"<|endoftext|>", "</s>", "<|end_of_text|>"})
      if (eos_id_ < 0) eos_id_ = special_id(added, name);
  }

  int32_t vocab_size() const override { return static_cast<int32_t>(text_.size()); }
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  std::string_view kind() const override { return "bpe"; }

  // Overrides the BOS / EOS guess (a special added token named <|endoftext|>, <s> / </s>, ...); -1: none.
  void set_bos_eos(int32_t bos, int32_t eos) {
    BIMAMBA_CHECK(bos >= -1 && bos < vocab_size() && eos >= -1 && eos < vocab_size(), "BpeTokenizer: BOS ", bos,
                  " / EOS ", eos, " outside the vocabulary of ", vocab_size());
    bos_id_ = bos;
    eos_id_ = eos;
  }

 protected:
  void encode_append(std::string_view text, std::vector<int32_t>& ids) const override {
    Call call{ids};
    std::vector<TextPiece> raw_pieces, pieces;
    raw_added_.find(text, 0, text.size(), raw_pieces);
    for (const TextPiece& raw : raw_pieces) {
      if (raw.id >= 0) {
        ids.push_back(raw.id);
        continue;
      }
      const std::string_view segment = normalize(text.substr(raw.begin, raw.end - raw.begin), call);
      pieces.clear();
      normalized_added_.find(segment, 0, segment.size(), pieces);
      for (const TextPiece& piece : pieces) {
        if (piece.id >= 0) {
          ids.push_back(piece.id);
        } else {
          pretokenize_and_merge(segment.substr(piece.begin, piece.end - piece.begin), call);
        }
      }
    }
  }

  std::string decode_checked(const std::vector<int32_t>& ids, const DecodeOptions& options) const override {
    std::string bytes;
    for (int32_t id : ids)
      if (!(options.skip_special_tokens && special_[static_cast<size_t>(id)])) bytes += bytes_[static_cast<size_t>(id)];
    std::string out;
    out.reserve(bytes.size());
    unicode::append_lossy_utf8(out, bytes, unicode::LossyMode::kMaximalSubpart);
    return out;
  }

  std::string token_text_checked(int32_t id) const override { return text_[static_cast<size_t>(id)]; }
  std::string token_bytes_checked(int32_t id) const override { return bytes_[static_cast<size_t>(id)]; }

 private:
  // State of one encode call: the output, the per-word cache (word -> [offset, offset + count) of ids, where
  // its first occurrence was written), strings the cache keys point into, BPE scratch.
  struct Call {
    std::vector<int32_t>& ids;
    WordCache cache{};
    std::deque<std::string> owned{};
    BpeScratch scratch{};
  };

  void set_token(int32_t id, const std::string& text) {
    text_[static_cast<size_t>(id)] = text;
    std::string& bytes = bytes_[static_cast<size_t>(id)];
    if (!alphabet_.to_bytes(text, bytes)) bytes = text;
  }

  static int32_t special_id(const std::vector<AddedToken>& added, const char* name) {
    for (const AddedToken& token : added)
      if (token.special && token.content == name) return token.id;
    return -1;
  }

  std::string_view normalize(std::string_view segment, Call& call) const {
    if (options_.normalizers.empty()) return segment;
    std::string_view current = segment;
    for (unicode::NormalForm form : options_.normalizers) {
      if (form == unicode::NormalForm::kNFC && unicode::is_quick_nfc(current)) continue;
      call.owned.push_back(unicode::normalize(current, form));
      current = call.owned.back();
    }
    return current;
  }

  void pretokenize_and_merge(std::string_view piece, Call& call) const {
    if (options_.add_prefix_space && piece[0] != ' ') {
      call.owned.push_back(" " + std::string(piece));
      piece = call.owned.back();
    }
    if (!options_.use_regex) {
      merge_word(piece, call);
      return;
    }
    for (size_t pos = 0; pos < piece.size();) {
      const size_t end = gpt2_pretoken_end(piece, pos);
      merge_word(piece.substr(pos, end - pos), call);
      pos = end;
    }
  }

  void merge_word(std::string_view word, Call& call) const {
    std::vector<int32_t>& ids = call.ids;
    call.cache.append(word, ids, [&] {
      for (char c : word)
        if (model_.byte_id(static_cast<unsigned char>(c)) < 0)
          BIMAMBA_THROW(InvalidArgument, "BpeTokenizer: the text is not valid UTF-8 (byte 0x", std::hex,
                        int{static_cast<unsigned char>(c)}, " has no token)");
      const int32_t whole = options_.ignore_merges ? whole_words_.find(word) : -1;
      if (whole >= 0) {
        ids.push_back(whole);
      } else {
        model_.encode_word(word, ids, call.scratch);
      }
    });
  }

  BpeOptions options_;
  ByteLevelAlphabet alphabet_;
  BpeModel model_;
  AddedTokenMatcher raw_added_, normalized_added_;
  StringIdMap whole_words_;         // bytes -> id (ignore_merges only)
  std::vector<std::string> text_;   // id -> token text
  std::vector<std::string> bytes_;  // id -> the bytes it decodes to
  std::vector<bool> special_;       // id -> special added token
  int32_t bos_id_ = -1, eos_id_ = -1;
};

}  // namespace bimamba
