// igpt report: (re)renders report.json and report.html from results.json, for one results
// directory (results/<table>/<scale>/) or every such directory under a results root.
#include "cli/cli.h"
#include "reports/report.h"
#include "base/util.h"
#include <getopt.h>
#include <glob.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *out) {
  fprintf(out,
    "usage: igpt report [--results DIR] [--json]\n\n"
    "Renders DIR/report.json (reports/report.schema.json) and DIR/report.html (self-contained:\n"
    "inline SVG charts, embedded PNG grids, no network) from DIR/results.json, each written\n"
    "atomically. When DIR has no results.json, every DIR/<table>/<scale>/results.json is rendered.\n\n"
    "  --results DIR  results directory or root (default: results)\n"
    "  --json         print {dir, verdicts} per report on stdout\n"
    "  --help         this text\n");
}

static int render_one(const char *dir, json_t *list) {
  json_t *rep = NULL;
  if (report_render_dir(dir, &rep)) return -1;  // the message names the file
  log_info("report: wrote %s/report.json and %s/report.html", dir, dir);
  json_array_append_new(list, json_pack("{s:s, s:O}", "dir", dir, "summary", json_object_get(rep, "summary")));
  json_decref(rep);
  return 0;
}

int cmd_report(int argc, char **argv) {
  static const struct option opts[] = {{"results", required_argument, 0, 'r'},
                                       {"json", no_argument, 0, 'j'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *dir = "results";
  int json = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "r:jh", opts, NULL)) != -1) {
    switch (c) {
      case 'r': dir = optarg; break;
      case 'j': json = 1; break;
      case 'h': usage(stdout); return 0;
      default: return usage_error("report", "unknown option");
    }
  }
  if (optind < argc) return usage_error("report", "unexpected argument '%s'", argv[optind]);
  json_t *list = json_array();
  int rc = 0;
  char *one = xasprintf("%s/results.json", dir);
  if (path_exists(one)) {
    if (render_one(dir, list)) rc = fail("report");
  } else {
    char *pat = xasprintf("%s/*/*/results.json", dir);
    glob_t g;
    if (glob(pat, 0, NULL, &g) != 0) {
      igpt_err("%s: no results.json, nor any %s; run a table first (make reproduce TABLE=...)", dir, pat);
      rc = fail("report");
    } else {
      for (size_t i = 0; i < g.gl_pathc; i++) {
        char *d = xstrdup(g.gl_pathv[i]);
        *strrchr(d, '/') = 0;
        if (render_one(d, list)) rc = fail("report");
        free(d);
      }
      globfree(&g);
    }
    free(pat);
  }
  free(one);
  if (json && !rc) print_json(list);
  else json_decref(list);
  return rc;
}
