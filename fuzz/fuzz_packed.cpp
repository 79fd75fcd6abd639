// fuzz_packed: a packed Bi-Mamba checkpoint (safetensors container + format metadata + config + sign
// shapes + padding bits), then the signs of every binary weight and every float tensor.
#include <bimamba/io/packed_checkpoint.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = bimamba::fuzz::write_input(data, size, "model.packed.safetensors");
  bimamba::fuzz::expect_ok_or_error([&] {
    const bimamba::PackedCheckpoint packed(path);
    (void)packed.storage();
    for (const bimamba::TensorSpec& s : bimamba::model_tensor_specs(packed.config())) {
      if (s.kind == bimamba::ParamKind::Binary) {
        (void)packed.signs<uint32_t>(s.name);
        (void)packed.signs<uint8_t>(s.name);
        (void)packed.latent(s.name);
      } else {
        (void)packed.floats(s.name);
      }
    }
  });
  return 0;
}
