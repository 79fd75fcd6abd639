// The tied LM head at the Bi-Mamba shapes (V = 32000, the LLaMA-2 vocabulary, x D), decoding batch sizes:
//   BM_dense_gemv_bf16/<model>/T:<T>/threads:<n>   ops/dense_gemv.hpp, bf16 weight storage
//   BM_dense_gemv_fp32/<model>/T:<T>/threads:<n>   ops/dense_gemv.hpp, fp32 weights
//   BM_eigen_fp32_head/<model>/T:<T>/threads:<n>   ops/linear.hpp (Eigen), the peer
// Validated once against ops/reference (sampled rows, fp32 dot bound), weights rotated beyond the LLC,
// bytes_per_second on the weight + activation bytes streamed, FLOP = 2 V D T per call.
#include <bimamba/core.hpp>
#include <bimamba/ops/dense_gemv.hpp>
#include <bimamba/ops/linear.hpp>

#include <Eigen/Core>
#include <string>

#include "bench_support.hpp"

namespace bimamba::bench {
namespace {

constexpr int64_t kVocab = 32000;

template <class W>
std::string validate(const Tensor<float, 2, Host>& x, const Tensor<W, 2, Host>& w, const Tensor<float, 2, Host>& y) {
  const int64_t T = x.size(0), D = x.size(1), V = w.size(0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t v = 0; v < V; v += 997) {
      double ref = 0, mass = 0;
      for (int64_t d = 0; d < D; ++d) {
        const double p = double(x(t, d)) * double(to_float(w(v, d)));
        ref += p;
        mass += std::abs(p);
      }
      if (!(std::abs(y(t, v) - ref) <= double(D + 1) * std::ldexp(1.0, -24) * mass))
        return "row " + std::to_string(v) + " token " + std::to_string(t) + ": " + std::to_string(y(t, v)) +
               " vs reference " + std::to_string(ref);
    }
  return "";
}

template <class W, bool Eigen>
void head(benchmark::State& state, int64_t D, int64_t T, int threads) {
  Context<Host> ctx(threads);
  Eigen::setNbThreads(1);  // threads come from ctx.parallel_for, as in the library
  const int64_t bytes = kVocab * D * int64_t(sizeof(W)), copies = rotation_copies(bytes);
  std::vector<Tensor<W, 2, Host>> weights;
  std::vector<float> values(size_t(kVocab * D));
  fill_uniform(values.data(), values.size(), 7, -0.05f, 0.05f);
  for (int64_t c = 0; c < copies; ++c) {
    weights.emplace_back(Extents<2>{kVocab, D});
    for (int64_t k = 0; k < kVocab * D; ++k) weights.back().data()[k] = from_float<W>(values[size_t(k)]);
  }
  Tensor<float, 2, Host> x({T, D}), y({T, kVocab});
  fill_uniform(x.data(), size_t(T * D), 8, -2, 2);
  auto call = [&](int64_t c) {
    if constexpr (Eigen) linear(ctx, x, weights[size_t(c)], {}, y);
    else dense_gemv(ctx, x, weights[size_t(c)], y);
  };
  call(0);
  if (auto error = validate(x, weights[0], y); !error.empty()) {
    state.SkipWithError(error.c_str());
    return;
  }
  int64_t c = 0;
  for (auto _ : state) {
    call(c);
    benchmark::DoNotOptimize(y.data());
    c = (c + 1) % copies;
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * (bytes + 4 * T * (D + kVocab)));
  state.counters["FLOP"] = benchmark::Counter(double(2 * kVocab * D * T), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weight_bytes"] = double(bytes);
  state.counters["copies"] = double(copies);
  state.counters["threads"] = ctx.threads();
}

}  // namespace

void register_dense_gemv_benchmarks() {
  using Fn = void (*)(benchmark::State&, int64_t, int64_t, int);
  const std::pair<const char*, Fn> variants[] = {{"BM_dense_gemv_bf16", head<bfloat16, false>},
                                                 {"BM_dense_gemv_fp32", head<float, false>},
                                                 {"BM_eigen_fp32_head", head<float, true>}};
  std::vector<int> thread_counts = {1};
  if (const int all = Context<Host>(0).threads(); all > 1) thread_counts.push_back(all);
  const std::pair<const char*, int64_t> models[] = {{"780M", 1536}, {"1.3B", 2048}, {"2.7B", 2560}};
  for (auto [model, D] : models)
    for (int64_t T : {1, 4, 16})
      for (int threads : thread_counts)
        for (auto [name, fn] : variants) {
          const std::string full = std::string(name) + "/" + model + "/T:" + std::to_string(T) + "/threads:" +
                                   std::to_string(threads);
          benchmark::RegisterBenchmark(full.c_str(), fn, D, T, threads)->Unit(benchmark::kMicrosecond)->UseRealTime();
        }
}

}  // namespace bimamba::bench
