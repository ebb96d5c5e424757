// igpt status: the state of table runs in a cache. Without a table: every run recorded in
// DIR/runs/ (state, counts, the jobs running now). With a table: each job of its graph at the
// scale, looked up in the cache (done, running in some run, partial work kept, not built).
#include "cli/cli.h"
#include "jobs/jobs.h"
#include "base/util.h"
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int status_runs(const runner_t *r, bool json) {
  char *runs = xasprintf("%s/runs", r->dir);
  DIR *d = opendir(runs);
  json_t *all = json_array();
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      size_t n = strlen(e->d_name);
      if (n < 6 || strcmp(e->d_name + n - 5, ".json")) continue;
      char *p = xasprintf("%s/%s", runs, e->d_name);
      json_t *s = json_load_file(p, JSON_REJECT_DUPLICATES, NULL);
      free(p);
      if (!s) continue;
      const char *st = json_string_value(json_object_get(s, "state"));
      pid_t pid = (pid_t)json_integer_value(json_object_get(s, "pid"));
      if (st && !strcmp(st, "running") && pid > 0 && kill(pid, 0) != 0 && errno == ESRCH)
        json_object_set_new(s, "state", json_string("stopped (its runner is gone; igpt run resumes it)"));
      json_array_append_new(all, s);
    }
    closedir(d);
  }
  free(runs);
  if (json) { print_json(all); return 0; }
  if (json_array_size(all) == 0) printf("no runs in %s\n", r->dir);
  size_t i; json_t *s;
  json_array_foreach(all, i, s) {
    json_t *c = json_object_get(s, "counts");
    printf("%-16s %-8s %-10s done %lld, running %lld, waiting %lld, failed %lld, blocked %lld  (%.0fs)\n",
           json_string_value(json_object_get(s, "table")), json_string_value(json_object_get(s, "scale")),
           json_string_value(json_object_get(s, "state")), json_integer_value(json_object_get(c, "done")),
           json_integer_value(json_object_get(c, "running")), json_integer_value(json_object_get(c, "waiting")),
           json_integer_value(json_object_get(c, "failed")), json_integer_value(json_object_get(c, "blocked")),
           json_number_value(json_object_get(s, "elapsed")));
    size_t k; json_t *j;
    json_array_foreach(json_object_get(s, "jobs"), k, j) {
      const char *js = json_string_value(json_object_get(j, "state"));
      if (strcmp(js, "running") && strcmp(js, "failed") && strcmp(js, "retrying")) continue;
      printf("    %-8s %.12s %s\n", js, json_string_value(json_object_get(j, "key")),
             json_string_value(json_object_get(j, "label")));
    }
  }
  json_decref(all);
  return 0;
}

static int status_table(runner_t *r, const suite_t *s, const char *table, const char *scale, bool json) {
  graph_t g;
  graph_init(&g, s);
  if (graph_expand(&g, table, scale) != 0) { graph_free(&g); return -1; }
  json_t *out = json_array();
  if (!json)
    printf("%s at %s in %s (partial: work kept in <key>.work, to resume or from a failure: see its stderr.log)\n",
           table, scale, r->dir);
  for (int i = 0; i < g.n; i++) {
    job_t *j = g.jobs[i];
    char *dir = cache_job_dir(r, j), *work = cache_work_dir(r, j), *done = xasprintf("%s/done.json", dir);
    const char *st = "not built";
    if (path_exists(done)) st = "done";
    else {
      int got = cache_lock(r, j);
      if (got == 0) st = "running";
      else if (path_exists(work)) st = "partial";
      cache_unlock(j);
    }
    json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s}", "key", j->key, "verb", j->verb, "label", j->label,
                                         "state", st));
    if (!json) printf("%-9s %.12s  %s\n", st, j->key, j->label);
    free(dir); free(work); free(done);
  }
  if (json) print_json(out);
  else json_decref(out);
  graph_free(&g);
  return 0;
}

int cmd_status(int argc, char **argv) {
  static const struct option opts[] = {{"scale", required_argument, 0, 's'}, {"cache", required_argument, 0, 'c'},
                                       {"suite", required_argument, 0, 'S'}, {"json", no_argument, 0, 'J'},
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  const char *scale = "smoke", *cache = NULL, *suite_dir = NULL;
  bool json = false;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "s:", opts, NULL)) != -1) {
    if (c == 's') scale = optarg;
    else if (c == 'c') cache = optarg;
    else if (c == 'S') suite_dir = optarg;
    else if (c == 'J') json = true;
    else if (c == 'h') {
      printf("usage: igpt status [TABLE [--scale S]] [--cache DIR] [--suite DIR] [--json]\n\n"
             "Without TABLE: every table run recorded in the cache (DIR/runs/), its state and counts, and the\n"
             "jobs running or failed. With TABLE: each job of its graph at the scale (default smoke) and whether\n"
             "the cache has it (done; running in some run; partial work kept; not built).\n");
      return 0;
    } else return usage_error("status", "unknown option");
  }
  runner_t r;
  if (runner_init(&r, cache, 1, "") != 0) return fail("status");
  int rc = 0;
  if (optind == argc) rc = status_runs(&r, json);
  else {
    suite_t s;
    if (suite_load(&s, suite_dir) != 0) rc = -1;
    else {
      rc = status_table(&r, &s, argv[optind], scale, json);
      suite_free(&s);
    }
  }
  runner_free(&r);
  return rc ? fail("status") : 0;
}
