// Text generation with a LanguageModel: prefill the prompt(s), then sample one token per step through the
// recurrent state.
//
// generate(ctx, model, prompts, options) -> the new tokens of each prompt (prompts need not have equal
// lengths). Each prompt is prefilled on its own (batch 1, chunked scan) into its row of a batch state, then
// all sequences step together. A sequence ends after max_new_tokens, after emitting one of stop_tokens (the
// stop token is included in its output), or when on_token returns false; generation ends when every
// sequence has. Finished rows keep stepping with token 0 until all are done; their outputs are ignored.
// Sequence i samples with its own Sampler seeded with seed_seq{seed, i}, so its tokens do not depend on
// which other prompts share the batch. on_token(i, token) is called for every new token as it is chosen
// (streaming). With pad_token >= 0, prompt positions holding it are padding (masked out of the prefill, as
// HF's generate does when a prompt contains the pad token); generated tokens are never masked.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "language_model.hpp"
#include "sampling.hpp"

namespace bimamba {

struct GenerationOptions {
  int64_t max_new_tokens = 32;
  SamplingOptions sampling;
  std::vector<int32_t> stop_tokens;
  std::function<bool(int64_t sequence, int32_t token)> on_token;  // return false to end that sequence
  int32_t pad_token = -1;                                          // < 0: no padding in prompts
};

template <class Backend>
std::vector<std::vector<int32_t>> generate(Context<Backend>& ctx, const LanguageModel<Backend>& model,
                                           const std::vector<std::vector<int32_t>>& prompts,
                                           const GenerationOptions& options) {
  const int64_t N = int64_t(prompts.size()), V = model.vocab_size();
  BIMAMBA_CHECK(options.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got ", options.max_new_tokens);
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(N));
  if (N == 0 || options.max_new_tokens == 0) return out;

  auto state = model.new_state(N);
  std::vector<float> last(size_t(N * V));  // (N, V) logits that choose each sequence's next token
  std::vector<Sampler> samplers;
  for (int64_t i = 0; i < N; ++i) {
    const auto& prompt = prompts[size_t(i)];
    BIMAMBA_CHECK(!prompt.empty(), "generate: prompt ", i, " is empty");
    auto one = model.new_state(1);
    const int64_t L = int64_t(prompt.size());
    const auto ids = to<Backend>(tensor_from<int32_t, 2>(prompt, {1, L}));
    Tensor<float, 2, Host> mask({1, L});
    bool padded = false;
    for (int64_t l = 0; l < L; ++l) {
      mask(0, l) = prompt[size_t(l)] == options.pad_token ? 0.0f : 1.0f;
      padded = padded || mask(0, l) == 0.0f;
    }
    const auto mask_d = to<Backend>(mask);
    const auto logits = padded ? model.forward(ctx, ids, one, mask_d) : model.forward(ctx, ids, one);
    const auto row = to_host(logits.cview().narrow(1, int64_t(prompt.size()) - 1, 1));
    std::copy(row.data(), row.data() + V, last.begin() + i * V);
    state.copy_row(one, 0, i);
    std::seed_seq seed{options.sampling.seed, uint64_t(i)};
    samplers.emplace_back(options.sampling, seed);
  }

  std::vector<bool> active(size_t(N), true);
  Tensor<int32_t, 1, Host> next({N});
  for (int64_t t = 0;; ++t) {
    int64_t running = 0;
    for (int64_t i = 0; i < N; ++i) {
      next(i) = 0;
      if (!active[size_t(i)]) continue;
      const int32_t token = samplers[size_t(i)](last.data() + i * V, V);
      out[size_t(i)].push_back(token);
      next(i) = token;
      bool go_on = int64_t(out[size_t(i)].size()) < options.max_new_tokens;
      for (int32_t s : options.stop_tokens) go_on = go_on && token != s;
      if (options.on_token && !options.on_token(i, token)) go_on = false;
      active[size_t(i)] = go_on;
      running += go_on;
    }
    if (running == 0) break;
    const auto logits = model.step(ctx, to<Backend>(next), state);
    const auto host = to_vector(logits);
    std::copy(host.begin(), host.end(), last.begin());
  }
  return out;
}

// One prompt.
template <class Backend>
std::vector<int32_t> generate(Context<Backend>& ctx, const LanguageModel<Backend>& model, const std::vector<int32_t>& prompt,
                              const GenerationOptions& options) {
  return generate(ctx, model, std::vector<std::vector<int32_t>>{prompt}, options)[0];
}

}  // namespace bimamba
