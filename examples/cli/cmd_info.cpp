// bimamba info FILE|DIR: the config, and parameters and bytes by kind (binary signs, FBI scales,
// embedding / head, other full-precision), total GiB, file size on disk, and the count of latent binary
// weights that are exactly 0, as JSON on stdout. Works on any size: tensors are memory-mapped, no model is
// built.
#include <sys/stat.h>

#include <filesystem>
#include <iostream>

#include "args.hpp"
#include "commands.hpp"
#include "model_io.hpp"

namespace bimamba::cli {
namespace {

// Bytes on disk: the file, or in a directory the checkpoint files (config.json, model*.safetensors*,
// pytorch_model*.bin*), not whatever else lies there.
int64_t files_size(const std::string& path) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(path)) return int64_t(fs::file_size(path));
  int64_t total = 0;
  for (const auto& entry : fs::directory_iterator(path)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && (name == "config.json" || name.rfind("model", 0) == 0 || name.rfind("pytorch_model", 0) == 0))
      total += int64_t(entry.file_size());
  }
  return total;
}

}  // namespace

int run_info(int argc, char** argv) {
  Args args("info", "FILE|DIR [--json]",
            "Prints, as JSON, the model config and its parameters and bytes by kind, as stored.");
  args.positional("FILE|DIR", "packed file, or checkpoint directory (HF or mamba_ssm layout)");
  args.flag("json", "accepted for symmetry with the other commands (the output is always JSON)");
  if (!args.parse(argc, argv)) return 0;
  const std::string path = args.positional_value();
  if (!std::filesystem::exists(path)) BIMAMBA_FAIL(path, ": no such file or directory");

  const CheckpointTensors ckpt(path);
  StorageReport report;
  std::string format;
  if (ckpt.packed) {
    report = ckpt.packed->storage();
    format = "packed";
  } else {
    // Count only the tensors the model uses (a tied lm_head stored by mamba_ssm is a duplicate).
    for (const TensorSpec& spec : model_tensor_specs(ckpt.config)) {
      const HostTensor t = ckpt.checkpoint->get(spec.name);
      report.add(spec.kind, t.numel(), int64_t(t.nbytes()));
      if (spec.kind == ParamKind::Binary)
        for (float v : to_float(t)) report.zero_binary_weights += v == 0.0f;
    }
    format = ckpt.checkpoint->format() == Checkpoint::Format::TorchZip ? "pytorch" : "safetensors";
  }
  report.file_bytes = files_size(path);
  nlohmann::ordered_json j;
  j["path"] = path;
  j["format"] = format;
  j["config"] = packed_config_to_json(ckpt.config);
  j.update(report.to_json());
  std::cout << j.dump() << std::endl;
  return 0;
}

}  // namespace bimamba::cli
