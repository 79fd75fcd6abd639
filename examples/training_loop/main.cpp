// A custom training loop, written out (DESIGN.md "What a user writes"): distil a Bi-Mamba student from a
// full-precision Mamba-2 teacher on a token file. Copy it and change what you need; train/trainer.hpp is the
// same loop packaged with validation, logging and checkpoints.
//
//   example_training_loop TEACHER_DIR CORPUS.tokens [STEPS]
//     TEACHER_DIR    full-precision Mamba-2 checkpoint (HF or mamba_ssm layout), e.g. from `bimamba train`
//     CORPUS.tokens  token file (io/token_file.hpp), e.g. the tokens.bin that `bimamba train` writes
// Prints the loss every 10 steps, writes student.packed.safetensors (sign bits + alpha/beta + the rest).
//
// One step: batch -> teacher logits (no grad) -> student forward -> distillation loss writes dlogits ->
// backward fills the ParamStore's gradients -> clip -> AdamW with a cosine schedule.
// Swapping Host for Cuda (in a TU compiled as CUDA) is the only change the loop needs.
#include <bimamba/model/convert.hpp>
#include <bimamba/model/init.hpp>
#include <bimamba/model/load.hpp>
#include <bimamba/train/adamw.hpp>
#include <bimamba/train/data.hpp>
#include <bimamba/train/grad_utils.hpp>
#include <bimamba/train/losses.hpp>
#include <bimamba/train/model_grad.hpp>
#include <bimamba/train/schedule.hpp>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

using namespace bimamba;

// The student: the teacher's shape with FBI-Linear in_proj / out_proj, initialised from the teacher's weights
// (latent W = the teacher's W, alpha / beta = the column-wise best 1-bit fit).
LanguageModel<Host> binarized_copy(Context<Host>& ctx, const LanguageModel<Host>& teacher) {
  ModelConfig cfg = teacher.config();
  const std::vector<HostTensor> tensors = fp_to_bimamba(cfg, model_tensor_source(ctx, teacher));
  LanguageModel<Host> student(cfg);
  ParamStore<Host>& store = student.params();
  for (const HostTensor& t : tensors)
    std::memcpy(store.params().data() + store.entries()[size_t(store.id(t.name))].offset, t.data(), t.nbytes());
  return student;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TEACHER_DIR CORPUS.tokens [STEPS]\n", argv[0]);
    return 2;
  }
  try {
    const int64_t steps = argc > 3 ? std::stoll(argv[3]) : 50;
    const int64_t B = 4, L = 128;  // windows per batch, tokens per window

    Context<Host> ctx;  // all hardware threads
    const LanguageModel<Host> teacher = load_model<Host>(ctx, argv[1]);
    LanguageModel<Host> student = binarized_copy(ctx, teacher);

    const TokenFile tokens = TokenFile::open(argv[2]);
    const TokenSplit split = split_by_position(tokens.size(), 0.05);  // the last 5% are held out
    WindowSampler data(tokens, split.train, B, L, /*seed=*/1234);

    ParamStore<Host>& params = student.params();
    AdamWConfig adamw;
    adamw.betas = {0.9f, 0.95f};
    adamw.weight_decay = 0.1f;
    AdamW<Host> opt(params, adamw);
    const CosineSchedule lr(1e-3f, 1e-4f, /*warmup=*/steps / 10, /*total=*/steps);

    for (int64_t step = 0; step < steps; ++step) {
      const Batch<Host> batch = data.next(ctx);                                    // tokens (B, L + 1)
      const Tensor<float, 3, Host> t = teacher.forward(ctx, batch.inputs());       // (B, L, V), no grad
      TrainingPass<Host> s = training_forward(ctx, student, batch.inputs());       // keeps what backward needs
      const double loss = distill_loss(ctx, s.logits(), t.cview(), s.dlogits());   // writes dL/dlogits
      training_backward(ctx, student, s, GradientMode::Overwrite);                 // fills params.grads()
      const double norm = clip_grad_norm(ctx, params, 1.0);
      opt.step(ctx, lr(step));
      if (step % 10 == 0 || step == steps - 1)
        std::printf("step %4lld  distill loss %.4f  grad norm %.3f  lr %.2e\n", (long long)step, loss, norm,
                    double(lr(step)));
    }

    // Held-out cross entropy of the student on its packed sign bits.
    student.pack();
    const SequentialWindows held_out(tokens, split.validation, B, L);
    double ce = 0;
    const int64_t n = std::min<int64_t>(held_out.batches(), 4);
    for (int64_t i = 0; i < n; ++i) {
      const Batch<Host> batch = held_out.batch(ctx, i);
      const Tensor<float, 3, Host> logits = student.forward(ctx, batch.inputs());
      ce += cross_entropy_loss(ctx, logits.cview(), batch.targets(), {}) / double(n);
    }
    std::printf("held-out cross entropy (packed student) %.4f\n", ce);
    student.unpack();
    const ConversionReport report = save_packed(ctx, student, "student.packed.safetensors");
    std::printf("student.packed.safetensors: %lld bytes (%.1fx smaller than the latent float32 weights)\n",
                (long long)report.after.bytes(), double(report.before.bytes()) / double(report.after.bytes()));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
