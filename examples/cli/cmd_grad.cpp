// bimamba grad --model DIR --input REF.safetensors --output O.safetensors [--loss distill|ce]
// One training forward and backward (train/model_grad.hpp) of the batch `input_ids` [B, T] (any integer
// dtype): with --loss distill (default) the loss is distill_loss against `teacher_logits` [B, T, V] (F32,
// read from the same file); with --loss ce it is next_token_loss (positions 0..T-2 predict 1..T-1, HF's
// labels = input_ids). Writes F32 `loss` [1] and `grad.<name>` for every parameter, under the model's HF
// tensor names (the checkpoint's names; a mamba_ssm checkpoint's are mapped to them on loading). The model
// must be a latent Bi-Mamba or full-precision Mamba-2 checkpoint directory (not a packed file).
#include <bimamba/io/safetensors.hpp>
#include <bimamba/train/losses.hpp>
#include <bimamba/train/model_grad.hpp>
#include <iostream>

#include "args.hpp"
#include "commands.hpp"
#include "model_io.hpp"

namespace bimamba::cli {

int run_grad(int argc, char** argv) {
  Args args("grad", "--model DIR --input F.safetensors --output O.safetensors [--loss distill|ce]",
            "Loss and parameter gradients of one batch (input_ids, and teacher_logits for distill).");
  args.option("model", "DIR", "checkpoint directory (HF or mamba_ssm layout), latent Bi-Mamba or Mamba-2");
  args.option("input", "F", "safetensors file with input_ids [B, T] (and teacher_logits [B, T, V] for distill)");
  args.option("output", "O", "safetensors file to write: loss and grad.<name>");
  args.option("loss", "distill|ce", "the loss", "distill");
  args.option("threads", "N", "host threads (0: all)", "0");
  args.flag("json", "print the loss as JSON on stdout");
  if (!args.parse(argc, argv)) return 0;
  const std::string loss_kind = args.str("loss"), input = args.str("input");
  if (loss_kind != "distill" && loss_kind != "ce") throw UsageError("--loss must be distill or ce, got '" + loss_kind + "'");

  Context<Host> ctx(int(args.integer("threads")));
  LanguageModel<Host> model = load_model<Host>(ctx, args.str("model"));
  int64_t B = 0, T = 0;
  const std::vector<int32_t> ids = read_token_ids(input, model.vocab_size(), B, T);
  const auto x = tensor_from<int32_t, 2>(ids, {B, T});  // (B, T)
  TrainingPass<Host> pass = training_forward(ctx, model, x.cview());
  double loss = 0;
  if (loss_kind == "distill") {
    const HostTensor t = SafetensorsFile(input).get("teacher_logits");
    const std::vector<int64_t> want{B, T, model.vocab_size()};
    if (t.shape != want)
      BIMAMBA_THROW(FormatError, input, ": teacher_logits has shape ", t.shape_string(), ", expected [", B, ", ", T,
                    ", ", model.vocab_size(), "]");
    const auto teacher = tensor_from<float, 3>(to_float(t), {B, T, model.vocab_size()});  // (B, T, V)
    loss = distill_loss(ctx, pass.logits(), teacher.cview(), pass.dlogits());
  } else {
    loss = next_token_loss(ctx, pass.logits(), x.cview(), pass.dlogits());
  }
  training_backward(ctx, model, pass, GradientMode::Overwrite);

  const auto& store = model.params();
  std::vector<HostTensor> tensors{HostTensor::from_values<float>("loss", {1}, std::vector<float>{float(loss)})};
  for (const auto& e : store.entries()) {
    const float* g = store.grads().data() + e.offset;
    tensors.push_back(HostTensor::from_values<float>("grad." + e.name, e.shape, std::vector<float>(g, g + e.numel)));
  }
  save_safetensors(args.str("output"), tensors, {{"loss", loss_kind}});
  if (args.has("json")) std::cout << nlohmann::ordered_json{{"loss", loss}, {"kind", loss_kind}}.dump() << std::endl;
  return 0;
}

}  // namespace bimamba::cli
