# Sourced by the benchmark scripts after they know igpt's binary ($1): every process of the script,
# igpt, the C benchmarks and the peers on Debian's OpenBLAS (numpy, scikit-learn, PyTorch), runs the
# same OpenBLAS kernels. Where the library does not know the CPU and falls back to kernels without
# AVX2, igpt names better ones itself (runtime/cli/blas_core.c); this exports that choice for the
# others, and the peers, set up as a user who knew would set them, are not slowed 3x against igpt.
# Sets IGPT_BLAS_CHOSEN to the set when igpt chose one; a user's OPENBLAS_CORETYPE is left alone.
IGPT_BLAS_CHOSEN=""
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -x "$1" ]; then
  IGPT_BLAS_CHOSEN=$("$1" --version 2>&1 >/dev/null | sed -n 's/.*using OPENBLAS_CORETYPE=\([A-Za-z0-9]*\).*/\1/p')
  [ -n "$IGPT_BLAS_CHOSEN" ] && export OPENBLAS_CORETYPE=$IGPT_BLAS_CHOSEN
fi
# One line for the benchmark's table: the kernels igpt runs, and who chose them.
blas_kernels_line() {
  local k
  k=$("$1" --version 2>/dev/null | sed -n 's/^blas: .*(kernels: \(.*\))$/\1/p')
  if [ -n "$IGPT_BLAS_CHOSEN" ]; then echo "OpenBLAS kernels: $k for every side (OPENBLAS_CORETYPE, chosen by igpt: the library fell back to older ones)"
  elif [ -n "${OPENBLAS_CORETYPE:-}" ]; then echo "OpenBLAS kernels: $k (the user's OPENBLAS_CORETYPE)"
  else echo "OpenBLAS kernels: $k (the library's choice)"; fi
}
