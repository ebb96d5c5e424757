#!/usr/bin/env bash
# Benchmarks the palette stage against its peers, with the same data and the same threads:
#  1. k-means, k 512, 20 Lloyd iterations on 1M pixels: `igpt palette` vs scikit-learn's KMeans
#     (k-means++ init, n_init=1, max_iter=20, tol=0 so it runs them all, algorithm lloyd).
#  2. tokenizing 60000 32x32 images against those 512 centres: `igpt tokenize` vs numpy doing
#     what HF's ImageGPTImageProcessor does (float32 a^2 - 2ab + b^2 in chunks, then argmin).
# Prints a table with ratios. THREADS (default: nproc) sets OMP_NUM_THREADS / OPENBLAS_NUM_THREADS
# for both sides. The numpy and scikit-learn commands run with OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE unset (both together), since those overrides slow a current OpenBLAS; the
# script prints which OpenBLAS kernel they then use. Data: deterministic synthetic images
# (per-image colour, gradients, noise), generated here; nothing is downloaded.
# Usage: ci/bench-data.sh [WORKDIR]   (needs build/igpt; /usr/bin/python3 with numpy, sklearn)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
IGPT=${IGPT_BIN:-$ROOT/build/igpt}
PY=/usr/bin/python3
THREADS=${THREADS:-$(nproc)}
WORK=${1:-$(mktemp -d /tmp/igpt-bench-data-XXXXXX)}
mkdir -p "$WORK"
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
[ -x "$IGPT" ] || { echo "bench-data: $IGPT not built (run make)"; exit 1; }
$PY -c 'import numpy, sklearn, threadpoolctl' 2>/dev/null ||
  { echo "bench-data: /usr/bin/python3 lacks numpy/sklearn/threadpoolctl (make bench-deps)"; exit 1; }
. "$ROOT/ci/blas-env.sh" "$IGPT"
# igpt's own choice of kernels (ci/blas-env.sh) is the peers' too: it replaces a fallback.
if [ -n "$IGPT_BLAS_CHOSEN" ]; then PYENV=(env -u OPENBLAS_L2_SIZE); else PYENV=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE); fi

# A small safetensors reader/writer shared by the Python steps.
cat >"$WORK/st.py" <<'EOF'
import json, struct, numpy as np
DT = {"U8": np.uint8, "U16": np.uint16, "I32": np.int32, "F32": np.float32}
def save(path, tensors):
    hdr, off, blobs = {}, 0, []
    for name, (dt, a) in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        hdr[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b); blobs.append(b)
    h = json.dumps(hdr).encode(); h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
def load(path, name):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); t = h[name]
        f.seek(8 + n + t["data_offsets"][0])
        return np.frombuffer(f.read(t["data_offsets"][1] - t["data_offsets"][0]), DT[t["dtype"]]).reshape(t["shape"])
EOF

echo "bench-data: generating 60000 + 1024 synthetic 32x32 images in $WORK"
"${PYENV[@]}" $PY - "$WORK" <<'EOF'
import sys, numpy as np
sys.path.insert(0, sys.argv[1]); import st
def images(n, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    out = np.empty((n, 32, 32, 3), np.uint8)
    for i in range(0, n, 5000):
        m = min(5000, n - i)
        base = rng.integers(0, 256, (m, 1, 1, 3))
        slope = rng.integers(-4, 5, (m, 1, 1, 3, 2))
        g = slope[..., 0] * xx[None, :, :, None] + slope[..., 1] * yy[None, :, :, None]
        out[i:i + m] = np.clip(base + g + rng.integers(-12, 13, (m, 32, 32, 3)), 0, 255)
    return out
st.save(sys.argv[1] + "/images.safetensors", {"images": ("U8", images(60000, 1))})
st.save(sys.argv[1] + "/kmeans.safetensors", {"images": ("U8", images(1024, 2))})  # 1,048,576 px
EOF

echo "bench-data: numpy/OpenBLAS as the peers see it:"
"${PYENV[@]}" $PY -c '
import numpy, threadpoolctl
for i in threadpoolctl.threadpool_info():
    print("  %s %s: %s threads, kernel %s" % (i.get("internal_api"), i.get("version"), i.get("num_threads"), i.get("architecture")))
'

# ---- k-means ----
echo "bench-data: k-means, igpt palette (k 512, 20 iterations, $THREADS threads)"
t0=$(date +%s.%N)
"$IGPT" palette --quiet --json --images "$WORK/kmeans.safetensors" --pixels 1048576 --k 512 \
  --iters 20 --seed 0 --out "$WORK/palette.safetensors" >"$WORK/km_igpt.json"
t1=$(date +%s.%N)
km_igpt=$(awk "BEGIN{print $t1 - $t0}")
echo "bench-data: k-means, scikit-learn KMeans (same pixels, same k and iterations)"
"${PYENV[@]}" $PY - "$WORK" >"$WORK/km_sk.txt" <<'EOF'
import sys, time, numpy as np
sys.path.insert(0, sys.argv[1]); import st
from sklearn.cluster import KMeans
px = st.load(sys.argv[1] + "/kmeans.safetensors", "images").reshape(-1, 3)
x = (px.astype(np.float32) / np.float32(127.5) - np.float32(1))
km = KMeans(n_clusters=512, init="k-means++", n_init=1, max_iter=20, tol=0, algorithm="lloyd", random_state=0)
t = time.perf_counter(); km.fit(x); t = time.perf_counter() - t
print(t, km.n_iter_, km.inertia_ / len(x))
EOF
read km_sk km_sk_iters km_sk_inertia <"$WORK/km_sk.txt"

# ---- tokenize ----
echo "bench-data: tokenize, igpt tokenize (60000 images, 512 centres, $THREADS threads)"
t0=$(date +%s.%N)
"$IGPT" tokenize --quiet --palette "$WORK/palette.safetensors" --images "$WORK/images.safetensors" \
  --out "$WORK/tokens.safetensors"
t1=$(date +%s.%N)
tok_igpt=$(awk "BEGIN{print $t1 - $t0}")
echo "bench-data: tokenize, numpy (float32 a^2-2ab+b^2 in 65536-pixel chunks, argmin)"
"${PYENV[@]}" $PY - "$WORK" >"$WORK/tok_np.txt" <<'EOF'
import sys, time, numpy as np
sys.path.insert(0, sys.argv[1]); import st
c = st.load(sys.argv[1] + "/palette.safetensors", "clusters")
px = st.load(sys.argv[1] + "/images.safetensors", "images").reshape(-1, 3)
t = time.perf_counter()
b2 = (c * c).sum(1)[None, :]
out = np.empty(len(px), np.int64)
for i in range(0, len(px), 65536):
    x = px[i:i + 65536].astype(np.float32) / np.float32(127.5) - np.float32(1)
    d = (x * x).sum(1)[:, None] - 2 * (x @ c.T) + b2
    out[i:i + 65536] = np.argmin(d, 1)
t = time.perf_counter() - t
ours = st.load(sys.argv[1] + "/tokens.safetensors", "tokens").reshape(-1)
diff = np.nonzero(ours != out)[0]
# where they differ, which one is the exact nearest (squared distance in float64)?
xs = (px[diff].astype(np.float32) / np.float32(127.5) - np.float32(1)).astype(np.float64)
c64 = c.astype(np.float64)
dd = ((xs[:, None, :] - c64[None]) ** 2).sum(-1) if len(diff) else np.zeros((0, len(c)))
exact = dd.argmin(1) if len(diff) else np.zeros(0, np.int64)
print(t, len(diff), int((exact == ours[diff]).sum()), len(px))
EOF
read tok_np tok_diff tok_ours_exact tok_px <"$WORK/tok_np.txt"

km_json=$(cat "$WORK/km_igpt.json")
km_iters=$($PY -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["iters"])' "$km_json")
km_inertia=$($PY -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["inertia"]/d["pixels"])' "$km_json")
km_split=$($PY -c 'import json,sys; d=json.loads(sys.argv[1]); print("init %.2f s + Lloyd %.2f s" % (d["seconds_init"], d["seconds_lloyd"]))' "$km_json")
echo
echo "bench-data ($THREADS threads, $(nproc) cores; $(date -u +%FT%TZ); provisional unless run on a quiet machine)"
printf '%-44s %10s %10s %8s\n' "task" "igpt (s)" "peer (s)" "ratio"
printf '%-44s %10.2f %10.2f %7.1fx\n' "k-means 1048576 px, k 512, 20 it (sklearn)" "$km_igpt" "$km_sk" "$(awk "BEGIN{print $km_sk / $km_igpt}")"
printf '%-44s %10.2f %10.2f %7.1fx\n' "tokenize 60000 32x32, 512 centres (numpy)" "$tok_igpt" "$tok_np" "$(awk "BEGIN{print $tok_np / $tok_igpt}")"
echo
echo "k-means: igpt $km_iters iterations ($km_split), inertia/pixel $km_inertia;"
echo "         sklearn $km_sk_iters iterations, inertia/pixel $km_sk_inertia"
echo "tokens:  $tok_diff of $tok_px differ from numpy's float32 expansion; at $tok_ours_exact of them igpt's"
echo "         token is the exact (float64) nearest centre (near-ties the expansion rounds the other way)"
