// Packed FBI GEMV vs cuBLAS bf16 GEMV on the device, and the device copy bandwidth in the same run.
//
// Shapes: Mamba-2 projections with expand 2, N = 128, G = 1, headdim 64 (E = 2 D, H = E / 64):
//   in_proj (2 E + 2 N + H) x D, out_proj D x E, for D = 1536 (780M), 2048 (1.3B), 2560 (2.7B).
// Timing: each benchmark captures kCalls calls into one CUDA graph, replays it between two CUDA events and
// reports the time per call (UseManualTime; bimamba/bench/cuda_timing.hpp). The peer: bench/cublas_bf16_gemv.hpp. Every call uses the next of `copies` weight copies, enough that
// together they exceed kRotateBytes (3x the H200's 60 MB L2), so the weights stream from HBM.
// Validation before timing: the packed result equals the host binary_linear (relative L2 < 1e-5, as in
// tests/ops_cuda) and cuBLAS bf16 equals the fp32 product within bf16 rounding (relative L2 < 1e-2).
// Counters: bytes/s of the weights (and activations), `hbm_gbps` of the copy benchmark (read + write).
#include <benchmark/benchmark.h>
#include <bimamba/bench/cublas_bf16_gemv.hpp>
#include <bimamba/bench/cuda_timing.hpp>
#include <bimamba/cuda.hpp>
#include <bimamba/ops/binary_linear.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cuda_bench_main.hpp"

namespace bimamba::bench_cuda {
namespace {

constexpr int64_t kRotateBytes = int64_t(180) << 20;
constexpr int kCalls = 200;

struct Shape {
  const char* model;
  const char* proj;
  int64_t out, in;
};

std::vector<Shape> shapes() {
  std::vector<Shape> s;
  const std::pair<const char*, int64_t> models[] = {{"780M", 1536}, {"1.3B", 2048}, {"2.7B", 2560}};
  for (auto [name, D] : models) {
    const int64_t E = 2 * D, N = 128, H = E / 64;
    s.push_back({name, "in_proj", 2 * E + 2 * N + H, D});
    s.push_back({name, "out_proj", D, E});
  }
  return s;
}

int64_t copies_for(int64_t bytes) { return std::max<int64_t>(2, (kRotateBytes + bytes - 1) / bytes); }

std::vector<float> uniform(size_t n, uint64_t seed, float lo, float hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

double relative_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// Captures kCalls calls of body(call) into one graph and reports the time per call of each replay.
template <class Body>
void time_graph(benchmark::State& state, cudaStream_t stream, Body&& body) {
  CapturedCalls calls(stream, kCalls, body);
  for (auto _ : state) state.SetIterationTime(calls.replay_ms() * 1e-3 / kCalls);
}

void BM_cuda_copy_bandwidth(benchmark::State& state) {
  cudaStream_t stream;
  BIMAMBA_CUDA_CHECK(cudaStreamCreate(&stream));
  double best = 0;
  for (auto _ : state) {
    const double gbps = device_copy_gbps(stream, 1);  // one copy of 512 MiB, read + write
    best = std::max(best, gbps);
    state.SetIterationTime(2.0 * double(size_t(512) << 20) / (gbps * 1e9));
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * (int64_t(1024) << 20));
  state.counters["hbm_gbps"] = best;  // read + write bytes per second, best iteration
  cudaStreamDestroy(stream);
}

void BM_binary_linear_packed(benchmark::State& state, Shape shape, int64_t T) {
  const int64_t out = shape.out, in = shape.in;
  cudaStream_t stream;
  BIMAMBA_CUDA_CHECK(cudaStreamCreate(&stream));
  Context<Cuda> ctx(stream);
  Context<Host> host;
  auto xh = tensor_from<float, 2>(uniform(size_t(T * in), 1, -2, 2), {T, in});
  auto ah = tensor_from<float, 1>(uniform(size_t(in), 2, 0.01f, 1), {in});
  auto bh = tensor_from<float, 1>(uniform(size_t(in), 3, -0.2f, 0.2f), {in});
  auto wh = tensor_from<float, 2>(uniform(size_t(out * in), 4, -1, 1), {out, in});
  auto signs_h = pack_signs<uint32_t>(wh.cview());
  const int64_t copies = copies_for(int64_t(signs_h.storage_bytes()));
  std::vector<BitTensor<uint32_t, Cuda>> signs;
  for (int64_t c = 0; c < copies; ++c) signs.push_back(to<Cuda>(signs_h));
  auto x = to<Cuda>(xh);
  auto alpha = to<Cuda>(ah);
  auto beta = to<Cuda>(bh);
  Tensor<float, 2, Cuda> y({T, out});
  Tensor<float, 2, Host> yh({T, out});
  binary_linear(host, xh, signs_h.cview(), ah, bh, yh);
  binary_linear(ctx, x, signs[0].cview(), alpha, beta, y);  // also warms the workspace and counters
  ctx.synchronize();
  const double err = relative_l2(to_vector(y), to_vector(yh));
  if (!(err < 1e-5)) {
    state.SkipWithError(("packed result differs from the host: relative L2 " + std::to_string(err)).c_str());
    return;
  }
  time_graph(state, stream, [&](int c) { binary_linear(ctx, x, signs[size_t(c % copies)].cview(), alpha, beta, y); });
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(signs_h.storage_bytes()));
  state.counters["weight_copies"] = double(copies);
  state.counters["rel_l2_vs_host"] = err;
  ctx.synchronize();
  cudaStreamDestroy(stream);
}

void BM_cublas_bf16_gemv(benchmark::State& state, Shape shape, int64_t T) {
  cudaStream_t stream;
  BIMAMBA_CUDA_CHECK(cudaStreamCreate(&stream));
  {
    const size_t wbytes = size_t(shape.out * shape.in) * 2;
    CublasBf16Gemv peer(stream, uniform(size_t(shape.out * shape.in), 4, -1, 1), uniform(size_t(T * shape.in), 1, -2, 2),
                        shape.out, shape.in, copies_for(int64_t(wbytes)));
    const double err = peer.validation_error();
    if (!(err < 1e-2)) {
      state.SkipWithError(("cuBLAS bf16 result off: relative L2 " + std::to_string(err)).c_str());
    } else {
      time_graph(state, stream, [&](int c) { peer.call(c); });
      state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(wbytes));
      state.counters["weight_copies"] = double(peer.copies());
    }
  }
  cudaStreamDestroy(stream);
}

int register_all() {
  benchmark::RegisterBenchmark("BM_cuda_copy_bandwidth", BM_cuda_copy_bandwidth)->UseManualTime()->Iterations(20)
      ->Unit(benchmark::kMicrosecond);
  for (const Shape& s : shapes())
    for (int64_t T : {1, 16}) {
      const std::string suffix = std::string(s.model) + "/" + s.proj + "/" + std::to_string(s.out) + "x" +
                                 std::to_string(s.in) + "/T" + std::to_string(T);
      benchmark::RegisterBenchmark(("BM_binary_linear_packed/" + suffix).c_str(), BM_binary_linear_packed, s, T)
          ->UseManualTime()->Iterations(20)->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("BM_cublas_bf16_gemv/" + suffix).c_str(), BM_cublas_bf16_gemv, s, T)
          ->UseManualTime()->Iterations(20)->Unit(benchmark::kMicrosecond);
    }
  return 0;
}
[[maybe_unused]] const int registered = register_all();

}  // namespace
}  // namespace bimamba::bench_cuda

int main(int argc, char** argv) { return bimamba::bench_cuda::run_benchmarks(argc, argv, "bench_cuda_gemv"); }
