#!/usr/bin/python3
"""The scikit-learn side of tests/test_probe.c: fits sklearn's lbfgs LogisticRegression on the
features in a safetensors file and scores both its solution and ours (theta) in float64.

usage: sklearn_logreg.py DATA.safetensors C [THETA.safetensors]
DATA holds x_train F32 [n,d], y_train I32 [n], x_test, y_test; THETA holds theta F64 [k*d + k]
(weights row-major, then biases: runtime/eval/logreg.h). Prints one JSON line.
Run with OMP_NUM_THREADS / OPENBLAS_NUM_THREADS set by the caller (pinned threads).
"""
import json
import struct
import sys
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression

DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    (hlen,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + hlen])
    data = buf[8 + hlen :]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
    return out


def objective(W, b, X, y, C):
    """½‖W‖² + C Σ -log softmax(XWᵀ + b)_y, in float64."""
    z = X @ W.T + b
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
    loss = (lse - z[np.arange(len(y)), y]).sum()
    return 0.5 * (W * W).sum() + C * loss


def main():
    d = read_safetensors(sys.argv[1])
    C = float(sys.argv[2])
    Xtr = d["x_train"].astype(np.float64)
    ytr = d["y_train"].astype(np.int64)
    Xte = d["x_test"].astype(np.float64)
    yte = d["y_test"].astype(np.int64)
    k = int(ytr.max()) + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = LogisticRegression(C=C, solver="lbfgs", multi_class="multinomial", tol=1e-4,
                                 max_iter=1000).fit(Xtr, ytr)
    res = {
        "sklearn_version": __import__("sklearn").__version__,
        "sk_objective": objective(clf.coef_, clf.intercept_, Xtr, ytr, C),
        "sk_test_acc": float((clf.predict(Xte) == yte).mean()),
        "sk_n_iter": int(clf.n_iter_[0]),
    }
    if len(sys.argv) > 3:
        th = read_safetensors(sys.argv[3])["theta"]
        W = th[: k * Xtr.shape[1]].reshape(k, Xtr.shape[1])
        b = th[k * Xtr.shape[1] :]
        res["our_objective"] = objective(W, b, Xtr, ytr, C)
        res["our_test_acc"] = float(((Xte @ W.T + b).argmax(axis=1) == yte).mean())
    print(json.dumps(res))


if __name__ == "__main__":
    main()
