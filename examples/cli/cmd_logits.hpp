// The body of `bimamba logits` (cmd_logits.cpp) on any backend: reads input_ids [B, T], runs the model
// (prefill: one forward; step: token by token through the recurrent state) on ctx's backend and writes the
// F32 logits [B, T, V] atomically. The ids are range-checked on the host before anything runs.
#pragma once

#include <bimamba/io/safetensors.hpp>
#include <bimamba/tensor/copy.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "args.hpp"
#include "device.hpp"
#include "model_io.hpp"
#include "progress.hpp"

namespace bimamba::cli {

template <class Backend>
int logits_on(Context<Backend>& ctx, const Args& args) {
  const std::string mode = args.str("mode");
  if (mode != "prefill" && mode != "step") throw UsageError("--mode must be prefill or step, got '" + mode + "'");
  const std::string output = args.str("output"), input = args.str("input");
  LanguageModel<Backend> model = open_model(ctx, args.str("model"), args.has("packed"));
  if (args.has("chunk-size")) model.set_chunk_size(args.integer("chunk-size"));
  const int64_t V = model.vocab_size();
  int64_t B = 0, T = 0;
  const std::vector<int32_t> ids = read_token_ids(input, V, B, T);

  Tensor<float, 3, Host> logits;  // (B, T, V)
  if (mode == "prefill") {
    const auto x = to<Backend>(tensor_from<int32_t, 2>(ids, {B, T}));  // (B, T)
    Tensor<float, 3, Backend> out({B, T, V});                          // (B, T, V)
    model.forward(ctx, x.cview(), out.view());
    if constexpr (is_host_v<Backend>) logits = std::move(out);
    else logits = to_host(out);
  } else {
    logits = Tensor<float, 3, Host>({B, T, V});
    Progress progress("logits (step)", args.has("progress"));
    InferenceState<Backend> state = model.new_state(B);
    Tensor<int32_t, 1, Host> column({B});          // (B)
    Tensor<float, 2, Backend> step_logits({B, V});  // (B, V)
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t b = 0; b < B; ++b) column(b) = ids[size_t(b * T + t)];
      model.step(ctx, to<Backend>(column).cview(), state, step_logits.view());
      const auto& row = host_copy(step_logits);  // (B, V)
      for (int64_t b = 0; b < B; ++b) std::memcpy(&logits(b, t, 0), &row(b, 0), size_t(V) * sizeof(float));
      progress.update(t + 1, T);
    }
  }
  save_safetensors(output, {HostTensor::from_view<float, 3>("logits", logits.cview())});
  return 0;
}

}  // namespace bimamba::cli
