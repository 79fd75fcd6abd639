// fuzz_zip: the zip reader alone (end records, zip64, central directory, local headers), then every entry
// and its CRC-32.
#include <bimamba/io/zip.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = bimamba::fuzz::write_input(data, size, "input.zip");
  bimamba::fuzz::expect_ok_or_error([&] {
    const bimamba::ZipArchive zip(path);
    for (const std::string& name : zip.names()) {
      const bimamba::ZipEntry& e = zip.entry(name);
      if (e.size <= (uint64_t(1) << 20)) bimamba::fuzz::expect_ok_or_error([&] { zip.verify_crc(e); });
    }
  });
  return 0;
}
