// Training checkpoints (train/checkpoint.hpp): a toy training loop (a bigram language model on a token
// file: sampler -> logits -> cross entropy -> backward -> clip -> AdamW with a cosine schedule) run
// uninterrupted, and run again with a checkpoint at step k, everything destroyed, and a resume from the
// file: parameters, optimizer state, losses and the data position must agree bit for bit. Plus the
// validation of a checkpoint against the model on load.
#include <gtest/gtest.h>

#include <bimamba/train/checkpoint.hpp>
#include <bimamba/train/losses.hpp>
#include <bimamba/train/schedule.hpp>
#include <filesystem>
#include <memory>

#include "temp_path.hpp"
#include "test_support.hpp"

namespace bimamba {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kV = 29, kB = 3, kL = 12;
constexpr int kSteps = 12, kResumeAt = 5;

// A corpus with structure to learn: a noisy walk through the vocabulary.
std::string make_corpus() {
  const std::string path = test::temp_path("corpus.tokens");
  std::mt19937_64 rng(5);
  std::vector<int32_t> tokens(3000);
  int32_t t = 0;
  for (auto& x : tokens) x = t = int32_t((t + 1 + int32_t(rng() % 3)) % kV);
  write_token_file(path, tokens, kV);
  return path;
}

// logits[b, t, :] = W[input(b, t), :] + bias;  W (V, V) decays, bias (V) does not.
struct Bigram {
  ParamStore<Host> store;
  int w = 0, bias = 0;
  Bigram() {
    w = store.declare("bigram.weight", {kV, kV});
    bias = store.declare("bigram.bias", {kV}, ParamGroup::NoDecay);
    store.allocate();
    const auto init = test::random_floats(size_t(kV * kV), 11, -0.1f, 0.1f);
    std::copy(init.begin(), init.end(), store.param<2>(w).data());
  }
};

// One training run with everything a real loop has; owns its state so that "killing" it is destroying it.
struct ToyRun {
  Context<Host> ctx{2};
  Bigram model;
  AdamW<Host> opt{model.store, {.lr = 0.0f, .betas = {0.9f, 0.95f}, .weight_decay = 0.1f}};
  WindowSampler sampler;
  CosineSchedule schedule{5e-2f, 5e-3f, 3, kSteps};
  int64_t step = 0;
  std::vector<double> losses;

  ToyRun(const std::string& corpus, uint64_t seed) : sampler(TokenFile::open(corpus), {0, 2500}, kB, kL, seed) {}

  void train_step() {
    const Batch<Host> batch = sampler.next(ctx);
    Tensor<float, 3, Host> logits({kB, kL, kV}), dlogits({kB, kL, kV});
    auto W = model.store.param<2>(model.w);
    auto bias = model.store.param<1>(model.bias);
    for (int64_t b = 0; b < kB; ++b)
      for (int64_t t = 0; t < kL; ++t)
        for (int64_t v = 0; v < kV; ++v) logits(b, t, v) = W(batch.inputs()(b, t), v) + bias(v);
    losses.push_back(cross_entropy_loss(ctx, logits, batch.targets(), dlogits));
    model.store.zero_grad();
    auto dW = model.store.grad<2>(model.w);
    auto dbias = model.store.grad<1>(model.bias);
    for (int64_t b = 0; b < kB; ++b)
      for (int64_t t = 0; t < kL; ++t)
        for (int64_t v = 0; v < kV; ++v) {
          dW(batch.inputs()(b, t), v) += dlogits(b, t, v);
          dbias(v) += dlogits(b, t, v);
        }
    clip_grad_norm(ctx, model.store, 0.5);
    ASSERT_TRUE(opt.step(ctx, schedule(step)));
    ++step;
  }

  TrainingState state() const {
    TrainingState s;
    s.step = step;
    s.sampler = sampler.state();
    s.run_config = R"({"model": "bigram", "vocab": 29, "steps": 12})";
    s.extra["note"] = "toy";
    return s;
  }
};

std::vector<float> flat(TensorView<const float, 1, Host> v) {
  return std::vector<float>(v.data(), v.data() + v.size(0));
}

TEST(Checkpoint, ResumeAfterKillIsBitIdentical) {
  const std::string corpus = make_corpus();
  const std::string checkpoint = test::temp_path("run.safetensors");

  ToyRun straight(corpus, 77);
  for (int i = 0; i < kSteps; ++i) straight.train_step();
  ASSERT_LT(straight.losses.back(), straight.losses.front());  // the toy problem does learn

  std::vector<double> losses;
  {
    ToyRun first(corpus, 77);
    for (int i = 0; i < kResumeAt; ++i) first.train_step();
    save_training_checkpoint(checkpoint, first.model.store, first.opt, first.state());
    losses = first.losses;
    first.train_step();  // work after the checkpoint that the kill loses
  }                      // killed: every object of the first run is gone

  ToyRun resumed(corpus, /*seed=*/1);  // a different seed: only the checkpoint can make it match
  const TrainingState state = load_training_checkpoint(resumed.ctx, checkpoint, resumed.model.store, resumed.opt);
  resumed.sampler.restore(state.sampler);
  resumed.step = state.step;
  EXPECT_EQ(state.step, kResumeAt);
  EXPECT_EQ(state.sampler.batches, kResumeAt);
  EXPECT_EQ(state.run_config, R"({"model": "bigram", "vocab": 29, "steps": 12})");
  EXPECT_EQ(state.extra.at("note"), "toy");
  EXPECT_EQ(resumed.opt.step_count(), kResumeAt);
  for (int i = kResumeAt; i < kSteps; ++i) resumed.train_step();
  losses.insert(losses.end(), resumed.losses.begin(), resumed.losses.end());

  EXPECT_EQ(flat(resumed.model.store.params()), flat(straight.model.store.params()));
  EXPECT_EQ(flat(resumed.opt.m()), flat(straight.opt.m()));
  EXPECT_EQ(flat(resumed.opt.v()), flat(straight.opt.v()));
  EXPECT_EQ(losses, straight.losses);
  EXPECT_EQ(resumed.opt.step_count(), straight.opt.step_count());
  EXPECT_EQ(resumed.sampler.state().rng, straight.sampler.state().rng);
  fs::remove(corpus);
  fs::remove(checkpoint);
}

// A checkpoint of one Bigram, for the validation tests.
std::string saved_bigram() {
  const std::string path = test::temp_path("saved.safetensors");
  Bigram model;
  AdamW<Host> opt(model.store, {});
  TrainingState state;
  state.step = 3;
  state.sampler.rng = "rng";
  state.sampler.batches = 2;
  save_training_checkpoint(path, model.store, opt, state);
  return path;
}

void expect_load_error(const std::string& path, ParamStore<Host>& store, const std::string& needle) {
  Context<Host> ctx;
  AdamW<Host> opt(store, {});
  try {
    load_training_checkpoint(ctx, path, store, opt);
    ADD_FAILURE() << "no exception for " << needle;
  } catch (const FormatError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind(path + ": ", 0), 0u) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
  }
}

TEST(Checkpoint, LoadRejectsAnotherModel) {
  const std::string path = saved_bigram();
  {
    ParamStore<Host> wrong_shape;
    wrong_shape.declare("bigram.weight", {kV, kV + 1});
    wrong_shape.declare("bigram.bias", {kV}, ParamGroup::NoDecay);
    wrong_shape.allocate();
    expect_load_error(path, wrong_shape, "tensor 'bigram.weight' has shape [29, 29], the model has [29, 30]");
  }
  {
    ParamStore<Host> more;
    more.declare("bigram.weight", {kV, kV});
    more.declare("bigram.bias", {kV}, ParamGroup::NoDecay);
    more.declare("bigram.gate", {kV});
    more.allocate();
    expect_load_error(path, more, "no tensor 'bigram.gate'");
  }
  {
    ParamStore<Host> fewer;
    fewer.declare("bigram.weight", {kV, kV});
    fewer.allocate();
    expect_load_error(path, fewer, "tensor 'bigram.bias' belongs to no parameter");
  }
  fs::remove(path);
}

TEST(Checkpoint, LoadRejectsOtherFilesAndWarnsOnOtherSettings) {
  const std::string plain = test::temp_path("plain.safetensors");
  save_safetensors(plain, {HostTensor::from_values<float>("bigram.weight", {1}, {1.0f})});
  Bigram model;
  expect_load_error(plain, model.store, "not a bimamba training checkpoint");
  fs::remove(plain);

  const std::string path = saved_bigram();
  Context<Host> ctx;
  std::vector<std::string> warnings;
  ctx.set_logger([&](LogLevel, std::string_view m) { warnings.emplace_back(m); });
  AdamW<Host> opt(model.store, {.weight_decay = 0.5f});
  const TrainingState state = load_training_checkpoint(ctx, path, model.store, opt);
  EXPECT_EQ(state.step, 3);
  EXPECT_EQ(state.sampler.batches, 2);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("AdamW settings differ"), std::string::npos) << warnings[0];
  TrainingState bad;
  bad.run_config = "{not json";
  EXPECT_THROW(save_training_checkpoint(path, model.store, opt, bad), InvalidArgument);
  fs::remove(path);
}

}  // namespace
}  // namespace bimamba
