// Packed FBI-Linear GEMV / small-batch GEMM at the real Bi-Mamba projection shapes, with the fp32 peer in the
// same run:
//   BM_binary_linear_lut/<model>/<proj>/T:<T>/threads:<n>     fp32 lookup tables on the standard packed layout
//   BM_binary_linear_tiled/<model>/<proj>/T:<T>/threads:<n>   int16 vpshufb tables on TiledSigns (same bytes)
//   BM_eigen_fp32/<model>/<proj>/T:<T>/threads:<n>          ops/linear.hpp (Eigen) on W_eff = alpha ⊙ S + beta
// T in {1, 4, 16, 64}, and 512 (prefill) for the 780M shapes (tiled and Eigen only).
// Each benchmark validates its output against ops/reference (sampled rows; fp32 error bound, plus the
// quantization bound for the tiled kernel) before timing
// and rotates its weights over more memory than the L3 (bench_support.hpp). bytes_per_second counts the
// bytes streamed per call (weights + x + y); the FLOP counter counts 2 * out * in * T per call.
#include <bimamba/core.hpp>
#include <bimamba/ops/binary_linear.hpp>
#include <bimamba/ops/linear.hpp>
#include <bimamba/ops/reference/binary_linear.hpp>

#include <Eigen/Core>
#include <functional>
#include <string>

#include "bench_support.hpp"

namespace bimamba::bench {
namespace {

// x, alpha, beta of one problem (the weights are held by each variant).
struct Inputs {
  int64_t T, in, out;
  Tensor<float, 2, Host> x;  // (T, in)
  Tensor<float, 1, Host> alpha, beta;  // (in)
  Inputs(int64_t T_, int64_t in_, int64_t out_) : T(T_), in(in_), out(out_), x({T, in}), alpha({in}), beta({in}) {
    fill_uniform(x.data(), size_t(x.numel()), 1, -2, 2);
    fill_uniform(alpha.data(), size_t(in), 2, 0.01f, 1);
    fill_uniform(beta.data(), size_t(in), 3, -0.2f, 0.2f);
  }
};

// Compares sampled rows of y (T, out) with the double reference for signs `words`; "" when all agree within
// the fp32 bound (in + 2) u sum_j |x_j| (|alpha_j| + |beta_j|), else a description of the first mismatch.
// With quantized = true the bound adds sum_j d_w(j) / 2, d_w = max |a| over the 32-column block / 1023
// (ops/host/binary_linear_shuffle.hpp).
std::string validate(const Inputs& p, const uint32_t* words, const Tensor<float, 2, Host>& y, bool quantized = false) {
  const int64_t wpr = words_for<uint32_t>(p.in), step = std::max<int64_t>(1, p.out / 61);
  std::vector<double> a(size_t(p.in)), b(size_t(p.in));
  for (int64_t j = 0; j < p.in; ++j) a[size_t(j)] = p.alpha(j), b[size_t(j)] = p.beta(j);
  for (int64_t t = 0; t < p.T; ++t) {
    std::vector<double> xt(size_t(p.in));
    double mass = 0;
    for (int64_t j = 0; j < p.in; ++j) {
      xt[size_t(j)] = p.x(t, j);
      mass += std::abs(xt[size_t(j)]) * (std::abs(a[size_t(j)]) + std::abs(b[size_t(j)]));
    }
    double quant = 0;
    for (int64_t w0 = 0; quantized && w0 < p.in; w0 += 32) {
      double m = 0;
      for (int64_t j = w0; j < std::min(p.in, w0 + 32); ++j) m = std::max(m, std::abs(a[size_t(j)] * xt[size_t(j)]));
      quant += double(std::min<int64_t>(32, p.in - w0)) * (m / 1023) / 2;
    }
    const double tol = quant + double(p.in + 2) * std::ldexp(1.0, -24) * (mass + quant);
    for (int64_t i = 0; i < p.out; i = (i + step < p.out || i == p.out - 1) ? i + step : p.out - 1) {
      const auto s = reference::unpack_sign_words(words + i * wpr, 1, p.in);
      double ref = 0;
      reference::binary_linear(xt.data(), 1, p.in, s.data(), 1, a.data(), b.data(), &ref);
      if (!(std::abs(double(y(t, i)) - ref) <= tol))
        return "row " + std::to_string(i) + " token " + std::to_string(t) + ": " + std::to_string(y(t, i)) +
               " vs reference " + std::to_string(ref) + " (bound " + std::to_string(tol) + ")";
      if (i == p.out - 1) break;
    }
  }
  return "";
}

void set_counters(benchmark::State& state, const Inputs& p, int64_t weight_bytes, int64_t copies, int threads) {
  const int64_t bytes = weight_bytes + 4 * (p.T * p.in + p.T * p.out);
  state.SetBytesProcessed(int64_t(state.iterations()) * bytes);
  state.counters["FLOP"] = benchmark::Counter(double(2 * p.out * p.in * p.T), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weight_bytes"] = double(weight_bytes);
  state.counters["copies"] = double(copies);
  state.counters["threads"] = threads;
}

// Random signs (padding bits zero, the layout's invariant).
BitTensor<uint32_t, Host> random_signs(const Shape& shape, uint64_t seed) {
  const int64_t wpr = words_for<uint32_t>(shape.in);
  BitTensor<uint32_t, Host> signs(shape.out, shape.in);
  fill_words(signs.data(), size_t(shape.out * wpr), seed);
  if (shape.in % 32)
    for (int64_t i = 0; i < shape.out; ++i) signs.view().row(i)[wpr - 1] &= (1u << (shape.in % 32)) - 1u;
  return signs;
}

// The rotated weight copies of the shape being benchmarked, built on first use and kept while consecutive
// benchmarks use the same shape (they are registered shape by shape), so that building hundreds of MB of
// inputs is not repeated for every batch size and thread count. Copy 0 of `bits` is what validation reads.
struct WeightCache {
  std::string key;
  std::vector<BitTensor<uint32_t, Host>> bits;
  std::vector<TiledSigns> tiled;
  std::vector<Tensor<float, 2, Host>> dense;  // W_eff = alpha ⊙ S + beta of bits[0]

  static WeightCache& get(const Shape& shape) {
    static WeightCache cache;
    const std::string key = std::string(shape.model) + shape.proj;
    if (cache.key != key) cache = WeightCache{key, {}, {}, {}};
    if (cache.bits.empty()) cache.bits.push_back(random_signs(shape, 100));
    return cache;
  }
  const std::vector<BitTensor<uint32_t, Host>>& packed(const Shape& shape) {
    const int64_t copies = rotation_copies(int64_t(bits[0].storage_bytes()));
    for (int64_t c = int64_t(bits.size()); c < copies; ++c) bits.push_back(random_signs(shape, uint64_t(100 + c)));
    return bits;
  }
  const std::vector<TiledSigns>& tiles(const Shape& shape) {
    const int64_t copies = rotation_copies(int64_t(bits[0].storage_bytes()));
    if (tiled.empty()) tiled.emplace_back(bits[0].cview());
    for (int64_t c = int64_t(tiled.size()); c < copies; ++c)
      tiled.emplace_back(random_signs(shape, uint64_t(100 + c)).cview());
    return tiled;
  }
  const std::vector<Tensor<float, 2, Host>>& weights(const Shape& shape, const Inputs& p) {
    const int64_t copies = rotation_copies(shape.out * shape.in * 4);
    while (int64_t(dense.size()) < copies) {
      Tensor<float, 2, Host> w({shape.out, shape.in});
      for (int64_t i = 0; i < shape.out; ++i)
        for (int64_t j = 0; j < shape.in; ++j) w(i, j) = p.alpha(j) * float(bits[0].cview().sign(i, j)) + p.beta(j);
      dense.push_back(std::move(w));
    }
    return dense;
  }
};

// Validates call() once, then times it over the rotated copies.
template <class Call>
void run(benchmark::State& state, const Inputs& p, const uint32_t* signs0, bool quantized, int64_t copies, Call call) {
  Tensor<float, 2, Host> y({p.T, p.out});
  call(0, y);
  if (auto error = validate(p, signs0, y, quantized); !error.empty()) {
    state.SkipWithError(error.c_str());
    return;
  }
  int64_t c = 0;
  for (auto _ : state) {
    call(c, y);
    benchmark::DoNotOptimize(y.data());
    c = (c + 1) % copies;
  }
}

void packed_lut(benchmark::State& state, Shape shape, int64_t T, int threads) {
  Context<Host> ctx(threads);
  Inputs p(T, shape.in, shape.out);
  auto& cache = WeightCache::get(shape);
  const auto& bits = cache.packed(shape);
  run(state, p, bits[0].data(), false, int64_t(bits.size()), [&](int64_t c, Tensor<float, 2, Host>& y) {
    binary_linear(ctx, p.x, bits[size_t(c)], p.alpha, p.beta, y);
  });
  set_counters(state, p, int64_t(bits[0].storage_bytes()), int64_t(bits.size()), ctx.threads());
}

void packed_tiled(benchmark::State& state, Shape shape, int64_t T, int threads) {
  Context<Host> ctx(threads);
  Inputs p(T, shape.in, shape.out);
  auto& cache = WeightCache::get(shape);
  const auto& tiled = cache.tiles(shape);
  run(state, p, cache.bits[0].data(), true, int64_t(tiled.size()), [&](int64_t c, Tensor<float, 2, Host>& y) {
    binary_linear(ctx, p.x, tiled[size_t(c)], p.alpha, p.beta, y);
  });
  set_counters(state, p, int64_t(tiled[0].storage_bytes()), int64_t(tiled.size()), ctx.threads());
}

void eigen_fp32(benchmark::State& state, Shape shape, int64_t T, int threads) {
  Context<Host> ctx(threads);
  Eigen::setNbThreads(1);  // threads come from ctx.parallel_for inside linear(), as in the library
  Inputs p(T, shape.in, shape.out);
  auto& cache = WeightCache::get(shape);
  const auto& w = cache.weights(shape, p);
  run(state, p, cache.bits[0].data(), false, int64_t(w.size()), [&](int64_t c, Tensor<float, 2, Host>& y) {
    linear(ctx, p.x, w[size_t(c)], {}, y);
  });
  set_counters(state, p, shape.out * shape.in * 4, int64_t(w.size()), ctx.threads());
}

}  // namespace

void register_binary_linear_benchmarks() {
  using Fn = void (*)(benchmark::State&, Shape, int64_t, int);
  const std::pair<const char*, Fn> variants[] = {
      {"BM_binary_linear_tiled", packed_tiled}, {"BM_binary_linear_lut", packed_lut}, {"BM_eigen_fp32", eigen_fp32}};
  std::vector<int> thread_counts = {1};
  if (const int all = Context<Host>(0).threads(); all > 1) thread_counts.push_back(all);
  for (const Shape& s : bimamba_shapes()) {
    // Prefill: T = 512 at the 780M shapes only, tiled kernel (the T >= 16 loop order of
    // ops/host/binary_linear_prefill.hpp) against Eigen's fp32 GEMM; the fp32-table kernel is left out there.
    std::vector<int64_t> tokens = {1, 4, 16, 64};
    if (std::string(s.model) == "780M") tokens.push_back(512);
    for (int64_t T : tokens)
      for (int threads : thread_counts) {
        for (auto [name, fn] : variants) {
          if (T > 64 && fn == packed_lut) continue;
          const std::string full = std::string(name) + "/" + s.model + "/" + s.proj + "/T:" + std::to_string(T) +
                                   "/threads:" + std::to_string(threads);
          benchmark::RegisterBenchmark(full.c_str(), fn, s, T, threads)->Unit(benchmark::kMicrosecond)->UseRealTime();
        }
      }
  }
}

}  // namespace bimamba::bench
