#!/usr/bin/env bash
# The model's forward and forward + backward (no optimizer: ci/bench-cpu.sh times the whole
# training step), ours vs plain PyTorch on the CPU: same model (official layout), same shape, same
# thread count, in this one script. Prints medians after warm-up and the ratios.
#   THREADS (default: nproc)  STEPS (default 10)  LAYERS D HEADS CTX BATCH VOCAB (4 128 4 256 8 512)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3   # Debian's python3-torch
THREADS=${THREADS:-$(nproc)}; STEPS=${STEPS:-10}
LAYERS=${LAYERS:-4}; D=${D:-128}; HEADS=${HEADS:-4}; CTX=${CTX:-256}; BATCH=${BATCH:-8}; VOCAB=${VOCAB:-512}
bin=$root/build/ci/bench_model
make -s -C "$root" build/ci/bench_model >/dev/null || { echo "bench-model: cannot build $bin" >&2; exit 1; }
$py -c "import torch" 2>/dev/null || { echo "bench-model: $py lacks torch; run make bench-deps" >&2; exit 1; }
tmp=$(mktemp -d /tmp/igpt-bench-model-XXXXXX); trap 'rm -rf "$tmp"' EXIT

export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
igpt=${IGPT_BIN:-$root/build/igpt}
. "$root/ci/blas-env.sh" "$igpt"
ours=$("$bin" "$LAYERS" "$D" "$HEADS" "$CTX" "$BATCH" "$VOCAB" "$STEPS")
torch=$($py "$root/ci/bench_torch_model.py" --layers "$LAYERS" --d "$D" --heads "$HEADS" --ctx "$CTX" \
          --batch "$BATCH" --vocab "$VOCAB" --threads "$THREADS" --steps "$STEPS")
get() { $py -c 'import json,sys; print("%.1f" % json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
tv=$($py -c 'import json,sys; print(json.loads(sys.argv[1])["torch"])' "$torch")
echo "model: $LAYERS layers, d $D, $HEADS heads, T $CTX, batch $BATCH, vocab $VOCAB; $THREADS threads"
blas_kernels_line "$igpt"
printf '%-28s %12s %12s %14s %10s\n' implementation "fwd ms" "fwd+bwd ms" "fwd vs torch" "f+b vs torch"
printf '%-28s %12s %12s %14s %10s\n' "PyTorch $tv" "$(get "$torch" fwd_ms)" "$(get "$torch" fwdbwd_ms)" 1.00x 1.00x
printf '%-28s %12s %12s %14s %10s\n' "igpt (OpenBLAS + OpenMP)" "$(get "$ours" fwd_ms)" "$(get "$ours" fwdbwd_ms)" \
  "$($py -c "import json,sys; a,b=json.loads(sys.argv[1]),json.loads(sys.argv[2]); print('%.2fx' % (b['fwd_ms']/a['fwd_ms']))" "$ours" "$torch")" \
  "$($py -c "import json,sys; a,b=json.loads(sys.argv[1]),json.loads(sys.argv[2]); print('%.2fx' % (b['fwdbwd_ms']/a['fwdbwd_ms']))" "$ours" "$torch")"
echo "(ratio > 1: igpt is faster; medians of $STEPS steps after 2 warm-up steps)"
