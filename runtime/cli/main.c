// igpt: the suite's one command. Dispatches `igpt VERB ...` to cmd_VERB (runtime/cli/verbs.def).
#include "cli/cli.h"
#include "engine/comm.h"
#include "base/version.h"
#include "base/util.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cblas.h>

typedef struct { const char *name, *summary; int (*fn)(int, char **); } verb_t;
static const verb_t verbs[] = {
#define VERB(name, summary) {#name, summary, cmd_##name},
#include "cli/verbs.def"
#undef VERB
};
#define NVERBS (int)(sizeof verbs / sizeof verbs[0])

static void usage(FILE *out) {
  fprintf(out, "usage: igpt VERB [options]    (igpt VERB --help for each)\n\n"
               "Image GPT reproduction suite: data, palette tokens, pretraining, evaluation.\n\nverbs:\n");
  for (int i = 0; i < NVERBS; i++)
    if (verbs[i].fn) fprintf(out, "  %-11s %s\n", verbs[i].name, verbs[i].summary);
  fprintf(out, "\noptions: --version, --help. Exit status: 0 ok, 1 failure, 2 usage error.\n"
               "Progress and logs go to stderr; --json results to stdout.\n");
}

int main(int argc, char **argv) {
  int again = wait_policy_choose();
  again |= blas_core_choose();
  // No /proc (a bare container): this process keeps the libraries' defaults, its children do not.
  if (again) execv("/proc/self/exe", argv);
  if (argc < 2) { usage(stderr); return EXIT_USAGE; }
  const char *v = argv[1];
  if (!strcmp(v, "--help") || !strcmp(v, "-h") || !strcmp(v, "help")) { usage(stdout); return 0; }
  if (!strcmp(v, "--version")) {
    printf("igpt %s\ncommunicators: %s\nblas: %s (kernels: %s)\n", IGPT_VERSION, comm_backends(),
           openblas_get_config(), openblas_get_corename());
    return 0;
  }
  for (int i = 0; i < NVERBS; i++)
    if (!strcmp(v, verbs[i].name)) {
      if (!verbs[i].fn) {
        fprintf(stderr, "igpt: verb '%s' is not built into this binary\n", v);
        return 1;
      }
      int rc = verbs[i].fn(argc - 1, argv + 1);
      comm_finalize(rc);  // a data-parallel verb's world: a failed rank stops the others
      return rc;
    }
  fprintf(stderr, "igpt: unknown verb '%s'\n", v);
  usage(stderr);
  return EXIT_USAGE;
}
