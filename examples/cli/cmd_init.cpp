// bimamba init --preset NAME [--vocab V] [--d-model D] [--n-layer L] [--seed S] [--packed] --out PATH
// A randomly initialised model of a preset shape (model/presets.hpp), for benchmarks and storage checks.
// Without --packed: an HF-layout directory (config.json + F32 model.safetensors) from init_random
// (model/init.hpp). With --packed: one packed file generated tensor by tensor (random_packed.hpp), which
// needs only the packed size in memory. The output is written atomically; --json prints its storage report.
#include <bimamba/model/init.hpp>
#include <bimamba/model/presets.hpp>
#include <iostream>

#include "args.hpp"
#include "commands.hpp"
#include "hf_writer.hpp"
#include "packed_options.hpp"
#include "progress.hpp"
#include "random_packed.hpp"

namespace bimamba::cli {

int run_init(int argc, char** argv) {
  Args args("init", "--preset NAME [--vocab V] [--seed S] [--packed] --out PATH",
            "Writes a randomly initialised model of a preset shape.\npresets: bimamba-780m, bimamba-1.3b, "
            "bimamba-2.7b (vocab 32000), mamba2-130m, mamba2-370m, mamba2-780m, mamba2-1.3b, mamba2-2.7b (vocab "
            "50288)");
  args.option("preset", "NAME", "model shape");
  args.option("vocab", "V", "vocabulary size (embedding rows) instead of the preset's");
  args.option("d-model", "D", "override the preset's d_model (small models for tests)");
  args.option("n-layer", "L", "override the preset's number of layers");
  args.option("seed", "S", "random seed", "0");
  args.option("out", "PATH", "output directory (HF layout) or, with --packed, output file");
  args.flag("packed", "write one packed Bi-Mamba file instead of an HF directory");
  declare_packed_options(args);
  args.flag("json", "print the storage report of what was written as JSON");
  args.flag("progress", "show a progress bar on stderr even when it is not a terminal");
  if (!args.parse(argc, argv)) return 0;

  const std::string out = args.str("out");
  const int64_t vocab = args.has("vocab") ? args.integer("vocab") : 0;
  if (args.has("vocab") && vocab <= 0) throw UsageError("--vocab must be positive");
  ModelConfig cfg = model_preset(args.str("preset"), vocab);
  if (args.has("d-model")) cfg.d_model = args.integer("d-model");
  if (args.has("n-layer")) cfg.n_layer = args.integer("n-layer");
  cfg.validate();
  const uint64_t seed = uint64_t(args.integer("seed"));
  StorageReport report;
  if (args.has("packed")) {
    const PackedOptions opts = packed_options(args);
    std::vector<HostTensor> tensors;
    {
      Progress progress("init", args.has("progress"));
      tensors = random_packed_tensors(cfg, seed, opts, [&](int64_t done, int64_t total) { progress.update(done, total); });
    }
    save_packed_checkpoint(out, cfg, tensors, opts);
    report = PackedCheckpoint(out).storage();
  } else {
    const LanguageModel<Host> model = init_random<Host>(cfg, seed);
    const auto& store = model.params();
    std::vector<HostTensor> tensors;
    for (const auto& e : store.entries()) {
      const float* p = store.params().data() + e.offset;
      tensors.push_back(HostTensor::from_values<float>(e.name, e.shape, std::vector<float>(p, p + e.numel)));
      report.add(param_kind_of(e.name, cfg.binary), e.numel, e.numel * int64_t(sizeof(float)));
    }
    save_hf_directory(out, cfg, tensors);
  }
  if (args.has("json")) {
    nlohmann::ordered_json j;
    j["out"] = out;
    j["preset"] = args.str("preset");
    j.update(report.to_json());
    std::cout << j.dump() << std::endl;
  }
  return 0;
}

}  // namespace bimamba::cli
