#!/usr/bin/env bash
# Linear-probe benchmark: igpt probe vs scikit-learn's lbfgs LogisticRegression on the same
# synthetic features and cores (50000x512 and 50000x1536, 10 and 100 classes, 8 C values).
# Prints one table: per C both times, iterations and objectives, and the sweep's speedup.
# Knobs: BENCH_THREADS (default: all cores), BENCH_N (rows, default 50000),
# BENCH_CONFIGS (default 512x10,512x100,1536x10,1536x100), BENCH_CS (the C values).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/igpt ] || make -j2 all >/dev/null
/usr/bin/python3 -c 'import sklearn, numpy' 2>/dev/null || { echo "needs python3-sklearn (make bench-deps)"; exit 1; }
export IGPT_BIN="${IGPT_BIN:-$PWD/build/igpt}"
. ci/blas-env.sh "$IGPT_BIN"
blas_kernels_line "$IGPT_BIN"
exec /usr/bin/python3 ci/bench_probe.py
