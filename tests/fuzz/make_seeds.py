#!/usr/bin/python3
# Writes the small valid seed inputs of the decoder fuzzers into tests/fixtures/fuzz/<harness>/
# (layouts: tests/fuzz/fuzz_decode.h). Run from the repository root with /usr/bin/python3.
import gzip, io, os, struct
import numpy as np

root = "tests/fixtures/fuzz"
def put(h, name, data):
    os.makedirs(f"{root}/{h}", exist_ok=True)
    open(f"{root}/{h}/{name}", "wb").write(data)

rng = np.random.default_rng(0)
px = rng.integers(0, 256, 3072, dtype=np.uint8).tobytes()
put("cifar", "seed-cifar10", b"\x00" + bytes([3]) + px + bytes([9]) + px)
put("cifar", "seed-cifar100", b"\x01" + bytes([5, 42]) + px)
stl = rng.integers(0, 256, 3 * 96 * 96, dtype=np.uint8).tobytes()
put("stl10", "seed-one", bytes([1, 7]) + stl)
img = struct.pack(">IIII", 0x803, 2, 3, 4) + bytes(range(24))
lab = struct.pack(">II", 0x801, 2) + bytes([1, 9])
cut = struct.pack(">H", len(img))
put("idx", "seed-raw", b"\x00" + cut + img + lab)
put("idx", "seed-gz", b"\x01" + cut + gzip.compress(img + lab, mtime=0))
def npy(a):
    b = io.BytesIO(); np.save(b, a); return b.getvalue()
x = npy(rng.integers(0, 512, (2, 16), dtype=np.int64))
for name, y in [("onehot", np.eye(3, dtype=np.float32)[[2, 0]]), ("index", np.array([1, 0], dtype=np.int32))]:
    put("npy", f"seed-{name}", struct.pack(">H", len(x)) + x + npy(y))
import pickle
for S, code in ((1, 0), (2, 1)):  # pickle: d[0] & 3 picks the size (1, 2, 4, 32)
    d = rng.integers(0, 256, (3, 3 * S * S), dtype=np.uint8)
    b = {"data": d, "labels": [1, 1000, 17], "mean": d.mean(0)}
    for p in (2, 4, 5):
        put("pickle", f"seed-s{S}-p{p}", bytes([code]) + pickle.dumps(b, protocol=p))
put("pickle", "seed-bkeys", b"\x00" + pickle.dumps({k.encode(): v for k, v in b.items()}, protocol=2))
