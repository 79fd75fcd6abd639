// What `bimamba train` and `bimamba distill` share: the training options, the corpus, the run directory,
// the Trainer wiring, progress and log lines, and the final model.
//
// Run directory DIR (created if needed):
//   DIR/tokens.bin               the --text files tokenized once (io/token_file.hpp); reused by --resume
//   DIR/train_state.safetensors  the training checkpoint (train/checkpoint.hpp), every --checkpoint-every
//                                steps and at the end; --resume continues from it bit for bit
//   DIR/log.jsonl                every log line of the Trainer (train/trainer.hpp), appended
//   DIR/config.json, DIR/model.safetensors   the trained model (HF layout), written at the end
// stdout: with --json the log lines, one JSON object each, then a summary object; stderr: a progress bar
// (terminal or --progress) and one line per validation.
#pragma once

#include <bimamba/io/tokenizer_loader.hpp>
#include <bimamba/train/tokenize_corpus.hpp>
#include <bimamba/train/trainer.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "args.hpp"
#include "device.hpp"
#include "hf_writer.hpp"
#include "progress.hpp"

namespace bimamba::cli {

// Every value of a repeatable option (--text F --text F2), in order.
inline std::vector<std::string> all_values(int argc, char** argv, const std::string& name) {
  std::vector<std::string> values;
  const std::string flag = "--" + name, prefix = flag + "=";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == flag && i + 1 < argc) values.push_back(argv[++i]);
    else if (a.rfind(prefix, 0) == 0) values.push_back(a.substr(prefix.size()));
  }
  return values;
}

// The options that fix which windows a run trains on: train, distill and topk declare them here, so that topk
// draws the batches a distill run with the same values would (training_sampler).
inline void declare_window_options(Args& args) {
  args.option("text", "FILE", "UTF-8 training text, one document per file (repeat for more files)");
  args.option("tokenizer", "F", "tokenizer.json or SentencePiece .model");
  args.option("batch", "B", "windows per micro-batch", "8");
  args.option("seq-len", "L", "tokens per window", "128");
  args.option("val-fraction", "F", "the last fraction of the tokens is the validation set", "0.05");
  args.option("seed", "S", "seed of the window sampler (and of train / distill's initialisation)", "0");
}

inline void declare_training_options(Args& args) {
  declare_window_options(args);
  args.option("out", "DIR", "run directory (tokens, checkpoint, log, final model)");
  args.option("steps", "N", "optimizer steps", "200");
  args.option("accumulation", "N", "micro-batches per step", "1");
  args.option("lr", "X", "peak learning rate", "1e-3");
  args.option("min-lr", "X", "final learning rate (cosine floor; default lr / 10)");
  args.option("warmup", "N", "linear warmup steps (default steps / 20)");
  args.option("weight-decay", "X", "AdamW weight decay", "0.1");
  args.option("clip", "X", "global gradient-norm clip", "1.0");
  args.option("eval-every", "N", "validation every N steps (0: at the end only)", "50");
  args.option("eval-batches", "N", "validation batches per evaluation", "8");
  args.option("checkpoint-every", "N", "training checkpoint every N steps (0: at the end only)", "50");
  args.option("threads", "N", "host threads (0: all)", "0");
  add_device_option(args, "where to train");
  args.option("precision", "fp32|tf32|bf16",
              "GEMM precision with --device cuda (bf16: bf16 compute copies, fp32 master weights and state)", "fp32");
  args.flag("recompute", "recompute each block's activations in the backward (less memory, same gradients)");
  args.flag("resume", "continue from DIR/train_state.safetensors");
  args.flag("json", "print the log lines and a summary as JSON on stdout");
  args.flag("progress", "show a progress bar on stderr even when it is not a terminal");
}

struct Corpus;

// The same run on the first CUDA GPU (--device cuda): the student (and teacher) built on the host are copied to
// the device, trained there, and the final parameters copied back (cuda_training.cu).
#ifdef BIMAMBA_CLI_WITH_CUDA
int run_training_cuda(const Args& args, const std::string& command, const LanguageModel<Host>& model,
                      const LanguageModel<Host>* teacher, const TeacherTopKFile* teacher_file, TrainerConfig config,
                      const Corpus& corpus, const std::string& out);
#endif

// --precision, a UsageError when it is not a precision.
inline GemmPrecision gemm_precision(const Args& args) {
  try {
    return gemm_precision_from_string(args.str("precision"));
  } catch (const Error& e) {
    throw UsageError(std::string("--precision: ") + e.what());
  }
}

inline TrainerConfig trainer_config(const Args& args, const std::string& out) {
  TrainerConfig c;
  c.steps = args.integer("steps");
  c.accumulation = args.integer("accumulation");
  c.lr = float(args.number("lr"));
  c.min_lr = args.has("min-lr") ? float(args.number("min-lr")) : c.lr / 10;
  c.warmup = args.has("warmup") ? args.integer("warmup") : c.steps / 20;
  c.adamw.betas = {0.9f, 0.95f};
  c.adamw.weight_decay = float(args.number("weight-decay"));
  c.max_grad_norm = args.number("clip");
  c.eval_every = args.integer("eval-every");
  c.eval_batches = args.integer("eval-batches");
  c.checkpoint_every = args.integer("checkpoint-every");
  c.checkpoint_path = (std::filesystem::path(out) / "train_state.safetensors").string();
  c.recompute = args.has("recompute") ? Recompute::PerBlock : Recompute::None;
  const bool cuda = wants_cuda(args);  // refuses a bad --device, or cuda without a usable GPU, before anything is written
  if (gemm_precision(args) != GemmPrecision::Fp32 && !cuda)
    throw UsageError("--precision " + args.str("precision") + " needs --device cuda (the host computes in fp32)");
  if (c.steps < 1 || c.accumulation < 1 || c.warmup < 0 || c.warmup > c.steps || c.lr <= 0 || c.min_lr < 0 ||
      c.min_lr > c.lr || c.max_grad_norm <= 0 || c.eval_every < 0 || c.eval_batches < 1 || c.checkpoint_every < 0)
    throw UsageError("need steps, accumulation, eval-batches >= 1, 0 <= warmup <= steps, 0 <= min-lr <= lr, clip > 0");
  return c;
}

// Vocabulary rows for a tokenizer: its size rounded up to a multiple of 16 (Mamba-2's padding).
inline int64_t padded_vocab(const Tokenizer& tok) { return (tok.vocab_size() + 15) / 16 * 16; }

// The corpus of the run: DIR/tokens.bin, made from the --text files unless resuming with one present.
struct Corpus {
  TokenFile file;
  TokenSplit split;
};

// The corpus in the token file `path`: made from the --text files unless `reuse` and the file exists; split by
// --val-fraction.
inline Corpus open_corpus_file(const Args& args, const std::vector<std::string>& texts, const Tokenizer& tok,
                               const std::string& path, bool reuse) {
  if (!(reuse && std::filesystem::exists(path))) {
    if (texts.empty()) throw UsageError("--text is required");
    tokenize_corpus(tok, texts, path);
  }
  Corpus c{TokenFile::open(path), {}};
  c.split = split_by_position(c.file.size(), args.number("val-fraction"));
  return c;
}

// A run's corpus: DIR/tokens.bin, reused by --resume.
inline Corpus open_corpus(const Args& args, const std::vector<std::string>& texts, const Tokenizer& tok,
                          const std::string& out) {
  return open_corpus_file(args, texts, tok, (std::filesystem::path(out) / "tokens.bin").string(), args.has("resume"));
}

// The sampler of the training windows: --batch windows of --seq-len + 1 tokens from the training split, --seed.
inline WindowSampler training_sampler(const Args& args, const Corpus& corpus) {
  return WindowSampler(corpus.file, corpus.split.train, args.integer("batch"), args.integer("seq-len"),
                       uint64_t(args.integer("seed")));
}

// Runs the Trainer on Backend with progress and log lines; writes the final model; prints the summary. The
// teacher is a model run in the loop, or a teacher top-k file (distill --teacher-topk), or neither.
template <class Backend>
int train_on(const Args& args, const std::string& command, Context<Backend>& ctx, LanguageModel<Backend>& model,
             const LanguageModel<Backend>* teacher, const TeacherTopKFile* teacher_file, TrainerConfig config,
             const Corpus& corpus, const std::string& out) {
  const int64_t B = args.integer("batch"), L = args.integer("seq-len");
  WindowSampler sampler = training_sampler(args, corpus);
  std::optional<SequentialWindows> validation;
  if (corpus.split.validation.size() > L) validation.emplace(corpus.file, corpus.split.validation, B, L);
  const std::string checkpoint = config.checkpoint_path;
  const int64_t steps = config.steps;
  Trainer<Backend> trainer(model, teacher, sampler, validation ? &*validation : nullptr, std::move(config));
  if (teacher_file) trainer.use_teacher_file(*teacher_file);
  if (args.has("resume")) {
    if (!std::filesystem::exists(checkpoint)) throw UsageError("--resume: " + checkpoint + " does not exist");
    trainer.resume(ctx, checkpoint);
    std::fprintf(stderr, "%s: resumed at step %lld\n", command.c_str(), (long long)trainer.step());
  }
  std::ofstream log_file((std::filesystem::path(out) / "log.jsonl").string(), std::ios::app);
  const bool json = args.has("json");
  nlohmann::ordered_json last_eval;
  {
    Progress progress(command, args.has("progress"));
    trainer.run(ctx, [&](const nlohmann::ordered_json& j) {
      log_file << j.dump() << "\n" << std::flush;
      if (json) std::cout << j.dump() << std::endl;
      if (j["event"] == "step") progress.update(j["step"].get<int64_t>(), steps);
      if (j["event"] == "eval") {
        last_eval = j;
        std::fprintf(stderr, "\n%s: step %lld  val_loss %.4f  val_ppl %.2f\n", command.c_str(),
                     (long long)j["step"].get<int64_t>(), j["val_loss"].get<double>(), j["val_ppl"].get<double>());
      }
    });
  }
  const auto& store = model.params();
  std::vector<float> params(size_t(store.flat_size()));
  MemoryOps<Backend>::copy_to_host(params.data(), store.params().data(), params.size() * sizeof(float));
  std::vector<HostTensor> tensors;
  for (const auto& e : store.entries()) {
    const float* p = params.data() + e.offset;
    tensors.push_back(HostTensor::from_values<float>(e.name, e.shape, std::vector<float>(p, p + e.numel)));
  }
  save_hf_directory(out, model.config(), tensors);
  nlohmann::ordered_json summary{{"event", "done"}, {"out", out}, {"steps", trainer.step()},
                                 {"parameters", store.parameter_count()}};
  if (!last_eval.is_null()) summary["val_ppl"] = last_eval["val_ppl"];
  if (json) std::cout << summary.dump() << std::endl;
  else std::cout << command << ": " << trainer.step() << " steps, model written to " << out << "\n";
  return 0;
}

// Trains on --device (host or cuda; trainer_config has refused cuda where no GPU can be used).
inline int run_training(const Args& args, const std::string& command, Context<Host>& ctx, LanguageModel<Host>& model,
                        const LanguageModel<Host>* teacher, const TeacherTopKFile* teacher_file, TrainerConfig config,
                        const Corpus& corpus, const std::string& out) {
#ifdef BIMAMBA_CLI_WITH_CUDA
  if (args.str("device") == "cuda")
    return run_training_cuda(args, command, model, teacher, teacher_file, std::move(config), corpus, out);
#endif
  return train_on(args, command, ctx, model, teacher, teacher_file, std::move(config), corpus, out);
}

}  // namespace bimamba::cli
