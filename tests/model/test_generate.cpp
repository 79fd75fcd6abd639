// Generation: greedy decoding reproduces the fixtures' gen_ids (HF's recurrent cache), batched prompts of
// different lengths give what each prompt gives alone, stop tokens and the streaming callback end
// sequences, and the sampler's temperature / top-k / top-p behave as documented.
#include <bimamba/model/generate.hpp>
#include <bimamba/model/load.hpp>

#include "model_test_util.hpp"

namespace bimamba::test {
namespace {

void check_greedy(const std::string& folder, bool pack) {
  Context<Host> ctx;
  auto model = load_model<Host>(ctx, data_path(folder));
  if (pack) model.pack();
  const Fixture f = read_fixture(folder);
  GenerationOptions options;
  options.max_new_tokens = int64_t(f.gen_ids.size());
  // The fixtures' configs have pad_token_id 0; HF's generate masks prompt positions holding it (the
  // bimamba2-tiny prompt has one).
  options.pad_token = 0;
  EXPECT_EQ(generate(ctx, model, f.gen_prompt, options), f.gen_ids) << folder;
}

TEST(Generate, GreedyReproducesFixtures) {
  check_greedy("mamba2-tiny", false);
  check_greedy("mamba1-tiny", false);
  check_greedy("bimamba2-tiny", false);
  check_greedy("bimamba2-tiny", true);
  check_greedy("bimamba2-tiny-mamba-ssm", false);
  check_greedy("bimamba2-tiny-mamba-ssm", true);
}

TEST(Generate, BatchOfDifferentLengthsEqualsEachAlone) {
  Context<Host> ctx;
  const auto model = load_model<Host>(ctx, data_path("mamba2-tiny"));
  const std::vector<std::vector<int32_t>> prompts = {{5, 17, 3}, {9}, {40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50}};
  for (float temperature : {0.0f, 1.0f}) {
    GenerationOptions options;
    options.max_new_tokens = 6;
    options.sampling.temperature = temperature;
    options.sampling.top_k = 20;
    options.sampling.seed = 7;
    const auto batch = generate(ctx, model, prompts, options);
    ASSERT_EQ(batch.size(), prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      // Sequence i alone must also be sequence i of its batch for the seeds to agree: run it in a batch
      // where it has index i by padding with copies of the first prompt.
      std::vector<std::vector<int32_t>> alone(i + 1, prompts[0]);
      alone[i] = prompts[i];
      EXPECT_EQ(generate(ctx, model, alone, options)[i], batch[i]) << "prompt " << i << " temperature " << temperature;
      EXPECT_EQ(batch[i].size(), 6u);
    }
  }
}

TEST(Generate, StopTokenAndCallbackEndSequences) {
  Context<Host> ctx;
  const auto model = load_model<Host>(ctx, data_path("mamba2-tiny"));
  const Fixture f = read_fixture("mamba2-tiny");
  ASSERT_GE(f.gen_ids.size(), 4u);
  GenerationOptions options;
  options.max_new_tokens = int64_t(f.gen_ids.size());
  options.stop_tokens = {f.gen_ids[2]};
  const auto stopped = generate(ctx, model, f.gen_prompt, options);
  const size_t first = size_t(std::find(f.gen_ids.begin(), f.gen_ids.end(), f.gen_ids[2]) - f.gen_ids.begin());
  EXPECT_EQ(stopped, std::vector<int32_t>(f.gen_ids.begin(), f.gen_ids.begin() + int64_t(first) + 1));

  std::vector<int32_t> streamed;
  GenerationOptions streaming;
  streaming.max_new_tokens = 100;
  streaming.on_token = [&](int64_t sequence, int32_t token) {
    EXPECT_EQ(sequence, 0);
    streamed.push_back(token);
    return streamed.size() < 3;
  };
  const auto out = generate(ctx, model, f.gen_prompt, streaming);
  EXPECT_EQ(out, std::vector<int32_t>(f.gen_ids.begin(), f.gen_ids.begin() + 3));
  EXPECT_EQ(streamed, out);
}

TEST(Sampler, GreedyTopKOneAndTinyTopPPickTheArgmax) {
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f};
  EXPECT_EQ(Sampler()(logits.data(), 5), 1);  // first of the equal maxima
  for (uint64_t seed = 0; seed < 20; ++seed) {
    EXPECT_EQ(Sampler({1.0f, 1, 1.0f, seed})(logits.data(), 5), 1);
    EXPECT_EQ(Sampler({1.0f, 0, 0.01f, seed})(logits.data(), 5), 1);
  }
  const std::vector<float> bad = {0.0f, std::nanf("")};
  EXPECT_THROW(Sampler()(bad.data(), 2), NumericError);
}

TEST(Sampler, FrequenciesFollowTheTemperedSoftmax) {
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f};
  const float temperature = 2.0f;
  Sampler a({temperature, 0, 1.0f, 42}), b({temperature, 0, 1.0f, 42});
  const int draws = 20000;
  std::vector<int> counts(3, 0);
  for (int i = 0; i < draws; ++i) {
    const int32_t t = a(logits.data(), 3);
    ASSERT_EQ(t, b(logits.data(), 3));  // same seed, same tokens
    ++counts[size_t(t)];
  }
  double z = 0;
  for (float l : logits) z += std::exp(l / temperature);
  for (int v = 0; v < 3; ++v) {
    const double p = std::exp(logits[size_t(v)] / temperature) / z;
    // Binomial standard deviation sqrt(p(1-p)/n) <= 0.0036 for n = 20000; 5 sigma.
    EXPECT_NEAR(double(counts[size_t(v)]) / draws, p, 0.018) << "token " << v;
  }
  // top_k = 2 never draws the least likely token; top_p = 0.5 keeps only the top one here (p = 0.51).
  Sampler k2({temperature, 2, 1.0f, 1}), p50({temperature, 0, 0.5f, 1});
  for (int i = 0; i < 2000; ++i) {
    EXPECT_NE(k2(logits.data(), 3), 0);
    EXPECT_EQ(p50(logits.data(), 3), 2);
  }
}

}  // namespace
}  // namespace bimamba::test
