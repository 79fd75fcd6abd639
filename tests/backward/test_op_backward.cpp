// Backward passes of the pointwise / dense ops at odd shapes: the double reference against central finite
// differences of the forward reference, and the Host implementation against the double reference.
#include "fd_util.hpp"

#include <bimamba/ops/causal_conv1d_backward.hpp>
#include <bimamba/ops/dt_softplus_backward.hpp>
#include <bimamba/ops/embedding_backward.hpp>
#include <bimamba/ops/fbi_linear_backward.hpp>
#include <bimamba/ops/gated_rms_norm_backward.hpp>
#include <bimamba/ops/linear_backward.hpp>
#include <bimamba/ops/neg_exp_backward.hpp>
#include <bimamba/ops/reference/causal_conv1d.hpp>
#include <bimamba/ops/reference/causal_conv1d_backward.hpp>
#include <bimamba/ops/reference/dt_softplus.hpp>
#include <bimamba/ops/reference/dt_softplus_backward.hpp>
#include <bimamba/ops/reference/embedding_backward.hpp>
#include <bimamba/ops/reference/linear.hpp>
#include <bimamba/ops/reference/linear_backward.hpp>
#include <bimamba/ops/reference/rms_norm_backward.hpp>
#include <bimamba/ops/rms_norm_backward.hpp>

namespace bimamba::test {
namespace {

constexpr auto kOver = GradientMode::Overwrite;

TEST(OpBackward, RmsNorm) {
  const int64_t T = 5, D = 7;
  const double eps = 1e-5;
  auto x = random_doubles(size_t(T * D), 1), w = random_doubles(size_t(D), 2, 0.5, 1.5), dy = random_doubles(size_t(T * D), 3);
  const auto ref = reference::rms_norm_backward(x, w, dy, T, D, eps);
  auto loss = [&] { return dot(dy, reference::rms_norm(x, w, T, D, eps)); };
  EXPECT_LT(relative_l2(ref.dx, numeric_grad(x, loss)), kFdTol);
  EXPECT_LT(relative_l2(ref.dw, numeric_grad(w, loss)), kFdTol);

  Context<Host> ctx;
  Tensor<float, 2, Host> dx({T, D});
  Tensor<float, 1, Host> dw({D});
  rms_norm_backward(ctx, to_float_tensor<2>(x, {T, D}), to_float_tensor<1>(w, {D}), float(eps),
                    to_float_tensor<2>(dy, {T, D}), dx, dw, kOver);
  EXPECT_LT(relative_l2(to_doubles(dx), ref.dx), kHostTol);
  EXPECT_LT(relative_l2(to_doubles(dw), ref.dw), kHostTol);
}

TEST(OpBackward, GatedRmsNorm) {
  const int64_t T = 3, E = 15, groups = 3;
  const double eps = 1e-5;
  auto y = random_doubles(size_t(T * E), 4), z = random_doubles(size_t(T * E), 5, -3, 3);
  auto w = random_doubles(size_t(E), 6, 0.5, 1.5);
  const auto dout = random_doubles(size_t(T * E), 7);
  const auto ref = reference::gated_rms_norm_backward(y, z, w, dout, T, E, groups, eps);
  auto loss = [&] { return dot(dout, reference::gated_rms_norm(y, z, w, T, E, groups, eps)); };
  EXPECT_LT(relative_l2(ref.dy, numeric_grad(y, loss)), kFdTol);
  EXPECT_LT(relative_l2(ref.dz, numeric_grad(z, loss)), kFdTol);
  EXPECT_LT(relative_l2(ref.dw, numeric_grad(w, loss)), kFdTol);

  Context<Host> ctx;
  for (const GradientModes modes : kSplitModes) {  // dy, dz under modes.inputs, dw under modes.params
    auto dy = ones_tensor<2>({T, E}), dz = ones_tensor<2>({T, E});
    auto dw = ones_tensor<1>({E});
    gated_rms_norm_backward(ctx, to_float_tensor<2>(y, {T, E}), to_float_tensor<2>(z, {T, E}),
                            to_float_tensor<1>(w, {E}), groups, float(eps), to_float_tensor<2>(dout, {T, E}), dy, dz,
                            dw, modes);
    EXPECT_LT(relative_l2(to_doubles(dy), expected_after(modes.inputs, ref.dy)), kHostTol);
    EXPECT_LT(relative_l2(to_doubles(dz), expected_after(modes.inputs, ref.dz)), kHostTol);
    EXPECT_LT(relative_l2(to_doubles(dw), expected_after(modes.params, ref.dw)), kHostTol);
  }
}

TEST(OpBackward, LinearAndAccumulate) {
  const int64_t T = 5, in = 7, out = 3;
  auto x = random_doubles(size_t(T * in), 8), W = random_doubles(size_t(out * in), 9), b = random_doubles(size_t(out), 10);
  const auto dy = random_doubles(size_t(T * out), 11);
  const auto ref = reference::linear_backward(x, W, dy, T, in, out);
  auto loss = [&] { return dot(dy, reference::linear(x, W, b, T, in, out)); };
  EXPECT_LT(relative_l2(ref.dx, numeric_grad(x, loss)), kFdTol);
  EXPECT_LT(relative_l2(ref.dW, numeric_grad(W, loss)), kFdTol);
  EXPECT_LT(relative_l2(ref.dbias, numeric_grad(b, loss)), kFdTol);

  Context<Host> ctx;
  Tensor<float, 2, Host> dx({T, in}), dW({out, in});
  Tensor<float, 1, Host> db({out});
  const auto xf = to_float_tensor<2>(x, {T, in}), Wf = to_float_tensor<2>(W, {out, in}), dyf = to_float_tensor<2>(dy, {T, out});
  linear_backward(ctx, xf, Wf, dyf, dx, dW, db, kOver);
  EXPECT_LT(relative_l2(to_doubles(dx), ref.dx), kHostTol);
  EXPECT_LT(relative_l2(to_doubles(dW), ref.dW), kHostTol);
  EXPECT_LT(relative_l2(to_doubles(db), ref.dbias), kHostTol);
  // Accumulate adds the same values again: exactly twice (x + x is exact in floating point).
  linear_backward(ctx, xf, Wf, dyf, dx, dW, db, GradientMode::Accumulate);
  auto twice = ref.dW;
  for (auto& v : twice) v *= 2;
  EXPECT_LT(relative_l2(to_doubles(dW), twice), kHostTol);
}

TEST(OpBackward, FbiLinearStraightThrough) {
  const int64_t T = 4, in = 7, out = 5;
  auto x = random_doubles(size_t(T * in), 12), W = random_doubles(size_t(out * in), 13);
  auto alpha = random_doubles(size_t(in), 14, 0.2, 1.0), beta = random_doubles(size_t(in), 15, -0.3, 0.3);
  const auto dy = random_doubles(size_t(T * out), 16);
  const auto ref = reference::fbi_linear_backward(x, W, alpha, beta, dy, T, in, out);
  auto w_eff = [&](const std::vector<double>& latent) {
    std::vector<double> e(latent.size());
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i)
        e[size_t(o * in + i)] = alpha[size_t(i)] * (latent[size_t(o * in + i)] >= 0 ? 1.0 : -1.0) + beta[size_t(i)];
    return e;
  };
  auto loss = [&] { return dot(dy, reference::linear(x, w_eff(W), {}, T, in, out)); };
  EXPECT_LT(relative_l2(ref.dx, numeric_grad(x, loss)), kFdTol);
  EXPECT_LT(relative_l2(ref.dalpha, numeric_grad(alpha, loss)), kFdTol);
  EXPECT_LT(relative_l2(ref.dbeta, numeric_grad(beta, loss)), kFdTol);
  // dW is the straight-through estimate alpha ⊙ dL/dW_eff (the true derivative of sign is 0 a.e.): compare
  // with alpha times the finite-difference gradient with respect to W_eff itself.
  auto eff = w_eff(W);
  const auto G = numeric_grad(eff, [&] { return dot(dy, reference::linear(x, eff, {}, T, in, out)); });
  std::vector<double> ste(G.size());
  for (size_t k = 0; k < G.size(); ++k) ste[k] = alpha[k % size_t(in)] * G[k];
  EXPECT_LT(relative_l2(ref.dW, ste), kFdTol);

  Context<Host> ctx;
  Tensor<float, 2, Host> dx({T, in}), dW({out, in});
  Tensor<float, 1, Host> da({in}), db({in});
  fbi_linear_backward(ctx, to_float_tensor<2>(x, {T, in}), to_float_tensor<2>(W, {out, in}),
                      to_float_tensor<1>(alpha, {in}), to_float_tensor<1>(beta, {in}), to_float_tensor<2>(dy, {T, out}),
                      dx, dW, da, db, kOver);
  EXPECT_LT(relative_l2(to_doubles(dx), ref.dx), kHostTol);
  EXPECT_LT(relative_l2(to_doubles(dW), ref.dW), kHostTol);
  EXPECT_LT(relative_l2(to_doubles(da), ref.dalpha), kHostTol);
  EXPECT_LT(relative_l2(to_doubles(db), ref.dbeta), kHostTol);
}

// L = 3 < K = 4 exercises the zero padding on both ends; L = 9 the steady state.
void check_conv(int64_t L) {
  const int64_t Bn = 2, C = 5, K = 4;
  auto x = random_doubles(size_t(Bn * L * C), 17), w = random_doubles(size_t(C * K), 18), b = random_doubles(size_t(C), 19);
  const auto dy = random_doubles(size_t(Bn * L * C), 20);
  auto forward = [&](int64_t s) {
    std::vector<double> xs(x.begin() + s * L * C, x.begin() + (s + 1) * L * C), state(size_t(C * K), 0.0);
    return reference::causal_conv1d(xs, w, b, L, C, K, true, state);
  };
  auto loss = [&] {
    double sum = 0;
    for (int64_t s = 0; s < Bn; ++s) {
      const auto y = forward(s);
      for (size_t i = 0; i < y.size(); ++i) sum += dy[size_t(s * L * C) + i] * y[i];
    }
    return sum;
  };
  std::vector<double> dx, dw(size_t(C * K)), db(static_cast<size_t>(C));
  for (int64_t s = 0; s < Bn; ++s) {
    const std::vector<double> xs(x.begin() + s * L * C, x.begin() + (s + 1) * L * C),
        dys(dy.begin() + s * L * C, dy.begin() + (s + 1) * L * C);
    const auto g = reference::causal_conv1d_backward(xs, w, b, dys, L, C, K);
    dx.insert(dx.end(), g.dx.begin(), g.dx.end());
    for (size_t i = 0; i < dw.size(); ++i) dw[i] += g.dw[i];
    for (size_t i = 0; i < db.size(); ++i) db[i] += g.dbias[i];
  }
  EXPECT_LT(relative_l2(dx, numeric_grad(x, loss)), kFdTol) << L;
  EXPECT_LT(relative_l2(dw, numeric_grad(w, loss)), kFdTol) << L;
  EXPECT_LT(relative_l2(db, numeric_grad(b, loss)), kFdTol) << L;

  Context<Host> ctx;
  for (const GradientModes modes : kSplitModes) {  // dx under modes.inputs, dw and dbias under modes.params
    auto gx = ones_tensor<3>({Bn, L, C});
    auto gw = ones_tensor<2>({C, K});
    auto gb = ones_tensor<1>({C});
    causal_conv1d_backward(ctx, to_float_tensor<3>(x, {Bn, L, C}), to_float_tensor<2>(w, {C, K}),
                           to_float_tensor<1>(b, {C}), to_float_tensor<3>(dy, {Bn, L, C}), gx, gw, gb, modes);
    EXPECT_LT(relative_l2(to_doubles(gx), expected_after(modes.inputs, dx)), kHostTol) << L;
    EXPECT_LT(relative_l2(to_doubles(gw), expected_after(modes.params, dw)), kHostTol) << L;
    EXPECT_LT(relative_l2(to_doubles(gb), expected_after(modes.params, db)), kHostTol) << L;
  }
}

TEST(OpBackward, CausalConv1dShortSequence) { check_conv(3); }
TEST(OpBackward, CausalConv1d) { check_conv(9); }

TEST(OpBackward, DtSoftplusWithClamp) {
  const int64_t T = 7, H = 3;
  const double lo = 0.3, hi = 1.5;  // softplus of [-3, 3] spans [0.05, 3.05]: both sides clamp somewhere
  auto dt = random_doubles(size_t(T * H), 21, -3, 3), bias = random_doubles(size_t(H), 22, -0.5, 0.5);
  const auto dout = random_doubles(size_t(T * H), 23);
  const auto ref = reference::dt_softplus_backward(dt, bias, dout, T, H, lo, hi);
  auto loss = [&] { return dot(dout, reference::dt_softplus(dt, bias, T, H, lo, hi)); };
  EXPECT_LT(relative_l2(ref.ddt, numeric_grad(dt, loss)), kFdTol);
  EXPECT_LT(relative_l2(ref.dbias, numeric_grad(bias, loss)), kFdTol);
  int clamped = 0;
  for (double v : ref.ddt) clamped += v == 0.0;
  EXPECT_GT(clamped, 0) << "the inputs should exercise the clamp";

  Context<Host> ctx;
  for (const GradientModes modes : kSplitModes) {  // ddt under modes.inputs, dbias under modes.params
    auto ddt = ones_tensor<2>({T, H});
    auto db = ones_tensor<1>({H});
    dt_softplus_backward(ctx, to_float_tensor<2>(dt, {T, H}), to_float_tensor<1>(bias, {H}), float(lo), float(hi),
                         to_float_tensor<2>(dout, {T, H}), ddt, db, modes);
    EXPECT_LT(relative_l2(to_doubles(ddt), expected_after(modes.inputs, ref.ddt)), kHostTol);
    EXPECT_LT(relative_l2(to_doubles(db), expected_after(modes.params, ref.dbias)), kHostTol);
  }
}

TEST(OpBackward, NegExp) {
  const int64_t n = 5;
  auto a_log = random_doubles(size_t(n), 24, -2, 2);
  const auto dA = random_doubles(size_t(n), 25);
  auto loss = [&] {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += dA[size_t(i)] * -std::exp(a_log[size_t(i)]);
    return s;
  };
  const auto fd = numeric_grad(a_log, loss);
  Context<Host> ctx;
  Tensor<float, 1, Host> A({n}), d({n});
  for (int64_t i = 0; i < n; ++i) A(i) = -std::exp(float(a_log[size_t(i)]));
  neg_exp_backward(ctx, A, to_float_tensor<1>(dA, {n}), d, kOver);
  EXPECT_LT(relative_l2(to_doubles(d), fd), kHostTol);
}

TEST(OpBackward, EmbeddingScatterAdd) {
  const int64_t Bn = 2, L = 5, V = 7, D = 3;
  const std::vector<int32_t> ids{3, 1, 3, 6, 0, 3, 3, 2, 1, 6};  // repeats: the scatter must add
  const auto dout = random_doubles(size_t(Bn * L * D), 26);
  const auto ref = reference::embedding_backward(ids, dout, V, D);
  Context<Host> ctx;
  Tensor<float, 2, Host> dw({V, D});
  embedding_backward(ctx, tensor_from<int32_t, 2>(ids, {Bn, L}), to_float_tensor<3>(dout, {Bn, L, D}), dw, kOver);
  EXPECT_LT(relative_l2(to_doubles(dw), ref), kHostTol);
  for (int64_t j = 0; j < D; ++j) EXPECT_EQ(dw(4, j), 0.0f) << "token 4 does not occur";
  std::vector<int32_t> bad = ids;
  bad[7] = int32_t(V);
  EXPECT_THROW(embedding_backward(ctx, tensor_from<int32_t, 2>(bad, {Bn, L}), to_float_tensor<3>(dout, {Bn, L, D}), dw, kOver),
               InvalidArgument);
}

}  // namespace
}  // namespace bimamba::test
