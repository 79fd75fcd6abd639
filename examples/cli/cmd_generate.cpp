// bimamba generate --model DIR|FILE (--tokenizer F --prompt TEXT | --prompt-ids 1,2,3) --max-new-tokens N
//                  [--greedy | --temperature T --top-k K --top-p P --seed S] [--stop ID,...] [--json]
// model/generate.hpp: prefills the prompt into the recurrent state, then decodes one token at a time,
// greedily (argmax, lowest id on ties) or by sampling (model/sampling.hpp). --pad-token ID masks prompt
// positions holding ID out of the prefill, as HF's generate does with the config's pad_token_id (the
// fixtures' prompts need --pad-token 0 to reproduce HF's gen_ids). Without --json the text is
// streamed to stdout as it is produced; with --json one object {"prompt_ids": [...], "ids": [...],
// "text": "..."} (ids: the new tokens only; text only when a tokenizer is given). Generation stops after N
// tokens or at a stop token (kept in ids). Default stop: the tokenizer's EOS. --device cuda runs the model on
// the first GPU. The body: cmd_generate.hpp.
#include "args.hpp"
#include "cmd_generate.hpp"
#include "commands.hpp"
#include "device.hpp"

namespace bimamba::cli {

int run_generate(int argc, char** argv) {
  Args args("generate", "--model DIR|FILE (--tokenizer F --prompt TEXT | --prompt-ids IDS) --max-new-tokens N [options]",
            "Continues a prompt, greedily or by sampling.");
  args.option("model", "DIR|FILE", "checkpoint directory (HF or mamba_ssm layout) or packed file");
  args.option("tokenizer", "F", "tokenizer.json or SentencePiece .model (needed for --prompt and for text output)");
  args.option("prompt", "TEXT", "prompt text");
  args.option("prompt-ids", "IDS", "prompt as comma-separated token ids");
  args.option("max-new-tokens", "N", "tokens to generate at most", "32");
  args.flag("greedy", "always take the most likely token (the default unless a sampling option is given)");
  args.option("temperature", "T", "sampling temperature (> 0)");
  args.option("top-k", "K", "sample among the K most likely tokens (0: all)");
  args.option("top-p", "P", "sample within the smallest set of probability >= P (nucleus)");
  args.option("seed", "S", "random seed of the sampler", "0");
  args.option("pad-token", "ID", "prompt positions holding this id are padding (masked, as HF's generate does)");
  args.option("stop", "IDS", "comma-separated stop token ids (default: the tokenizer's EOS)");
  args.option("threads", "N", "host threads (0: all)", "0");
  add_device_option(args, "where to run the model");
  args.flag("bos", "prepend the tokenizer's BOS token to the prompt");
  args.flag("packed", "run a latent Bi-Mamba checkpoint on its packed sign bits");
  args.flag("json", "print {prompt_ids, ids, text} as JSON instead of streaming the text");
  args.flag("progress", "show a progress bar on stderr even when it is not a terminal");
  if (!args.parse(argc, argv)) return 0;

  if (wants_cuda(args)) {  // never true in builds without CUDA: it throws there
#ifdef BIMAMBA_CLI_WITH_CUDA
    return run_generate_cuda(args);
#endif
  }
  Context<Host> ctx(int(args.integer("threads")));
  return generate_on(ctx, args);
}

}  // namespace bimamba::cli
