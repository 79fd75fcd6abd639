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
//
// Reading a file streams it through a SAX handler: model.vocab and model.merges (100k entries for GPT-NeoX)
// go straight into vectors, only the small rest of the document becomes a DOM.
#pragma once

#include <climits>
#include <cstdint>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "bpe_tokenizer.hpp"
#include "tokenizer.hpp"

namespace bimamba {

namespace detail {

// object[key] as T, or fallback when absent or null. A value of another JSON type, a non-integer or
// out-of-range number for an integral T, is a FormatError naming where.key (nlohmann's get() would throw its
// type_error, or convert a float such as 5e53 to int with undefined behaviour).
template <class T>
T json_field(const nlohmann::json& object, const char* key, T fallback, const std::string& file, const char* where) {
  if (!object.contains(key) || object[key].is_null()) return fallback;
  const nlohmann::json& v = object[key];
  bool ok = true;
  if constexpr (std::is_same_v<T, bool>) {
    ok = v.is_boolean();
  } else if constexpr (std::is_integral_v<T>) {
    ok = v.is_number_integer() &&
         (v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max())
                                 : v.get<int64_t>() >= int64_t(std::numeric_limits<T>::min()) &&
                                       v.get<int64_t>() <= int64_t(std::numeric_limits<T>::max()));
  } else if constexpr (std::is_floating_point_v<T>) {
    ok = v.is_number();
  } else {
    ok = v.is_string();
  }
  if (!ok) BIMAMBA_THROW(FormatError, file, ": ", where, ".", key, " has the wrong type or range: ", v.dump().substr(0, 200));
  return v.get<T>();
}

// The "type" string of a component spec; "" when spec is not an object or has no string "type".
inline std::string type_of(const nlohmann::json& spec) {
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) return {};
  return spec["type"].get<std::string>();
}

inline void add_normalizer(const nlohmann::json& spec, std::vector<unicode::NormalForm>& out, const std::string& file) {
  if (spec.is_null()) return;
  const std::string type = type_of(spec);
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
  if (type_of(spec) == "Sequence" && spec.contains("pretokenizers") &&
      spec["pretokenizers"].is_array() && spec["pretokenizers"].size() == 1)
    byte_level = &spec["pretokenizers"][0];
  if (type_of(*byte_level) != "ByteLevel")
    BIMAMBA_THROW(FormatError, file, ": pre_tokenizer ", spec.dump().substr(0, 200),
                  " is not supported (only ByteLevel)");
  options.add_prefix_space = json_field<bool>(*byte_level, "add_prefix_space", false, file, "pre_tokenizer");
  options.use_regex = json_field<bool>(*byte_level, "use_regex", true, file, "pre_tokenizer");
}

// "a b" -> (a, b): the one space separates the two parts (byte-level tokens hold no spaces).
inline std::pair<std::string, std::string> split_merge(const std::string& text, size_t rank, const std::string& file) {
  const size_t space = text.find(' ', 1);
  if (space == std::string::npos || space + 1 >= text.size() || text.find(' ', space + 1) != std::string::npos)
    BIMAMBA_THROW(FormatError, file, ": merge ", rank, " is \"", text, "\", expected \"a b\"");
  return {text.substr(0, space), text.substr(space + 1)};
}

inline std::pair<std::string, std::string> read_merge(const nlohmann::json& merge, size_t rank, const std::string& file) {
  if (merge.is_string()) return split_merge(merge.get_ref<const std::string&>(), rank, file);
  if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string())
    return {merge[0].get<std::string>(), merge[1].get<std::string>()};
  BIMAMBA_THROW(FormatError, file, ": merge ", rank, " is ", merge.dump(), ", expected \"a b\" or [\"a\", \"b\"]");
}


}  // namespace detail

// tokenizer.json split into its bulk (vocabulary, merges) and the rest of the document, where model.vocab and
// model.merges are left as empty placeholders of the type they had.
struct BpeJsonParts {
  nlohmann::json root;
  std::vector<std::pair<std::string, int32_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
};

namespace detail {

inline int32_t vocab_id(const std::string& text, int64_t id, const std::string& file) {
  if (id < 0 || id > INT32_MAX) BIMAMBA_THROW(FormatError, file, ": model.vocab['", text, "'] = ", id, " is not a valid id");
  return static_cast<int32_t>(id);
}

// SAX handler that builds BpeJsonParts.
class TokenizerJsonReader : public nlohmann::json_sax<nlohmann::json> {
 public:
  TokenizerJsonReader(BpeJsonParts& parts, const std::string& file) : parts_(parts), file_(file) {}

  bool null() override { return value(nullptr); }
  bool boolean(bool v) override { return value(v); }
  bool number_integer(number_integer_t v) override {
    if (mode_ == Mode::kVocab) return vocab_entry(v);
    return value(v);
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (mode_ == Mode::kVocab) return vocab_entry(v > static_cast<uint64_t>(INT64_MAX) ? -1 : static_cast<int64_t>(v));
    return value(v);
  }
  bool number_float(number_float_t v, const string_t&) override { return value(v); }
  bool binary(binary_t&) override { return value(nullptr); }
  bool string(string_t& v) override {
    if (mode_ == Mode::kMerges) {
      parts_.merges.push_back(split_merge(v, parts_.merges.size(), file_));
      return true;
    }
    if (mode_ == Mode::kMergePair) {
      pair_.push_back(std::move(v));
      return true;
    }
    return value(std::move(v));
  }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool start_object(std::size_t) override {
    if (mode_ == Mode::kDom && stack_.size() == 2 && stack_.back() == model_ && key_ == "vocab") {
      add(nlohmann::json::object());
      mode_ = Mode::kVocab;
      return true;
    }
    check_dom("an object");
    check_depth();
    const bool is_model = stack_.size() == 1 && key_ == "model";
    stack_.push_back(add(nlohmann::json::object()));
    if (is_model) model_ = stack_.back();
    return true;
  }
  bool end_object() override {
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kDom;
    } else {
      stack_.pop_back();
    }
    return true;
  }
  bool start_array(std::size_t) override {
    if (mode_ == Mode::kDom && stack_.size() == 2 && stack_.back() == model_ && key_ == "merges") {
      add(nlohmann::json::array());
      mode_ = Mode::kMerges;
      return true;
    }
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kMergePair;
      pair_.clear();
      return true;
    }
    check_dom("an array");
    check_depth();
    stack_.push_back(add(nlohmann::json::array()));
    return true;
  }
  bool end_array() override {
    if (mode_ == Mode::kMergePair) {
      if (pair_.size() != 2)
        BIMAMBA_THROW(FormatError, file_, ": merge ", parts_.merges.size(), " has ", pair_.size(), " parts, expected 2");
      parts_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      mode_ = Mode::kMerges;
    } else if (mode_ == Mode::kMerges) {
      mode_ = Mode::kDom;
    } else {
      stack_.pop_back();
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    BIMAMBA_THROW(FormatError, file_, ": not valid JSON: ", e.what());
  }

 private:
  enum class Mode { kDom, kVocab, kMerges, kMergePair };

  bool vocab_entry(int64_t id) {
    parts_.vocab.emplace_back(key_, vocab_id(key_, id, file_));
    return true;
  }
  void check_depth() const {
    if (int64_t(stack_.size()) >= io_limits().max_json_depth)
      BIMAMBA_THROW(FormatError, file_, ": JSON nested deeper than the limit of ", io_limits().max_json_depth,
                    " (io_limits().max_json_depth)");
  }
  void check_dom(const char* what) const {
    if (mode_ == Mode::kVocab) BIMAMBA_THROW(FormatError, file_, ": model.vocab['", key_, "'] is ", what, ", not an id");
    if (mode_ != Mode::kDom)
      BIMAMBA_THROW(FormatError, file_, ": merge ", parts_.merges.size(), " holds ", what, ", expected \"a b\" or [\"a\", \"b\"]");
  }
  bool value(nlohmann::json v) {
    if (mode_ == Mode::kVocab)
      BIMAMBA_THROW(FormatError, file_, ": model.vocab['", key_, "'] = ", v.dump(), " is not a valid id");
    if (mode_ != Mode::kDom)
      BIMAMBA_THROW(FormatError, file_, ": merge ", parts_.merges.size(), " holds ", v.dump(),
                    ", expected \"a b\" or [\"a\", \"b\"]");
    add(std::move(v));
    return true;
  }
  // Puts v into the open container (or makes it the root) and returns where it now lives.
  nlohmann::json* add(nlohmann::json v) {
    if (stack_.empty()) {
      parts_.root = std::move(v);
      return &parts_.root;
    }
    nlohmann::json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    nlohmann::json& slot = parent[key_];
    slot = std::move(v);
    return &slot;
  }

  BpeJsonParts& parts_;
  const std::string& file_;
  std::vector<nlohmann::json*> stack_;  // open containers of the DOM
  const nlohmann::json* model_ = nullptr;
  std::string key_;
  std::vector<std::string> pair_;
  Mode mode_ = Mode::kDom;
};

}  // namespace detail

// Builds the tokenizer from the parts of `file`.
inline std::unique_ptr<BpeTokenizer> bpe_tokenizer_from_parts(const BpeJsonParts& parts, const std::string& file) {
  using detail::json_field;
  const nlohmann::json& root = parts.root;
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
      detail::type_of(root["decoder"]) != "ByteLevel")
    BIMAMBA_THROW(FormatError, file, ": decoder ", root["decoder"].dump().substr(0, 200),
                  " is not supported (only ByteLevel)");
  return std::make_unique<BpeTokenizer>(parts.vocab, parts.merges, added, std::move(options), file);
}

// Builds the tokenizer from a parsed tokenizer.json document (for documents built in memory).
inline std::unique_ptr<BpeTokenizer> bpe_tokenizer_from_json(const nlohmann::json& root, const std::string& file) {
  BpeJsonParts parts;
  parts.root = root;
  if (root.is_object() && root.contains("model") && root["model"].is_object()) {
    nlohmann::json& model = parts.root["model"];
    if (model.contains("vocab") && model["vocab"].is_object()) {
      for (const auto& [text, id] : model["vocab"].items()) {
        if (!id.is_number_integer())
          BIMAMBA_THROW(FormatError, file, ": model.vocab['", text, "'] = ", id.dump(), " is not a valid id");
        parts.vocab.emplace_back(text, detail::vocab_id(text, id.get<int64_t>(), file));
      }
      model["vocab"] = nlohmann::json::object();
    }
    if (model.contains("merges") && model["merges"].is_array()) {
      for (const auto& merge : model["merges"]) parts.merges.push_back(detail::read_merge(merge, parts.merges.size(), file));
      model["merges"] = nlohmann::json::array();
    }
  }
  return bpe_tokenizer_from_parts(parts, file);
}

// Parses `text` (the content of `file`) as tokenizer.json.
inline std::unique_ptr<BpeTokenizer> bpe_tokenizer_from_json_text(std::string_view text, const std::string& file) {
  BpeJsonParts parts;
  detail::TokenizerJsonReader reader(parts, file);
  nlohmann::json::sax_parse(text.begin(), text.end(), &reader);
  return bpe_tokenizer_from_parts(parts, file);
}

inline std::unique_ptr<BpeTokenizer> load_bpe_tokenizer(const std::string& path) {
  return bpe_tokenizer_from_json_text(detail::read_tokenizer_file(path), path);
}

}  // namespace bimamba
