// bimamba perplexity --model DIR|FILE --tokenizer F --text FILE --window W [--rolling] [--json]
// The whole file is tokenized as one string (no BOS) and scored over non-overlapping windows of W tokens
// (eval/perplexity.hpp: last partial window dropped, each window's first token not predicted, ppl =
// exp(mean NLL)) -> {"ppl": x, "tokens": n, "windows": k}. --rolling adds lm-eval's rolling word / byte
// perplexity of the file as one document (context W, prefix token BOS, else EOS). --device cuda computes the
// logits on the first GPU. The body: cmd_perplexity.hpp.
#include "args.hpp"
#include "cmd_perplexity.hpp"
#include "commands.hpp"
#include "device.hpp"

namespace bimamba::cli {

int run_perplexity(int argc, char** argv) {
  Args args("perplexity", "--model DIR|FILE --tokenizer F --text FILE --window W [options]",
            "Perplexity of a text file over non-overlapping windows of W tokens.");
  args.option("model", "DIR|FILE", "checkpoint directory (HF or mamba_ssm layout) or packed file");
  args.option("tokenizer", "F", "tokenizer.json or SentencePiece .model");
  args.option("text", "FILE", "UTF-8 text file, tokenized as one string");
  args.option("window", "W", "tokens per window", "256");
  args.option("max-tokens", "N", "score only the first N tokens of the file");
  args.option("threads", "N", "host threads (0: all)", "0");
  add_device_option(args, "where to run the model");
  args.flag("rolling", "also report lm-eval rolling word / byte perplexity");
  args.flag("packed", "run a latent Bi-Mamba checkpoint on its packed sign bits");
  args.flag("json", "print the result as JSON on stdout");
  args.flag("progress", "show a progress bar on stderr even when it is not a terminal");
  if (!args.parse(argc, argv)) return 0;
  if (wants_cuda(args)) {  // never true in builds without CUDA: it throws there
#ifdef BIMAMBA_CLI_WITH_CUDA
    return run_perplexity_cuda(args);
#endif
  }
  Context<Host> ctx(int(args.integer("threads")));
  return perplexity_on(ctx, args);
}

}  // namespace bimamba::cli
