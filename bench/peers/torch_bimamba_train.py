#!/usr/bin/env python3
"""Peer measurement (issue 7): PyTorch training throughput of a Bi-Mamba on the GPU.

HF transformers Mamba2ForCausalLM, torch path (the pure-PyTorch chunked scan; the mamba_ssm / causal-conv1d fused
path is switched off because its training kernel reads out_proj.weight directly, bypassing the FBI module), with
every mixer's in_proj / out_proj replaced by an FBI-Linear module
    W_eff = wscale * sign(W) + wbias        (wscale, wbias per input feature; sign(0) = +1)
whose sign uses the identity straight-through estimator (d sign(W) / dW := 1, as bimamba's
ops/fbi_linear_backward.hpp). bf16 autocast, fp32 master weights, torch.optim.AdamW, gradient clipping at 1.0,
next-token cross entropy on random tokens. Default shape: Bi-Mamba-780M (d_model 1536, 48 layers, expand 2,
headdim 64, d_state 128, 1 group, conv 4, vocab 32000, tied embeddings) at L = 2048.

Prints one JSON object: tokens/s over the timed steps, peak GPU memory (torch.cuda.max_memory_allocated and
max_memory_reserved), parameters and MFU = 6 * parameters * tokens/s / peak (default 989e12: H200 bf16 dense).

usage: torch_bimamba_train.py [--batch 1] [--length 2048] [--layers 48] [--d-model 1536] [--vocab 32000]
                              [--steps 5] [--warmup 2] [--checkpointing] [--fast-path] [--peak-flops 989e12]
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import transformers
from transformers import Mamba2Config, Mamba2ForCausalLM


class FBILinear(nn.Module):
    """y = x W_eff^T, W_eff = wscale * sign(W) + wbias (column-wise), identity straight-through estimator."""

    def __init__(self, in_features, out_features, weight=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        w = weight.detach().clone() if weight is not None else torch.empty(out_features, in_features)
        if weight is None:
            nn.init.kaiming_uniform_(w, a=5 ** 0.5)
        self.latent = nn.Parameter(w)
        # Bi-Mamba's initialisation from a latent weight: scale = mean |W - mean W| per input column, offset = mean W.
        mean = w.mean(dim=0)
        self.wscale = nn.Parameter((w - mean).abs().mean(dim=0))
        self.wbias = nn.Parameter(mean)
        self.bias = None  # Bi-Mamba's projections have none; HF's mixer reads .bias

    @property
    def weight(self):
        """W_eff with the identity STE. A property, because HF's mixer passes out_proj.weight to its fused
        scan directly in some code paths: they then see the binarized weight, not a latent one."""
        w = self.latent
        sign = torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))
        s = w + (sign - w).detach()  # forward: sign(W); backward: identity
        return self.wscale * s + self.wbias

    def forward(self, x):
        return F.linear(x, self.weight)


def binarize(model):
    for layer in model.backbone.layers:
        m = layer.mixer
        for name in ("in_proj", "out_proj"):
            lin = getattr(m, name)
            assert lin.bias is None, f"{name} has a bias; Bi-Mamba's projections have none"
            setattr(m, name, FBILinear(lin.in_features, lin.out_features, lin.weight).to(lin.weight.device))
    return model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=48)
    parser.add_argument("--d-model", type=int, default=1536)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--steps", type=int, default=5, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (allocator, autotuning)")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--checkpointing", action="store_true", help="gradient checkpointing per block")
    parser.add_argument("--fast-path", action="store_true",
                        help="allow HF's mamba_ssm kernels (off: their training path bypasses the FBI module)")
    parser.add_argument("--peak-flops", type=float, default=989e12, help="bf16 dense peak for the MFU")
    args = parser.parse_args()

    mod = transformers.models.mamba2.modeling_mamba2
    if not args.fast_path and hasattr(mod, "is_fast_path_available"):
        mod.is_fast_path_available = False  # read by Mamba2Mixer.forward at call time: the torch path

    d = args.d_model
    config = Mamba2Config(hidden_size=d, num_hidden_layers=args.layers, expand=2, head_dim=64, num_heads=2 * d // 64,
                          state_size=128, n_groups=1, conv_kernel=4, vocab_size=args.vocab, use_bias=False,
                          use_conv_bias=True, tie_word_embeddings=True, chunk_size=256, use_cache=False)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = binarize(Mamba2ForCausalLM(config))
    if args.checkpointing:
        model.gradient_checkpointing_enable()
    model.train()
    params = sum(p.numel() for p in model.parameters())
    try:
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)

    def step():
        ids = torch.randint(0, args.vocab, (args.batch, args.length), device="cuda")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    losses = []
    for _ in range(args.warmup):
        losses.append(float(step()))
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    timed = [step() for _ in range(args.steps)]
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    losses += [float(x) for x in timed]
    tokens_per_s = args.batch * args.length * args.steps / seconds
    print(json.dumps({
        "peer": "torch_hf_mamba2_fbi_train_bf16", "transformers": transformers.__version__, "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(), "params": params, "layers": args.layers, "d_model": d,
        "vocab": args.vocab, "batch": args.batch, "length": args.length, "steps": args.steps,
        "checkpointing": args.checkpointing, "fast_path": args.fast_path, "seconds": seconds,
        "tokens_per_s": tokens_per_s, "mfu": 6.0 * params * tokens_per_s / args.peak_flops,
        "peak_allocated_bytes": torch.cuda.max_memory_allocated(), "peak_reserved_bytes": torch.cuda.max_memory_reserved(),
        "losses": losses,
    }), flush=True)


if __name__ == "__main__":
    main()
