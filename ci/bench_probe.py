#!/usr/bin/python3
"""Linear-probe benchmark: igpt probe against scikit-learn's lbfgs LogisticRegression, same
features, same cores, same C values, same tolerance (tol 1e-4, max_iter 1000). Run through
ci/bench-probe.sh.

sklearn is run the way a user runs a C sweep: a loop of LogisticRegression(C=c).fit(X, y), each
from zero (no warm start). igpt fits the same C values in ascending order, each warm-started from
the previous solution and first searching along the line through the previous two (`igpt probe
--Cs ...`). Both objectives (1/2|W|^2 + C sum loss) are printed
per C so the times are compared at equal objective; sklearn's is evaluated in float64 by numpy,
ours is what igpt reports (float32 logits, double sums; tests/test_probe.c checks it against
numpy's float64 value to 1e-6 relative).

Features: Gaussian classes, x = mu_y + s * z with per-feature scales s_j = (1 + j/16)^-1/2 (an
ill-conditioned spectrum, as real features have), mu ~ N(0, sep^2) with the class means about
three whitened noise units apart; deterministic from a seed.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        dt = {np.float32: "F32", np.int32: "I32"}[a.dtype.type]
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a)
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for a in blobs:
            f.write(a.tobytes())


def make_split(rng_seed, stream, n, d, k, sep):
    mu = np.random.default_rng(rng_seed).normal(0, sep, size=(k, d)).astype(np.float32)
    r = np.random.default_rng([rng_seed, stream])
    y = r.integers(0, k, size=n).astype(np.int32)
    s = (1.0 + np.arange(d) / 16.0) ** -0.5
    x = (mu[y] + r.standard_normal((n, d), dtype=np.float32) * s.astype(np.float32)).astype(np.float32)
    return x, y


def objective(W, b, X, y, C):
    z = X @ W.T + b
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
    return 0.5 * float((W * W).sum()) + C * float((lse - z[np.arange(len(y)), y]).sum())


def run_sklearn(path, Cs):
    """Child process (threads already pinned by the environment): the user's loop of fits."""
    import warnings
    from sklearn.linear_model import LogisticRegression
    with open(path, "rb") as f:
        buf = f.read()
    (hl,) = struct.unpack("<Q", buf[:8])
    hdr = json.loads(buf[8:8 + hl])
    data = buf[8 + hl:]
    def get(name, dt):
        a, b = hdr[name]["data_offsets"]
        return np.frombuffer(data[a:b], dtype=dt).reshape(hdr[name]["shape"])
    X = get("layer_0", np.float32).astype(np.float64)  # sklearn's lbfgs works in float64
    y = get("labels", np.int32)
    out = []
    for C in Cs:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = LogisticRegression(C=C, solver="lbfgs", tol=1e-4, max_iter=1000).fit(X, y)
        dt = time.perf_counter() - t
        out.append({"C": C, "seconds": dt, "iterations": int(clf.n_iter_[0]),
                    "objective": objective(clf.coef_, clf.intercept_, X, y, C)})
    print(json.dumps(out))


def sklearn_results(env, train_path, Cs, key):
    """sklearn's sweep, run in a child process. BENCH_SKLEARN_CACHE=dir keeps its results between
    runs while igpt's side is being developed; the numbers quoted as ratios come from runs without
    it (both sides timed in the same script, on the same quiet machine)."""
    cache = os.environ.get("BENCH_SKLEARN_CACHE")
    import sklearn
    path = cache and os.path.join(cache, f"sklearn-{sklearn.__version__}-{key}-{','.join(map(repr, Cs))}.json")
    if path and os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    out = subprocess.run([sys.executable, __file__, "sklearn", train_path, ",".join(map(repr, Cs))],
                         env=env, check=True, capture_output=True, text=True).stdout
    if path:
        os.makedirs(cache, exist_ok=True)
        with open(path + ".tmp", "w") as f:
            f.write(out)
        os.replace(path + ".tmp", path)
    return json.loads(out)


def main():
    threads = int(os.environ.get("BENCH_THREADS", os.cpu_count()))
    igpt = os.environ.get("IGPT_BIN", "build/igpt")
    n = int(os.environ.get("BENCH_N", 50000))
    configs = os.environ.get("BENCH_CONFIGS", "512x10,512x100,1536x10,1536x100").split(",")
    Cs = [float(c) for c in os.environ.get("BENCH_CS", "1e-4,1e-3,1e-2,1e-1,1,10,100,1000").split(",")]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    import sklearn
    print(f"# linear probe: {n} train rows, C in {Cs}, {threads} threads, tol 1e-4, max_iter 1000; "
          f"scikit-learn {sklearn.__version__} (lbfgs, float64, cold start per C) vs igpt probe "
          f"(own L-BFGS, line search on the logits, float32 sgemm, warm starts along the path)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        for cfg in configs:
            d, k = (int(v) for v in cfg.split("x"))
            # class means 3 noise-whitened units apart: the classes overlap, so the optimum is
            # finite at every C (as with real features at 50000 rows)
            sep = 3.0 / np.sqrt(2 * (1.0 + np.arange(d) / 16.0).sum())
            paths = {}
            for split, stream, m in (("tr", 0, n), ("va", 1, 2000), ("te", 2, 2000)):
                x, y = make_split(1234 + d + k, stream, m, d, k, sep)
                paths[split] = os.path.join(tmp, f"{split}.safetensors")
                write_safetensors(paths[split], {"layer_0": x, "labels": y})
            sk = sklearn_results(env, paths["tr"], Cs, f"{n}x{cfg}x{threads}")
            if os.environ.get("BENCH_SKLEARN_ONLY"):
                continue
            t = time.perf_counter()
            r = subprocess.run([igpt, "probe", "--train", paths["tr"], "--val", paths["va"], "--test",
                                paths["te"], "--layers", "0", "--Cs", ",".join(map(repr, Cs)),
                                "--no-refit", "--no-standardize", "--json"], env=env, check=True,
                               capture_output=True, text=True)
            wall = time.perf_counter() - t
            ours = json.loads(r.stdout)["layers"][0]["sweep"]
            for s, o in zip(sk, ours):
                rows.append((cfg, s["C"], s["seconds"], s["iterations"], s["objective"], o["seconds"],
                             o["iterations"], o["objective"],
                             f'{o["stop"]}, {o.get("evaluations", "?")} evaluations'))
            sk_t, our_t = sum(s["seconds"] for s in sk), sum(o["seconds"] for o in ours)
            rows.append((cfg, "all", sk_t, sum(s["iterations"] for s in sk), None, our_t,
                         sum(o["iterations"] for o in ours), None, f"igpt wall {wall:.1f}s"))
    print(f"{'features':>9} {'C':>7} | {'sklearn s':>9} {'it':>5} {'objective':>14} | {'igpt s':>8} "
          f"{'it':>5} {'objective':>14} | {'obj rel':>8} {'speedup':>7}  stop")
    for cfg, C, st, si, so, ot, oi, oo, stop in rows:
        if C == "all":
            print(f"{cfg:>9} {'sweep':>7} | {st:9.2f} {si:5d} {'':>14} | {ot:8.2f} {oi:5d} {'':>14} | "
                  f"{'':>8} {st / ot:6.1f}x  {stop}")
        else:
            print(f"{cfg:>9} {C:7.0e} | {st:9.2f} {si:5d} {so:14.6g} | {ot:8.2f} {oi:5d} {oo:14.6g} | "
                  f"{(oo - so) / abs(so):+8.1e} {st / max(ot, 1e-9):6.1f}x  {stop}")
    print("obj rel: (igpt - sklearn) / sklearn; negative means igpt reached the lower objective.")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "sklearn":
        run_sklearn(sys.argv[2], [float(c) for c in sys.argv[3].split(",")])
    else:
        main()
