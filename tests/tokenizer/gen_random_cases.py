#!/usr/bin/env python3
"""Writes tests/tokenizer/data/random-cases.jsonl: random strings mixing scripts, combining marks (not NFC),
emoji, whitespace kinds, contractions and special-token texts, with the ids and decoded text that HF
`tokenizers` (gpt-neox-20b.json) and `sentencepiece` (llama-2.model, no BOS) give for them.

Usage (needs the `tokenizers` and `sentencepiece` packages):
    python3 tests/tokenizer/gen_random_cases.py > tests/tokenizer/data/random-cases.jsonl
"""
import json
import os
import random

import sentencepiece as spm
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "tokenizers")

POOLS = [
    " \t\n\r\u00a0\u3000\u2003\u0085",
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0123456789\u0661\u0662\u00bd\u2460",
    "'\"!?.,;:-_()[]{}<>/@#$%^&*+=~`|\\",
    "\u00e9\u00e8\u00ea\u00eb\u00e0\u00e1\u00e2\u00e3\u00e4\u00e5\u00e7\u00f1\u00f6\u00f8\u00fc\u00ff\u0153\u00df\u00c6",
    "\u0301\u0300\u0323\u0308\u0328\u030a\u0327\u0338",
    "\u6771\u4eac\u65e5\u672c\u8a9e\ud55c\uad6d\uc5b4\uac00\uac01\u3072\u3089\u304c\u306a\u30ab\u30bf",
    "\U0001f642\U0001f44d\U0001f3fd\U0001f1e9\U0001f1ea\U0001f4a1\u200d\ufe0f",
    "\u0430\u0431\u0432\u0433\u0434\u0435\u0451\u0436\u0437\u0438\u0439\u043a\u043b\u043c",
    "\u03b1\u03b2\u03b3\u03b4\u03b5\u03b6\u03b7\u03b8",
    "\u05d0\u05d1\u05d2\u05d3\u05b8\u05b9",
    "\u0627\u0628\u062a\u062b\u062c",
    "\u0915\u093c\u094d\u0930\u0940\u1100\u1161\u11a8",
]
WORDS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "<|endoftext|>", "<|padding|>", "<s>", "</s>",
         "\u2581", "  ", "    ", "\n\n", "<unk>"]


def main():
    rng = random.Random(20261129)
    neox = Tokenizer.from_file(os.path.join(DATA, "gpt-neox-20b.json"))
    llama = spm.SentencePieceProcessor(model_file=os.path.join(DATA, "llama-2.model"))
    for _ in range(200):
        parts = []
        for _ in range(rng.randint(0, 20)):
            if rng.random() < 0.1:
                parts.append(rng.choice(WORDS))
            else:
                pool = rng.choice(POOLS)
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 6))))
        text = "".join(parts)
        neox_ids = neox.encode(text).ids
        llama_ids = llama.encode(text)
        print(json.dumps({"text": text,
                          "gpt-neox-20b": neox_ids, "gpt-neox-20b-decoded": neox.decode(neox_ids, skip_special_tokens=False),
                          "llama-2": llama_ids, "llama-2-decoded": llama.decode(llama_ids)}, ensure_ascii=False))


if __name__ == "__main__":
    main()
