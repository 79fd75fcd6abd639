// bimamba bench gemv --rows M --cols K [--threads T] [--reps R] --json
// One token through an (M x K) FBI-Linear layer, y = S (alpha ⊙ x) + (beta · x) 1, on the packed signs
// (TiledSigns, the decode kernel) and as Eigen fp32 (`linear` on W_eff expanded to float), each cycling through
// enough copies of its weights to cover 3x the last-level cache, so that every call streams its weights from
// DRAM. Prints JSON: packed_us and eigen_fp32_us (median over R rounds of one call per copy), packed_gbps
// (packed bytes / packed_us), dram_read_gbps (measured in the same command, same threads), their ratio, the
// speed-up over Eigen, and the min / max of the rounds. The packed result is checked against the fp32 one first.
//
// --device cuda (cuda_bench.cu): the device binary_linear on the packed signs against the cuBLAS bf16 GEMV of
// the same layer (bench/cublas_bf16_gemv.hpp), each as calls captured in one CUDA graph, every call on the next
// of enough weight copies to cover 3x the L2 cache: packed_us, cublas_bf16_us, speedup_over_cublas_bf16,
// packed_gbps, hbm_gbps (device-to-device copy, read + write) and their ratio. Checked first: the packed
// result against the host kernel (relative L2 < 1e-5), cuBLAS against the double product (< 1e-2).
#include <bimamba/ops/binary_linear.hpp>
#include <bimamba/ops/fbi_weight.hpp>
#include <bimamba/ops/linear.hpp>
#include <bimamba/tensor/copy.hpp>
#include <bimamba/tensor/tensor.hpp>
#include <cmath>
#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "args.hpp"
#include "cmd_bench.hpp"
#include "cmd_bench_support.hpp"
#include "device.hpp"

namespace bimamba::cli {
namespace {

// Median / min / max over `reps` rounds of the time per call of call(copy) for copy in [0, copies).
template <class Call>
Spread time_rounds(int64_t copies, int reps, Call&& call) {
  std::vector<double> us;
  for (int r = 0; r < reps + 1; ++r) {  // round 0 warms up
    const auto t0 = Clock::now();
    for (int64_t c = 0; c < copies; ++c) call(c);
    if (r > 0) us.push_back(1e6 * seconds_since(t0) / double(copies));
  }
  return spread(std::move(us));
}

}  // namespace

int run_bench_gemv(int argc, char** argv) {
  Args args("bench gemv", "--rows M --cols K [--threads T] [--reps R] --json",
            "Packed 1-bit GEMV (one token) against Eigen fp32, weights streamed from DRAM, as JSON.");
  args.option("rows", "M", "output features");
  args.option("cols", "K", "input features");
  args.option("threads", "T", "threads (0: all)", "0");
  args.option("reps", "R", "timed rounds (each calls every weight copy once)", "7");
  add_device_option(args, "where to run the kernel");
  args.flag("json", "print JSON (the only output format)");
  if (!args.parse(argc, argv)) return 0;
  const int64_t M = args.integer("rows"), K = args.integer("cols");
  const int reps = int(args.integer("reps"));
  if (M <= 0 || K <= 0 || reps <= 0) throw UsageError("--rows, --cols and --reps must be positive");
  if (wants_cuda(args)) {  // never true in builds without CUDA: it throws there
#ifdef BIMAMBA_CLI_WITH_CUDA
    return run_bench_gemv_cuda(args);
#endif
  }
  Context<Host> ctx(int(args.integer("threads")));

  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.5f, 1.5f);
  Tensor<float, 2, Host> latent({M, K}), x({1, K}), y_packed({1, M}), y_dense({1, M});
  Tensor<float, 1, Host> alpha({K}), beta({K});
  for (int64_t i = 0; i < M * K; ++i) latent.data()[i] = normal(rng);
  for (int64_t j = 0; j < K; ++j) x(0, j) = normal(rng), alpha(j) = 0.02f * uniform(rng), beta(j) = 0.002f * normal(rng);

  const int64_t llc3 = 3 * last_level_cache_bytes();
  const TiledSigns tiled(pack_signs<uint32_t>(latent.cview()).cview());
  const int64_t packed_bytes = int64_t(tiled.storage_bytes()), dense_bytes = M * K * 4;
  const int64_t packed_copies = std::max<int64_t>(2, (llc3 + packed_bytes - 1) / packed_bytes);
  const int64_t dense_copies = std::max<int64_t>(2, (llc3 + dense_bytes - 1) / dense_bytes);
  std::vector<TiledSigns> signs;
  for (int64_t c = 0; c < packed_copies; ++c) signs.emplace_back(pack_signs<uint32_t>(latent.cview()).cview());
  std::vector<Tensor<float, 2, Host>> dense;
  for (int64_t c = 0; c < dense_copies; ++c) {
    dense.emplace_back(Extents<2>{M, K});
    fbi_weight(ctx, latent.cview(), alpha.cview(), beta.cview(), dense.back().view());
  }
  latent = Tensor<float, 2, Host>();

  binary_linear(ctx, x.cview(), signs[0], alpha.cview(), beta.cview(), y_packed.view());
  linear(ctx, x.cview(), dense[0].cview(), {}, y_dense.view());
  // The tiled kernel's documented relative error is ~7e-4 (ops/host/binary_linear_tiled.hpp); 1e-2 only
  // catches a broken kernel or layout, not rounding.
  const double err = relative_l2(to_vector(y_packed), to_vector(y_dense));
  if (!(err < 1e-2)) BIMAMBA_FAIL("bench gemv: packed result differs from fp32 by ", err, " (relative L2)");

  const Spread packed = time_rounds(packed_copies, reps, [&](int64_t c) {
    binary_linear(ctx, x.cview(), signs[size_t(c)], alpha.cview(), beta.cview(), y_packed.view());
  });
  const Spread eigen = time_rounds(dense_copies, reps,
                                   [&](int64_t c) { linear(ctx, x.cview(), dense[size_t(c)].cview(), {}, y_dense.view()); });
  const double gbps = dram_read_gbps(ctx);
  const double packed_gbps = double(packed_bytes) / packed.median / 1e3;

  nlohmann::ordered_json j;
  j["packed_us"] = packed.median;
  j["eigen_fp32_us"] = eigen.median;
  j["packed_gbps"] = packed_gbps;
  j["dram_read_gbps"] = gbps;
  j["fraction_of_dram"] = packed_gbps / gbps;
  j["speedup_over_eigen"] = eigen.median / packed.median;
  j["packed_us_min_max"] = {packed.min, packed.max};
  j["eigen_fp32_us_min_max"] = {eigen.min, eigen.max};
  j["relative_l2_vs_fp32"] = err;
  j["rows"] = M;
  j["cols"] = K;
  j["threads"] = ctx.threads();
  j["packed_bytes"] = packed_bytes;
  j["weight_copies"] = {packed_copies, dense_copies};
  j["simd"] = simd_path();
  std::cout << j.dump() << std::endl;
  return 0;
}

}  // namespace bimamba::cli
