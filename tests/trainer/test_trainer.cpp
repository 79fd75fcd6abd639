// Trainer (train/trainer.hpp): a run killed after k steps and resumed from its checkpoint equals the
// uninterrupted run bit for bit (parameters, AdamW moments, every logged loss and gradient norm, the
// sampler position), for a tiny Bi-Mamba student distilled from a tiny Mamba-2 teacher with gradient
// accumulation; and training lowers the validation loss.
#include <test_support.hpp>

#include <bimamba/model/init.hpp>
#include <bimamba/train/trainer.hpp>
#include <cstdio>
#include <random>
#include <vector>

#include <tiny_training.hpp>

#include "../train/temp_path.hpp"

namespace bimamba::test {
namespace {

std::string write_corpus(const std::string& name) {
  const std::string path = temp_path(name);
  write_cycle_corpus(path);
  return path;
}

TrainerConfig run_config(const std::string& checkpoint) {
  TrainerConfig c;
  c.steps = 8;
  c.accumulation = 2;
  c.lr = 3e-3f;
  c.min_lr = 3e-4f;
  c.warmup = 2;
  c.loss = {0.5, 0.5};
  c.eval_every = 4;
  c.eval_batches = 2;
  c.checkpoint_every = 3;
  c.checkpoint_path = checkpoint;
  return c;
}

struct RunResult {
  std::vector<float> params, m, v;
  std::vector<nlohmann::ordered_json> lines;  // without "seconds" and "path"
  SamplerState sampler;
};

// Trains to the end; when kill_after > 0, first stops there, destroys everything and resumes from the file.
RunResult train(const std::string& corpus, const std::string& checkpoint, int64_t kill_after) {
  Context<Host> ctx;
  const TokenFile file = TokenFile::open(corpus);
  const TokenSplit split = split_by_position(file.size(), 0.1);
  const SequentialWindows validation(file, split.validation, 4, 16);
  const LanguageModel<Host> teacher = init_random<Host>(tiny_training_config(false), 11);
  RunResult r;
  const auto log = [&](const nlohmann::ordered_json& j) {
    nlohmann::ordered_json k = j;
    k.erase("seconds");
    k.erase("path");  // the two runs write different files
    r.lines.push_back(k);
  };
  if (kill_after > 0) {
    LanguageModel<Host> model = init_random<Host>(tiny_training_config(true), 5);
    WindowSampler sampler(file, split.train, 4, 16, 1234);
    Trainer<Host> trainer(model, &teacher, sampler, &validation, run_config(checkpoint));
    trainer.run(ctx, log, kill_after + 1);  // one step past the checkpoint, then "killed"
    r.lines.clear();
  }
  LanguageModel<Host> model = init_random<Host>(tiny_training_config(true), kill_after > 0 ? 99 : 5);
  WindowSampler sampler(file, split.train, 4, 16, kill_after > 0 ? 4321 : 1234);
  Trainer<Host> trainer(model, &teacher, sampler, &validation, run_config(checkpoint));
  if (kill_after > 0) trainer.resume(ctx, checkpoint);
  trainer.run(ctx, log);
  r.params = to_vector(model.params().params());
  r.m = to_vector(trainer.optimizer().m());
  r.v = to_vector(trainer.optimizer().v());
  r.sampler = sampler.state();
  return r;
}

TEST(Trainer, ResumeAfterKillIsBitIdentical) {
  const std::string corpus = write_corpus("corpus.tokens");
  const RunResult full = train(corpus, temp_path("full.safetensors"), 0);
  const RunResult resumed = train(corpus, temp_path("resumed.safetensors"), 3);
  EXPECT_EQ(full.params, resumed.params);  // exact: the same floating-point operations in the same order
  EXPECT_EQ(full.m, resumed.m);
  EXPECT_EQ(full.v, resumed.v);
  EXPECT_EQ(full.sampler.rng, resumed.sampler.rng);
  EXPECT_EQ(full.sampler.batches, resumed.sampler.batches);
  // The resumed run logs steps 4..8 (and their evals / checkpoints) exactly as the full run did.
  std::vector<nlohmann::ordered_json> tail;
  for (const auto& j : full.lines)
    if (j["step"].get<int64_t>() > 3) tail.push_back(j);
  ASSERT_FALSE(tail.empty());
  EXPECT_EQ(tail, resumed.lines);
  std::remove(corpus.c_str());
}

TEST(Trainer, LowersValidationLoss) {
  const std::string corpus = write_corpus("corpus.tokens");
  Context<Host> ctx;
  const TokenFile file = TokenFile::open(corpus);
  const TokenSplit split = split_by_position(file.size(), 0.1);
  const SequentialWindows validation(file, split.validation, 4, 16);
  LanguageModel<Host> model = init_random<Host>(tiny_training_config(false), 5);
  WindowSampler sampler(file, split.train, 8, 16, 1);
  TrainerConfig c;
  c.steps = 30;
  c.lr = 1e-2f;
  c.min_lr = 1e-3f;
  c.warmup = 3;
  Trainer<Host> trainer(model, nullptr, sampler, &validation, c);
  const double before = trainer.validation_loss(ctx);
  std::vector<double> evals;
  trainer.run(ctx, [&](const nlohmann::ordered_json& j) {
    if (j["event"] == "eval") evals.push_back(j["val_loss"].get<double>());
  });
  ASSERT_EQ(evals.size(), 1u);  // eval_every = 0: once, after the last step
  // A random model scores about log(64) = 4.16 nats; the noisy cycle is mostly predictable, so 30 steps
  // must at least take a quarter of that off.
  EXPECT_LT(evals[0], before - 1.0);
  EXPECT_EQ(trainer.step(), 30);
  std::remove(corpus.c_str());
}

}  // namespace
}  // namespace bimamba::test

namespace bimamba::test {
namespace {

// Distillation from a teacher top-k file with K = V (every logit kept) equals distillation from the teacher
// model run in the loop on the same batches: the file's batches are the sampler's sequence, written by
// TeacherTopKWriter from the same teacher. The top-k loss normalises the teacher over the K = V ids in a
// different order than the dense one: 1e-5 relative on the losses and the parameters after 6 steps.
TEST(Trainer, TeacherTopKFileWithAllLogitsEqualsTheOnlineTeacher) {
  Context<Host> ctx;
  const std::string corpus = write_corpus("topk_corpus.bin"), topk = temp_path("teacher_topk.safetensors");
  const TokenFile file = TokenFile::open(corpus);
  const TokenSplit split = split_by_position(file.size(), 0.1);
  const LanguageModel<Host> teacher = init_random<Host>(tiny_training_config(false), 11);
  TrainerConfig config = run_config("");
  config.steps = 3;
  config.loss = {0.25, 0.75};
  config.eval_every = 0;
  {
    WindowSampler sampler(file, split.train, 4, 16, 77);
    TeacherTopKWriter writer(topk, kTinyVocab, kTinyVocab);
    for (int64_t j = 0; j < config.steps * config.accumulation; ++j) {
      const Batch<Host> batch = sampler.next(ctx);
      const Tensor<float, 3, Host> logits = teacher.forward(ctx, batch.inputs());  // (B, L, V)
      writer.add(ctx, batch.tokens.cview(), logits.cview());
    }
    writer.finish();
  }
  std::vector<double> losses[2];
  std::vector<float> params[2];
  for (int from_file = 0; from_file < 2; ++from_file) {
    LanguageModel<Host> model = init_random<Host>(tiny_training_config(true), 5);
    WindowSampler sampler(file, split.train, 4, 16, 77);
    const TeacherTopKFile teacher_file(topk);
    Trainer<Host> trainer(model, from_file ? nullptr : &teacher, sampler, nullptr, config);
    if (from_file) trainer.use_teacher_file(teacher_file);
    trainer.run(ctx, [&](const nlohmann::ordered_json& j) {
      if (j["event"] == "step") losses[from_file].push_back(j["loss"].get<double>());
    });
    params[from_file] = to_vector(model.params().params());
  }
  ASSERT_EQ(losses[0].size(), 3u);
  ASSERT_EQ(losses[1].size(), 3u);
  for (size_t s = 0; s < 3; ++s) EXPECT_NEAR(losses[1][s], losses[0][s], 1e-5 * losses[0][s]) << "step " << s + 1;
  EXPECT_LT(relative_l2(params[1], params[0]), 1e-5);
  std::remove(corpus.c_str());
  std::remove(topk.c_str());
}

// Resume with a teacher file: the micro-batch index follows the step, so a run stopped after step 4 and
// resumed from its step-3 checkpoint ends with the parameters of the uninterrupted run, bit for bit.
TEST(Trainer, ResumeWithATeacherFileIsBitIdentical) {
  Context<Host> ctx;
  const std::string corpus = write_corpus("topk_resume_corpus.bin"), topk = temp_path("topk_resume.safetensors");
  const std::string checkpoint = temp_path("topk_resume.ckpt.safetensors");
  const TokenFile file = TokenFile::open(corpus);
  const TokenSplit split = split_by_position(file.size(), 0.1);
  {
    const LanguageModel<Host> teacher = init_random<Host>(tiny_training_config(false), 11);
    WindowSampler sampler(file, split.train, 4, 16, 5);
    TeacherTopKWriter writer(topk, kTinyVocab, 8);
    for (int j = 0; j < 5; ++j) {  // fewer batches than micro-batches: the run wraps around the file
      const Batch<Host> batch = sampler.next(ctx);
      writer.add(ctx, batch.tokens.cview(), teacher.forward(ctx, batch.inputs()).cview());
    }
    writer.finish();
  }
  const TeacherTopKFile teacher_file(topk);
  TrainerConfig config = run_config(checkpoint);
  config.eval_every = 0;
  auto run = [&](int64_t kill_after) {
    if (kill_after > 0) {
      LanguageModel<Host> model = init_random<Host>(tiny_training_config(true), 5);
      WindowSampler sampler(file, split.train, 4, 16, 1);
      Trainer<Host> trainer(model, nullptr, sampler, nullptr, config);
      trainer.use_teacher_file(teacher_file);
      trainer.run(ctx, {}, kill_after + 1);  // one step past the checkpoint, then "killed"
    }
    LanguageModel<Host> model = init_random<Host>(tiny_training_config(true), kill_after > 0 ? 99 : 5);
    WindowSampler sampler(file, split.train, 4, 16, 1);
    Trainer<Host> trainer(model, nullptr, sampler, nullptr, config);
    trainer.use_teacher_file(teacher_file);
    if (kill_after > 0) trainer.resume(ctx, checkpoint);
    trainer.run(ctx);
    return to_vector(model.params().params());
  };
  const std::vector<float> uninterrupted = run(0), resumed = run(3);
  EXPECT_TRUE(uninterrupted == resumed);
  std::remove(corpus.c_str());
  std::remove(topk.c_str());
  std::remove(checkpoint.c_str());
}

// Without a teacher model or file, a distillation loss is refused when the run starts, naming both.
TEST(Trainer, DistillationWithoutATeacherIsRefused) {
  Context<Host> ctx;
  const std::string corpus = write_corpus("no_teacher_corpus.bin");
  const TokenFile file = TokenFile::open(corpus);
  LanguageModel<Host> model = init_random<Host>(tiny_training_config(true), 5);
  WindowSampler sampler(file, split_by_position(file.size(), 0.0).train, 4, 16, 1);
  Trainer<Host> trainer(model, nullptr, sampler, nullptr, run_config(""));
  try {
    trainer.run(ctx);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("a teacher model or a teacher top-k file"), std::string::npos) << e.what();
  }
  std::remove(corpus.c_str());
}

}  // namespace
}  // namespace bimamba::test
