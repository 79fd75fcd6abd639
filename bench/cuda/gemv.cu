// Packed FBI GEMV vs cuBLAS bf16 GEMV on the device, and the device copy bandwidth in the same run.
//
// Shapes: Mamba-2 projections with expand 2, N = 128, G = 1, headdim 64 (E = 2 D, H = E / 64):
//   in_proj (2 E + 2 N + H) x D, out_proj D x E, for D = 1536 (780M), 2048 (1.3B), 2560 (2.7B).
// Timing: each benchmark captures kCalls calls into one CUDA graph, replays it between two CUDA events and
// reports the time per call (UseManualTime). Every call uses the next of `copies` weight copies, enough that
// together they exceed kRotateBytes (3x the H200's 60 MB L2), so the weights stream from HBM.
// Validation before timing: the packed result equals the host binary_linear (relative L2 < 1e-5, as in
// tests/ops_cuda) and cuBLAS bf16 equals the fp32 product within bf16 rounding (relative L2 < 1e-2).
// Counters: bytes/s of the weights (and activations), `hbm_gbps` of the copy benchmark (read + write).
#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>

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

// Captures `body(call)` for kCalls calls into a graph, replays it once to warm up, then times replays.
template <class Body>
void time_graph(benchmark::State& state, cudaStream_t stream, Body&& body) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  BIMAMBA_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (int c = 0; c < kCalls; ++c) body(c);
  BIMAMBA_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  BIMAMBA_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  BIMAMBA_CUDA_CHECK(cudaGraphLaunch(exec, stream));
  BIMAMBA_CUDA_CHECK(cudaStreamSynchronize(stream));
  cudaEvent_t start, stop;
  BIMAMBA_CUDA_CHECK(cudaEventCreate(&start));
  BIMAMBA_CUDA_CHECK(cudaEventCreate(&stop));
  for (auto _ : state) {
    BIMAMBA_CUDA_CHECK(cudaEventRecord(start, stream));
    BIMAMBA_CUDA_CHECK(cudaGraphLaunch(exec, stream));
    BIMAMBA_CUDA_CHECK(cudaEventRecord(stop, stream));
    BIMAMBA_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    BIMAMBA_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    state.SetIterationTime(double(ms) * 1e-3 / kCalls);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

void BM_cuda_copy_bandwidth(benchmark::State& state) {
  const size_t bytes = size_t(1) << 30;
  void *a = nullptr, *b = nullptr;
  BIMAMBA_CUDA_CHECK(cudaMalloc(&a, bytes));
  BIMAMBA_CUDA_CHECK(cudaMalloc(&b, bytes));
  BIMAMBA_CUDA_CHECK(cudaMemset(a, 1, bytes));
  cudaStream_t stream;
  BIMAMBA_CUDA_CHECK(cudaStreamCreate(&stream));
  cudaEvent_t start, stop;
  BIMAMBA_CUDA_CHECK(cudaEventCreate(&start));
  BIMAMBA_CUDA_CHECK(cudaEventCreate(&stop));
  BIMAMBA_CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream));
  double best = 0;
  for (auto _ : state) {
    BIMAMBA_CUDA_CHECK(cudaEventRecord(start, stream));
    BIMAMBA_CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream));
    BIMAMBA_CUDA_CHECK(cudaEventRecord(stop, stream));
    BIMAMBA_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    BIMAMBA_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    state.SetIterationTime(double(ms) * 1e-3);
    best = std::max(best, 2.0 * double(bytes) / (double(ms) * 1e-3) / 1e9);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(2 * bytes));
  state.counters["hbm_gbps"] = best;  // read + write bytes per second, best iteration
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(stream);
  cudaFree(a);
  cudaFree(b);
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
  const int64_t out = shape.out, in = shape.in;
  cudaStream_t stream;
  BIMAMBA_CUDA_CHECK(cudaStreamCreate(&stream));
  cublasHandle_t handle;
  BIMAMBA_CUBLAS_CHECK(cublasCreate(&handle));
  BIMAMBA_CUBLAS_CHECK(cublasSetStream(handle, stream));
  const size_t ws_bytes = size_t(32) << 20;  // a fixed cuBLAS workspace: no allocation during capture
  void* ws = nullptr;
  BIMAMBA_CUDA_CHECK(cudaMalloc(&ws, ws_bytes));
  BIMAMBA_CUBLAS_CHECK(cublasSetWorkspace(handle, ws, ws_bytes));
  const auto wf = uniform(size_t(out * in), 4, -1, 1), xf = uniform(size_t(T * in), 1, -2, 2);
  std::vector<__nv_bfloat16> wb(wf.size()), xb(xf.size());
  for (size_t i = 0; i < wf.size(); ++i) wb[i] = __float2bfloat16(wf[i]);
  for (size_t i = 0; i < xf.size(); ++i) xb[i] = __float2bfloat16(xf[i]);
  const size_t wbytes = wb.size() * sizeof(__nv_bfloat16);
  const int64_t copies = copies_for(int64_t(wbytes));
  std::vector<__nv_bfloat16*> W(static_cast<size_t>(copies));
  for (auto& p : W) {
    BIMAMBA_CUDA_CHECK(cudaMalloc(&p, wbytes));
    BIMAMBA_CUDA_CHECK(cudaMemcpy(p, wb.data(), wbytes, cudaMemcpyHostToDevice));
  }
  __nv_bfloat16 *x = nullptr, *y = nullptr;
  BIMAMBA_CUDA_CHECK(cudaMalloc(&x, xb.size() * sizeof(__nv_bfloat16)));
  BIMAMBA_CUDA_CHECK(cudaMalloc(&y, size_t(T * out) * sizeof(__nv_bfloat16)));
  BIMAMBA_CUDA_CHECK(cudaMemcpy(x, xb.data(), xb.size() * sizeof(__nv_bfloat16), cudaMemcpyHostToDevice));
  const float one = 1.0f, zero = 0.0f;
  // Row-major y (T, out) = x W^T is column-major y^T = W x^T: op(A) = W^T of the column-major (in, out) W.
  auto call = [&](int c) {
    BIMAMBA_CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, int(out), int(T), int(in), &one,
                                      W[size_t(c % copies)], CUDA_R_16BF, int(in), x, CUDA_R_16BF, int(in), &zero, y,
                                      CUDA_R_16BF, int(out), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  };
  call(0);
  BIMAMBA_CUDA_CHECK(cudaStreamSynchronize(stream));
  // Validate the first output rows against the fp32 product of the bf16-rounded inputs.
  std::vector<__nv_bfloat16> yb(size_t(T * out));
  BIMAMBA_CUDA_CHECK(cudaMemcpy(yb.data(), y, yb.size() * sizeof(__nv_bfloat16), cudaMemcpyDeviceToHost));
  std::vector<float> got, want;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < std::min<int64_t>(out, 64); ++i) {
      double s = 0;
      for (int64_t j = 0; j < in; ++j)
        s += double(__bfloat162float(wb[size_t(i * in + j)])) * __bfloat162float(xb[size_t(t * in + j)]);
      want.push_back(float(s));
      got.push_back(__bfloat162float(yb[size_t(t * out + i)]));
    }
  const double err = relative_l2(got, want);
  if (!(err < 1e-2)) {
    state.SkipWithError(("cuBLAS bf16 result off: relative L2 " + std::to_string(err)).c_str());
    return;
  }
  time_graph(state, stream, call);
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(wbytes));
  state.counters["weight_copies"] = double(copies);
  for (auto p : W) cudaFree(p);
  cudaFree(x);
  cudaFree(y);
  cudaFree(ws);
  cublasDestroy(handle);
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
