// What the subcommands share about models and files:
//   open_model(ctx, path, packed)  a LanguageModel on ctx's backend for inference from an HF or mamba_ssm checkpoint directory, or
//                                  from a packed file (which always runs on its sign bits); `packed` switches a
//                                  latent Bi-Mamba checkpoint to the sign-bit path too. No gradient buffers; a
//                                  model on sign bits holds no fp32 latent weights (ModelOptions::inference()).
//   CheckpointTensors(path)        the config and an HF-named tensor source of a checkpoint directory or packed
//                                  file, without building a model (convert / info on any size).
//   read_token_ids(path, vocab)    input_ids of a safetensors file, every id range-checked against the vocab.
//   parse_id_list("1,2,3")         token ids written on the command line.
#pragma once

#include <bimamba/io/checkpoint.hpp>
#include <bimamba/io/packed_checkpoint.hpp>
#include <bimamba/io/safetensors.hpp>
#include <bimamba/model/config_io.hpp>
#include <bimamba/model/convert.hpp>
#include <bimamba/model/load.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "args.hpp"

namespace bimamba::cli {

template <class Backend>
LanguageModel<Backend> open_model(Context<Backend>& ctx, const std::string& path, bool packed) {
  if (is_packed_checkpoint(path)) return load_packed_model(ctx, path, ModelOptions::inference());
  if (packed) {
    if (!checkpoint_is_binary(Checkpoint(path)))
      throw UsageError("--packed needs a Bi-Mamba checkpoint; " + path + " holds a full-precision model");
    return load_model(ctx, path, ModelOptions::inference());  // signs packed at load
  }
  return load_model(ctx, path, ModelOptions{true, false});  // latent path: latents kept, no gradients
}

struct CheckpointTensors {
  ModelConfig config;
  std::shared_ptr<const Checkpoint> checkpoint;        // HF / mamba_ssm layouts
  std::shared_ptr<const PackedCheckpoint> packed;      // the packed file

  explicit CheckpointTensors(const std::string& path) {
    if (is_packed_checkpoint(path)) {
      packed = std::make_shared<const PackedCheckpoint>(path);
      config = packed->config();
    } else {
      config = read_config(path);
      checkpoint = std::make_shared<const Checkpoint>(path);
      config.binary = checkpoint_is_binary(*checkpoint);
    }
  }

  // HF-named float tensors (a packed file gives +-1 for the binary weights).
  TensorSource source() const {
    if (packed) return [p = packed](const std::string& name) { return p->latent(name); };
    return [c = checkpoint](const std::string& name) { return c->get(name); };
  }
};

// input_ids [B, T] of any integer dtype; FormatError naming the file for a bad rank, an empty batch or an id
// outside [0, vocab).
inline std::vector<int32_t> read_token_ids(const std::string& path, int64_t vocab, int64_t& B, int64_t& T) {
  const SafetensorsFile f(path);
  const HostTensor t = f.get("input_ids");
  if (t.rank() != 2) BIMAMBA_THROW(FormatError, path, ": input_ids must have shape [B, T], got ", t.shape_string());
  B = t.shape[0], T = t.shape[1];
  if (B == 0 || T == 0) BIMAMBA_THROW(FormatError, path, ": input_ids ", t.shape_string(), " holds no tokens");
  const std::vector<int64_t> wide = to_int64(t);
  std::vector<int32_t> ids(wide.size());
  for (size_t i = 0; i < wide.size(); ++i) {
    if (wide[i] < 0 || wide[i] >= vocab)
      BIMAMBA_THROW(FormatError, path, ": input_ids[", int64_t(i) / T, ", ", int64_t(i) % T, "] = ", wide[i],
                    " is outside the model's vocabulary [0, ", vocab, ")");
    ids[i] = int32_t(wide[i]);
  }
  return ids;
}

inline std::vector<int32_t> parse_id_list(const std::string& text, const std::string& option) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = text.find(',', pos);
    const std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 0 || v > INT32_MAX)
      throw UsageError("--" + option + " must be comma-separated non-negative token ids, got '" + item + "'");
    ids.push_back(int32_t(v));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return ids;
}

inline void check_ids_in_vocab(const std::vector<int32_t>& ids, int64_t vocab, const std::string& what) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] >= vocab)
      BIMAMBA_THROW(InvalidArgument, what, ": token id ", ids[i], " at position ", i, " is outside the model's vocabulary [0, ",
                    vocab, ")");
}

}  // namespace bimamba::cli
