#!/usr/bin/env python3
"""Turns bench_cuda_gemv's JSON into the Markdown table of bench/RESULTS_CUDA.md.

usage: report.py bench_cuda_gemv.json [gpu description]
Rows: each shape and batch T, with the packed binary_linear time per call, the cuBLAS bf16 GEMV time per call,
their ratio, the packed kernel's weight bandwidth and the fraction of the measured copy bandwidth it reaches.
"""
import json
import sys


def main():
    data = json.load(open(sys.argv[1]))
    gpu = sys.argv[2] if len(sys.argv) > 2 else "the device machine's GPU"
    runs = {b["name"]: b for b in data["benchmarks"] if b.get("run_type", "iteration") == "iteration"}
    copy = next((b for n, b in runs.items() if n.startswith("BM_cuda_copy_bandwidth")), None)
    hbm = copy["hbm_gbps"] if copy else None
    print(f"Measured on {gpu} (CUDA graph of 200 calls, weights rotated over more than 180 MB).")
    if hbm:
        print(f"Device copy bandwidth (cudaMemcpy D2D, read + write): {hbm:.0f} GB/s.\n")
    print("| model | proj | out x in | T | packed us | cuBLAS bf16 us | speed-up | packed weight GB/s | of copy BW |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, b in runs.items():
        if not name.startswith("BM_binary_linear_packed/"):
            continue
        key = name[len("BM_binary_linear_packed/"):]
        c = runs.get("BM_cublas_bf16_gemv/" + key)
        model, proj, shape, t = key.split("/")[:4]
        packed_us = b["real_time"]
        cublas_us = c["real_time"] if c else float("nan")
        gbps = b["bytes_per_second"] / 1e9
        frac = f"{gbps / hbm:.0%}" if hbm else "-"
        print(f"| {model} | {proj} | {shape} | {t[1:]} | {packed_us:.2f} | {cublas_us:.2f} | "
              f"{cublas_us / packed_us:.1f}x | {gbps:.0f} | {frac} |")


if __name__ == "__main__":
    main()
