// CUDA CPU emulator: stands in for the toolkit's <mma.h> (tools/cuda_emu/README.md), the WMMA API of
// namespace nvcuda::wmma, for the TF32 shape only: m16n16k8 with precision::tf32 operands and a float
// accumulator. Any other shape or type names an incomplete fragment and does not compile.
//
// The model. On the GPU a fragment is spread over the 32 lanes of a warp in an unspecified layout, and every WMMA
// call is warp-collective. Here every CUDA thread is a fiber, and every lane holds the WHOLE logical tile in its own
// fragment: x[num_elements] with num_elements = rows * cols, logical element (r, c) at x[r * cols + c]. Each lane
// loads, multiplies and stores the whole tile by itself, so the calls need no collective, and the emulator does NOT
// check that all lanes of a warp call them together (or with the same arguments): a WMMA call under divergent
// control flow runs here although it is undefined on the GPU. Kernels may only apply the same element-wise
// operation to every x[i] (a fill, a scale, wmma::__float_to_tf32), which gives the same result under both layouts;
// code that depends on which lane holds which element (x[i] for a particular i) is not portable and not emulated.
//
// Checked as the CUDA C++ Programming Guide requires (a bimamba_emu::Error thrown out of the launch, naming the
// kernel, block and thread): load_matrix_sync and store_matrix_sync need a 256-bit (32-byte) aligned pointer and an
// ldm that is a multiple of 4 elements (16 bytes) for float / tf32.
#pragma once

#include "bimamba_emu.hpp"

#include <cstdint>
#include <sstream>
#include <string>

namespace nvcuda {
namespace wmma {

// ---- tags -------------------------------------------------------------------------------------------------
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision {
struct tf32 {};
}  // namespace precision

enum layout_t { mem_row_major, mem_col_major };

// cvt.rna.tf32.f32: to nearest, ties away from zero, to 10 explicit mantissa bits; the result is a float whose low
// 13 bits are zero. Inf and NaN pass through unchanged (a NaN whose payload lies only in the low 13 bits stays a
// NaN). A carry out of the largest finite values gives Inf, as round-to-nearest does.
inline float __float_to_tf32(float in) {
  const unsigned u = __float_as_uint(in);
  if ((u & 0x7f800000u) == 0x7f800000u) return in;
  // Sign and magnitude: adding half a unit of the 10th mantissa bit to the magnitude bits rounds the magnitude to
  // nearest with ties up, which is away from zero for either sign; a carry into the exponent is the right result.
  return __uint_as_float((u + 0x1000u) & 0xffffe000u);
}

}  // namespace wmma
}  // namespace nvcuda

namespace bimamba_emu {
namespace wmma {

// What the tensor core does with an fp32 register that holds more than TF32 precision: it ignores the low 13
// mantissa bits (truncation toward zero). A NaN stays a NaN (the emulator does not turn a NaN whose payload is only
// in those bits into Inf; either way the result is not finite).
inline float tf32_truncate(float v) {
  const unsigned u = __float_as_uint(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) return v;
  return __uint_as_float(u & 0xffffe000u);
}

inline std::string pointer_text(const void* p) {
  std::ostringstream o;
  o << p;
  return o.str();
}

// The requirements of load_matrix_sync / store_matrix_sync for 32-bit elements.
inline void check_access(const char* fn, const void* p, unsigned ldm) {
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0)
    throw Error(std::string("nvcuda::wmma::") + fn + ": the pointer " + pointer_text(p) +
                " is not 256-bit (32-byte) aligned, as WMMA requires");
  if (ldm % 4 != 0)
    throw Error(std::string("nvcuda::wmma::") + fn + ": ldm " + std::to_string(ldm) +
                " is not a multiple of 4 elements (16 bytes), as WMMA requires for float / tf32");
}

// The storage of every emulated fragment: the whole Rows x Cols tile, row by row.
template <class Element, int Rows, int Cols>
struct tile {
  static constexpr int rows = Rows;
  static constexpr int cols = Cols;
  static constexpr int num_elements = Rows * Cols;
  static constexpr int num_storage_elements = Rows * Cols;
  typedef Element element_type;      // precision::tf32 for the operands, float for the accumulator, as in CUDA
  typedef float storage_element_type;
  float x[num_elements];
};

template <class T>
struct is_layout : std::false_type {};
template <>
struct is_layout<nvcuda::wmma::row_major> : std::true_type {};
template <>
struct is_layout<nvcuda::wmma::col_major> : std::true_type {};

// elem(r, c) of a Rows x Cols matrix at p: row-major p[r * ldm + c], column-major p[c * ldm + r].
template <class Tile>
void load(Tile& f, const float* p, unsigned ldm, bool row_major, const char* fn) {
  check_access(fn, p, ldm);
  for (int r = 0; r < Tile::rows; ++r)
    for (int c = 0; c < Tile::cols; ++c)
      f.x[r * Tile::cols + c] = row_major ? p[size_t(r) * ldm + c] : p[size_t(c) * ldm + r];
}

}  // namespace wmma
}  // namespace bimamba_emu

namespace nvcuda {
namespace wmma {

// ---- fragments: only the m16n16k8 TF32 ones exist ----------------------------------------------------------
template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment;

template <class Layout>
struct fragment<matrix_a, 16, 16, 8, precision::tf32, Layout> : bimamba_emu::wmma::tile<precision::tf32, 16, 8> {
  static_assert(bimamba_emu::wmma::is_layout<Layout>::value, "a matrix_a fragment needs row_major or col_major");
};
template <class Layout>
struct fragment<matrix_b, 16, 16, 8, precision::tf32, Layout> : bimamba_emu::wmma::tile<precision::tf32, 8, 16> {
  static_assert(bimamba_emu::wmma::is_layout<Layout>::value, "a matrix_b fragment needs row_major or col_major");
};
template <>
struct fragment<accumulator, 16, 16, 8, float> : bimamba_emu::wmma::tile<float, 16, 16> {};

// ---- fill ---------------------------------------------------------------------------------------------------
template <class Use, int M, int N, int K, class T, class Layout>
inline void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, float v) {
  for (int i = 0; i < f.num_elements; ++i) f.x[i] = v;
}

// ---- load / store ---------------------------------------------------------------------------------------------
// matrix_a is 16 x 8 (M x K), matrix_b 8 x 16 (K x N); the fragment's Layout is how the tile lies in memory.
template <class Use, class Layout>
inline void load_matrix_sync(fragment<Use, 16, 16, 8, precision::tf32, Layout>& f, const float* p, unsigned ldm) {
  bimamba_emu::wmma::load(f, p, ldm, std::is_same<Layout, row_major>::value, "load_matrix_sync");
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 8, float>& f, const float* p, unsigned ldm,
                             layout_t layout) {
  bimamba_emu::wmma::load(f, p, ldm, layout == mem_row_major, "load_matrix_sync");
}

inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 8, float>& f, unsigned ldm,
                              layout_t layout) {
  bimamba_emu::wmma::check_access("store_matrix_sync", p, ldm);
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 16; ++c)
      (layout == mem_row_major ? p[size_t(r) * ldm + c] : p[size_t(c) * ldm + r]) = f.x[r * 16 + c];
}

// ---- multiply-accumulate ---------------------------------------------------------------------------------------
// d(r, c) = c(r, c) + sum over k of tf32(a(r, k)) * tf32(b(k, c)), with tf32() the truncation above. The products of
// two TF32 values are exact in float; they are added in float, in k order, to c(r, c). (The tensor core's own order
// and internal rounding of that sum differ in the last bits.) d may be c: each element of c is read before the same
// element of d is written, and no other.
template <class LayoutA, class LayoutB>
inline void mma_sync(fragment<accumulator, 16, 16, 8, float>& d,
                     const fragment<matrix_a, 16, 16, 8, precision::tf32, LayoutA>& a,
                     const fragment<matrix_b, 16, 16, 8, precision::tf32, LayoutB>& b,
                     const fragment<accumulator, 16, 16, 8, float>& c) {
  using bimamba_emu::wmma::tf32_truncate;
  for (int r = 0; r < 16; ++r)
    for (int n = 0; n < 16; ++n) {
      float acc = c.x[r * 16 + n];
      for (int k = 0; k < 8; ++k) {
        const float product = tf32_truncate(a.x[r * 8 + k]) * tf32_truncate(b.x[k * 16 + n]);
        acc += product;
      }
      d.x[r * 16 + n] = acc;
    }
}

}  // namespace wmma
}  // namespace nvcuda
