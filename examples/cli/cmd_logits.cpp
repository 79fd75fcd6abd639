// bimamba logits --model DIR|FILE --input F.safetensors --output O.safetensors [--mode prefill|step]
// Reads input_ids (integer [B, T]) from F and writes F32 `logits` [B, T, V] to O (atomically: O is either
// the complete new file or untouched). prefill: one forward over all T tokens (chunked SSD scan);
// step: the tokens one at a time through the recurrent state. --packed runs a latent Bi-Mamba checkpoint on
// its sign bits (a packed file always does). --device cuda runs it on the first GPU. The body: cmd_logits.hpp.
#include "args.hpp"
#include "cmd_logits.hpp"
#include "commands.hpp"
#include "device.hpp"

namespace bimamba::cli {

int run_logits(int argc, char** argv) {
  Args args("logits", "--model DIR|FILE --input F.safetensors --output O.safetensors [options]",
            "Writes the F32 logits [B, T, V] of the input_ids [B, T] in F to O.");
  args.option("model", "DIR|FILE", "checkpoint directory (HF or mamba_ssm layout) or packed file");
  args.option("input", "F.safetensors", "safetensors file holding input_ids (integer, [B, T])");
  args.option("output", "O.safetensors", "where to write logits (F32, [B, T, V])");
  args.option("mode", "prefill|step", "prefill: all tokens at once; step: one token at a time through the state",
              "prefill");
  args.option("chunk-size", "Q", "SSD chunk length of the prefill (results agree to rounding for any Q)");
  args.option("threads", "N", "host threads (0: all)", "0");
  add_device_option(args, "where to run the model");
  args.flag("packed", "run a latent Bi-Mamba checkpoint on its packed sign bits");
  args.flag("progress", "show a progress bar on stderr even when it is not a terminal");
  if (!args.parse(argc, argv)) return 0;

  if (wants_cuda(args)) {  // never true in builds without CUDA: it throws there
#ifdef BIMAMBA_CLI_WITH_CUDA
    return run_logits_cuda(args);
#endif
  }
  Context<Host> ctx(int(args.integer("threads")));
  return logits_on(ctx, args);
}

}  // namespace bimamba::cli
