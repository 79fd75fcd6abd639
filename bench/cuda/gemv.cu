// Packed FBI GEMV vs cuBLAS bf16 GEMV on the device, and the device copy bandwidth in the same run.
//
// Shapes: Mamba-2 projections with expand 2, N = 128, G = 1, headdim 64 (E = 2 D, H = E / 64):
//   in_proj (2 E + 2 N + H) x D, out_proj D x E, for D = 1536 (780M), 2048 (1.3B), 2560 (2.7B).
// Timing: each benchmark captures kCalls calls into one CUDA graph, replays it between two CUDA events and
// reports the time per call (UseManualTime; bimamba/bench/cuda_timing.hpp). The peer: bench/cublas_bf16_gemv.hpp.
// Every call uses the next of `copies` weight copies, enough that together they exceed kRotateBytes (3x the
// H200's 60 MB L2), so the weights stream from HBM.
// Validation before timing: the packed result equals the host binary_linear (relative L2 < 1e-5, as in
// tests/ops_cuda) and cuBLAS bf16 equals the fp32 product within bf16 rounding (relative L2 < 1e-2).
// Counters: bytes/s of the weights (and activations), `hbm_gbps` of the copy benchmark (read + write).
// Floors and shapes of the decode kernel (binary_gemv.cuh), 2.7B shapes, T = 1: BM_graph_node_floor (an empty
// kernel per captured call), BM_stream_signs_floor (only the sign words streamed through the load/store
// units), BM_binary_gemv_config (the kernel at other block shapes than config_gemv's).
#include <benchmark/benchmark.h>
#include <bimamba/bench/cublas_bf16_gemv.hpp>
#include <bimamba/bench/cuda_timing.hpp>
#include <bimamba/cuda.hpp>
#include <bimamba/ops/binary_linear.hpp>
#include <bimamba/ops/cuda/binary_gemv.cuh>

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

// One packed problem of `shape` at T tokens: host inputs and the host result, the same on the device, and
// enough copies of the signs that a call rotating through them streams from HBM.
struct PackedProblem {
  Tensor<float, 2, Host> xh;
  Tensor<float, 1, Host> ah, bh;
  BitTensor<uint32_t, Host> signs_h;
  Tensor<float, 2, Host> yh;
  Tensor<float, 2, Cuda> x, y;
  Tensor<float, 1, Cuda> alpha, beta;
  std::vector<BitTensor<uint32_t, Cuda>> signs;

  PackedProblem(const Shape& shape, int64_t T)
      : xh(tensor_from<float, 2>(uniform(size_t(T * shape.in), 1, -2, 2), {T, shape.in})),
        ah(tensor_from<float, 1>(uniform(size_t(shape.in), 2, 0.01f, 1), {shape.in})),
        bh(tensor_from<float, 1>(uniform(size_t(shape.in), 3, -0.2f, 0.2f), {shape.in})),
        signs_h(pack_signs<uint32_t>(
            tensor_from<float, 2>(uniform(size_t(shape.out * shape.in), 4, -1, 1), {shape.out, shape.in}).cview())),
        yh({T, shape.out}), x(to<Cuda>(xh)), y({T, shape.out}), alpha(to<Cuda>(ah)), beta(to<Cuda>(bh)) {
    Context<Host> host;
    binary_linear(host, xh, signs_h.cview(), ah, bh, yh);
    for (int64_t c = 0; c < copies_for(int64_t(signs_h.storage_bytes())); ++c) signs.push_back(to<Cuda>(signs_h));
  }
  BitTensorView<const uint32_t, Cuda> signs_for(int call) const { return signs[size_t(call) % signs.size()].cview(); }
  int64_t sign_bytes() const { return int64_t(signs_h.storage_bytes()); }
};

// Runs call(0), checks y against the host (relative L2 < 1e-5), then times `call` in a graph.
template <class Call>
void validate_and_time(benchmark::State& state, cudaStream_t stream, Context<Cuda>& ctx, PackedProblem& p, Call&& call,
                       const char* what) {
  call(0);  // also warms the workspace and counters
  ctx.synchronize();
  const double err = relative_l2(to_vector(p.y), to_vector(p.yh));
  if (!(err < 1e-5)) {
    state.SkipWithError((std::string(what) + " differs from the host: relative L2 " + std::to_string(err)).c_str());
    return;
  }
  time_graph(state, stream, call);
  state.SetBytesProcessed(int64_t(state.iterations()) * p.sign_bytes());
  state.counters["weight_copies"] = double(p.signs.size());
  state.counters["rel_l2_vs_host"] = err;
  ctx.synchronize();
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
  cudaStream_t stream;
  BIMAMBA_CUDA_CHECK(cudaStreamCreate(&stream));
  {
    Context<Cuda> ctx(stream);
    PackedProblem p(shape, T);
    validate_and_time(state, stream, ctx, p,
                      [&](int c) { binary_linear(ctx, p.x, p.signs_for(c), p.alpha, p.beta, p.y); }, "packed result");
  }
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

// The fixed cost of one captured call: an empty kernel of the decode kernel's grid, launched as binary_gemv
// launches (programmatic dependent launch on sm_90) or plainly. No packed GEMV call can be faster.
__global__ void empty_kernel() {
  detail::gpu::wait_for_previous_kernel();
  detail::gpu::allow_next_kernel();
}

void BM_graph_node_floor(benchmark::State& state, bool dependent) {
  cudaStream_t stream;
  BIMAMBA_CUDA_CHECK(cudaStreamCreate(&stream));
  int major = 0;
  BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0));
  const dim3 grid(661), block(160);  // the 2.7B in_proj decode grid
  time_graph(state, stream, [&](int) {
    if (dependent) detail::gpu::launch_dependent(stream, major, empty_kernel, grid, block, 0);
    else empty_kernel<<<grid, block, 0, stream>>>();
  });
  cudaStreamDestroy(stream);
}

// The bandwidth floor of one call through the load/store units: the same bytes of packed signs, every word
// requested at once before the wait by 16-row blocks of config_gemv's ksplit warps, XOR-reduced to one word
// per block. (The decode kernel itself moves them with one bulk copy per block on sm_90.)
__global__ void stream_signs_kernel(detail::gpu::SignRows s, int iters_per_warp, uint32_t* out) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, tig = lane & 3;
  const int64_t r0 = int64_t(blockIdx.x) * 16;
  uint4 u[4], v[4];
#pragma unroll
  for (int d = 0; d < 4; ++d) {
    const int64_t w = int64_t(warp * iters_per_warp + d) * 16 + tig * 4;
    const bool live = d < iters_per_warp;
    u[d] = live ? detail::gpu::load_sign_words(s, r0 + g, w) : make_uint4(0, 0, 0, 0);
    v[d] = live ? detail::gpu::load_sign_words(s, r0 + g + 8, w) : make_uint4(0, 0, 0, 0);
  }
  detail::gpu::wait_for_previous_kernel();
  detail::gpu::allow_next_kernel();
  uint32_t x = 0;
#pragma unroll
  for (int d = 0; d < 4; ++d) x ^= u[d].x ^ u[d].y ^ u[d].z ^ u[d].w ^ v[d].x ^ v[d].y ^ v[d].z ^ v[d].w;
  x = __reduce_xor_sync(0xffffffffu, x);
  if (lane == 0) atomicXor(out + blockIdx.x, x);
}

void BM_stream_signs_floor(benchmark::State& state, Shape shape) {
  cudaStream_t stream;
  BIMAMBA_CUDA_CHECK(cudaStreamCreate(&stream));
  {
    int major = 0, sms = 0, smem_optin = 0;
    BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0));
    BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
    const PackedProblem p(shape, 1);
    const int64_t wpr = p.signs_h.words_per_row();
    const int iters = int((wpr * 32 + 511) / 512);
    const auto config =
        detail::gpu::config_gemv(1, shape.out, wpr, iters, sms, smem_optin - detail::gpu::kGemvStaticSmem);
    Tensor<uint32_t, 1, Cuda> out({(shape.out + 15) / 16});
    time_graph(state, stream, [&](int c) {
      const auto s = p.signs_for(c);
      const detail::gpu::SignRows rows{s.data(), s.rows(), wpr, wpr % 4 == 0};
      detail::gpu::launch_dependent(stream, major, stream_signs_kernel, dim3(unsigned((shape.out + 15) / 16)),
                                    dim3(unsigned(32 * config.ksplit)), 0, rows, config.ips, out.data());
    });
    state.SetBytesProcessed(int64_t(state.iterations()) * p.sign_bytes());
  }
  cudaStreamDestroy(stream);
}

// The decode kernel (binary_gemv) at one block shape, T = 1: what config_gemv's choice is measured against.
void BM_binary_gemv_config(benchmark::State& state, Shape shape, detail::gpu::GemvConfig config) {
  cudaStream_t stream;
  BIMAMBA_CUDA_CHECK(cudaStreamCreate(&stream));
  {
    Context<Cuda> ctx(stream);
    const int major = detail::gpu::compute_major(ctx.device());
    PackedProblem p(shape, 1);
    validate_and_time(
        state, stream, ctx, p,
        [&](int c) { detail::binary_gemv(ctx, major, p.x, p.signs_for(c), p.alpha, p.beta, p.y, config); },
        "decode kernel");
  }
  cudaStreamDestroy(stream);
}

int register_all() {
  benchmark::RegisterBenchmark("BM_graph_node_floor/dependent", BM_graph_node_floor, true)->UseManualTime()
      ->Iterations(20)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_graph_node_floor/plain", BM_graph_node_floor, false)->UseManualTime()
      ->Iterations(20)->Unit(benchmark::kMicrosecond);
  for (const Shape& s : shapes()) {
    if (std::string(s.model) != "2.7B") continue;
    const std::string suffix = std::string(s.model) + "/" + s.proj;
    benchmark::RegisterBenchmark(("BM_stream_signs_floor/" + suffix).c_str(), BM_stream_signs_floor, s)
        ->UseManualTime()->Iterations(20)->Unit(benchmark::kMicrosecond);
    const int iters = int((s.in + 511) / 512);
    for (int ips : {1, 2})
      for (int mtiles : {1, 2, 3, 4}) {
        const int ksplit = (iters + ips - 1) / ips;
        if (ksplit * mtiles > detail::gpu::kGemvMaxWarps) continue;
        const detail::gpu::GemvConfig c{ips, ksplit, mtiles};
        benchmark::RegisterBenchmark(("BM_binary_gemv_config/" + suffix + "/ips" + std::to_string(ips) + "/ksplit" +
                                      std::to_string(ksplit) + "/mtiles" + std::to_string(mtiles)).c_str(),
                                     BM_binary_gemv_config, s, c)
            ->UseManualTime()->Iterations(20)->Unit(benchmark::kMicrosecond);
      }
  }
  benchmark::RegisterBenchmark("BM_cuda_copy_bandwidth", BM_cuda_copy_bandwidth)->UseManualTime()->Iterations(20)
      ->Unit(benchmark::kMicrosecond);
  for (const Shape& s : shapes())
    for (int64_t T : {1, 4, 16}) {
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
