#!/usr/bin/env python3
"""Checks that the CUDA CPU emulator catches bugs (tools/cuda_emu/README.md): each mutant below is a typical kernel
bug, put into a temporary copy of include/bimamba (never into the checkout); run.sh then builds the emulator's tests
against that copy, and the tests named with the mutant must fail. A mutant whose source text is no longer in the
headers (the library changed) is reported as skipped. Usage: python3 tools/cuda_emu/mutants.py [name...]
Each mutant rebuilds the test program, the device tests included (a few minutes on 2 cores)."""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# name: (header, text, replacement, gtest filter, what the emulator should show)
MUTANTS = {
    "missing_syncthreads": (
        "ops/cuda/launch.cuh",
        "  if (lane == 0) scratch[warp] = v;\n  __syncthreads();\n",
        "  if (lane == 0) scratch[warp] = v;\n",
        "DeviceOps.ElementwiseAndNorms:TrainOpsCuda.Norms",
        "block_sum reads the warps' partial sums before they are written: NaN from the shared-memory poison"),
    "missing_syncthreads_in_scan": (
        "ops/cuda/ssd_chunks.cuh",
        "    const double v = threadIdx.x < Qc && threadIdx.x >= offset ? cs[threadIdx.x - offset] : 0.0;\n"
        "    __syncthreads();\n",
        "    const double v = threadIdx.x < Qc && threadIdx.x >= offset ? cs[threadIdx.x - offset] : 0.0;\n",
        "DeviceOps.SsdScanMatchesHostAtOddAndRealShapes",
        "the Hillis-Steele cumulative sum reads a neighbour's value of the same round: wrong sums"),
    "off_by_one_tile_edge": (
        "ops/cuda/causal_conv1d_backward.cuh",
        "for (int64_t r = 0; r < te - t0 + K - 1; ++r) {",
        "for (int64_t r = 0; r < te - t0 + K - 2; ++r) {",
        "TrainOpsCuda.Conv1dDtAndNegExp",
        "the last input row of a tile is not staged: its shared memory is read unwritten (NaN)"),
    "conv_taps_unpadded": (
        "ops/cuda/causal_conv1d.cuh",
        "  const int64_t pad = kConvRegisterTaps - w.size(1);",
        "  const int64_t pad = 0;",
        "DeviceOps.CausalConv1dPrefillStepAndStates:TrainOpsCuda.Conv1dDtAndNegExp",
        "the register kernels' weights of K < 4 are not shifted to the last taps: wrong outputs at K = 3"),
    "conv_dx_taps_flipped": (
        "ops/cuda/causal_conv1d_backward.cuh",
        "        for (int k = 0; k < KR; ++k) g += taps[k] * da[q + KR - 1 - k];",
        "        for (int k = 0; k < KR; ++k) g += taps[KR - 1 - k] * da[q + KR - 1 - k];",
        "TrainOpsCuda.Conv1dDtAndNegExp",
        "dx correlates da with the taps in the forward's order instead of the reversed one: wrong dx"),
    "gate_dw_of_the_last_row_only": (
        "ops/cuda/gated_rms_norm_backward.cuh",
        "        if (has_dw) dw_sums[run(k) + e] += double(gv[u] * g * r);",
        "        if (has_dw) dw_sums[run(k) + e] = double(gv[u] * g * r);",
        "TrainOpsCuda.Norms",
        "a block that walks several rows keeps only its last row's dw terms: wrong dweight"),
    "gate_float4_run_component": (
        "ops/cuda/gated_rms_norm.cuh",
        "    v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;",
        "    v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.z;",
        "DeviceOps.ElementwiseAndNorms:TrainOpsCuda.Norms",
        "the float4 runs read the third column twice and the fourth never: wrong out, dy, dz, dw"),
    "gate_smem_without_optin": (
        "ops/cuda/gated_rms_norm_backward.cuh",
        "  if (smem > (47 << 10)) {",
        "  if (smem > (48 << 10)) {",
        "TrainOpsCuda.Norms",
        "48 KiB of dynamic shared memory (S = 6163) plus the kernel's static 512 bytes without the opt-in: the H100 "
        "refused the launch (cudaErrorInvalidValue, session 21); the emulator names the sizes"),
    "gate_accumulate_ignored": (
        "ops/cuda/gated_rms_norm_backward.cuh",
        "      if (accumulate && has_dy) load_run<V>(dyr, run(k), ny);\n",
        "",
        "TrainOpsCuda.Norms",
        "under Accumulate the held columns' dy overwrites instead of adding: wrong dy"),
    "chunk_quads_skip_columns": (
        "ops/cuda/ssd_bwd_chunk.cuh",
        "    const int col = 4 * (tid % (W / 4));",
        "    const int col = 4 * (tid % (W / 8));",
        "TrainOpsCuda.SsdScan",
        "the chunk kernel's float4 staging covers only the first 32 columns of a slab: wrong dx, ddt, dB, dC"),
    "chunk_m_not_transposed": (
        "ops/cuda/ssd_bwd_chunk.cuh",
        "    tg[j * PT + i] = tf32_operand<kSplit>(cbv * decay);",
        "    tg[i * PT + j] = tf32_operand<kSplit>(cbv * decay);",
        "TrainOpsCuda.SsdScan",
        "the chunk kernel's v product takes M for M^T: wrong dx, ddt"),
    "chunk_dot_half_reduced": (
        "ops/cuda/ssd_bwd_chunk.cuh",
        "    dot += __shfl_xor_sync(0xffffffffu, dot, 2);\n",
        "",
        "TrainOpsCuda.SsdScan",
        "the row dots x . v add two of their four partial sums: wrong ddt"),
    "rms_quad_residual_not_stored": (
        "ops/cuda/rms_norm.cuh",
        "  if (V == 4 && add && col(0) < D)\n",
        "  if (V == 4 && add && col(0) < 0)\n",
        "DeviceOps.ElementwiseAndNorms",
        "add_rms_norm's float4 runs never write the updated residual back: wrong residual"),
    "return_before_barrier": (
        "ops/cuda/column_reduce.cuh",
        "  __syncthreads();\n  if (threadIdx.y != 0 || j >= cols) return;\n",
        "  if (threadIdx.y != 0 || j >= cols) return;\n  __syncthreads();\n",
        "TrainOpsCuda.Norms",
        "threads leave before the barrier the others wait at: reported as a divergent barrier"),
    "wsum_skips_a_head": (
        "ops/cuda/ssd_scan_backward.cuh",
        "  for (int64_t h = 0; h < Hg; ++h) sum += wd[h * QQ];",
        "  for (int64_t h = 1; h < Hg; ++h) sum += wd[h * QQ];",
        "TrainOpsCuda.SsdScan",
        "the SSD backward's sum of Wd over a group's heads leaves out the first head: wrong dB, dC"),
    "decay_mask_triangle": (
        "ops/cuda/ssd_bwd_chunk.cuh",
        "    const bool in = j <= i && i < Qc;",
        "    const bool in = j < i && i < Qc;",
        "TrainOpsCuda.SsdScan",
        "the SSD backward's masks drop their diagonal: wrong dx, dB, dC"),
    "scan_skip_term_dropped": (
        "ops/cuda/ssd_scan.cuh",
        "+ (i == j ? Dh : 0.0f) : 0.0f)",
        "+ 0.0f : 0.0f)",
        "DeviceOps.SsdScanMatchesHostAtOddAndRealShapes",
        "the forward chunk kernel's mask loses D on its diagonal: y misses the skip term D x"),
    "scan_mask_without_diagonal": (
        "ops/cuda/ssd_scan.cuh",
        "va[u] = j <= i && i < Qc ? cbm[i * Q + j] : 0.0f;",
        "va[u] = j < i && i < Qc ? cbm[i * Q + j] : 0.0f;",
        "DeviceOps.SsdScanMatchesHostAtOddAndRealShapes",
        "the forward chunk kernel's mask drops C_i . B_i dt_i: wrong y"),
    "bf16_quads_first_row_only": (
        "ops/cuda/gemm.cuh",
        "store_bf16_quad(dst + c * rows + r, *reinterpret_cast<const float4*>(src + c * ld + r));",
        "store_bf16_quad(dst + c * rows + r, *reinterpret_cast<const float4*>(src + c * ld));",
        "TrainOpsCuda.LinearInTf32AndBf16",
        "the float4 bf16 copy reads the column's first four rows for every quad: wrong bf16 products"),
    "fbi_sign_quad_component": (
        "ops/cuda/fbi_sign_gemm.cuh",
        "v = make_float4(sign(w.x), sign(w.y), sign(w.z), sign(w.w));",
        "v = make_float4(sign(w.x), sign(w.y), sign(w.z), sign(w.z));",
        "TrainOpsCuda.LinearInTf32AndBf16",
        "the float4 sign matrix copies a column's sign into the next: wrong fbi_linear y, dx, dalpha"),
    "scan_mask_quad_shifted": (
        "ops/cuda/ssd_scan.cuh",
        "mask(i, j + 3, va[u].w)",
        "mask(i, j + 2, va[u].w)",
        "DeviceOps.SsdScanMatchesHostAtOddAndRealShapes",
        "the forward chunk kernel's float4 mask staging gives column j + 3 the mask of j + 2: wrong y"),
    "readout_fs_quads_miss_a_component": (
        "ops/cuda/ssd_state_readouts.cuh",
        "fs += double(vs[u].x) * vf[u].x + double(vs[u].y)",
        "fs += double(vs[u].y)",
        "TrainOpsCuda.SsdScan",
        "<F, S0> from float4 staging leaves out every fourth column: wrong dl, so wrong ddt and dA"),
    "readout_fs_slab_row_skipped": (
        "ops/cuda/ssd_state_readouts.cuh",
        "      fs += double(vs[u]) * double(vf[u]);",
        "      fs += u > 0 ? double(vs[u]) * double(vf[u]) : 0.0;",
        "TrainOpsCuda.SsdScan",
        "<F, S0> (single-float staging) leaves out a row of every staged slab: wrong dl, so wrong ddt and dA"),
    "readout_row_dot_overwritten": (
        "ops/cuda/ssd_state_readouts.cuh",
        "      s0[i] += sc;",
        "      s0[i] = sc;",
        "TrainOpsCuda.SsdScan",
        "s0_i keeps only the last slab of P (P > 64): wrong dl"),
    "readout_quarter_sum_half_missing": (
        "ops/cuda/ssd_state_readouts.cuh",
        "    sc += __shfl_xor_sync(0xffffffffu, sc, 2);\n",
        "",
        "TrainOpsCuda.SsdScan",
        "s0_i sums two of the four quarter rows: wrong dl"),
    "readout_v_without_decay": (
        "ops/cuda/ssd_state_readouts.cuh",
        "vv[k] = el[i] * u;",
        "vv[k] = u;",
        "TrainOpsCuda.SsdScan",
        "v's state term misses exp(cs_last - cs_j): wrong dx, ddt"),
    "decode_plan_without_K": (
        "ops/cuda/mamba2_decode_layers.cuh",
        "  const int64_t smem = gpu::layers_smem(shape, nb).total;",
        "  shape.K = 0;\n  const int64_t smem = gpu::layers_smem(shape, nb).total;",
        "DecodeLayers.PersistentKernelMatchesTheHostCompositionOverTokens",
        "the plan sizes shared memory without the conv taps (session 22's first v4 binary: an illegal address on the "
        "H100): the layout's last regions lie past the dynamic shared memory"),
    "decode_bc_count_short": (
        "ops/cuda/mamba2_decode_layers.cuh",
        "    const float in = await_value(a.bc_rows + j, load_tagged(a.bc_rows + j), tag);",
        "    const float in = j == 0 ? __uint_as_float(unsigned(load_tagged(a.bc_rows))) : "
        "await_value(a.bc_rows + j, load_tagged(a.bc_rows + j), tag);",
        "DecodeLayers.PersistentKernelMatchesTheHostCompositionOverTokens",
        "STEP waits for all B / C rows but one: a block reads a row before its owner wrote it (stale or zero)"),
    "decode_residual_not_kept": (
        "ops/cuda/mamba2_decode_layers.cuh",
        "        res[k] = hn;\n",
        "",
        "DecodeLayers.PersistentKernelMatchesTheHostCompositionOverTokens",
        "the residual rows kept in shared memory are not updated: every layer adds to the launch's first h"),
    "decode_params_not_waited": (
        "ops/cuda/mamba2_decode_layers.cuh",
        "  if (wait_copies) async_copy_wait_all();  // IN: the layer's staged parameters, for the rows' epilogues\n",
        "",
        "DecodeLayers.PersistentKernelMatchesTheHostCompositionOverTokens",
        "IN does not wait for its cp.async copies of the layer's parameters: its rows' epilogues read them before "
        "they land (the emulator lands a cp.async only at its thread's wait): NaN"),
    "decode_pair_rows_one_row": (
        "ops/cuda/mamba2_decode_layers.cuh",
        "  const uint32_t* row = half ? row1 : row0;",
        "  const uint32_t* row = row0;",
        "DecodeLayers.PersistentKernelMatchesTheHostCompositionOverTokens",
        "both half-warps of table_dot_pair read the first row of the pair: every second in_proj row is its "
        "neighbour's (v10)"),
    "decode_table_pitch_mismatch": (
        "ops/cuda/mamba2_decode_layers.cuh",
        "  if (Wp == 2 * kFastPitch) return table_dot_slices<2 * kFastPitch>(rows, R, table, W, Wp, part, warp, lane);",
        "  if (Wp == 2 * kFastPitch) return table_dot_slices<kFastPitch>(rows, R, table, W, Wp, part, warp, lane);",
        "DecodeLayers.PersistentKernelMatchesTheHostCompositionOverTokens",
        "rows of 129 - 256 words look up a table built at pitch 256 with pitch 128: wrong entries (v11)"),
    "binary_mma_rows_mixed": (
        "ops/cuda/binary_mma.cuh",
        "    const uint32_t a1 = (wv >> ja) & 0x01010101u, a3 = (wv >> (ja + 1)) & 0x01010101u;",
        "    const uint32_t a1 = (wu >> ja) & 0x01010101u, a3 = (wv >> (ja + 1)) & 0x01010101u;",
        "ModelFixturesCuda.BiMamba2TinyPacked",
        "the packed kernels' mma takes row g's signs for row g + 8 in half its k-steps: wrong in_proj / out_proj rows"),
    "decode_slices_first_run_only": (
        "ops/cuda/mamba2_decode_layers.cuh",
        "  for (int w = warp_of(first); w <= warp_of(last); ++w) {",
        "  for (int w = warp_of(first); w <= warp_of(first); ++w) {",
        "DecodeLayers.PersistentKernelMatchesTheHostCompositionOverTokens",
        "an out_proj row split over two warps' runs of slices keeps only the first warp's part (v12)"),
    "decode_state_rows_mixed": (
        "ops/cuda/mamba2_decode_layers.cuh",
        "        for (int offset = kStateRowLanes / 2; offset > 0; offset >>= 1)",
        "        for (int offset = kStateRowLanes; offset > 0; offset >>= 1)",
        "DecodeLayers.PersistentKernelMatchesTheHostCompositionOverTokens",
        "the lanes of two state rows sum their read-outs together (v12: a quarter-warp a row)"),
    "wrong_leading_dimension": (
        "ops/cuda/gemm.cuh",
        "gemm_bf16(ctx, op_a, op_b, m, n, k, a16, a_rows, b16, b_rows, beta, C, ldc);",
        "gemm_bf16(ctx, op_a, op_b, m, n, k, a16, a_cols, b16, b_rows, beta, C, ldc);",
        "TrainOpsCuda.LinearInTf32AndBf16",
        "cublasGemmEx gets lda below the rows of A: CUBLAS_STATUS_INVALID_VALUE"),
}


def main(names):
    names = names or list(MUTANTS)
    build = os.path.join(tempfile.gettempdir(), "bimamba_emu_mutants")
    failed = False
    for name in names:
        header, old, new, tests, expect = MUTANTS[name]
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "bimamba")
            shutil.copytree(os.path.join(ROOT, "include", "bimamba"), src)
            path = os.path.join(src, header)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if text.count(old) != 1:
                print(f"{name}: SKIPPED (the text to mutate is not in {header} once)")
                continue
            with open(path, "w", encoding="utf-8") as f:
                f.write(text.replace(old, new))
            env = dict(os.environ, BIMAMBA_EMU_SOURCE=src, BIMAMBA_EMU_BUILD=build)
            run = subprocess.run(["bash", os.path.join(HERE, "run.sh"), f"--gtest_filter={tests}", "--gtest_brief=1"],
                                 env=env, capture_output=True, text=True)
        log = run.stdout + run.stderr
        # A failed test, or the emulator's report of an access past a guard page (the process ends there).
        caught = run.returncode != 0 and ("FAILED" in log or "bimamba_emu: segmentation fault" in log)
        failed |= not caught
        verdict = "caught" if caught else "NOT CAUGHT" if run.returncode == 0 else "ERROR (no test failed: build error?)"
        print(f"{name}: {verdict} ({header}: {expect})")
        if not caught and run.returncode != 0:
            print("    " + "\n    ".join(log.splitlines()[-5:]))
        lines = log.splitlines()
        for i, line in enumerate(lines):
            if "Failure" in line:  # the first failure and its message
                for shown in lines[i:i + 4]:
                    print("    " + shown.strip()[:300])
                break
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
