// read_config(path_or_dir) -> ModelConfig from a `config.json` in either layout (a directory means
// <dir>/config.json). The JSON may hold Python's Infinity / -Infinity / NaN literals (io/json.hpp).
//
// HF transformers (`model_type` present):
//   "mamba2" (Mamba2Config): hidden_size -> d_model, num_hidden_layers -> n_layer, vocab_size, state_size -> N,
//     expand, head_dim -> P, n_groups -> G, conv_kernel -> K (all required); optional: chunk_size (256),
//     use_bias (false), use_conv_bias (true), tie_word_embeddings (true), layer_norm_epsilon (1e-5),
//     residual_in_fp32 (true), time_step_limit ([0, inf]); num_heads, when present, must equal E / P.
//     `norm_before_gate` is NOT read: HF's Mamba2Mixer always normalizes after gating (norm(y * silu(z))) whatever
//     the key says, and the weights were trained with that model.
//   "mamba" (MambaConfig): hidden_size, num_hidden_layers, vocab_size, state_size, expand, conv_kernel,
//     time_step_rank (an integer or "auto" = ceil(D / 16)) required; intermediate_size, when present, must equal
//     expand * D; optional use_bias, use_conv_bias, tie_word_embeddings, layer_norm_epsilon, residual_in_fp32.
// mamba_ssm / Bi-Mamba (`d_model` present): d_model, n_layer, vocab_size required; vocab_size is padded up to a
//   multiple of pad_vocab_size_multiple (default 8, as mamba_ssm's MambaConfig); tie_embeddings (true),
//   residual_in_fp32 (true); rms_norm must be true, d_intermediate 0 and attn_layer_idx empty (no MLP or
//   attention layers). ssm_cfg: layer "Mamba1" (default) or "Mamba2" with the mamba_ssm module defaults
//   (Mamba2: d_state 128, d_conv 4, expand 2, headdim 64, ngroups 1, chunk_size 256, bias false, conv_bias true,
//   norm_before_gate false, dt_limit [0, inf], rmsnorm must be true, D_has_hdim must be false, d_ssm must be
//   absent / null / E; Mamba1: d_state 16, d_conv 4, expand 2, dt_rank "auto", bias false, conv_bias true).
//   Initialization-only keys (dt_min, A_init_range, ...) are ignored; any other ssm_cfg key is refused, since
//   it would change the model in a way this library does not implement. RMSNorm epsilon is mamba_ssm's 1e-5.
//
// `binary` is always false here: no config field marks a Bi-Mamba model (the official Bi-Mamba configs are
// plain mamba_ssm Mamba2 configs); the model loader sets it from the checkpoint (checkpoint_is_binary).
// Errors: FormatError "<file>: ..." naming the missing / bad key; the result passes ModelConfig::validate()
// (its InvalidArgument is rethrown as FormatError naming the file).
#pragma once

#include <cmath>
#include <filesystem>
#include <limits>
#include <set>
#include <string>

#include "../core/error.hpp"
#include "../io/json.hpp"
#include "../io/limits.hpp"
#include "config.hpp"

namespace bimamba {

namespace detail {

// An integer of a config, bounded by kMaxConfigInteger so that products of two dimensions (d_inner, the
// projection sizes) cannot overflow; a larger value is a FormatError naming the key.
inline int64_t config_int(const nlohmann::json& j, const std::string& key, const std::string& what) {
  const int64_t v = json_int(j, key, what);
  if (v > kMaxConfigInteger || v < -kMaxConfigInteger)
    BIMAMBA_THROW(FormatError, what, ": '", key, "' = ", v, " is outside [-", kMaxConfigInteger, ", ", kMaxConfigInteger, "]");
  return v;
}

inline int64_t json_int_or(const nlohmann::json& j, const std::string& key, int64_t fallback, const std::string& what) {
  return j.contains(key) && !j.at(key).is_null() ? config_int(j, key, what) : fallback;
}
inline bool json_bool_or(const nlohmann::json& j, const std::string& key, bool fallback, const std::string& what) {
  return j.contains(key) && !j.at(key).is_null() ? json_bool(j, key, what) : fallback;
}
inline double json_number_or(const nlohmann::json& j, const std::string& key, double fallback, const std::string& what) {
  return j.contains(key) && !j.at(key).is_null() ? json_number(j, key, what) : fallback;
}

// An integer that may also be written as an integral float (Python configs sometimes write 2.0).
inline int64_t json_integral(const nlohmann::json& j, const std::string& key, const std::string& what) {
  const double v = json_number(j, key, what);
  if (std::abs(v) > double(kMaxConfigInteger))
    BIMAMBA_THROW(FormatError, what, ": '", key, "' = ", v, " is outside [-", kMaxConfigInteger, ", ", kMaxConfigInteger, "]");
  if (v != std::floor(v)) BIMAMBA_THROW(FormatError, what, ": '", key, "' must be an integer, got ", v);
  return int64_t(v);
}

// dt_rank / time_step_rank: an integer or "auto" = ceil(d_model / 16).
inline int64_t read_dt_rank(const nlohmann::json& j, const std::string& key, int64_t d_model, bool required,
                            const std::string& what) {
  if (!j.contains(key) || j.at(key).is_null()) {
    if (required) json_require(j, key, what);
    return (d_model + 15) / 16;
  }
  const auto& v = j.at(key);
  if (v.is_string()) {
    if (v.get<std::string>() != "auto") BIMAMBA_THROW(FormatError, what, ": '", key, "' must be an integer or \"auto\"");
    return (d_model + 15) / 16;
  }
  return config_int(j, key, what);
}

// [min, max] of the Mamba-2 dt clamp.
inline void read_dt_limit(const nlohmann::json& j, const std::string& key, ModelConfig& c, const std::string& what) {
  if (!j.contains(key) || j.at(key).is_null()) return;
  const auto& v = j.at(key);
  if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_number())
    BIMAMBA_THROW(FormatError, what, ": '", key, "' must be [min, max], got ", v.dump());
  c.dt_limit_min = v[0].get<double>();
  c.dt_limit_max = v[1].get<double>();
  if (!(c.dt_limit_min <= c.dt_limit_max))
    BIMAMBA_THROW(FormatError, what, ": '", key, "' has min ", c.dt_limit_min, " > max ", c.dt_limit_max);
}

inline ModelConfig read_hf_config(const nlohmann::json& j, const std::string& what) {
  ModelConfig c;
  const std::string type = json_string(j, "model_type", what);
  if (type != "mamba2" && type != "mamba")
    BIMAMBA_THROW(FormatError, what, ": model_type '", type, "' is not supported (expected \"mamba2\" or \"mamba\")");
  c.architecture = type == "mamba2" ? Architecture::Mamba2 : Architecture::Mamba1;
  c.d_model = config_int(j, "hidden_size", what);
  c.n_layer = config_int(j, "num_hidden_layers", what);
  c.vocab_size = config_int(j, "vocab_size", what);
  c.d_state = config_int(j, "state_size", what);
  c.expand = json_integral(j, "expand", what);
  c.d_conv = config_int(j, "conv_kernel", what);
  c.proj_bias = json_bool_or(j, "use_bias", false, what);
  c.conv_bias = json_bool_or(j, "use_conv_bias", true, what);
  c.tie_embeddings = json_bool_or(j, "tie_word_embeddings", true, what);
  c.norm_eps = json_number_or(j, "layer_norm_epsilon", 1e-5, what);
  c.residual_in_fp32 = json_bool_or(j, "residual_in_fp32", true, what);
  if (c.architecture == Architecture::Mamba2) {
    c.headdim = config_int(j, "head_dim", what);
    c.ngroups = config_int(j, "n_groups", what);
    c.chunk_size = json_int_or(j, "chunk_size", 256, what);
    read_dt_limit(j, "time_step_limit", c, what);
    if (c.headdim > 0 && j.contains("num_heads") && !j.at("num_heads").is_null() &&
        config_int(j, "num_heads", what) * c.headdim != c.d_inner())
      BIMAMBA_THROW(FormatError, what, ": num_heads ", j.at("num_heads").dump(), " * head_dim ", c.headdim,
                    " != expand * hidden_size = ", c.d_inner());
  } else {
    c.dt_rank = read_dt_rank(j, "time_step_rank", c.d_model, true, what);
    if (j.contains("intermediate_size") && !j.at("intermediate_size").is_null() &&
        config_int(j, "intermediate_size", what) != c.d_inner())
      BIMAMBA_THROW(FormatError, what, ": intermediate_size ", j.at("intermediate_size").dump(),
                    " != expand * hidden_size = ", c.d_inner());
  }
  return c;
}

inline ModelConfig read_mamba_ssm_config(const nlohmann::json& j, const std::string& what) {
  ModelConfig c;
  c.d_model = config_int(j, "d_model", what);
  c.n_layer = config_int(j, "n_layer", what);
  const int64_t vocab = config_int(j, "vocab_size", what);
  c.pad_vocab_size_multiple = json_int_or(j, "pad_vocab_size_multiple", 8, what);
  if (c.pad_vocab_size_multiple <= 0)
    BIMAMBA_THROW(FormatError, what, ": pad_vocab_size_multiple must be positive, got ", c.pad_vocab_size_multiple);
  c.vocab_size = (vocab + c.pad_vocab_size_multiple - 1) / c.pad_vocab_size_multiple * c.pad_vocab_size_multiple;
  c.tie_embeddings = json_bool_or(j, "tie_embeddings", true, what);
  c.residual_in_fp32 = json_bool_or(j, "residual_in_fp32", true, what);
  c.norm_eps = 1e-5;
  if (!json_bool_or(j, "rms_norm", true, what))
    BIMAMBA_THROW(FormatError, what, ": rms_norm false (LayerNorm blocks) is not supported");
  if (json_int_or(j, "d_intermediate", 0, what) != 0)
    BIMAMBA_THROW(FormatError, what, ": d_intermediate must be 0 (MLP blocks are not supported)");
  if (j.contains("attn_layer_idx") && !j.at("attn_layer_idx").is_null() && !j.at("attn_layer_idx").empty())
    BIMAMBA_THROW(FormatError, what, ": attn_layer_idx must be empty (attention layers are not supported)");

  const nlohmann::json ssm = j.contains("ssm_cfg") && !j.at("ssm_cfg").is_null() ? j.at("ssm_cfg") : nlohmann::json::object();
  const std::string ssm_what = what + " (ssm_cfg)";
  if (!ssm.is_object()) BIMAMBA_THROW(FormatError, what, ": ssm_cfg must be a JSON object");
  const std::string layer = ssm.contains("layer") ? json_string(ssm, "layer", ssm_what) : "Mamba1";
  if (layer != "Mamba1" && layer != "Mamba2")
    BIMAMBA_THROW(FormatError, ssm_what, ": layer '", layer, "' is not supported (expected Mamba1 or Mamba2)");
  c.architecture = layer == "Mamba2" ? Architecture::Mamba2 : Architecture::Mamba1;
  const bool m2 = c.architecture == Architecture::Mamba2;

  static const std::set<std::string> init_only = {"dt_min", "dt_max", "dt_init_floor", "dt_init", "dt_scale",
                                                  "A_init_range", "use_fast_path", "layer_idx", "device", "dtype",
                                                  "process_group", "sequence_parallel", "learnable_init_states",
                                                  "use_mem_eff_path", "activation", "conv_init"};
  static const std::set<std::string> m2_keys = {"layer", "d_state", "d_conv", "expand", "headdim", "ngroups",
                                                "chunk_size", "bias", "conv_bias", "norm_before_gate", "dt_limit",
                                                "rmsnorm", "D_has_hdim", "d_ssm"};
  static const std::set<std::string> m1_keys = {"layer", "d_state", "d_conv", "expand", "dt_rank", "bias",
                                                "conv_bias"};
  for (const auto& [key, value] : ssm.items())
    if (!init_only.count(key) && !(m2 ? m2_keys : m1_keys).count(key))
      BIMAMBA_THROW(FormatError, ssm_what, ": key '", key, "' is not supported for layer ", layer);
  if (ssm.contains("activation") && ssm.at("activation") != "silu" && ssm.at("activation") != "swish")
    BIMAMBA_THROW(FormatError, ssm_what, ": activation ", ssm.at("activation").dump(), " is not supported (silu only)");

  c.d_state = json_int_or(ssm, "d_state", m2 ? 128 : 16, ssm_what);
  c.d_conv = json_int_or(ssm, "d_conv", 4, ssm_what);
  c.expand = ssm.contains("expand") ? json_integral(ssm, "expand", ssm_what) : 2;
  c.proj_bias = json_bool_or(ssm, "bias", false, ssm_what);
  c.conv_bias = json_bool_or(ssm, "conv_bias", true, ssm_what);
  if (m2) {
    c.headdim = json_int_or(ssm, "headdim", 64, ssm_what);
    c.ngroups = json_int_or(ssm, "ngroups", 1, ssm_what);
    c.chunk_size = json_int_or(ssm, "chunk_size", 256, ssm_what);
    c.norm_before_gate = json_bool_or(ssm, "norm_before_gate", false, ssm_what);
    read_dt_limit(ssm, "dt_limit", c, ssm_what);
    if (!json_bool_or(ssm, "rmsnorm", true, ssm_what))
      BIMAMBA_THROW(FormatError, ssm_what, ": rmsnorm false (no gated norm) is not supported");
    if (json_bool_or(ssm, "D_has_hdim", false, ssm_what))
      BIMAMBA_THROW(FormatError, ssm_what, ": D_has_hdim true is not supported");
    if (ssm.contains("d_ssm") && !ssm.at("d_ssm").is_null() && config_int(ssm, "d_ssm", ssm_what) != c.d_inner())
      BIMAMBA_THROW(FormatError, ssm_what, ": d_ssm ", ssm.at("d_ssm").dump(), " != d_inner ", c.d_inner(),
                    " is not supported");
  } else {
    c.dt_rank = read_dt_rank(ssm, "dt_rank", c.d_model, false, ssm_what);
  }
  return c;
}

// Refuses a config whose vocabulary or parameter count exceeds io_limits() (io/limits.hpp), before a
// loader allocates anything for it. The parameter count is estimated from the dimensions (the embedding,
// an untied head, and per layer in_proj, conv, out_proj and the per-channel vectors).
inline void check_config_size(const ModelConfig& c, const std::string& what) {
  const IoLimits& limits = io_limits();
  if (c.vocab_size > limits.max_vocab_size)
    BIMAMBA_THROW(FormatError, what, ": vocab_size ", c.vocab_size, " exceeds the limit of ", limits.max_vocab_size,
                  " (io_limits().max_vocab_size)");
  const double D = double(c.d_model), E = double(c.d_inner());
  const double per_layer = D * double(c.in_proj_rows()) + double(c.conv_dim()) * double(c.d_conv + 1) + E * D +
                           E * (double(c.d_state) + 2 * double(c.dt_rank) + 4) + 2 * D;
  const double params = double(c.vocab_size) * D * (c.tie_embeddings ? 1 : 2) + double(c.n_layer) * per_layer;
  if (params > double(limits.max_model_parameters))
    BIMAMBA_THROW(FormatError, what, ": the config describes about ", params, " parameters, over the limit of ",
                  limits.max_model_parameters, " (io_limits().max_model_parameters)");
}

}  // namespace detail

inline ModelConfig read_config(const std::string& path_or_dir) {
  const std::string path =
      std::filesystem::is_directory(path_or_dir) ? (std::filesystem::path(path_or_dir) / "config.json").string() : path_or_dir;
  const nlohmann::json j = read_json_file(path);
  if (!j.is_object()) BIMAMBA_THROW(FormatError, path, ": a model config must be a JSON object");
  ModelConfig c;
  if (j.contains("model_type")) {
    c = detail::read_hf_config(j, path);
  } else if (j.contains("d_model")) {
    c = detail::read_mamba_ssm_config(j, path);
  } else {
    BIMAMBA_THROW(FormatError, path, ": missing required key 'model_type' (HF config) or 'd_model' (mamba_ssm config)");
  }
  try {
    c.validate();
  } catch (const InvalidArgument& e) {
    BIMAMBA_THROW(FormatError, path, ": inconsistent model config: ", e.what());
  }
  detail::check_config_size(c, path);
  return c;
}

}  // namespace bimamba
