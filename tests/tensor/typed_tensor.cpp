// Tensor / TensorView on every backend: shapes, strides, zero-init, moves, copies across backends.
#include "test_support.hpp"

namespace bimamba {
namespace {

template <class Backend>
using TensorTest = test::BackendTest<Backend>;
TYPED_TEST_SUITE(TensorTest, test::Backends);

TYPED_TEST(TensorTest, ZeroInitialisedAndRoundTripsThroughHost) {
  using B = TypeParam;
  Tensor<float, 3, B> t({2, 3, 5});
  EXPECT_EQ(t.numel(), 30);
  EXPECT_EQ(t.view().stride(0), 15);
  EXPECT_EQ(t.view().stride(2), 1);
  for (float v : to_vector(t)) EXPECT_EQ(v, 0.0f);

  const auto values = test::random_floats(30, 1);
  auto src = tensor_from<float, 3>(values, {2, 3, 5});
  auto dev = to<B>(src);
  auto back = to_host(dev);
  EXPECT_EQ(to_vector(back), values);
}

TYPED_TEST(TensorTest, MoveLeavesSourceEmpty) {
  using B = TypeParam;
  Tensor<float, 2, B> a({4, 4});
  const float* p = a.data();
  Tensor<float, 2, B> b = std::move(a);
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(a.numel(), 0);
}

TYPED_TEST(TensorTest, ShapeMismatchedCopyThrows) {
  using B = TypeParam;
  Tensor<float, 2, B> a({2, 3}), b({3, 2});
  EXPECT_THROW(copy(a.view(), b.view()), InvalidArgument);
}

TEST(TensorView, IndexingNarrowReshape) {
  auto t = tensor_from<float, 2>({0, 1, 2, 3, 4, 5}, {2, 3});
  auto v = t.view();
  EXPECT_EQ(v(1, 2), 5);
  EXPECT_EQ(v[1](0), 3);
  auto col = v.narrow(1, 1, 2);  // columns 1..2
  EXPECT_FALSE(col.is_contiguous());
  EXPECT_EQ(col(1, 1), 5);
  EXPECT_THROW(col.reshape<1>({4}), InvalidArgument);
  EXPECT_THROW(v.narrow(0, 1, 2), InvalidArgument);
  auto flat = v.reshape<1>({6});
  EXPECT_EQ(flat(4), 4);
  EXPECT_THROW(v.reshape<2>({4, 2}), InvalidArgument);
  TensorView<const float, 2, Host> c = v;  // const conversion
  EXPECT_EQ(c(0, 1), 1);
}

TEST(TensorView, StridedHostCopy) {
  auto t = tensor_from<float, 2>({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor<float, 2, Host> dst({2, 2});
  copy(t.view().narrow(1, 1, 2), dst.view());
  EXPECT_EQ(to_vector(dst), (std::vector<float>{1, 2, 4, 5}));
}

TEST(TensorView, EigenMapSharesMemory) {
  auto t = tensor_from<float, 2>({1, 2, 3, 4, 5, 6}, {2, 3});
  auto m = as_matrix(t.view());
  EXPECT_EQ(m(1, 0), 4);
  m(0, 2) = 10;
  EXPECT_EQ(t(0, 2), 10);
  auto sub = as_matrix(t.view().narrow(1, 1, 2));
  EXPECT_EQ(sub(1, 1), 6);
  Eigen::VectorXf x(3);
  x << 1, 1, 1;
  Eigen::VectorXf y = as_matrix(t.cview()) * x;
  EXPECT_EQ(y(0), 1 + 2 + 10);
}

}  // namespace
}  // namespace bimamba
