// bimamba generate --model DIR|FILE (--tokenizer F --prompt TEXT | --prompt-ids 1,2,3) --max-new-tokens N
//                  [--greedy | --temperature T --top-k K --top-p P --seed S] [--stop ID,...] [--json]
// model/generate.hpp: prefills the prompt into the recurrent state, then decodes one token at a time,
// greedily (argmax, lowest id on ties) or by sampling (model/sampling.hpp). --pad-token ID masks prompt
// positions holding ID out of the prefill, as HF's generate does with the config's pad_token_id (the
// fixtures' prompts need --pad-token 0 to reproduce HF's gen_ids). Without --json the text is
// streamed to stdout as it is produced; with --json one object {"prompt_ids": [...], "ids": [...],
// "text": "..."} (ids: the new tokens only; text only when a tokenizer is given). Generation stops after N
// tokens or at a stop token (kept in ids). Default stop: the tokenizer's EOS.
#include <bimamba/io/tokenizer_loader.hpp>
#include <bimamba/model/generate.hpp>
#include <iostream>

#include "args.hpp"
#include "commands.hpp"
#include "model_io.hpp"
#include "progress.hpp"

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
  args.flag("bos", "prepend the tokenizer's BOS token to the prompt");
  args.flag("packed", "run a latent Bi-Mamba checkpoint on its packed sign bits");
  args.flag("json", "print {prompt_ids, ids, text} as JSON instead of streaming the text");
  args.flag("progress", "show a progress bar on stderr even when it is not a terminal");
  if (!args.parse(argc, argv)) return 0;

  if (args.has("prompt") == args.has("prompt-ids")) throw UsageError("give exactly one of --prompt and --prompt-ids");
  const bool sampling = args.has("temperature") || args.has("top-k") || args.has("top-p");
  if (sampling && args.has("greedy")) throw UsageError("--greedy excludes --temperature, --top-k and --top-p");
  GenerationOptions options;
  if (args.has("temperature")) {
    options.sampling.temperature = float(args.number("temperature"));
    if (!(options.sampling.temperature > 0)) throw UsageError("--temperature must be > 0");
  } else if (sampling) {
    options.sampling.temperature = 1.0f;
  }
  if (args.has("top-k")) options.sampling.top_k = args.integer("top-k");
  if (args.has("top-p")) options.sampling.top_p = float(args.number("top-p"));
  if (options.sampling.top_k < 0) throw UsageError("--top-k must be >= 0");
  if (!(options.sampling.top_p > 0 && options.sampling.top_p <= 1)) throw UsageError("--top-p must be in (0, 1]");
  options.sampling.seed = uint64_t(args.integer("seed"));
  if (args.has("pad-token")) options.pad_token = int32_t(args.integer("pad-token"));
  options.max_new_tokens = args.integer("max-new-tokens");
  if (options.max_new_tokens < 0) throw UsageError("--max-new-tokens must be >= 0");

  std::unique_ptr<Tokenizer> tok;
  if (args.has("tokenizer")) tok = load_tokenizer(args.str("tokenizer"));
  if (args.has("prompt") && !tok) throw UsageError("--prompt needs --tokenizer");
  std::vector<int32_t> prompt;
  if (args.has("prompt")) {
    EncodeOptions encode;
    encode.add_bos = args.has("bos");
    prompt = tok->encode(args.str("prompt"), encode);
  } else {
    prompt = parse_id_list(args.str("prompt-ids"), "prompt-ids");
  }
  if (prompt.empty()) BIMAMBA_THROW(InvalidArgument, "the prompt is empty (no tokens)");
  if (args.has("stop")) options.stop_tokens = parse_id_list(args.str("stop"), "stop");
  else if (tok && tok->eos_id() >= 0) options.stop_tokens.push_back(tok->eos_id());

  Context<Host> ctx(int(args.integer("threads")));
  const LanguageModel<Host> model = open_model(ctx, args.str("model"), args.has("packed"));
  const int64_t V = model.vocab_size();
  check_ids_in_vocab(prompt, V, "prompt");
  if (tok && tok->vocab_size() > V)
    BIMAMBA_THROW(InvalidArgument, "the tokenizer has ", tok->vocab_size(), " tokens, more than the model's vocabulary of ", V);

  Progress progress("generate", args.has("progress") && args.has("json"));
  const bool stream = !args.has("json") && tok;
  int64_t produced = 0;
  options.on_token = [&](int64_t, int32_t id) {
    progress.update(++produced, options.max_new_tokens);
    if (stream) std::cout << tok->token_bytes(id) << std::flush;
    return true;
  };
  const std::vector<int32_t> ids = generate(ctx, model, prompt, options);
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
