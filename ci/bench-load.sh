#!/usr/bin/env bash
# OpenMP under load: the smoke table's probe (3 layers of d 64: 1800 train, 200 val, 1000 test
# images, 10 classes, the full C sweep) and a smoke-model training step (2 layers, d 64, T 256,
# batch 8), each quiet and beside BENCH_LOAD busy processes (default: one per core), with igpt's
# choice of wait policy (passive, cli/wait_policy.c) and with libgomp's default spinning
# (GOMP_SPINCOUNT=300000, what an unset OMP_WAIT_POLICY gives). Prints one table; the load average
# it states is the machine's before each measurement (on a shared machine "quiet" is what others
# leave). About two minutes on a loaded 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/igpt ] || make -j2 all >/dev/null
bin=$PWD/build/igpt
busy=${BENCH_LOAD:-$(nproc)}
tmp=$(mktemp -d /tmp/igpt-bench-load-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

/usr/bin/python3 - "$tmp" <<'PY'
import json, struct, sys
import numpy as np
out = sys.argv[1]
def save(path, tensors):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        b = a.tobytes()
        header[name] = {"dtype": {"float32": "F32", "int32": "I32", "uint16": "U16"}[str(a.dtype)],
                        "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode(); h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
rng = np.random.default_rng(0)
means = [rng.normal(0, s, (10, 64)) for s in (0.1, 0.4, 0.25)]
for split, n in (("train", 1800), ("val", 200), ("test", 1000)):
    y = (np.arange(n) % 10).astype(np.int32)
    layers = {f"layer_{l}": (means[l][y] + rng.normal(0, 1, (n, 64))).astype(np.float32) for l in range(3)}
    save(f"{out}/{split}.safetensors", {**layers, "labels": y})
save(f"{out}/tokens.safetensors", {"tokens": rng.integers(0, 64, (256, 256)).astype(np.uint16)})
PY
echo '{"n_layer": 2, "n_embd": 64, "n_head": 2, "n_ctx": 256, "n_vocab": 64}' > "$tmp/config.json"

probe_s() {  # wall seconds of one probe
  local t0 t1
  t0=$(date +%s%N)
  env "$@" "$bin" probe --train "$tmp/train.safetensors" --val "$tmp/val.safetensors" \
    --test "$tmp/test.safetensors" --json >/dev/null 2>&1
  t1=$(date +%s%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'
}
step_ms() {  # median step time of 20 steps (the first left out)
  rm -rf "$tmp/train"
  env "$@" "$bin" train --config "$tmp/config.json" --tokens "$tmp/tokens.safetensors" --out "$tmp/train" \
    --steps 20 --batch 8 --checkpoint-every 0 --quiet --json 2>/dev/null |
    /usr/bin/python3 -c 'import json, sys; print("%.1f" % json.load(sys.stdin)["median_step_ms"])'
}
load() { cut -d' ' -f1 /proc/loadavg; }

printf '%-28s %-34s %8s %9s %13s\n' condition "OpenMP wait" "load" "probe s" "step ms"
for cond in quiet loaded; do
  if [ "$cond" = loaded ]; then
    for _ in $(seq "$busy"); do (while :; do :; done) & pids+=($!); done
    sleep 2
  fi
  label=$cond; [ "$cond" = loaded ] && label="+$busy busy processes"
  for policy in igpt libgomp; do
    envs=(-u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_NUM_THREADS="$(nproc)")
    what="igpt's choice (passive)"
    [ "$policy" = libgomp ] && envs+=(GOMP_SPINCOUNT=300000) && what="libgomp default (spin 300000)"
    l=$(load); p=$(probe_s "${envs[@]}"); s=$(step_ms "${envs[@]}")
    printf '%-28s %-34s %8s %9.2f %13s\n' "$label" "$what" "$l" "$p" "$s"
  done
  if [ "$cond" = loaded ]; then for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; pids=(); fi
done
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
