// report: building report.json from results.json and writing both outputs. See report.h.
#include "reports/report.h"
#include "base/version.h"
#include "reports/claims.h"
#include "reports/environment.h"
#include "reports/html.h"
#include "reports/pngio.h"
#include "reports/results.h"
#include "reports/stats.h"
#include "base/util.h"
#include "reports/verdict.h"
#include <math.h>
#include <string.h>
#include <time.h>

static json_t *num_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static void copy_if(json_t *dst, const json_t *src, const char *key) {
  json_t *v = json_object_get(src, key);
  if (v) json_object_set(dst, key, v);
}

// Mean and std over the runs of element l of each run's array `key`; the count that had one.
static int layer_stats(const json_t *runs, const char *key, size_t l, double *v, double *mean, double *std) {
  int k = 0;
  size_t i;
  json_t *run;
  json_array_foreach(runs, i, run) {
    json_t *x = json_array_get(json_object_get(run, key), l);
    if (json_is_number(x)) v[k++] = json_number_value(x);
  }
  stats_mean_std(v, k, mean, std);
  return k;
}

// Per-layer accuracy over the runs that have it: mean and std per layer (validation, and the test
// side measured after the choice, the depth curve people compare), modal best layer.
static json_t *layers_build(const json_t *row) {
  json_t *runs = json_object_get(row, "runs");
  size_t L = 0, n = 0, i;
  json_t *run;
  json_array_foreach(runs, i, run) {
    json_t *la = json_object_get(run, "layer_accuracy");
    if (json_array_size(la)) { n++; if (json_array_size(la) > L) L = json_array_size(la); }
  }
  if (!n) return json_null();
  json_t *mean = json_array(), *std = json_array(), *test_mean = json_array();
  double *v = xmalloc((json_array_size(runs) + 1) * sizeof *v);
  bool any_test = false;
  for (size_t l = 0; l < L; l++) {
    double m, s;
    int k = layer_stats(runs, "layer_accuracy", l, v, &m, &s);
    json_array_append_new(mean, num_or_null(m));
    json_array_append_new(std, k ? json_real(s) : json_null());
    any_test |= layer_stats(runs, "layer_test_accuracy", l, v, &m, &s) > 0;
    json_array_append_new(test_mean, num_or_null(m));
  }
  free(v);
  int *votes = xcalloc(L + 1, sizeof *votes);
  json_int_t best = -1;
  json_array_foreach(runs, i, run) {
    json_t *b = json_object_get(run, "best_layer");
    if (json_is_integer(b) && json_integer_value(b) <= (json_int_t)L) {
      json_int_t l = json_integer_value(b);
      votes[l]++;
      if (best < 0 || votes[l] > votes[best] || (votes[l] == votes[best] && l < best)) best = l;
    }
  }
  free(votes);
  const char *split = json_string_value(json_object_get(row, "layer_split"));
  json_t *out = json_pack("{s:s, s:o, s:o, s:I, s:o}", "split", split ? split : "val", "mean", mean,
                          "std", std, "n", (json_int_t)n, "best_layer",
                          best >= 0 ? json_integer(best) : json_null());
  if (any_test) json_object_set_new(out, "test_mean", test_mean);
  else json_decref(test_mean);
  return out;
}

// Mean, std and n of the runs that produced a number.
static int runs_stats(const json_t *runs, double *mean, double *std) {
  size_t nr = json_array_size(runs), i;
  double *vals = xmalloc((nr + 1) * sizeof *vals);
  int n = 0;
  json_t *run;
  json_array_foreach(runs, i, run) {
    json_t *v = json_object_get(run, "value");
    if (json_is_number(v)) vals[n++] = json_number_value(v);
  }
  stats_mean_std(vals, n, mean, std);
  free(vals);
  return n;
}

// Each baseline of the row (raw pixels, untrained model) summarised, with our gain over it.
static json_t *baselines_build(const json_t *row, double ours, int n_ours) {
  json_t *out = json_object(), *b;
  const char *name;
  json_object_foreach(json_object_get(row, "baselines"), name, b) {
    double m, s;
    int n = runs_stats(json_object_get(b, "runs"), &m, &s);
    json_object_set_new(out, name, json_pack("{s:s, s:o, s:o, s:i, s:o}", "label", json_string_value(json_object_get(b, "label")) ?: name,
                                             "mean", num_or_null(m), "std", n ? json_real(s) : json_null(), "n", n,
                                             "gain", n && n_ours ? json_real(ours - m) : json_null()));
  }
  return out;
}

static json_t *row_build(const json_t *row, const char *scale, const char *file, int ri) {
  json_t *out = json_object();
  const char *keys[] = {"id", "label", "dataset", "model", "metric", "unit", "higher_is_better"};
  for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) copy_if(out, row, keys[k]);
  json_t *pub = json_object_get(row, "published");
  json_object_set(out, "published", json_is_object(pub) ? pub : json_null());

  // ours: the runs that produced a number
  json_t *runs = json_object_get(row, "runs"), *run, *jobs = json_array();
  size_t nr = json_array_size(runs), i;
  double *vals = xmalloc((nr + 1) * sizeof *vals);
  json_t *values = json_array(), *seeds = json_array();
  int n = 0, failed = 0, subsets = 0;
  json_array_foreach(runs, i, run) {
    json_t *v = json_object_get(run, "value");
    if (json_is_number(v)) {
      vals[n++] = json_number_value(v);
      json_array_append_new(values, json_real(json_number_value(v)));
      json_array_append(seeds, json_object_get(run, "seed"));
      json_t *sub = json_object_get(run, "subset");  // low-data: runs are seeds x label subsets
      if (json_is_integer(sub) && json_integer_value(sub) + 1 > subsets) subsets = (int)json_integer_value(sub) + 1;
    } else {
      failed++;
    }
    json_t *job = json_object_get(run, "job");
    if (json_is_string(job)) json_array_append(jobs, job);
  }
  double mean, std;
  stats_mean_std(vals, n, &mean, &std);
  free(vals);
  json_object_set_new(out, "ours", json_pack("{s:o, s:o, s:i, s:o, s:o, s:i}", "mean",
                                             num_or_null(mean), "std", n ? json_real(std) : json_null(),
                                             "n", n, "values", values, "seeds", seeds, "failed", failed));
  if (subsets) json_object_set_new(json_object_get(out, "ours"), "subsets", json_integer(subsets));
  double ref = json_is_object(pub) ? json_number_value(json_object_get(pub, "value")) : NAN;
  json_t *rs = json_object_get(pub, "std");
  double ref_std = json_is_number(rs) ? json_number_value(rs) : 0;
  json_object_set_new(out, "difference", n && json_is_object(pub) ? json_real(mean - ref) : json_null());

  json_t *rule_j = json_object_get(row, "rule");
  rule_t rule;
  int have_rule = 0;
  if (rule_j) {
    char *p = xasprintf("$.rows[%d].rule", ri);
    have_rule = rule_from_json(rule_j, &rule, file, p) == 0;  // checked on load
    free(p);
  }
  json_object_set(out, "rule", have_rule ? rule_j : json_null());

  bool hib = json_is_true(json_object_get(row, "higher_is_better"));
  const char *unit = json_string_value(json_object_get(row, "unit"));
  verdict_t v;
  char note[320];
  double tol = NAN;
  if (!n) {
    v = VERDICT_NO_RESULT;
    snprintf(note, sizeof note, "no seed produced a number (%d failed or missing)", failed);
  } else if (!json_is_object(pub)) {
    v = VERDICT_NO_REFERENCE;
    snprintf(note, sizeof note, json_object_get(row, "stands_in_for") ? "a stand-in data set: compared with nothing published"
                                                                      : "the paper gives no number for this row");
  } else if (!scale_is_judged(scale)) {
    v = VERDICT_NOT_JUDGED;
    snprintf(note, sizeof note, "%s scale: the gap to the published number is shown, not judged; "
             "this is not a reproduction of it", scale);
  } else if (!have_rule) {
    v = VERDICT_NOT_JUDGED;
    snprintf(note, sizeof note, "no tolerance rule for this row in the suite");
  } else {
    // standard errors: ours over n seeds; the paper's std counts as one draw (its n is not given)
    v = verdict_judge(&rule, hib, mean, std / sqrt(n), ref, ref_std, &tol);
    const char *r = rule_describe(&rule, unit);
    if (v == VERDICT_PASS) snprintf(note, sizeof note, "within %s (%.3g) of the published value", r, tol);
    else if (v == VERDICT_BETTER)
      snprintf(note, sizeof note, "better than the published value by more than %s (%.3g): passes; "
               "check why", r, tol);
    else snprintf(note, sizeof note, "worse than the published value by more than %s (%.3g)", r, tol);
  }
  json_object_set_new(out, "tolerance", isfinite(tol) ? json_real(tol) : json_null());
  json_object_set_new(out, "verdict", json_string(verdict_name(v)));
  json_object_set_new(out, "verdict_note", json_string(note));
  json_object_set_new(out, "layers", layers_build(row));
  if (json_object_get(row, "baselines")) json_object_set_new(out, "baselines", baselines_build(row, mean, n));
  copy_if(out, row, "stands_in_for");
  copy_if(out, row, "checkpoints");
  copy_if(out, row, "eval");
  copy_if(out, row, "labels_per_class");
  copy_if(out, row, "concat_layers");
  json_object_set_new(out, "jobs", jobs);
  copy_if(out, row, "note");
  return out;
}

char *report_utc_now(void) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return xstrdup(buf);
}

static json_t *image_build(const json_t *im, const char *dir) {
  const char *rel = json_string_value(json_object_get(im, "path"));
  char *path = xasprintf("%s/%s", dir, rel);
  int w, h;
  char hex[65];
  json_t *out = NULL;
  if (pngio_size(path, &w, &h) == 0 && sha256_file(path, hex) == 0) {
    out = json_deep_copy(im);
    json_object_set_new(out, "width", json_integer(w));
    json_object_set_new(out, "height", json_integer(h));
    json_object_set_new(out, "sha256", json_string(hex));
  }
  free(path);
  return out;
}

// The banner's line, from what ran (results "ran"): the data sets with their sizes and split
// counts, each model with its shape and training, seeds and devices. NULL without "ran".
static char *ran_text(const json_t *ran) {
  if (!json_is_object(ran)) return NULL;
  char *b = NULL;
  size_t len = 0;
  FILE *o = open_memstream(&b, &len);
  size_t i; json_t *d;
  fputs("This run: ", o);
  json_array_foreach(json_object_get(ran, "datasets"), i, d) {
    json_t *n = json_object_get(d, "n");
    long long side = json_integer_value(json_object_get(d, "image_size"));
    fprintf(o, "%s%s %lldx%lld", i ? "; " : "", json_string_value(json_object_get(d, "title")), side, side);
    if (json_is_object(n))
      fprintf(o, " (%lld train, %lld val, %lld test images)", (long long)json_integer_value(json_object_get(n, "train")),
              (long long)json_integer_value(json_object_get(n, "val")), (long long)json_integer_value(json_object_get(n, "test")));
  }
  json_array_foreach(json_object_get(ran, "models"), i, d) {
    const char *obj = json_string_value(json_object_get(d, "objective"));
    fprintf(o, "; model %s (%lld blocks, d %lld, %lld heads, %s)", json_string_value(json_object_get(d, "name")),
            (long long)json_integer_value(json_object_get(d, "n_layer")), (long long)json_integer_value(json_object_get(d, "n_embd")),
            (long long)json_integer_value(json_object_get(d, "n_head")), obj && !strcmp(obj, "bert") ? "BERT" : "autoregressive");
    if (json_object_get(d, "steps"))
      fprintf(o, " pretrained %lld steps of batch %lld at lr %g", (long long)json_integer_value(json_object_get(d, "steps")),
              (long long)json_integer_value(json_object_get(d, "batch")), json_number_value(json_object_get(d, "lr")));
    else fputs(" imported", o);
  }
  long long seeds = json_integer_value(json_object_get(ran, "seeds"));
  fprintf(o, "; %lld seed%s; on ", seeds, seeds == 1 ? "" : "s");
  json_array_foreach(json_object_get(ran, "devices"), i, d) fprintf(o, "%s%s", i ? ", " : "", json_string_value(d));
  if (!json_array_size(json_object_get(ran, "devices"))) fputs("no device (nothing finished)", o);
  fputs(".", o);
  fclose(o);
  return b;
}

json_t *report_build(const json_t *res, const char *dir) {
  const char *scale = json_string_value(json_object_get(res, "scale"));
  json_t *rep = json_object();
  // the scale first: what produced these numbers and what they mean
  char *ran = ran_text(json_object_get(res, "ran"));
  json_object_set_new(rep, "scale", json_pack("{s:s, s:s, s:b}", "name", scale, "meaning",
                                              ran ? ran : scale_meaning(scale), "judged", scale_is_judged(scale)));
  free(ran);
  json_object_set_new(rep, "format", json_string(REPORT_FORMAT));
  copy_if(rep, res, "table");
  copy_if(rep, res, "title");
  char *now = report_utc_now();
  json_object_set_new(rep, "generated", json_string(now));
  free(now);
  json_t *cv = json_object_get(res, "code_version");
  json_object_set_new(rep, "code_version", json_string(json_is_string(cv) ? json_string_value(cv) : IGPT_VERSION));
  json_object_set_new(rep, "reporter_version", json_string(IGPT_VERSION));

  json_t *rows = json_array(), *summary = json_object(), *row;
  size_t i;
  json_array_foreach(json_object_get(res, "rows"), i, row) {
    json_t *r = row_build(row, scale, "results.json", (int)i);
    const char *v = json_string_value(json_object_get(r, "verdict"));
    json_object_set_new(summary, v, json_integer(json_integer_value(json_object_get(summary, v)) + 1));
    json_array_append_new(rows, r);
  }
  json_object_set_new(rep, "rows", rows);
  json_t *nr = json_object_get(res, "not_run"), *ctx = json_object_get(res, "context");
  json_object_set_new(rep, "not_run", nr ? json_deep_copy(nr) : json_array());
  json_object_set_new(rep, "context", ctx ? json_deep_copy(ctx) : json_array());
  json_object_set_new(rep, "claims", claims_evaluate(res));
  json_object_set_new(rep, "summary", summary);
  json_t *lc = json_object_get(res, "loss_curves"), *jobs = json_object_get(res, "jobs");
  json_object_set_new(rep, "loss_curves", lc ? json_deep_copy(lc) : json_array());
  json_object_set_new(rep, "jobs", jobs ? json_deep_copy(jobs) : json_array());
  json_t *env = json_object_get(res, "environment");
  json_object_set_new(rep, "environment", env ? json_deep_copy(env)
                                              : environment_collect("igpt report (results had none)"));
  json_t *images = json_array(), *im, *notes = json_array();
  json_array_foreach(json_object_get(res, "images"), i, im) {
    json_t *b = image_build(im, dir);
    if (b) json_array_append_new(images, b);
    else {
      log_warn("report: image left out: %s", igpt_errmsg());
      json_array_append_new(notes, json_sprintf("image %s left out: %s",
                                                json_string_value(json_object_get(im, "path")), igpt_errmsg()));
    }
  }
  json_object_set_new(rep, "images", images);
  json_t *n;
  json_array_foreach(json_object_get(res, "notes"), i, n) json_array_append(notes, n);
  json_object_set_new(rep, "notes", notes);
  return rep;
}

int report_render_dir(const char *dir, json_t **report_out) {
  char *rpath = xasprintf("%s/results.json", dir);
  json_t *res = results_load(rpath);
  free(rpath);
  if (!res) return -1;
  json_t *rep = report_build(res, dir);
  json_decref(res);
  if (!rep) return -1;
  int rc = -1;
  char *dump = json_dumps(rep, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
  char *json = dump ? xasprintf("%s\n", dump) : NULL;
  free(dump);
  char *html = NULL;
  size_t hlen = 0;
  char *jpath = xasprintf("%s/report.json", dir), *hpath = xasprintf("%s/report.html", dir);
  if (json && html_render(rep, dir, &html, &hlen) == 0 &&
      file_write_atomic(jpath, json, strlen(json)) == 0 && file_write_atomic(hpath, html, hlen) == 0)
    rc = 0;
  free(json);
  free(html);
  free(jpath);
  free(hpath);
  if (rc == 0 && report_out) *report_out = json_incref(rep);
  json_decref(rep);
  return rc;
}
