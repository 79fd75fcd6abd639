// The shape of a chunked SSD scan's work (ops/cuda/ssd_chunks.cuh, ssd_scan.cuh, ssd_scan_backward.cuh): batch B,
// length L, H heads of P channels in G groups, state size N, chunks of Q tokens (the last one may be shorter).
#pragma once

#include <cstdint>

#include "../common.hpp"

namespace bimamba::detail::gpu {

struct SsdGeometry {
  int64_t B, L, H, P, G, N, Q, chunks;
  BIMAMBA_HOST_DEVICE int64_t tokens_in(int64_t c) const { return Q < L - c * Q ? Q : L - c * Q; }
};

}  // namespace bimamba::detail::gpu
