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
//
// Inference-only loading (ModelOptions::inference(), model/language_model.hpp): the model allocates no
// gradient buffer and, for Bi-Mamba, no fp32 latent copies of in_proj / out_proj; their signs are read
// straight into bits:
//   load_model(ctx, dir, ModelOptions::inference())          latent checkpoint -> s(W) packed at load
//   load_packed_model(ctx, path, ModelOptions::inference())  packed file -> the stored bits
// Both give the same logits as the latent load followed by pack() (same bits, same floats, same kernels).
// What such a model can do: forward / step / generate (exact and fast path); not training, unpack() or
// save_packed (model_tensor_source reads latent weights from the store). load_packed_model(ctx, path) without
// options (model/convert.hpp) is the training load: latents of +-1 and gradients.
#pragma once

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "../io/checkpoint.hpp"
#include "../io/packed_checkpoint.hpp"
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
  const std::vector<std::string> sign_names = model.sign_weight_names();  // inference-only Bi-Mamba
  model.set_signs([&](const std::string& name) {
    if (!ckpt.has(name)) BIMAMBA_THROW(FormatError, ckpt.file(), ": missing tensor '", name, "'");
    const HostTensor t = ckpt.get(name);
    const std::vector<float> w = to_float(t);
    if (t.rank() != 2) BIMAMBA_THROW(FormatError, ckpt.file(), ": tensor '", name, "' has shape ", t.shape_string());
    return pack_signs<uint32_t>(TensorView<const float, 2, Host>(w.data(), {t.shape[0], t.shape[1]}));
  });
  std::vector<std::string> unused;
  for (const std::string& name : ckpt.names())
    if (store.find(name) < 0 && std::find(sign_names.begin(), sign_names.end(), name) == sign_names.end())
      unused.push_back(name);
  if (!unused.empty()) {
    std::string list;
    for (const auto& n : unused) list += (list.empty() ? "" : ", ") + n;
    ctx.log(LogLevel::Info, detail::concat(ckpt.file(), ": tensors not used by the model: ", list));
  }
}

template <class Backend>
LanguageModel<Backend> load_model(Context<Backend>& ctx, const std::string& dir, const ModelOptions& opts = {}) {
  ModelConfig cfg = read_config(dir);
  const Checkpoint ckpt(dir);
  cfg.binary = checkpoint_is_binary(ckpt);
  LanguageModel<Backend> model(cfg, opts);
  load_parameters(ctx, model, ckpt);
  return model;
}

// A model read from a packed checkpoint (io/packed_checkpoint.hpp) with these options; with
// ModelOptions::inference() the bits go from the file into the layers and no latent floats are made.
template <class Backend>
LanguageModel<Backend> load_packed_model(Context<Backend>& ctx, const std::string& path, const ModelOptions& opts) {
  (void)ctx;
  const PackedCheckpoint file(path);
  LanguageModel<Backend> model(file.config(), opts);
  ParamStore<Backend>& store = model.params();
  for (const auto& e : store.entries()) {
    // Stored tensors are converted from the mapped file directly (one float copy); binary weights of a
    // latent model come as +-1 (PackedCheckpoint::latent).
    const bool stored = file.file().has(e.name);
    const HostTensor t = stored ? file.file().get(e.name) : file.latent(e.name);
    if (t.shape != e.shape)
      BIMAMBA_THROW(FormatError, path, ": tensor '", e.name, "' has shape ", t.shape_string(), ", the model needs ",
                    detail::shape_to_string(e.shape));
    const std::vector<float> values = to_float(t);
    MemoryOps<Backend>::copy_from_host(store.params().data() + e.offset, values.data(), values.size() * sizeof(float));
  }
  model.set_signs([&](const std::string& name) { return file.signs<uint32_t>(name); });
  model.pack();
  return model;
}

}  // namespace bimamba
