// The CUDA CPU emulator's fake CUDA (tools/cuda_emu/README.md), force-included into every translation unit
// (g++ -include bimamba_emu.hpp), as nvcc force-includes cuda_runtime.h:
//   - the CUDA keywords as macros (__global__, __device__, __host__, __launch_bounds__, ...); __shared__, launches
//     and inline PTX are rewritten by transform.py
//   - threadIdx / blockIdx / blockDim / gridDim: the values of the emulated thread that runs now
//   - device intrinsics: barriers and warp collectives (switch between the block's fibers), atomics (plain
//     read-modify-writes: one OS thread runs every emulated thread), math, bit and load intrinsics
//   - kernel launches (<<< >>>, cudaLaunchKernelEx) and the runtime API subset the library calls, synchronous
//   - __nv_bfloat16 (round to nearest even)
// The machinery (fibers, scheduler, device memory, cuBLAS) lives in emu_runtime.cpp.
#pragma once

#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- keywords --------------------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__
#define __launch_bounds__(...)
#define __grid_constant__
#define __managed__
#define __constant__
#define __align__(n) __attribute__((aligned(n)))
// transform.py turns every __shared__ declaration it understands into a static; a leftover names itself:
#define __shared__ bimamba_emu_shared_declaration_not_rewritten_by_transform_py

// ---- vector types and dim3 -------------------------------------------------------------------------------
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return {x, y, z}; }
};
#define BIMAMBA_EMU_VEC2(T, N, A) \
  struct __attribute__((aligned(A))) N { T x, y; };   \
  inline N make_##N(T x, T y) { return {x, y}; }
#define BIMAMBA_EMU_VEC4(T, N, A) \
  struct __attribute__((aligned(A))) N { T x, y, z, w; }; \
  inline N make_##N(T x, T y, T z, T w) { return {x, y, z, w}; }
BIMAMBA_EMU_VEC2(float, float2, 8)
BIMAMBA_EMU_VEC4(float, float4, 16)
BIMAMBA_EMU_VEC2(double, double2, 16)
BIMAMBA_EMU_VEC2(int, int2, 8)
BIMAMBA_EMU_VEC4(int, int4, 16)
BIMAMBA_EMU_VEC2(unsigned, uint2, 8)
BIMAMBA_EMU_VEC4(unsigned, uint4, 16)
BIMAMBA_EMU_VEC2(long long, longlong2, 16)
BIMAMBA_EMU_VEC2(unsigned long long, ulonglong2, 16)
#undef BIMAMBA_EMU_VEC2
#undef BIMAMBA_EMU_VEC4

// ---- runtime types ---------------------------------------------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorLaunchOutOfResources = 7,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorCooperativeLaunchTooLarge = 720,
  cudaErrorNotSupported = 801,
  cudaErrorStreamCaptureUnsupported = 900,
};
typedef cudaError_t cudaError;
struct CUstream_st;
typedef CUstream_st* cudaStream_t;
struct CUevent_st;
typedef CUevent_st* cudaEvent_t;
struct CUmemPoolHandle_st;
typedef CUmemPoolHandle_st* cudaMemPool_t;
struct CUgraph_st;
typedef CUgraph_st* cudaGraph_t;
struct CUgraphExec_st;
typedef CUgraphExec_st* cudaGraphExec_t;
#define cudaStreamLegacy ((cudaStream_t)0x1)
#define cudaStreamPerThread ((cudaStream_t)0x2)
#define cudaStreamDefault 0x0
#define cudaStreamNonBlocking 0x1
#define cudaEventDefault 0x0
#define cudaEventDisableTiming 0x2

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrL2CacheSize = 38,
  cudaDevAttrMaxThreadsPerMultiProcessor = 39,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrCooperativeLaunch = 95,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
  cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
  cudaDevAttrMemoryPoolsSupported = 115,
};
enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};
enum cudaMemPoolAttr {
  cudaMemPoolReuseFollowEventDependencies = 1,
  cudaMemPoolReuseAllowOpportunistic = 2,
  cudaMemPoolReuseAllowInternalDependencies = 3,
  cudaMemPoolAttrReleaseThreshold = 4,
  cudaMemPoolAttrReservedMemCurrent = 5,
  cudaMemPoolAttrReservedMemHigh = 6,
  cudaMemPoolAttrUsedMemCurrent = 7,
  cudaMemPoolAttrUsedMemHigh = 8,
};
enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2
};
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2
};
enum cudaLaunchAttributeID {
  cudaLaunchAttributeCooperative = 2,
  cudaLaunchAttributeProgrammaticStreamSerialization = 5,
};
union cudaLaunchAttributeValue {
  char pad[64];
  int cooperative;
  int programmaticStreamSerializationAllowed;
};
struct cudaLaunchAttribute {
  cudaLaunchAttributeID id;
  char pad[8 - sizeof(cudaLaunchAttributeID)];
  cudaLaunchAttributeValue val;
};
struct cudaLaunchConfig_t {
  dim3 gridDim;
  dim3 blockDim;
  size_t dynamicSmemBytes;
  cudaStream_t stream;
  cudaLaunchAttribute* attrs;
  unsigned int numAttrs;
};
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem, sharedMemPerBlock, sharedMemPerBlockOptin, sharedMemPerMultiprocessor;
  int regsPerBlock, warpSize, maxThreadsPerBlock, maxThreadsDim[3], maxGridSize[3];
  int major, minor, multiProcessorCount, l2CacheSize, maxThreadsPerMultiProcessor, cooperativeLaunch;
};

namespace bimamba_emu {

// A fault of the emulated program: a divergent barrier, a bad launch argument cuBLAS or CUDA would not detect,
// inline PTX the emulator does not know. Thrown out of the launch or call that found it.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace rt {
// The emulated thread that runs now (set by the scheduler before it resumes a fiber).
struct Now {
  uint3 thread_idx{0, 0, 0}, block_idx{0, 0, 0};
  dim3 block_dim{1, 1, 1}, grid_dim{1, 1, 1};
};
extern Now now;

// Barriers and warp collectives: they switch to the block's other fibers until every participant has arrived.
void syncthreads(const char* file, int line);
enum class Collective { SyncWarp, Shfl, ShflUp, ShflDown, ShflXor, Ballot, Any, All };
void warp_collective(Collective kind, unsigned mask, int arg, int width, const void* in, void* out, size_t bytes,
                     const char* file, int line);
unsigned active_mask();

// Kernel execution: invoke(data) runs one emulated thread's kernel body.
struct Launch {
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
  const void* kernel;                   // for the name in reports and the per-kernel attributes
  void (*invoke)(const void* data);
  const void* data;
  int cooperative;
};
cudaError_t run_kernel(const Launch& launch);
void set_last_error(cudaError_t e);
void check_kernel_pointer(const void* p, const void* kernel, int index);

// Shared memory: the dynamic buffer of the running block, and the once-per-block poisoning of static arrays.
void* dynamic_shared();
void static_shared(void* p, size_t bytes);
void check_launch_bounds(unsigned max_threads);
void inline_asm(const char* ptx);
[[noreturn]] void trap(const char* what);
// cuda::atomic_ref::load: count_spin_load before the read (in a cooperative launch it ends the thread's turn;
// elsewhere it throws when a block seems to wait for another one), spin_load_seen after it: a value the thread
// had not seen at that address is progress (a poll that walks several words still moves).
void count_spin_load();
void spin_load_seen(const void* p, uint64_t value);
// cp.async (ops/cuda/async_copy.cuh, through transform.py's hooks): the copy lands in `dst` only when the issuing
// thread waits (or ends); until then `dst` holds poison, so a read before the wait shows as NaN.
void async_copy(void* dst, const void* src, size_t bytes);
void land_async_copies();

// Device memory (guard pages, NaN poison): is [p, p + bytes) inside one live allocation?
bool device_range(const void* p, size_t bytes);
}  // namespace rt

// Fills device memory with 0xFF (NaN) bytes; host memory is left alone (transform.py's workspace hook).
inline void poison_device(void* p, size_t bytes) {
  if (bytes && rt::device_range(p, bytes)) std::memset(p, 0xFF, bytes);
}

// ---- what transform.py's rewrites call --------------------------------------------------------------------
struct LaunchConfig {
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
  LaunchConfig(dim3 g, dim3 b, size_t s = 0, cudaStream_t st = nullptr) : grid(g), block(b), smem(s), stream(st) {}
};

template <class P>
P implicit_convert(P p) {  // copy-initialisation: the conversions a kernel launch allows
  return p;
}

template <class T>
void check_param(const T& p, const void* kernel, int index) {  // a pointer parameter must point to device memory
  if constexpr (std::is_pointer_v<T>) rt::check_kernel_pointer(p, kernel, index);
}

template <class... P, class... A>
cudaError_t launch_with(void (*kernel)(P...), const LaunchConfig& cfg, int cooperative, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "kernel launch with the wrong number of arguments");
  static_assert((std::is_trivially_copyable_v<std::decay_t<P>> && ...),
                "kernel parameters must be trivially copyable (they are copied to the device byte by byte)");
  using Params = std::tuple<std::decay_t<P>...>;
  static_assert(sizeof(Params) <= 32764, "kernel parameters exceed CUDA's 32764 bytes");
  const Params params(implicit_convert<std::decay_t<P>>(std::forward<A>(args))...);
  std::apply([&](const auto&... p) { int i = 0; (check_param(p, (const void*)kernel, i++), ...); }, params);
  struct Data {
    void (*kernel)(P...);
    const Params* params;
  } data{kernel, &params};
  rt::Launch l{cfg.grid, cfg.block, cfg.smem, cfg.stream, (const void*)kernel,
               [](const void* d) {
                 const Data& dd = *static_cast<const Data*>(d);
                 std::apply(dd.kernel, *dd.params);  // each emulated thread gets its own copies
               },
               &data, cooperative};
  return rt::run_kernel(l);
}

// kernel<<<cfg>>>(args...): errors of the configuration go to cudaGetLastError, as in CUDA.
template <class... P, class... A>
void launch(void (*kernel)(P...), const LaunchConfig& cfg, A&&... args) {
  rt::set_last_error(launch_with(kernel, cfg, 0, std::forward<A>(args)...));
}

template <class T>
T* dynamic_shared() {
  return static_cast<T*>(rt::dynamic_shared());
}
inline void static_shared(void* p, size_t bytes) { rt::static_shared(p, bytes); }
inline void check_launch_bounds(unsigned max_threads) { rt::check_launch_bounds(max_threads); }
inline void inline_asm(const char* ptx) { rt::inline_asm(ptx); }

// ---- warp collectives -------------------------------------------------------------------------------------
template <class T>
T shfl(rt::Collective kind, const char* file, int line, unsigned mask, T v, int lane_or_delta, int width = 32) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 16, "shuffle of a type above 16 bytes");
  T r;
  rt::warp_collective(kind, mask, lane_or_delta, width, &v, &r, sizeof(T), file, line);
  return r;
}
inline unsigned vote(rt::Collective kind, const char* file, int line, unsigned mask, bool pred) {
  int p = pred ? 1 : 0;
  unsigned r = 0;
  rt::warp_collective(kind, mask, 0, 32, &p, &r, sizeof(int), file, line);
  return r;
}
}  // namespace bimamba_emu

// ---- built-in variables -----------------------------------------------------------------------------------
inline const uint3& threadIdx = bimamba_emu::rt::now.thread_idx;
inline const uint3& blockIdx = bimamba_emu::rt::now.block_idx;
inline const dim3& blockDim = bimamba_emu::rt::now.block_dim;
inline const dim3& gridDim = bimamba_emu::rt::now.grid_dim;
inline constexpr int warpSize = 32;

// ---- barriers, warp intrinsics (macros: they record the call site for the reports) ------------------------
#define __syncthreads() ::bimamba_emu::rt::syncthreads(__FILE__, __LINE__)
#define __syncwarp(...) ::bimamba_emu::SyncWarp{__FILE__, __LINE__}(__VA_ARGS__)
#define __shfl_sync(...) ::bimamba_emu::shfl(::bimamba_emu::rt::Collective::Shfl, __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_up_sync(...) ::bimamba_emu::shfl(::bimamba_emu::rt::Collective::ShflUp, __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_down_sync(...) \
  ::bimamba_emu::shfl(::bimamba_emu::rt::Collective::ShflDown, __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) \
  ::bimamba_emu::shfl(::bimamba_emu::rt::Collective::ShflXor, __FILE__, __LINE__, __VA_ARGS__)
#define __ballot_sync(mask, p) ::bimamba_emu::vote(::bimamba_emu::rt::Collective::Ballot, __FILE__, __LINE__, mask, p)
#define __any_sync(mask, p) int(::bimamba_emu::vote(::bimamba_emu::rt::Collective::Any, __FILE__, __LINE__, mask, p))
#define __all_sync(mask, p) int(::bimamba_emu::vote(::bimamba_emu::rt::Collective::All, __FILE__, __LINE__, mask, p))
namespace bimamba_emu {
struct SyncWarp {
  const char* file;
  int line;
  void operator()(unsigned mask = 0xffffffffu) const {
    int none = 0;
    rt::warp_collective(rt::Collective::SyncWarp, mask, 0, 32, &none, &none, sizeof(int), file, line);
  }
};
}  // namespace bimamba_emu
inline unsigned __activemask() { return bimamba_emu::rt::active_mask(); }
inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __threadfence_system() {}
inline void __nanosleep(unsigned) {}
#define __trap() ::bimamba_emu::rt::trap("__trap()")
#define __brkpt() ::bimamba_emu::rt::trap("__brkpt()")

// ---- loads and stores with cache hints: plain accesses -----------------------------------------------------
template <class T> inline T __ldg(const T* p) { return *p; }
template <class T> inline T __ldcg(const T* p) { return *p; }
template <class T> inline T __ldca(const T* p) { return *p; }
template <class T> inline T __ldcs(const T* p) { return *p; }
template <class T> inline T __ldlu(const T* p) { return *p; }
template <class T> inline T __ldcv(const T* p) { return *p; }
template <class T> inline void __stcg(T* p, T v) { *p = v; }
template <class T> inline void __stcs(T* p, T v) { *p = v; }
template <class T> inline void __stwb(T* p, T v) { *p = v; }
template <class T> inline void __stwt(T* p, T v) { *p = v; }

// ---- atomics: one OS thread runs every emulated thread, and none switches inside an atomic ----------------
#define BIMAMBA_EMU_ATOMIC(NAME, EXPR)                      \
  template <class T, class U>                               \
  inline T NAME(T* p, U value) {                            \
    const T old = *p;                                       \
    const T v = T(value);                                   \
    *p = EXPR;                                              \
    return old;                                             \
  }
BIMAMBA_EMU_ATOMIC(atomicAdd, T(old + v))
BIMAMBA_EMU_ATOMIC(atomicSub, T(old - v))
BIMAMBA_EMU_ATOMIC(atomicExch, v)
BIMAMBA_EMU_ATOMIC(atomicMin, v < old ? v : old)
BIMAMBA_EMU_ATOMIC(atomicMax, v > old ? v : old)
BIMAMBA_EMU_ATOMIC(atomicAnd, T(old & v))
BIMAMBA_EMU_ATOMIC(atomicOr, T(old | v))
BIMAMBA_EMU_ATOMIC(atomicXor, T(old ^ v))
BIMAMBA_EMU_ATOMIC(atomicInc, old >= v ? T(0) : T(old + 1))
BIMAMBA_EMU_ATOMIC(atomicDec, (old == 0 || old > v) ? v : T(old - 1))
#undef BIMAMBA_EMU_ATOMIC
template <class T, class U, class V>
inline T atomicCAS(T* p, U compare, V value) {
  const T old = *p;
  if (old == T(compare)) *p = T(value);
  return old;
}

// ---- math and bit intrinsics ------------------------------------------------------------------------------
template <class A, class B, std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>, int> = 0>
inline std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  if constexpr (std::is_floating_point_v<C>) return std::fmin(C(a), C(b));
  else return C(a) < C(b) ? C(a) : C(b);
}
template <class A, class B, std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>, int> = 0>
inline std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  if constexpr (std::is_floating_point_v<C>) return std::fmax(C(a), C(b));
  else return C(a) < C(b) ? C(b) : C(a);
}
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return powf(10.0f, x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanhf(float x) { return tanhf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
inline float exp10f(float x) { return powf(10.0f, x); }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline int __float_as_int(float f) { int u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int u) { float f; std::memcpy(&f, &u, 4); return f; }
inline long long __double_as_longlong(double d) { long long u; std::memcpy(&u, &d, 8); return u; }
inline double __longlong_as_double(long long u) { double d; std::memcpy(&d, &u, 8); return d; }
inline int __float2int_rn(float x) { return int(nearbyintf(x)); }
inline int __float2int_rz(float x) { return int(x); }
inline int __float2int_rd(float x) { return int(floorf(x)); }
inline int __float2int_ru(float x) { return int(ceilf(x)); }
inline unsigned __float2uint_rn(float x) { return unsigned(nearbyintf(x)); }
inline long long __float2ll_rn(float x) { return (long long)nearbyintf(x); }
inline long long __double2ll_rn(double x) { return (long long)nearbyint(x); }
inline int __double2int_rn(double x) { return int(nearbyint(x)); }
inline float __int2float_rn(int x) { return float(x); }
inline float __ll2float_rn(long long x) { return float(x); }
inline float __double2float_rn(double x) { return float(x); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
inline unsigned __umulhi(unsigned a, unsigned b) { return unsigned((unsigned long long)a * b >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline int __mul24(int a, int b) { return a * b; }
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  const unsigned long long v = ((unsigned long long)y << 32) | x;
  unsigned r = 0;
  for (int i = 0; i < 4; ++i) r |= unsigned((v >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
  return r;
}
inline size_t __cvta_generic_to_shared(const void* p) { return size_t(p); }  // for inline PTX, not emulated
inline long long clock64() { return (long long)__builtin_ia32_rdtsc(); }

// ---- bfloat16 ---------------------------------------------------------------------------------------------
namespace bimamba_emu {
inline unsigned short float_to_bf16_rn(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fff;  // NaN: the canonical quiet NaN, as CUDA
  u += 0x7fffu + ((u >> 16) & 1u);
  return (unsigned short)(u >> 16);
}
inline float bf16_to_float(unsigned short b) { return __uint_as_float(unsigned(b) << 16); }
}  // namespace bimamba_emu

struct __nv_bfloat16 {
  unsigned short __x;
  __nv_bfloat16() = default;
  __nv_bfloat16(float f) : __x(bimamba_emu::float_to_bf16_rn(f)) {}
  __nv_bfloat16(double f) : __x(bimamba_emu::float_to_bf16_rn(float(f))) {}
  operator float() const { return bimamba_emu::bf16_to_float(__x); }
};
struct __nv_bfloat162 {
  __nv_bfloat16 x, y;
};
typedef __nv_bfloat16 nv_bfloat16;
typedef __nv_bfloat162 nv_bfloat162;
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16_rz(float f) {
  __nv_bfloat16 r;
  r.__x = (unsigned short)(__float_as_uint(f) >> 16);
  return r;
}
inline float __bfloat162float(__nv_bfloat16 b) { return float(b); }
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) { return {__nv_bfloat16(a), __nv_bfloat16(b)}; }
inline __nv_bfloat162 __float2bfloat162_rn(float a) { return {__nv_bfloat16(a), __nv_bfloat16(a)}; }
inline float __low2float(__nv_bfloat162 v) { return float(v.x); }
inline float __high2float(__nv_bfloat162 v) { return float(v.y); }
inline float2 __bfloat1622float2(__nv_bfloat162 v) { return {float(v.x), float(v.y)}; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.__x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) {
  __nv_bfloat16 r;
  r.__x = u;
  return r;
}

// ---- runtime API (emu_runtime.cpp) ------------------------------------------------------------------------
const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaMalloc(void** p, size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t stream);
cudaError_t cudaFreeAsync(void* p, cudaStream_t stream);
cudaError_t cudaMallocHost(void** p, size_t bytes);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemcpy2D(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                         cudaMemcpyKind kind);
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device);
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value);
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value);
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamGetFlags(cudaStream_t stream, unsigned* flags);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status);
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

template <class T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
template <class T>
cudaError_t cudaMallocAsync(T** p, size_t bytes, cudaStream_t stream) {
  return cudaMallocAsync(reinterpret_cast<void**>(p), bytes, stream);
}
template <class T>
cudaError_t cudaMallocHost(T** p, size_t bytes) {
  return cudaMallocHost(reinterpret_cast<void**>(p), bytes);
}

namespace bimamba_emu::rt {
cudaError_t func_set_attribute(const void* kernel, cudaFuncAttribute attr, int value);
cudaError_t occupancy(int* blocks, const void* kernel, int block_size, size_t smem);
}  // namespace bimamba_emu::rt

template <class T>
cudaError_t cudaFuncSetAttribute(T* kernel, cudaFuncAttribute attr, int value) {
  return bimamba_emu::rt::func_set_attribute((const void*)kernel, attr, value);
}
template <class T>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, T* kernel, int block_size, size_t smem) {
  return bimamba_emu::rt::occupancy(blocks, (const void*)kernel, block_size, smem);
}

template <class... P, class... A>
cudaError_t cudaLaunchKernelEx(const cudaLaunchConfig_t* config, void (*kernel)(P...), A&&... args) {
  if (!config) return cudaErrorInvalidValue;
  int cooperative = 0;
  for (unsigned i = 0; i < config->numAttrs; ++i)
    if (config->attrs[i].id == cudaLaunchAttributeCooperative) cooperative = config->attrs[i].val.cooperative;
  return bimamba_emu::launch_with(kernel,
                                  bimamba_emu::LaunchConfig(config->gridDim, config->blockDim,
                                                            config->dynamicSmemBytes, config->stream),
                                  cooperative, std::forward<A>(args)...);
}
