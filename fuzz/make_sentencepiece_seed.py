#!/usr/bin/env python3
"""Writes small SentencePiece seeds for fuzz_sentencepiece from tests/data/tokenizers/llama-2.model.

One libFuzzer input is one whole .model: the 500 KB LLaMA-2 model as the only seed makes every execution
a 32,000-piece load (tens per second under ASan). The seed keeps LLaMA-2's trainer and normalizer specs
(a BPE model with byte fallback) and the first KEEP pieces (<unk>, <s>, </s>, the 256 byte pieces and the
first normal pieces) plus the piece "▁" (the space symbol, so that spaces before characters without a
merge decode as spaces): 401 pieces, 6 KB. (No unigram seed: the library supports BPE models only.)

  fuzz/make_sentencepiece_seed.py <llama-2.model> <out-dir>
"""
import sys

KEEP = 400  # pieces kept: 3 specials + 256 byte pieces + 141 normal pieces


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def read_varint(data, pos):
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def fields(data):
    """Yields (number, wire_type, raw bytes of the whole field) of a message."""
    pos = 0
    while pos < len(data):
        start = pos
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(data, pos)
            yield number, wire, data[start:pos], value
        elif wire == 1:
            pos += 8
            yield number, wire, data[start:pos], None
        elif wire == 2:
            length, pos = read_varint(data, pos)
            yield number, wire, data[start:pos + length], data[pos:pos + length]
            pos += length
        elif wire == 5:
            pos += 4
            yield number, wire, data[start:pos], None
        else:
            raise ValueError(f"wire type {wire} at {start}")


def main():
    model = open(sys.argv[1], "rb").read()
    pieces, trainer, normalizer, space = [], None, None, None
    for number, _, raw, payload in fields(model):
        if number == 1:
            pieces.append(raw)
            if any(n == 1 and text == "\u2581".encode() for n, _, _, text in fields(payload)):
                space = raw
        elif number == 2:
            trainer = payload
        elif number == 3:
            normalizer = payload
    if trainer is None or normalizer is None or space is None or len(pieces) < KEEP:
        raise SystemExit("unexpected model layout")
    out = b"".join(pieces[:KEEP]) + space
    out += varint(2 << 3 | 2) + varint(len(trainer)) + trainer
    out += varint(3 << 3 | 2) + varint(len(normalizer)) + normalizer
    with open(f"{sys.argv[2]}/small-bpe.model", "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
