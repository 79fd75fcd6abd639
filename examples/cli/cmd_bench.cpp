// bimamba bench decode|gemv [options]: end-to-end decode / prefill speed of a model, and the packed GEMV
// against Eigen fp32, each with the DRAM read bandwidth measured in the same command (docs/decode.md).
#include <cstdio>
#include <cstring>
#include <string>

#include "args.hpp"
#include "cmd_bench.hpp"
#include "commands.hpp"

namespace bimamba::cli {

int run_bench(int argc, char** argv) {
  const char* usage = "usage: bimamba bench decode|gemv [options]   (bimamba bench decode --help)\n";
  if (argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::fputs(usage, stdout);
    return 0;
  }
  if (argc < 2) throw UsageError("needs a subcommand: decode or gemv");
  const std::string sub = argv[1];
  if (sub == "decode") return run_bench_decode(argc - 1, argv + 1);
  if (sub == "gemv") return run_bench_gemv(argc - 1, argv + 1);
  throw UsageError("unknown subcommand '" + sub + "' (decode or gemv)");
}

}  // namespace bimamba::cli
