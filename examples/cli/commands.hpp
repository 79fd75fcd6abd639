// The subcommands of the bimamba CLI (docs/cli.md), one source file each. Each takes argv of its own
// (argv[0] is the subcommand name), returns the exit code, and throws UsageError / bimamba::Error on failure
// (main() turns those into one line on stderr and a non-zero exit code).
#pragma once

namespace bimamba::cli {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);
};

int run_logits(int argc, char** argv);
int run_generate(int argc, char** argv);
int run_perplexity(int argc, char** argv);
int run_tokenize(int argc, char** argv);
int run_convert(int argc, char** argv);
int run_info(int argc, char** argv);
int run_init(int argc, char** argv);
int run_bench(int argc, char** argv);
int run_train(int argc, char** argv);
int run_distill(int argc, char** argv);
int run_grad(int argc, char** argv);
int run_topk(int argc, char** argv);

inline constexpr Command kCommands[] = {
    {"logits", "logits of input_ids (prefill or token by token) into a safetensors file", run_logits},
    {"generate", "continue a prompt (greedy or sampled)", run_generate},
    {"perplexity", "perplexity of a text file over non-overlapping windows", run_perplexity},
    {"tokenize", "token ids of text (one string or a JSON-lines file)", run_tokenize},
    {"convert", "full-precision or latent checkpoint -> packed Bi-Mamba file", run_convert},
    {"info", "parameters and bytes by kind of a checkpoint", run_info},
    {"init", "a randomly initialised model of a preset shape", run_init},
    {"bench", "decode / prefill speed of a model, packed GEMV speed (JSON)", run_bench},
    {"train", "train a full-precision Mamba-2 from scratch on text files", run_train},
    {"distill", "train a Bi-Mamba student by distillation from a full-precision teacher", run_distill},
    {"grad", "loss and parameter gradients of one batch (distill or ce)", run_grad},
    {"topk", "a teacher's top-k logits on distill's batches, for distill --teacher-topk", run_topk},
};

}  // namespace bimamba::cli
