// The body of `bimamba perplexity` (cmd_perplexity.cpp) on any backend: the text is tokenized on the host,
// each window's logits are computed on ctx's backend and scored on the host (eval/perplexity.hpp).
#pragma once

#include <bimamba/eval/perplexity.hpp>
#include <bimamba/io/file.hpp>
#include <bimamba/io/tokenizer_loader.hpp>
#include <bimamba/tensor/copy.hpp>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "args.hpp"
#include "device.hpp"
#include "model_io.hpp"
#include "progress.hpp"

namespace bimamba::cli {

template <class Backend>
int perplexity_on(Context<Backend>& ctx, const Args& args) {
  const int64_t window = args.integer("window");
  if (window < 2) throw UsageError("--window must be at least 2");

  const std::string path = args.str("text");
  const std::string text = read_text_file(path);
  if (text.empty()) BIMAMBA_THROW(FormatError, path, ": the text file is empty");
  const auto tok = load_tokenizer(args.str("tokenizer"));
  const LanguageModel<Backend> model = open_model(ctx, args.str("model"), args.has("packed"));
  std::vector<int32_t> tokens = tok->encode(text);
  if (args.has("max-tokens") && int64_t(tokens.size()) > args.integer("max-tokens")) tokens.resize(size_t(args.integer("max-tokens")));
  check_ids_in_vocab(tokens, model.vocab_size(), path + " (tokenized)");
  if (int64_t(tokens.size()) < window)
    BIMAMBA_THROW(InvalidArgument, path, ": ", tokens.size(), " tokens, fewer than one window of ", window);

  const LogitsFunction logits = [&](const std::vector<int32_t>& ids) {
    const auto x = to<Backend>(tensor_from<int32_t, 2>(ids, {1, int64_t(ids.size())}));  // (1, T)
    const Tensor<float, 3, Backend> out = model.forward(ctx, x.cview());                  // (1, T, V)
    Tensor<float, 2, Host> rows({int64_t(ids.size()), model.vocab_size()});              // (T, V)
    std::memcpy(rows.data(), host_copy(out).data(), rows.bytes());
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
