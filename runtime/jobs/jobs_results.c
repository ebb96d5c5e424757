// jobs_results: a table's results JSON (reports/results.schema.json, "igpt-results/1"), built from
// the finished evaluation jobs of its rows: the report job's output, copied by `igpt run` to
// results/<table>/<scale>/results.json and rendered by `igpt report`. Per row: the published value
// and source, the rule, and one run per seed (per subset for low-data rows) with the job behind it.
// Values come from the evaluation job's done.json "metrics" (its --json output) at the first of the
// paths suite/commands.json lists under "metric_paths", times "metric_scale" (fraction to percent).
// Judging is reports/' work (igpt report, igpt check); this file only collects.
#include "jobs/jobs.h"
#include "base/version.h"
#include "base/util.h"
#include <math.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static json_t *at_path(json_t *o, const char *path) {
  char *p = xstrdup(path), *save = NULL;
  for (char *k = strtok_r(p, ".", &save); k && o; k = strtok_r(NULL, ".", &save)) o = json_object_get(o, k);
  free(p);
  return o;
}

// The first present path of a string or a list of strings.
static json_t *first_path(json_t *metrics, json_t *paths, const char *fallback) {
  if (json_is_string(paths)) return at_path(metrics, json_string_value(paths));
  size_t i; json_t *p;
  json_array_foreach(paths, i, p) {
    json_t *v = at_path(metrics, json_string_value(p));
    if (v) return v;
  }
  return at_path(metrics, fallback);
}

static double scale_of(json_t *def, const char *metric) {
  json_t *ms = json_object_get(json_object_get(def, "metric_scale"), metric);
  return ms ? json_number_value(ms) : 1;
}

// One run per value of the job's metric (an array for low-data subsets).
static void add_runs(json_t *runs, const graph_t *g, const job_t *j, const char *metric, int seed) {
  json_t *def = json_object_get(g->suite->commands, j->verb);
  json_t *paths = json_object_get(def, "metric_paths");
  json_t *metrics = j->done ? json_object_get(j->done, "metrics") : NULL;
  json_t *v = metrics ? first_path(metrics, json_object_get(paths, metric), metric) : NULL;
  double mul = scale_of(def, metric);
  if (!j->done || !v || (!json_is_number(v) && !json_is_array(v))) {
    json_array_append_new(runs, json_pack("{s:i, s:n, s:s, s:s, s:s}", "seed", seed, "value", "status",
                                          j->done ? "failed" : "missing", "job", j->key, "error",
                                          j->done ? "the job's output has no value for the metric" : "the job did not finish"));
    return;
  }
  if (json_is_array(v)) {
    size_t n = json_array_size(v), i;
    json_t *e;
    json_array_foreach(v, i, e)
      json_array_append_new(runs, json_pack("{s:I, s:f, s:s, s:s}", "seed", (json_int_t)(seed * (int)n + (int)i), "value",
                                            mul * json_number_value(e), "status", "done", "job", j->key));
    return;
  }
  json_t *run = json_pack("{s:i, s:f, s:s, s:s}", "seed", seed, "value", mul * json_number_value(v), "status", "done",
                          "job", j->key);
  json_t *bl = first_path(metrics, json_object_get(paths, "best_layer"), "best_layer");
  if (json_is_integer(bl)) json_object_set(run, "best_layer", bl);
  json_t *layers = first_path(metrics, json_object_get(paths, "layers"), "layers");
  const char *acc_key = json_string_value(json_object_get(paths, "layer_accuracy")) ?: "val_acc";
  if (json_is_array(layers) && json_array_size(layers)) {
    json_t *la = json_array();
    size_t i; json_t *l;
    json_array_foreach(layers, i, l) {
      json_t *a = json_object_get(l, acc_key);
      json_array_append_new(la, json_is_number(a) ? json_real(mul * json_number_value(a)) : json_null());
    }
    json_object_set_new(run, "layer_accuracy", la);
  }
  json_array_append_new(runs, run);
}

static json_t *environment(void) {
  struct utsname u;
  uname(&u);
  char host[256] = "", cpu[256] = "unknown";
  gethostname(host, sizeof host - 1);
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[512];
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
      snprintf(cpu, sizeof cpu, "%s", strchr(line, ':') + 2);
      cpu[strcspn(cpu, "\n")] = 0;
      break;
    }
  if (f) fclose(f);
  char *os = xasprintf("%s %s %s", u.sysname, u.release, u.machine);
  json_t *e = json_pack("{s:s, s:s, s:s, s:i, s:s}", "hostname", host, "os", os, "cpu", cpu, "cores",
                        (int)sysconf(_SC_NPROCESSORS_ONLN), "collected_by", "igpt run");
  free(os);
  return e;
}

// The pretraining loss curves (DIR/log.jsonl: {step, loss} lines) of the graph's pretrain jobs.
static json_t *loss_curves(const runner_t *r, const graph_t *g) {
  json_t *curves = json_array();
  for (int i = 0; i < g->n; i++) {
    job_t *j = g->jobs[i];
    if (strcmp(j->verb, "pretrain")) continue;
    char *dir = cache_job_dir(r, j), *p = xasprintf("%s/log.jsonl", dir);
    FILE *f = fopen(p, "r");
    free(dir); free(p);
    if (!f) continue;
    json_t *pts = json_array();
    char line[1024];
    while (fgets(line, sizeof line, f)) {
      json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
      json_t *s = json_object_get(o, "step"), *l = json_object_get(o, "loss");
      if (json_is_number(s) && json_is_number(l))
        json_array_append_new(pts, json_pack("[f, f]", json_number_value(s), json_number_value(l)));
      json_decref(o);
    }
    fclose(f);
    if (!json_array_size(pts)) { json_decref(pts); continue; }
    json_array_append_new(curves, json_pack("{s:s, s:s, s:I, s:o}", "name", j->label, "job", j->key, "seed",
                                            json_integer_value(json_object_get(j->params, "seed")), "points", pts));
  }
  return curves;
}

json_t *results_build(const runner_t *r, const graph_t *g) {
  json_t *scale = suite_scale(g->suite, g->scale), *table = suite_table(g->suite, g->table);
  char created[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
  json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[], s:[], s:o, s:o, s:[s]}", "format", "igpt-results/1",
                          "scale", g->scale, "table", g->table, "title", json_string_value(json_object_get(table, "title")),
                          "created", created, "code_version", IGPT_VERSION, "rows", "jobs", "environment", environment(),
                          "loss_curves", loss_curves(r, g), "notes", json_string_value(json_object_get(scale, "about")));
  if (!json_is_true(json_object_get(scale, "judged")))
    json_array_append_new(json_object_get(out, "notes"),
                          json_sprintf("%s scale: these numbers show the pipeline and trends, not a reproduction of the "
                                       "published ones", g->scale));
  json_t *rows = json_object_get(out, "rows");
  size_t i; json_t *rr;
  json_array_foreach(g->rows, i, rr) {
    json_t *row = json_object_get(rr, "row");
    json_t *pub = json_object_get(row, "published");
    json_t *o = json_pack("{s:O, s:O, s:O, s:O, s:O, s:[]}", "id", json_object_get(row, "id"), "metric",
                          json_object_get(row, "metric"), "higher_is_better", json_object_get(row, "higher_is_better"),
                          "dataset", json_object_get(rr, "dataset_run") ?: json_object_get(row, "dataset"),
                          "model", json_object_get(rr, "model_run") ?: json_object_get(row, "model"), "runs");
    if (json_object_get(row, "label")) json_object_set(o, "label", json_object_get(row, "label"));
    if (json_object_get(row, "unit")) json_object_set(o, "unit", json_object_get(row, "unit"));
    if (json_is_number(pub)) {
      json_t *p = json_pack("{s:O, s:O}", "value", pub, "source", json_object_get(row, "source"));
      if (json_object_get(row, "published_std")) json_object_set(p, "std", json_object_get(row, "published_std"));
      if (json_object_get(row, "published_model")) json_object_set(p, "model", json_object_get(row, "published_model"));
      json_object_set_new(o, "published", p);
    } else json_object_set_new(o, "published", json_null());
    if (json_object_get(row, "rule")) json_object_set(o, "rule", json_object_get(row, "rule"));
    char note[1024] = "";
    json_t *rel = json_object_get(row, "relation");
    if (rel)
      snprintf(note, sizeof note, "no published number (%s); expected %s row %s%s", json_string_value(json_object_get(row, "source")),
               json_string_value(json_object_get(rel, "relation")), json_string_value(json_object_get(rel, "row")),
               json_object_get(rel, "min_gap") ? " by the gap the paper describes" : "");
    if (!strcmp(json_string_value(json_object_get(rr, "status")), "skipped")) {
      char *n = xasprintf("%s%sskipped: %s", note, note[0] ? "; " : "", json_string_value(json_object_get(rr, "reason")));
      json_object_set_new(o, "note", json_string(n));
      free(n);
      json_array_append_new(rows, o);
      continue;
    }
    const char *exp_note = json_string_value(json_object_get(rr, "note"));
    if (exp_note) snprintf(note + strlen(note), sizeof note - strlen(note), "%s%s", note[0] ? "; " : "", exp_note);
    if (note[0]) json_object_set_new(o, "note", json_string(note));
    if (!strcmp(json_string_value(json_object_get(row, "eval")), "probe")) json_object_set_new(o, "layer_split", json_string("val"));
    size_t k; json_t *key;
    json_array_foreach(json_object_get(rr, "jobs"), k, key) {
      job_t *j = graph_find(g, json_string_value(key));
      if (j) add_runs(json_object_get(o, "runs"), g, j, json_string_value(json_object_get(row, "metric")), (int)k);
    }
    json_array_append_new(rows, o);
  }
  json_t *jobs = json_object_get(out, "jobs");
  for (int q = 0; q < g->n; q++) {
    job_t *j = g->jobs[q];
    if (j == g->report) continue;
    const char *st = j->state == JOB_DONE ? (j->cached ? "cached" : "done") : j->state == JOB_FAILED ? "failed" : "skipped";
    json_t *o = json_pack("{s:s, s:s, s:s}", "key", j->key, "verb", j->verb, "status", st);
    json_t *d = j->done;
    if (d) {
      json_t *dev = json_object_get(d, "device");
      const char *id = json_string_value(json_object_get(dev, "id"));
      json_object_set(o, "duration_s", json_object_get(d, "seconds"));
      json_object_set_new(o, "device", id && *id ? json_sprintf("cuda:%s", id) : json_string("cpu"));
      json_object_set(o, "code_version", json_object_get(d, "code_version"));
    }
    char *dir = cache_job_dir(r, j);
    json_object_set_new(o, "log", json_sprintf("%s/stderr.log", dir));
    free(dir);
    json_array_append_new(jobs, o);
  }
  return out;
}
