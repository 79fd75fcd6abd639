// Host consumer: packs signs and reads them back through the public headers.
#include <bimamba/bimamba.hpp>

#include <cstdio>

int main() {
  bimamba::Context<bimamba::Host> ctx(1);
  auto w = bimamba::tensor_from<float, 2>({1.0f, -2.0f, 0.0f, -0.5f}, {2, 2});
  auto bits = bimamba::pack_signs<uint32_t>(w.cview());
  const bool ok = bits.view().sign(0, 0) == 1 && bits.view().sign(0, 1) == -1 && bits.view().sign(1, 0) == 1;
  std::printf("consumer_host: %s\n", ok ? "ok" : "wrong signs");
  return ok ? 0 : 1;
}
