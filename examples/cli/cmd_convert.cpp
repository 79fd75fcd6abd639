// bimamba convert --model DIR|FILE --out PATH [--latent] [packing options] [--json]
// A latent Bi-Mamba checkpoint -> a packed file. A full-precision Mamba-2 checkpoint is first binarized
// (FBI init: wbias = column mean, wscale = column mean absolute deviation, latent W kept; model/convert.hpp),
// then packed; with --latent the binarized latent model is written as an HF directory instead (the start of
// distillation). Prints a report (storage before / after by kind, exact-zero weights; JSON with --json).
#include <iostream>

#include "args.hpp"
#include "commands.hpp"
#include "hf_writer.hpp"
#include "model_io.hpp"
#include "packed_options.hpp"

namespace bimamba::cli {

int run_convert(int argc, char** argv) {
  Args args("convert", "--model DIR|FILE --out PATH [--latent] [options]",
            "Converts a full-precision Mamba-2 or a latent Bi-Mamba checkpoint to a packed Bi-Mamba file.");
  args.option("model", "DIR|FILE", "checkpoint directory (HF or mamba_ssm layout) or packed file");
  args.option("out", "PATH", "output packed file (or, with --latent, output directory)");
  args.flag("latent", "write the binarized latent model as an HF directory instead of packing it");
  declare_packed_options(args);
  args.flag("json", "print the report as JSON on stdout");
  if (!args.parse(argc, argv)) return 0;
  const std::string out = args.str("out");
  const PackedOptions opts = packed_options(args);

  const CheckpointTensors ckpt(args.str("model"));
  ModelConfig cfg = ckpt.config;
  TensorSource source = ckpt.source();
  ConversionReport binarize;
  bool binarized = false;
  std::vector<HostTensor> latent;
  if (!cfg.binary) {
    latent = fp_to_bimamba(cfg, source, &binarize);
    binarized = true;
    source = [&latent](const std::string& name) {
      for (const HostTensor& t : latent)
        if (t.name == name) return t;
      BIMAMBA_THROW(FormatError, "binarized model has no tensor '", name, "'");
    };
  }
  nlohmann::ordered_json j;
  if (args.has("latent")) {
    if (!binarized) throw UsageError("--latent needs a full-precision input; " + args.str("model") + " is already binary");
    save_hf_directory(out, cfg, latent);
    j = binarize.to_json();
  } else {
    ConversionReport report;
    const std::vector<HostTensor> packed = latent_to_packed(cfg, source, opts, &report);
    save_packed_checkpoint(out, cfg, packed, opts);
    if (binarized) report.before = binarize.before;
    j = report.to_json();
  }
  j["binarized_from_full_precision"] = binarized;
  j["out"] = out;
  if (args.has("json")) {
    std::cout << j.dump() << std::endl;
  } else {
    std::cout << "wrote " << out << ": " << j["after"]["parameters"].get<int64_t>() << " parameters, "
              << j["after"]["bytes"].get<int64_t>() << " bytes (" << j["after"]["gib"].get<double>() << " GiB), "
              << "compression " << j["compression"].get<double>() << "x, exactly-zero binary weights "
              << j["zero_binary_weights"].get<int64_t>() << "\n";
  }
  return 0;
}

}  // namespace bimamba::cli
