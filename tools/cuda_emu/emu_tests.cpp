// The CUDA CPU emulator's own tests (tools/cuda_emu/README.md), run by tools/cuda_emu/run.sh next to the real
// device tests (tests/*_cuda/*.cu, transformed and linked in by run.sh: they check the Cuda ops against the Host ops).
//   EmuSelfCheck.* the emulator itself: it must catch divergent barriers, mismatched warp collectives, reads of
//                  unwritten shared memory, writes outside an allocation, bad launches and bad cuBLAS arguments
// This file is CUDA C++ (kernels, <<< >>>, __shared__): run.sh passes it through transform.py like the headers.
#include <gtest/gtest.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
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

}  // namespace emu_selfcheck
