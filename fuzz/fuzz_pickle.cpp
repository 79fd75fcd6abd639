// fuzz_pickle: the restricted unpickler from memory, with torch's allow-list and hooks that build plain
// values (REDUCE of collections.OrderedDict -> an empty dict, anything else -> None; a persistent id ->
// None). A pickle may only build values: no global off the list, no recursion, bounded nesting.
#include <bimamba/io/pickle.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using Kind = bimamba::PickleValue::Kind;
  static const bimamba::PickleHooks hooks = [] {
    bimamba::PickleHooks h;
    h.allowed_globals = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage"};
    h.reduce = [](const std::string& global, const bimamba::PickleRef&) {
      return bimamba::PickleValue::make(global == "collections.OrderedDict" ? Kind::Dict : Kind::None);
    };
    h.persistent_load = [](const bimamba::PickleRef&) { return bimamba::PickleValue::make(Kind::None); };
    return h;
  }();
  bimamba::fuzz::expect_ok_or_error([&] { (void)bimamba::Unpickler(data, size, "fuzz", hooks).load(); });
  return 0;
}
