// blas_core: which of OpenBLAS's kernel sets igpt's matmuls run. A DYNAMIC_ARCH OpenBLAS picks its
// set when it is loaded, from the CPU's family and model number. A CPU newer than the library gets
// an old set: Debian 12's OpenBLAS 0.3.21 on an Emerald Rapids Xeon (family 6, model 207) chose
// Prescott's SSE3 kernels, and a training step at the cpu scale took 2439 ms where the AVX-512
// kernels take 812 (ci/bench-cpu.sh, one machine, one script). When the chosen set lacks AVX2 on a
// CPU that has it, igpt names the best set the CPU runs in OPENBLAS_CORETYPE and executes itself
// again (the library reads that variable only when it is loaded, before main). Its children inherit
// the choice; a user's own OPENBLAS_CORETYPE is left alone.
#include "cli/cli.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

// OpenBLAS's names (driver/others/dynamic.c) of the x86 sets built on AVX2 or AVX-512.
static const char *const wide_sets[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"};

const char *blas_core_pick(const char *chosen, const char *config, blas_cpu_t cpu) {
  if (!chosen || !config || !strstr(config, "DYNAMIC_ARCH")) return NULL;  // one fixed set: no choice
  for (size_t i = 0; i < sizeof wide_sets / sizeof wide_sets[0]; i++)
    if (!strcasecmp(chosen, wide_sets[i])) return NULL;  // the library knew this CPU well enough
  if (cpu.avx512) return cpu.avx512_bf16 ? "Cooperlake" : "SkylakeX";
  if (cpu.avx2_fma) return "Haswell";
  return NULL;  // an older CPU: the library's choice stands
}

blas_cpu_t blas_cpu_now(void) {
  blas_cpu_t c = {0};
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();  // the checks below include the OS's support for the wider registers
  c.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  c.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  c.avx512_bf16 = c.avx512 && __builtin_cpu_supports("avx512bf16");
#endif
  return c;
}

int blas_core_choose(void) {
  if (getenv("OPENBLAS_CORETYPE")) return 0;  // the user's choice, or igpt's before it executed itself
  const char *chosen = openblas_get_corename();
  const char *better = blas_core_pick(chosen, openblas_get_config(), blas_cpu_now());
  if (!better || setenv("OPENBLAS_CORETYPE", better, 1) != 0) return 0;
  fprintf(stderr, "igpt: OpenBLAS does not know this CPU and chose its %s kernels, without AVX2; using "
          "OPENBLAS_CORETYPE=%s, which this CPU runs (export OPENBLAS_CORETYPE to choose otherwise; "
          "runtime/cli/blas_core.c says why)\n", chosen, better);
  return 1;
}
