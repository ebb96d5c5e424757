#!/usr/bin/env bash
# Every-layer feature extraction on the CPU, igpt vs PyTorch (the same model, shape and threads, in
# this one script): one forward pass with no head and no gradients giving each layer's pooled
# normalised features (ci/bench_engine.c features vs ci/bench_torch_engine.py features).
#   THREADS (default: nproc)  STEPS (default 5)  SHAPES "name:L:D:H:T:B ..." (V 512)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3   # Debian's python3-torch
THREADS=${THREADS:-$(nproc)}; STEPS=${STEPS:-5}
shapes=${SHAPES:-"smoke:4:128:4:256:8 small:8:256:8:256:8"}
bin=$root/build/ci/bench_engine
make -s -C "$root" build/ci/bench_engine >/dev/null || { echo "bench-features: cannot build $bin" >&2; exit 1; }
$py -c "import torch" 2>/dev/null || { echo "bench-features: $py lacks torch; run make bench-deps" >&2; exit 1; }
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
igpt=${IGPT_BIN:-$root/build/igpt}
. "$root/ci/blas-env.sh" "$igpt"
get() { $py -c 'import json,sys; print("%.1f" % json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
echo "every-layer features, CPU, $THREADS threads ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
blas_kernels_line "$igpt"
printf '%-8s %-20s %6s %14s %14s %8s\n' shape "L/d/heads, T" batch "igpt img/s" "torch img/s" ratio
for s in $shapes; do
  IFS=: read -r name L D H T B <<<"$s"
  ours=$("$bin" features cpu fp32 "$L" "$D" "$H" "$T" "$B" 512 "$STEPS")
  torch=$($py "$root/ci/bench_torch_engine.py" features --layers "$L" --d "$D" --heads "$H" --ctx "$T" \
          --batch "$B" --vocab 512 --threads "$THREADS" --steps "$STEPS" --warmup 2)
  a=$(get "$ours" images_per_s) b=$(get "$torch" images_per_s)
  printf '%-8s %-20s %6s %14s %14s %8s\n' "$name" "$L/$D/$H, $T" "$B" "$a" "$b" "$($py -c "print('%.2fx' % ($a / $b))")"
done
echo "(ratio > 1: igpt is faster; medians of $STEPS passes after 2 warm-up passes; PyTorch eager, explicit attention)"
