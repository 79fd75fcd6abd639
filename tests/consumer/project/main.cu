// CUDA consumer: a kernel over a TensorView of the Cuda backend; without a device it reports and succeeds.
#include <bimamba/cuda.hpp>

#include <cstdio>

__global__ void scale(bimamba::TensorView<float, 1, bimamba::Cuda> v, float s) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < v.size(0)) v(i) *= s;
}

int main() {
  if (!bimamba::cuda_device_available()) {
    std::printf("consumer_cuda: built; no CUDA device to run on\n");
    return 0;
  }
  auto host = bimamba::tensor_from<float, 1>({1, 2, 3}, {3});
  auto dev = bimamba::to<bimamba::Cuda>(host);
  scale<<<1, 32>>>(dev.view(), 2.0f);
  BIMAMBA_CUDA_CHECK(cudaDeviceSynchronize());
  auto back = bimamba::to_vector(dev);
  const bool ok = back[2] == 6.0f;
  std::printf("consumer_cuda: %s\n", ok ? "ok" : "wrong values");
  return ok ? 0 : 1;
}
