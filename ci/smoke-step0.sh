#!/usr/bin/env bash
# What the smoke scale's probe accuracy owes to pretraining: probes the smoke model at its
# initialisation (step 0) on the very tokens the smoke linear-probe table used, for each seed, and
# prints it beside the table's own accuracy for that seed. The untrained model's mean-pooled
# features already carry the colour histogram (well above chance on Fashion-MNIST); the smoke
# table is meant to sit clearly above them. "Step 0" is one AdamW step at lr 1e-12 (igpt train
# needs one step), which moves no weight by more than about 1e-12.
# Usage: ci/smoke-step0.sh [SEEDS (default 1)] [RESULTS_DIR (default results)]
#   runs (or finds cached) `igpt run linear-probe --scale smoke` with that many seeds first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${IGPT_BIN:-$root/build/igpt}
seeds=${1:-1}
results=${2:-results}
cd "$root"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
suite=suite
if [ "$seeds" != 1 ]; then  # the repository's suite with the smoke scale's seeds changed
  cp suite/*.json "$tmp/"
  /usr/bin/python3 -c "import json,sys; p=sys.argv[1]; s=json.load(open(p)); s['scales']['smoke']['seeds']=int(sys.argv[2]); json.dump(s, open(p,'w'), indent=1)" \
    "$tmp/scales.json" "$seeds"
  suite=$tmp
fi
"$bin" run linear-probe --scale smoke --suite "$suite" --results "$results" --quiet
plan=$("$bin" run linear-probe --scale smoke --suite "$suite" --dry-run --explain 2>&1)
key() { awk -v re="$1" '$0 ~ re { print $2; exit }' <<<"$plan"; }  # the first job whose line matches
dir() { ls -d cache/"$1"*/ | grep -v '\.work/$' | head -n 1; }
tok=$(dir "$(key " tokenize ")")
printf '%-6s %-22s %-22s %s\n' seed "probe at step 0 (%)" "smoke table (%)" "gain (points)"
for ((s = 0; s < seeds; s++)); do
  pre=$(dir "$(key " pretrain smoke ar on .* seed $s ")")
  "$bin" train --config "$pre/config.json" --tokens "$tok/train.safetensors" --out "$tmp/m$s" --steps 1 --batch 1 \
    --lr 1e-12 --warmup 0 --seed "$s" --checkpoint-every 0 --quiet >/dev/null
  for split in train val test; do
    "$bin" features --model "$tmp/m$s" --tokens "$tok/$split.safetensors" --out "$tmp/f$s-$split.safetensors" --batch 64 --quiet
  done
  "$bin" probe --train "$tmp/f$s-train.safetensors" --val "$tmp/f$s-val.safetensors" --test "$tmp/f$s-test.safetensors" \
    --seed "$s" --json >"$tmp/p$s.json" 2>/dev/null
  /usr/bin/python3 - "$tmp/p$s.json" "$results/linear-probe/smoke/results.json" "$s" <<'PY'
import json, sys
p0 = 100 * json.load(open(sys.argv[1]))["best"]["test_acc"]
seed = int(sys.argv[3])
runs = json.load(open(sys.argv[2]))["rows"][0]["runs"]
ours = next(r["value"] for r in runs if r.get("seed") == seed)
print(f"{seed:<6d} {p0:<22.1f} {ours:<22.1f} {ours - p0:+.1f}")
PY
done
