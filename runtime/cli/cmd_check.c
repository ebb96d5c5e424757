// igpt check: regression verdicts of the latest results against our baselines and/or the
// published numbers; --update-baseline writes new baselines with a reason.
#include "reports/check.h"
#include "cli/cli.h"
#include "reports/results.h"
#include "base/util.h"
#include <getopt.h>
#include <glob.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *out) {
  fprintf(out,
    "usage: igpt check [--scale S] [--against baseline|published|both] [--results DIR]\n"
    "                  [--baselines DIR] [--json]\n"
    "       igpt check --update-baseline --reason \"...\" [--scale S] [--results DIR] [--rule R]\n"
    "                  [--require-claim ID]...\n\n"
    "Compares every results/<table>/<scale>/results.json with the baseline\n"
    "(suite/baselines/<scale>.json: our own reference runs, mean ± std over seeds) and/or the\n"
    "published numbers, prints a table of verdicts and exits 1 on a regression: a result worse\n"
    "than its reference beyond the row's tolerance, or no result where the reference has one.\n"
    "Better beyond tolerance passes and says the reference may move. Against the published\n"
    "numbers only the paper and released scales are judged.\n\n"
    "  --scale S          smoke (default), mini, paper or released\n"
    "  --against WHAT     baseline, published or both (default)\n"
    "  --results DIR      a results root (default: results) or one results directory\n"
    "  --baselines DIR    where <scale>.json lives (default: suite/baselines)\n"
    "  --update-baseline  write the results' mean ± std as the new baseline (needs --reason)\n"
    "  --reason TEXT      why the baseline moves; recorded in its history\n"
    "  --rule R           rule for every row written: absolute:T, relative:F or sigma:K[:FLOOR]\n"
    "                     (default: a row keeps its rule; a new row gets sigma:3:1 for %% metrics,\n"
    "                     relative:0.02 otherwise)\n"
    "  --require-claim ID with --update-baseline: claim ID of the table (suite/tables.json) must hold\n"
    "                     from now on (refused unless it holds in these results); repeatable\n"
    "  --json             verdicts as JSON on stdout\n"
    "Exit status: 0 no regression, 1 regression or error, 2 usage error.\n");
}

static int parse_rule(const char *s, rule_t *r) {
  char kind[16];
  double a = 0, b = 0;
  int n = sscanf(s, "%15[a-z]:%lf:%lf", kind, &a, &b);
  if (n < 2 || a < 0 || b < 0) return -1;
  if (!strcmp(kind, "absolute") && n == 2) *r = (rule_t){RULE_ABSOLUTE, a, 0};
  else if (!strcmp(kind, "relative") && n == 2) *r = (rule_t){RULE_RELATIVE, a, 0};
  else if (!strcmp(kind, "sigma")) *r = (rule_t){RULE_SIGMA, a, n == 3 ? b : 0};
  else return -1;
  return 0;
}

// The results files to check: DIR/results.json, else DIR/*/<scale>/results.json.
static int find_results(const char *dir, const char *scale, json_t ***out, int *n) {
  char *one = xasprintf("%s/results.json", dir);
  glob_t g = {0};
  int rc = 0;
  if (path_exists(one)) {
    json_t *r = results_load(one);
    if (!r) rc = -1;
    else if (strcmp(json_string_value(json_object_get(r, "scale")), scale)) {
      rc = igpt_err("%s: holds scale %s, not %s (pass --scale %s)", one,
                    json_string_value(json_object_get(r, "scale")), scale,
                    json_string_value(json_object_get(r, "scale")));
      json_decref(r);
    } else {
      *out = xrealloc(*out, (*n + 1) * sizeof **out);
      (*out)[(*n)++] = r;
    }
    free(one);
    return rc;
  }
  free(one);
  char *pat = xasprintf("%s/*/%s/results.json", dir, scale);
  if (glob(pat, 0, NULL, &g) != 0) {
    rc = igpt_err("no results for scale %s under %s (looked for %s); run a table first: "
                  "make reproduce TABLE=linear-probe SCALE=%s", scale, dir, pat, scale);
    free(pat);
    return rc;
  }
  free(pat);
  for (size_t i = 0; i < g.gl_pathc && !rc; i++) {
    json_t *r = results_load(g.gl_pathv[i]);
    if (!r) { rc = -1; break; }
    *out = xrealloc(*out, (*n + 1) * sizeof **out);
    (*out)[(*n)++] = r;
  }
  globfree(&g);
  return rc;
}

int cmd_check(int argc, char **argv) {
  static const struct option opts[] = {
    {"scale", required_argument, 0, 's'}, {"against", required_argument, 0, 'a'},
    {"results", required_argument, 0, 'r'}, {"baselines", required_argument, 0, 'b'},
    {"update-baseline", no_argument, 0, 'u'}, {"reason", required_argument, 0, 'R'},
    {"rule", required_argument, 0, 'l'}, {"json", no_argument, 0, 'j'}, {"require-claim", required_argument, 0, 'C'},
    {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  const char *scale = "smoke", *against = "both", *dir = "results", *bdir = "suite/baselines";
  const char *reason = NULL;
  int update = 0, json = 0, c, nclaims = 0;
  const char *claims[32];
  rule_t rule, *dflt = NULL;
  optind = 1;
  while ((c = getopt_long(argc, argv, "s:a:r:b:uR:l:jh", opts, NULL)) != -1) {
    switch (c) {
      case 's': scale = optarg; break;
      case 'a': against = optarg; break;
      case 'r': dir = optarg; break;
      case 'b': bdir = optarg; break;
      case 'u': update = 1; break;
      case 'R': reason = optarg; break;
      case 'l':
        if (parse_rule(optarg, &rule)) return usage_error("check", "--rule: expected absolute:T, relative:F or sigma:K[:FLOOR], got '%s'", optarg);
        dflt = &rule;
        break;
      case 'j': json = 1; break;
      case 'C':
        if (nclaims == 32) return usage_error("check", "--require-claim: at most 32");
        claims[nclaims++] = optarg;
        break;
      case 'h': usage(stdout); return 0;
      default: return usage_error("check", "unknown option");
    }
  }
  if (optind < argc) return usage_error("check", "unexpected argument '%s'", argv[optind]);
  if (!scale_meaning(scale)) return usage_error("check", "--scale: expected smoke, cpu, mini, paper or released, got '%s'", scale);
  if (strcmp(against, "baseline") && strcmp(against, "published") && strcmp(against, "both"))
    return usage_error("check", "--against: expected baseline, published or both, got '%s'", against);
  if (update && (!reason || !*reason)) return usage_error("check", "--update-baseline needs --reason \"why the baseline moves\"");
  if (!update && reason) return usage_error("check", "--reason goes with --update-baseline");
  if (!update && nclaims) return usage_error("check", "--require-claim goes with --update-baseline");

  json_t **res = NULL;
  int nres = 0, rc = 0;
  char *bpath = xasprintf("%s/%s.json", bdir, scale);
  if (find_results(dir, scale, &res, &nres)) { rc = fail("check"); goto out; }
  if (update) {
    if (baseline_update_claims(bpath, scale, res, nres, reason, dflt, claims, nclaims)) { rc = fail("check"); goto out; }
    log_info("check: wrote %s from %d results file%s (reason: %s)", bpath, nres, nres == 1 ? "" : "s", reason);
    goto out;
  }
  int absent = 0;
  json_t *base = NULL;
  if (strcmp(against, "published")) {
    base = baseline_load(bpath, &absent);
    if (!base && !absent) { rc = fail("check"); goto out; }
    if (absent)
      fprintf(json ? stderr : stdout, "no baseline: %s does not exist yet; rows are not checked against a baseline. "
              "Create it from a reference run with: igpt check --update-baseline --scale %s --reason \"...\"\n",
              bpath, scale);
  }
  if (!scale_is_judged(scale) && strcmp(against, "baseline"))
    fprintf(json ? stderr : stdout, "%s scale: numbers are shown beside the published ones, not judged "
            "against them (not a reproduction)\n", scale);
  check_item *items = NULL;
  int n = 0;
  for (int i = 0; i < nres; i++) {
    if (strcmp(against, "published")) check_results(res[i], AGAINST_BASELINE, base, &items, &n);
    if (strcmp(against, "baseline")) check_results(res[i], AGAINST_PUBLISHED, NULL, &items, &n);
  }
  int regressions = check_print(json ? stderr : stdout, items, n);
  fprintf(json ? stderr : stdout, "%d rows checked, %d regression%s\n", n, regressions, regressions == 1 ? "" : "s");
  if (json) print_json(check_items_json(items, n));
  free(items);
  json_decref(base);
  rc = regressions ? 1 : 0;
out:
  for (int i = 0; i < nres; i++) json_decref(res[i]);
  free(res);
  free(bpath);
  return rc;
}
