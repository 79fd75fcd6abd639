// Reads an HF tokenizer.json into a BpeTokenizer.
//
// Supported (anything else throws FormatError naming the file and the unsupported value):
//   model          {"type": "BPE"} with "vocab" {text: id}, "merges" as "a b" strings or ["a", "b"] pairs,
//                  "ignore_merges"; "dropout" null or 0, no continuing_subword_prefix / end_of_word_suffix.
//                  "unk_token", "fuse_unk", "byte_fallback" do not matter: every byte has a token.
//   normalizer     null, NFC, NFD, or a Sequence of those.
//   pre_tokenizer  ByteLevel (add_prefix_space, use_regex), alone or as the only member of a Sequence.
//   decoder        null or ByteLevel.
//   added_tokens   id, content, special, single_word, lstrip, rstrip, normalized.
// Ignored: truncation, padding, post_processor (encode adds no special tokens by itself).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "bpe_tokenizer.hpp"
#include "tokenizer.hpp"

namespace bimamba {

namespace detail {

inline void add_normalizer(const nlohmann::json& spec, std::vector<unicode::NormalForm>& out, const std::string& file) {
  if (spec.is_null()) return;
  const std::string type = spec.is_object() ? spec.value("type", std::string()) : std::string();
  if (type == "NFC") {
    out.push_back(unicode::NormalForm::kNFC);
  } else if (type == "NFD") {
    out.push_back(unicode::NormalForm::kNFD);
  } else if (type == "Sequence" && spec.contains("normalizers") && spec["normalizers"].is_array()) {
    for (const auto& inner : spec["normalizers"]) add_normalizer(inner, out, file);
  } else {
    BIMAMBA_THROW(FormatError, file, ": normalizer ", spec.dump(), " is not supported (only NFC, NFD, Sequence)");
  }
}

inline void read_pre_tokenizer(const nlohmann::json& spec, BpeOptions& options, const std::string& file) {
  const nlohmann::json* byte_level = &spec;
  if (spec.is_object() && spec.value("type", std::string()) == "Sequence" && spec.contains("pretokenizers") &&
      spec["pretokenizers"].is_array() && spec["pretokenizers"].size() == 1)
    byte_level = &spec["pretokenizers"][0];
  if (!byte_level->is_object() || byte_level->value("type", std::string()) != "ByteLevel")
    BIMAMBA_THROW(FormatError, file, ": pre_tokenizer ", spec.dump().substr(0, 200),
                  " is not supported (only ByteLevel)");
  options.add_prefix_space = byte_level->value("add_prefix_space", false);
  options.use_regex = byte_level->value("use_regex", true);
}

inline std::pair<std::string, std::string> read_merge(const nlohmann::json& merge, size_t rank, const std::string& file) {
  if (merge.is_string()) {
    const std::string& text = merge.get_ref<const std::string&>();
    const size_t space = text.find(' ', 1);
    if (space != std::string::npos && space + 1 < text.size() && text.find(' ', space + 1) == std::string::npos)
      return {text.substr(0, space), text.substr(space + 1)};
  } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
    return {merge[0].get<std::string>(), merge[1].get<std::string>()};
  }
  BIMAMBA_THROW(FormatError, file, ": merge ", rank, " is ", merge.dump(), ", expected \"a b\" or [\"a\", \"b\"]");
}

template <class T>
T json_field(const nlohmann::json& object, const char* key, T fallback, const std::string& file, const char* where) {
  if (!object.contains(key) || object[key].is_null()) return fallback;
  try {
    return object[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    BIMAMBA_THROW(FormatError, file, ": ", where, ".", key, " has the wrong type: ", object[key].dump());
  }
}

}  // namespace detail

// Builds the tokenizer from the parsed JSON of `file`.
inline std::unique_ptr<BpeTokenizer> bpe_tokenizer_from_json(const nlohmann::json& root, const std::string& file) {
  using detail::json_field;
  if (!root.is_object()) BIMAMBA_THROW(FormatError, file, ": tokenizer.json must be a JSON object");
  if (!root.contains("model") || !root["model"].is_object())
    BIMAMBA_THROW(FormatError, file, ": tokenizer.json has no \"model\" object");
  const nlohmann::json& model = root["model"];
  const std::string type = json_field<std::string>(model, "type", "BPE", file, "model");
  if (type != "BPE") BIMAMBA_THROW(FormatError, file, ": model type '", type, "' is not supported (only BPE)");
  if (json_field<double>(model, "dropout", 0.0, file, "model") != 0.0)
    BIMAMBA_THROW(FormatError, file, ": BPE dropout is not supported");
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (!json_field<std::string>(model, affix, "", file, "model").empty())
      BIMAMBA_THROW(FormatError, file, ": model.", affix, " is not supported");
  if (!model.contains("vocab") || !model["vocab"].is_object())
    BIMAMBA_THROW(FormatError, file, ": model.vocab is missing or not an object");
  if (!model.contains("merges") || !model["merges"].is_array())
    BIMAMBA_THROW(FormatError, file, ": model.merges is missing or not an array");

  std::unordered_map<std::string, int32_t> vocab;
  vocab.reserve(model["vocab"].size());
  for (const auto& [text, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
      BIMAMBA_THROW(FormatError, file, ": model.vocab['", text, "'] = ", id.dump(), " is not a valid id");
    vocab.emplace(text, static_cast<int32_t>(id.get<int64_t>()));
  }
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(model["merges"].size());
  for (size_t rank = 0; rank < model["merges"].size(); ++rank)
    merges.push_back(detail::read_merge(model["merges"][rank], rank, file));

  std::vector<AddedToken> added;
  if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
    if (!root["added_tokens"].is_array()) BIMAMBA_THROW(FormatError, file, ": added_tokens is not an array");
    for (const auto& entry : root["added_tokens"]) {
      if (!entry.is_object() || !entry.contains("id") || !entry.contains("content"))
        BIMAMBA_THROW(FormatError, file, ": added token ", entry.dump(), " lacks id or content");
      AddedToken token;
      token.id = json_field<int32_t>(entry, "id", -1, file, "added_tokens[]");
      token.content = json_field<std::string>(entry, "content", "", file, "added_tokens[]");
      token.special = json_field<bool>(entry, "special", false, file, "added_tokens[]");
      token.single_word = json_field<bool>(entry, "single_word", false, file, "added_tokens[]");
      token.lstrip = json_field<bool>(entry, "lstrip", false, file, "added_tokens[]");
      token.rstrip = json_field<bool>(entry, "rstrip", false, file, "added_tokens[]");
      token.normalized = json_field<bool>(entry, "normalized", !token.special, file, "added_tokens[]");
      added.push_back(std::move(token));
    }
  }

  BpeOptions options;
  options.ignore_merges = json_field<bool>(model, "ignore_merges", false, file, "model");
  if (root.contains("normalizer")) detail::add_normalizer(root["normalizer"], options.normalizers, file);
  if (!root.contains("pre_tokenizer") || root["pre_tokenizer"].is_null())
    BIMAMBA_THROW(FormatError, file, ": no pre_tokenizer; only ByteLevel BPE tokenizers are supported");
  detail::read_pre_tokenizer(root["pre_tokenizer"], options, file);
  if (root.contains("decoder") && !root["decoder"].is_null() &&
      !(root["decoder"].is_object() && root["decoder"].value("type", std::string()) == "ByteLevel"))
    BIMAMBA_THROW(FormatError, file, ": decoder ", root["decoder"].dump().substr(0, 200),
                  " is not supported (only ByteLevel)");
  return std::make_unique<BpeTokenizer>(vocab, merges, added, std::move(options), file);
}

// Parses `text` (the content of `file`) as tokenizer.json.
inline std::unique_ptr<BpeTokenizer> bpe_tokenizer_from_json_text(std::string_view text, const std::string& file) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    BIMAMBA_THROW(FormatError, file, ": not valid JSON: ", e.what());
  }
  return bpe_tokenizer_from_json(root, file);
}

inline std::unique_ptr<BpeTokenizer> load_bpe_tokenizer(const std::string& path) {
  return bpe_tokenizer_from_json_text(detail::read_tokenizer_file(path), path);
}

}  // namespace bimamba
