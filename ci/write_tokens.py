#!/usr/bin/python3
"""Writes a tokens file (safetensors, `tokens` U16 [N, T]) of uniform random tokens, for benchmarks.
usage: write_tokens.py OUT N T VOCAB [SEED]"""
import json, struct, sys
import numpy as np

out, n, t, vocab = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
seed = int(sys.argv[5]) if len(sys.argv) > 5 else 0
tokens = np.random.default_rng(seed).integers(0, vocab, (n, t)).astype("<u2")
data = tokens.tobytes()
header = json.dumps({"tokens": {"dtype": "U16", "shape": [n, t],
                                "data_offsets": [0, len(data)]}}).encode()
header += b" " * (-len(header) % 8)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header + data)
