// Distillation from a teacher stored on disk as its top-k logits (train/losses.hpp's TopKTeacher).
//
//   top_k(ctx, logits (B, L, V), ids (B, L, K), values (B, L, K)): per position the K largest logits,
//       sorted by logit descending (ties: smaller id first), and their ids. NaN logits are not allowed.
//
//   Teacher top-k file: a safetensors file (io/safetensors.hpp) holding S training batches and what the
//   teacher said about them:
//       tokens       I32 (S, B, L + 1)   the batch (inputs and targets, as a Batch's tokens)
//       topk_ids     I32 (S, B, L, K)    ids in [0, vocab_size)
//       topk_logits  F32 (S, B, L, K)    the teacher's logits at those ids
//       __metadata__ format "bimamba.teacher_topk", version "1", vocab_size
//   TeacherTopKWriter(path, vocab_size, K) collects batches in memory (add(ctx, batch tokens, teacher
//   logits) computes the top k) and finish() writes the file atomically; its size is S B (L+1+2 L K) 4 bytes.
//   TeacherTopKFile(path) maps and validates it (FormatError naming the file: wrong format, missing tensor,
//   dtype, inconsistent shapes, an id outside [0, vocab_size)); step(ctx, s) returns batch s (tokens on the
//   backend) with its TopKTeacher, e.g. s = training step % steps() for epochs over the file.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "../core/context.hpp"
#include "../io/safetensors.hpp"
#include "data.hpp"
#include "host/top_k.hpp"
#include "losses.hpp"
#include "nondeduced.hpp"

namespace bimamba {

inline constexpr const char* kTeacherTopKFormat = "bimamba.teacher_topk";

template <class Backend>
void top_k(Context<Backend>& ctx, TensorView<const float, 3, Nondeduced<Backend>> logits,
           TensorView<int32_t, 3, Nondeduced<Backend>> ids, TensorView<float, 3, Nondeduced<Backend>> values) {
  const int64_t K = ids.size(2);
  check_shape<int32_t, 3>(ids, {logits.size(0), logits.size(1), K}, "top_k: ids");
  check_shape<float, 3>(values, ids.shape(), "top_k: values");
  BIMAMBA_CHECK(K >= 1 && K <= logits.size(2), "top_k: K = ", K, " outside [1, V = ", logits.size(2), "]");
  BIMAMBA_CHECK(logits.stride(2) == 1, "top_k: logits must be contiguous along V");
  detail::top_k_impl(ctx, logits, ids, values);
}

class TeacherTopKWriter {
 public:
  TeacherTopKWriter(std::string path, int64_t vocab_size, int64_t k)
      : path_(std::move(path)), vocab_(vocab_size), k_(k) {
    BIMAMBA_CHECK(vocab_size >= 1 && k >= 1 && k <= vocab_size, "TeacherTopKWriter ", path_, ": need 1 <= k (", k,
                  ") <= vocab_size (", vocab_size, ")");
  }

  // Appends one batch: tokens (B, L + 1) and the teacher's logits on its inputs (B, L, V), both on the host.
  void add(Context<Host>& ctx, TensorView<const int32_t, 2, Host> tokens, TensorView<const float, 3, Host> logits) {
    const int64_t B = tokens.size(0), L = tokens.size(1) - 1;
    check_shape<const float, 3>(logits, {B, L, vocab_}, "TeacherTopKWriter: teacher logits");
    BIMAMBA_CHECK(L >= 1, "TeacherTopKWriter: tokens need at least 2 columns");
    if (steps_ == 0) {
      B_ = B;
      L_ = L;
    }
    BIMAMBA_CHECK(B == B_ && L == L_, "TeacherTopKWriter ", path_, ": batch (", B, ", ", L,
                  ") differs from the first batch (", B_, ", ", L_, ")");
    Tensor<int32_t, 3, Host> ids({B, L, k_});
    Tensor<float, 3, Host> values({B, L, k_});
    top_k(ctx, logits, ids, values);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j <= L; ++j) tokens_.push_back(tokens(b, j));
    ids_.insert(ids_.end(), ids.data(), ids.data() + ids.numel());
    values_.insert(values_.end(), values.data(), values.data() + values.numel());
    ++steps_;
  }

  int64_t steps() const { return steps_; }

  void finish() {
    BIMAMBA_CHECK(steps_ > 0, "TeacherTopKWriter ", path_, ": no batch added");
    save_safetensors(path_,
                     {HostTensor::from_values("tokens", {steps_, B_, L_ + 1}, tokens_),
                      HostTensor::from_values("topk_ids", {steps_, B_, L_, k_}, ids_),
                      HostTensor::from_values("topk_logits", {steps_, B_, L_, k_}, values_)},
                     {{"format", kTeacherTopKFormat}, {"version", "1"}, {"vocab_size", std::to_string(vocab_)}});
  }

 private:
  std::string path_;
  int64_t vocab_, k_;
  int64_t steps_ = 0, B_ = 0, L_ = 0;
  std::vector<int32_t> tokens_, ids_;
  std::vector<float> values_;
};

// One batch of a teacher top-k file, owning its tensors on the backend.
template <class Backend>
struct TeacherTopKStep {
  Batch<Backend> batch;              // tokens (B, L + 1)
  Tensor<int32_t, 3, Backend> ids;   // (B, L, K)
  Tensor<float, 3, Backend> logits;  // (B, L, K)
  TopKTeacher<Backend> teacher() const { return {ids.cview(), logits.cview()}; }
};

class TeacherTopKFile {
 public:
  explicit TeacherTopKFile(const std::string& path) : file_(path) {
    const auto& meta = file_.metadata();
    const auto format = meta.find("format");
    if (format == meta.end() || format->second != kTeacherTopKFormat)
      fail("not a teacher top-k file (metadata 'format' is not '", kTeacherTopKFormat, "')");
    const auto version = meta.find("version");
    if (version == meta.end() || version->second != "1") fail("teacher top-k file version is not '1'");
    const auto vocab = meta.find("vocab_size");
    try {
      vocab_ = vocab == meta.end() ? 0 : std::stoll(vocab->second);
    } catch (const std::exception&) {
      vocab_ = 0;
    }
    if (vocab_ <= 0) fail("metadata 'vocab_size' is missing or not a positive integer");
    tokens_ = require("tokens", DType::I32, 3);
    ids_ = require("topk_ids", DType::I32, 4);
    logits_ = require("topk_logits", DType::F32, 4);
    const auto& ts = tokens_.shape;
    const auto& is = ids_.shape;
    if (ts[2] < 2 || is[0] != ts[0] || is[1] != ts[1] || is[2] != ts[2] - 1 || is[3] < 1)
      fail("topk_ids has shape ", ids_.shape_string(), ", tokens ", tokens_.shape_string(),
           ": expected (S, B, L, K) with tokens (S, B, L + 1)");
    if (logits_.shape != ids_.shape)
      fail("topk_logits has shape ", logits_.shape_string(), ", topk_ids ", ids_.shape_string());
    const int64_t n = ids_.numel();
    for (int64_t i = 0; i < n; ++i) {
      const int32_t id = load<int32_t>(ids_, i);
      if (id < 0 || id >= vocab_) fail("topk_ids element ", i, " = ", id, " is outside [0, ", vocab_, ")");
    }
  }

  const std::string& path() const { return file_.path(); }
  int64_t steps() const { return tokens_.shape[0]; }
  int64_t batch_size() const { return tokens_.shape[1]; }
  int64_t length() const { return tokens_.shape[2] - 1; }
  int64_t k() const { return ids_.shape[3]; }
  int64_t vocab_size() const { return vocab_; }

  template <class Backend>
  TeacherTopKStep<Backend> step(Context<Backend>&, int64_t s) const {
    BIMAMBA_CHECK(s >= 0 && s < steps(), "TeacherTopKFile ", path(), ": step ", s, " outside [0, ", steps(), ")");
    const int64_t B = batch_size(), L = length(), K = k();
    Tensor<int32_t, 2, Host> tokens({B, L + 1});
    Tensor<int32_t, 3, Host> ids({B, L, K});
    Tensor<float, 3, Host> logits({B, L, K});
    std::memcpy(tokens.data(), tokens_.data() + size_t(s) * tokens.bytes(), tokens.bytes());
    std::memcpy(ids.data(), ids_.data() + size_t(s) * ids.bytes(), ids.bytes());
    std::memcpy(logits.data(), logits_.data() + size_t(s) * logits.bytes(), logits.bytes());
    if constexpr (is_host_v<Backend>) {
      return {{std::move(tokens)}, std::move(ids), std::move(logits)};
    } else {
      return {{to<Backend>(tokens)}, to<Backend>(ids), to<Backend>(logits)};
    }
  }

 private:
  template <class... Args>
  [[noreturn]] void fail(Args&&... args) const {
    BIMAMBA_THROW(FormatError, file_.path(), ": ", std::forward<Args>(args)...);
  }

  HostTensor require(const std::string& name, DType dtype, int rank) const {
    if (!file_.has(name)) fail("no tensor '", name, "'");
    HostTensor t = file_.get(name);
    if (t.dtype != dtype) fail("tensor '", name, "' is ", dtype_name(t.dtype), ", expected ", dtype_name(dtype));
    if (t.rank() != rank) fail("tensor '", name, "' has shape ", t.shape_string(), ", expected rank ", rank);
    return t;
  }

  template <class T>
  static T load(const HostTensor& t, int64_t i) {
    T v;
    std::memcpy(&v, t.data() + size_t(i) * sizeof(T), sizeof(T));
    return v;
  }

  SafetensorsFile file_;
  int64_t vocab_ = 0;
  HostTensor tokens_, ids_, logits_;
};

}  // namespace bimamba
