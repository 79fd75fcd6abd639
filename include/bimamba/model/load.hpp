// load_model<Backend>(ctx, dir): a LanguageModel read from a checkpoint directory in either layout (HF
// `config.json` + `model.safetensors` (sharded or not), or mamba_ssm / Bi-Mamba `config.json` +
// `pytorch_model.bin`). The config comes from model/config_io.hpp read_config, the tensors from
// io/checkpoint.hpp (HF names); a checkpoint with FBI tensors (`*.in_proj.wscale`) makes a Bi-Mamba model
// (latent path; call pack() for the sign-bit path).
//
// load_parameters(ctx, model, ckpt) fills an existing model: every parameter the model declares must be in
// the checkpoint with the same shape (FormatError naming the file, the tensor and both shapes); a tied
// model ignores a stored `lm_head.weight`; tensors the model does not use are reported through ctx.log.
// Any stored float dtype is converted to float32.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "../io/checkpoint.hpp"
#include "config_io.hpp"
#include "language_model.hpp"

namespace bimamba {

template <class Backend>
void load_parameters(Context<Backend>& ctx, LanguageModel<Backend>& model, const Checkpoint& ckpt) {
  ParamStore<Backend>& store = model.params();
  std::vector<float> staging;
  for (const auto& entry : store.entries()) {
    if (!ckpt.has(entry.name)) BIMAMBA_THROW(FormatError, ckpt.file(), ": missing tensor '", entry.name, "'");
    const HostTensor t = ckpt.get(entry.name);
    if (t.shape != entry.shape)
      BIMAMBA_THROW(FormatError, ckpt.file(), ": tensor '", entry.name, "' has shape ", t.shape_string(),
                    " but the config needs ", detail::shape_to_string(entry.shape));
    const float* src = nullptr;
    if (t.dtype == DType::F32) {
      src = reinterpret_cast<const float*>(t.data());  // safetensors / torch buffers: copied bytewise below
    } else {
      staging = to_float(t);
      src = staging.data();
    }
    MemoryOps<Backend>::copy_from_host(store.params().data() + entry.offset, src, size_t(entry.numel) * sizeof(float));
  }
  std::vector<std::string> unused;
  for (const std::string& name : ckpt.names())
    if (store.find(name) < 0) unused.push_back(name);
  if (!unused.empty()) {
    std::string list;
    for (const auto& n : unused) list += (list.empty() ? "" : ", ") + n;
    ctx.log(LogLevel::Info, detail::concat(ckpt.file(), ": tensors not used by the model: ", list));
  }
}

template <class Backend>
LanguageModel<Backend> load_model(Context<Backend>& ctx, const std::string& dir) {
  ModelConfig cfg = read_config(dir);
  const Checkpoint ckpt(dir);
  cfg.binary = checkpoint_is_binary(ckpt);
  LanguageModel<Backend> model(cfg);
  load_parameters(ctx, model, ckpt);
  return model;
}

}  // namespace bimamba
