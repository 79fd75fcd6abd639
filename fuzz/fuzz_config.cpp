// fuzz_config: model configs from memory: parse_json (Python's non-finite literals, the depth limit), then
// the HF reader and the mamba_ssm reader (both on every input), validation and the size limits, and the
// packed format's config reader.
#include <bimamba/io/packed_checkpoint.hpp>
#include <bimamba/model/config_io.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using bimamba::fuzz::expect_ok_or_error;
  expect_ok_or_error([&] {
    const nlohmann::json j = bimamba::parse_json(std::string(reinterpret_cast<const char*>(data), size), "config.json");
    if (!j.is_object()) return;
    for (auto reader : {&bimamba::detail::read_hf_config, &bimamba::detail::read_mamba_ssm_config})
      expect_ok_or_error([&] {
        const bimamba::ModelConfig c = reader(j, "config.json");
        c.validate();
        bimamba::detail::check_config_size(c, "config.json");
      });
    expect_ok_or_error([&] { (void)bimamba::packed_config_from_json(j, "config.json"); });
  });
  return 0;
}
