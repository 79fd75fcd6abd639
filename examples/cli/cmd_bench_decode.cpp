// bimamba bench decode --model FILE|DIR [--batch B] [--prompt-tokens P] [--new-tokens N] [--threads T]
//                      [--exact] [--per-block] [--seed S] --json
// Prefills B random prompts of P tokens, then decodes N tokens per sequence (greedy) one step at a time,
// and prints JSON: tokens_per_s (B N / decode time, after 2 untimed warm-up steps), prefill_tokens_per_s
// (B P / prefill time; the prefill computes the last position's logits only, LanguageModel::forward_last),
// peak_rss_bytes (VmHWM), bytes_per_token, limit_tokens_per_s = dram_read_gbps /
// bytes_per_token, fraction_of_limit, the per-step time spread, and what the fast path used.
//
// bytes_per_token = (bytes one step must move) / B, the step's bytes being every weight it reads once (packed
// signs as stored by the kernel in use, or fp32 dense weights; FBI alpha / beta, conv, norms, A_log, D,
// dt_bias; the head: V x D in bf16 or fp32) plus, per sequence, each layer's conv and SSM state read and
// written. Activations (a few KiB) are not counted. A Bi-Mamba latent checkpoint is packed first; by
// default the Host fast path (tiled signs, fused step, bf16 head for packed models) is on, --exact turns it off.
//
// Memory: the DRAM read bandwidth is measured first (its 512 MiB buffer is freed before the model is loaded);
// the model is loaded for inference (model_io.hpp open_model: no latent weights, no gradients); VmHWM is reset
// after the bandwidth measurement where Linux allows it (peak_rss_model_only), so peak_rss_bytes is the
// model's load, prefill and decode. model_store_bytes / sign_bytes_held: the ParamStore's buffers and the bits.
//
// --device cuda (cuda_bench.cu): the same JSON keys where they apply, measured on the first GPU: the limit is
// hbm_gbps (device-to-device copy, read + write) / bytes_per_token, the head fp32 and the signs untiled; each
// step is DecodeGraph::step (one CUDA graph replay after the first two steps) plus the logits' copy to the
// host for the argmax; prefill timed by CUDA events; device_bytes_in_use from cudaMemGetInfo after decoding.
#include <bimamba/core/memory_stats.hpp>
#include <bimamba/model/language_model.hpp>
#include <bimamba/model/storage.hpp>
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <vector>

#include "args.hpp"
#include "cmd_bench.hpp"
#include "cmd_bench_support.hpp"
#include "device.hpp"
#include "model_io.hpp"

namespace bimamba::cli {
namespace {

// Resets VmHWM to the current resident set (Linux: "5" to /proc/self/clear_refs); false where unsupported.
bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return bool(f);
}

}  // namespace

int run_bench_decode(int argc, char** argv) {
  Args args("bench decode", "--model FILE|DIR [--batch B] [--prompt-tokens P] [--new-tokens N] [--threads T] --json",
            "Prefill and decode speed of a model against the bytes / DRAM bandwidth limit, as JSON.");
  args.option("model", "FILE|DIR", "packed file or checkpoint directory");
  args.option("batch", "B", "sequences decoded together", "1");
  args.option("prompt-tokens", "P", "prompt length of the prefill", "512");
  args.option("new-tokens", "N", "decoded tokens per sequence (timed)", "64");
  args.option("threads", "T", "threads (0: all)", "0");
  args.option("seed", "S", "seed of the random prompts", "0");
  args.flag("exact", "the exact path: unfused step, fp32 head (and on the host the fp32-table packed kernel)");
  args.flag("per-block", "cuda: three launches a block instead of one persistent launch for all (docs/cuda.md)");
  add_device_option(args, "where to decode");
  args.flag("json", "print JSON (the only output format)");
  if (!args.parse(argc, argv)) return 0;
  const DecodeSizes sizes = decode_sizes(args);
  const auto [B, P, N] = sizes;
  if (args.has("per-block") && !wants_cuda(args)) throw UsageError("--per-block needs --device cuda");
  if (wants_cuda(args)) {  // never true in builds without CUDA: it throws there
#ifdef BIMAMBA_CLI_WITH_CUDA
    return run_bench_decode_cuda(args);
#endif
  }
  Context<Host> ctx(int(args.integer("threads")));
  const double gbps = dram_read_gbps(ctx);
  const bool rss_reset = reset_peak_rss();

  LanguageModel<Host> model = open_model(ctx, args.str("model"), false);
  if (model.config().binary && !model.packed()) model.pack();
  const bool exact = args.has("exact");
  const LanguageModel<Host>::FastPath fast{!exact && model.packed(), !exact, !exact && model.packed()};
  model.set_fast_path(fast);
  const int64_t V = model.vocab_size();

  const auto prompt = tensor_from<int32_t, 2>(random_ids(B * P, V, uint32_t(args.integer("seed"))), {B, P});
  auto state = model.new_state(B);
  Tensor<float, 2, Host> logits({B, V});
  auto t0 = Clock::now();
  model.forward_last(ctx, prompt.cview(), logits.view(), &state);  // generation needs the last position only
  const double prefill_s = seconds_since(t0);

  Tensor<int32_t, 1, Host> next({B});
  for (int64_t b = 0; b < B; ++b) next(b) = argmax(logits.data() + b * V, V);
  constexpr int kWarmup = 2;
  std::vector<double> step_ms;
  double decode_s = 0;
  for (int64_t t = 0; t < N + kWarmup; ++t) {
    t0 = Clock::now();
    model.step(ctx, next.cview(), state, logits.view());
    for (int64_t b = 0; b < B; ++b) next(b) = argmax(logits.data() + b * V, V);
    const double s = seconds_since(t0);
    if (t >= kWarmup) decode_s += s, step_ms.push_back(1e3 * s);
  }
  const int64_t peak_rss = peak_rss_bytes();
  const double bytes_per_token = double(step_bytes(model, B, fast.tiled_signs, fast.bf16_head)) / double(B);
  nlohmann::ordered_json j =
      decode_report(args, model, sizes, prefill_s, decode_s, step_ms, bytes_per_token, "dram_read_gbps", gbps);
  j["peak_rss_bytes"] = peak_rss;
  j["peak_rss_model_only"] = rss_reset;  // false: the peak may be the bandwidth buffer's
  j["threads"] = ctx.threads();
  const char* wait_policy = std::getenv("OMP_WAIT_POLICY");  // libgomp's idle-thread waiting (docs/decode.md)
  j["omp_wait_policy"] = wait_policy ? wait_policy : "default";
  j["simd"] = simd_path();
  j["fast_path"] = {{"tiled_signs", fast.tiled_signs}, {"fused_step", fast.fused_step}, {"bf16_head", fast.bf16_head}};
  std::cout << j.dump() << std::endl;
  return 0;
}

}  // namespace bimamba::cli
