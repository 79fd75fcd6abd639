// fuzz_safetensors: SafetensorsFile (header JSON + every validation rule), then every tensor: get(), and the
// float / integer conversions of tensors small enough to convert.
#include <bimamba/io/safetensors.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = bimamba::fuzz::write_input(data, size, "input.safetensors");
  bimamba::fuzz::expect_ok_or_error([&] {
    const bimamba::SafetensorsFile file(path);
    for (const std::string& name : file.names()) {
      const bimamba::HostTensor t = file.get(name);
      if (t.numel() <= (int64_t(1) << 16)) {
        bimamba::fuzz::expect_ok_or_error([&] { (void)bimamba::to_float(t); });
        bimamba::fuzz::expect_ok_or_error([&] { (void)bimamba::to_int64(t); });
      }
    }
    for (const auto& [key, value] : file.metadata()) (void)value.size();
  });
  return 0;
}
