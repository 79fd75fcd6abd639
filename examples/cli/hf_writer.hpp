// Writing an HF-layout checkpoint directory: `config.json` (transformers Mamba2Config / MambaConfig keys, as
// model/config_io.hpp reads them) + `model.safetensors` (F32, HF tensor names; tied lm_head omitted).
//
// save_hf_directory(dir, config, tensors): creates dir if needed; writes model.safetensors then config.json,
// each atomically. If anything fails, the files this call wrote are removed (and dir, if it created it), so
// no half-written checkpoint is left behind.
#pragma once

#include <bimamba/io/file.hpp>
#include <bimamba/io/safetensors.hpp>
#include <bimamba/model/config.hpp>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bimamba::cli {

inline nlohmann::ordered_json hf_config_json(const ModelConfig& c) {
  nlohmann::ordered_json j;
  const bool m2 = c.architecture == Architecture::Mamba2;
  j["model_type"] = m2 ? "mamba2" : "mamba";
  j["hidden_size"] = c.d_model;
  j["num_hidden_layers"] = c.n_layer;
  j["vocab_size"] = c.vocab_size;
  j["state_size"] = c.d_state;
  j["expand"] = c.expand;
  j["conv_kernel"] = c.d_conv;
  j["use_bias"] = c.proj_bias;
  j["use_conv_bias"] = c.conv_bias;
  j["tie_word_embeddings"] = c.tie_embeddings;
  j["layer_norm_epsilon"] = c.norm_eps;
  j["residual_in_fp32"] = c.residual_in_fp32;
  if (m2) {
    j["head_dim"] = c.headdim;
    j["num_heads"] = c.nheads();
    j["n_groups"] = c.ngroups;
    j["chunk_size"] = c.chunk_size;
    // JSON has no infinity; the reader's default upper limit is +inf, so only a finite one is written.
    if (c.dt_limit_min != 0.0 || std::isfinite(c.dt_limit_max))
      j["time_step_limit"] = {c.dt_limit_min, std::isfinite(c.dt_limit_max) ? c.dt_limit_max : 1e308};
  } else {
    j["time_step_rank"] = c.dt_rank;
    j["intermediate_size"] = c.d_inner();
  }
  return j;
}

inline void save_hf_directory(const std::string& dir, const ModelConfig& config, const std::vector<HostTensor>& tensors) {
  namespace fs = std::filesystem;
  const bool created = !fs::exists(dir);
  if (!created && !fs::is_directory(dir)) BIMAMBA_FAIL(dir, ": exists and is not a directory");
  fs::create_directories(dir);
  const std::string model = (fs::path(dir) / "model.safetensors").string();
  const std::string cfg = (fs::path(dir) / "config.json").string();
  bool wrote_model = false;
  try {
    save_safetensors(model, tensors, {{"format", "pt"}});
    wrote_model = true;
    write_file_atomically(cfg, hf_config_json(config).dump(2) + "\n");
  } catch (...) {
    std::error_code ignored;
    if (wrote_model) fs::remove(model, ignored);
    if (created) fs::remove(dir, ignored);
    throw;
  }
}

}  // namespace bimamba::cli
