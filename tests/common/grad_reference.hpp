// The batch and the losses of a gradient fixture (tests/data/<model>/grad_reference.safetensors, FIXTURES.md):
// input_ids (B, L), teacher_logits (B, L, V), and the float64 distillation and cross-entropy losses. The
// grad.<name> tensors stay in the file; tests read them by name.
#pragma once

#include <bimamba/io/safetensors.hpp>
#include <bimamba/tensor/tensor.hpp>

namespace bimamba::test {

struct GradReference {
  Tensor<int32_t, 2, Host> ids;    // (B, L)
  Tensor<float, 3, Host> teacher;  // (B, L, V)
  double distill = 0, ce = 0;
};

inline GradReference read_grad_reference(SafetensorsFile& ref) {
  GradReference r;
  const HostTensor ids = ref.get("input_ids");
  r.ids = tensor_from<int32_t, 2>(to_int32(ids), {ids.shape[0], ids.shape[1]});
  const HostTensor t = ref.get("teacher_logits");
  r.teacher = tensor_from<float, 3>(to_float(t), {t.shape[0], t.shape[1], t.shape[2]});
  r.distill = to_float(ref.get("distill_loss"))[0];
  r.ce = to_float(ref.get("ce_loss"))[0];
  return r;
}

}  // namespace bimamba::test
