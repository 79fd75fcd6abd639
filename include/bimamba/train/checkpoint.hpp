// Training checkpoints: everything a run needs to continue bit for bit, in one safetensors file written
// atomically (io/safetensors.hpp: temporary file, fsync, rename).
//
// Tensors (F32, in the ParamStore's declaration order, each with its parameter's shape):
//   <name>                the parameter (so the file also loads as a plain model checkpoint)
//   optimizer.m.<name>    AdamW's first moment
//   optimizer.v.<name>    AdamW's second moment
// __metadata__ (strings):
//   format "bimamba.training_checkpoint", version "1", step (completed training steps), adamw.t,
//   adamw.skipped, adamw.config (JSON: lr, beta1, beta2, eps, weight_decay), sampler.rng (the sampler's
//   std::mt19937_64 state), sampler.batches (batches drawn: the data position), run_config (the run's
//   configuration as JSON text, checked to parse), extra.<key> for the caller's own strings.
//
// load_training_checkpoint(ctx, path, store, opt) checks that the file is a training checkpoint of this
// version, that every parameter of the store is present with its shape and dtype F32 (with both moments),
// and that the file holds no tensor the store does not declare; each violation is a FormatError starting
// with the path and naming the tensor. It then overwrites the parameters, m, v and AdamW's step counts and
// returns the TrainingState (restore the sampler from its .sampler). AdamW hyper-parameters that differ
// from the checkpoint's are reported through ctx.log (a resumed run with other settings is allowed, but
// is no longer bit-identical). Gradients are not saved (a step starts by overwriting them).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "../core/context.hpp"
#include "../io/json.hpp"
#include "../io/safetensors.hpp"
#include "adamw.hpp"
#include "data.hpp"
#include "param_store.hpp"

namespace bimamba {

inline constexpr const char* kTrainingCheckpointFormat = "bimamba.training_checkpoint";
inline constexpr const char* kTrainingCheckpointVersion = "1";

struct TrainingState {
  int64_t step = 0;                          // completed training steps
  SamplerState sampler;                      // data position and the sampler's random engine
  std::string run_config = "{}";             // JSON text of the run's configuration
  std::map<std::string, std::string> extra;  // further caller strings (saved as extra.<key>)
};

namespace detail {

inline std::string adamw_config_json(const AdamWConfig& c) {
  nlohmann::ordered_json j;
  j["lr"] = c.lr;
  j["beta1"] = c.betas.beta1;
  j["beta2"] = c.betas.beta2;
  j["eps"] = c.eps;
  j["weight_decay"] = c.weight_decay;
  return j.dump();
}

// The floats of [offset, offset + numel) of a flat backend buffer as an F32 HostTensor.
template <class Backend>
HostTensor flat_slice(const std::string& name, const std::vector<int64_t>& shape, const float* data, int64_t numel) {
  std::vector<uint8_t> bytes(size_t(numel) * sizeof(float));
  MemoryOps<Backend>::copy_to_host(bytes.data(), data, bytes.size());
  return HostTensor(name, DType::F32, shape, std::move(bytes));
}

inline int64_t metadata_int(const SafetensorsFile& file, const std::string& key) {
  const auto it = file.metadata().find(key);
  if (it == file.metadata().end()) BIMAMBA_THROW(FormatError, file.path(), ": metadata has no '", key, "'");
  try {
    size_t used = 0;
    const long long v = std::stoll(it->second, &used);
    if (used == it->second.size() && v >= 0) return int64_t(v);
  } catch (const std::exception&) {
  }
  BIMAMBA_THROW(FormatError, file.path(), ": metadata '", key, "' = '", it->second, "' is not a non-negative integer");
}

inline const std::string& metadata_string(const SafetensorsFile& file, const std::string& key) {
  const auto it = file.metadata().find(key);
  if (it == file.metadata().end()) BIMAMBA_THROW(FormatError, file.path(), ": metadata has no '", key, "'");
  return it->second;
}

}  // namespace detail

template <class Backend>
void save_training_checkpoint(const std::string& path, const ParamStore<Backend>& store, const AdamW<Backend>& opt,
                              const TrainingState& state) {
  BIMAMBA_CHECK(store.allocated(), "save_training_checkpoint ", path, ": the ParamStore is not allocated");
  BIMAMBA_CHECK(opt.m().size(0) == store.flat_size(), "save_training_checkpoint ", path,
                ": the optimizer belongs to a store of another layout");
  try {
    (void)parse_json(state.run_config, "run_config");
  } catch (const FormatError& e) {
    BIMAMBA_THROW(InvalidArgument, "save_training_checkpoint ", path, ": run_config is not valid JSON (", e.what(),
                  ")");
  }
  std::vector<HostTensor> tensors;
  tensors.reserve(store.entries().size() * 3);
  const float* p = store.params().data();
  const float* m = opt.m().data();
  const float* v = opt.v().data();
  for (const auto& e : store.entries())
    tensors.push_back(detail::flat_slice<Backend>(e.name, e.shape, p + e.offset, e.numel));
  for (const auto& e : store.entries())
    tensors.push_back(detail::flat_slice<Backend>("optimizer.m." + e.name, e.shape, m + e.offset, e.numel));
  for (const auto& e : store.entries())
    tensors.push_back(detail::flat_slice<Backend>("optimizer.v." + e.name, e.shape, v + e.offset, e.numel));

  std::map<std::string, std::string> meta;
  meta["format"] = kTrainingCheckpointFormat;
  meta["version"] = kTrainingCheckpointVersion;
  meta["step"] = std::to_string(state.step);
  meta["adamw.t"] = std::to_string(opt.step_count());
  meta["adamw.skipped"] = std::to_string(opt.skipped_steps());
  meta["adamw.config"] = detail::adamw_config_json(opt.config());
  meta["sampler.rng"] = state.sampler.rng;
  meta["sampler.batches"] = std::to_string(state.sampler.batches);
  meta["run_config"] = state.run_config;
  for (const auto& [key, value] : state.extra) meta["extra." + key] = value;
  save_safetensors(path, tensors, meta);
}

template <class Backend>
TrainingState load_training_checkpoint(Context<Backend>& ctx, const std::string& path, ParamStore<Backend>& store,
                                       AdamW<Backend>& opt) {
  BIMAMBA_CHECK(store.allocated(), "load_training_checkpoint ", path, ": the ParamStore is not allocated");
  const SafetensorsFile file(path);
  const auto format = file.metadata().find("format");
  if (format == file.metadata().end() || format->second != kTrainingCheckpointFormat)
    BIMAMBA_THROW(FormatError, path, ": not a bimamba training checkpoint (metadata 'format' is not '",
                  kTrainingCheckpointFormat, "')");
  if (detail::metadata_string(file, "version") != kTrainingCheckpointVersion)
    BIMAMBA_THROW(FormatError, path, ": training checkpoint version '", detail::metadata_string(file, "version"),
                  "', this reader knows '", kTrainingCheckpointVersion, "'");

  // Check everything before changing anything.
  size_t expected_tensors = 0;
  std::vector<HostTensor> found;
  for (const char* prefix : {"", "optimizer.m.", "optimizer.v."})
    for (const auto& e : store.entries()) {
      const std::string name = prefix + e.name;
      if (!file.has(name)) BIMAMBA_THROW(FormatError, path, ": no tensor '", name, "' (the model declares it)");
      HostTensor t = file.get(name);
      if (t.dtype != DType::F32)
        BIMAMBA_THROW(FormatError, path, ": tensor '", name, "' is ", dtype_name(t.dtype), ", expected F32");
      if (t.shape != e.shape)
        BIMAMBA_THROW(FormatError, path, ": tensor '", name, "' has shape ", t.shape_string(), ", the model has ",
                      detail::shape_to_string(e.shape));
      found.push_back(std::move(t));
      ++expected_tensors;
    }
  if (file.size() != expected_tensors)
    for (const std::string& name : file.names()) {
      const bool optimizer = name.rfind("optimizer.m.", 0) == 0 || name.rfind("optimizer.v.", 0) == 0;
      if (store.find(optimizer ? name.substr(12) : name) < 0)
        BIMAMBA_THROW(FormatError, path, ": tensor '", name, "' belongs to no parameter the model declares");
    }
  TrainingState state;
  state.step = detail::metadata_int(file, "step");
  const int64_t t = detail::metadata_int(file, "adamw.t");
  const int64_t skipped = detail::metadata_int(file, "adamw.skipped");
  state.sampler.rng = detail::metadata_string(file, "sampler.rng");
  state.sampler.batches = detail::metadata_int(file, "sampler.batches");
  state.run_config = detail::metadata_string(file, "run_config");
  for (const auto& [key, value] : file.metadata())
    if (key.rfind("extra.", 0) == 0) state.extra[key.substr(6)] = value;
  const std::string saved_config = detail::metadata_string(file, "adamw.config");
  if (saved_config != detail::adamw_config_json(opt.config()))
    ctx.log(LogLevel::Warning, path + ": AdamW settings differ from the checkpoint's " + saved_config +
                                   "; the resumed run will not match the original bit for bit");

  float* buffers[3] = {store.params().data(), opt.m().data(), opt.v().data()};
  size_t k = 0;
  for (float* buffer : buffers)
    for (const auto& e : store.entries()) {
      const HostTensor& src = found[k++];
      MemoryOps<Backend>::copy_from_host(buffer + e.offset, src.data(), src.nbytes());
    }
  opt.set_step_count(t, skipped);
  return state;
}

}  // namespace bimamba
