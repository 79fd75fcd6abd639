// JSON as Python writes it: strict JSON plus the literals Infinity, -Infinity and NaN (Python's json module
// emits them for non-finite floats, and real hub config.json files carry them, e.g.
// "time_step_limit": [0.0, Infinity]). nlohmann::json rejects those literals, so parse_json first rewrites
// each one found *outside string literals* into a sentinel string, parses, then turns the sentinel strings
// back into the double +inf / -inf / NaN. Text that already contains the sentinel prefix is refused (the
// rewrite could not be told apart from it), which no real file does.
//
//   parse_json(text, what)   -> nlohmann::json      FormatError "<what>: ..." on a syntax error
//   read_json_file(path)     -> nlohmann::json      the same, `what` = path
//   json_require(j, key, what) -> const json&       FormatError "<what>: missing required key '<key>'"
//   json_number / json_int / json_bool / json_string (j, key, what): typed required values, FormatError
//       naming the key and the file when the value is missing or of the wrong type.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "../core/error.hpp"
#include "file.hpp"
#include "limits.hpp"

namespace bimamba {

namespace detail {
inline constexpr const char* kJsonNonFinitePrefix = "\x01" "bimamba-nonfinite:";

// Rewrites the non-finite literals outside strings into sentinel strings, and refuses arrays / objects nested
// deeper than io_limits().max_json_depth (the DOM is later walked recursively).
inline std::string rewrite_nonfinite_literals(const std::string& text, const std::string& what) {
  const std::string prefix = kJsonNonFinitePrefix;
  // The prefix starts with a control character, which strict JSON only allows escaped (\u0001): a file can
  // contain it only as that escape, which we check for.
  if (text.find("\\u0001bimamba-nonfinite:") != std::string::npos || text.find(prefix) != std::string::npos)
    BIMAMBA_THROW(FormatError, what, ": contains the reserved text 'bimamba-nonfinite:'");
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  int64_t depth = 0;
  const int64_t max_depth = io_limits().max_json_depth;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size()) {
        out += text[++i];
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      out += c;
      continue;
    }
    if ((c == '[' || c == '{') && ++depth > max_depth)
      BIMAMBA_THROW(FormatError, what, ": JSON nested deeper than the limit of ", max_depth, " (at byte ", i,
                    "; io_limits().max_json_depth)");
    if (c == ']' || c == '}') --depth;
    auto literal_at = [&](const char* lit) { return text.compare(i, std::strlen(lit), lit) == 0; };
    const char* replaced = nullptr;
    size_t length = 0;
    if (literal_at("-Infinity")) {
      replaced = "-inf", length = 9;
    } else if (literal_at("Infinity")) {
      replaced = "+inf", length = 8;
    } else if (literal_at("NaN")) {
      replaced = "nan", length = 3;
    }
    if (replaced) {
      out += "\"\\u0001bimamba-nonfinite:";
      out += replaced;
      out += '"';
      i += length - 1;
    } else {
      out += c;
    }
  }
  return out;
}

inline void restore_nonfinite(nlohmann::json& j) {
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    const std::string prefix = kJsonNonFinitePrefix;
    if (s.compare(0, prefix.size(), prefix) == 0) {
      const std::string kind = s.substr(prefix.size());
      j = kind == "nan" ? std::numeric_limits<double>::quiet_NaN()
                        : (kind == "-inf" ? -1.0 : 1.0) * std::numeric_limits<double>::infinity();
    }
  } else if (j.is_structured()) {
    for (auto& element : j) restore_nonfinite(element);
  }
}
}  // namespace detail

inline nlohmann::json parse_json(const std::string& text, const std::string& what) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(detail::rewrite_nonfinite_literals(text, what));
  } catch (const nlohmann::json::exception& e) {
    BIMAMBA_THROW(FormatError, what, ": invalid JSON: ", e.what());
  }
  detail::restore_nonfinite(j);
  return j;
}

inline nlohmann::json read_json_file(const std::string& path) { return parse_json(read_text_file(path), path); }

inline const nlohmann::json& json_require(const nlohmann::json& j, const std::string& key, const std::string& what) {
  if (!j.is_object()) BIMAMBA_THROW(FormatError, what, ": expected a JSON object holding '", key, "'");
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) BIMAMBA_THROW(FormatError, what, ": missing required key '", key, "'");
  return *it;
}

inline double json_number(const nlohmann::json& j, const std::string& key, const std::string& what) {
  const auto& v = json_require(j, key, what);
  if (!v.is_number()) BIMAMBA_THROW(FormatError, what, ": '", key, "' must be a number, got ", v.dump());
  return v.get<double>();
}

inline int64_t json_int(const nlohmann::json& j, const std::string& key, const std::string& what) {
  const auto& v = json_require(j, key, what);
  if (!v.is_number_integer()) BIMAMBA_THROW(FormatError, what, ": '", key, "' must be an integer, got ", v.dump());
  return v.get<int64_t>();
}

inline bool json_bool(const nlohmann::json& j, const std::string& key, const std::string& what) {
  const auto& v = json_require(j, key, what);
  if (!v.is_boolean()) BIMAMBA_THROW(FormatError, what, ": '", key, "' must be true or false, got ", v.dump());
  return v.get<bool>();
}

inline std::string json_string(const nlohmann::json& j, const std::string& key, const std::string& what) {
  const auto& v = json_require(j, key, what);
  if (!v.is_string()) BIMAMBA_THROW(FormatError, what, ": '", key, "' must be a string, got ", v.dump());
  return v.get<std::string>();
}

}  // namespace bimamba
