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

// Rank-2 views with contiguous rows at a pitch (LanguageModel::forward_last takes the last position of every
// sequence this way): within the backend and both ways across, every element lands where it belongs; a view
// whose rows are not contiguous is refused across backends rather than copied wrongly.
TYPED_TEST(TensorTest, CopiesRowsAtAPitch) {
  using B = TypeParam;
  const int64_t rows = 5, cols = 7, pitch = 11;
  const auto values = test::random_floats(size_t(rows * pitch), 2);
  const auto wide = to<B>(tensor_from<float, 2>(values, {rows, pitch}));  // (rows, pitch)
  const TensorView<const float, 2, B> block(wide.data() + 3, {rows, cols}, {pitch, 1});  // columns 3 .. 9
  Tensor<float, 2, B> packed({rows, cols});
  copy(block, packed.view());
  const auto got = to_vector(packed);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) EXPECT_EQ(got[size_t(r * cols + c)], values[size_t(r * pitch + 3 + c)]);

  Tensor<float, 2, Host> host_wide({rows, pitch});  // device -> host into a pitched destination, and back
  copy(TensorView<const float, 2, B>(packed.cview()), TensorView<float, 2, Host>(host_wide.data() + 2, {rows, cols}, {pitch, 1}));
  Tensor<float, 2, B> again({rows, cols});
  copy(TensorView<const float, 2, Host>(host_wide.data() + 2, {rows, cols}, {pitch, 1}), again.view());
  EXPECT_EQ(to_vector(again), got);
  for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(host_wide(r, 0), 0.0f);  // untouched outside the block

  if constexpr (!is_host_v<B>) {
    const TensorView<const float, 2, B> strided_columns(wide.data(), {rows, 3}, {pitch, 2});
    Tensor<float, 2, B> out({rows, 3});
    EXPECT_THROW(copy(strided_columns, out.view()), InvalidArgument);
  }
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
