// bimamba distill --teacher DIR --text F [--text F2 ...] --tokenizer F --out DIR [--init teacher|random]
// Trains a Bi-Mamba student (the teacher's shape, in_proj / out_proj FBI-Linear) with autoregressive
// distillation from a full-precision teacher run in the same loop: loss = distill-weight * KD + ce-weight * CE
// (KD = -(1/n) sum p_teacher log p_student). The student starts from the teacher's weights binarized by
// model/convert.hpp fp_to_bimamba (FBI init) or, with --init random, from init_random. --distill-weight 0
// trains the same student on cross entropy alone (the teacher then only initialises it). --teacher-topk FILE
// (written by `bimamba topk` with the same --batch / --seq-len / --seed / --val-fraction) replaces the teacher in
// the loop by its stored top-k logits, and the sampled batches by the file's (micro-batch j reads batch j mod S);
// --teacher still gives the shape and the FBI init. The run directory's files are described in
// cmd_train_common.hpp.
#include <bimamba/model/convert.hpp>
#include <bimamba/model/init.hpp>
#include <cstring>

#include "cmd_train_common.hpp"
#include "commands.hpp"
#include "model_io.hpp"

namespace bimamba::cli {

int run_distill(int argc, char** argv) {
  Args args("distill", "--teacher DIR --text F [--text F2 ...] --tokenizer F --out DIR [options]",
            "Trains a Bi-Mamba student by autoregressive distillation from a full-precision Mamba-2 teacher.");
  declare_training_options(args);
  args.option("teacher", "DIR", "full-precision Mamba-2 checkpoint directory (HF or mamba_ssm layout)");
  args.option("init", "teacher|random", "student initialisation: the binarized teacher or random", "teacher");
  args.option("distill-weight", "X", "weight of the distillation loss", "1");
  args.option("ce-weight", "X", "weight of the next-token cross entropy", "0");
  args.option("teacher-topk", "FILE", "distil from this teacher top-k file (bimamba topk) instead of running the teacher");
  if (!args.parse(argc, argv)) return 0;
  const std::string out = args.str("out"), init = args.str("init");
  if (init != "teacher" && init != "random") throw UsageError("--init must be teacher or random, got '" + init + "'");
  TrainerConfig config = trainer_config(args, out);
  config.loss = {args.number("ce-weight"), args.number("distill-weight")};
  if (config.loss.ce < 0 || config.loss.distill < 0 || config.loss.ce + config.loss.distill <= 0)
    throw UsageError("--ce-weight and --distill-weight must be >= 0, not both 0");

  const auto tok = load_tokenizer(args.str("tokenizer"));
  Context<Host> ctx(int(args.integer("threads")));
  log_warnings_to_stderr(ctx, "distill");
  const LanguageModel<Host> teacher = load_model<Host>(ctx, args.str("teacher"));
  if (teacher.config().binary) throw UsageError("--teacher must be a full-precision model; it holds a Bi-Mamba");
  if (teacher.vocab_size() < tok->vocab_size())
    throw UsageError("the teacher's vocabulary is smaller than the tokenizer's");
  ModelConfig cfg = teacher.config();
  std::vector<HostTensor> latent;
  if (init == "teacher") latent = fp_to_bimamba(cfg, model_tensor_source(ctx, teacher));
  else cfg.binary = true;
  LanguageModel<Host> student = init_random<Host>(cfg, uint64_t(args.integer("seed")));
  auto& store = student.params();
  for (const HostTensor& t : latent)
    std::memcpy(store.params().data() + store.entries()[size_t(store.id(t.name))].offset, t.data(), t.nbytes());

  std::optional<TeacherTopKFile> teacher_file;
  if (args.has("teacher-topk")) {
    teacher_file.emplace(args.str("teacher-topk"));
    if (teacher_file->batch_size() != args.integer("batch") || teacher_file->length() != args.integer("seq-len"))
      throw UsageError("--teacher-topk " + teacher_file->path() + " holds batches of " +
                       std::to_string(teacher_file->batch_size()) + " x " + std::to_string(teacher_file->length()) +
                       " tokens; --batch / --seq-len must match");
    if (teacher_file->vocab_size() != teacher.vocab_size())
      throw UsageError("--teacher-topk " + teacher_file->path() + " has vocabulary " +
                       std::to_string(teacher_file->vocab_size()) + ", the teacher " + std::to_string(teacher.vocab_size()));
  }
  std::filesystem::create_directories(out);
  const Corpus corpus = open_corpus(args, all_values(argc, argv, "text"), *tok, out);
  nlohmann::ordered_json run{{"command", "distill"}, {"teacher", args.str("teacher")}, {"init", init},
                             {"ce_weight", config.loss.ce}, {"distill_weight", config.loss.distill},
                             {"teacher_topk", args.has("teacher-topk") ? args.str("teacher-topk") : ""},
                             {"steps", config.steps}, {"batch", args.integer("batch")},
                             {"seq_len", args.integer("seq-len")}, {"lr", config.lr}};
  config.run_config = run.dump();
  std::fprintf(stderr, "distill: student %lld parameters, %lld training tokens, %lld validation tokens\n",
               (long long)store.parameter_count(), (long long)corpus.split.train.size(),
               (long long)corpus.split.validation.size());
  const bool online = config.loss.distill != 0 && !teacher_file;
  return run_training(args, "distill", ctx, student, online ? &teacher : nullptr, teacher_file ? &*teacher_file : nullptr,
                      std::move(config), corpus, out);
}

}  // namespace bimamba::cli
