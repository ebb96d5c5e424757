// cli: shared helpers for the verbs: usage errors, the common flags and results on stdout.
#pragma once
#include <jansson.h>

#define EXIT_USAGE 2

#define VERB(name, summary) int cmd_##name(int argc, char **argv) __attribute__((weak));
#include "cli/verbs.def"
#undef VERB

// Prints "igpt VERB: msg" and a hint to run --help, returns EXIT_USAGE.
int usage_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Prints the current igpt_errmsg() as "igpt VERB: error: ...", returns 1.
int fail(const char *verb);
// Writes a JSON result to stdout (one line), takes ownership.
void print_json(json_t *result);
// The engine verbs' --device cpu|cuda|auto and --precision bf16|fp32 (engine/device.h): getopt
// entries with these codes, their help lines, and the choice: 0, EXIT_USAGE for a bad value, or 1
// (after fail) when --device cuda finds no usable GPU.
#define OPT_DEVICE 0x1001
#define OPT_PRECISION 0x1002
#define DEVICE_OPTIONS {"device", 1, 0, OPT_DEVICE}, {"precision", 1, 0, OPT_PRECISION}
#define DEVICE_HELP                                                                                 \
  "  --device D     cpu (default, the reference), cuda (fails when no GPU is usable, saying why)\n" \
  "                 or auto (the GPU when usable, else the CPU, said once on stderr)\n"            \
  "  --precision P  on the GPU: bf16 (default: bf16 products, fp32 accumulation and weights)\n"   \
  "                 or fp32 (tracks the CPU closely); the CPU computes in fp32\n"
int device_flags(const char *verb, const char *device, const char *precision);
// Parses integers and reals of flags with range checks; usage error message on failure.
int parse_long(const char *verb, const char *flag, const char *s, long lo, long hi, long *out);
int parse_double(const char *verb, const char *flag, const char *s, double lo, double hi, double *out);
// Before anything else in main, what igpt needs in the environment of the libraries it loads; each
// returns 1 when it set a variable, and main then executes the program again, once, so that the
// libraries read it. wait_policy: OpenMP threads that sleep rather than spin when they wait, unless
// the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT (cli/wait_policy.c says why).
int wait_policy_choose(void);
// blas_core: OpenBLAS's AVX2 or AVX-512 kernels where it fell back to older ones on a CPU it does
// not know, unless the user set OPENBLAS_CORETYPE (cli/blas_core.c says why). blas_core_pick is the
// decision alone: the set to name, or NULL to keep the library's choice.
typedef struct { int avx2_fma, avx512, avx512_bf16; } blas_cpu_t;
blas_cpu_t blas_cpu_now(void);
const char *blas_core_pick(const char *chosen, const char *config, blas_cpu_t cpu);
int blas_core_choose(void);
