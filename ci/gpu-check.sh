#!/usr/bin/env bash
# gpu-check: the one call to make on a GPU machine (about 5 minutes on one H200). It
#  1. finds runnable binaries: build/ as carried, else build/gpu-bundle.tar.xz (make gpu-bundle:
#     the binaries and their non-CUDA shared libraries, for a machine without the Debian -dev
#     packages), else builds with make;
#  2. runs every GPU test (tests/test_cuda.c, tests/test_device.c, and tests/test_comm.c's one-rank
#     NCCL all-reduce) through ci/test.sh;
#  3. runs the GPU benchmarks, each against its PyTorch peer in this same run on this same GPU
#     (ci/bench_engine.c vs ci/bench_torch_engine.py: scaled_dot_product_attention under
#     torch.compile, bf16 autocast; HF generate for sampling), plus a bf16 matmul peak for MFU;
#  4. prints a short table last. Logs stay in $GPU_CHECK_LOGS (default a temporary directory).
# Needs: an NVIDIA driver, the CUDA 13 libraries (libcudart.so.13, libcublasLt.so.13) in
# /usr/local/cuda/lib64 or on LD_LIBRARY_PATH, python3 with torch 2.x and transformers.
# env: PYTHON (python3), QUICK=1 (smaller shapes, for a first look), SKIP_TESTS=1, SKIP_BENCH=1,
#      BUDGET (290: seconds for the whole call; a benchmark that would pass it is cut or skipped)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=${PYTHON:-python3}
logs=${GPU_CHECK_LOGS:-$(mktemp -d /tmp/igpt-gpu-check-XXXXXX)}
mkdir -p "$logs"
t_start=$(date +%s)
rows=()   # table rows: "name|igpt|peer|ratio|goal"
note() { echo "gpu-check: $*" >&2; }
elapsed() { echo $(( $(date +%s) - t_start )); }

# ---------------------------------------------------------------- 1. binaries
bindir=build
runs() { [ -x "$1/igpt" ] && "$1/igpt" --help >/dev/null 2>&1; }
if ! runs build; then
  if [ -f build/gpu-bundle.tar.xz ]; then
    note "build/igpt does not run here; unpacking build/gpu-bundle.tar.xz"
    mkdir -p build/gpu-bundle && tar -xJf build/gpu-bundle.tar.xz -C build/gpu-bundle
    export LD_LIBRARY_PATH="$root/build/gpu-bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    bindir=build/gpu-bundle
  fi
  if ! runs "$bindir"; then
    note "building (make -j$(nproc))"
    make -j"$(nproc)" all build/tests/test_cuda build/tests/test_device build/tests/test_comm build/ci/bench_engine >"$logs/build.log" 2>&1 ||
      { tail -30 "$logs/build.log"; note "the build failed (log: $logs/build.log)"; exit 1; }
    bindir=build
  fi
fi
tests_dir=$bindir/tests; [ -d "$tests_dir" ] || tests_dir=$bindir
ci_dir=$bindir/ci; [ -d "$ci_dir" ] || ci_dir=$bindir
[ -d "$bindir/oracles" ] && export IGPT_ORACLES="$root/$bindir/oracles"
export IGPT_BIN="$root/$bindir/igpt"
gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
note "binaries: $bindir; GPU: ${gpu:-nvidia-smi unavailable}; logs: $logs"

# ---------------------------------------------------------------- 2. tests
test_line="skipped"
if [ -z "${SKIP_TESTS:-}" ]; then
  # one test process at a time: the GPU tests are small, the device is shared by them
  TEST_JOBS=1 timeout 120 ci/test.sh "$tests_dir/test_device" "$tests_dir/test_cuda" "$tests_dir/test_comm" >"$logs/tests.log" 2>&1
  rc=$?
  cat "$logs/tests.log"
  test_line="$(tail -1 "$logs/tests.log")$([ $rc = 0 ] || echo " (exit $rc)")"
  # the same op and training tests through the materialising attention, the on-GPU reference that
  # the flash path (the default) replaces
  m_line=""
  for f in 'cuda/every_op*' 'cuda/*training*'; do
    IGPT_CUDA_ATTENTION=materialise timeout 60 "$tests_dir/test_cuda" -j1 --filter "$f" >>"$logs/tests-materialise.log" 2>&1
    rc=$?
    m_line="$m_line $f: $(grep -o 'Passing: [0-9]* | Failing: [0-9]*' "$logs/tests-materialise.log" | tail -1)$([ $rc = 0 ] || echo " (exit $rc)")"
  done
  test_line="$test_line; materialising attention:$m_line"
fi

# ---------------------------------------------------------------- 3. benchmarks
eng=$ci_dir/bench_engine
torchb="$py ci/bench_torch_engine.py"
field() { $py -c 'import json,sys
try: print(json.loads(sys.argv[1].strip().splitlines()[-1])[sys.argv[2]])
except Exception: print("")' "$1" "$2"; }
budget=${BUDGET:-290}  # seconds for the whole call: each run gets at most what is left of it
run() {  # name seconds command... -> stdout's last JSON line (empty on failure), log in $logs/name.log
  local name=$1 secs=$2 left; shift 2
  left=$(( budget - $(elapsed) ))
  [ "$left" -lt "$secs" ] && secs=$left
  if [ "$secs" -lt 10 ]; then note "$name skipped: the ${budget}s budget is spent"; return; fi
  timeout "$secs" "$@" >"$logs/$name.log" 2>&1 || note "$name failed or timed out (${secs}s): $(tail -2 "$logs/$name.log" | tr '\n' ' ')"
  grep '^{' "$logs/$name.log" | tail -1
}
ratio() { $py -c "import sys; a,b=sys.argv[1],sys.argv[2]; print('%.2fx' % (float(a)/float(b)) if a and b else '-')" "$1" "$2"; }
fmt() { $py -c "import sys; print(sys.argv[2] % float(sys.argv[1]) if sys.argv[1] else '-')" "$1" "$2"; }

if [ -z "${SKIP_BENCH:-}" ]; then
  if [ -n "${QUICK:-}" ]; then S="8 512 8 1024 8" L="8 1536 16 1024 8" FB=32 SB=16; else
    S="24 512 8 1024 32" L="48 1536 16 1024 64" FB=128 SB=64; fi
  read -r SL SD SH ST SBATCH <<<"$S"; read -r LL LD LH LT LB <<<"$L"
  peak=$(run peak 60 $torchb peak --device cuda --bf16)
  peak_tf=$(field "$peak" tflops)
  ours_gemm=$(run gemm 60 "$eng" gemm cuda bf16 0 8192 1 1 1 1 5)
  rows+=("bf16 product 8192^3 TFLOP/s|$(fmt "$(field "$ours_gemm" tflops)" %.0f)|$(fmt "$peak_tf" %.0f)|$(ratio "$(field "$ours_gemm" tflops)" "$peak_tf")|(ceiling)")

  # iGPT-S training step: goal <= 0.7x PyTorch compiled's time
  o=$(run step_ours 90 "$eng" step cuda bf16 $SL $SD $SH $ST $SBATCH 512 5)
  t=$(run step_torch 150 $torchb step --device cuda --bf16 --sdpa --compile --layers $SL --d $SD --heads $SH \
        --ctx $ST --batch $SBATCH --steps 5 --warmup 3)
  om=$(field "$o" ms) tm=$(field "$t" ms)
  mfu=$($py -c "
import sys
L,d,T,B,V=map(int,sys.argv[1:6]); ms,peak=sys.argv[6],sys.argv[7]
if not ms or not peak: print('-'); sys.exit()
N=12*L*d*d+V*d; tok=B*T; flops=(6*N+12*L*d*T)*tok  # PaLM's count: matmul params + attention
print('%.0f%%' % (100*flops/(float(ms)/1e3)/(float(peak)*1e12)))" $SL $SD $ST $SBATCH 512 "$om" "$peak_tf")
  rows+=("train step L$SL d$SD T$ST B$SBATCH ms (MFU $mfu)|$(fmt "$om" %.1f)|$(fmt "$tm" %.1f)|$(ratio "$om" "$tm") time|<= 0.70x")

  # every-layer features at the S and L shapes: goal >= 1.5x PyTorch compiled's images/s
  for shp in S L; do
    if [ $shp = S ]; then set -- $SL $SD $SH $ST $FB; else set -- $LL $LD $LH $LT $LB; fi
    o=$(run feat${shp}_ours 90 "$eng" features cuda bf16 "$1" "$2" "$3" "$4" "$5" 512 5)
    t=$(run feat${shp}_torch 150 $torchb features --device cuda --bf16 --sdpa --compile --layers "$1" --d "$2" \
          --heads "$3" --ctx "$4" --batch "$5" --steps 5 --warmup 3)
    oi=$(field "$o" images_per_s) ti=$(field "$t" images_per_s)
    rows+=("features $shp (L$1 d$2 B$5) images/s|$(fmt "$oi" %.0f)|$(fmt "$ti" %.0f)|$(ratio "$oi" "$ti")|>= 1.5x")
  done

  # the inference attention paths side by side (features S): WMMA tensor cores (the bf16 default)
  # against the fp32 SIMT kernel and the materialising products
  for path in simt materialise; do
    o=$(run featS_$path 60 env IGPT_CUDA_ATTENTION=$path "$eng" features cuda bf16 $SL $SD $SH $ST $FB 512 3)
    rows+=("  features S, attention $path|$(fmt "$(field "$o" images_per_s)" %.0f)|-|-|(diagnostic)")
  done

  # sampling T tokens at batch SB: goal >= 10x HF generate's tokens/s
  o=$(run sample_ours 90 "$eng" sample cuda bf16 $SL $SD $SH $ST $SB 512 1)
  t=$(run sample_hf 120 $torchb sample --hf --device cuda --bf16 --layers $SL --d $SD --heads $SH --ctx $ST \
        --batch $SB)
  ot=$(field "$o" tokens_per_s) tt=$(field "$t" tokens_per_s)
  rows+=("sampling T$ST B$SB tokens/s (vs HF generate)|$(fmt "$ot" %.0f)|$(fmt "$tt" %.0f)|$(ratio "$ot" "$tt")|>= 10x")

  # diagnostics last (the budget cuts them first): the step with the materialising attention
  # ([B,NH,T,T] kept a layer: 1 GiB at this shape) against the flash default
  o=$(run step_materialise 60 env IGPT_CUDA_ATTENTION=materialise "$eng" step cuda bf16 $SL $SD $SH $ST $SBATCH 512 3)
  rows+=("  train step, attention materialise ms|$(fmt "$(field "$o" ms)" %.1f)|-|-|(diagnostic)")
fi

# ---------------------------------------------------------------- 4. the table
echo
echo "gpu-check on ${gpu:-an unknown GPU}, $(elapsed) s; binaries $bindir; logs $logs"
echo "tests: $test_line"
printf '%-44s %10s %10s %12s %10s\n' benchmark igpt PyTorch "igpt/peer" goal
for r in "${rows[@]}"; do
  IFS='|' read -r a b c d e <<<"$r"
  printf '%-44s %10s %10s %12s %10s\n' "$a" "$b" "$c" "$d" "$e"
done
case "$test_line" in *" 0 failed"*) exit 0 ;; skipped) exit 0 ;; *) exit 1 ;; esac
