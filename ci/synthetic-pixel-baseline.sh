#!/usr/bin/env bash
# How hard the embedded synthetic set is for raw pixels: prepares it into a temporary data
# directory and fits scikit-learn's multinomial logistic regression (lbfgs) on the raw pixels
# scaled to [0,1], C chosen on the validation split, accuracy on test. Chance is 10%; a useful
# smoke set sits well above chance but far below what a model that sees shapes can reach.
# Usage: ci/synthetic-pixel-baseline.sh [igpt prepare synthetic flags...]   (OMP/BLAS: 2 threads)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${IGPT_BIN:-$root/build/igpt}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
IGPT_DATA=$tmp "$bin" prepare synthetic "$@" >/dev/null
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OPENBLAS_NUM_THREADS=${OMP_NUM_THREADS:-2} \
/usr/bin/python3 - "$tmp/prepared/synthetic-32" <<'PY'
import json, struct, sys, warnings
import numpy as np
from sklearn.linear_model import LogisticRegression
warnings.filterwarnings("ignore")
def load(p):  # safetensors: u64 header length, JSON header, data
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); d = b[8 + n:]
    t = {k: np.frombuffer(d[v["data_offsets"][0]:v["data_offsets"][1]], {"U8": np.uint8, "I32": np.int32}[v["dtype"]]).reshape(v["shape"])
         for k, v in h.items() if k != "__metadata__"}
    return t["images"].reshape(len(t["labels"]), -1).astype(np.float32) / 255, t["labels"]
tr, va, te = (load(f"{sys.argv[1]}/{s}.safetensors") for s in ("train", "val", "test"))
best = None
for C in (1e-3, 1e-2, 1e-1, 1):
    m = LogisticRegression(C=C, max_iter=300).fit(*tr)
    acc = m.score(*va)
    print(f"C={C:g}: val accuracy {100 * acc:.1f}%")
    if best is None or acc > best[0]: best = (acc, C, m)
print(f"raw-pixel logistic regression: test accuracy {100 * best[2].score(*te):.1f}% (C={best[1]:g}; chance 10.0%; "
      f"{len(tr[1])} train, {len(te[1])} test)")
PY
