// Training throughput on the device (issue 7): one optimizer step of a Bi-Mamba (latent FBI-Linear
// in_proj / out_proj, fp32 master weights and state) on random tokens, the PyTorch peer's loop (bench/peers/
// torch_bimamba_train.py) written with the library:
//   training_forward -> next-token cross entropy (writes dlogits) -> training_backward
//   -> AdamW::clip_and_step (clip_grad_norm(1.0), then the update)
//
//   BM_cuda_train_step/<preset>/L<l>/B<b>/<gemm precision>   tokens/s = b l / time per step (CUDA events around
//   whole steps); fp32 / tf32 / bf16: Context::set_gemm_precision (core/context.hpp), the rest fp32 always
// Counters: tokens_per_s; mfu = 6 * parameters * tokens/s / 989e12 (the H200's bf16 dense peak, as the issue
// counts it, whatever the GEMM precision); params; peak_gb = the
// high-water mark of the device memory pool the library allocates from (core/cuda_runtime.hpp), model,
// optimizer state, activations and scratch, since before the model was made; forward_ms (forward + loss),
// backward_ms, optimizer_ms (clipping + AdamW) per step from events between the phases. The phases are NVTX
// ranges "forward", "backward", "optimizer" for a profiler (ncu --nvtx --nvtx-include "backward/"); the library's
// per-op ranges nest inside them (docs/cuda.md, "Profiler ranges").
//   BM_cuda_train_ranges/...   the same step with a RangeTimer on the context (core/range_timer.hpp): a counter
//   "<path>_ms" per range ("backward/ssd_scan_ms"), device time per step summed over the layers; the events
//   between the ops make its step time a little longer than BM_cuda_train_step's.
//   BM_cuda_ssd_scan/<direction>/L<l>/B<b>/bf16   one layer's chunked SSD scan alone: forward (ssd_scan with the
//   presets' chunk_size) or backward (ssd_scan_backward), under GemmPrecision::Bf16 (the scan's products in TF32, as
//   in the bf16 training steps), at the 780M layer shape (H 48, P 64, G 1, N 128), on random inputs in the model's
//   ranges (dt in [1e-3, 0.1], A in [-16, -1]); x, B, C are column ranges of one xBC tensor, as the mixer passes
//   them. A RangeTimer gives the op's sub-ranges ("states_ms", "decay_ms", ...: device time per call); gflops
//   counts the backward's ~11 GFLOP per (layer, sequence) of the op's top comment. The outputs are checked finite
//   and nonzero before timing.
#include <benchmark/benchmark.h>

#include <bimamba/bench/cuda_timing.hpp>
#include <bimamba/core/profile_range.hpp>
#include <bimamba/cuda.hpp>
#include <bimamba/model/init.hpp>
#include <bimamba/model/presets.hpp>
#include <bimamba/train/adamw.hpp>
#include <bimamba/train/grad_utils.hpp>
#include <bimamba/train/losses.hpp>
#include <bimamba/train/model_grad.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuda_bench_main.hpp"

namespace bimamba::bench_cuda {
namespace {

void BM_cuda_train_step(benchmark::State& st, std::string preset, int64_t L, int64_t B, GemmPrecision precision,
                        bool time_ranges) {
  cudaStream_t stream;
  BIMAMBA_CUDA_CHECK(cudaStreamCreate(&stream));
  {
    reset_device_pool_peak();
    Context<Cuda> ctx(stream);
    ctx.set_gemm_precision(precision);
    const ModelConfig cfg = model_preset(preset);
    LanguageModel<Cuda> model = init_random<Cuda>(cfg, 1);
    ParamStore<Cuda>& params = model.params();
    AdamWConfig adamw;
    adamw.betas = {0.9f, 0.95f};
    adamw.weight_decay = 0.1f;
    AdamW<Cuda> opt(params, adamw);
    std::mt19937 rng(7);
    std::vector<int32_t> host(size_t(B * (L + 1)));
    for (auto& id : host) id = int32_t(rng() % uint32_t(cfg.vocab_size));
    const auto tokens = to<Cuda>(tensor_from<int32_t, 2>(host, {B, L + 1}));  // (B, L + 1)
    const auto inputs = tokens.cview().narrow(1, 0, L), targets = tokens.cview().narrow(1, 1, L);
    double loss = 0;
    cudaEvent_t marks[4];
    for (auto& e : marks) BIMAMBA_CUDA_CHECK(cudaEventCreate(&e));
    double phase_ms[3] = {0, 0, 0};  // forward + loss, backward, clipping + AdamW (summed over timed steps)
    auto step = [&] {
      BIMAMBA_CUDA_CHECK(cudaEventRecord(marks[0], stream));
      TrainingPass<Cuda> pass;
      {
        ProfileRange<Cuda> range(ctx, "forward");
        pass = training_forward(ctx, model, inputs);
        loss = cross_entropy_loss(ctx, pass.logits(), targets, pass.dlogits());
      }
      BIMAMBA_CUDA_CHECK(cudaEventRecord(marks[1], stream));
      {
        ProfileRange<Cuda> range(ctx, "backward");
        training_backward(ctx, model, pass, GradientMode::Overwrite);
      }
      BIMAMBA_CUDA_CHECK(cudaEventRecord(marks[2], stream));
      {
        ProfileRange<Cuda> range(ctx, "optimizer");
        opt.clip_and_step(ctx, 3e-4f, 1.0);
      }
      BIMAMBA_CUDA_CHECK(cudaEventRecord(marks[3], stream));
      BIMAMBA_CUDA_CHECK(cudaEventSynchronize(marks[3]));
      for (int k = 0; k < 3; ++k) {
        float ms = 0;
        BIMAMBA_CUDA_CHECK(cudaEventElapsedTime(&ms, marks[k], marks[k + 1]));
        phase_ms[k] += double(ms);
      }
    };
    step();  // warm-up: workspace, cuBLAS, counters
    ctx.synchronize();
    for (double& p : phase_ms) p = 0;
    RangeTimer timer;
    if (time_ranges) ctx.set_range_timer(&timer);
    cudaEvent_t start, stop;
    BIMAMBA_CUDA_CHECK(cudaEventCreate(&start));
    BIMAMBA_CUDA_CHECK(cudaEventCreate(&stop));
    for (auto _ : st) {
      BIMAMBA_CUDA_CHECK(cudaEventRecord(start, stream));
      step();
      BIMAMBA_CUDA_CHECK(cudaEventRecord(stop, stream));
      BIMAMBA_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0;
      BIMAMBA_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      st.SetIterationTime(double(ms) * 1e-3);
    }
    if (!std::isfinite(loss)) st.SkipWithError("the loss is not finite");
    const double n_params = double(params.flat_size());
    st.counters["tokens_per_s"] = benchmark::Counter(double(B * L) * double(st.iterations()),
                                                     benchmark::Counter::kIsRate);
    st.counters["mfu"] = benchmark::Counter(6.0 * n_params * double(B * L) * double(st.iterations()) / 989e12,
                                            benchmark::Counter::kIsRate);
    st.counters["params"] = n_params;
    st.counters["peak_gb"] = double(device_pool_peak_bytes()) / 1e9;
    st.counters["loss"] = loss;
    const double n_steps = double(st.iterations());
    st.counters["forward_ms"] = phase_ms[0] / n_steps;
    st.counters["backward_ms"] = phase_ms[1] / n_steps;
    st.counters["optimizer_ms"] = phase_ms[2] / n_steps;
    if (time_ranges) {
      ctx.set_range_timer(nullptr);
      for (const RangeTime& r : timer.summary()) st.counters[r.path + "_ms"] = r.ms / n_steps;
    }
    for (auto& e : marks) cudaEventDestroy(e);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
  cudaStreamDestroy(stream);
}

// Uniform floats in [lo, hi) on the device, shaped `shape` (seeded with `seed`).
template <int R>
Tensor<float, R, Cuda> uniform_device(const Extents<R>& shape, uint64_t seed, float lo, float hi) {
  return to<Cuda>(tensor_from<float, R>(uniform(size_t(product<R>(shape)), seed, lo, hi), shape));
}

// Sum of |v| over a device tensor, on the host (the benchmark's check that an output was written).
template <int R>
double abs_sum(const Tensor<float, R, Cuda>& t) {
  const auto host = to<Host>(t);
  double sum = 0;
  for (int64_t i = 0; i < host.numel(); ++i) sum += std::fabs(double(host.data()[i]));
  return sum;
}

void BM_cuda_ssd_scan(benchmark::State& st, bool backward, int64_t L, int64_t B) {
  constexpr int64_t H = 48, P = 64, G = 1, N = 128, E = H * P, C = E + 2 * G * N;
  constexpr int64_t kChunkSize = 256;  // the presets' chunk_size (the Cuda forward caps its chunk at 128)
  cudaStream_t stream;
  BIMAMBA_CUDA_CHECK(cudaStreamCreate(&stream));
  {
    Context<Cuda> ctx(stream);
    ctx.set_gemm_precision(GemmPrecision::Bf16);  // the training benchmark's: the scan's products in TF32
    // x, B, C as the mixer passes them: column ranges of the conv output xBC (B, L, E + 2 G N).
    const auto xbc = uniform_device<3>({B, L, C}, 11, -1.0f, 1.0f);
    const TensorView<const float, 4, Cuda> x(xbc.data(), {B, L, H, P}, {L * C, C, P, 1});
    const TensorView<const float, 4, Cuda> Bm(xbc.data() + E, {B, L, G, N}, {L * C, C, N, 1});
    const TensorView<const float, 4, Cuda> Cm(xbc.data() + E + G * N, {B, L, G, N}, {L * C, C, N, 1});
    const auto dt = uniform_device<3>({B, L, H}, 12, 1e-3f, 0.1f);
    const auto A = uniform_device<1>({H}, 13, -16.0f, -1.0f);
    const auto D = uniform_device<1>({H}, 14, 0.5f, 1.5f);
    const auto dy = uniform_device<4>({B, L, H, P}, 15, -1.0f, 1.0f);
    Tensor<float, 4, Cuda> y({B, L, H, P}), dx({B, L, H, P}), dB({B, L, G, N}), dC({B, L, G, N});
    Tensor<float, 3, Cuda> ddt({B, L, H});
    Tensor<float, 1, Cuda> dA({H}), dD({H});
    auto call = [&] {
      if (backward)
        ssd_scan_backward(ctx, x, dt.cview(), A.cview(), Bm, Cm, D.cview(), dy.cview(),
                          dx.view(), ddt.view(), dA.view(), dB.view(), dC.view(), dD.view(), GradientMode::Overwrite);
      else
        ssd_scan(ctx, x, dt.cview(), A.cview(), Bm, Cm, D.cview(), kChunkSize, y.view());
    };
    call();  // warm-up (workspace, cuBLAS) and the check
    const double written = backward ? abs_sum(dx) + abs_sum(dB) + abs_sum(dC) + abs_sum(ddt) : abs_sum(y);
    if (std::isfinite(written) && written > 0) {
      RangeTimer ranges;
      ctx.set_range_timer(&ranges);
      EventTimer timer(stream);
      for (auto _ : st) {
        timer.start();
        call();
        st.SetIterationTime(timer.stop_ms() * 1e-3);
      }
      ctx.set_range_timer(nullptr);
      const double calls = double(st.iterations());
      for (const RangeTime& r : ranges.summary()) st.counters[r.path + "_ms"] = r.ms / calls;
      if (backward)
        st.counters["gflops"] = benchmark::Counter(11e9 * double(B) * double(L) / 2048.0 * calls,
                                                   benchmark::Counter::kIsRate);
    } else {
      st.SkipWithError("the op's outputs are not finite, or all zero");
    }
  }
  cudaStreamDestroy(stream);
}

int register_all() {
  struct Shape {
    int64_t L, B;
    GemmPrecision precision;
  };
  const Shape shapes[] = {{512, 1, GemmPrecision::Fp32},  {2048, 1, GemmPrecision::Fp32},
                          {2048, 1, GemmPrecision::Tf32}, {2048, 1, GemmPrecision::Bf16},
                          {2048, 2, GemmPrecision::Bf16}, {2048, 4, GemmPrecision::Bf16}};
  auto add = [](const char* name, const Shape& s, bool time_ranges) {
    benchmark::RegisterBenchmark((std::string(name) + "/bimamba-780m/L" + std::to_string(s.L) + "/B" +
                                  std::to_string(s.B) + "/" + to_string(s.precision))
                                     .c_str(),
                                 BM_cuda_train_step, std::string("bimamba-780m"), s.L, s.B, s.precision, time_ranges)
        ->UseManualTime()->Iterations(2)->Unit(benchmark::kMillisecond);
  };
  for (const Shape& s : shapes) add("BM_cuda_train_step", s, false);
  for (const Shape& s : {shapes[3], shapes[5]}) add("BM_cuda_train_ranges", s, true);
  for (const bool backward : {false, true})
    for (const int64_t B : {1, 4})
      benchmark::RegisterBenchmark((std::string("BM_cuda_ssd_scan/") + (backward ? "backward" : "forward") +
                                    "/L2048/B" + std::to_string(B) + "/bf16")
                                       .c_str(),
                                   BM_cuda_ssd_scan, backward, int64_t(2048), B)
          ->UseManualTime()->Iterations(10)->Unit(benchmark::kMillisecond);
  return 0;
}
[[maybe_unused]] const int registered = register_all();

}  // namespace
}  // namespace bimamba::bench_cuda

int main(int argc, char** argv) { return bimamba::bench_cuda::run_benchmarks(argc, argv, "bench_cuda_train"); }
