// Parameter and byte accounting of a model, by kind; the tensors a model of a given config holds.
//
// Kinds (what a parameter costs depends on what it is):
//   binary      the sign matrices S of the FBI-Linear layers (in_proj / out_proj of a Bi-Mamba model):
//               1 bit each when packed (rows padded to whole words), 32 as latent F32;
//   fbi_scales  the FBI-Linear per-input-feature scale and offset (`wscale` alpha, `wbias` beta), [1, in];
//   embedding   the token embedding (V, D) and an untied LM head;
//   other       every other full-precision tensor: norms, conv1d, A_log, D, dt_bias, full-precision
//               projections of a non-binary model, biases.
// Parameters are logical elements (a packed (out, in) sign matrix has out * in parameters); bytes are what
// the tensors occupy as stored. A StorageReport also counts latent binary weights that are exactly 0: s(0) =
// +1 here while torch.sign(0) = 0, so such weights are where this library and the PyTorch reference differ.
//
//   model_tensor_specs(config)   -> the HF-named tensors of a model (name, shape, kind), in checkpoint order
//   packed_storage(config, opts) -> the report of that model saved in the packed format with these options
//                                   (tensor bytes only; the file adds its safetensors header)
//   StorageReport::to_json()     -> {"parameters": n, "bytes": b, "gib": g, "zero_binary_weights": z,
//                                    "kinds": {"binary": {"parameters", "bytes", "tensors"}, ...}}
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../core/dtype.hpp"
#include "../core/error.hpp"
#include "config.hpp"

namespace bimamba {

enum class ParamKind { Binary, FbiScales, Embedding, Other };
inline constexpr int kParamKinds = 4;

inline const char* param_kind_name(ParamKind k) {
  switch (k) {
    case ParamKind::Binary: return "binary";
    case ParamKind::FbiScales: return "fbi_scales";
    case ParamKind::Embedding: return "embedding";
    case ParamKind::Other: return "other";
  }
  BIMAMBA_FAIL("param_kind_name: invalid ParamKind ", int(k));
}

namespace detail {
inline bool has_name_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace detail

// The kind of a tensor from its checkpoint name. `binary_model`: in_proj / out_proj weights are FBI signs.
// Packed sign tensors (names ending in ".signs") are always binary.
inline ParamKind param_kind_of(const std::string& name, bool binary_model) {
  using detail::has_name_suffix;
  if (has_name_suffix(name, ".signs")) return ParamKind::Binary;
  if (has_name_suffix(name, ".wscale") || has_name_suffix(name, ".wbias")) return ParamKind::FbiScales;
  if (has_name_suffix(name, "embeddings.weight") || has_name_suffix(name, "embedding.weight") || name == "lm_head.weight")
    return ParamKind::Embedding;
  if (binary_model && (has_name_suffix(name, "in_proj.weight") || has_name_suffix(name, "out_proj.weight"))) return ParamKind::Binary;
  return ParamKind::Other;
}

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  ParamKind kind = ParamKind::Other;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t e : shape) n *= e;
    return n;
  }
};

// Every tensor of a model of this config, named as in an HF checkpoint (backbone.embeddings.weight,
// backbone.layers.<i>.mixer...., backbone.norm_f.weight, lm_head.weight when untied).
inline std::vector<TensorSpec> model_tensor_specs(const ModelConfig& c) {
  c.validate();
  const int64_t D = c.d_model, E = c.d_inner(), N = c.d_state, K = c.d_conv, V = c.vocab_size;
  std::vector<TensorSpec> specs;
  auto add = [&](std::string name, std::vector<int64_t> shape) {
    const ParamKind kind = param_kind_of(name, c.binary);
    specs.push_back({std::move(name), std::move(shape), kind});
  };
  add("backbone.embeddings.weight", {V, D});
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "backbone.layers." + std::to_string(i) + ".";
    const std::string m = p + "mixer.";
    add(p + "norm.weight", {D});
    add(m + "in_proj.weight", {c.in_proj_rows(), D});
    if (c.proj_bias) add(m + "in_proj.bias", {c.in_proj_rows()});
    if (c.binary) {
      add(m + "in_proj.wscale", {1, D});
      add(m + "in_proj.wbias", {1, D});
    }
    add(m + "conv1d.weight", {c.conv_dim(), 1, K});
    if (c.conv_bias) add(m + "conv1d.bias", {c.conv_dim()});
    if (c.architecture == Architecture::Mamba2) {
      const int64_t H = c.nheads();
      add(m + "dt_bias", {H});
      add(m + "A_log", {H});
      add(m + "D", {H});
      add(m + "norm.weight", {E});
    } else {
      add(m + "x_proj.weight", {c.dt_rank + 2 * N, E});
      add(m + "dt_proj.weight", {E, c.dt_rank});
      add(m + "dt_proj.bias", {E});
      add(m + "A_log", {E, N});
      add(m + "D", {E});
    }
    add(m + "out_proj.weight", {D, E});
    if (c.proj_bias) add(m + "out_proj.bias", {D});
    if (c.binary) {
      add(m + "out_proj.wscale", {1, E});
      add(m + "out_proj.wbias", {1, E});
    }
  }
  add("backbone.norm_f.weight", {D});
  if (!c.tie_embeddings) add("lm_head.weight", {V, D});
  return specs;
}

struct KindStorage {
  int64_t parameters = 0;
  int64_t bytes = 0;
  int64_t tensors = 0;
};

struct StorageReport {
  std::array<KindStorage, kParamKinds> kinds{};
  int64_t zero_binary_weights = 0;  // latent binary weights exactly 0 (s(0) = +1, torch.sign(0) = 0)
  int64_t file_bytes = 0;           // size of the file(s) on disk, when the report is of files (else 0)

  KindStorage& operator[](ParamKind k) { return kinds[size_t(k)]; }
  const KindStorage& operator[](ParamKind k) const { return kinds[size_t(k)]; }

  void add(ParamKind kind, int64_t parameters, int64_t bytes) {
    KindStorage& s = (*this)[kind];
    s.parameters += parameters;
    s.bytes += bytes;
    s.tensors += 1;
  }
  int64_t parameters() const {
    int64_t n = 0;
    for (const auto& k : kinds) n += k.parameters;
    return n;
  }
  int64_t bytes() const {
    int64_t n = 0;
    for (const auto& k : kinds) n += k.bytes;
    return n;
  }
  static double gib(int64_t bytes) { return double(bytes) / double(int64_t(1) << 30); }

  nlohmann::ordered_json to_json() const {
    nlohmann::ordered_json j;
    j["parameters"] = parameters();
    j["bytes"] = bytes();
    j["gib"] = gib(bytes());
    if (file_bytes > 0) {
      j["file_bytes"] = file_bytes;
      j["file_gib"] = gib(file_bytes);
    }
    j["zero_binary_weights"] = zero_binary_weights;
    nlohmann::ordered_json by_kind = nlohmann::ordered_json::object();
    for (int k = 0; k < kParamKinds; ++k) {
      const KindStorage& s = kinds[size_t(k)];
      by_kind[param_kind_name(ParamKind(k))] = {
          {"parameters", s.parameters}, {"bytes", s.bytes}, {"tensors", s.tensors}, {"gib", gib(s.bytes)}};
    }
    j["kinds"] = by_kind;
    return j;
  }
};

// How the packed format stores each kind (io/packed_checkpoint.hpp).
struct PackedOptions {
  DType sign_word = DType::U32;        // U32 or U8 words of sign bits, rows padded to whole words
  DType scale_dtype = DType::BF16;     // wscale / wbias
  DType embedding_dtype = DType::BF16; // embedding (and untied head)
  DType float_dtype = DType::BF16;     // norms, conv1d, biases, full-precision projections
  // A_log, D and dt_bias are always F32: a few hundred values per layer, and A = -exp(A_log) amplifies
  // rounding of A_log (BF16 keeps 8 bits: up to 0.4% error in A, compounded over every step).

  void validate() const {
    BIMAMBA_CHECK(sign_word == DType::U32 || sign_word == DType::U8, "packed options: sign words must be U32 or U8, got ",
                  dtype_name(sign_word));
    for (DType t : {scale_dtype, embedding_dtype, float_dtype})
      BIMAMBA_CHECK(t == DType::F32 || t == DType::BF16 || t == DType::F16,
                    "packed options: floating-point tensors must be F32, BF16 or F16, got ", dtype_name(t));
  }
};

// True for the per-head SSM scalars that the packed format keeps in F32.
inline bool is_ssm_scalar(const std::string& name) {
  using detail::has_name_suffix;
  return has_name_suffix(name, "mixer.A_log") || has_name_suffix(name, "mixer.D") || has_name_suffix(name, "mixer.dt_bias");
}

// The dtype the packed format stores a full-precision tensor in.
inline DType packed_float_dtype(const std::string& name, ParamKind kind, const PackedOptions& o) {
  if (is_ssm_scalar(name)) return DType::F32;
  if (kind == ParamKind::FbiScales) return o.scale_dtype;
  if (kind == ParamKind::Embedding) return o.embedding_dtype;
  return o.float_dtype;
}

// Bytes of an (rows, cols) sign matrix packed in words of `word` (rows padded to whole words).
inline int64_t packed_sign_bytes(int64_t rows, int64_t cols, DType word) {
  const int64_t bits = int64_t(8 * dtype_size(word));
  return rows * ((cols + bits - 1) / bits) * int64_t(dtype_size(word));
}

// The storage of this model in the packed format (tensor bytes, without the file header). A
// full-precision model (config.binary false) has no sign matrices: its projections count as `other`.
inline StorageReport packed_storage(const ModelConfig& c, const PackedOptions& o = {}) {
  o.validate();
  StorageReport r;
  for (const TensorSpec& t : model_tensor_specs(c)) {
    if (t.kind == ParamKind::Binary)
      r.add(t.kind, t.numel(), packed_sign_bytes(t.shape[0], t.shape[1], o.sign_word));
    else
      r.add(t.kind, t.numel(), t.numel() * int64_t(dtype_size(packed_float_dtype(t.name, t.kind, o))));
  }
  return r;
}

}  // namespace bimamba
