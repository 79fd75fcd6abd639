// Element types and their conversions.
//
// bfloat16 and float16 are 16-bit storage types with float conversions usable on host and device:
//   bfloat16: the upper 16 bits of an IEEE float32, converted with round-to-nearest-even (NaN kept quiet);
//   float16:  IEEE binary16, round-to-nearest-even, subnormals, +-Inf and NaN handled exactly.
// Arithmetic is always done in float; these types only store. DType names the element type of a tensor
// read from or written to a file (the safetensors dtype set).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "config.hpp"
#include "error.hpp"

namespace bimamba {

namespace detail {
BIMAMBA_HOST_DEVICE inline uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}
BIMAMBA_HOST_DEVICE inline float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}
}  // namespace detail

// Brain float: 1 sign, 8 exponent, 7 mantissa bits.
struct bfloat16 {
  uint16_t bits = 0;

  bfloat16() = default;
  BIMAMBA_HOST_DEVICE explicit bfloat16(float f) : bits(from_float(f)) {}
  BIMAMBA_HOST_DEVICE explicit operator float() const { return detail::bits_float(uint32_t(bits) << 16); }
  BIMAMBA_HOST_DEVICE static bfloat16 from_bits(uint16_t b) {
    bfloat16 r;
    r.bits = b;
    return r;
  }

  BIMAMBA_HOST_DEVICE static uint16_t from_float(float f) {
    uint32_t u = detail::float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x0040u);  // NaN stays NaN (quiet)
    u += 0x7fffu + ((u >> 16) & 1u);                                             // round to nearest even
    return uint16_t(u >> 16);
  }
};

// IEEE half precision: 1 sign, 5 exponent, 10 mantissa bits.
struct float16 {
  uint16_t bits = 0;

  float16() = default;
  BIMAMBA_HOST_DEVICE explicit float16(float f) : bits(from_float(f)) {}
  BIMAMBA_HOST_DEVICE explicit operator float() const { return to_float(bits); }
  BIMAMBA_HOST_DEVICE static float16 from_bits(uint16_t b) {
    float16 r;
    r.bits = b;
    return r;
  }

  BIMAMBA_HOST_DEVICE static float to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0x1f) return detail::bits_float(sign | 0x7f800000u | (mantissa << 13));  // Inf / NaN
    if (exponent != 0) return detail::bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    if (mantissa == 0) return detail::bits_float(sign);  // signed zero
    // Subnormal: value = mantissa * 2^-24, exact in float.
    const float magnitude = float(mantissa) * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
  }

  BIMAMBA_HOST_DEVICE static uint16_t from_float(float f) {
    const uint32_t u = detail::float_bits(f);
    const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
    const uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00u);              // NaN
    if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);             // rounds to >= 65520: Inf
    if (abs >= 0x38800000u) {                                            // normal half (>= 2^-14)
      const uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);        // round to nearest even at bit 13
      return uint16_t(sign | ((rounded - 0x38000000u) >> 13));
    }
    if (abs < 0x33000000u) return sign;  // below half the smallest subnormal (2^-25): signed zero
    // Subnormal half: shift the implicit-one mantissa right, rounding to nearest even.
    const uint32_t exponent = abs >> 23;
    const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - exponent;  // 14..24 for exponents 102..112
    const uint32_t halfway = 1u << (shift - 1);
    const uint32_t remainder = mantissa & ((1u << shift) - 1u);
    uint32_t result = mantissa >> shift;
    if (remainder > halfway || (remainder == halfway && (result & 1u))) ++result;
    return uint16_t(sign | result);
  }
};

static_assert(sizeof(bfloat16) == 2 && sizeof(float16) == 2, "16-bit storage types must be 2 bytes");

// Converts any supported element type to float and back.
template <class T>
BIMAMBA_HOST_DEVICE inline float to_float(T v) {
  return static_cast<float>(v);
}
template <class T>
BIMAMBA_HOST_DEVICE inline T from_float(float v) {
  return static_cast<T>(v);
}
template <>
BIMAMBA_HOST_DEVICE inline bfloat16 from_float<bfloat16>(float v) {
  return bfloat16(v);
}
template <>
BIMAMBA_HOST_DEVICE inline float16 from_float<float16>(float v) {
  return float16(v);
}

// The element types of tensors in files (safetensors names in comments).
enum class DType : uint8_t {
  Bool,     // BOOL
  U8,       // U8
  I8,       // I8
  U16,      // U16
  I16,      // I16
  F16,      // F16
  BF16,     // BF16
  U32,      // U32
  I32,      // I32
  F32,      // F32
  U64,      // U64
  I64,      // I64
  F64,      // F64
  F8_E4M3,  // F8_E4M3
  F8_E5M2,  // F8_E5M2
};

inline constexpr DType kAllDTypes[] = {DType::Bool, DType::U8,  DType::I8,  DType::U16,     DType::I16,
                                       DType::F16,  DType::BF16, DType::U32, DType::I32,     DType::F32,
                                       DType::U64,  DType::I64, DType::F64, DType::F8_E4M3, DType::F8_E5M2};

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::Bool: case DType::U8: case DType::I8: case DType::F8_E4M3: case DType::F8_E5M2: return 1;
    case DType::U16: case DType::I16: case DType::F16: case DType::BF16: return 2;
    case DType::U32: case DType::I32: case DType::F32: return 4;
    case DType::U64: case DType::I64: case DType::F64: return 8;
  }
  BIMAMBA_FAIL("dtype_size: invalid DType value ", int(t));
}

// The safetensors spelling of a dtype.
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::Bool: return "BOOL";
    case DType::U8: return "U8";
    case DType::I8: return "I8";
    case DType::U16: return "U16";
    case DType::I16: return "I16";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::U32: return "U32";
    case DType::I32: return "I32";
    case DType::F32: return "F32";
    case DType::U64: return "U64";
    case DType::I64: return "I64";
    case DType::F64: return "F64";
    case DType::F8_E4M3: return "F8_E4M3";
    case DType::F8_E5M2: return "F8_E5M2";
  }
  BIMAMBA_FAIL("dtype_name: invalid DType value ", int(t));
}

// Parses a safetensors dtype name; throws FormatError naming the unknown name.
inline DType dtype_from_name(std::string_view name) {
  for (DType t : kAllDTypes)
    if (name == dtype_name(t)) return t;
  BIMAMBA_THROW(FormatError, "unknown dtype '", std::string(name), "'");
}

// The DType of a C++ element type.
template <class T>
struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };
template <> struct dtype_of<bfloat16> { static constexpr DType value = DType::BF16; };
template <> struct dtype_of<float16> { static constexpr DType value = DType::F16; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::I64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::I32; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::U8; };
template <> struct dtype_of<uint16_t> { static constexpr DType value = DType::U16; };
template <> struct dtype_of<uint32_t> { static constexpr DType value = DType::U32; };
template <> struct dtype_of<uint64_t> { static constexpr DType value = DType::U64; };
template <class T>
inline constexpr DType dtype_of_v = dtype_of<T>::value;

}  // namespace bimamba
