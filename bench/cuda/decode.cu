// End-to-end decode and prefill of a Bi-Mamba model on the device (random weights, packed in_proj /
// out_proj), the issue's "decode tokens/s at batch 1, 16, 64" and "prefill tokens/s".
//
//   BM_cuda_decode_graph/<preset>/B<b>  one DecodeGraph::step per iteration (model/decode_graph.hpp: the ids
//                                       copied to the device, then LanguageModel::step replayed from a CUDA
//                                       graph captured at the second step); tokens/s = b / time per step.
//   BM_cuda_decode_eager/<preset>/B<b>  the same step launched kernel by kernel.
//   BM_cuda_decode_graph_per_block/<preset>/B1  batch 1 without the persistent kernel (FastPath::persistent
//                                       off: three launches a block), the baseline of the same run.
//   BM_cuda_prefill/<preset>/L<l>       forward over (1, l) ids.
//   BM_cuda_grid_barrier/<variant>      the floor of the persistent kernel's phases: one cooperative launch of
//                                       one 16-warp block per SM passing 1000 grid barriers, us per barrier
//                                       (the launch of the same kernel passing none subtracted). "fenced": a
//                                       __threadfence on each side, acquire spin (the kernel's barrier up to
//                                       v2); "acquire_release": the kernel's grid_barrier since v3 (release
//                                       arrival, relaxed spin, one acquire fence).
// The model runs the decode fast path: the fused Mamba-2 step (ops/mamba2_decode.hpp), the bf16 head and,
// at batch 1, every block in one persistent launch (ops/mamba2_decode_layers.hpp).
// Counters: tokens_per_s, and bytes_per_token = the bytes one step must move (packed signs, fp32 alpha / beta,
// the bf16 tied head and the other fp32 parameters read once; the fp32 SSM and conv states read and written
// for every sequence) divided by b: the bandwidth limit is hbm_gbps / bytes_per_token (bench_cuda_gemv).
// Every step feeds the same ids (the speed does not depend on them).
#include <benchmark/benchmark.h>

#include <bimamba/bench/cuda_timing.hpp>
#include <bimamba/cuda.hpp>
#include <bimamba/model/decode_graph.hpp>
#include <bimamba/model/init.hpp>
#include <bimamba/model/presets.hpp>
#include <bimamba/ops/mamba2_decode_layers.hpp>

#include <memory>
#include <string>
#include <vector>

#include "cuda_bench_main.hpp"

namespace bimamba::bench_cuda {
namespace {

struct Setup {
  ModelConfig cfg;
  LanguageModel<Cuda> model;
  static Setup& get(Context<Cuda>& ctx, const std::string& preset) {
    static std::string name;
    static std::unique_ptr<Setup> cached;
    if (!cached || name != preset) {
      cached.reset();
      ModelConfig cfg = model_preset(preset);
      cached.reset(new Setup{cfg, init_random<Cuda>(cfg, 1)});
      cached->model.pack();
      name = preset;
      ctx.synchronize();
    }
    return *cached;
  }
};

// Bytes one decode step moves for a batch of b sequences (see the file comment).
double step_bytes(const ModelConfig& c, int64_t b) {
  const double D = double(c.d_model), E = double(c.expand * c.d_model), N = double(c.d_state), G = double(c.ngroups);
  const double H = E / double(c.headdim), C = E + 2 * G * N, R = 2 * E + 2 * G * N + H;
  const double per_layer_params = (R * D + D * E) / 8.0 + 4.0 * (2 * D + 2 * E)  // signs, alpha / beta
                                  + 4.0 * (C * double(c.d_conv) + C + 3 * H + E + D);  // conv, dt_bias, A_log, D, norms
  const double head = 2.0 * double(c.vocab_size) * D;  // the bf16 copy of the tied embedding
  const double state = 2.0 * 4.0 * (H * double(c.headdim) * N + C * double(c.d_conv)) * double(b);  // read + write
  return double(c.n_layer) * (per_layer_params) + head + double(c.n_layer) * state;
}

void BM_cuda_decode(benchmark::State& st, std::string preset, int64_t batch, bool graph, bool persistent) {
  cudaStream_t stream;
  BIMAMBA_CUDA_CHECK(cudaStreamCreate(&stream));
  {
    Context<Cuda> ctx(stream);
    Setup& s = Setup::get(ctx, preset);
    s.model.set_fast_path({false, true, true, persistent});  // fused step, bf16 head (the defaults of bench decode)
    auto state = s.model.new_state(batch);
    std::vector<int32_t> host_ids(static_cast<size_t>(batch));
    for (int64_t b = 0; b < batch; ++b) host_ids[size_t(b)] = int32_t((b * 7919 + 13) % s.cfg.vocab_size);
    const auto ids = to<Cuda>(tensor_from<int32_t, 1>(host_ids, {batch}));
    Tensor<float, 2, Cuda> logits({batch, s.cfg.vocab_size});
    std::unique_ptr<DecodeGraph> decode;
    if (graph) {
      decode = std::make_unique<DecodeGraph>(s.model, state, stream);
      decode->step(host_ids);  // eager: grows the workspace, creates the handle and counters
      decode->step(host_ids);  // captured, then replayed from here on
    } else {
      s.model.step(ctx, ids, state, logits);  // warm-up: workspace, cuBLAS handle, counters
    }
    ctx.synchronize();
    EventTimer timer(stream);
    constexpr int kSteps = 20;
    for (auto _ : st) {
      timer.start();
      for (int k = 0; k < kSteps; ++k) {
        if (graph) decode->step(host_ids);  // the ids' copy to the device, then the graph
        else s.model.step(ctx, ids, state, logits);
      }
      st.SetIterationTime(timer.stop_ms() * 1e-3 / kSteps);
    }
    st.counters["tokens_per_s"] = benchmark::Counter(double(batch) * double(st.iterations()),
                                                     benchmark::Counter::kIsRate);  // per second of manual time
    st.counters["bytes_per_token"] = step_bytes(s.cfg, batch) / double(batch);
  }
  cudaStreamDestroy(stream);
}

void BM_cuda_prefill(benchmark::State& st, std::string preset, int64_t L) {
  cudaStream_t stream;
  BIMAMBA_CUDA_CHECK(cudaStreamCreate(&stream));
  {
    Context<Cuda> ctx(stream);
    Setup& s = Setup::get(ctx, preset);
    std::vector<int32_t> host_ids(static_cast<size_t>(L));
    for (int64_t l = 0; l < L; ++l) host_ids[size_t(l)] = int32_t((l * 7919 + 13) % s.cfg.vocab_size);
    auto ids = to<Cuda>(tensor_from<int32_t, 2>(host_ids, {1, L}));
    Tensor<float, 3, Cuda> logits({1, L, s.cfg.vocab_size});
    s.model.forward(ctx, ids, logits.view());  // warm-up
    EventTimer timer(stream);
    for (auto _ : st) {
      timer.start();
      s.model.forward(ctx, ids, logits.view());
      st.SetIterationTime(timer.stop_ms() * 1e-3);
    }
    st.counters["tokens_per_s"] = benchmark::Counter(double(L) * double(st.iterations()), benchmark::Counter::kIsRate);
  }
  cudaStreamDestroy(stream);
}

template <int Variant>
__global__ void barrier_loop_kernel(unsigned* counters, int n) {
  unsigned target = 0;
  for (int i = 0; i < n; ++i) {
    if constexpr (Variant == 0) {
      __syncthreads();
      if (threadIdx.x == 0) {
        target += gridDim.x;
        __threadfence();
        cuda::atomic_ref<unsigned, cuda::thread_scope_device> count(*counters);
        count.fetch_add(1u, cuda::memory_order_release);
        while (count.load(cuda::memory_order_acquire) < target) {
        }
        __threadfence();
      }
      __syncthreads();
    } else {
      detail::gpu::grid_barrier(counters, target);
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    if (atomicAdd(counters + 1, 1u) == gridDim.x - 1) counters[0] = 0u, counters[1] = 0u;
  }
}

template <int Variant>
void BM_cuda_grid_barrier(benchmark::State& st) {
  cudaStream_t stream;
  BIMAMBA_CUDA_CHECK(cudaStreamCreate(&stream));
  {
    Context<Cuda> ctx(stream);
    unsigned* counters = ctx.counters(2);
    int sms = 0;
    BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, ctx.device()));
    auto launch = [&](int n) {
      cudaLaunchConfig_t config{};
      config.gridDim = dim3(unsigned(sms));
      config.blockDim = dim3(detail::gpu::kLayersThreads);
      config.stream = stream;
      cudaLaunchAttribute attribute{};
      attribute.id = cudaLaunchAttributeCooperative;
      attribute.val.cooperative = 1;
      config.attrs = &attribute;
      config.numAttrs = 1;
      BIMAMBA_CUDA_CHECK(cudaLaunchKernelEx(&config, barrier_loop_kernel<Variant>, counters, n));
    };
    constexpr int kBarriers = 1000;
    launch(kBarriers);  // warm-up
    ctx.synchronize();
    EventTimer timer(stream);
    for (auto _ : st) {
      timer.start();
      launch(0);
      const double empty_ms = timer.stop_ms();
      timer.start();
      launch(kBarriers);
      const double ms = timer.stop_ms();
      st.SetIterationTime((ms - empty_ms) * 1e-3 / kBarriers);
    }
  }
  cudaStreamDestroy(stream);
}

int register_all() {
  benchmark::RegisterBenchmark("BM_cuda_grid_barrier/fenced", BM_cuda_grid_barrier<0>)
      ->UseManualTime()->Iterations(20)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_cuda_grid_barrier/acquire_release", BM_cuda_grid_barrier<1>)
      ->UseManualTime()->Iterations(20)->Unit(benchmark::kMicrosecond);
  for (const char* preset : {"bimamba-780m", "bimamba-2.7b"}) {
    for (int64_t b : {1, 16, 64})
      for (bool graph : {true, false})
        benchmark::RegisterBenchmark((std::string(graph ? "BM_cuda_decode_graph/" : "BM_cuda_decode_eager/") + preset +
                                      "/B" + std::to_string(b)).c_str(),
                                     BM_cuda_decode, std::string(preset), b, graph, true)
            ->UseManualTime()->Iterations(10)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string("BM_cuda_decode_graph_per_block/") + preset + "/B1").c_str(),
                                 BM_cuda_decode, std::string(preset), int64_t(1), true, false)
        ->UseManualTime()->Iterations(10)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string("BM_cuda_prefill/") + preset + "/L2048").c_str(), BM_cuda_prefill,
                                 std::string(preset), int64_t(2048))
        ->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);
  }
  return 0;
}
[[maybe_unused]] const int registered = register_all();

}  // namespace
}  // namespace bimamba::bench_cuda

int main(int argc, char** argv) { return bimamba::bench_cuda::run_benchmarks(argc, argv, "bench_cuda_decode"); }
