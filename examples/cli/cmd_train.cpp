// bimamba train --text F [--text F2 ...] --tokenizer F --out DIR [--preset NAME --d-model D --n-layer L ...]
// Trains a full-precision Mamba-2 from scratch (init_random) on text files with cross entropy: the Trainer
// of train/trainer.hpp with a cosine schedule, AdamW, clipping, periodic validation perplexity, checkpoints
// and --resume. The run directory's files are described in cmd_train_common.hpp.
#include <bimamba/model/init.hpp>
#include <bimamba/model/presets.hpp>

#include "cmd_train_common.hpp"
#include "commands.hpp"

namespace bimamba::cli {

int run_train(int argc, char** argv) {
  Args args("train", "--text F [--text F2 ...] --tokenizer F --out DIR [options]",
            "Trains a full-precision Mamba-2 language model from scratch on text files (next-token cross entropy).");
  declare_training_options(args);
  args.option("preset", "NAME", "model shape (bimamba init --help lists them)", "mamba2-130m");
  args.option("d-model", "D", "override the preset's d_model");
  args.option("n-layer", "L", "override the preset's number of layers");
  args.option("d-state", "N", "override the preset's SSM state size");
  args.option("headdim", "P", "override the preset's head dimension");
  if (!args.parse(argc, argv)) return 0;
  const std::string out = args.str("out");
  TrainerConfig config = trainer_config(args, out);
  const auto tok = load_tokenizer(args.str("tokenizer"));
  ModelConfig cfg = model_preset(args.str("preset"), padded_vocab(*tok));
  if (args.has("d-model")) cfg.d_model = args.integer("d-model");
  if (args.has("n-layer")) cfg.n_layer = args.integer("n-layer");
  if (args.has("d-state")) cfg.d_state = args.integer("d-state");
  if (args.has("headdim")) cfg.headdim = args.integer("headdim");
  cfg.binary = false;
  cfg.validate();

  std::filesystem::create_directories(out);
  Context<Host> ctx(int(args.integer("threads")));
  log_warnings_to_stderr(ctx, "train");
  const Corpus corpus = open_corpus(args, all_values(argc, argv, "text"), *tok, out);
  LanguageModel<Host> model = init_random<Host>(cfg, uint64_t(args.integer("seed")));
  nlohmann::ordered_json run{{"command", "train"}, {"preset", args.str("preset")}, {"d_model", cfg.d_model},
                             {"n_layer", cfg.n_layer}, {"vocab_size", cfg.vocab_size}, {"steps", config.steps},
                             {"batch", args.integer("batch")}, {"seq_len", args.integer("seq-len")}, {"lr", config.lr}};
  config.run_config = run.dump();
  std::fprintf(stderr, "train: %lld parameters, %lld training tokens, %lld validation tokens\n",
               (long long)model.params().parameter_count(), (long long)corpus.split.train.size(),
               (long long)corpus.split.validation.size());
  return run_training(args, "train", ctx, model, nullptr, nullptr, std::move(config), corpus, out);
}

}  // namespace bimamba::cli
