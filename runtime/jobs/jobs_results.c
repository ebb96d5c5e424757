// jobs_results: a table's results JSON (reports/results.schema.json, "igpt-results/1"), built from
// the finished evaluation jobs of its rows: the report job's output, copied by `igpt run` to
// results/<table>/<scale>/results.json and rendered by `igpt report`. Per row: the published value
// and source, the rule, and one run per seed (per subset for low-data rows) with the job behind it.
// Values come from the evaluation job's done.json "metrics" (its --json output) at the first of the
// paths suite/commands.json lists under "metric_paths", times "metric_scale" (fraction to percent).
// Rows that ran one set of jobs are one row (a stand-in data set says once which of the paper's
// rows it stands in for and is compared with nothing published); rows the scale does not run are
// listed once under "not_run" with the reason; "ran" says what ran (data, sizes, models, steps,
// devices, seeds) for the report's first lines. Each probe row carries its baselines' runs.
// Judging is reports/' work (igpt report, igpt check); this file only collects.
#include "jobs/jobs.h"
#include "base/version.h"
#include "reports/results.h"
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
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
      json_array_append_new(runs, json_pack("{s:i, s:I, s:f, s:s, s:s}", "seed", seed, "subset", (json_int_t)i, "value",
                                            mul * json_number_value(e), "status", "done", "job", j->key));
    return;
  }
  json_t *run = json_pack("{s:i, s:f, s:s, s:s}", "seed", seed, "value", mul * json_number_value(v), "status", "done",
                          "job", j->key);
  // each test image's outcome, for the claims' paired tests (McNemar) between runs on one test set
  json_t *tc = first_path(metrics, json_object_get(paths, "test_correct"), "test_correct");
  json_t *nt = first_path(metrics, json_object_get(paths, "n_test"), "n_test");
  if (json_is_string(tc) && json_is_integer(nt)) {
    json_object_set(run, "test_correct", tc);
    json_object_set(run, "n_test", nt);
  }
  json_t *bl = first_path(metrics, json_object_get(paths, "best_layer"), "best_layer");
  if (json_is_integer(bl)) json_object_set(run, "best_layer", bl);
  // the run's number is a concatenation of this many layers, not the best layer's (a claim with
  // one_layer then reads the best layer's own numbers below)
  json_t *cat = at_path(metrics, "concat.layers");
  if (json_array_size(cat)) json_object_set_new(run, "concat_layers", json_integer((json_int_t)json_array_size(cat)));
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
    json_t *lt = json_array(), *lc = json_array();  // test side: measured after the choice, never used for it
    bool have_test = true;
    json_array_foreach(layers, i, l) {
      json_t *a = json_object_get(l, "test_acc"), *c = json_object_get(l, "test_correct");
      have_test &= json_is_number(a);
      json_array_append_new(lt, json_is_number(a) ? json_real(mul * json_number_value(a)) : json_null());
      json_array_append_new(lc, json_is_string(c) ? json_copy(c) : json_null());
    }
    if (have_test) {
      json_object_set_new(run, "layer_test_accuracy", lt);
      json_object_set_new(run, "layer_test_correct", lc);
    } else {
      json_decref(lt);
      json_decref(lc);
    }
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
    // the legend names the model and seed ("smoke ar seed 1"), not the whole job label
    const char *from = strncmp(j->label, "pretrain ", 9) ? j->label : j->label + 9, *on = strstr(from, " on ");
    char *name = xasprintf("%.*s seed %lld", (int)(on ? on - from : (long)strlen(from)), from,
                           (long long)json_integer_value(json_object_get(j->params, "seed")));
    json_array_append_new(curves, json_pack("{s:s, s:s, s:I, s:o}", "name", name, "job", j->key, "seed",
                                            json_integer_value(json_object_get(j->params, "seed")), "points", pts));
    free(name);
  }
  return curves;
}

// The job of a key in rows' JSON; NULL for none (a skipped row has no jobs).
static job_t *job_of(const graph_t *g, const json_t *key) {
  return json_is_string(key) ? graph_find(g, json_string_value(key)) : NULL;
}

// The runs of a list of job keys (one per seed) under metric.
static json_t *runs_of(const graph_t *g, json_t *keys, const char *metric) {
  json_t *runs = json_array();
  size_t k; json_t *key;
  json_array_foreach(keys, k, key) {
    job_t *j = job_of(g, key);
    if (j) add_runs(runs, g, j, metric, (int)k);
  }
  return runs;
}

// "CIFAR-10, CIFAR-100 and STL-10"
static char *and_list(json_t *names) {
  char *out = xstrdup("");
  size_t n = json_array_size(names), i; json_t *v;
  json_array_foreach(names, i, v) {
    char *next = xasprintf("%s%s%s", out, i == 0 ? "" : i + 1 == n ? " and " : ", ", json_string_value(v));
    free(out);
    out = next;
  }
  return out;
}

// The leading ", "-separated parts all labels share: "CIFAR-10, BERT fine-tune" of it and of
// "CIFAR-10, BERT fine-tune, 5-mask ensemble" (rows one job stands in for at a scale); "" of
// "CIFAR-10" and "CIFAR-100".
static char *common_label(json_t *labels) {
  const char *first = json_string_value(json_array_get(labels, 0));
  if (!first) return xstrdup("");
  size_t keep = 0;  // the length of first's shared leading parts
  for (size_t end = 0;; end++) {
    if (first[end] && strncmp(first + end, ", ", 2)) continue;
    size_t i; json_t *v;
    bool all = true;
    json_array_foreach(labels, i, v) {
      const char *l = json_string_value(v);
      all &= l && !strncmp(l, first, end) && (!l[end] || !strncmp(l + end, ", ", 2));
    }
    if (!all) break;
    keep = end;
    if (!first[end]) break;
  }
  return xstrndup(first, keep);
}

// Appends each "; "-separated part of add that note lacks: the rows one job stands in for share
// most of their notes, and one may add a part of its own (the ensemble's "one mask").
static void note_add_parts(char *note, size_t size, const char *add) {
  while (add && *add) {
    const char *end = strstr(add, "; ");
    size_t len = end ? (size_t)(end - add) : strlen(add);
    char *part = xstrndup(add, len);
    if (len && !strstr(note, part))
      snprintf(note + strlen(note), size - strlen(note), "%s%s", note[0] ? "; " : "", part);
    free(part);
    add = end ? end + 2 : NULL;
  }
}

// What ran, for the report's first lines: per data set that ran its size and split counts (from
// its prepare job), per model its shape and training (from its pretrain jobs), the seeds, devices.
static json_t *what_ran(const runner_t *r, const graph_t *g, json_t *scale) {
  (void)r;
  json_t *ran = json_pack("{s:[], s:[], s:[], s:I}", "datasets", "models", "devices", "seeds",
                          json_integer_value(json_object_get(scale, "seeds")));
  json_t *seen = json_object();
  size_t i; json_t *rr;
  json_array_foreach(g->rows, i, rr) {
    job_t *prep = job_of(g, json_object_get(rr, "prepare_job"));
    if (prep && !json_object_get(seen, prep->key)) {
      json_object_set_new(seen, prep->key, json_true());
      json_t *m = prep->done ? json_object_get(prep->done, "metrics") : NULL;
      const char *name = json_string_value(json_object_get(prep->params, "dataset"));
      json_t *d = json_pack("{s:s, s:s, s:O}", "name", name, "title", dataset_title(name), "image_size",
                            json_object_get(prep->params, "image_size"));
      json_t *n = json_object_get(m, "n");
      if (json_is_object(n)) json_object_set(d, "n", n);
      json_array_append_new(json_object_get(ran, "datasets"), d);
    }
    size_t k; json_t *key;
    json_array_foreach(json_object_get(rr, "model_jobs"), k, key) {
      job_t *mj = job_of(g, key);
      if (!mj || json_object_get(seen, mj->key)) continue;
      json_object_set_new(seen, mj->key, json_true());
      const char *model = json_string_value(json_object_get(rr, "model_run"));
      bool listed = false;  // one entry per model and objective; its seeds are counted
      size_t q; json_t *e;
      json_t *cfg = json_object_get(mj->params, "config");
      const char *obj = json_string_value(json_object_get(cfg, "objective"));
      json_array_foreach(json_object_get(ran, "models"), q, e)
        if (!strcmp(json_string_value(json_object_get(e, "name")), model) &&
            !strcmp(json_string_value(json_object_get(e, "objective")), obj ? obj : "ar")) {
          json_object_set_new(e, "runs", json_integer(json_integer_value(json_object_get(e, "runs")) + 1));
          listed = true;
        }
      if (listed) continue;
      json_t *e2 = json_pack("{s:s, s:s, s:s, s:i}", "name", model, "objective", obj ? obj : "ar", "verb", mj->verb,
                             "runs", 1);
      const char *keys[] = {"n_layer", "n_embd", "n_head", "n_vocab"};
      for (size_t t = 0; t < 4; t++)
        if (json_object_get(cfg, keys[t])) json_object_set(e2, keys[t], json_object_get(cfg, keys[t]));
      const char *tk[] = {"steps", "batch", "lr", "checkpoint"};
      for (size_t t = 0; t < 4; t++)
        if (json_object_get(mj->params, tk[t])) json_object_set(e2, tk[t], json_object_get(mj->params, tk[t]));
      json_array_append_new(json_object_get(ran, "models"), e2);
    }
  }
  for (int q = 0; q < g->n; q++) {  // the devices the jobs of this table ran on
    json_t *dev = g->jobs[q]->done ? json_object_get(g->jobs[q]->done, "device") : NULL;
    if (!dev) continue;
    const char *id = json_string_value(json_object_get(dev, "id"));
    char *d = id && *id ? xasprintf("cuda:%s", id) : xstrdup("cpu");
    if (!json_object_get(seen, d)) {
      json_object_set_new(seen, d, json_true());
      json_array_append_new(json_object_get(ran, "devices"), json_string(d));
    }
    free(d);
  }
  json_decref(seen);
  return ran;
}

// A row of the results from the table rows that ran one set of jobs (rows[0..n)): the paper's row
// itself when it ran alone on its own data; else one row for the data set that ran, standing in
// for all of them and compared with nothing published.
static json_t *row_of_group(const graph_t *g, json_t *const *group, int n, const char *scale) {
  json_t *rr = group[0], *row = json_object_get(rr, "row");
  const char *ds_run = json_string_value(json_object_get(rr, "dataset_run"));
  bool stand_in = n > 1 || strcmp(ds_run, json_string_value(json_object_get(row, "dataset")));
  json_t *o = json_pack("{s:O, s:O, s:s, s:O, s:[]}", "id", json_object_get(row, "id"), "metric",
                        json_object_get(row, "metric"), "dataset", ds_run, "higher_is_better",
                        json_object_get(row, "higher_is_better"), "runs");
  json_object_set(o, "model", json_object_get(rr, "model_run") ?: json_object_get(row, "model"));
  const char *copy[] = {"label", "unit", "rule", "eval", "objective"};
  for (size_t k = 0; k < sizeof copy / sizeof copy[0]; k++)
    if (json_object_get(row, copy[k])) json_object_set(o, copy[k], json_object_get(row, copy[k]));
  json_t *job0 = json_array_get(json_object_get(rr, "jobs"), 0);
  job_t *e0 = job_of(g, job0);
  json_t *lpc = e0 ? json_object_get(e0->params, "labels_per_class") : NULL;  // after the scale's cap
  if (json_is_integer(lpc)) json_object_set(o, "labels_per_class", lpc);
  if (json_object_get(row, "masks")) json_object_set(o, "masks", json_object_get(row, "masks"));
  char note[2048] = "";
  if (stand_in) {
    // the row names what ran, once, and which of the paper's rows it stands in for
    json_t *labels = json_array(), *sf = json_array();
    for (int k = 0; k < n; k++) {
      json_t *pr = json_object_get(group[k], "row");
      json_array_append_new(labels, json_string(json_string_value(json_object_get(pr, "label")) ?: json_string_value(json_object_get(pr, "id"))));
      json_t *e = json_pack("{s:O, s:O, s:O}", "id", json_object_get(pr, "id"), "dataset", json_object_get(pr, "dataset"),
                            "model", json_object_get(pr, "model"));
      if (json_object_get(pr, "label")) json_object_set(e, "label", json_object_get(pr, "label"));
      if (json_is_number(json_object_get(pr, "published")))
        json_object_set_new(e, "published", json_pack("{s:O, s:O}", "value", json_object_get(pr, "published"), "source",
                                                     json_object_get(pr, "source")));
      json_array_append_new(sf, e);
    }
    char *who = and_list(labels);
    job_t *prep = job_of(g, json_object_get(rr, "prepare_job"));
    int side = prep ? (int)json_integer_value(json_object_get(prep->params, "image_size")) : 0;
    char *label = xasprintf("%s %dx%d", dataset_title(ds_run), side, side);
    json_t *pr0 = row;
    char *shared = common_label(labels);  // the paper rows' protocol, where they share one
    // rows of one data set that differ in their protocol keep it in the label (labels, masks, eval)
    if (json_is_integer(lpc)) {
      char *l2 = xasprintf("%s, %lld labels per class", label, (long long)json_integer_value(lpc));
      free(label);
      label = l2;
    } else if (*shared && strcmp(shared, dataset_title(json_string_value(json_object_get(pr0, "dataset"))))) {
      char *l2 = xasprintf("%s (%s)", label, shared);
      free(label);
      label = l2;
    }
    json_object_set_new(o, "label", json_string(label));
    char *id = xasprintf("%s/%s", ds_run, json_string_value(json_object_get(row, "id")));
    json_object_set_new(o, "id", json_string(id));
    snprintf(note, sizeof note, "%s, standing in for %s at the %s scale; compared with nothing published", label, who, scale);
    json_object_set_new(o, "stands_in_for", sf);
    json_object_set_new(o, "published", json_null());
    json_object_del(o, "rule");
    free(id); free(label); free(who); free(shared);
    json_decref(labels);
  } else {
    json_t *pub = json_object_get(row, "published");
    if (json_is_number(pub)) {
      json_t *p = json_pack("{s:O, s:O}", "value", pub, "source", json_object_get(row, "source"));
      if (json_object_get(row, "published_std")) json_object_set(p, "std", json_object_get(row, "published_std"));
      if (json_object_get(row, "published_model")) json_object_set(p, "model", json_object_get(row, "published_model"));
      json_object_set_new(o, "published", p);
    } else json_object_set_new(o, "published", json_null());
    json_t *rel = json_object_get(row, "relation");
    if (rel)
      snprintf(note, sizeof note, "no published number (%s); expected %s row %s%s", json_string_value(json_object_get(row, "source")),
               json_string_value(json_object_get(rel, "relation")), json_string_value(json_object_get(rel, "row")),
               json_object_get(rel, "min_gap") ? " by the gap the paper describes" : "");
  }
  for (int k = 0; k < n; k++) {  // the expansion's notes (the fallback data set, a cap), each once
    note_add_parts(note, sizeof note, json_string_value(json_object_get(group[k], "note")));
  }
  if (note[0]) json_object_set_new(o, "note", json_string(note));
  const char *metric = json_string_value(json_object_get(row, "metric"));
  if (!strcmp(json_string_value(json_object_get(row, "eval")), "probe")) json_object_set_new(o, "layer_split", json_string("val"));
  json_object_set_new(o, "runs", runs_of(g, json_object_get(rr, "jobs"), metric));
  // the row's number is not one layer's: as many layers as its probe concatenated (the row's
  // probe.concat_layers or the scale's probe.concat_blocks), as its first run records
  json_t *cat = json_object_get(json_array_get(json_object_get(o, "runs"), 0), "concat_layers");
  if (cat) json_object_set(o, "concat_layers", cat);
  json_t *cp = json_object_get(rr, "checkpoint_jobs");
  if (cp) {  // the probe and the test loss at each kept checkpoint of seed 0's pretraining
    json_t *pts = json_array(), *pt;
    size_t k;
    json_array_foreach(cp, k, pt) {
      job_t *lj = job_of(g, json_object_get(pt, "loss"));
      json_t *loss = lj && lj->done ? json_object_get(json_object_get(lj->done, "metrics"), "nats_per_token") : NULL;
      json_t *keys = json_pack("[O]", json_object_get(pt, "probe"));
      json_array_append_new(pts, json_pack("{s:O, s:O, s:o}", "step", json_object_get(pt, "step"), "loss",
                                           json_is_number(loss) ? loss : json_null(), "runs", runs_of(g, keys, metric)));
      json_decref(keys);
    }
    json_object_set_new(o, "checkpoints", pts);
  }
  json_t *bl = json_object_get(rr, "baseline_jobs");
  if (bl) {  // the same probe on raw pixels and on the untrained model (a fine-tune row: the probe), seed by seed
    json_t *b = json_object();
    static const char *const names[][2] = {{"pixels", "raw pixels"}, {"untrained", "untrained model (step 0)"},
                                           {"probe", "linear probe of the same model"}};
    for (int k = 0; k < 3; k++) {
      json_t *keys = json_object_get(bl, names[k][0]);
      if (json_array_size(keys))
        json_object_set_new(b, names[k][0], json_pack("{s:s, s:o}", "label", names[k][1], "runs", runs_of(g, keys, metric)));
    }
    json_object_set_new(o, "baselines", b);
  }
  return o;
}

json_t *results_build(const runner_t *r, const graph_t *g) {
  json_t *scale = suite_scale(g->suite, g->scale), *table = suite_table(g->suite, g->table);
  char created[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
  json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[], s:[], s:o, s:o, s:[], s:[]}", "format", "igpt-results/1",
                          "scale", g->scale, "table", g->table, "title", json_string_value(json_object_get(table, "title")),
                          "created", created, "code_version", IGPT_VERSION, "rows", "jobs", "environment", environment(),
                          "loss_curves", loss_curves(r, g), "notes", "not_run");
  json_object_set_new(out, "ran", what_ran(r, g, scale));
  const char *carry[] = {"claims", "context"};  // the table's claims and the paper's context rows
  for (size_t k = 0; k < 2; k++)
    if (json_object_get(table, carry[k])) json_object_set(out, carry[k], json_object_get(table, carry[k]));
  json_t *rows = json_object_get(out, "rows"), *not_run = json_object_get(out, "not_run");
  size_t n_rows = json_array_size(g->rows), i;
  json_t **group = xmalloc((n_rows + 1) * sizeof *group);
  bool *done = xcalloc(n_rows + 1, sizeof *done);
  for (i = 0; i < n_rows; i++) {
    json_t *rr = json_array_get(g->rows, i), *row = json_object_get(rr, "row");
    if (done[i]) continue;
    if (!strcmp(json_string_value(json_object_get(rr, "status")), "skipped")) {
      json_t *o = json_pack("{s:O, s:O, s:O, s:O}", "id", json_object_get(row, "id"), "dataset", json_object_get(row, "dataset"),
                            "model", json_object_get(row, "model"), "reason", json_object_get(rr, "reason"));
      if (json_object_get(row, "label")) json_object_set(o, "label", json_object_get(row, "label"));
      if (json_is_number(json_object_get(row, "published"))) json_object_set(o, "published", json_object_get(row, "published"));
      json_array_append_new(not_run, o);
      continue;
    }
    // the rows whose evaluation jobs are the same (one data set standing in for several) are one row
    int n = 0;
    for (size_t q = i; q < n_rows; q++) {
      json_t *rq = json_array_get(g->rows, q);
      if (!done[q] && json_equal(json_object_get(rq, "jobs"), json_object_get(rr, "jobs")) &&
          strcmp(json_string_value(json_object_get(rq, "status")), "skipped")) {
        group[n++] = rq;
        done[q] = true;
      }
    }
    json_array_append_new(rows, row_of_group(g, group, n, g->scale));
  }
  free(group);
  free(done);
  json_t *images = json_array();  // the samples job's grids; the runner copies them beside results.json
  json_t *rr;
  json_array_foreach(g->rows, i, rr) {
    job_t *sj = job_of(g, json_object_get(rr, "samples_job"));
    if (!sj || !sj->done) continue;
    char *dir = cache_job_dir(r, sj);
    job_t *model = sj->inputs[0];
    const char *mname = model->label;
    json_array_append_new(images, json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "kind", "samples", "path", "samples.png",
                                            "title", "Unconditional samples", "model", mname, "caption",
                                            "16 samples from sos, temperature 1, seed 0", "source",
                                            json_sprintf("%s/samples.png", dir)));
    json_array_append_new(images, json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "kind", "completions", "path",
                                            "completions.png", "title", "Half-image completions", "model", mname,
                                            "caption", "each row: a test image, its top half given, 5 completions of the "
                                            "bottom half", "source", json_sprintf("%s/completions.png", dir)));
    free(dir);
  }
  if (json_array_size(images)) json_object_set_new(out, "images", images);
  else json_decref(images);
  // notes: what this run is and is not, from what ran
  json_t *notes = json_object_get(out, "notes");
  if (!json_is_true(json_object_get(scale, "judged")))
    json_array_append_new(notes, json_sprintf("%s scale: not judged against the published numbers (they are shown where "
                                              "the row ran the paper's own data set); the numbers show the pipeline "
                                              "and the paper's trends at this size", g->scale));
  if (json_array_size(not_run))
    json_array_append_new(notes, json_sprintf("%zu of the table's %zu rows are not run at the %s scale (listed once, "
                                              "with the reason)", json_array_size(not_run), n_rows, g->scale));
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
