// The tokenizer interface: text (UTF-8) <-> token ids (int32).
//
// Implementations: BpeTokenizer (HF tokenizer.json, byte-level BPE, bpe_tokenizer.hpp) and
// SentencePieceTokenizer (SentencePiece .model, BPE by scores, sentencepiece_tokenizer.hpp);
// load_tokenizer() (tokenizer_loader.hpp) picks one from a file's content.
//
// Contract:
//   encode(text)          the ids the reference library gives with no special tokens added (no BOS);
//                         EncodeOptions adds BOS / EOS when the tokenizer has them.
//   decode(ids)           the text; bytes that do not form valid UTF-8 become U+FFFD the way the reference
//                         library does it. Throws InvalidArgument for an id outside [0, vocab_size()).
//   token_text(id)        the token as stored in the vocabulary ("Ġthe", "▁the", "<0x0A>", "<s>").
//   token_bytes(id)       the bytes the token stands for on its own (for streaming output); empty for
//                         control tokens.
//   vocab_size()          one past the largest id.
//   bos_id() / eos_id()   -1 when the tokenizer has none.
// Objects are immutable after loading: every method is const and safe to call from several threads.
#pragma once

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"

namespace bimamba {

struct EncodeOptions {
  bool add_bos = false;  // prepend bos_id() (InvalidArgument when the tokenizer has none)
  bool add_eos = false;  // append eos_id() (likewise)
};

struct DecodeOptions {
  bool skip_special_tokens = false;  // drop special added tokens (HF) / control pieces are always dropped (SP)
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const {
    std::vector<int32_t> ids;
    if (options.add_bos) ids.push_back(require_special(bos_id(), "BOS"));
    encode_append(text, ids);
    if (options.add_eos) ids.push_back(require_special(eos_id(), "EOS"));
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids, const DecodeOptions& options = {}) const {
    for (int32_t id : ids) check_id(id);
    return decode_checked(ids, options);
  }

  std::string token_text(int32_t id) const { return token_text_checked(check_id(id)); }
  std::string token_bytes(int32_t id) const { return token_bytes_checked(check_id(id)); }

  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  // "bpe" (HF byte-level BPE) or "sentencepiece".
  virtual std::string_view kind() const = 0;

 protected:
  // Appends the ids of text (no special tokens added) to ids.
  virtual void encode_append(std::string_view text, std::vector<int32_t>& ids) const = 0;
  // Ids are already range-checked.
  virtual std::string decode_checked(const std::vector<int32_t>& ids, const DecodeOptions& options) const = 0;
  virtual std::string token_text_checked(int32_t id) const = 0;
  virtual std::string token_bytes_checked(int32_t id) const = 0;

 private:
  int32_t check_id(int32_t id) const {
    if (id < 0 || id >= vocab_size())
      BIMAMBA_THROW(InvalidArgument, "tokenizer: token id ", id, " is outside the vocabulary [0, ", vocab_size(), ")");
    return id;
  }
  int32_t require_special(int32_t id, const char* what) const {
    if (id < 0) BIMAMBA_THROW(InvalidArgument, "tokenizer (", kind(), "): no ", what, " token to add");
    return id;
  }
};

namespace detail {

// The whole file as bytes; Error naming the path when it cannot be read.
inline std::string read_tokenizer_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) BIMAMBA_THROW(Error, path, ": cannot open the tokenizer file");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) BIMAMBA_THROW(Error, path, ": read error");
  return data;
}

}  // namespace detail
}  // namespace bimamba
