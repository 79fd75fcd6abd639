// SentencePiece BPE tokenizer (LLaMA / LLaMA-2, the Bi-Mamba models): what sentencepiece's
// SentencePieceProcessor::Encode / Decode compute for a model_type = BPE ModelProto.
//
// encode(text):
//   1. normalize (identity character map only): ill-formed UTF-8 bytes become U+FFFD each;
//      remove_extra_whitespaces drops leading / trailing ' ' and collapses runs of ' ';
//      escape_whitespaces turns ' ' into "▁" (U+2581); add_dummy_prefix prepends "▁" to a non-empty result;
//   2. user-defined pieces are cut out (longest match) and never merged with neighbours;
//   3. BPE by scores: start from single characters; repeatedly merge the adjacent pair whose concatenation is
//      a piece (normal, user-defined or unused) with the highest score (ties: the leftmost pair); a
//      resulting unused piece is split back into the two symbols it was made of;
//   4. a symbol that is not a piece becomes its UTF-8 bytes as <0xNN> pieces when byte_fallback is on,
//      otherwise the unknown piece.
//   Speed-up, exact: when no piece has "▁" after a non-"▁" character, no merge crosses the boundary
//   before a "▁" that follows another character, so the text is cut there into words, each merged once per
//   distinct word (cache) with the same result as merging the whole text.
// decode(ids): control pieces vanish; the unknown piece is unk_surface (" ⁇ "); runs of byte pieces are
//   reassembled and ill-formed UTF-8 becomes U+FFFD per byte; "▁" becomes ' '; the first piece that
//   produces output loses one leading "▁" when add_dummy_prefix or remove_extra_whitespaces is set.
// encode adds no BOS / EOS (EncodeOptions does).
//
// Not supported (FormatError at load): model types other than BPE, a non-empty precompiled_charsmap
// (nmt_nfkc and other normalization rules), treat_whitespace_as_suffix.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "bpe_added_tokens.hpp"
#include "bpe_string_map.hpp"
#include "sentencepiece_model.hpp"
#include "tokenizer.hpp"
#include "tokenizer_word_cache.hpp"
#include "unicode.hpp"

namespace bimamba {

class SentencePieceTokenizer : public Tokenizer {
 public:
  SentencePieceTokenizer(SentencePieceModelProto proto, const std::string& source) : proto_(std::move(proto)) {
    if (proto_.model_type != SentencePieceModelType::kBpe)
      BIMAMBA_THROW(FormatError, source, ": SentencePiece model_type ", static_cast<int>(proto_.model_type),
                    " is not supported (only BPE = 2)");
    if (!proto_.precompiled_charsmap.empty())
      BIMAMBA_THROW(FormatError, source, ": SentencePiece normalizer '", proto_.normalizer_name,
                    "' with a precompiled character map is not supported (only identity)");
    if (proto_.treat_whitespace_as_suffix)
      BIMAMBA_THROW(FormatError, source, ": SentencePiece treat_whitespace_as_suffix is not supported");
    byte_id_.fill(-1);
    const auto size = static_cast<int32_t>(proto_.pieces.size());
    for (int32_t id = 0; id < size; ++id) {
      const SentencePieceEntry& p = proto_.pieces[static_cast<size_t>(id)];
      switch (p.type) {
        case PieceType::kNormal:
        case PieceType::kUserDefined:
        case PieceType::kUnused:
          pieces_.insert(p.piece, id);
          if (p.type == PieceType::kUserDefined) user_defined_.add(AddedToken{id, p.piece});
          if (!prefix_whitespace_only(p.piece)) whitespace_words_ = false;
          break;
        case PieceType::kUnknown:
          if (unk_id_ >= 0) BIMAMBA_THROW(FormatError, source, ": SentencePiece model has two unknown pieces");
          unk_id_ = id;
          reserved_.insert(p.piece, id);
          break;
        case PieceType::kByte: {
          const int byte = parse_byte_piece(p.piece);
          if (byte < 0) BIMAMBA_THROW(FormatError, source, ": byte piece ", id, " '", p.piece, "' is not <0xNN>");
          byte_id_[static_cast<size_t>(byte)] = id;
          reserved_.insert(p.piece, id);
          break;
        }
        case PieceType::kControl:
          reserved_.insert(p.piece, id);
          break;
      }
    }
    if (unk_id_ < 0) BIMAMBA_THROW(FormatError, source, ": SentencePiece model has no unknown piece");
    if (proto_.byte_fallback)
      for (int b = 0; b < 256; ++b)
        if (byte_id_[static_cast<size_t>(b)] < 0)
          BIMAMBA_THROW(FormatError, source, ": byte_fallback is on but there is no piece for byte ", b);
    const auto special = [&](int32_t id) { return id >= 0 && id < size ? id : -1; };
    bos_id_ = special(proto_.bos_id);
    eos_id_ = special(proto_.eos_id);
  }

  int32_t vocab_size() const override { return static_cast<int32_t>(proto_.pieces.size()); }
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  std::string_view kind() const override { return "sentencepiece"; }
  const SentencePieceModelProto& proto() const { return proto_; }

  // The normalized text that BPE runs on (step 1).
  std::string normalize(std::string_view text) const {
    std::string out;
    out.reserve(text.size() + text.size() / 4 + 3);
    const char* space = proto_.escape_whitespaces ? kSpaceSymbol : " ";
    bool pending_space = false;  // remove_extra_whitespaces: a run of ' ' seen after some text
    for (size_t i = 0; i < text.size();) {
      const unicode::DecodedChar c = unicode::decode_utf8(text.data() + i, text.size() - i);
      i += c.cp == unicode::kInvalid ? 1 : c.len;
      if (c.cp == ' ') {
        if (!proto_.remove_extra_whitespaces) {
          out += space;
        } else if (!out.empty()) {
          pending_space = true;
        }
        continue;
      }
      if (pending_space) out += space;
      pending_space = false;
      if (c.cp == unicode::kInvalid) {
        out += unicode::kReplacementUtf8;
      } else {
        out.append(text.data() + i - c.len, c.len);
      }
    }
    if (!out.empty() && proto_.add_dummy_prefix) out.insert(0, space);
    return out;
  }

 protected:
  void encode_append(std::string_view text, std::vector<int32_t>& ids) const override {
    const std::string normalized = normalize(text);
    Call call{ids};
    std::vector<TextPiece> pieces;
    user_defined_.find(normalized, 0, normalized.size(), pieces);
    for (const TextPiece& piece : pieces) {
      if (piece.id >= 0) {
        ids.push_back(piece.id);
        continue;
      }
      const std::string_view span = std::string_view(normalized).substr(piece.begin, piece.end - piece.begin);
      if (!whitespace_words_) {
        encode_word(span, call);
        continue;
      }
      size_t start = 0;
      bool previous_space = false;
      for (size_t i = 0; i < span.size();) {  // cut before a "▁" that follows a non-"▁" character
        const bool space = span.compare(i, 3, kSpaceSymbol) == 0;
        if (space && i > start && !previous_space) {
          encode_word(span.substr(start, i - start), call);
          start = i;
        }
        previous_space = space;
        i += space ? 3 : utf8_length(span, i);
      }
      if (start < span.size()) encode_word(span.substr(start), call);
    }
  }

  std::string decode_checked(const std::vector<int32_t>& ids, const DecodeOptions& options) const override {
    (void)options;  // control pieces are always dropped, as sentencepiece does
    std::string out, bytes;
    bool at_start = true;  // no piece has produced output yet
    for (int32_t id : ids) {
      const SentencePieceEntry& p = proto_.pieces[static_cast<size_t>(id)];
      if (p.type == PieceType::kByte) {
        bytes += static_cast<char>(parse_byte_piece(p.piece));
        at_start = false;
        continue;
      }
      unicode::append_lossy_utf8(out, bytes, unicode::LossyMode::kPerByte);
      bytes.clear();
      if (p.type == PieceType::kControl) continue;
      if (p.type == PieceType::kUnknown) {
        out += proto_.unk_surface;
        at_start = false;
        continue;
      }
      std::string_view piece = p.piece;
      if (at_start && (proto_.add_dummy_prefix || proto_.remove_extra_whitespaces) && piece.compare(0, 3, kSpaceSymbol) == 0)
        piece.remove_prefix(3);
      append_unescaped(out, piece);
      at_start = false;
    }
    unicode::append_lossy_utf8(out, bytes, unicode::LossyMode::kPerByte);
    return out;
  }

  std::string token_text_checked(int32_t id) const override { return proto_.pieces[static_cast<size_t>(id)].piece; }

  std::string token_bytes_checked(int32_t id) const override {
    const SentencePieceEntry& p = proto_.pieces[static_cast<size_t>(id)];
    switch (p.type) {
      case PieceType::kByte: return std::string(1, static_cast<char>(parse_byte_piece(p.piece)));
      case PieceType::kControl: return {};
      case PieceType::kUnknown: return proto_.unk_surface;
      default: {
        std::string out;
        append_unescaped(out, p.piece);
        return out;
      }
    }
  }

 private:
  static constexpr const char* kSpaceSymbol = "\xE2\x96\x81";  // U+2581 "▁"

  struct Symbol {
    uint32_t begin, size;  // bytes of the word; size 0: merged away
    int32_t prev, next;
  };
  struct Candidate {
    float score;
    int32_t left, right;
    uint32_t size;
  };
  struct CandidateOrder {  // max score first, then the leftmost
    bool operator()(const Candidate& a, const Candidate& b) const {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
  };
  struct Call {
    std::vector<int32_t>& ids;
    WordCache cache{};
    std::vector<Symbol> symbols{};
    std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder> agenda{};
    std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> unmerge{};
  };

  static size_t utf8_length(std::string_view s, size_t i) {
    const unicode::DecodedChar c = unicode::decode_utf8(s.data() + i, s.size() - i);
    return c.cp == unicode::kInvalid ? 1 : c.len;
  }

  // True when "▁" occurs in piece only in a leading run.
  static bool prefix_whitespace_only(std::string_view piece) {
    size_t i = 0;
    while (piece.compare(i, 3, kSpaceSymbol) == 0) i += 3;
    return piece.find(kSpaceSymbol, i) == std::string_view::npos;
  }

  // "<0x41>" -> 0x41; -1 when the piece is not of that form.
  static int parse_byte_piece(std::string_view piece) {
    if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
    int value = 0;
    for (size_t i = 3; i < 5; ++i) {
      const char c = piece[i];
      const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (digit < 0) return -1;
      value = value * 16 + digit;
    }
    return value;
  }

  static void append_unescaped(std::string& out, std::string_view piece) {
    for (size_t pos = 0;;) {
      const size_t hit = piece.find(kSpaceSymbol, pos);
      if (hit == std::string_view::npos) {
        out.append(piece.substr(pos));
        return;
      }
      out.append(piece.substr(pos, hit - pos));
      out += ' ';
      pos = hit + 3;
    }
  }

  // sentencepiece's PieceToId (the two maps are disjoint, so the order of the lookups does not matter).
  int32_t piece_id(std::string_view piece) const {
    if (const int32_t id = pieces_.find(piece); id >= 0) return id;
    if (const int32_t id = reserved_.find(piece); id >= 0) return id;
    return unk_id_;
  }

  bool is_unused(int32_t id) const { return proto_.pieces[static_cast<size_t>(id)].type == PieceType::kUnused; }

  // Emits the ids of one word (cached per call).
  void encode_word(std::string_view word, Call& call) const {
    call.cache.append(word, call.ids, [&] { merge(word, call); });
  }

  void merge(std::string_view word, Call& call) const {
    auto& symbols = call.symbols;
    auto& agenda = call.agenda;
    symbols.clear();
    call.unmerge.clear();
    for (uint32_t i = 0; i < word.size();) {
      const auto len = static_cast<uint32_t>(utf8_length(word, i));
      const auto index = static_cast<int32_t>(symbols.size());
      symbols.push_back({i, len, index - 1, i + len < word.size() ? index + 1 : -1});
      i += len;
    }
    const auto try_pair = [&](int32_t left, int32_t right) {
      if (left < 0 || right < 0) return;
      const Symbol& l = symbols[static_cast<size_t>(left)];
      const Symbol& r = symbols[static_cast<size_t>(right)];
      const std::string_view joined = word.substr(l.begin, l.size + r.size);
      const int32_t id = pieces_.find(joined);
      if (id < 0) return;
      agenda.push({proto_.pieces[static_cast<size_t>(id)].score, left, right, l.size + r.size});
      if (is_unused(id))
        call.unmerge[joined] = {word.substr(l.begin, l.size), word.substr(r.begin, r.size)};
    };
    for (size_t i = 1; i < symbols.size(); ++i) try_pair(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));
    while (!agenda.empty()) {
      const Candidate top = agenda.top();
      agenda.pop();
      Symbol& l = symbols[static_cast<size_t>(top.left)];
      Symbol& r = symbols[static_cast<size_t>(top.right)];
      if (l.size == 0 || r.size == 0 || l.size + r.size != top.size) continue;  // stale
      l.size += r.size;
      l.next = r.next;
      if (r.next >= 0) symbols[static_cast<size_t>(r.next)].prev = top.left;
      r.size = 0;
      try_pair(l.prev, top.left);
      try_pair(top.left, l.next);
    }
    for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[static_cast<size_t>(i)].next)
      emit(word.substr(symbols[static_cast<size_t>(i)].begin, symbols[static_cast<size_t>(i)].size), call);
  }

  // Emits one final symbol: resegments unused pieces, falls back to bytes or the unknown piece.
  void emit(std::string_view symbol, Call& call) const {
    const int32_t id = piece_id(symbol);
    if (id != unk_id_ && is_unused(id)) {
      if (const auto it = call.unmerge.find(symbol); it != call.unmerge.end()) {
        emit(it->second.first, call);
        emit(it->second.second, call);
        return;
      }
    }
    if (id == unk_id_ && proto_.byte_fallback) {
      for (char b : symbol) call.ids.push_back(byte_id_[static_cast<unsigned char>(b)]);
      return;
    }
    call.ids.push_back(id);
  }

  SentencePieceModelProto proto_;
  StringIdMap pieces_;    // normal, user-defined, unused (mergeable)
  StringIdMap reserved_;  // unknown, control, byte
  AddedTokenMatcher user_defined_;
  std::array<int32_t, 256> byte_id_{};
  int32_t unk_id_ = -1, bos_id_ = -1, eos_id_ = -1;
  bool whitespace_words_ = true;  // the word-cut speed-up is exact for this vocabulary
};

inline std::unique_ptr<SentencePieceTokenizer> load_sentencepiece_tokenizer(const std::string& path) {
  return std::make_unique<SentencePieceTokenizer>(
      parse_sentencepiece_model(detail::read_tokenizer_file(path), path), path);
}

}  // namespace bimamba
