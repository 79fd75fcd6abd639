// `bimamba train / distill --device cuda`: the run of cmd_train_common.hpp on the Cuda backend. The models the
// commands build on the host (random init, or the teacher and its FBI-initialised student) are copied to the
// first GPU parameter buffer by parameter buffer (the same ParamStore layout: the same config and options), the
// Trainer runs there (its GEMMs in --precision), and train_on copies the final parameters back to write the model.
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

int run_training_cuda(const Args& args, const std::string& command, const LanguageModel<Host>& model,
                      const LanguageModel<Host>* teacher, const TeacherTopKFile* teacher_file, TrainerConfig config,
                      const Corpus& corpus, const std::string& out) {
  Context<Cuda> ctx;
  ctx.set_gemm_precision(gemm_precision(args));
  log_warnings_to_stderr(ctx, command);
  LanguageModel<Cuda> device_model = to_device(model);
  std::optional<LanguageModel<Cuda>> device_teacher;
  if (teacher) device_teacher.emplace(to_device(*teacher));
  announce_gpu(command + ": training");
  return train_on(args, command, ctx, device_model, device_teacher ? &*device_teacher : nullptr, teacher_file,
                  std::move(config), corpus, out);
}

}  // namespace bimamba::cli
