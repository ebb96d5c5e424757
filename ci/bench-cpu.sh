#!/usr/bin/env bash
# One training step (forward + backward + AdamW) of a small iGPT, ours vs plain PyTorch on the CPU,
# same model (official layout: RMS norm, gelu2, sos, untied head, no biases), same shape, same
# thread count, in this one script. Prints ms/step (median after warm-up) and the ratio.
#   THREADS (default: nproc)  STEPS (timed steps, default 10)
#   LAYERS D HEADS CTX BATCH VOCAB (default 4 128 4 256 8 512)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${IGPT_BIN:-$root/build/igpt}
py=/usr/bin/python3   # Debian's python3-torch lives here, not in a pyenv python
THREADS=${THREADS:-$(nproc)}; STEPS=${STEPS:-10}
LAYERS=${LAYERS:-4}; D=${D:-128}; HEADS=${HEADS:-4}; CTX=${CTX:-256}; BATCH=${BATCH:-8}; VOCAB=${VOCAB:-512}
[ -x "$bin" ] || { echo "bench-cpu: $bin not built; run make" >&2; exit 1; }
$py -c "import torch" 2>/dev/null || { echo "bench-cpu: $py lacks torch; run make bench-deps" >&2; exit 1; }

tmp=$(mktemp -d /tmp/igpt-bench-XXXXXX); trap 'rm -rf "$tmp"' EXIT
$py "$root/ci/write_tokens.py" "$tmp/tokens.safetensors" 256 "$CTX" "$VOCAB"
cat >"$tmp/config.json" <<JSON
{"n_layer": $LAYERS, "n_embd": $D, "n_head": $HEADS, "n_ctx": $CTX, "n_vocab": $VOCAB, "bias": false}
JSON

export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
. "$root/ci/blas-env.sh" "$bin"
# Ours: the median step time `igpt train` reports (it leaves out the first step, which allocates).
ours=$("$bin" train --config "$tmp/config.json" --tokens "$tmp/tokens.safetensors" --out "$tmp/run" \
         --steps $((STEPS + 3)) --batch "$BATCH" --lr 1e-3 --warmup 0 --checkpoint-every 0 --quiet --json)
get() { $py -c 'import json,sys; print("%.1f" % json.loads(sys.argv[1])[sys.argv[2]])' "$@"; }
ours_ms=$(get "$ours" median_step_ms); ours_cpu=$(get "$ours" median_step_cpu_ms)
torch=$($py "$root/ci/bench_torch_step.py" --layers "$LAYERS" --d "$D" --heads "$HEADS" --ctx "$CTX" \
          --batch "$BATCH" --vocab "$VOCAB" --threads "$THREADS" --warmup 3 --steps "$STEPS")
torch_ms=$(get "$torch" ms_per_step); torch_cpu=$(get "$torch" cpu_ms_per_step)
torch_v=$($py -c 'import json,sys; print(json.loads(sys.argv[1])["torch"])' "$torch")
ratio() { $py -c "print('%.2fx' % ($1 / $2))"; }

echo "training step: $LAYERS layers, d $D, $HEADS heads, T $CTX, batch $BATCH, vocab $VOCAB; $THREADS threads"
blas_kernels_line "$bin"
printf '%-30s %10s %10s %14s %10s\n' "implementation" "ms/step" "vs torch" "CPU ms/step" "vs torch"
printf '%-30s %10s %10s %14s %10s\n' "PyTorch $torch_v (CPU)" "$torch_ms" "1.00x" "$torch_cpu" "1.00x"
printf '%-30s %10s %10s %14s %10s\n' "igpt (OpenBLAS + OpenMP)" "$ours_ms" "$(ratio "$torch_ms" "$ours_ms")" \
  "$ours_cpu" "$(ratio "$torch_cpu" "$ours_cpu")"
echo "(medians of $STEPS steps after warm-up; ratio > 1: igpt is faster. ms/step is wall time; CPU"
echo " ms/step sums all threads, a steadier figure on a busy machine. Provisional unless the machine is quiet.)"
