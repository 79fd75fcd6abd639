// What `bimamba bench decode` and `bimamba bench gemv` share:
//   dram_read_gbps(ctx)   the machine's DRAM read bandwidth with ctx's threads: each thread sums its own slice
//                         of a buffer of max(512 MiB, 4x the last-level cache), 4 interleaved sequential
//                         streams per thread (as bench/dram.cpp), no stores; best of `passes` passes, GB/s
//   seconds_since(t0)     wall-clock seconds
//   decode_sizes(args)    --batch, --prompt-tokens, --new-tokens, checked positive
//   random_ids(n, V, s)   n token ids uniform in [0, V) from seed s
//   argmax(v, n)          the first index of the largest of n floats
//   relative_l2(a, b)     ||a - b|| / ||b|| in double
//   spread(times)         median / min / max
//   step_bytes(model, B, tiled, bf16_head)   the bytes one decode step of B sequences moves
//   decode_report(...)    the JSON keys of bench decode that both devices report
#pragma once

#include <bimamba/core/context.hpp>
#include <bimamba/core/cpu.hpp>
#include <bimamba/core/memory.hpp>
#include <bimamba/model/language_model.hpp>
#include <bimamba/model/storage.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "args.hpp"

namespace bimamba::cli {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

inline double dram_read_gbps(Context<Host>& ctx, int passes = 5) {
  constexpr int64_t kLine = 64, kStreams = 4;
  const int64_t bytes = std::max<int64_t>(int64_t(512) << 20, 4 * last_level_cache_bytes()) / 4096 * 4096;
  std::unique_ptr<char, void (*)(void*)> buffer(static_cast<char*>(MemoryOps<Host>::allocate(size_t(bytes))),
                                                MemoryOps<Host>::deallocate);
  const int workers = ctx.threads();
  const int64_t lines = bytes / kLine / workers / kStreams * kStreams;  // per worker
  auto slice = [&](int64_t w) { return buffer.get() + w * lines * kLine; };
  ctx.parallel_for(workers, [&](int64_t begin, int64_t end) {  // first touch by the thread that reads it
    for (int64_t w = begin; w < end; ++w) std::memset(slice(w), 1, size_t(lines * kLine));
  });
  std::vector<uint64_t> sums(static_cast<size_t>(workers));
  double best = 0;
  for (int pass = 0; pass < passes; ++pass) {
    const auto t0 = Clock::now();
    ctx.parallel_for(workers, [&](int64_t begin, int64_t end) {
      for (int64_t w = begin; w < end; ++w) {
        const auto* p = reinterpret_cast<const uint64_t*>(slice(w));
        const int64_t part = lines / kStreams * (kLine / 8);  // words per stream
        uint64_t acc[kStreams][8] = {};
        for (int64_t i = 0; i < part; i += kLine / 8)
          for (int64_t s = 0; s < kStreams; ++s)
            for (int k = 0; k < 8; ++k) acc[s][k] += p[s * part + i + k];
        uint64_t total = 0;
        for (auto& a : acc)
          for (uint64_t v : a) total += v;
        sums[size_t(w)] = total;
      }
    });
    best = std::max(best, double(lines * kLine * workers) / seconds_since(t0) / 1e9);
  }
  volatile uint64_t sink = 0;
  for (uint64_t s : sums) sink = sink + s;
  return best;
}

struct DecodeSizes {
  int64_t batch, prompt_tokens, new_tokens;
};

inline DecodeSizes decode_sizes(const Args& args) {
  const DecodeSizes n{args.integer("batch"), args.integer("prompt-tokens"), args.integer("new-tokens")};
  if (n.batch <= 0 || n.prompt_tokens <= 0 || n.new_tokens <= 0)
    throw UsageError("--batch, --prompt-tokens and --new-tokens must be positive");
  return n;
}

// B x P token ids in [0, V), uniformly at random from `seed`.
inline std::vector<int32_t> random_ids(int64_t count, int64_t V, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> token(0, int32_t(V - 1));
  std::vector<int32_t> ids(static_cast<size_t>(count));
  for (auto& id : ids) id = token(rng);
  return ids;
}

// Median, min and max of timings.
struct Spread {
  double median, min, max;
};

inline Spread spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

// ||a - b||_2 / ||b||_2 of two results of the same kernel call (the benchmarks' check before timing).
inline double relative_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]), den += double(b[i]) * b[i];
  return std::sqrt(num / std::max(den, 1e-300));
}

inline int32_t argmax(const float* v, int64_t n) { return int32_t(std::max_element(v, v + n) - v); }

// Bytes one decode step of B sequences moves (cmd_bench_decode.cpp's top comment): packed signs as the
// kernel in use stores them (`tiled`: rows padded to 32), the head in bf16 or fp32, the states read and written. Every tensor of the config is counted
// (model_tensor_specs), whether the model holds it in its store or, for inference-only sign weights, as bits.
template <class Backend>
int64_t step_bytes(const LanguageModel<Backend>& model, int64_t B, bool tiled, bool bf16_head) {
  const ModelConfig& cfg = model.config();
  int64_t bytes = 0;
  for (const TensorSpec& t : model_tensor_specs(cfg)) {
    if (t.kind == ParamKind::Binary && model.packed()) {
      const int64_t rows = t.shape[0], words = (t.shape[1] + 31) / 32;
      bytes += (tiled ? (rows + 31) / 32 * 32 : rows) * words * 4;
    } else if (t.name == "backbone.embeddings.weight" && cfg.tie_embeddings) {
      bytes += t.numel() * (bf16_head ? 2 : 4);
    } else {
      bytes += t.numel() * 4;
    }
  }
  const auto state = model.new_state(1);
  for (int64_t i = 0; i < state.layers(); ++i) bytes += 2 * B * (state.conv(i).numel() + state.ssm(i).numel()) * 4;
  return bytes;
}

// The keys `bench decode` reports on both devices (docs/decode.md): speeds, bytes per token against the
// bandwidth limit (bandwidth_key names the measured bandwidth: dram_read_gbps or hbm_gbps), the step spread and
// the run's sizes. Each device adds its own keys after these.
template <class Backend>
nlohmann::ordered_json decode_report(const Args& args, const LanguageModel<Backend>& model, const DecodeSizes& n,
                                     double prefill_s, double decode_s, const std::vector<double>& step_ms,
                                     double bytes_per_token, const char* bandwidth_key, double gbps) {
  const double tokens_per_s = double(n.batch * n.new_tokens) / decode_s, limit = gbps * 1e9 / bytes_per_token;
  const Spread steps = spread(step_ms);
  nlohmann::ordered_json j;
  j["tokens_per_s"] = tokens_per_s;
  j["prefill_tokens_per_s"] = double(n.batch * n.prompt_tokens) / prefill_s;
  j["model_store_bytes"] = model.params().flat_size() * int64_t(sizeof(float)) * (model.params().has_grads() ? 2 : 1);
  j["sign_bytes_held"] = model.sign_bytes();
  j["bytes_per_token"] = int64_t(bytes_per_token);
  j["limit_tokens_per_s"] = limit;
  j["fraction_of_limit"] = tokens_per_s / limit;
  j[bandwidth_key] = gbps;
  j["step_ms"] = {{"min", steps.min}, {"median", steps.median}, {"max", steps.max}};
  j["model"] = args.str("model");
  j["binary"] = model.config().binary;
  j["batch"] = n.batch;
  j["prompt_tokens"] = n.prompt_tokens;
  j["new_tokens"] = n.new_tokens;
  return j;
}

}  // namespace bimamba::cli
