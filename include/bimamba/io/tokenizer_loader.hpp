// load_tokenizer(path): opens a tokenizer file and picks the implementation from its content.
//
//   first non-blank byte '{'                     -> HF tokenizer.json (BpeTokenizer)
//   protobuf whose first key is a ModelProto field -> SentencePiece .model (SentencePieceTokenizer)
//   a directory                                   -> its tokenizer.json, else its tokenizer.model
// Anything else throws FormatError whose message starts with the path and says what the file looks like
// (empty, a safetensors file, a zip archive such as a PyTorch checkpoint, a text file, unknown bytes).
// Malformed files of a recognised kind throw the FormatError of their reader.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "../core/error.hpp"
#include "bpe_json.hpp"
#include "sentencepiece_tokenizer.hpp"
#include "tokenizer.hpp"

namespace bimamba {

namespace detail {

inline bool looks_like_safetensors(std::string_view data) {
  if (data.size() < 10) return false;
  uint64_t header = 0;
  for (int i = 0; i < 8; ++i) header |= static_cast<uint64_t>(static_cast<unsigned char>(data[static_cast<size_t>(i)])) << (8 * i);
  return header <= data.size() - 8 && data[8] == '{';
}

// No control bytes other than tab / newline / carriage return in the first 512 bytes. (A ModelProto has
// some within its first few bytes: the length of its first piece message and the 0x15 key of a score.)
inline bool looks_like_text(std::string_view data) {
  for (char byte : data.substr(0, 512)) {
    const auto c = static_cast<unsigned char>(byte);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) return false;
  }
  return true;
}

}  // namespace detail

// Builds a tokenizer from the bytes of a file; `path` names it in errors.
inline std::unique_ptr<Tokenizer> tokenizer_from_bytes(std::string_view data, const std::string& path) {
  if (data.empty()) BIMAMBA_THROW(FormatError, path, ": empty file, not a tokenizer");
  const size_t first = data.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && data[first] == '{') return bpe_tokenizer_from_json_text(data, path);
  if (detail::looks_like_safetensors(data))
    BIMAMBA_THROW(FormatError, path, ": this is a safetensors file, not a tokenizer (tokenizer.json or SentencePiece .model)");
  if (data.size() >= 4 && data.substr(0, 4) == std::string_view("PK\x03\x04", 4))
    BIMAMBA_THROW(FormatError, path, ": this is a zip archive (a PyTorch checkpoint?), not a tokenizer");
  if (detail::looks_like_text(data))
    BIMAMBA_THROW(FormatError, path, ": a text file, not a tokenizer (tokenizer.json or SentencePiece .model)");
  // A serialized ModelProto starts with the key of field 1, 2 or 3, length-delimited (0x0A, 0x12, 0x1A).
  const auto key = static_cast<unsigned char>(data[0]);
  if (key != 0x0A && key != 0x12 && key != 0x1A)
    BIMAMBA_THROW(FormatError, path, ": neither a tokenizer.json (JSON) nor a SentencePiece model (protobuf)");
  return std::make_unique<SentencePieceTokenizer>(parse_sentencepiece_model(data, path), path);
}

inline std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (fs::is_directory(path, error)) {
    for (const char* name : {"tokenizer.json", "tokenizer.model"}) {
      const fs::path candidate = fs::path(path) / name;
      if (fs::is_regular_file(candidate, error)) return load_tokenizer(candidate.string());
    }
    BIMAMBA_THROW(FormatError, path, ": directory has neither tokenizer.json nor tokenizer.model");
  }
  return tokenizer_from_bytes(detail::read_tokenizer_file(path), path);
}

}  // namespace bimamba
