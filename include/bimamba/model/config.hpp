// ModelConfig: the shape of a Mamba-2, Mamba-1 or Bi-Mamba language model, whatever file it came from (HF
// `config.json` of Mamba2Config / MambaConfig, or the mamba_ssm / Bi-Mamba `config.json` with `ssm_cfg`).
// The readers live in model/config_io.hpp.
//
// Symbols (DESIGN.md): D d_model, E d_inner = expand * D, H heads = E / P, P headdim, N d_state, G ngroups,
// K d_conv, V vocab (embedding rows, already padded).
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "../core/error.hpp"

namespace bimamba {

enum class Architecture { Mamba2, Mamba1 };

inline const char* architecture_name(Architecture a) { return a == Architecture::Mamba2 ? "mamba2" : "mamba1"; }

struct ModelConfig {
  Architecture architecture = Architecture::Mamba2;
  bool binary = false;  // Bi-Mamba: in_proj / out_proj are FBI-Linear (sign weights, wscale, wbias)

  int64_t d_model = 0;      // D
  int64_t n_layer = 0;
  int64_t vocab_size = 0;   // V: rows of the embedding, after padding to pad_vocab_size_multiple
  int64_t pad_vocab_size_multiple = 1;
  int64_t d_state = 128;    // N
  int64_t d_conv = 4;       // K
  int64_t expand = 2;
  int64_t headdim = 64;     // P (Mamba-2)
  int64_t ngroups = 1;      // G (Mamba-2)
  int64_t chunk_size = 256; // SSD prefill chunk (a tuning knob: results do not depend on it beyond rounding)
  int64_t dt_rank = 0;      // Mamba-1 only (x_proj -> dt of this rank)

  bool conv_bias = true;
  bool proj_bias = false;   // bias of in_proj / out_proj (`use_bias`, `bias`)
  bool tie_embeddings = true;
  bool residual_in_fp32 = true;
  bool norm_before_gate = false;  // Mamba-2 gated norm: false means norm(y * silu(z))
  double norm_eps = 1e-5;
  double dt_limit_min = 0.0;  // Mamba-2 clamps softplus(dt + dt_bias) to [min, max] (default: no clamp)
  double dt_limit_max = std::numeric_limits<double>::infinity();

  int64_t d_inner() const { return expand * d_model; }
  int64_t nheads() const { return architecture == Architecture::Mamba2 ? d_inner() / headdim : 0; }
  // Channels that go through the causal conv: x, B, C for Mamba-2; x for Mamba-1.
  int64_t conv_dim() const {
    return architecture == Architecture::Mamba2 ? d_inner() + 2 * ngroups * d_state : d_inner();
  }
  // Rows of in_proj: [z | x | B | C | dt] for Mamba-2, [x | z] for Mamba-1.
  int64_t in_proj_rows() const {
    return architecture == Architecture::Mamba2 ? 2 * d_inner() + 2 * ngroups * d_state + nheads() : 2 * d_inner();
  }

  // Throws InvalidArgument naming the first inconsistent field.
  void validate() const {
    BIMAMBA_CHECK(d_model > 0 && n_layer > 0 && vocab_size > 0, "model config: d_model (", d_model, "), n_layer (",
                  n_layer, ") and vocab_size (", vocab_size, ") must be positive");
    BIMAMBA_CHECK(d_state > 0 && d_conv > 0 && expand > 0, "model config: d_state, d_conv and expand must be positive");
    BIMAMBA_CHECK(norm_eps > 0, "model config: norm epsilon must be positive, got ", norm_eps);
    if (architecture == Architecture::Mamba2) {
      BIMAMBA_CHECK(headdim > 0 && d_inner() % headdim == 0, "model config: d_inner ", d_inner(),
                    " is not a multiple of headdim ", headdim);
      BIMAMBA_CHECK(ngroups > 0 && nheads() % ngroups == 0, "model config: heads ", nheads(),
                    " not divisible by ngroups ", ngroups);
      BIMAMBA_CHECK(d_inner() % ngroups == 0, "model config: d_inner ", d_inner(), " not divisible by ngroups ", ngroups);
      BIMAMBA_CHECK(chunk_size > 0, "model config: chunk_size must be positive");
    } else {
      BIMAMBA_CHECK(dt_rank > 0, "model config: Mamba-1 needs dt_rank > 0");
      BIMAMBA_CHECK(!binary, "model config: Bi-Mamba is a Mamba-2 model; a binary Mamba-1 is not supported");
    }
  }
};

}  // namespace bimamba
