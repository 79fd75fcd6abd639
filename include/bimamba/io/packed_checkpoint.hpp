// The packed Bi-Mamba checkpoint: one safetensors file that stands alone (config inside) and whose size is
// the storage claim (docs/storage.md).
//
// Contents (tensor names as in an HF checkpoint, model/storage.hpp model_tensor_specs):
//   <layer>.mixer.in_proj.signs / out_proj.signs   U32 (or U8) [out, ceil(in / W)], W = 8 * word bytes:
//       the signs s(W) of the latent (out, in) weight, packed along `in` (tensor/bit_tensor.hpp): sign (i, j) is
//       bit j % W (bit 0 = least significant) of word j / W of row i; 1 means +1 (w >= 0, also -0.0), 0 means
//       -1; padding bits of the last word of a row are 0. Words are little-endian, so a U8 and a U32 file hold
//       the same bytes per row apart from the row padding.
//   <layer>.mixer.in_proj.wscale / wbias ...       alpha / beta [1, in] in PackedOptions::scale_dtype
//   backbone.embeddings.weight (and lm_head.weight when untied)  in PackedOptions::embedding_dtype
//   A_log, D, dt_bias                              F32
//   everything else (norms, conv1d, biases)        in PackedOptions::float_dtype
// __metadata__ (all strings):
//   "format": "bimamba-packed", "format_version": "1",
//   "config": the ModelConfig as JSON (packed_config_to_json),
//   "sign_bit_order": "lsb0",  "sign_word": "U32" | "U8",
//   "sign_shapes": JSON object {"<name>.signs": [out, in]} (the logical shapes).
// A full-precision model (config.binary false) is stored the same way with no .signs tensors.
//
// API:
//   pack_checkpoint(config, source, opts, &zeros) -> the packed tensors; source(name) returns the latent /
//       full-precision tensor of that HF name (any float dtype); `zeros` counts latent weights exactly 0
//   save_packed_checkpoint(path, config, tensors, opts): validates and writes atomically (nothing is left
//       behind on failure)
//   PackedCheckpoint(path): opens and validates (FormatError "<path>: ..." naming the tensor / key);
//       signs<Word>(prefix) -> BitTensor, floats(name) -> float values, latent(name) -> a float HostTensor in
//       which the binary weights are +-1 (s(+-1) gives back the stored signs), for the latent model path;
//       storage() -> the StorageReport of the file.
#pragma once

#include <sys/stat.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../core/dtype.hpp"
#include "../core/error.hpp"
#include "../model/config.hpp"
#include "../model/config_io.hpp"
#include "../model/storage.hpp"
#include "../tensor/bit_tensor.hpp"
#include "host_tensor.hpp"
#include "json.hpp"
#include "safetensors.hpp"

namespace bimamba {

inline constexpr const char* kPackedFormatName = "bimamba-packed";
inline constexpr const char* kPackedFormatVersion = "1";

// ---- config <-> JSON (the packed file's own schema: the ModelConfig fields by name) ---------------------
inline nlohmann::ordered_json packed_config_to_json(const ModelConfig& c) {
  nlohmann::ordered_json j;
  j["architecture"] = architecture_name(c.architecture);
  j["binary"] = c.binary;
  j["d_model"] = c.d_model;
  j["n_layer"] = c.n_layer;
  j["vocab_size"] = c.vocab_size;
  j["pad_vocab_size_multiple"] = c.pad_vocab_size_multiple;
  j["d_state"] = c.d_state;
  j["d_conv"] = c.d_conv;
  j["expand"] = c.expand;
  j["headdim"] = c.headdim;
  j["ngroups"] = c.ngroups;
  j["chunk_size"] = c.chunk_size;
  j["dt_rank"] = c.dt_rank;
  j["conv_bias"] = c.conv_bias;
  j["proj_bias"] = c.proj_bias;
  j["tie_embeddings"] = c.tie_embeddings;
  j["residual_in_fp32"] = c.residual_in_fp32;
  j["norm_before_gate"] = c.norm_before_gate;
  j["norm_eps"] = c.norm_eps;
  j["dt_limit_min"] = c.dt_limit_min;
  // JSON has no infinity: an unbounded limit is written as null.
  j["dt_limit_max"] = std::isinf(c.dt_limit_max) ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(c.dt_limit_max);
  return j;
}

inline ModelConfig packed_config_from_json(const nlohmann::json& j, const std::string& what) {
  ModelConfig c;
  const std::string arch = json_string(j, "architecture", what);
  if (arch == "mamba2") c.architecture = Architecture::Mamba2;
  else if (arch == "mamba1") c.architecture = Architecture::Mamba1;
  else BIMAMBA_THROW(FormatError, what, ": unknown architecture '", arch, "' (expected mamba2 or mamba1)");
  c.binary = json_bool(j, "binary", what);
  c.d_model = detail::config_int(j, "d_model", what);
  c.n_layer = detail::config_int(j, "n_layer", what);
  c.vocab_size = detail::config_int(j, "vocab_size", what);
  c.pad_vocab_size_multiple = detail::config_int(j, "pad_vocab_size_multiple", what);
  c.d_state = detail::config_int(j, "d_state", what);
  c.d_conv = detail::config_int(j, "d_conv", what);
  c.expand = detail::config_int(j, "expand", what);
  c.headdim = detail::config_int(j, "headdim", what);
  c.ngroups = detail::config_int(j, "ngroups", what);
  c.chunk_size = detail::config_int(j, "chunk_size", what);
  c.dt_rank = detail::config_int(j, "dt_rank", what);
  c.conv_bias = json_bool(j, "conv_bias", what);
  c.proj_bias = json_bool(j, "proj_bias", what);
  c.tie_embeddings = json_bool(j, "tie_embeddings", what);
  c.residual_in_fp32 = json_bool(j, "residual_in_fp32", what);
  c.norm_before_gate = json_bool(j, "norm_before_gate", what);
  c.norm_eps = json_number(j, "norm_eps", what);
  c.dt_limit_min = json_number(j, "dt_limit_min", what);
  const auto max = j.find("dt_limit_max");
  c.dt_limit_max = (max == j.end() || max->is_null()) ? std::numeric_limits<double>::infinity()
                                                      : json_number(j, "dt_limit_max", what);
  try {
    c.validate();
  } catch (const InvalidArgument& e) {
    BIMAMBA_THROW(FormatError, what, ": invalid model config: ", e.what());
  }
  detail::check_config_size(c, what);  // before model_tensor_specs builds n_layer entries
  return c;
}

// ---- float storage conversions -------------------------------------------------------------------------
namespace detail {
inline HostTensor float_tensor_as(const std::string& name, const std::vector<int64_t>& shape,
                                  const std::vector<float>& values, DType dtype) {
  switch (dtype) {
    case DType::F32: return HostTensor::from_values<float>(name, shape, values);
    case DType::BF16: {
      std::vector<bfloat16> v(values.size());
      for (size_t i = 0; i < values.size(); ++i) v[i] = bfloat16(values[i]);
      return HostTensor::from_values<bfloat16>(name, shape, v);
    }
    case DType::F16: {
      std::vector<float16> v(values.size());
      for (size_t i = 0; i < values.size(); ++i) v[i] = float16(values[i]);
      return HostTensor::from_values<float16>(name, shape, v);
    }
    default: BIMAMBA_FAIL("packed checkpoint: cannot store '", name, "' as ", dtype_name(dtype));
  }
}

// The name of the sign tensor of a binary weight "<prefix>.weight" -> "<prefix>.signs".
inline std::string signs_name(const std::string& weight_name) {
  return weight_name.substr(0, weight_name.size() - std::string("weight").size()) + "signs";
}

// Packs s(w) of a row-major (rows, cols) float matrix into words of type Word (bit_tensor.hpp layout) and
// counts the exact zeros.
template <class Word>
std::vector<Word> pack_sign_words(const std::string& name, const float* w, int64_t rows, int64_t cols, int64_t* zeros) {
  constexpr int W = kWordBits<Word>;
  const int64_t wpr = words_for<Word>(cols);
  std::vector<Word> words(size_t(rows * wpr), Word(0));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      const float v = w[i * cols + j];
      if (std::isnan(v)) BIMAMBA_THROW(NumericError, "packing '", name, "': weight (", i, ", ", j, ") is NaN");
      if (v == 0.0f && zeros) ++*zeros;
      if (!(v < 0.0f)) words[size_t(i * wpr + j / W)] |= Word(Word(1) << (j % W));
    }
  return words;
}
}  // namespace detail

// Source of the tensors to pack: the tensor of an HF name (float dtype, the spec's shape).
using TensorSource = std::function<HostTensor(const std::string&)>;

// The packed tensors of a model, in model_tensor_specs order. `zero_weights` (optional) receives the
// number of latent binary weights that are exactly 0 (packed as +1). Throws FormatError when a source
// tensor has the wrong shape or a non-float dtype.
inline std::vector<HostTensor> pack_checkpoint(const ModelConfig& config, const TensorSource& source,
                                               const PackedOptions& opts = {}, int64_t* zero_weights = nullptr) {
  opts.validate();
  std::vector<HostTensor> out;
  for (const TensorSpec& spec : model_tensor_specs(config)) {
    const HostTensor t = source(spec.name);
    if (t.shape != spec.shape)
      BIMAMBA_THROW(FormatError, "tensor '", spec.name, "' has shape ", t.shape_string(), ", the config expects ",
                    detail::shape_to_string(spec.shape));
    if (t.dtype != DType::F32 && t.dtype != DType::F64 && t.dtype != DType::BF16 && t.dtype != DType::F16)
      BIMAMBA_THROW(FormatError, "tensor '", spec.name, "' has dtype ", dtype_name(t.dtype), ", expected a float dtype");
    const std::vector<float> values = to_float(t);
    if (spec.kind == ParamKind::Binary) {
      const int64_t rows = spec.shape[0], cols = spec.shape[1];
      const std::string name = detail::signs_name(spec.name);
      if (opts.sign_word == DType::U32)
        out.push_back(HostTensor::from_values<uint32_t>(
            name, {rows, words_for<uint32_t>(cols)},
            detail::pack_sign_words<uint32_t>(spec.name, values.data(), rows, cols, zero_weights)));
      else
        out.push_back(HostTensor::from_values<uint8_t>(
            name, {rows, words_for<uint8_t>(cols)},
            detail::pack_sign_words<uint8_t>(spec.name, values.data(), rows, cols, zero_weights)));
    } else {
      out.push_back(detail::float_tensor_as(spec.name, spec.shape, values, packed_float_dtype(spec.name, spec.kind, opts)));
    }
  }
  return out;
}

// The metadata of a packed file of this config.
inline std::map<std::string, std::string> packed_metadata(const ModelConfig& config, const PackedOptions& opts) {
  nlohmann::ordered_json shapes = nlohmann::ordered_json::object();
  for (const TensorSpec& spec : model_tensor_specs(config))
    if (spec.kind == ParamKind::Binary) shapes[detail::signs_name(spec.name)] = spec.shape;
  return {{"format", kPackedFormatName},
          {"format_version", kPackedFormatVersion},
          {"config", packed_config_to_json(config).dump()},
          {"sign_bit_order", "lsb0"},
          {"sign_word", dtype_name(opts.sign_word)},
          {"sign_shapes", shapes.dump()}};
}

// Checks the packed tensors against the config (names, shapes, dtypes) and writes the file atomically.
inline void save_packed_checkpoint(const std::string& path, const ModelConfig& config,
                                   const std::vector<HostTensor>& tensors, const PackedOptions& opts = {}) {
  opts.validate();
  const std::vector<TensorSpec> specs = model_tensor_specs(config);
  BIMAMBA_CHECK(tensors.size() == specs.size(), "save_packed_checkpoint ", path, ": ", tensors.size(),
                " tensors, the config has ", specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const TensorSpec& s = specs[i];
    const HostTensor& t = tensors[i];
    if (s.kind == ParamKind::Binary) {
      const int64_t bits = int64_t(8 * dtype_size(opts.sign_word));
      const std::vector<int64_t> stored{s.shape[0], (s.shape[1] + bits - 1) / bits};
      BIMAMBA_CHECK(t.name == detail::signs_name(s.name) && t.dtype == opts.sign_word && t.shape == stored,
                    "save_packed_checkpoint ", path, ": tensor ", i, " '", t.name, "' is not the packed signs of '",
                    s.name, "' ", detail::shape_to_string(s.shape));
    } else {
      BIMAMBA_CHECK(t.name == s.name && t.shape == s.shape && t.dtype == packed_float_dtype(s.name, s.kind, opts),
                    "save_packed_checkpoint ", path, ": tensor ", i, " '", t.name, "' ", dtype_name(t.dtype), " ",
                    t.shape_string(), " does not match '", s.name, "' ", detail::shape_to_string(s.shape), " ",
                    dtype_name(packed_float_dtype(s.name, s.kind, opts)));
    }
  }
  save_safetensors(path, tensors, packed_metadata(config, opts));
}

// True when the file is a safetensors file whose metadata names the packed format.
inline bool is_packed_checkpoint(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  try {
    const SafetensorsFile f(path);
    const auto it = f.metadata().find("format");
    return it != f.metadata().end() && it->second == kPackedFormatName;
  } catch (const Error&) {
    return false;
  }
}

class PackedCheckpoint {
 public:
  explicit PackedCheckpoint(const std::string& path) : file_(path) {
    const auto& meta = file_.metadata();
    auto get = [&](const char* key) -> const std::string& {
      const auto it = meta.find(key);
      if (it == meta.end()) BIMAMBA_THROW(FormatError, path, ": not a packed Bi-Mamba checkpoint: __metadata__ has no '", key, "'");
      return it->second;
    };
    if (get("format") != kPackedFormatName)
      BIMAMBA_THROW(FormatError, path, ": __metadata__ format is '", get("format"), "', expected '", kPackedFormatName, "'");
    if (get("format_version") != kPackedFormatVersion)
      BIMAMBA_THROW(FormatError, path, ": packed format version '", get("format_version"), "' is not supported (expected ",
                    kPackedFormatVersion, ")");
    if (get("sign_bit_order") != "lsb0")
      BIMAMBA_THROW(FormatError, path, ": unknown sign_bit_order '", get("sign_bit_order"), "' (expected lsb0)");
    try {
      word_ = dtype_from_name(get("sign_word"));
    } catch (const FormatError&) {
      BIMAMBA_THROW(FormatError, path, ": unknown sign_word '", get("sign_word"), "'");
    }
    if (word_ != DType::U32 && word_ != DType::U8)
      BIMAMBA_THROW(FormatError, path, ": sign_word must be U32 or U8, got ", get("sign_word"));
    config_ = packed_config_from_json(parse_json(get("config"), path + " __metadata__ config"), path + " __metadata__ config");
    const nlohmann::json shapes = parse_json(get("sign_shapes"), path + " __metadata__ sign_shapes");
    if (!shapes.is_object()) BIMAMBA_THROW(FormatError, path, ": __metadata__ sign_shapes is not a JSON object");
    check_tensors(shapes);
  }

  const std::string& path() const { return file_.path(); }
  const ModelConfig& config() const { return config_; }
  const SafetensorsFile& file() const { return file_; }
  DType sign_word() const { return word_; }

  // The packed signs of "<prefix>.weight" (e.g. "backbone.layers.0.mixer.in_proj.weight") as a BitTensor of
  // any word type (rows re-padded when the file's word differs).
  template <class Word>
  BitTensor<Word, Host> signs(const std::string& weight_name) const {
    const HostTensor t = file_.get(detail::signs_name(weight_name));
    const auto [rows, cols] = logical_shape(t.name);
    BitTensor<Word, Host> out(rows, cols);
    const size_t file_row_bytes = size_t(t.shape[1]) * dtype_size(t.dtype);
    const size_t row_bytes = size_t((cols + 7) / 8);
    for (int64_t i = 0; i < rows; ++i)
      std::memcpy(reinterpret_cast<uint8_t*>(out.data()) + size_t(i) * size_t(out.words_per_row()) * sizeof(Word),
                  t.data() + size_t(i) * file_row_bytes, row_bytes);
    return out;
  }

  // The values of a full-precision tensor as float.
  std::vector<float> floats(const std::string& name) const { return to_float(file_.get(name)); }

  // An F32 tensor of the HF name as the latent model path wants it: full-precision tensors converted to
  // float, binary weights "<prefix>.weight" as +-1 from the packed signs.
  HostTensor latent(const std::string& name) const {
    if (file_.has(name)) {
      const HostTensor t = file_.get(name);
      return HostTensor::from_values<float>(name, t.shape, to_float(t));
    }
    if (detail::has_name_suffix(name, ".weight") && file_.has(detail::signs_name(name))) {
      const auto bits = signs<uint32_t>(name);
      std::vector<float> values(size_t(bits.rows() * bits.cols()));
      unpack_signs<uint32_t>(bits.cview(), TensorView<float, 2, Host>(values.data(), {bits.rows(), bits.cols()}));
      return HostTensor::from_values<float>(name, {bits.rows(), bits.cols()}, values);
    }
    BIMAMBA_THROW(FormatError, path(), ": no tensor named '", name, "' (nor its packed signs)");
  }

  // Parameters and bytes by kind, and the file size.
  StorageReport storage() const {
    StorageReport r;
    for (const std::string& name : file_.names()) {
      const HostTensor t = file_.get(name);
      const ParamKind kind = param_kind_of(name, config_.binary);
      const int64_t params = kind == ParamKind::Binary ? logical_shape(name).first * logical_shape(name).second : t.numel();
      r.add(kind, params, int64_t(t.nbytes()));
    }
    struct stat st {};
    if (::stat(path().c_str(), &st) == 0) r.file_bytes = int64_t(st.st_size);
    return r;
  }

 private:
  std::pair<int64_t, int64_t> logical_shape(const std::string& signs_name) const {
    const auto it = sign_shapes_.find(signs_name);
    if (it == sign_shapes_.end()) BIMAMBA_THROW(FormatError, path(), ": '", signs_name, "' has no logical shape in sign_shapes");
    return it->second;
  }

  // Every tensor the config implies is present with its shape and a permitted dtype; nothing else is.
  void check_tensors(const nlohmann::json& shapes) {
    const std::vector<TensorSpec> specs = model_tensor_specs(config_);
    if (specs.size() != file_.size())
      BIMAMBA_THROW(FormatError, path(), ": holds ", file_.size(), " tensors, its config implies ", specs.size());
    for (const TensorSpec& s : specs) {
      if (s.kind == ParamKind::Binary) {
        const std::string name = detail::signs_name(s.name);
        if (!file_.has(name)) BIMAMBA_THROW(FormatError, path(), ": missing packed signs '", name, "'");
        const auto it = shapes.find(name);
        if (it == shapes.end() || !it->is_array() || it->size() != 2 || !(*it)[0].is_number_integer() ||
            !(*it)[1].is_number_integer() || (*it)[0].get<int64_t>() != s.shape[0] || (*it)[1].get<int64_t>() != s.shape[1])
          BIMAMBA_THROW(FormatError, path(), ": sign_shapes entry of '", name, "' is missing or differs from the config's ",
                        detail::shape_to_string(s.shape));
        const HostTensor t = file_.get(name);
        const int64_t bits = int64_t(8 * dtype_size(word_));
        const std::vector<int64_t> stored{s.shape[0], (s.shape[1] + bits - 1) / bits};
        if (t.dtype != word_ || t.shape != stored)
          BIMAMBA_THROW(FormatError, path(), ": packed signs '", name, "' are ", dtype_name(t.dtype), " ", t.shape_string(),
                        ", expected ", dtype_name(word_), " ", detail::shape_to_string(stored));
        sign_shapes_[name] = {s.shape[0], s.shape[1]};
        check_padding(t, s.shape[1]);
      } else {
        if (!file_.has(s.name)) BIMAMBA_THROW(FormatError, path(), ": missing tensor '", s.name, "'");
        const HostTensor t = file_.get(s.name);
        if (t.shape != s.shape)
          BIMAMBA_THROW(FormatError, path(), ": tensor '", s.name, "' has shape ", t.shape_string(), ", the config implies ",
                        detail::shape_to_string(s.shape));
        if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16)
          BIMAMBA_THROW(FormatError, path(), ": tensor '", s.name, "' has dtype ", dtype_name(t.dtype),
                        ", expected F32, BF16 or F16");
      }
    }
  }

  // Padding bits beyond `cols` in each row must be 0 (kernels rely on it).
  void check_padding(const HostTensor& t, int64_t cols) const {
    const size_t row_bytes = size_t(t.shape[1]) * dtype_size(t.dtype);
    for (int64_t i = 0; i < t.shape[0]; ++i) {
      const uint8_t* row = t.data() + size_t(i) * row_bytes;
      for (size_t b = size_t(cols / 8); b < row_bytes; ++b) {
        const int first = b == size_t(cols / 8) ? int(cols % 8) : 0;
        if (row[b] >> first)
          BIMAMBA_THROW(FormatError, path(), ": packed signs '", t.name, "' row ", i, " has padding bits set beyond column ", cols);
      }
    }
  }

  SafetensorsFile file_;
  ModelConfig config_;
  DType word_ = DType::U32;
  std::map<std::string, std::pair<int64_t, int64_t>> sign_shapes_;
};

}  // namespace bimamba
