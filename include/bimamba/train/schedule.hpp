// Learning-rate schedules: functors lr(step) for 0-based optimizer steps.
//
//   ConstantSchedule(lr, warmup):        lr * min(1, (step + 1) / warmup)
//   CosineSchedule(max, min, warmup, total):
//       step <  warmup:           max * (step + 1) / warmup                       (linear warmup)
//       warmup <= step < total:   min + (max - min) * (1 + cos(pi * r)) / 2,  r = (step - warmup) / (total - warmup)
//       step >= total:            min                                             (the floor)
//   LinearSchedule(max, min, warmup, total): the same warmup, then max + (min - max) * r, then min.
// The warmup ends exactly at max on step warmup - 1, and the decay starts at max on step warmup. warmup = 0
// means none. Arguments are checked: 0 <= min <= max, 0 <= warmup <= total.
#pragma once

#include <cmath>
#include <cstdint>

#include "../core/error.hpp"

namespace bimamba {

namespace detail {
inline constexpr double kPi = 3.14159265358979323846;  // M_PI is not standard C++

inline double warmup_factor(int64_t step, int64_t warmup) {
  return step < warmup ? double(step + 1) / double(warmup) : 1.0;
}
inline void check_schedule(const char* what, float max_lr, float min_lr, int64_t warmup, int64_t total) {
  BIMAMBA_CHECK(min_lr >= 0 && min_lr <= max_lr, what, ": need 0 <= min_lr (", min_lr, ") <= max_lr (", max_lr, ")");
  BIMAMBA_CHECK(warmup >= 0 && warmup <= total, what, ": need 0 <= warmup (", warmup, ") <= total (", total, ")");
}
}  // namespace detail

class ConstantSchedule {
 public:
  explicit ConstantSchedule(float lr, int64_t warmup = 0) : lr_(lr), warmup_(warmup) {
    BIMAMBA_CHECK(lr >= 0 && warmup >= 0, "ConstantSchedule: need lr (", lr, ") >= 0 and warmup (", warmup, ") >= 0");
  }
  float operator()(int64_t step) const { return float(lr_ * detail::warmup_factor(step, warmup_)); }

 private:
  double lr_;
  int64_t warmup_;
};

class CosineSchedule {
 public:
  CosineSchedule(float max_lr, float min_lr, int64_t warmup, int64_t total)
      : max_(max_lr), min_(min_lr), warmup_(warmup), total_(total) {
    detail::check_schedule("CosineSchedule", max_lr, min_lr, warmup, total);
  }
  float operator()(int64_t step) const {
    if (step < warmup_) return float(max_ * detail::warmup_factor(step, warmup_));
    if (step >= total_) return float(min_);
    const double r = double(step - warmup_) / double(total_ - warmup_);
    return float(min_ + (max_ - min_) * 0.5 * (1.0 + std::cos(detail::kPi * r)));
  }

 private:
  double max_, min_;
  int64_t warmup_, total_;
};

class LinearSchedule {
 public:
  LinearSchedule(float max_lr, float min_lr, int64_t warmup, int64_t total)
      : max_(max_lr), min_(min_lr), warmup_(warmup), total_(total) {
    detail::check_schedule("LinearSchedule", max_lr, min_lr, warmup, total);
  }
  float operator()(int64_t step) const {
    if (step < warmup_) return float(max_ * detail::warmup_factor(step, warmup_));
    if (step >= total_) return float(min_);
    const double r = double(step - warmup_) / double(total_ - warmup_);
    return float(max_ + (min_ - max_) * r);
  }

 private:
  double max_, min_;
  int64_t warmup_, total_;
};

}  // namespace bimamba
