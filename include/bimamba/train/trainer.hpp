// Trainer<Backend>: the training loop over the toolkit's pieces, for a Mamba-2 / Bi-Mamba LanguageModel.
//
// One optimizer step (step index s, 0-based):
//   for i in 0 .. accumulation-1:                                   micro-batches (train/grad_utils.hpp)
//     batch = sampler.next()                                         tokens (B, L + 1)
//     pass = training_forward(model, batch.inputs())                 logits (B, L, V)
//     teacher logits = teacher.forward(batch.inputs())               only when loss.distill != 0
// With use_teacher_file(file) (train/teacher_topk.hpp), micro-batch j = s accumulation + i of the run is the
// file's batch j mod file.steps(): its tokens replace the sampler's (which is not drawn) and its top-k logits
// the teacher model's, so a resumed run reads the file where the uninterrupted one would.
//     loss = w_ce CE(targets) + w_distill KD(teacher), dlogits scaled by 1/accumulation
//     training_backward(pass, Overwrite for i = 0, else Accumulate)
//   grad_norm = AdamW.clip_and_step(schedule(s), max_grad_norm)  (clip_grad_norm, then the update)
// The schedule is CosineSchedule(lr, min_lr, warmup, steps). Every eval_every steps and after the last,
// the validation loss is the mean next-token cross entropy over the first eval_batches batches of
// SequentialWindows on the validation range (rows weighted equally), val_ppl = exp(val_loss).
// Every checkpoint_every steps and after the last, a training checkpoint (train/checkpoint.hpp, atomic)
// goes to checkpoint_path with the sampler's state; resume(path) restores parameters, AdamW, step and
// sampler, so a run resumed from step k produces the parameters, losses and checkpoints of the
// uninterrupted run bit for bit (the same config, thread-count independent reductions).
//
// Reporting: no printing; the log callback gets one JSON object per event:
//   {"event":"step","step":s+1,"loss":..,"ce":..,"distill":..,"lr":..,"grad_norm":..,"tokens":..,"seconds":..}
//   {"event":"eval","step":s+1,"val_loss":..,"val_ppl":..}
//   {"event":"checkpoint","step":s+1,"path":..}
// ("seconds" is wall time since run() started; everything else is deterministic.) A non-finite loss throws
// NumericError naming the step; non-finite gradients follow the AdamW config's NonFinitePolicy.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "../model/language_model.hpp"
#include "adamw.hpp"
#include "checkpoint.hpp"
#include "data.hpp"
#include "grad_utils.hpp"
#include "losses.hpp"
#include "model_grad.hpp"
#include "schedule.hpp"
#include "teacher_topk.hpp"

namespace bimamba {

struct TrainerConfig {
  int64_t steps = 100;             // optimizer steps of the whole run
  int64_t accumulation = 1;        // micro-batches per step
  float lr = 1e-3f, min_lr = 1e-4f;
  int64_t warmup = 10;
  AdamWConfig adamw{};             // its lr is unused (the schedule gives it)
  double max_grad_norm = 1.0;
  LossWeights loss{1.0, 0.0};      // default: cross entropy only
  int64_t eval_every = 0;          // 0: only after the last step (when a validation set is given)
  int64_t eval_batches = 8;        // validation batches per evaluation (fewer if the range is short)
  int64_t checkpoint_every = 0;    // 0: only after the last step (when checkpoint_path is set)
  std::string checkpoint_path;     // empty: no checkpoints
  std::string run_config = "{}";   // JSON saved in every checkpoint
  Recompute recompute = Recompute::None;  // PerBlock: activation checkpointing (train/model_grad.hpp), same gradients
};

template <class Backend>
class Trainer {
 public:
  using LogFunction = std::function<void(const nlohmann::ordered_json&)>;

  // model and teacher (may be null when loss.distill == 0) and the data outlive the Trainer.
  Trainer(LanguageModel<Backend>& model, const LanguageModel<Backend>* teacher, WindowSampler& sampler,
          const SequentialWindows* validation, TrainerConfig config)
      : model_(&model), teacher_(teacher), sampler_(&sampler), validation_(validation), config_(std::move(config)),
        opt_(model.params(), config_.adamw),
        schedule_(config_.lr, config_.min_lr, config_.warmup, config_.steps) {
    BIMAMBA_CHECK(config_.steps >= 1 && config_.accumulation >= 1, "Trainer: need steps >= 1 and accumulation >= 1");
    if (teacher)
      BIMAMBA_CHECK(teacher->vocab_size() == model.vocab_size(), "Trainer: teacher vocabulary ", teacher->vocab_size(),
                    " != student vocabulary ", model.vocab_size());
  }

  int64_t step() const { return step_; }
  const AdamW<Backend>& optimizer() const { return opt_; }

  // Distils from a teacher top-k file (outliving the Trainer) instead of a teacher model (see the top comment).
  void use_teacher_file(const TeacherTopKFile& file) {
    BIMAMBA_CHECK(file.vocab_size() == model_->vocab_size(), "Trainer: ", file.path(), " has vocabulary ",
                  file.vocab_size(), ", the student ", model_->vocab_size());
    teacher_file_ = &file;
  }

  // Continues from a training checkpoint of the same model and data.
  void resume(Context<Backend>& ctx, const std::string& path) {
    const TrainingState state = load_training_checkpoint(ctx, path, model_->params(), opt_);
    BIMAMBA_CHECK(state.step <= config_.steps, "Trainer: ", path, " is at step ", state.step, ", past the run's ",
                  config_.steps, " steps");
    sampler_->restore(state.sampler);
    step_ = state.step;
  }

  // Runs steps until `until` (default: the config's steps) are done.
  void run(Context<Backend>& ctx, const LogFunction& log = {}, std::optional<int64_t> until = std::nullopt) {
    const int64_t last = std::min(until.value_or(config_.steps), config_.steps);
    const auto start = std::chrono::steady_clock::now();
    while (step_ < last) {
      nlohmann::ordered_json line = train_step(ctx);
      line["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (log) log(line);
      const bool final = step_ == config_.steps;
      if (validation_ && (final || (config_.eval_every > 0 && step_ % config_.eval_every == 0))) {
        const double val = validation_loss(ctx);
        if (log) log({{"event", "eval"}, {"step", step_}, {"val_loss", val}, {"val_ppl", std::exp(val)}});
      }
      if (!config_.checkpoint_path.empty() &&
          (final || (config_.checkpoint_every > 0 && step_ % config_.checkpoint_every == 0))) {
        save_checkpoint();
        if (log) log({{"event", "checkpoint"}, {"step", step_}, {"path", config_.checkpoint_path}});
      }
    }
  }

  // Mean next-token cross entropy over the first eval_batches validation batches.
  double validation_loss(Context<Backend>& ctx) {
    BIMAMBA_CHECK(validation_ != nullptr, "Trainer: no validation set");
    const int64_t n = std::min(config_.eval_batches, validation_->batches());
    double sum = 0;
    int64_t rows = 0;
    for (int64_t i = 0; i < n; ++i) {
      const Batch<Backend> batch = validation_->batch(ctx, i);
      const Tensor<float, 3, Backend> logits = model_->forward(ctx, batch.inputs());
      sum += cross_entropy_loss(ctx, logits.cview(), batch.targets(), {}) * double(batch.batch_size());
      rows += batch.batch_size();
    }
    return sum / double(rows);
  }

  void save_checkpoint() const {
    TrainingState state;
    state.step = step_;
    state.sampler = sampler_->state();
    state.run_config = config_.run_config;
    save_training_checkpoint(config_.checkpoint_path, model_->params(), opt_, state);
  }

 private:
  nlohmann::ordered_json train_step(Context<Backend>& ctx) {
    MixedLoss total;
    int64_t tokens = 0;
    BIMAMBA_CHECK(config_.loss.distill == 0 || teacher_ || teacher_file_,
                  "Trainer: a distillation loss needs a teacher model or a teacher top-k file");
    for (int i = 0; i < int(config_.accumulation); ++i) {
      const MicroBatch mb = micro_batch(i, int(config_.accumulation));
      std::optional<TeacherTopKStep<Backend>> from_file;
      std::optional<Batch<Backend>> sampled;
      if (teacher_file_)
        from_file.emplace(teacher_file_->step(ctx, (step_ * config_.accumulation + i) % teacher_file_->steps()));
      else
        sampled.emplace(sampler_->next(ctx));
      const Batch<Backend>& batch = from_file ? from_file->batch : *sampled;
      TrainingPass<Backend> pass = training_forward(ctx, *model_, batch.inputs(), config_.recompute);
      const LossOptions opts{mb.loss_scale, GradientMode::Overwrite};
      MixedLoss part;
      if (from_file) {
        part = mixed_loss(ctx, pass.logits(), batch.targets(), from_file->teacher(), pass.dlogits(), config_.loss, opts);
      } else if (config_.loss.distill != 0) {
        const Tensor<float, 3, Backend> teacher = teacher_->forward(ctx, batch.inputs());  // (B, L, V)
        part = mixed_loss(ctx, pass.logits(), batch.targets(), teacher.cview(), pass.dlogits(), config_.loss, opts);
      } else {
        part = mixed_loss(ctx, pass.logits(), batch.targets(), TensorView<const float, 3, Backend>{}, pass.dlogits(),
                          config_.loss, opts);
      }
      if (!std::isfinite(part.total))
        BIMAMBA_THROW(NumericError, "Trainer step ", step_ + 1, ": the loss is ", part.total);
      training_backward(ctx, *model_, pass, mb.backward_mode);
      total.total += part.total / double(config_.accumulation);
      total.ce += part.ce / double(config_.accumulation);
      total.distill += part.distill / double(config_.accumulation);
      tokens += batch.batch_size() * batch.length();
    }
    const float lr = schedule_(step_);
    const double norm = opt_.clip_and_step(ctx, lr, config_.max_grad_norm).grad_norm;
    ++step_;
    return {{"event", "step"}, {"step", step_},       {"loss", total.total}, {"ce", total.ce},
            {"distill", total.distill}, {"lr", lr}, {"grad_norm", norm},   {"tokens", tokens}};
  }

  LanguageModel<Backend>* model_;
  const LanguageModel<Backend>* teacher_;
  const TeacherTopKFile* teacher_file_ = nullptr;
  WindowSampler* sampler_;
  const SequentialWindows* validation_;
  TrainerConfig config_;
  AdamW<Backend> opt_;
  CosineSchedule schedule_;
  int64_t step_ = 0;
};

}  // namespace bimamba
