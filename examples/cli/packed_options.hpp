// The command-line options that choose how the packed format stores each kind (model/storage.hpp
// PackedOptions): --sign-word u32|u8, --dtype bf16|f16|f32 (FBI scales, norms, conv), --embedding-dtype.
#pragma once

#include <bimamba/model/storage.hpp>
#include <string>

#include "args.hpp"

namespace bimamba::cli {

inline void declare_packed_options(Args& args) {
  args.option("sign-word", "u32|u8", "word type of the packed sign bits", "u32");
  args.option("dtype", "bf16|f16|f32", "storage of FBI scales, norms and conv weights (A_log, D, dt_bias stay f32)", "bf16");
  args.option("embedding-dtype", "bf16|f16|f32", "storage of the embedding (and an untied head)", "bf16");
}

inline DType float_dtype_option(const Args& args, const std::string& name) {
  const std::string v = args.str(name);
  if (v == "bf16") return DType::BF16;
  if (v == "f16") return DType::F16;
  if (v == "f32") return DType::F32;
  throw UsageError("--" + name + " must be bf16, f16 or f32, got '" + v + "'");
}

inline PackedOptions packed_options(const Args& args) {
  PackedOptions o;
  const std::string word = args.str("sign-word");
  if (word == "u32") o.sign_word = DType::U32;
  else if (word == "u8") o.sign_word = DType::U8;
  else throw UsageError("--sign-word must be u32 or u8, got '" + word + "'");
  o.scale_dtype = o.float_dtype = float_dtype_option(args, "dtype");
  o.embedding_dtype = float_dtype_option(args, "embedding-dtype");
  return o;
}

}  // namespace bimamba::cli
