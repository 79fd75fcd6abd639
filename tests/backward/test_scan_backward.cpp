// Backward passes of the SSM scans at odd shapes: the double references against central finite differences
// of the forward references (reference/ssd.hpp, reference/selective_scan.hpp), and the Host implementations
// (two sequences, several groups) against the double references.
#include "fd_util.hpp"

#include <bimamba/ops/reference/selective_scan.hpp>
#include <bimamba/ops/reference/selective_scan_backward.hpp>
#include <bimamba/ops/reference/ssd.hpp>
#include <bimamba/ops/reference/ssd_backward.hpp>
#include <bimamba/ops/selective_scan_backward.hpp>
#include <bimamba/ops/ssd_scan_backward.hpp>

namespace bimamba::test {
namespace {

// The rows of sequence s of a (Bn * rows) flattened array.
std::vector<double> slice(const std::vector<double>& v, int64_t s, int64_t rows) {
  return std::vector<double>(v.begin() + s * rows, v.begin() + (s + 1) * rows);
}
void add_to(std::vector<double>& acc, const std::vector<double>& v) {
  for (size_t i = 0; i < v.size(); ++i) acc[i] += v[i];
}

TEST(ScanBackward, Ssd) {
  const int64_t Bn = 2, L = 7, H = 4, P = 3, G = 2, N = 5;
  auto x = random_doubles(size_t(Bn * L * H * P), 31), dt = random_doubles(size_t(Bn * L * H), 32, 0.05, 0.6);
  auto A = random_doubles(size_t(H), 33, -1.5, -0.2), D = random_doubles(size_t(H), 34);
  auto Bm = random_doubles(size_t(Bn * L * G * N), 35), Cm = random_doubles(size_t(Bn * L * G * N), 36);
  const auto dy = random_doubles(size_t(Bn * L * H * P), 37);
  const int64_t xs = L * H * P, ts = L * H, bs = L * G * N;
  auto loss = [&] {
    double sum = 0;
    for (int64_t s = 0; s < Bn; ++s) {
      std::vector<double> state(size_t(H * P * N), 0.0);
      sum += dot(slice(dy, s, xs), reference::ssd(slice(x, s, xs), slice(dt, s, ts), A, slice(Bm, s, bs),
                                                  slice(Cm, s, bs), D, L, H, P, G, N, state));
    }
    return sum;
  };
  std::vector<double> dx, ddt, dB, dC, dA(static_cast<size_t>(H)), dD(static_cast<size_t>(H));
  for (int64_t s = 0; s < Bn; ++s) {
    const auto g = reference::ssd_backward(slice(x, s, xs), slice(dt, s, ts), A, slice(Bm, s, bs), slice(Cm, s, bs), D,
                                           slice(dy, s, xs), L, H, P, G, N);
    dx.insert(dx.end(), g.dx.begin(), g.dx.end());
    ddt.insert(ddt.end(), g.ddt.begin(), g.ddt.end());
    dB.insert(dB.end(), g.dB.begin(), g.dB.end());
    dC.insert(dC.end(), g.dC.begin(), g.dC.end());
    add_to(dA, g.dA);
    add_to(dD, g.dD);
  }
  EXPECT_LT(relative_l2(dx, numeric_grad(x, loss)), kFdTol);
  EXPECT_LT(relative_l2(ddt, numeric_grad(dt, loss)), kFdTol);
  EXPECT_LT(relative_l2(dA, numeric_grad(A, loss)), kFdTol);
  EXPECT_LT(relative_l2(dB, numeric_grad(Bm, loss)), kFdTol);
  EXPECT_LT(relative_l2(dC, numeric_grad(Cm, loss)), kFdTol);
  EXPECT_LT(relative_l2(dD, numeric_grad(D, loss)), kFdTol);

  Context<Host> ctx;
  for (const GradientModes modes : kSplitModes) {  // dD under modes.params, every other output under modes.inputs
    auto gx = ones_tensor<4>({Bn, L, H, P}), gB = ones_tensor<4>({Bn, L, G, N}), gC = ones_tensor<4>({Bn, L, G, N});
    auto gdt = ones_tensor<3>({Bn, L, H});
    auto gA = ones_tensor<1>({H}), gD = ones_tensor<1>({H});
    ssd_scan_backward(ctx, to_float_tensor<4>(x, {Bn, L, H, P}), to_float_tensor<3>(dt, {Bn, L, H}),
                      to_float_tensor<1>(A, {H}), to_float_tensor<4>(Bm, {Bn, L, G, N}),
                      to_float_tensor<4>(Cm, {Bn, L, G, N}), to_float_tensor<1>(D, {H}),
                      to_float_tensor<4>(dy, {Bn, L, H, P}), gx, gdt, gA, gB, gC, gD, modes);
    EXPECT_LT(relative_l2(to_doubles(gx), expected_after(modes.inputs, dx)), kHostTol);
    EXPECT_LT(relative_l2(to_doubles(gdt), expected_after(modes.inputs, ddt)), kHostTol);
    EXPECT_LT(relative_l2(to_doubles(gA), expected_after(modes.inputs, dA)), kHostTol);
    EXPECT_LT(relative_l2(to_doubles(gB), expected_after(modes.inputs, dB)), kHostTol);
    EXPECT_LT(relative_l2(to_doubles(gC), expected_after(modes.inputs, dC)), kHostTol);
    EXPECT_LT(relative_l2(to_doubles(gD), expected_after(modes.params, dD)), kHostTol);
  }
}

TEST(ScanBackward, SelectiveScanGated) {
  const int64_t Bn = 2, L = 6, E = 5, N = 3;
  auto x = random_doubles(size_t(Bn * L * E), 41), dt = random_doubles(size_t(Bn * L * E), 42, 0.05, 0.6);
  auto A = random_doubles(size_t(E * N), 43, -1.5, -0.2), D = random_doubles(size_t(E), 44);
  auto Bm = random_doubles(size_t(Bn * L * N), 45), Cm = random_doubles(size_t(Bn * L * N), 46);
  auto z = random_doubles(size_t(Bn * L * E), 47, -3, 3);
  const auto dy = random_doubles(size_t(Bn * L * E), 48);
  const int64_t es = L * E, ns = L * N;
  auto loss = [&] {
    double sum = 0;
    for (int64_t s = 0; s < Bn; ++s) {
      std::vector<double> state(size_t(E * N), 0.0);
      sum += dot(slice(dy, s, es), reference::selective_scan(slice(x, s, es), slice(dt, s, es), A, slice(Bm, s, ns),
                                                             slice(Cm, s, ns), D, slice(z, s, es), L, E, N, state));
    }
    return sum;
  };
  std::vector<double> dx, ddt, dB, dC, dz, dA(A.size()), dD(static_cast<size_t>(E));
  for (int64_t s = 0; s < Bn; ++s) {
    const auto g = reference::selective_scan_backward(slice(x, s, es), slice(dt, s, es), A, slice(Bm, s, ns),
                                                      slice(Cm, s, ns), D, slice(z, s, es), slice(dy, s, es), L, E, N);
    dx.insert(dx.end(), g.dx.begin(), g.dx.end());
    ddt.insert(ddt.end(), g.ddt.begin(), g.ddt.end());
    dB.insert(dB.end(), g.dB.begin(), g.dB.end());
    dC.insert(dC.end(), g.dC.begin(), g.dC.end());
    dz.insert(dz.end(), g.dz.begin(), g.dz.end());
    add_to(dA, g.dA);
    add_to(dD, g.dD);
  }
  EXPECT_LT(relative_l2(dx, numeric_grad(x, loss)), kFdTol);
  EXPECT_LT(relative_l2(ddt, numeric_grad(dt, loss)), kFdTol);
  EXPECT_LT(relative_l2(dA, numeric_grad(A, loss)), kFdTol);
  EXPECT_LT(relative_l2(dB, numeric_grad(Bm, loss)), kFdTol);
  EXPECT_LT(relative_l2(dC, numeric_grad(Cm, loss)), kFdTol);
  EXPECT_LT(relative_l2(dD, numeric_grad(D, loss)), kFdTol);
  EXPECT_LT(relative_l2(dz, numeric_grad(z, loss)), kFdTol);

  Context<Host> ctx;
  Tensor<float, 3, Host> gx({Bn, L, E}), gdt({Bn, L, E}), gz({Bn, L, E}), gB({Bn, L, N}), gC({Bn, L, N});
  Tensor<float, 2, Host> gA({E, N});
  Tensor<float, 1, Host> gD({E});
  selective_scan_backward(ctx, to_float_tensor<3>(x, {Bn, L, E}), to_float_tensor<3>(dt, {Bn, L, E}),
                          to_float_tensor<2>(A, {E, N}), to_float_tensor<3>(Bm, {Bn, L, N}),
                          to_float_tensor<3>(Cm, {Bn, L, N}), to_float_tensor<1>(D, {E}), to_float_tensor<3>(z, {Bn, L, E}),
                          to_float_tensor<3>(dy, {Bn, L, E}), gx, gdt, gA, gB, gC, gD, gz, GradientMode::Overwrite);
  EXPECT_LT(relative_l2(to_doubles(gx), dx), kHostTol);
  EXPECT_LT(relative_l2(to_doubles(gdt), ddt), kHostTol);
  EXPECT_LT(relative_l2(to_doubles(gA), dA), kHostTol);
  EXPECT_LT(relative_l2(to_doubles(gB), dB), kHostTol);
  EXPECT_LT(relative_l2(to_doubles(gC), dC), kHostTol);
  EXPECT_LT(relative_l2(to_doubles(gD), dD), kHostTol);
  EXPECT_LT(relative_l2(to_doubles(gz), dz), kHostTol);
}

}  // namespace
}  // namespace bimamba::test
