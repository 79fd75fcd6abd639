// The body of `bimamba generate` (cmd_generate.cpp) on any backend: the prompt and the generation options are
// read from the arguments on the host, the model runs on ctx's backend (model/generate.hpp: prefill, then one
// step per token), and the tokens are streamed or printed as JSON on stdout.
#pragma once

#include <bimamba/io/tokenizer_loader.hpp>
#include <bimamba/model/generate.hpp>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "args.hpp"
#include "model_io.hpp"
#include "progress.hpp"

namespace bimamba::cli {

template <class Backend>
int generate_on(Context<Backend>& ctx, const Args& args) {
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

  const LanguageModel<Backend> model = open_model(ctx, args.str("model"), args.has("packed"));
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
