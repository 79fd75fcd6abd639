// bimamba logits --model DIR|FILE --input F.safetensors --output O.safetensors [--mode prefill|step]
// Reads input_ids (integer [B, T]) from F and writes F32 `logits` [B, T, V] to O (atomically: O is either
// the complete new file or untouched). prefill: one forward over all T tokens (chunked SSD scan);
// step: the tokens one at a time through the recurrent state. --packed runs a latent Bi-Mamba checkpoint on
// its sign bits (a packed file always does).
#include <bimamba/io/safetensors.hpp>
#include <cstring>
#include <iostream>

#include "args.hpp"
#include "commands.hpp"
#include "model_io.hpp"
#include "progress.hpp"

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
  args.flag("packed", "run a latent Bi-Mamba checkpoint on its packed sign bits");
  args.flag("progress", "show a progress bar on stderr even when it is not a terminal");
  if (!args.parse(argc, argv)) return 0;

  const std::string mode = args.str("mode");
  if (mode != "prefill" && mode != "step") throw UsageError("--mode must be prefill or step, got '" + mode + "'");
  const std::string output = args.str("output"), input = args.str("input");
  Context<Host> ctx(int(args.integer("threads")));
  LanguageModel<Host> model = open_model(ctx, args.str("model"), args.has("packed"));
  if (args.has("chunk-size")) model.set_chunk_size(args.integer("chunk-size"));
  const int64_t V = model.vocab_size();
  int64_t B = 0, T = 0;
  const std::vector<int32_t> ids = read_token_ids(input, V, B, T);

  Tensor<float, 3, Host> logits({B, T, V});  // (B, T, V)
  if (mode == "prefill") {
    const auto x = tensor_from<int32_t, 2>(ids, {B, T});  // (B, T)
    model.forward(ctx, x.cview(), logits.view());
  } else {
    Progress progress("logits (step)", args.has("progress"));
    InferenceState<Host> state = model.new_state(B);
    Tensor<int32_t, 1, Host> column({B});  // (B)
    Tensor<float, 2, Host> step_logits({B, V});  // (B, V)
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t b = 0; b < B; ++b) column(b) = ids[size_t(b * T + t)];
      model.step(ctx, column.cview(), state, step_logits.view());
      for (int64_t b = 0; b < B; ++b) std::memcpy(&logits(b, t, 0), &step_logits(b, 0), size_t(V) * sizeof(float));
      progress.update(t + 1, T);
    }
  }
  save_safetensors(output, {HostTensor::from_view<float, 3>("logits", logits.cview())});
  return 0;
}

}  // namespace bimamba::cli
