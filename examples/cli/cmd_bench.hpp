// The `bimamba bench` subcommands (docs/cli.md, docs/decode.md): argv[0] is the subcommand name.
#pragma once

namespace bimamba::cli {

int run_bench_decode(int argc, char** argv);
int run_bench_gemv(int argc, char** argv);

}  // namespace bimamba::cli
