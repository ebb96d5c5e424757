#!/usr/bin/env bash
# gpu-bundle: packs what ci/gpu-check.sh needs on a GPU machine that lacks this machine's Debian
# libraries into BUILD/gpu-bundle.tar.xz: igpt, the GPU test binaries and bench_engine, their shared
# libraries except glibc's and CUDA's (the GPU machine has its own /usr/local/cuda), and the HF
# oracle. xz keeps it under the 64 MiB a device call can carry. usage: ci/gpu-bundle.sh [BUILD]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
cd "$root"
out=$build/gpu-bundle.tar.xz
stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/tests" "$stage/ci" "$stage/lib" "$stage/oracles"
bins=("$build/igpt" "$build/tests/test_cuda" "$build/tests/test_device" "$build/tests/test_comm" "$build/ci/bench_engine")
cp "${bins[0]}" "$stage/"; cp "${bins[1]}" "${bins[2]}" "${bins[3]}" "$stage/tests/"; cp "${bins[4]}" "$stage/ci/"
ldd "${bins[@]}" | awk '$3 ~ /^\// {print $3}' | sort -u |
  grep -v -E '/usr/local/cuda|/lib(c|m|mvec|pthread|dl|rt|resolv|gcc_s|stdc\+\+)\.so' |
  while read -r lib; do cp -L "$lib" "$stage/lib/"; done
oracle=${IGPT_ORACLES:-$root/../shared/oracles}/hf-imagegpt-tiny
[ -d "$oracle" ] && cp -r "$oracle" "$stage/oracles/"
tar -cJf "$out" -C "$stage" .
echo "gpu-bundle: $out, $(du -h "$out" | cut -f1) ($(ls "$stage/lib" | wc -l) libraries); carry it with the checkout and run ci/gpu-check.sh"
