// SSM benchmarks of bench_kernels: the chunked SSD scan of a prefill and the one-token SSD step of a decode,
// at the Mamba-2 shapes of the Bi-Mamba configs (H = 2 D / 64 heads of P = 64, one group of N = 128 states).
//
//   BM_ssd_prefill/<model>/L:512/threads:t  ssd_scan over B = 1 sequence of L tokens (x (1, L, H, P)).
//       Compute-bound: its inputs (6-10 MB) are not rotated. FLOP/s counts the recurrence's work,
//       5 H P N per token (decay, update and read-out of every state element), not the chunked form's.
//   BM_ssd_step/<model>/threads:t           ssd_step for one token, its (1, H, P, N) fp32 state read and
//       written once: memory-bound. The state is rotated over copies totalling 3x the last-level cache, as a
//       decode step meets the next layer's state; bytes/s counts 2 x the state bytes.
// Each validates its output against reference::ssd (double, the plain recurrence) before timing: relative
// L2 < 1e-4 (float32 accumulation over N = 128 and, for the scan, decays over up to 512 tokens; the tests
// pin 1e-5 on small shapes).
#include <bimamba/core.hpp>
#include <bimamba/ops/reference/ssd.hpp>
#include <bimamba/ops/ssd_scan.hpp>
#include <bimamba/ops/ssd_step.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "bench_support.hpp"

namespace bimamba::bench {
namespace {

constexpr int64_t kP = 64, kN = 128, kG = 1;

// Random inputs of L tokens, in float (for the op) and double (for the reference).
struct SsmInputs {
  int64_t L, H;
  Tensor<float, 4, Host> x, Bm, Cm;  // (1, L, H, P), (1, L, G, N), (1, L, G, N)
  Tensor<float, 3, Host> dt;         // (1, L, H), in [0.001, 0.1) like softplus'ed dt
  Tensor<float, 1, Host> A, D;       // (H): A in [-8, -1), D in [-1, 1)
  SsmInputs(int64_t L_, int64_t H_)
      : L(L_), H(H_), x({1, L_, H_, kP}), Bm({1, L_, kG, kN}), Cm({1, L_, kG, kN}), dt({1, L_, H_}), A({H_}), D({H_}) {
    fill_uniform(x.data(), size_t(x.numel()), 1);
    fill_uniform(Bm.data(), size_t(Bm.numel()), 2);
    fill_uniform(Cm.data(), size_t(Cm.numel()), 3);
    fill_uniform(dt.data(), size_t(dt.numel()), 4, 0.001f, 0.1f);
    fill_uniform(A.data(), size_t(A.numel()), 5, -8.0f, -1.0f);
    fill_uniform(D.data(), size_t(D.numel()), 6);
  }
  // reference::ssd over the first `tokens` tokens from `state` (H, P, N), which it advances.
  std::vector<double> reference(int64_t tokens, std::vector<double>& state) const {
    auto d = [](const float* p, int64_t n) { return std::vector<double>(p, p + n); };
    return reference::ssd(d(x.data(), tokens * H * kP), d(dt.data(), tokens * H), d(A.data(), H),
                          d(Bm.data(), tokens * kG * kN), d(Cm.data(), tokens * kG * kN), d(D.data(), H), tokens, H,
                          kP, kG, kN, state);
  }
};

std::string relative_l2_error(const float* got, const std::vector<double>& want, double limit) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    den += want[i] * want[i];
  }
  const double rel = std::sqrt(num / den);
  if (rel < limit) return {};
  return "relative L2 " + std::to_string(rel) + " against reference::ssd (limit " + std::to_string(limit) + ")";
}

int64_t heads_of(const Shape& shape) { return 2 * shape.in / kP; }  // the in_proj shape's D

void ssd_prefill(benchmark::State& state, Shape shape, int64_t L, int threads) {
  Context<Host> ctx(threads);
  const SsmInputs in(L, heads_of(shape));
  Tensor<float, 4, Host> y({1, L, in.H, kP});
  auto call = [&] { ssd_scan(ctx, in.x, in.dt, in.A, in.Bm, in.Cm, in.D, 256, y); };
  call();
  std::vector<double> s(size_t(in.H * kP * kN), 0.0);
  if (auto error = relative_l2_error(y.data(), in.reference(L, s), 1e-4); !error.empty()) {
    state.SkipWithError(error.c_str());
    return;
  }
  for (auto _ : state) {
    call();
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(double(L), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["FLOP/s"] =
      benchmark::Counter(double(5 * L * in.H * kP * kN), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = double(ctx.threads());
}

void ssd_decode_step(benchmark::State& state, Shape shape, int threads) {
  Context<Host> ctx(threads);
  const SsmInputs in(1, heads_of(shape));
  const int64_t state_bytes = in.H * kP * kN * 4;
  std::vector<Tensor<float, 4, Host>> states;
  for (int64_t c = 0; c < rotation_copies(state_bytes); ++c) {
    states.emplace_back(Extents<4>{1, in.H, kP, kN});
    fill_uniform(states.back().data(), size_t(states.back().numel()), uint64_t(10 + c));
  }
  auto x = in.x.cview().reshape<3>({1, in.H, kP});
  auto dt = in.dt.cview().reshape<2>({1, in.H});
  auto Bm = in.Bm.cview().reshape<3>({1, kG, kN}), Cm = in.Cm.cview().reshape<3>({1, kG, kN});
  Tensor<float, 3, Host> y({1, in.H, kP});
  std::vector<double> s(states[0].data(), states[0].data() + states[0].numel());
  const std::vector<double> want = in.reference(1, s);
  ssd_step(ctx, x, dt, in.A, Bm, Cm, in.D, states[0], y);
  if (auto error = relative_l2_error(y.data(), want, 1e-4); !error.empty()) {
    state.SkipWithError(error.c_str());
    return;
  }
  size_t c = 0;
  for (auto _ : state) {
    ssd_step(ctx, x, dt, in.A, Bm, Cm, in.D, states[c], y);
    benchmark::DoNotOptimize(y.data());
    c = (c + 1) % states.size();
  }
  state.counters["bytes/s"] = benchmark::Counter(double(2 * state_bytes), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["state_copies"] = double(states.size());
  state.counters["threads"] = double(ctx.threads());
}

}  // namespace

void register_ssd_benchmarks() {
  std::vector<int> thread_counts = {1};
  if (const int all = Context<Host>(0).threads(); all > 1) thread_counts.push_back(all);
  for (const Shape& s : bimamba_shapes()) {
    if (std::string(s.proj) != "in_proj") continue;  // one entry per model (its D is the in_proj's input)
    for (int threads : thread_counts) {
      const std::string model = s.model, t = "/threads:" + std::to_string(threads);
      benchmark::RegisterBenchmark(("BM_ssd_prefill/" + model + "/L:512" + t).c_str(), ssd_prefill, s, int64_t(512),
                                   threads)
          ->Unit(benchmark::kMillisecond)->UseRealTime();
      benchmark::RegisterBenchmark(("BM_ssd_step/" + model + t).c_str(), ssd_decode_step, s, threads)
          ->Unit(benchmark::kMicrosecond)->UseRealTime();
    }
  }
}

}  // namespace bimamba::bench
