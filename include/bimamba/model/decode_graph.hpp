// DecodeGraph: LanguageModel<Cuda>::step for one batch size, captured once into a CUDA graph and replayed for
// every further token (one graph per batch size: make one DecodeGraph per size). A translation unit that uses
// it is compiled as CUDA (the model's kernels).
//
//   InferenceState<Cuda> state = model.new_state(B);
//   DecodeGraph graph(model, state, stream);           // binds the model, this state and the stream
//   for (...) {
//     View<const float, 2, Cuda> logits = graph.step(ids);   // ids: B host token ids -> logits (B, V) on the device
//     ...                                                     // valid until the next step; read after a sync
//   }
//
// Contract:
// - step() equals LanguageModel::step (the same kernels in the same order: the logits are bit-identical), and
//   advances every sequence of the bound state by one token (positions included).
// - The first step runs eagerly: it grows the graph's private workspace, creates the cuBLAS handle and the
//   split-K counters. The second step is captured (nothing can allocate during capture: Workspace::reset grew
//   the arena to the peak) and the graph is replayed from then on. The graph holds the addresses of the model's
//   weights, of the state's tensors and of its own buffers: the model and the state must outlive it and keep
//   their storage (InferenceState::reset() and copy_row() write in place and are fine; moving or reassigning
//   the state is not).
// - Ids are range-checked on the host before they are copied (the embedding's device check cannot report from
//   inside a graph): an id outside [0, V) throws InvalidArgument naming it and its position, with the state
//   untouched.
// - The graph has its own Context (workspace, counters, cuBLAS handle) on `stream`, so the caller's context can
//   grow or reset its workspace without invalidating the captured addresses.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../core/cuda_runtime.hpp"
#include "language_model.hpp"

namespace bimamba {

class DecodeGraph {
 public:
  DecodeGraph(const LanguageModel<Cuda>& model, InferenceState<Cuda>& state, cudaStream_t stream)
      : model_(&model), state_(&state), ctx_(stream), ids_({state.batch()}),
        logits_({state.batch(), model.vocab_size()}) {
    BIMAMBA_CHECK(stream != nullptr, "DecodeGraph: needs a created stream (the legacy default stream cannot be "
                                     "captured)");
    BIMAMBA_CHECK(state.batch() > 0, "DecodeGraph: the state holds no sequence");
  }
  DecodeGraph(const DecodeGraph&) = delete;
  DecodeGraph& operator=(const DecodeGraph&) = delete;
  ~DecodeGraph() {
    if (exec_) (void)cudaGraphExecDestroy(exec_);
    if (graph_) (void)cudaGraphDestroy(graph_);
  }

  int64_t batch() const { return ids_.size(0); }
  bool captured() const { return exec_ != nullptr; }

  // ids (B) on the host -> logits (B, V) on the device, enqueued on the stream.
  View<const float, 2, Cuda> step(const std::vector<int32_t>& ids) {
    const int64_t B = batch(), V = model_->vocab_size();
    BIMAMBA_CHECK(int64_t(ids.size()) == B, "DecodeGraph::step: ", ids.size(), " ids for a batch of ", B);
    for (int64_t b = 0; b < B; ++b)
      BIMAMBA_CHECK(ids[size_t(b)] >= 0 && ids[size_t(b)] < V, "DecodeGraph::step: token id ", ids[size_t(b)],
                    " at position ", b, " is outside the vocabulary [0, ", V, ")");
    BIMAMBA_CHECK(state_->batch() == B, "DecodeGraph::step: the bound state now holds ", state_->batch(),
                  " sequences, the graph was made for ", B);
    BIMAMBA_CUDA_CHECK(cudaMemcpyAsync(ids_.data(), ids.data(), size_t(B) * sizeof(int32_t), cudaMemcpyHostToDevice,
                                       ctx_.stream()));
    if (steps_ == 0) {
      model_->step(ctx_, ids_.cview(), *state_, logits_.view());  // eager: everything that allocates happens here
      ctx_.synchronize();
      ctx_.workspace().reset();
    } else if (!exec_) {
      BIMAMBA_CUDA_CHECK(cudaStreamBeginCapture(ctx_.stream(), cudaStreamCaptureModeThreadLocal));
      try {
        model_->step(ctx_, ids_.cview(), *state_, logits_.view());  // advances positions on the host once
      } catch (...) {
        cudaGraph_t broken = nullptr;
        (void)cudaStreamEndCapture(ctx_.stream(), &broken);
        if (broken) (void)cudaGraphDestroy(broken);
        throw;  // nothing ran on the device; step() advances positions only at its end, so they are unchanged
      }
      BIMAMBA_CUDA_CHECK(cudaStreamEndCapture(ctx_.stream(), &graph_));
      BIMAMBA_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0));
      BIMAMBA_CUDA_CHECK(cudaGraphLaunch(exec_, ctx_.stream()));
    } else {
      BIMAMBA_CUDA_CHECK(cudaGraphLaunch(exec_, ctx_.stream()));
      for (auto& p : state_->positions()) p += 1;
    }
    ++steps_;
    return logits_.cview();
  }

  void synchronize() const { ctx_.synchronize(); }

 private:
  const LanguageModel<Cuda>* model_;
  InferenceState<Cuda>* state_;
  Context<Cuda> ctx_;
  Tensor<int32_t, 1, Cuda> ids_;     // (B)
  Tensor<float, 2, Cuda> logits_;    // (B, V)
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  int64_t steps_ = 0;
};

}  // namespace bimamba
