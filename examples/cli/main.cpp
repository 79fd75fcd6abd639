// bimamba: the command-line tool. `bimamba <command> [options]`, `bimamba <command> --help`.
// Exit codes: 0 success, 1 failure (bad input file, numeric trouble), 2 usage mistake. Every failure is one
// line on stderr: "bimamba <command>: <message>"; results go to stdout (JSON with --json).
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "args.hpp"
#include "commands.hpp"

namespace {

void print_usage(std::FILE* out) {
  std::fprintf(out, "usage: bimamba <command> [options]   (bimamba <command> --help for its options)\n\ncommands:\n");
  for (const auto& c : bimamba::cli::kCommands) std::fprintf(out, "  %-12s %s\n", c.name, c.summary);
}

// Messages become one line.
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  for (const auto& command : bimamba::cli::kCommands) {
    if (name != command.name) continue;
    try {
      return command.run(argc - 1, argv + 1);
    } catch (const bimamba::cli::UsageError& e) {
      std::fprintf(stderr, "bimamba %s: %s (see bimamba %s --help)\n", command.name, one_line(e.what()).c_str(),
                   command.name);
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bimamba %s: error: %s\n", command.name, one_line(e.what()).c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "bimamba: unknown command '%s'\n", name.c_str());
  print_usage(stderr);
  return 2;
}
