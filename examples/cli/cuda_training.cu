// `bimamba train / distill --device cuda`: the run of cmd_train_common.hpp on the Cuda backend. The models the
// commands build on the host (random init, or the teacher and its FBI-initialised student) are copied to the
// first GPU parameter buffer by parameter buffer (the same ParamStore layout: the same config and options), the
// Trainer runs there, and train_on copies the final parameters back to write the model.
#include <bimamba/cuda.hpp>

#include <optional>

#include "cmd_train_common.hpp"

namespace bimamba::cli {
namespace {

LanguageModel<Cuda> to_device(const LanguageModel<Host>& host) {
  LanguageModel<Cuda> device(host.config(), host.options());
  const auto& src = host.params();
  auto& dst = device.params();
  BIMAMBA_CHECK(src.flat_size() == dst.flat_size(), "to_device: parameter buffers of ", src.flat_size(), " and ",
                dst.flat_size(), " floats");
  MemoryOps<Cuda>::copy_from_host(dst.params().data(), src.params().data(), size_t(src.flat_size()) * sizeof(float));
  return device;
}

}  // namespace

void require_cuda_device() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    (void)cudaGetLastError();  // clear the error for later calls
    BIMAMBA_THROW(InvalidArgument, "--device cuda: no usable CUDA device (",
                  status != cudaSuccess ? cudaGetErrorString(status) : "none found", ")");
  }
}

int run_training_cuda(const Args& args, const std::string& command, const LanguageModel<Host>& model,
                      const LanguageModel<Host>* teacher, TrainerConfig config, const Corpus& corpus,
                      const std::string& out) {
  Context<Cuda> ctx;
  log_warnings_to_stderr(ctx, command);
  LanguageModel<Cuda> device_model = to_device(model);
  std::optional<LanguageModel<Cuda>> device_teacher;
  if (teacher) device_teacher.emplace(to_device(*teacher));
  cudaDeviceProp prop{};
  BIMAMBA_CUDA_CHECK(cudaGetDeviceProperties(&prop, ctx.device()));
  std::fprintf(stderr, "%s: training on GPU %d, %s\n", command.c_str(), ctx.device(), prop.name);
  return train_on(args, command, ctx, device_model, device_teacher ? &*device_teacher : nullptr, std::move(config),
                  corpus, out);
}

}  // namespace bimamba::cli
