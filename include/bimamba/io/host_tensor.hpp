// HostTensor: one named tensor as it lies in a file: dtype, shape and the raw little-endian row-major bytes.
//
// The bytes are either owned (a std::vector) or a view into memory some reader keeps alive (a memory-mapped
// checkpoint); either way a shared_ptr owner keeps them valid for as long as any copy of the HostTensor lives,
// so copying a HostTensor never copies its bytes and a multi-GB checkpoint is read without copies.
//
// Invariant (checked on construction, FormatError naming the tensor otherwise):
//   nbytes() == numel() * dtype_size(dtype), every extent >= 0, numel() fits in int64.
// A rank-0 tensor (shape []) holds one element.
//
// Conversions (all copy into new memory):
//   to_float(t)    -> std::vector<float>   F32/F64/F16/BF16/F8_E4M3/F8_E5M2, all integer types and BOOL
//   to_int64(t)    -> std::vector<int64_t> integer types and BOOL (U64 above INT64_MAX is refused)
//   to_int32(t)    -> std::vector<int32_t> the same, every value range-checked (token ids)
//   to_tensor<R>(t) -> Tensor<float, R, Host> of t's shape; FormatError naming the tensor if rank != R.
// Builders for writers: HostTensor::from_values(name, shape, values), HostTensor::from_view(name, view).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/dtype.hpp"
#include "../core/error.hpp"
#include "../tensor/tensor.hpp"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "bimamba's file readers assume a little-endian host"
#endif

namespace bimamba {

namespace detail {
inline std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << '[';
  for (size_t d = 0; d < shape.size(); ++d) out << (d ? ", " : "") << shape[d];
  out << ']';
  return out.str();
}

// Product of the extents; FormatError naming `what` for a negative extent or an int64 overflow.
inline int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& what) {
  int64_t n = 1;
  for (int64_t e : shape) {
    if (e < 0) BIMAMBA_THROW(FormatError, what, ": negative extent in shape ", shape_to_string(shape));
    if (e != 0 && n > std::numeric_limits<int64_t>::max() / e)
      BIMAMBA_THROW(FormatError, what, ": shape ", shape_to_string(shape), " has too many elements");
    n *= e;
  }
  return n;
}

template <class T>
T load_unaligned(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// OCP 8-bit floats. E4M3 ("fn"): bias 7, no infinities, S.1111.111 is NaN. E5M2: the upper byte of a float16.
inline float f8_e4m3_to_float(uint8_t b) {
  const float sign = (b & 0x80) ? -1.0f : 1.0f;
  const int exponent = (b >> 3) & 0xf;
  const int mantissa = b & 0x7;
  if (exponent == 0xf && mantissa == 0x7) return std::numeric_limits<float>::quiet_NaN();
  if (exponent == 0) return sign * std::ldexp(float(mantissa), -9);  // subnormal: m * 2^-3 * 2^-6
  return sign * std::ldexp(1.0f + float(mantissa) / 8.0f, exponent - 7);
}
inline float f8_e5m2_to_float(uint8_t b) { return float16::to_float(uint16_t(uint16_t(b) << 8)); }
}  // namespace detail

class HostTensor {
 public:
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;

  HostTensor() = default;

  // Owns `bytes`.
  HostTensor(std::string name_, DType dtype_, std::vector<int64_t> shape_, std::vector<uint8_t> bytes)
      : name(std::move(name_)), dtype(dtype_), shape(std::move(shape_)) {
    auto owned = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
    data_ = owned->data();
    nbytes_ = owned->size();
    owner_ = std::move(owned);
    check_size();
  }

  // Views nbytes at `data`, which stays valid while `owner` lives.
  HostTensor(std::string name_, DType dtype_, std::vector<int64_t> shape_, const uint8_t* data, size_t nbytes,
             std::shared_ptr<const void> owner)
      : name(std::move(name_)), dtype(dtype_), shape(std::move(shape_)), data_(data), nbytes_(nbytes),
        owner_(std::move(owner)) {
    check_size();
  }

  // A tensor of C++ element type T (float, double, bfloat16, float16, int32_t, int64_t, uint8_t, ...).
  template <class T>
  static HostTensor from_values(std::string name, std::vector<int64_t> shape, const std::vector<T>& values) {
    std::vector<uint8_t> bytes(values.size() * sizeof(T));
    if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
    return HostTensor(std::move(name), dtype_of_v<T>, std::move(shape), std::move(bytes));
  }

  // A copy of a contiguous host view.
  template <class T, int Rank>
  static HostTensor from_view(std::string name, TensorView<const T, Rank, Host> view) {
    BIMAMBA_CHECK(view.is_contiguous(), "HostTensor::from_view: view for '", name, "' is not contiguous");
    std::vector<uint8_t> bytes(size_t(view.numel()) * sizeof(T));
    if (!bytes.empty()) std::memcpy(bytes.data(), view.data(), bytes.size());
    return HostTensor(std::move(name), dtype_of_v<T>, std::vector<int64_t>(view.shape().begin(), view.shape().end()),
                      std::move(bytes));
  }

  int rank() const { return int(shape.size()); }
  int64_t numel() const { return detail::checked_numel(shape, "tensor '" + name + "'"); }
  size_t nbytes() const { return nbytes_; }
  const uint8_t* data() const { return data_; }
  std::string shape_string() const { return detail::shape_to_string(shape); }

 private:
  void check_size() const {
    const int64_t n = numel();
    if (size_t(n) * dtype_size(dtype) != nbytes_)
      BIMAMBA_THROW(FormatError, "tensor '", name, "': ", dtype_name(dtype), " shape ", shape_string(), " needs ",
                    size_t(n) * dtype_size(dtype), " bytes, but ", nbytes_, " are stored");
  }

  const uint8_t* data_ = nullptr;
  size_t nbytes_ = 0;
  std::shared_ptr<const void> owner_;
};

inline std::vector<float> to_float(const HostTensor& t) {
  const size_t n = size_t(t.numel());
  std::vector<float> out(n);
  const uint8_t* p = t.data();
  auto convert = [&](auto load) {
    for (size_t i = 0; i < n; ++i) out[i] = load(i);
  };
  using detail::load_unaligned;
  switch (t.dtype) {
    case DType::F32: if (n) std::memcpy(out.data(), p, n * 4); break;
    case DType::F64: convert([&](size_t i) { return float(load_unaligned<double>(p + 8 * i)); }); break;
    case DType::F16: convert([&](size_t i) { return float16::to_float(load_unaligned<uint16_t>(p + 2 * i)); }); break;
    case DType::BF16:
      convert([&](size_t i) { return float(bfloat16::from_bits(load_unaligned<uint16_t>(p + 2 * i))); });
      break;
    case DType::F8_E4M3: convert([&](size_t i) { return detail::f8_e4m3_to_float(p[i]); }); break;
    case DType::F8_E5M2: convert([&](size_t i) { return detail::f8_e5m2_to_float(p[i]); }); break;
    case DType::Bool: convert([&](size_t i) { return p[i] ? 1.0f : 0.0f; }); break;
    case DType::U8: convert([&](size_t i) { return float(p[i]); }); break;
    case DType::I8: convert([&](size_t i) { return float(int8_t(p[i])); }); break;
    case DType::U16: convert([&](size_t i) { return float(load_unaligned<uint16_t>(p + 2 * i)); }); break;
    case DType::I16: convert([&](size_t i) { return float(load_unaligned<int16_t>(p + 2 * i)); }); break;
    case DType::U32: convert([&](size_t i) { return float(load_unaligned<uint32_t>(p + 4 * i)); }); break;
    case DType::I32: convert([&](size_t i) { return float(load_unaligned<int32_t>(p + 4 * i)); }); break;
    case DType::U64: convert([&](size_t i) { return float(load_unaligned<uint64_t>(p + 8 * i)); }); break;
    case DType::I64: convert([&](size_t i) { return float(load_unaligned<int64_t>(p + 8 * i)); }); break;
  }
  return out;
}

inline std::vector<int64_t> to_int64(const HostTensor& t) {
  const size_t n = size_t(t.numel());
  std::vector<int64_t> out(n);
  const uint8_t* p = t.data();
  auto convert = [&](auto load) {
    for (size_t i = 0; i < n; ++i) out[i] = load(i);
  };
  using detail::load_unaligned;
  switch (t.dtype) {
    case DType::Bool: convert([&](size_t i) { return int64_t(p[i] != 0); }); break;
    case DType::U8: convert([&](size_t i) { return int64_t(p[i]); }); break;
    case DType::I8: convert([&](size_t i) { return int64_t(int8_t(p[i])); }); break;
    case DType::U16: convert([&](size_t i) { return int64_t(load_unaligned<uint16_t>(p + 2 * i)); }); break;
    case DType::I16: convert([&](size_t i) { return int64_t(load_unaligned<int16_t>(p + 2 * i)); }); break;
    case DType::U32: convert([&](size_t i) { return int64_t(load_unaligned<uint32_t>(p + 4 * i)); }); break;
    case DType::I32: convert([&](size_t i) { return int64_t(load_unaligned<int32_t>(p + 4 * i)); }); break;
    case DType::I64: if (n) std::memcpy(out.data(), p, n * 8); break;
    case DType::U64:
      for (size_t i = 0; i < n; ++i) {
        const uint64_t v = load_unaligned<uint64_t>(p + 8 * i);
        if (v > uint64_t(std::numeric_limits<int64_t>::max()))
          BIMAMBA_THROW(FormatError, "tensor '", t.name, "': U64 value ", v, " at index ", i, " does not fit in int64");
        out[i] = int64_t(v);
      }
      break;
    default:
      BIMAMBA_THROW(FormatError, "tensor '", t.name, "' has dtype ", dtype_name(t.dtype), ", expected an integer dtype");
  }
  return out;
}

inline std::vector<int32_t> to_int32(const HostTensor& t) {
  const std::vector<int64_t> wide = to_int64(t);
  std::vector<int32_t> out(wide.size());
  for (size_t i = 0; i < wide.size(); ++i) {
    if (wide[i] < std::numeric_limits<int32_t>::min() || wide[i] > std::numeric_limits<int32_t>::max())
      BIMAMBA_THROW(FormatError, "tensor '", t.name, "': value ", wide[i], " at index ", i, " does not fit in int32");
    out[i] = int32_t(wide[i]);
  }
  return out;
}

template <int R>
Tensor<float, R, Host> to_tensor(const HostTensor& t) {
  if (t.rank() != R)
    BIMAMBA_THROW(FormatError, "tensor '", t.name, "' has rank ", t.rank(), " (shape ", t.shape_string(),
                  "), expected rank ", R);
  Extents<R> extents{};
  for (int d = 0; d < R; ++d) extents[d] = t.shape[size_t(d)];
  Tensor<float, R, Host> out(extents);
  if (t.dtype == DType::F32) {
    if (t.nbytes()) std::memcpy(out.data(), t.data(), t.nbytes());
  } else {
    const std::vector<float> values = to_float(t);
    if (!values.empty()) std::memcpy(out.data(), values.data(), values.size() * sizeof(float));
  }
  return out;
}

}  // namespace bimamba
