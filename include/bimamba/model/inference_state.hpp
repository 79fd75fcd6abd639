// InferenceState<Backend>: the decoding state of a batch of B sequences for every layer of a model:
//   conv(i) (B, C, K)  the last K inputs of layer i's causal conv, oldest first (C = conv_dim)
//   ssm(i)  (B, S)     layer i's SSM state, flattened: Mamba-2 (H, P, N), Mamba-1 (E, N)
//   positions (B)      tokens consumed by each sequence (bookkeeping for the caller; the math ignores it)
// A new state is all zeros (the state before any token). Rows are independent sequences: fork() copies the
// whole state (prefix reuse), copy_row() moves one sequence between states of the same model (prefill each
// prompt alone, then decode the batch together).
//
// save(path) writes a safetensors file: F32 `conv.<i>` (B, C, K), `ssm.<i>` with the logical shape
// (B, H, P, N) or (B, E, N), I64 `positions` (B), and metadata {format: bimamba.inference_state, version: 1,
// architecture, n_layer}. load(path, cfg) checks every tensor against the config: FormatError naming the
// file, the tensor and both shapes.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "../io/host_tensor.hpp"
#include "../io/safetensors.hpp"
#include "../nn/mixer_state.hpp"
#include "../tensor/copy.hpp"
#include "config.hpp"

namespace bimamba {

namespace detail {
// Per-sequence shapes of a layer's state under cfg: conv (C, K) and the logical ssm shape.
inline std::vector<int64_t> conv_state_shape(const ModelConfig& cfg) { return {cfg.conv_dim(), cfg.d_conv}; }
inline std::vector<int64_t> ssm_state_shape(const ModelConfig& cfg) {
  if (cfg.architecture == Architecture::Mamba2) return {cfg.nheads(), cfg.headdim, cfg.d_state};
  return {cfg.d_inner(), cfg.d_state};
}
inline int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t e : shape) n *= e;
  return n;
}
}  // namespace detail

template <class Backend>
class InferenceState {
 public:
  InferenceState() = default;
  InferenceState(const ModelConfig& cfg, int64_t batch) : cfg_(cfg), positions_(size_t(batch), 0) {
    BIMAMBA_CHECK(batch >= 0, "InferenceState: negative batch ", batch);
    const auto conv_shape = detail::conv_state_shape(cfg);
    const int64_t ssm_size = detail::numel_of(detail::ssm_state_shape(cfg));
    for (int64_t i = 0; i < cfg.n_layer; ++i) {
      conv_.emplace_back(Extents<3>{batch, conv_shape[0], conv_shape[1]});
      ssm_.emplace_back(Extents<2>{batch, ssm_size});
    }
  }
  InferenceState(InferenceState&&) noexcept = default;
  InferenceState& operator=(InferenceState&&) noexcept = default;

  const ModelConfig& config() const { return cfg_; }
  int64_t batch() const { return int64_t(positions_.size()); }
  int64_t layers() const { return int64_t(conv_.size()); }

  MixerState<Backend> layer(int64_t i) { return {conv_[size_t(i)].view(), ssm_[size_t(i)].view()}; }
  Tensor<float, 3, Backend>& conv(int64_t i) { return conv_[size_t(i)]; }
  Tensor<float, 2, Backend>& ssm(int64_t i) { return ssm_[size_t(i)]; }
  const Tensor<float, 3, Backend>& conv(int64_t i) const { return conv_[size_t(i)]; }
  const Tensor<float, 2, Backend>& ssm(int64_t i) const { return ssm_[size_t(i)]; }
  std::vector<int64_t>& positions() { return positions_; }
  const std::vector<int64_t>& positions() const { return positions_; }

  // Back to the state before any token.
  void reset() {
    for (auto& t : conv_) t.zero();
    for (auto& t : ssm_) t.zero();
    std::fill(positions_.begin(), positions_.end(), 0);
  }

  // An independent copy (continuing either leaves the other unchanged).
  InferenceState fork() const {
    InferenceState out(cfg_, batch());
    for (size_t i = 0; i < conv_.size(); ++i) {
      copy(conv_[i].cview(), out.conv_[i].view());
      copy(ssm_[i].cview(), out.ssm_[i].view());
    }
    out.positions_ = positions_;
    return out;
  }

  // Row dst_row of this state becomes row src_row of src (a state of the same model).
  void copy_row(const InferenceState& src, int64_t src_row, int64_t dst_row) {
    BIMAMBA_CHECK(src.layers() == layers(), "InferenceState::copy_row: states of different models (", src.layers(),
                  " vs ", layers(), " layers)");
    BIMAMBA_CHECK(src_row >= 0 && src_row < src.batch() && dst_row >= 0 && dst_row < batch(),
                  "InferenceState::copy_row: row ", src_row, " -> ", dst_row, " outside batches ", src.batch(), " / ",
                  batch());
    for (size_t i = 0; i < conv_.size(); ++i) {
      BIMAMBA_CHECK(src.conv_[i].shape()[1] == conv_[i].shape()[1] && src.ssm_[i].shape()[1] == ssm_[i].shape()[1],
                    "InferenceState::copy_row: layer ", i, " state shapes differ");
      copy(src.conv_[i].cview().narrow(0, src_row, 1), conv_[i].view().narrow(0, dst_row, 1));
      copy(src.ssm_[i].cview().narrow(0, src_row, 1), ssm_[i].view().narrow(0, dst_row, 1));
    }
    positions_[size_t(dst_row)] = src.positions_[size_t(src_row)];
  }

  void save(const std::string& path) const {
    std::vector<HostTensor> tensors;
    const int64_t B = batch();
    auto with_batch = [B](std::vector<int64_t> shape) {
      shape.insert(shape.begin(), B);
      return shape;
    };
    for (size_t i = 0; i < conv_.size(); ++i) {
      tensors.push_back(HostTensor::from_values("conv." + std::to_string(i), with_batch(detail::conv_state_shape(cfg_)),
                                                to_vector(conv_[i])));
      tensors.push_back(HostTensor::from_values("ssm." + std::to_string(i), with_batch(detail::ssm_state_shape(cfg_)),
                                                to_vector(ssm_[i])));
    }
    tensors.push_back(HostTensor::from_values("positions", {B}, positions_));
    save_safetensors(path, tensors,
                     {{"format", "bimamba.inference_state"},
                      {"version", "1"},
                      {"architecture", architecture_name(cfg_.architecture)},
                      {"n_layer", std::to_string(cfg_.n_layer)}});
  }

  // Reads a state saved by save() for a model of configuration cfg.
  static InferenceState load(const std::string& path, const ModelConfig& cfg) {
    SafetensorsFile file(path);
    const auto& meta = file.metadata();
    const auto format = meta.find("format");
    if (format == meta.end() || format->second != "bimamba.inference_state")
      BIMAMBA_THROW(FormatError, path, ": not an inference state file (metadata 'format' is not bimamba.inference_state)");
    const auto arch = meta.find("architecture");
    if (arch == meta.end() || arch->second != architecture_name(cfg.architecture))
      BIMAMBA_THROW(FormatError, path, ": state of architecture '", arch == meta.end() ? "?" : arch->second,
                    "', the model is ", architecture_name(cfg.architecture));
    const std::vector<int64_t> positions = to_int64(file.get("positions"));
    InferenceState out(cfg, int64_t(positions.size()));
    out.positions_ = positions;
    for (int64_t i = 0; i < cfg.n_layer; ++i) {
      out.read_tensor(file, "conv." + std::to_string(i), detail::conv_state_shape(cfg), out.conv_[size_t(i)].data());
      out.read_tensor(file, "ssm." + std::to_string(i), detail::ssm_state_shape(cfg), out.ssm_[size_t(i)].data());
    }
    if (file.has("conv." + std::to_string(cfg.n_layer)))
      BIMAMBA_THROW(FormatError, path, ": holds more layers than the model's ", cfg.n_layer);
    return out;
  }

 private:
  void read_tensor(const SafetensorsFile& file, const std::string& name, std::vector<int64_t> shape, float* dst) const {
    shape.insert(shape.begin(), batch());
    const HostTensor t = file.get(name);
    if (t.shape != shape)
      BIMAMBA_THROW(FormatError, file.path(), ": tensor '", name, "' has shape ", t.shape_string(), ", the model expects ",
                    detail::shape_to_string(shape));
    const std::vector<float> values = to_float(t);
    MemoryOps<Backend>::copy_from_host(dst, values.data(), values.size() * sizeof(float));
  }

  ModelConfig cfg_;
  std::vector<Tensor<float, 3, Backend>> conv_;
  std::vector<Tensor<float, 2, Backend>> ssm_;
  std::vector<int64_t> positions_;
};

}  // namespace bimamba
