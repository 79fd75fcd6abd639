// Named model shapes: the official Bi-Mamba configurations and the state-spaces Mamba-2 family.
//
//   bimamba-780m  D 1536, 48 layers     Bi-Mamba (Mamba-2 with FBI-Linear in_proj / out_proj),
//   bimamba-1.3b  D 2048, 48 layers     LLaMA-2 tokenizer: vocab 32000 by default
//   bimamba-2.7b  D 2560, 64 layers
//   mamba2-130m   D  768, 24 layers     full-precision Mamba-2, GPT-NeoX tokenizer:
//   mamba2-370m   D 1024, 48 layers     vocab 50277 padded to a multiple of 16 = 50288
//   mamba2-780m   D 1536, 48 layers
//   mamba2-1.3b   D 2048, 48 layers
//   mamba2-2.7b   D 2560, 64 layers
// Every preset: N d_state 128, P headdim 64, expand 2 (E = 2D, H = E / 64), G ngroups 1, K d_conv 4,
// chunk 256, conv bias, no projection bias, tied embeddings, RMSNorm eps 1e-5.
//
// model_preset(name, vocab): vocab > 0 replaces the preset's vocabulary size (it is used as given: it is
// the number of embedding rows). An unknown name throws InvalidArgument listing the known names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "config.hpp"

namespace bimamba {

struct ModelPreset {
  const char* name;
  bool binary;
  int64_t d_model;
  int64_t n_layer;
  int64_t vocab_size;
};

inline constexpr ModelPreset kModelPresets[] = {
    {"bimamba-780m", true, 1536, 48, 32000},  {"bimamba-1.3b", true, 2048, 48, 32000},
    {"bimamba-2.7b", true, 2560, 64, 32000},  {"mamba2-130m", false, 768, 24, 50288},
    {"mamba2-370m", false, 1024, 48, 50288},  {"mamba2-780m", false, 1536, 48, 50288},
    {"mamba2-1.3b", false, 2048, 48, 50288},  {"mamba2-2.7b", false, 2560, 64, 50288},
};

inline std::vector<std::string> model_preset_names() {
  std::vector<std::string> names;
  for (const ModelPreset& p : kModelPresets) names.emplace_back(p.name);
  return names;
}

inline ModelConfig model_preset(const std::string& name, int64_t vocab = 0) {
  BIMAMBA_CHECK(vocab >= 0, "model preset '", name, "': vocabulary size must be positive, got ", vocab);
  for (const ModelPreset& p : kModelPresets) {
    if (name != p.name) continue;
    ModelConfig c;
    c.architecture = Architecture::Mamba2;
    c.binary = p.binary;
    c.d_model = p.d_model;
    c.n_layer = p.n_layer;
    c.vocab_size = vocab > 0 ? vocab : p.vocab_size;
    c.pad_vocab_size_multiple = 1;  // vocab_size is already the number of embedding rows
    c.d_state = 128;
    c.d_conv = 4;
    c.expand = 2;
    c.headdim = 64;
    c.ngroups = 1;
    c.chunk_size = 256;
    c.conv_bias = true;
    c.proj_bias = false;
    c.tie_embeddings = true;
    c.norm_eps = 1e-5;
    c.validate();
    return c;
  }
  std::string known;
  for (const ModelPreset& p : kModelPresets) known += std::string(known.empty() ? "" : ", ") + p.name;
  BIMAMBA_THROW(InvalidArgument, "unknown model preset '", name, "'; known presets: ", known);
}

}  // namespace bimamba
