// fuzz_torch_bin: a PyTorch torch.save file (pytorch_model.bin): the zip directory (ZipArchive), data.pkl
// through the allow-list unpickler, storages and tensor views (TorchCheckpoint), then every tensor.
#include <bimamba/io/torch_checkpoint.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = bimamba::fuzz::write_input(data, size, "pytorch_model.bin");
  bimamba::fuzz::expect_ok_or_error([&] {
    const bimamba::TorchCheckpoint ckpt(path);
    for (const std::string& name : ckpt.names()) {
      const bimamba::HostTensor t = ckpt.get(name);
      if (t.numel() <= (int64_t(1) << 16)) (void)bimamba::to_float(t);
    }
  });
  return 0;
}
