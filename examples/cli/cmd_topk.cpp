// bimamba topk --teacher DIR --text F [--text F2 ...] --tokenizer F --out FILE --batches S --k K
//              [--batch B] [--seq-len L] [--seed S] [--val-fraction F] [--threads N] [--json]
// Writes a teacher top-k file (train/teacher_topk.hpp) for `bimamba distill --teacher-topk FILE`: the texts are
// tokenized as `distill` does (each file a document followed by EOS), split the same way (the last --val-fraction
// held out), and S batches of B windows of L + 1 tokens are drawn by the same seeded WindowSampler, so a distill run
// with the same --batch / --seq-len / --seed / --val-fraction / --accumulation trains on the same batches. For each
// batch the teacher (on the host) gives its logits; the K largest per position and their ids are kept. The file is
// written atomically; its size is S B (L + 1 + 2 L K) 4 bytes. stdout: the path, or with --json
// {"out", "batches", "batch", "seq_len", "k", "vocab_size", "bytes"}.
#include <bimamba/io/tokenizer_loader.hpp>
#include <bimamba/model/load.hpp>
#include <bimamba/train/teacher_topk.hpp>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "args.hpp"
#include "cmd_train_common.hpp"
#include "commands.hpp"
#include "progress.hpp"

namespace bimamba::cli {

int run_topk(int argc, char** argv) {
  Args args("topk", "--teacher DIR --text F [--text F2 ...] --tokenizer F --out FILE --batches S --k K [options]",
            "Writes a teacher's top-k logits on the batches a distill run would draw, for distill --teacher-topk.");
  args.option("teacher", "DIR", "full-precision checkpoint directory (HF or mamba_ssm layout)");
  declare_window_options(args);  // the values of the distill run that will read the file
  args.option("out", "FILE", "the teacher top-k file to write");
  args.option("batches", "S", "batches to write (distill reads batch j mod S at micro-batch j)");
  args.option("k", "K", "logits kept per position", "64");
  args.option("threads", "N", "host threads (0: all)", "0");
  args.flag("json", "print a summary as JSON on stdout");
  args.flag("progress", "show a progress bar on stderr even when it is not a terminal");
  if (!args.parse(argc, argv)) return 0;
  const int64_t S = args.integer("batches"), K = args.integer("k"), B = args.integer("batch"), L = args.integer("seq-len");
  if (S < 1 || K < 1 || B < 1 || L < 1) throw UsageError("--batches, --k, --batch and --seq-len must be positive");
  const std::vector<std::string> texts = all_values(argc, argv, "text");
  if (texts.empty()) throw UsageError("--text is required");
  const std::string out = args.str("out");

  const auto tok = load_tokenizer(args.str("tokenizer"));
  Context<Host> ctx(int(args.integer("threads")));
  log_warnings_to_stderr(ctx, "topk");
  const LanguageModel<Host> teacher = load_model<Host>(ctx, args.str("teacher"));
  const int64_t V = teacher.vocab_size();
  if (V < tok->vocab_size()) throw UsageError("the teacher's vocabulary is smaller than the tokenizer's");
  if (K > V) throw UsageError("--k " + std::to_string(K) + " is above the teacher's vocabulary of " + std::to_string(V));

  const std::string tokens_path = out + ".tokens.tmp";  // the corpus, tokenized once; removed at the end
  struct Remove {
    std::string path;
    ~Remove() { std::filesystem::remove(path); }
  } remove_tokens{tokens_path};
  const Corpus corpus = open_corpus_file(args, texts, *tok, tokens_path, false);
  WindowSampler sampler = training_sampler(args, corpus);  // the batches distill draws
  TeacherTopKWriter writer(out, V, K);
  {
    Progress progress("topk", args.has("progress"));
    for (int64_t s = 0; s < S; ++s) {
      const Batch<Host> batch = sampler.next(ctx);
      const Tensor<float, 3, Host> logits = teacher.forward(ctx, batch.inputs());  // (B, L, V)
      writer.add(ctx, batch.tokens.cview(), logits.cview());
      progress.update(s + 1, S);
    }
  }
  writer.finish();
  const int64_t bytes = int64_t(std::filesystem::file_size(out));
  if (args.has("json")) {
    std::cout << nlohmann::ordered_json{{"out", out},   {"batches", S}, {"batch", B},       {"seq_len", L},
                                        {"k", K},       {"vocab_size", V}, {"bytes", bytes}}
                     .dump()
              << std::endl;
  } else {
    std::cout << out << "\n";
  }
  return 0;
}

}  // namespace bimamba::cli
