// bimamba generate --model DIR|FILE (--tokenizer F --prompt TEXT | --prompt-ids 1,2,3) --max-new-tokens N
//                  [--greedy | --temperature T --top-k K --top-p P --seed S] [--stop ID,...] [--json]
// Prefills the prompt through the recurrent state, then decodes one token at a time (model.step), choosing
// each token greedily (argmax, lowest id on ties) or by sampling (sampling.hpp). Without --json the text is
// streamed to stdout as it is produced; with --json one object {"prompt_ids": [...], "ids": [...],
// "text": "..."} (ids: the new tokens only; text only when a tokenizer is given). Generation stops after N
// tokens or at a stop token (kept in ids). Default stop: the tokenizer's EOS.
#include <bimamba/io/tokenizer_loader.hpp>
#include <iostream>

#include "args.hpp"
#include "commands.hpp"
#include "model_io.hpp"
#include "progress.hpp"
#include "sampling.hpp"

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
  args.option("stop", "IDS", "comma-separated stop token ids (default: the tokenizer's EOS)");
  args.option("threads", "N", "host threads (0: all)", "0");
  args.flag("bos", "prepend the tokenizer's BOS token to the prompt");
  args.flag("packed", "run a latent Bi-Mamba checkpoint on its packed sign bits");
  args.flag("json", "print {prompt_ids, ids, text} as JSON instead of streaming the text");
  args.flag("progress", "show a progress bar on stderr even when it is not a terminal");
  if (!args.parse(argc, argv)) return 0;

  if (args.has("prompt") == args.has("prompt-ids")) throw UsageError("give exactly one of --prompt and --prompt-ids");
  const bool sampling = args.has("temperature") || args.has("top-k") || args.has("top-p");
  if (sampling && args.has("greedy")) throw UsageError("--greedy excludes --temperature, --top-k and --top-p");
  SamplingOptions sampler;
  sampler.greedy = !sampling;
  if (args.has("temperature")) sampler.temperature = args.number("temperature");
  if (args.has("top-k")) sampler.top_k = args.integer("top-k");
  if (args.has("top-p")) sampler.top_p = args.number("top-p");
  sampler.validate();
  const int64_t max_new = args.integer("max-new-tokens");
  if (max_new < 0) throw UsageError("--max-new-tokens must be >= 0");

  std::unique_ptr<Tokenizer> tok;
  if (args.has("tokenizer")) tok = load_tokenizer(args.str("tokenizer"));
  if (args.has("prompt") && !tok) throw UsageError("--prompt needs --tokenizer");
  std::vector<int32_t> prompt;
  if (args.has("prompt")) {
    EncodeOptions options;
    options.add_bos = args.has("bos");
    prompt = tok->encode(args.str("prompt"), options);
  } else {
    prompt = parse_id_list(args.str("prompt-ids"), "prompt-ids");
  }
  if (prompt.empty()) BIMAMBA_THROW(InvalidArgument, "the prompt is empty (no tokens)");
  std::vector<int32_t> stop;
  if (args.has("stop")) stop = parse_id_list(args.str("stop"), "stop");
  else if (tok && tok->eos_id() >= 0) stop.push_back(tok->eos_id());

  Context<Host> ctx(int(args.integer("threads")));
  const LanguageModel<Host> model = open_model(ctx, args.str("model"), args.has("packed"));
  const int64_t V = model.vocab_size();
  check_ids_in_vocab(prompt, V, "prompt");
  if (tok && tok->vocab_size() > V)
    BIMAMBA_THROW(InvalidArgument, "the tokenizer has ", tok->vocab_size(), " tokens, more than the model's vocabulary of ", V);

  std::mt19937_64 rng(uint64_t(args.integer("seed")));
  InferenceState<Host> state = model.new_state(1);
  const auto x = tensor_from<int32_t, 2>(prompt, {1, int64_t(prompt.size())});  // (1, P)
  const Tensor<float, 3, Host> prefill = model.forward(ctx, x.cview(), state);   // (1, P, V)
  std::vector<float> last(prefill.data() + (int64_t(prompt.size()) - 1) * V, prefill.data() + int64_t(prompt.size()) * V);
  std::vector<int32_t> ids;
  Tensor<int32_t, 1, Host> next({1});   // (1)
  Tensor<float, 2, Host> logits({1, V});  // (1, V)
  Progress progress("generate", args.has("progress") && args.has("json"));
  const bool stream = !args.has("json") && tok;
  for (int64_t n = 0; n < max_new; ++n) {
    const int32_t id = choose_token(last.data(), V, sampler, rng);
    ids.push_back(id);
    progress.update(n + 1, max_new);
    if (stream) std::cout << tok->token_bytes(id) << std::flush;
    if (std::find(stop.begin(), stop.end(), id) != stop.end() || n + 1 == max_new) break;
    next(0) = id;
    model.step(ctx, next.cview(), state, logits.view());
    last.assign(logits.data(), logits.data() + V);
  }
  progress.finish();
  if (args.has("json")) {
    nlohmann::ordered_json j;
    j["prompt_ids"] = prompt;
    j["ids"] = ids;
    if (tok) j["text"] = tok->decode(ids);
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  } else if (stream) {
    std::cout << std::endl;
  } else {
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << std::endl;
  }
  return 0;
}

}  // namespace bimamba::cli
