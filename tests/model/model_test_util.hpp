// Helpers of the model tests: reading the fixtures' reference tensors, running a model in both modes.
#pragma once

#include <test_support.hpp>

#include <bimamba/io/safetensors.hpp>
#include <bimamba/model/language_model.hpp>
#include <string>
#include <vector>

namespace bimamba::test {

struct Fixture {
  Tensor<int32_t, 2, Host> ids;  // (B, T)
  std::vector<float> logits;     // (B, T, V)
  std::vector<int32_t> gen_prompt, gen_ids;
};

inline Fixture read_fixture(const std::string& folder) {
  SafetensorsFile ref(data_path(folder + "/reference.safetensors"));
  const HostTensor ids = ref.get("input_ids");
  Fixture f;
  f.ids = tensor_from<int32_t, 2>(to_int32(ids), {ids.shape[0], ids.shape[1]});
  f.logits = to_float(ref.get("logits"));
  f.gen_prompt = to_int32(ref.get("gen_prompt_ids"));
  f.gen_ids = to_int32(ref.get("gen_ids"));
  return f;
}

// Logits (B, T, V) of feeding ids (B, T) one token at a time through the recurrent step.
template <class Backend>
std::vector<float> step_logits(Context<Backend>& ctx, const LanguageModel<Backend>& model,
                               const Tensor<int32_t, 2, Host>& ids) {
  const int64_t B = ids.size(0), T = ids.size(1), V = model.vocab_size();
  auto state = model.new_state(B);
  std::vector<float> out(size_t(B * T * V));
  for (int64_t t = 0; t < T; ++t) {
    Tensor<int32_t, 1, Host> column({B});
    for (int64_t b = 0; b < B; ++b) column(b) = ids(b, t);
    const auto logits = to_vector(model.step(ctx, to<Backend>(column), state));
    for (int64_t b = 0; b < B; ++b)
      std::copy(logits.begin() + b * V, logits.begin() + (b + 1) * V, out.begin() + (b * T + t) * V);
  }
  return out;
}

}  // namespace bimamba::test
