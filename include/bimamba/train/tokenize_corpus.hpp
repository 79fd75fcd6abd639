// Tokenizes text files once into a token file (io/token_file.hpp) for training.
//
//   tokenize_corpus(tokenizer, text_files, out_path, options) -> number of tokens written
//
// Each file is one document, encoded whole (tokenizer.encode(text), no BOS), so that its ids are exactly the
// reference library's for that file; with options.eos_between_documents (default) the tokenizer's EOS id is
// appended after every document, when it has one, so windows that cross a document boundary see it. The
// token file's vocab size is tokenizer.vocab_size(); it is written atomically. A file that cannot be read
// throws Error naming it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../io/file.hpp"
#include "../io/token_file.hpp"
#include "../io/tokenizer.hpp"

namespace bimamba {

struct TokenizeCorpusOptions {
  bool eos_between_documents = true;
  TokenDType dtype = TokenDType::Auto;
};

inline int64_t tokenize_corpus(const Tokenizer& tokenizer, const std::vector<std::string>& text_files,
                               const std::string& out_path, const TokenizeCorpusOptions& options = {}) {
  BIMAMBA_CHECK(!text_files.empty(), "tokenize_corpus ", out_path, ": no text files given");
  std::vector<int32_t> tokens;
  for (const std::string& path : text_files) {
    const std::vector<int32_t> ids = tokenizer.encode(read_text_file(path));
    tokens.insert(tokens.end(), ids.begin(), ids.end());
    if (options.eos_between_documents && tokenizer.eos_id() >= 0) tokens.push_back(tokenizer.eos_id());
  }
  write_token_file(out_path, tokens, tokenizer.vocab_size(), options.dtype);
  return int64_t(tokens.size());
}

}  // namespace bimamba
