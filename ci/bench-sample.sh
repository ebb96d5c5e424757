#!/usr/bin/env bash
# Sampling speed on the CPU: sampled tokens/s of `igpt sample` with the KV cache against the same
# sampler recomputing the whole prefix at every step (--no-cache), and against PyTorch's KV-cache
# loop of ci/bench_torch_engine.py (same model shape, batch and threads).
# Models are random (speed does not depend on the weights), written by numpy in the native format.
# usage: ci/bench-sample.sh            env: THREADS (default: nproc), SHAPES (see below)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
igpt=${IGPT_BIN:-$root/build/igpt}
[ -x "$igpt" ] || { echo "bench-sample: build first (make)" >&2; exit 1; }
threads=${THREADS:-$(nproc)}
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
. "$root/ci/blas-env.sh" "$igpt"
# passive: on a shared, loaded machine spinning OpenMP threads make each step 10-100x slower
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
# name:n_layer:n_embd:n_head:side:n_vocab:batch ; the no-cache run is skipped above side 16 (O(T^2))
shapes=${SHAPES:-"tiny:2:64:4:8:16:8 smoke:4:128:4:16:512:8 smoke-b32:4:128:4:16:512:32 small:8:256:8:32:512:8"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

make_model() {  # name L C NH side V -> $work/name.safetensors and a 512-colour palette
  /usr/bin/python3 - "$work" "$@" <<'PY'
import json, struct, sys
import numpy as np
work, name, L, C, NH, side, V = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
T = side * side
rng = np.random.default_rng(0)
n = lambda *s, std=0.02: (rng.standard_normal(s) * std).astype(np.float32)
t = {"wte": n(V, C), "wpe": n(T, C, std=0.01), "sos": n(C), "h.ln_1.g": np.ones((L, C), np.float32),
     "h.attn.c_attn.w": n(L, 3 * C, C, std=C ** -0.5), "h.attn.c_proj.w": n(L, C, C, std=(C * L) ** -0.5),
     "h.ln_2.g": np.ones((L, C), np.float32), "h.mlp.c_fc.w": n(L, 4 * C, C), "h.mlp.c_proj.w": n(L, C, 4 * C),
     "ln_f.g": np.ones(C, np.float32), "wtet": n(V, C, std=0.5)}
cfg = {"n_layer": L, "n_embd": C, "n_head": NH, "n_ctx": T, "n_vocab": V, "bias": False,
       "objective": "ar", "mask_prob": 0.15, "n_classes": 0}
def write(path, tensors, meta=None):
    hdr, off, blobs = {}, 0, []
    if meta: hdr["__metadata__"] = meta
    for k, a in tensors.items():
        raw = np.ascontiguousarray(a).tobytes()
        hdr[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw); blobs.append(raw)
    j = json.dumps(hdr).encode(); j += b" " * ((8 - len(j) % 8) % 8)
    with open(path, "wb") as f: f.write(struct.pack("<Q", len(j)) + j + b"".join(blobs))
write(f"{work}/{name}.safetensors", t, {"config": json.dumps(cfg)})
write(f"{work}/{name}-palette.safetensors", {"clusters": rng.uniform(-1, 1, (V, 3)).astype(np.float32)})
PY
}

rate() {  # model palette batch [--no-cache] -> sampled tokens/s
  "$igpt" sample --model "$1" --palette "$2" --n "$3" --seed 1 --out "$work/g.png" --json "${@:4}" 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["tokens_per_s"])'
}

echo "igpt sample, CPU, $threads threads, OMP_WAIT_POLICY=$OMP_WAIT_POLICY ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
blas_kernels_line "$igpt"
printf '%-10s %-22s %5s %12s %12s %8s %12s %9s\n' shape "L/C/heads, T, V" batch "KV tok/s" "no-KV tok/s" ratio \
  "torch tok/s" "vs torch"
for s in $shapes; do
  IFS=: read -r name L C NH side V B <<<"$s"
  make_model "$name" "$L" "$C" "$NH" "$side" "$V"
  m=$work/$name.safetensors p=$work/$name-palette.safetensors
  kv=$(rate "$m" "$p" "$B")
  if [ "$side" -le 16 ]; then
    nokv=$(rate "$m" "$p" "$B" --no-cache)
    ratio=$(/usr/bin/python3 -c "print('%.1fx' % ($kv / $nokv))")
  else
    nokv="skipped"; ratio="-"
  fi
  torch=$(/usr/bin/python3 "$root/ci/bench_torch_engine.py" sample --layers "$L" --d "$C" --heads "$NH" \
            --ctx $((side * side)) --batch "$B" --vocab "$V" --threads "$threads" |
          /usr/bin/python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["tokens_per_s"])')
  vs=$(/usr/bin/python3 -c "print('%.1fx' % ($kv / $torch))")
  printf '%-10s %-22s %5s %12s %12s %8s %12s %9s\n' "$name" "$L/$C/$NH, $((side * side)), $V" "$B" "$kv" "$nokv" \
    "$ratio" "$torch" "$vs"
done
