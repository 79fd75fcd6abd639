// The CUDA CPU emulator's own tests (tools/cuda_emu/README.md), run by tools/cuda_emu/run.sh next to the real
// device tests (tests/*_cuda/*.cu, transformed and linked in by run.sh: they check the Cuda ops against the Host ops).
//   EmuSelfCheck.* the emulator itself: it must catch divergent barriers, mismatched warp collectives, reads of
//                  unwritten shared memory, writes outside an allocation, bad launches and bad cuBLAS arguments, and
//                  grid-wide waits that never end; cooperative launches must let blocks meet at a grid barrier;
//                  and the WMMA stand-in (shim/mma.h): TF32 tiles, __float_to_tf32, alignment checks, 3xTF32
// This file is CUDA C++ (kernels, <<< >>>, __shared__): run.sh passes it through transform.py like the headers.
#include <gtest/gtest.h>

#include <cublas_v2.h>
#include <cuda/atomic>
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

// ---- the emulator's own checks: each kernel below has a bug the emulator must report ---------------------------
namespace emu_selfcheck {

// Thread 0 leaves before the barrier the others wait at.
__global__ void early_exit_barrier(float* out) {
  if (threadIdx.x == 0) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

// Half the warp shuffles with a full mask.
__global__ void half_warp_shuffle(float* out) {
  float v = float(threadIdx.x);
  if (threadIdx.x < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}

// Reads its neighbour's shared value without the barrier that would order it after the write.
__global__ void missing_barrier(float* out) {
  __shared__ float s[64];
  s[threadIdx.x] = float(threadIdx.x);
  out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

// Writes one element past the end of its output.
__global__ void off_by_one(float* out, int n) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i <= n) out[i] = 1.0f;
}

__global__ void __launch_bounds__(64) bounded(float* out) { out[threadIdx.x] = 1.0f; }

// A block-wide sum through a warp shuffle tree and shared memory, correct: the reference for the cases above.
__global__ void block_sum_ok(const float* in, float* out) {
  __shared__ float warp_sums[32];
  float v = in[blockIdx.x * blockDim.x + threadIdx.x];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0;
    for (unsigned w = 0; w < blockDim.x / 32; ++w) s += warp_sums[w];
    out[blockIdx.x] = s;
  }
}

// Cooperative: every block publishes a value, waits at a grid barrier (an arrival counter), then adds every block's
// value; a static and a dynamic shared value written before the barrier must still be there after it (the emulator
// swaps shared memory between blocks). `extra` arrivals short makes the wait endless.
__global__ void grid_barrier_sum(float* values, unsigned* arrivals, float* out, unsigned extra) {
  __shared__ float mine;
  extern __shared__ float dynamic[];
  if (threadIdx.x == 0) {
    mine = float(blockIdx.x + 1);
    dynamic[0] = 10.0f * float(blockIdx.x + 1);
    values[blockIdx.x] = mine;
    cuda::atomic_ref<unsigned, cuda::thread_scope_device> count(*arrivals);
    count.fetch_add(1u, cuda::memory_order_release);
    while (count.load(cuda::memory_order_acquire) < gridDim.x + extra) {
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.0f;
    for (unsigned b = 0; b < gridDim.x; ++b) s += values[b];
    out[blockIdx.x] = s + (mine == float(blockIdx.x + 1) ? 0.0f : 1000.0f) +
                      (dynamic[0] == 10.0f * float(blockIdx.x + 1) ? 0.0f : 2000.0f);
  }
}

// Cooperative: `rounds` grid barriers of one flag per block (thread 0 stores the epoch, warp 0 polls every flag,
// a share per lane); before round r's barrier every block writes its index + 1 into row r of `sums` (rounds,
// blocks), after it adds up that row.
__global__ void flag_barrier_rounds(unsigned* flags, float* sums, float* out, int rounds) {
  float seen = 0.0f;
  for (int r = 1; r <= rounds; ++r) {
    if (threadIdx.x == 0) sums[(r - 1) * gridDim.x + blockIdx.x] = float(blockIdx.x + 1);
    __syncthreads();
    if (threadIdx.x < 32) {
      if (threadIdx.x == 0)
        cuda::atomic_ref<unsigned, cuda::thread_scope_device>(flags[blockIdx.x]).store(unsigned(r),
                                                                                     cuda::memory_order_release);
      bool all = false;
      while (!all) {
        bool mine = true;
        for (unsigned j = threadIdx.x % gridDim.x; j < gridDim.x; j += 32)
          mine = mine && cuda::atomic_ref<unsigned, cuda::thread_scope_device>(flags[j]).load(
                             cuda::memory_order_relaxed) >= unsigned(r);
        all = __all_sync(0xffffffffu, mine);
      }
    }
    __syncthreads();
    if (threadIdx.x == 0)
      for (unsigned b = 0; b < gridDim.x; ++b) seen += sums[(r - 1) * gridDim.x + b];
  }
  if (threadIdx.x == 0) out[blockIdx.x] = seen;
}

cudaError_t launch_cooperative(unsigned blocks, float* values, unsigned* arrivals, float* out, unsigned extra) {
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(blocks);
  config.blockDim = dim3(64);
  config.dynamicSmemBytes = sizeof(float);
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeCooperative;
  attribute.val.cooperative = 1;
  config.attrs = &attribute;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, grid_barrier_sum, values, arrivals, out, extra);
}

float* device_floats(size_t n) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, n * sizeof(float)), cudaSuccess);
  return static_cast<float*>(p);
}

TEST(EmuSelfCheck, ACorrectKernelRuns) {
  float* in = device_floats(256);
  float* out = device_floats(2);
  std::vector<float> h(256);
  for (size_t i = 0; i < h.size(); ++i) h[i] = float(i);
  ASSERT_EQ(cudaMemcpy(in, h.data(), 256 * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  block_sum_ok<<<2, 128>>>(in, out);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  float r[2];
  ASSERT_EQ(cudaMemcpy(r, out, sizeof r, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(r[0], 127.0f * 128 / 2);
  EXPECT_EQ(r[1], (128.0f + 255) * 128 / 2);
  cudaFree(in);
  cudaFree(out);
}

TEST(EmuSelfCheck, DivergentBarrierThrows) {
  float* out = device_floats(64);
  try {
    early_exit_barrier<<<1, 64>>>(out);
    ADD_FAILURE() << "not reported";
  } catch (const bimamba_emu::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot all go on"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("1 thread exited"), std::string::npos) << e.what();
  }
  cudaFree(out);
}

TEST(EmuSelfCheck, ShuffleWithAMaskOfLanesThatDoNotTakePartThrows) {
  float* out = device_floats(32);
  EXPECT_THROW(half_warp_shuffle<<<1, 32>>>(out), bimamba_emu::Error);
  cudaFree(out);
}

TEST(EmuSelfCheck, MissingBarrierReadsPoison) {
  float* out = device_floats(128);
  missing_barrier<<<2, 64>>>(out);  // block 0 runs its threads forward, block 1 in reverse
  std::vector<float> h(128);
  ASSERT_EQ(cudaMemcpy(h.data(), out, h.size() * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  int nan = 0;
  for (float v : h) nan += std::isnan(v);
  EXPECT_GT(nan, 0) << "no thread read unwritten shared memory";
  cudaFree(out);
}

TEST(EmuSelfCheck, WritePastTheEndThrows) {
  float* out = device_floats(100);
  try {
    off_by_one<<<1, 128>>>(out, 100);
    ADD_FAILURE() << "not reported";
  } catch (const bimamba_emu::Error& e) {
    EXPECT_NE(std::string(e.what()).find("past the end"), std::string::npos) << e.what();
  }
  cudaFree(out);
}

TEST(EmuSelfCheck, BadLaunchesFail) {
  float* out = device_floats(1024);
  bounded<<<0, 32>>>(out);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  bounded<<<1, 1025>>>(out);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  bounded<<<1, 32, 64 << 10>>>(out);  // above 48 KiB without cudaFuncSetAttribute
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_THROW(bounded<<<1, 128>>>(out), bimamba_emu::Error);  // above __launch_bounds__(64)
  std::vector<float> host(4);
  EXPECT_THROW(bounded<<<1, 4>>>(host.data()), bimamba_emu::Error);  // a host pointer
  cudaFree(out);
}

TEST(EmuSelfCheck, CooperativeBlocksMeetAtAGridBarrier) {
  constexpr unsigned kBlocks = 5;
  float* values = device_floats(kBlocks);
  float* out = device_floats(kBlocks);
  unsigned* arrivals = nullptr;
  ASSERT_EQ(cudaMalloc(&arrivals, sizeof(unsigned)), cudaSuccess);
  ASSERT_EQ(cudaMemset(arrivals, 0, sizeof(unsigned)), cudaSuccess);
  ASSERT_EQ(launch_cooperative(kBlocks, values, arrivals, out, 0), cudaSuccess);
  std::vector<float> h(kBlocks);
  ASSERT_EQ(cudaMemcpy(h.data(), out, h.size() * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  for (float v : h) EXPECT_EQ(v, 15.0f) << "a block read a value before its owner wrote it, or lost its shared memory";
  cudaFree(values);
  cudaFree(out);
  cudaFree(arrivals);
}

TEST(EmuSelfCheck, WarpPollsOverSeveralFlagsMeetAtEveryRound) {
  for (unsigned blocks : {1u, 3u, 40u, 132u}) {
    constexpr int kRounds = 4;
    unsigned* flags = nullptr;
    ASSERT_EQ(cudaMalloc(&flags, blocks * sizeof(unsigned)), cudaSuccess);
    ASSERT_EQ(cudaMemset(flags, 0, blocks * sizeof(unsigned)), cudaSuccess);
    float* sums = device_floats(kRounds * blocks);
    float* out = device_floats(blocks);
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(blocks);
    config.blockDim = dim3(512);
    cudaLaunchAttribute attribute{};
    attribute.id = cudaLaunchAttributeCooperative;
    attribute.val.cooperative = 1;
    config.attrs = &attribute;
    config.numAttrs = 1;
    ASSERT_EQ(cudaLaunchKernelEx(&config, flag_barrier_rounds, flags, sums, out, kRounds), cudaSuccess);
    std::vector<float> h(blocks);
    ASSERT_EQ(cudaMemcpy(h.data(), out, h.size() * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    const float total = float(blocks) * float(blocks + 1) / 2.0f;  // every block's index + 1, once a round
    for (float v : h) EXPECT_EQ(v, total * float(kRounds)) << blocks << " blocks";
    cudaFree(flags);
    cudaFree(sums);
    cudaFree(out);
  }
}

TEST(EmuSelfCheck, AGridWideWaitThatNeverEndsThrows) {
  float* values = device_floats(3);
  float* out = device_floats(3);
  unsigned* arrivals = nullptr;
  ASSERT_EQ(cudaMalloc(&arrivals, sizeof(unsigned)), cudaSuccess);
  ASSERT_EQ(cudaMemset(arrivals, 0, sizeof(unsigned)), cudaSuccess);
  try {
    (void)launch_cooperative(3, values, arrivals, out, 1);
    ADD_FAILURE() << "not reported";
  } catch (const bimamba_emu::Error& e) {
    EXPECT_NE(std::string(e.what()).find("never ends"), std::string::npos) << e.what();
  }
  cudaFree(values);
  cudaFree(out);
  cudaFree(arrivals);
}

TEST(EmuSelfCheck, CublasChecksItsArguments) {
  cublasHandle_t h;
  ASSERT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  float* a = device_floats(12);
  float* c = device_floats(12);
  const float one = 1, zero = 0;
  // C (3, 4) = A (3, 2) B (2, 4): lda must be >= 3.
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, 2, &one, a, 2, a, 2, &zero, c, 3),
            CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, -1, &one, a, 3, a, 2, &zero, c, 3),
            CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, 2, &one, a, 3, a, 2, &zero, c, 2),
            CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, 2, &one, a, CUDA_R_32F, 3, a, CUDA_R_16BF, 2, &zero, c,
                         CUDA_R_32F, 3, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            CUBLAS_STATUS_NOT_SUPPORTED);
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, 2, &one, a, 3, a, 2, &zero, c, 3), CUBLAS_STATUS_SUCCESS);
  // C (4, 4) with ldc 4 needs 16 floats: the allocation has 12.
  EXPECT_THROW(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 2, &one, a, 4, a, 2, &zero, c, 4), bimamba_emu::Error);
  cublasDestroy(h);
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, 2, &one, a, 3, a, 2, &zero, c, 3),
            CUBLAS_STATUS_NOT_INITIALIZED);
  cudaFree(a);
  cudaFree(c);
}

// ---- WMMA (shim/mma.h): the TF32 m16n16k8 shape ----------------------------------------------------------------
// In the emulator every lane holds, loads, multiplies and stores the whole tile (shim/mma.h): the kernels below are
// written as for the GPU, one warp per tile.
namespace wmma = nvcuda::wmma;

// D = A B + 1 for one tile, A (16 x 8) and B (8 x 16) in memory as LA and LB say, D stored in `out`'s layout; the
// accumulator is both c and d of mma_sync.
template <class LA, class LB>
__global__ void wmma_tf32_tile(const float* a, unsigned lda, const float* b, unsigned ldb, float* d, unsigned ldd,
                               wmma::layout_t out) {
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, LA> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, LB> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
  wmma::load_matrix_sync(fa, a, lda);
  wmma::load_matrix_sync(fb, b, ldb);
  wmma::fill_fragment(acc, 1.0f);
  wmma::mma_sync(acc, fa, fb, acc);
  wmma::store_matrix_sync(d, acc, ldd, out);
}

__global__ void float_to_tf32(const float* in, float* out, int n) {
  const int i = int(threadIdx.x);
  if (i < n) out[i] = wmma::__float_to_tf32(in[i]);
}

__global__ void wmma_load_a(const float* p, unsigned ldm, float* out) {
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> f;
  wmma::load_matrix_sync(f, p, ldm);
  out[threadIdx.x] = f.x[0];
}

__global__ void wmma_store(float* p, unsigned ldm) {
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
  wmma::fill_fragment(acc, 0.0f);
  wmma::store_matrix_sync(p, acc, ldm, wmma::mem_row_major);
}

// A (16 x 8, row-major) times B (8 x 16, row-major), twice: d1 by one mma_sync of the raw fp32 values (the tensor
// core ignores their low 13 mantissa bits), d3 by 3xTF32: x = hi + lo with hi = tf32(x), lo = tf32(x - hi), and
// a b ~ a_lo b_hi + a_hi b_lo + a_hi b_hi (the small terms first; a_lo b_lo is dropped).
__global__ void wmma_3xtf32(const float* a, const float* b, float* d1, float* d3) {
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> a_hi, a_lo;
  wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> b_hi, b_lo;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
  wmma::load_matrix_sync(a_hi, a, 8);
  wmma::load_matrix_sync(b_hi, b, 16);
  wmma::fill_fragment(acc, 0.0f);
  wmma::mma_sync(acc, a_hi, b_hi, acc);
  wmma::store_matrix_sync(d1, acc, 16, wmma::mem_row_major);
  for (int i = 0; i < a_hi.num_elements; ++i) {
    const float v = a_hi.x[i];
    a_hi.x[i] = wmma::__float_to_tf32(v);
    a_lo.x[i] = wmma::__float_to_tf32(v - a_hi.x[i]);
  }
  for (int i = 0; i < b_hi.num_elements; ++i) {
    const float v = b_hi.x[i];
    b_hi.x[i] = wmma::__float_to_tf32(v);
    b_lo.x[i] = wmma::__float_to_tf32(v - b_hi.x[i]);
  }
  wmma::fill_fragment(acc, 0.0f);
  wmma::mma_sync(acc, a_lo, b_hi, acc);
  wmma::mma_sync(acc, a_hi, b_lo, acc);
  wmma::mma_sync(acc, a_hi, b_hi, acc);
  wmma::store_matrix_sync(d3, acc, 16, wmma::mem_row_major);
}

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
float tf32_truncated(float v) { return float_of(bits_of(v) & 0xffffe000u); }     // what the tensor core reads
float tf32_rounded(float v) { return float_of((bits_of(v) + 0x1000u) & 0xffffe000u); }  // finite v only

std::vector<float> random_floats(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(gen);
  return v;
}

// Runs wmma_tf32_tile<LA, LB> with the given leading dimensions; the padding of A and B (columns or rows past the
// tile) holds NaN, so a load that does not keep to ldm gives NaN, and D's padding must still be unwritten.
template <class LA, class LB>
void check_wmma_tile(unsigned lda, unsigned ldb, unsigned ldd, wmma::layout_t out) {
  constexpr bool a_rows = std::is_same<LA, wmma::row_major>::value, b_rows = std::is_same<LB, wmma::row_major>::value;
  const bool d_rows = out == wmma::mem_row_major;
  const std::vector<float> A = random_floats(16 * 8, 11), B = random_floats(8 * 16, 12);  // logical, row by row
  std::vector<float> a_mem((a_rows ? 16 : 8) * lda, NAN), b_mem((b_rows ? 8 : 16) * ldb, NAN);
  for (int r = 0; r < 16; ++r)
    for (int k = 0; k < 8; ++k) a_mem[a_rows ? r * lda + k : k * lda + r] = A[r * 8 + k];
  for (int k = 0; k < 8; ++k)
    for (int n = 0; n < 16; ++n) b_mem[b_rows ? k * ldb + n : n * ldb + k] = B[k * 16 + n];
  float* a = device_floats(a_mem.size());
  float* b = device_floats(b_mem.size());
  float* d = device_floats(16 * ldd);  // unwritten: 0xFF bytes, NaN
  ASSERT_EQ(cudaMemcpy(a, a_mem.data(), a_mem.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(b, b_mem.data(), b_mem.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  wmma_tf32_tile<LA, LB><<<1, 32>>>(a, lda, b, ldb, d, ldd, out);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  std::vector<float> h(16 * ldd);
  ASSERT_EQ(cudaMemcpy(h.data(), d, h.size() * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  for (size_t i = 0; i < h.size(); ++i)
    if (i % ldd >= 16) EXPECT_TRUE(std::isnan(h[i])) << "store_matrix_sync wrote the padding at " << i;
  double worst_vs_rounded = 0;
  for (int r = 0; r < 16; ++r)
    for (int n = 0; n < 16; ++n) {
      // The reference: 1 + the sum of the products of the TF32-truncated operands, in double. Those products are
      // exact in float (11-bit significands), so the only difference is the float accumulation of 8 products onto
      // 1, each addition off by at most 2^-24 of a partial sum <= scale: |error| <= 8 * 2^-24 * scale < 1e-6 scale.
      double ref = 1, ref_rounded = 1, scale = 1;
      for (int k = 0; k < 8; ++k) {
        const double p = double(tf32_truncated(A[r * 8 + k])) * tf32_truncated(B[k * 16 + n]);
        ref += p;
        scale += std::fabs(p);
        ref_rounded += double(tf32_rounded(A[r * 8 + k])) * tf32_rounded(B[k * 16 + n]);
      }
      const float got = h[d_rows ? r * ldd + n : n * ldd + r];
      EXPECT_NEAR(got, ref, 1e-6 * scale) << "D(" << r << ", " << n << ")";
      worst_vs_rounded = std::max(worst_vs_rounded, std::fabs(got - ref_rounded) / scale);
    }
  // Operands rounded to nearest instead of truncated would give another answer, far outside that tolerance.
  EXPECT_GT(worst_vs_rounded, 1e-5) << "the emulated mma_sync does not truncate its operands to TF32";
  cudaFree(a);
  cudaFree(b);
  cudaFree(d);
}

TEST(EmuSelfCheck, WmmaTf32TileMatchesTheTruncatedReference) {
  {
    SCOPED_TRACE("A row-major ldm 16, B col-major ldm 12, D row-major ldm 16");
    check_wmma_tile<wmma::row_major, wmma::col_major>(16, 12, 16, wmma::mem_row_major);
  }
  {
    SCOPED_TRACE("A col-major ldm 20, B row-major ldm 16, D col-major ldm 24");
    check_wmma_tile<wmma::col_major, wmma::row_major>(20, 16, 24, wmma::mem_col_major);
  }
  {
    SCOPED_TRACE("A row-major ldm 8, B row-major ldm 20, D col-major ldm 16");
    check_wmma_tile<wmma::row_major, wmma::row_major>(8, 20, 16, wmma::mem_col_major);
  }
  {
    SCOPED_TRACE("A col-major ldm 16, B col-major ldm 8, D row-major ldm 20");
    check_wmma_tile<wmma::col_major, wmma::col_major>(16, 8, 20, wmma::mem_row_major);
  }
}

TEST(EmuSelfCheck, FloatToTf32RoundsTiesAwayFromZeroAndKeepsNanAndInf) {
  const uint32_t cases[][2] = {
      {0x3f801000u, 0x3f802000u},  // 1 + 2^-11, a tie between 1 and 1 + 2^-10: away from zero (even would give 1)
      {0xbf801000u, 0xbf802000u},  // the same tie, negative: away from zero
      {0x3f803000u, 0x3f804000u},  // a tie above an odd last bit
      {0x3f800fffu, 0x3f800000u},  // just below a tie: down
      {0x3f801001u, 0x3f802000u},  // just above a tie: up
      {0xbf800fffu, 0xbf800000u},  // negative, just below a tie: toward zero
      {0x3fffffffu, 0x40000000u},  // the carry goes into the exponent
      {0x40490fdbu, 0x40490000u},  // pi
      {0x00001000u, 0x00002000u},  // a subnormal tie
      {0x00000000u, 0x00000000u},
      {0x80000000u, 0x80000000u},
      {0x7f800000u, 0x7f800000u},  // Inf
      {0xff800000u, 0xff800000u},  // -Inf
      {0x7fc00000u, 0x7fc00000u},  // a quiet NaN
      {0x7f800001u, 0x7f800001u},  // a NaN whose payload is only in the low 13 bits: not Inf
      {0xffffffffu, 0xffffffffu},  // the emulator's poison
  };
  const int n = int(sizeof cases / sizeof cases[0]);
  std::vector<float> in(n);
  for (int i = 0; i < n; ++i) in[i] = float_of(cases[i][0]);
  float* d_in = device_floats(n);
  float* d_out = device_floats(n);
  ASSERT_EQ(cudaMemcpy(d_in, in.data(), n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  float_to_tf32<<<1, 32>>>(d_in, d_out, n);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  std::vector<float> out(n);
  ASSERT_EQ(cudaMemcpy(out.data(), d_out, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  for (int i = 0; i < n; ++i)
    EXPECT_EQ(bits_of(out[i]), cases[i][1]) << std::hex << "__float_to_tf32(0x" << cases[i][0] << ")";
  cudaFree(d_in);
  cudaFree(d_out);
}

TEST(EmuSelfCheck, WmmaLoadAndStoreCheckAlignmentAndLdm) {
  float* p = device_floats(16 * 16 + 8);  // cudaMalloc's pointers are 256-byte aligned
  float* out = device_floats(32);
  std::vector<float> h(16 * 16 + 8, 1.0f);
  ASSERT_EQ(cudaMemcpy(p, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  wmma_load_a<<<1, 32>>>(p, 8, out);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  wmma_load_a<<<1, 32>>>(p + 8, 12, out);  // 32 bytes in, and ldm 12: only the start must be aligned
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  const auto expect_error = [](const std::function<void()>& launch, const char* text) {
    try {
      launch();
      ADD_FAILURE() << "not reported: " << text;
    } catch (const bimamba_emu::Error& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  };
  expect_error([&] { wmma_load_a<<<1, 32>>>(p + 4, 8, out); }, "is not 256-bit (32-byte) aligned");  // 16 bytes in
  expect_error([&] { wmma_load_a<<<1, 32>>>(p, 6, out); }, "ldm 6 is not a multiple of 4");
  expect_error([&] { wmma_store<<<1, 32>>>(p + 1, 16); }, "store_matrix_sync: the pointer");
  expect_error([&] { wmma_store<<<1, 32>>>(p, 18); }, "ldm 18 is not a multiple of 4");
  cudaFree(p);
  cudaFree(out);
}

TEST(EmuSelfCheck, Wmma3xTf32GivesTheFp32Product) {
  const std::vector<float> A = random_floats(16 * 8, 21), B = random_floats(8 * 16, 22);
  float* a = device_floats(A.size());
  float* b = device_floats(B.size());
  float* d1 = device_floats(256);
  float* d3 = device_floats(256);
  ASSERT_EQ(cudaMemcpy(a, A.data(), A.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(b, B.data(), B.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  wmma_3xtf32<<<1, 32>>>(a, b, d1, d3);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  std::vector<float> h1(256), h3(256);
  ASSERT_EQ(cudaMemcpy(h1.data(), d1, 256 * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(h3.data(), d3, 256 * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  // Errors relative to sum_k |a(r, k) b(k, n)|, not to |D(r, n)|: the signs are random, so a sum may cancel.
  // 3xTF32 misses a by at most 2^-22 |a| (hi and lo are each rounded to nearest), drops a_lo b_lo (<= 2^-22 |a b|)
  // and rounds the float sums; with every rounding at its worst that is about 1.3e-6, but random entries stay well
  // below 1e-6 (these: 7.9e-8). One mma of the raw values drops up to 2^-10 of each operand (these: 9.8e-4).
  double worst3 = 0, worst1 = 0;
  for (int r = 0; r < 16; ++r)
    for (int n = 0; n < 16; ++n) {
      double ref = 0, scale = 0;
      for (int k = 0; k < 8; ++k) {
        ref += double(A[r * 8 + k]) * B[k * 16 + n];
        scale += std::fabs(double(A[r * 8 + k]) * B[k * 16 + n]);
      }
      worst3 = std::max(worst3, std::fabs(h3[r * 16 + n] - ref) / scale);
      worst1 = std::max(worst1, std::fabs(h1[r * 16 + n] - ref) / scale);
    }
  EXPECT_LT(worst3, 1e-6) << "3xTF32 is not the fp32 product";
  EXPECT_GT(worst1, 1e-5) << "one mma_sync of raw fp32 values is as exact as 3xTF32: no TF32 truncation";
  cudaFree(a);
  cudaFree(b);
  cudaFree(d1);
  cudaFree(d3);
}

}  // namespace emu_selfcheck
