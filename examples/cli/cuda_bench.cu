// `bimamba bench decode / gemv --device cuda`: the benchmarks of cmd_bench_decode.cpp and cmd_bench_gemv.cpp on
// the first GPU, timed with CUDA events (bimamba/bench/cuda_timing.hpp), against the device's copy bandwidth.
#include <bimamba/bench/cublas_bf16_gemv.hpp>
#include <bimamba/bench/cuda_timing.hpp>
#include <bimamba/cuda.hpp>
#include <bimamba/model/decode_graph.hpp>
#include <bimamba/ops/binary_linear.hpp>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cmd_bench_support.hpp"
#include "device.hpp"
#include "model_io.hpp"

namespace bimamba::cli {
namespace {

// A created stream (graphs cannot capture the legacy default stream), destroyed at scope exit.
struct Stream {
  cudaStream_t handle = nullptr;
  Stream() { BIMAMBA_CUDA_CHECK(cudaStreamCreate(&handle)); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() { (void)cudaStreamDestroy(handle); }
};

std::string gpu_name() {
  int device = 0;
  BIMAMBA_CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  BIMAMBA_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

int64_t l2_bytes() {
  int device = 0, bytes = 0;
  BIMAMBA_CUDA_CHECK(cudaGetDevice(&device));
  BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrL2CacheSize, device));
  return bytes;
}

}  // namespace

int run_bench_decode_cuda(const Args& args) {
  const DecodeSizes sizes = decode_sizes(args);
  const auto [B, P, N] = sizes;
  announce_gpu("bench decode: running");
  Stream stream;
  Context<Cuda> ctx(stream.handle);
  const double hbm_gbps = device_copy_gbps(stream.handle);

  LanguageModel<Cuda> model = open_model(ctx, args.str("model"), false);
  if (model.config().binary && !model.packed()) model.pack();
  const bool exact = args.has("exact");
  const LanguageModel<Cuda>::FastPath fast{false, !exact, !exact, !exact && !args.has("per-block")};  // no tiled signs on Cuda
  model.set_fast_path(fast);
  const int64_t V = model.vocab_size();
  const auto prompt = to<Cuda>(tensor_from<int32_t, 2>(random_ids(B * P, V, uint32_t(args.integer("seed"))), {B, P}));
  InferenceState<Cuda> state = model.new_state(B);
  Tensor<float, 2, Cuda> prefill_logits({B, V});  // (B, V)
  EventTimer timer(stream.handle);
  timer.start();
  model.forward_last(ctx, prompt.cview(), prefill_logits.view(), &state);  // generation needs the last position only
  const double prefill_ms = timer.stop_ms();

  Tensor<float, 2, Host> logits = to_host(prefill_logits);  // (B, V)
  std::vector<int32_t> next(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) next[size_t(b)] = argmax(logits.data() + b * V, V);
  DecodeGraph graph(model, state, stream.handle);
  constexpr int kWarmup = 2;  // the eager step, then the captured one
  std::vector<double> step_ms;
  double decode_s = 0;
  for (int64_t t = 0; t < N + kWarmup; ++t) {
    const auto t0 = Clock::now();
    const View<const float, 2, Cuda> out = graph.step(next);
    BIMAMBA_CUDA_CHECK(cudaMemcpyAsync(logits.data(), out.data(), size_t(logits.bytes()), cudaMemcpyDeviceToHost,
                                       stream.handle));
    BIMAMBA_CUDA_CHECK(cudaStreamSynchronize(stream.handle));
    for (int64_t b = 0; b < B; ++b) next[size_t(b)] = argmax(logits.data() + b * V, V);
    const double s = seconds_since(t0);
    if (t >= kWarmup) decode_s += s, step_ms.push_back(1e3 * s);
  }
  const double bytes_per_token = double(step_bytes(model, B, false, fast.bf16_head)) / double(B);
  nlohmann::ordered_json j = decode_report(args, model, sizes, prefill_ms * 1e-3, decode_s, step_ms, bytes_per_token,
                                           "hbm_gbps", hbm_gbps);
  j["device_bytes_in_use"] = device_bytes_in_use();
  j["device"] = "cuda";
  j["gpu"] = gpu_name();
  j["cuda_graph"] = graph.captured();
  j["fast_path"] = {{"fused_step", fast.fused_step}, {"bf16_head", fast.bf16_head}, {"persistent", fast.persistent}};
  std::cout << j.dump() << std::endl;
  return 0;
}

int run_bench_gemv_cuda(const Args& args) {
  const int64_t M = args.integer("rows"), K = args.integer("cols");
  const int reps = int(args.integer("reps"));
  announce_gpu("bench gemv: running");
  Stream stream;
  Context<Cuda> ctx(stream.handle);
  Context<Host> host;

  // The layer of the host benchmark: latent W ~ N(0, 1), alpha ~ 0.02 U(0.5, 1.5), beta ~ 0.002 N(0, 1).
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.5f, 1.5f);
  Tensor<float, 2, Host> latent({M, K}), x({1, K}), y_host({1, M});  // (M, K), (1, K), (1, M)
  Tensor<float, 1, Host> alpha({K}), beta({K});                       // (K)
  for (int64_t i = 0; i < M * K; ++i) latent.data()[i] = normal(rng);
  for (int64_t k = 0; k < K; ++k) x(0, k) = normal(rng), alpha(k) = 0.02f * uniform(rng), beta(k) = 0.002f * normal(rng);
  const BitTensor<uint32_t, Host> signs_host = pack_signs<uint32_t>(latent.cview());
  std::vector<float> w_eff(size_t(M * K));  // the same layer in full precision, for the peer: alpha s(W) + beta
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k)
      w_eff[size_t(i * K + k)] = alpha(k) * (latent(i, k) >= 0 ? 1.0f : -1.0f) + beta(k);
  latent = Tensor<float, 2, Host>();

  const int64_t rotate = 3 * l2_bytes(), packed_bytes = int64_t(signs_host.storage_bytes()), bf16_bytes = 2 * M * K;
  const int64_t packed_copies = std::max<int64_t>(2, (rotate + packed_bytes - 1) / packed_bytes);
  const int64_t bf16_copies = std::max<int64_t>(2, (rotate + bf16_bytes - 1) / bf16_bytes);
  std::vector<BitTensor<uint32_t, Cuda>> signs;
  for (int64_t c = 0; c < packed_copies; ++c) signs.push_back(to<Cuda>(signs_host));
  const Tensor<float, 2, Cuda> x_d = to<Cuda>(x);                                   // (1, K)
  const Tensor<float, 1, Cuda> alpha_d = to<Cuda>(alpha), beta_d = to<Cuda>(beta);  // (K)
  Tensor<float, 2, Cuda> y({1, M});  // (1, M)

  binary_linear(host, x.cview(), signs_host.cview(), alpha.cview(), beta.cview(), y_host.view());
  binary_linear(ctx, x_d.cview(), signs[0].cview(), alpha_d.cview(), beta_d.cview(), y.view());  // warms the workspace
  // Device and host kernels sum the same fp32 terms in different orders: ~3e-7 measured; 1e-5 as tests/ops_cuda.
  const double err = relative_l2(to_vector(y), to_vector(y_host));
  if (!(err < 1e-5)) BIMAMBA_FAIL("bench gemv: the device result differs from the host kernel by ", err, " (relative L2)");
  CublasBf16Gemv peer(stream.handle, w_eff, to_vector(x), M, K, bf16_copies);
  w_eff = {};
  const double peer_err = peer.validation_error();
  // bf16 inputs and outputs, fp32 accumulation: ~3e-3; 1e-2 only catches a wrong call, not rounding.
  if (!(peer_err < 1e-2)) BIMAMBA_FAIL("bench gemv: cuBLAS bf16 differs from the double product by ", peer_err);

  const int calls = int(std::max<int64_t>(200, std::max(packed_copies, bf16_copies)));
  CapturedCalls packed_calls(stream.handle, calls, [&](int c) {
    binary_linear(ctx, x_d.cview(), signs[size_t(c % packed_copies)].cview(), alpha_d.cview(), beta_d.cview(), y.view());
  });
  CapturedCalls peer_calls(stream.handle, calls, [&](int c) { peer.call(c); });
  std::vector<double> packed_us, peer_us;
  for (int r = 0; r < reps; ++r) {
    packed_us.push_back(1e3 * packed_calls.replay_ms() / calls);
    peer_us.push_back(1e3 * peer_calls.replay_ms() / calls);
  }
  const Spread packed = spread(packed_us), cublas = spread(peer_us);
  const double hbm_gbps = device_copy_gbps(stream.handle);
  const double packed_gbps = double(packed_bytes) / packed.median / 1e3;

  nlohmann::ordered_json j;
  j["packed_us"] = packed.median;
  j["cublas_bf16_us"] = cublas.median;
  j["speedup_over_cublas_bf16"] = cublas.median / packed.median;
  j["packed_gbps"] = packed_gbps;
  j["hbm_gbps"] = hbm_gbps;
  j["fraction_of_hbm"] = packed_gbps / hbm_gbps;
  j["packed_us_min_max"] = {packed.min, packed.max};
  j["cublas_bf16_us_min_max"] = {cublas.min, cublas.max};
  j["relative_l2_vs_host"] = err;
  j["cublas_relative_l2"] = peer_err;
  j["rows"] = M;
  j["cols"] = K;
  j["packed_bytes"] = packed_bytes;
  j["weight_copies"] = {packed_copies, bf16_copies};
  j["calls_per_graph"] = calls;
  j["device"] = "cuda";
  j["gpu"] = gpu_name();
  std::cout << j.dump() << std::endl;
  return 0;
}

}  // namespace bimamba::cli
