// `bimamba logits / generate / perplexity --device cuda`: the commands' bodies (cmd_<name>.hpp) instantiated
// for the Cuda backend. The model is loaded straight onto the first GPU (load_model<Cuda>); ids and logits
// cross to and from the host where the host-side parts of the command (tokenizer, files, scoring) need them.
#include <bimamba/cuda.hpp>

#include "cmd_generate.hpp"
#include "cmd_logits.hpp"
#include "cmd_perplexity.hpp"
#include "device.hpp"

namespace bimamba::cli {

int run_logits_cuda(const Args& args) {
  Context<Cuda> ctx;
  log_warnings_to_stderr(ctx, "logits");
  announce_gpu("logits: running");
  return logits_on(ctx, args);
}

int run_generate_cuda(const Args& args) {
  Context<Cuda> ctx;
  log_warnings_to_stderr(ctx, "generate");
  announce_gpu("generate: running");
  return generate_on(ctx, args);
}

int run_perplexity_cuda(const Args& args) {
  Context<Cuda> ctx;
  log_warnings_to_stderr(ctx, "perplexity");
  announce_gpu("perplexity: running");
  return perplexity_on(ctx, args);
}

}  // namespace bimamba::cli
