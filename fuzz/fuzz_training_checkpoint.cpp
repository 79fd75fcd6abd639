// fuzz_training_checkpoint: load_training_checkpoint into a small ParamStore ("w" (2, 3), "b" (3)) with
// AdamW: format and version metadata, tensors against the store, integer metadata (step, adamw.t, ...).
#include <bimamba/train/checkpoint.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = bimamba::fuzz::write_input(data, size, "train.safetensors");
  bimamba::fuzz::expect_ok_or_error([&] {
    bimamba::Context<bimamba::Host> ctx{1};
    bimamba::ParamStore<bimamba::Host> store;
    store.declare("w", {2, 3});
    store.declare("b", {3}, bimamba::ParamGroup::NoDecay);
    store.allocate();
    bimamba::AdamW<bimamba::Host> opt(store, bimamba::AdamWConfig{});
    const bimamba::TrainingState state = bimamba::load_training_checkpoint(ctx, path, store, opt);
    (void)state.step;
  });
  return 0;
}
