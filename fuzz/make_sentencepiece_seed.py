#!/usr/bin/env python3
"""Writes small SentencePiece seeds for fuzz_sentencepiece from tests/data/tokenizers/llama-2.model.

One libFuzzer input is one whole .model: the 500 KB LLaMA-2 model as the only seed makes every execution
a 32,000-piece load (tens per second under ASan). The seeds keep LLaMA-2's trainer and normalizer specs
and the first KEEP pieces (<unk>, <s>, </s>, the 256 byte pieces and the first normal pieces), as a BPE
model (the original model type) and as a unigram one (TrainerSpec.model_type = 1), a few KB each.

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


def with_model_type(trainer_spec, model_type):
    out = bytearray()
    for number, _, raw, _ in fields(trainer_spec):
        if number != 3:
            out += raw
    out += varint(3 << 3) + varint(model_type)
    return bytes(out)


def main():
    model = open(sys.argv[1], "rb").read()
    pieces, trainer, normalizer = [], None, None
    for number, _, raw, payload in fields(model):
        if number == 1:
            pieces.append(raw)
        elif number == 2:
            trainer = payload
        elif number == 3:
            normalizer = payload
    if trainer is None or normalizer is None or len(pieces) < KEEP:
        raise SystemExit("unexpected model layout")
    for name, model_type in (("small-bpe.model", 2), ("small-unigram.model", 1)):
        spec = with_model_type(trainer, model_type)
        out = b"".join(pieces[:KEEP])
        out += varint(2 << 3 | 2) + varint(len(spec)) + spec
        out += varint(3 << 3 | 2) + varint(len(normalizer)) + normalizer
        with open(f"{sys.argv[2]}/{name}", "wb") as f:
            f.write(out)


if __name__ == "__main__":
    main()
