// igpt graph: a table's job graph at a scale as DOT (render with `dot -Tsvg`).
#include "cli/cli.h"
#include "jobs/jobs.h"
#include "base/util.h"
#include <getopt.h>
#include <string.h>

int cmd_graph(int argc, char **argv) {
  static const struct option opts[] = {{"scale", required_argument, 0, 's'}, {"suite", required_argument, 0, 'S'},
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  const char *scale = "smoke", *suite_dir = NULL;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "s:", opts, NULL)) != -1) {
    if (c == 's') scale = optarg;
    else if (c == 'S') suite_dir = optarg;
    else if (c == 'h') {
      printf("usage: igpt graph TABLE [--scale S] [--suite DIR]\n\n"
             "Prints the job graph of a paper table at a scale (default smoke) as Graphviz DOT on stdout:\n"
             "one node per job (label and the first 12 hex digits of its key), edges named by input.\n"
             "Example: igpt graph linear-probe | dot -Tsvg > graph.svg\n");
      return 0;
    } else return usage_error("graph", "unknown option");
  }
  if (optind != argc - 1) return usage_error("graph", "name one table (suite/tables.json)");
  suite_t s;
  if (suite_load(&s, suite_dir) != 0) return fail("graph");
  if (!suite_table(&s, argv[optind]) || !suite_scale(&s, scale)) {
    int rc = usage_error("graph", "%s", igpt_errmsg());
    suite_free(&s);
    return rc;
  }
  graph_t g;
  graph_init(&g, &s);
  int rc = graph_expand(&g, argv[optind], scale) == 0 && graph_write_dot(&g, stdout) == 0 ? 0 : fail("graph");
  graph_free(&g);
  suite_free(&s);
  return rc;
}
