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
//   BM_cuda_decode_layers/<preset>      the persistent kernel alone (ops/mamba2_decode_layers.hpp) on the
//                                       preset's blocks (random packed weights, batch 1): us per token, and
//                                       ns_<phase>: from one more launch with DecodeLayersPlan::stamps set, the
//                                       mean over layers and blocks of each phase's time (DecodePhase in
//                                       ops/cuda/mamba2_decode_layers.cuh; they add up to ns_layer).
//   BM_cuda_grid_barrier/<variant>      the floor of the persistent kernel's phases: one cooperative launch of
//                                       one 16-warp block per SM passing 1000 grid barriers, us per barrier
//                                       (the launch of the same kernel passing none subtracted). "fenced": a
//                                       __threadfence on each side, acquire spin (the kernel's barrier up to
//                                       v2); "acquire_release": the kernel's grid barrier v3 - v7 (release
//                                       arrival, relaxed spin, one acquire fence); "flags": one flag per block
//                                       (thread 0 stores the barrier's epoch with release, warp 0 polls all
//                                       flags, relaxed, then one acquire fence): no atomics on one word.
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

#include <cmath>
#include <memory>
#include <random>
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

// The preset's blocks with random weights (packed signs uniform over +-1), built on the host and copied over.
struct RandomBlocks {
  struct Block {
    Tensor<float, 1, Cuda> norm_w, in_alpha, in_beta, conv_b, dt_bias, a_log, d, gn_w, out_alpha, out_beta;
    Tensor<float, 2, Cuda> conv_w;
    BitTensor<uint32_t, Cuda> in_bits, out_bits;
    Tensor<float, 3, Cuda> conv;
    Tensor<float, 4, Cuda> ssm;
  };
  std::vector<Block> blocks;
  std::vector<Mamba2BlockDecodeWeights<Cuda>> weights;

  explicit RandomBlocks(const ModelConfig& c) {
    const int64_t D = c.d_model, E = c.expand * D, P = c.headdim, H = E / P, N = c.d_state, K = c.d_conv;
    const int64_t C = E + 2 * N, R = E + C + H;
    BIMAMBA_CHECK(c.ngroups == 1 && D % 32 == 0 && E % 32 == 0, "RandomBlocks: one group, D and E multiples of 32");
    uint64_t seed = 1;
    auto vec = [&seed](int64_t n, float lo, float hi) {
      return to<Cuda>(tensor_from<float, 1>(uniform(size_t(n), seed++, lo, hi), {n}));
    };
    auto bits = [&seed](int64_t rows, int64_t cols) {
      BitTensor<uint32_t, Cuda> t(rows, cols);
      std::mt19937_64 rng(seed++);
      std::vector<uint32_t> words(t.storage_bytes() / 4);
      for (auto& w : words) w = uint32_t(rng());
      BIMAMBA_CUDA_CHECK(cudaMemcpy(t.data(), words.data(), t.storage_bytes(), cudaMemcpyHostToDevice));
      return t;
    };
    const float in_scale = 1.0f / std::sqrt(float(D)), out_scale = 1.0f / std::sqrt(float(E));
    for (int64_t l = 0; l < c.n_layer; ++l) {
      blocks.push_back(Block{vec(D, 0.5f, 1.5f), vec(D, 0.5f * in_scale, 1.5f * in_scale),
                             vec(D, -0.2f * in_scale, 0.2f * in_scale), vec(C, -1.0f, 1.0f), vec(H, -3.0f, 0.0f),
                             vec(H, 0.0f, 2.0f), vec(H, 0.5f, 1.5f), vec(E, 0.5f, 1.5f),
                             vec(E, 0.5f * out_scale, 1.5f * out_scale), vec(E, -0.2f * out_scale, 0.2f * out_scale),
                             to<Cuda>(tensor_from<float, 2>(uniform(size_t(C * K), seed++, -0.5f, 0.5f), {C, K})),
                             bits(R, D), bits(D, E),
                             to<Cuda>(tensor_from<float, 3>(uniform(size_t(C * K), seed++, -1.0f, 1.0f), {1, C, K})),
                             to<Cuda>(tensor_from<float, 4>(uniform(size_t(H * P * N), seed++, -1.0f, 1.0f),
                                                            {1, H, P, N}))});
    }
    for (auto& b : blocks) {
      const Mamba2DecodeWeights<Cuda> step{b.conv_w.cview(), b.conv_b.cview(), b.dt_bias.cview(), b.a_log.cview(),
                                           b.d.cview(), b.gn_w.cview(), H, P, 1, N, 1e-5f, 0.0f, 0.5f};
      weights.push_back({b.norm_w.cview(), 1e-5f, b.in_bits.cview(), b.in_alpha.cview(), b.in_beta.cview(), step,
                         b.out_bits.cview(), b.out_alpha.cview(), b.out_beta.cview(), b.conv.view(), b.ssm.view()});
    }
  }
};

void BM_cuda_decode_layers(benchmark::State& st, std::string preset) {
  cudaStream_t stream;
  BIMAMBA_CUDA_CHECK(cudaStreamCreate(&stream));
  {
    Context<Cuda> ctx(stream);
    const ModelConfig cfg = model_preset(preset);
    RandomBlocks r(cfg);
    auto residual = to<Cuda>(tensor_from<float, 2>(uniform(size_t(cfg.d_model), 7, -1.0f, 1.0f), {1, cfg.d_model}));
    detail::DecodeLayersPlan plan = detail::decode_layers_plan(ctx, r.weights, residual.cview(), 0);
    if (plan.blocks == 0) {
      st.SkipWithError("the persistent kernel does not apply");
      cudaStreamDestroy(stream);
      return;
    }
    detail::decode_layers_persistent(ctx, r.weights, residual.view(), plan);  // warm-up
    ctx.synchronize();
    EventTimer timer(stream);
    constexpr int kSteps = 20;
    for (auto _ : st) {
      timer.start();
      for (int k = 0; k < kSteps; ++k) detail::decode_layers_persistent(ctx, r.weights, residual.view(), plan);
      st.SetIterationTime(timer.stop_ms() * 1e-3 / kSteps);
    }
    const auto h = to<Host>(residual);
    for (int64_t i = 0; i < cfg.d_model; ++i)
      if (!std::isfinite(h.data()[i])) st.SkipWithError("the residual stream is not finite");

    // One more launch with stamps: each phase's time, averaged over layers and blocks.
    const int64_t rows = 1 + cfg.n_layer * detail::gpu::kDecodePhases;
    Tensor<unsigned long long, 2, Cuda> stamps({rows, plan.blocks});
    plan.stamps = stamps.data();
    detail::decode_layers_persistent(ctx, r.weights, residual.view(), plan);
    const auto t = to<Host>(stamps);
    std::vector<double> phase_ns(detail::gpu::kDecodePhases, 0.0);
    for (int64_t row = 1; row < rows; ++row)
      for (int64_t b = 0; b < plan.blocks; ++b)
        phase_ns[size_t((row - 1) % detail::gpu::kDecodePhases)] +=
            double(t.data()[row * plan.blocks + b] - t.data()[(row - 1) * plan.blocks + b]);
    double layer_ns = 0.0;
    for (int p = 0; p < detail::gpu::kDecodePhases; ++p) {
      const double ns = phase_ns[size_t(p)] / double(cfg.n_layer * plan.blocks);
      st.counters[std::string("ns_") + detail::gpu::kDecodePhaseNames[p]] = ns;
      layer_ns += ns;
    }
    st.counters["ns_layer"] = layer_ns;
    st.counters["blocks"] = plan.blocks;
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
    } else if constexpr (Variant == 1) {  // release arrival, relaxed spin, one acquire fence
      __syncthreads();
      if (threadIdx.x == 0) {
        target += gridDim.x;
        cuda::atomic_ref<unsigned, cuda::thread_scope_device> count(*counters);
        count.fetch_add(1u, cuda::memory_order_release);
        while (count.load(cuda::memory_order_relaxed) < target) {
        }
        cuda::atomic_thread_fence(cuda::memory_order_acquire, cuda::thread_scope_device);
      }
      __syncthreads();
    } else {  // one flag per block, no atomics: thread 0 stores the epoch (release), warp 0 polls every flag
      __syncthreads();
      unsigned* flags = counters + 2;
      const unsigned epoch = unsigned(i + 1);
      if (threadIdx.x < 32) {
        if (threadIdx.x == 0)
          cuda::atomic_ref<unsigned, cuda::thread_scope_device>(flags[blockIdx.x]).store(epoch, cuda::memory_order_release);
        bool all = false;
        while (!all) {
          bool mine = true;
          for (unsigned j = threadIdx.x; j < gridDim.x; j += 32)
            mine = mine && cuda::atomic_ref<unsigned, cuda::thread_scope_device>(flags[j]).load(
                               cuda::memory_order_relaxed) >= epoch;
          all = __all_sync(0xffffffffu, mine);
        }
        cuda::atomic_thread_fence(cuda::memory_order_acquire, cuda::thread_scope_device);
      }
      __syncthreads();
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    if (atomicAdd(counters + 1, 1u) == gridDim.x - 1) {
      counters[0] = 0u, counters[1] = 0u;
      for (unsigned j = 0; j < gridDim.x; ++j) counters[2 + j] = 0u;
    }
  }
}

template <int Variant>
void BM_cuda_grid_barrier(benchmark::State& st) {
  cudaStream_t stream;
  BIMAMBA_CUDA_CHECK(cudaStreamCreate(&stream));
  {
    Context<Cuda> ctx(stream);
    int sms = 0;
    BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, ctx.device()));
    unsigned* counters = ctx.counters(2 + size_t(sms));
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
  benchmark::RegisterBenchmark("BM_cuda_grid_barrier/flags", BM_cuda_grid_barrier<2>)
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
    benchmark::RegisterBenchmark((std::string("BM_cuda_decode_layers/") + preset).c_str(), BM_cuda_decode_layers,
                                 std::string(preset))
        ->UseManualTime()->Iterations(20)->Unit(benchmark::kMicrosecond);
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
