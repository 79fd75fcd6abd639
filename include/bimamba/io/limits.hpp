// Limits on what an untrusted file may claim, checked before memory is taken (docs/security.md).
//
// Readers refuse a file that exceeds a limit with a FormatError naming the file, the value and the limit.
// The defaults are far above every real checkpoint, tokenizer and config, and far below what would exhaust
// a machine. Override them
//   - at compile time: define BIMAMBA_MAX_JSON_DEPTH, BIMAMBA_MAX_PICKLE_DEPTH, BIMAMBA_MAX_VOCAB_SIZE,
//     BIMAMBA_MAX_MODEL_PARAMETERS before including any bimamba header, or
//   - at run time: bimamba::io_limits().max_vocab_size = ...; (one process-wide object; set it before
//     loading, not while another thread loads).
//
// What is bounded elsewhere, by construction: safetensors headers (100,000,000 bytes, kSafetensorsMaxHeader);
// tensor, storage and token-file payloads (memory-mapped, and each claimed size must match the bytes the
// file really holds, so a file claiming a 100 GB tensor or a billion tokens is refused unless it is that
// big, and even then nothing is copied); pickle and protobuf strings (bounded by the bytes present).
#pragma once

#include <cstdint>

#ifndef BIMAMBA_MAX_JSON_DEPTH
#define BIMAMBA_MAX_JSON_DEPTH 64
#endif
#ifndef BIMAMBA_MAX_PICKLE_DEPTH
#define BIMAMBA_MAX_PICKLE_DEPTH 64
#endif
#ifndef BIMAMBA_MAX_VOCAB_SIZE
#define BIMAMBA_MAX_VOCAB_SIZE (int64_t(1) << 20)
#endif
#ifndef BIMAMBA_MAX_MODEL_PARAMETERS
#define BIMAMBA_MAX_MODEL_PARAMETERS (int64_t(1) << 38)
#endif

namespace bimamba {

struct IoLimits {
  // Nesting of arrays / objects in any JSON the library parses (config.json, tokenizer.json, safetensors
  // headers, metadata). Real files nest at most ~6 deep.
  int64_t max_json_depth = BIMAMBA_MAX_JSON_DEPTH;
  // Nesting of tuples / lists / dicts in a pickle (torch.save state dicts nest ~4 deep).
  int64_t max_pickle_depth = BIMAMBA_MAX_PICKLE_DEPTH;
  // Vocabulary size of a model config and the largest token id + 1 of a tokenizer (the largest public
  // vocabularies hold ~256k entries).
  int64_t max_vocab_size = BIMAMBA_MAX_VOCAB_SIZE;
  // Parameters a model config may describe (estimated from its dimensions before anything is allocated;
  // 2^38 = 275 billion, i.e. > 1 TB of fp32).
  int64_t max_model_parameters = BIMAMBA_MAX_MODEL_PARAMETERS;
};

// Integers of a model config (dimensions, counts) lie within +-2^24, so products of two of them fit int64.
inline constexpr int64_t kMaxConfigInteger = int64_t(1) << 24;

// The process-wide limits every reader checks.
inline IoLimits& io_limits() {
  static IoLimits limits;
  return limits;
}

}  // namespace bimamba
