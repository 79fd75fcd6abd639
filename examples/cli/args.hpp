// Command-line arguments of one subcommand: declared options, `--help`, and typed getters.
//
//   Args args("logits", "--model DIR --input F.safetensors --output O.safetensors [options]", "what it does");
//   args.option("model", "DIR", "checkpoint directory or packed file");      // --model DIR or --model=DIR
//   args.option("mode", "prefill|step", "how tokens are fed", "prefill");    // with a default
//   args.flag("json", "print the result as JSON on stdout");
//   args.positional("PATH", "file or directory");                           // at most one
//   if (!args.parse(argc, argv)) return 0;                                  // --help printed the help
//   args.str("model"); args.integer("window"); args.number("top-p"); args.has("json");
//
// Mistakes (unknown option, missing value, missing required option, a value that is not a number) throw
// UsageError, which main() reports as "bimamba <command>: <message>" with exit code 2.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace bimamba::cli {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  Args(std::string command, std::string usage, std::string description)
      : command_(std::move(command)), usage_(std::move(usage)), description_(std::move(description)) {
    flag("help", "show this help and exit");
  }

  void option(const std::string& name, const std::string& metavar, const std::string& help,
              std::optional<std::string> fallback = std::nullopt) {
    specs_.push_back({name, metavar, help, std::move(fallback), false});
  }
  void flag(const std::string& name, const std::string& help) { specs_.push_back({name, "", help, std::nullopt, true}); }
  void positional(const std::string& name, const std::string& help) {
    positional_name_ = name;
    positional_help_ = help;
  }

  // Parses argv[1..argc) (argv[0] is the command name). Returns false after printing the help.
  bool parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
        std::string name = a.substr(2), value;
        bool inline_value = false;
        if (const size_t eq = name.find('='); eq != std::string::npos) {
          value = name.substr(eq + 1);
          name = name.substr(0, eq);
          inline_value = true;
        }
        const Spec* spec = find(name);
        if (!spec) throw UsageError("unknown option --" + name);
        if (spec->is_flag) {
          if (inline_value) throw UsageError("--" + name + " takes no value");
          values_[name] = "1";
          continue;
        }
        if (!inline_value) {
          if (i + 1 >= argc) throw UsageError("--" + name + " needs a value (" + spec->metavar + ")");
          value = argv[++i];
        }
        values_[name] = value;
      } else {
        if (positional_name_.empty()) throw UsageError("unexpected argument '" + a + "'");
        if (positional_) throw UsageError("more than one " + positional_name_ + " given");
        positional_ = a;
      }
    }
    if (has("help")) {
      print_help(std::cout);
      return false;
    }
    return true;
  }

  bool has(const std::string& name) const { return values_.count(name) != 0 || fallback(name).has_value(); }

  std::string str(const std::string& name) const {
    if (const auto it = values_.find(name); it != values_.end()) return it->second;
    if (const auto f = fallback(name)) return *f;
    throw UsageError("--" + name + " is required");
  }

  int64_t integer(const std::string& name) const {
    const std::string v = str(name);
    char* end = nullptr;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0') throw UsageError("--" + name + " must be an integer, got '" + v + "'");
    return int64_t(x);
  }

  double number(const std::string& name) const {
    const std::string v = str(name);
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0') throw UsageError("--" + name + " must be a number, got '" + v + "'");
    return x;
  }

  bool has_positional() const { return positional_.has_value(); }
  std::string positional_value() const {
    if (!positional_) throw UsageError(positional_name_ + " is required");
    return *positional_;
  }

  void print_help(std::ostream& out) const {
    out << "usage: bimamba " << command_ << " " << usage_ << "\n\n" << description_ << "\n\n";
    if (!positional_name_.empty()) out << "  " << pad(positional_name_) << positional_help_ << "\n";
    for (const Spec& s : specs_) {
      std::string left = "--" + s.name + (s.is_flag ? "" : " " + s.metavar);
      out << "  " << pad(left) << s.help;
      if (s.fallback) out << " (default: " << *s.fallback << ")";
      out << "\n";
    }
  }

 private:
  struct Spec {
    std::string name, metavar, help;
    std::optional<std::string> fallback;
    bool is_flag;
  };

  const Spec* find(const std::string& name) const {
    for (const Spec& s : specs_)
      if (s.name == name) return &s;
    return nullptr;
  }
  std::optional<std::string> fallback(const std::string& name) const {
    const Spec* s = find(name);
    return s ? s->fallback : std::nullopt;
  }
  static std::string pad(const std::string& s) { return s.size() < 28 ? s + std::string(28 - s.size(), ' ') : s + "  "; }

  std::string command_, usage_, description_;
  std::vector<Spec> specs_;
  std::map<std::string, std::string> values_;
  std::string positional_name_, positional_help_;
  std::optional<std::string> positional_;
};

}  // namespace bimamba::cli
