// Model conversions on checkpoint tensors (HF names, model/storage.hpp model_tensor_specs).
//
// Full-precision Mamba-2 -> latent Bi-Mamba (DESIGN.md, FBI-LLM initialisation, scaling_pattern 'column'):
//   for every in_proj / out_proj weight W (out x in), keep W as the latent weight and add
//     wbias[0, j]  = beta_j  = mean_i W[i, j]
//     wscale[0, j] = alpha_j = mean_i |W[i, j] - beta_j|
//   (sums in double). So W_eff = alpha * s(W) + beta starts at the column-wise best 1-bit fit of W.
//   Every other tensor is copied unchanged; the config gets binary = true.
// Latent Bi-Mamba (or any model) -> packed checkpoint: io/packed_checkpoint.hpp pack_checkpoint; for a
//   LanguageModel, save_packed(ctx, model, path, opts) writes its parameters that way.
// Packed checkpoint -> LanguageModel: load_packed_model(ctx, path) fills the latent parameters with the
//   stored full-precision tensors and +-1 binary weights (s(+-1) gives back the stored signs), then packs the
//   model: it runs on the sign bits, exactly the stored ones.
//
// ConversionReport: the storage before and after (model/storage.hpp) and the number of latent binary
// weights that are exactly 0 (s(0) = +1 in this library, torch.sign(0) = 0 in the reference).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "../core/error.hpp"
#include "../io/host_tensor.hpp"
#include "../io/packed_checkpoint.hpp"
#include "../tensor/copy.hpp"
#include "config.hpp"
#include "language_model.hpp"
#include "storage.hpp"

namespace bimamba {

struct ConversionReport {
  StorageReport before;
  StorageReport after;
  int64_t zero_binary_weights = 0;

  nlohmann::ordered_json to_json() const {
    nlohmann::ordered_json j;
    j["before"] = before.to_json();
    j["after"] = after.to_json();
    j["zero_binary_weights"] = zero_binary_weights;
    j["compression"] = after.bytes() > 0 ? double(before.bytes()) / double(after.bytes()) : 0.0;
    return j;
  }
};

// The storage of tensors as given (bytes as stored; binary weights counted in the config's kind).
inline StorageReport tensor_storage(const ModelConfig& config, const std::vector<HostTensor>& tensors) {
  StorageReport r;
  for (const HostTensor& t : tensors) r.add(param_kind_of(t.name, config.binary), t.numel(), int64_t(t.nbytes()));
  return r;
}

// alpha, beta of one (out, in) weight: returns {wscale [1, in], wbias [1, in]} as F32.
inline std::pair<std::vector<float>, std::vector<float>> fbi_init(const std::string& name, const std::vector<float>& w,
                                                                   int64_t rows, int64_t cols) {
  BIMAMBA_CHECK(rows > 0 && cols > 0 && int64_t(w.size()) == rows * cols, "fbi_init: '", name, "' has ", w.size(),
                " values for shape [", rows, ", ", cols, "]");
  std::vector<double> mean(size_t(cols), 0.0), dev(size_t(cols), 0.0);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) mean[size_t(j)] += w[size_t(i * cols + j)];
  for (double& m : mean) m /= double(rows);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dev[size_t(j)] += std::fabs(w[size_t(i * cols + j)] - mean[size_t(j)]);
  std::vector<float> scale(static_cast<size_t>(cols)), offset(static_cast<size_t>(cols));
  for (int64_t j = 0; j < cols; ++j) {
    scale[size_t(j)] = float(dev[size_t(j)] / double(rows));
    offset[size_t(j)] = float(mean[size_t(j)]);
  }
  return {scale, offset};
}

// Full-precision Mamba-2 tensors -> latent Bi-Mamba tensors (F32), in model_tensor_specs order of the
// binary config. `source(name)` gives the full-precision tensor of an HF name. Updates `config` to binary.
inline std::vector<HostTensor> fp_to_bimamba(ModelConfig& config, const TensorSource& source,
                                             ConversionReport* report = nullptr) {
  BIMAMBA_CHECK(config.architecture == Architecture::Mamba2, "fp_to_bimamba: Bi-Mamba is a Mamba-2 model; got a ",
                architecture_name(config.architecture), " config");
  BIMAMBA_CHECK(!config.binary, "fp_to_bimamba: the model is already binary (it has wscale / wbias)");
  ModelConfig binary = config;
  binary.binary = true;
  std::vector<HostTensor> fp_tensors;
  std::vector<HostTensor> out;
  int64_t zeros = 0;
  std::vector<float> pending_alpha, pending_beta;
  for (const TensorSpec& spec : model_tensor_specs(binary)) {
    if (detail::has_name_suffix(spec.name, ".wscale")) {
      out.push_back(HostTensor::from_values<float>(spec.name, spec.shape, pending_alpha));
      continue;
    }
    if (detail::has_name_suffix(spec.name, ".wbias")) {
      out.push_back(HostTensor::from_values<float>(spec.name, spec.shape, pending_beta));
      continue;
    }
    const HostTensor t = source(spec.name);
    if (t.shape != spec.shape)
      BIMAMBA_THROW(FormatError, "tensor '", spec.name, "' has shape ", t.shape_string(), ", the config expects ",
                    detail::shape_to_string(spec.shape));
    fp_tensors.push_back(t);
    const std::vector<float> values = to_float(t);
    if (spec.kind == ParamKind::Binary) {
      for (float v : values) zeros += v == 0.0f;
      std::tie(pending_alpha, pending_beta) = fbi_init(spec.name, values, spec.shape[0], spec.shape[1]);
    }
    out.push_back(HostTensor::from_values<float>(spec.name, spec.shape, values));
  }
  if (report) {
    report->before = tensor_storage(config, fp_tensors);
    report->after = tensor_storage(binary, out);
    report->zero_binary_weights = zeros;
  }
  config = binary;
  return out;
}

// Any model's tensors -> the packed checkpoint tensors (io/packed_checkpoint.hpp), with the report.
inline std::vector<HostTensor> latent_to_packed(const ModelConfig& config, const TensorSource& source,
                                                const PackedOptions& opts = {}, ConversionReport* report = nullptr) {
  int64_t zeros = 0;
  std::vector<HostTensor> packed = pack_checkpoint(config, source, opts, &zeros);
  if (report) {
    std::vector<HostTensor> originals;
    for (const TensorSpec& spec : model_tensor_specs(config)) originals.push_back(source(spec.name));
    report->before = tensor_storage(config, originals);
    report->after = packed_storage(config, opts);
    report->zero_binary_weights = zeros;
  }
  return packed;
}

// A tensor source over a model's parameters (host copies of the ParamStore).
template <class Backend>
TensorSource model_tensor_source(Context<Backend>& ctx, const LanguageModel<Backend>& model) {
  (void)ctx;
  auto flat = std::make_shared<Tensor<float, 1, Host>>(to_host(model.params().params()));
  const ParamStore<Backend>* store = &model.params();
  return [flat, store](const std::string& name) {
    const int id = store->find(name);
    if (id < 0) BIMAMBA_THROW(FormatError, "the model has no parameter '", name, "'");
    const auto& e = store->entries()[size_t(id)];
    std::vector<float> values(flat->data() + e.offset, flat->data() + e.offset + e.numel);
    return HostTensor::from_values<float>(name, e.shape, values);
  };
}

// Writes the model as a packed checkpoint (atomically); returns the conversion report.
template <class Backend>
ConversionReport save_packed(Context<Backend>& ctx, const LanguageModel<Backend>& model, const std::string& path,
                             const PackedOptions& opts = {}) {
  ConversionReport report;
  const std::vector<HostTensor> packed = latent_to_packed(model.config(), model_tensor_source(ctx, model), opts, &report);
  save_packed_checkpoint(path, model.config(), packed, opts);
  return report;
}

// A model read from a packed checkpoint, running on the stored sign bits.
template <class Backend>
LanguageModel<Backend> load_packed_model(Context<Backend>& ctx, const std::string& path) {
  (void)ctx;
  const PackedCheckpoint file(path);
  LanguageModel<Backend> model(file.config());
  ParamStore<Backend>& store = model.params();
  Tensor<float, 1, Host> flat({store.flat_size()});
  for (const auto& e : store.entries()) {
    const HostTensor t = file.latent(e.name);
    if (t.shape != e.shape)
      BIMAMBA_THROW(FormatError, path, ": tensor '", e.name, "' has shape ", t.shape_string(), ", the model needs ",
                    detail::shape_to_string(e.shape));
    std::memcpy(flat.data() + e.offset, t.data(), t.nbytes());
  }
  copy(flat.cview(), store.params());
  model.pack();
  return model;
}

}  // namespace bimamba
