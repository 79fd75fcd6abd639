// bimamba perplexity --model DIR|FILE --tokenizer F --text FILE --window W [--rolling] [--json]
// The whole file is tokenized as one string (no BOS) and scored over non-overlapping windows of W tokens
// (eval/perplexity.hpp: last partial window dropped, each window's first token not predicted, ppl =
// exp(mean NLL)) -> {"ppl": x, "tokens": n, "windows": k}. --rolling adds lm-eval's rolling word / byte
// perplexity of the file as one document (context W, prefix token BOS, else EOS).
#include <bimamba/eval/perplexity.hpp>
#include <bimamba/io/file.hpp>
#include <bimamba/io/tokenizer_loader.hpp>
#include <iostream>

#include "args.hpp"
#include "commands.hpp"
#include "model_io.hpp"
#include "progress.hpp"

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
  args.flag("rolling", "also report lm-eval rolling word / byte perplexity");
  args.flag("packed", "run a latent Bi-Mamba checkpoint on its packed sign bits");
  args.flag("json", "print the result as JSON on stdout");
  args.flag("progress", "show a progress bar on stderr even when it is not a terminal");
  if (!args.parse(argc, argv)) return 0;
  const int64_t window = args.integer("window");
  if (window < 2) throw UsageError("--window must be at least 2");

  const std::string path = args.str("text");
  const std::string text = read_text_file(path);
  if (text.empty()) BIMAMBA_THROW(FormatError, path, ": the text file is empty");
  const auto tok = load_tokenizer(args.str("tokenizer"));
  Context<Host> ctx(int(args.integer("threads")));
  const LanguageModel<Host> model = open_model(ctx, args.str("model"), args.has("packed"));
  std::vector<int32_t> tokens = tok->encode(text);
  if (args.has("max-tokens") && int64_t(tokens.size()) > args.integer("max-tokens")) tokens.resize(size_t(args.integer("max-tokens")));
  check_ids_in_vocab(tokens, model.vocab_size(), path + " (tokenized)");
  if (int64_t(tokens.size()) < window)
    BIMAMBA_THROW(InvalidArgument, path, ": ", tokens.size(), " tokens, fewer than one window of ", window);

  const LogitsFunction logits = [&](const std::vector<int32_t>& ids) {
    const auto x = tensor_from<int32_t, 2>(ids, {1, int64_t(ids.size())});  // (1, T)
    Tensor<float, 3, Host> out = model.forward(ctx, x.cview());                // (1, T, V)
    Tensor<float, 2, Host> rows({int64_t(ids.size()), model.vocab_size()});  // (T, V)
    std::memcpy(rows.data(), out.data(), rows.bytes());
    return rows;
  };
  nlohmann::ordered_json j;
  {
    Progress progress("perplexity", args.has("progress"));
    const PerplexityResult r = window_perplexity(tokens, window, logits, [&](int64_t d, int64_t t) { progress.update(d, t); });
    j = r.to_json();
  }
  if (args.has("rolling")) {
    Progress progress("rolling", args.has("progress"));
    const int32_t prefix = tok->bos_id() >= 0 ? tok->bos_id() : std::max(tok->eos_id(), 0);
    const RollingResult r = rolling_perplexity({Document{text, tokens}}, window, prefix, logits,
                                               [&](int64_t d, int64_t t) { progress.update(d, t); });
    j["rolling"] = r.to_json();
  }
  if (args.has("json")) {
    std::cout << j.dump() << std::endl;
  } else {
    std::cout << "perplexity " << j["ppl"].get<double>() << " over " << j["windows"].get<int64_t>() << " windows of "
              << window << " tokens\n";
    if (args.has("rolling"))
      std::cout << "word perplexity " << j["rolling"]["word_perplexity"].get<double>() << ", byte perplexity "
                << j["rolling"]["byte_perplexity"].get<double>() << ", bits per byte "
                << j["rolling"]["bits_per_byte"].get<double>() << "\n";
  }
  return 0;
}

}  // namespace bimamba::cli
