#!/usr/bin/env python3
"""Peer measurement: HF transformers Mamba2ForCausalLM decode tokens/s in bf16 on the GPU.

The Bi-Mamba 2.7B shape (d_model 2560, 64 layers, expand 2, headdim 64, d_state 128, 1 group, conv 4,
vocab 32000) with random weights, decoded by its own `generate` with the recurrent cache (greedy, a fixed
number of new tokens). Decode tokens/s = batch * new_tokens / (time of generate - time of the prefill alone).
Prints one JSON object per batch size; the numbers go beside bench_cuda's in bench/RESULTS_CUDA.md.

usage: hf_mamba2_decode.py [--batches 1 16] [--new-tokens 32] [--prompt 16] [--layers 64]
"""
import argparse
import json
import time

import torch
import transformers
from transformers import Mamba2Config, Mamba2ForCausalLM


def timed_generate(model, ids, new_tokens):
    torch.cuda.synchronize()
    start = time.perf_counter()
    model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, use_cache=True,
                   pad_token_id=0)
    torch.cuda.synchronize()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--prompt", type=int, default=16)
    parser.add_argument("--layers", type=int, default=64)
    args = parser.parse_args()

    d_model = 2560
    config = Mamba2Config(hidden_size=d_model, num_hidden_layers=args.layers, expand=2, head_dim=64,
                          num_heads=2 * d_model // 64, state_size=128, n_groups=1, conv_kernel=4, vocab_size=32000,
                          tie_word_embeddings=True, use_cache=True)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Mamba2ForCausalLM(config).to(torch.bfloat16).eval()
    params = sum(p.numel() for p in model.parameters())
    fast_path = getattr(transformers.models.mamba2.modeling_mamba2, "is_fast_path_available", None)
    for batch in args.batches:
        ids = torch.randint(0, config.vocab_size, (batch, args.prompt), device="cuda")
        with torch.no_grad():
            timed_generate(model, ids, 2)  # warm-up (kernels, allocator)
            prefill = timed_generate(model, ids, 1)
            total = timed_generate(model, ids, args.new_tokens + 1)
        decode = total - prefill
        print(json.dumps({
            "peer": "hf_transformers_mamba2_bf16", "transformers": transformers.__version__, "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(), "params": params, "layers": args.layers, "batch": batch,
            "new_tokens": args.new_tokens, "decode_s": decode, "decode_tokens_per_s": batch * args.new_tokens / decode,
            "fast_path_kernels": bool(fast_path) if fast_path is not None else None,
        }), flush=True)


if __name__ == "__main__":
    main()
