// claims: the paper's findings evaluated on a table's results. See claims.h.
#include "reports/claims.h"
#include "reports/stats.h"
#include "base/util.h"
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

// One side of a comparison: a number per seed (and label subset, for low-data rows: -1 when none)
// and, where the probe wrote them, per-image outcomes.
#define SIDE_MAX 64
typedef struct {
  int n;
  int seed[SIDE_MAX], subset[SIDE_MAX];
  double value[SIDE_MAX];
  const char *hex[SIDE_MAX];  // NULL when absent
  long long n_test[SIDE_MAX];
} side_t;

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static void side_from_runs(side_t *s, const json_t *runs) {
  s->n = 0;
  size_t i; json_t *run;
  json_array_foreach(runs, i, run) {
    json_t *v = json_object_get(run, "value");
    if (!json_is_number(v) || s->n == SIDE_MAX) continue;
    s->seed[s->n] = (int)json_integer_value(json_object_get(run, "seed"));
    json_t *sub = json_object_get(run, "subset");
    s->subset[s->n] = json_is_integer(sub) ? (int)json_integer_value(sub) : -1;
    s->value[s->n] = json_number_value(v);
    s->hex[s->n] = str(run, "test_correct");
    s->n_test[s->n] = json_integer_value(json_object_get(run, "n_test"));
    s->n++;
  }
}

typedef enum { REL_ABOVE, REL_BELOW, REL_EQUAL, REL_NOT_BELOW } relation;

static int relation_of(const char *s, relation *r) {
  static const char *const names[] = {"above", "below", "equal", "not_below"};
  for (int i = 0; i < 4; i++)
    if (s && !strcmp(s, names[i])) { *r = (relation)i; return 0; }
  return -1;
}

static json_t *item(const json_t *def, const char *row) {
  json_t *o = json_pack("{s:s, s:s, s:s}", "id", str(def, "id") ?: "?", "claim", str(def, "claim") ?: "",
                        "source", str(def, "source") ?: "");
  json_object_set_new(o, "row", row ? json_string(row) : json_null());
  return o;
}

static json_t *verdict(json_t *o, const char *v, const char *evidence) {
  json_object_set_new(o, "verdict", json_string(v));
  json_object_set_new(o, "evidence", json_string(evidence));
  return o;
}

// The means of a comparison's two sides and of their paired differences (n of each), into the
// claim as a, b and difference; *sd the differences' spread.
static void set_means(json_t *o, const double *a, const double *b, const double *d, int n, double *ma, double *mb,
                      double *md, double *sd) {
  double s;
  stats_mean_std(a, n, ma, &s);
  stats_mean_std(b, n, mb, &s);
  stats_mean_std(d, n, md, sd);
  json_object_set_new(o, "a", json_real(*ma));
  json_object_set_new(o, "b", json_real(*mb));
  json_object_set_new(o, "difference", json_real(*md));
}

// The 1 - alpha interval [lo, hi] of the difference into the test (in the claim's unit) and into
// the test's text `how` (of size nhow); nothing when it has none (lo NAN).
static void set_interval(json_t *test, double lo, double hi, bool percent, char *how, size_t nhow) {
  if (!test || !isfinite(lo) || !isfinite(hi)) return;
  json_object_set_new(test, "interval", json_pack("[f, f]", lo, hi));
  json_object_set_new(test, "confidence", json_real(1 - CLAIMS_ALPHA));
  size_t k = strlen(how);
  snprintf(how + k, nhow - k, "; %g %% interval of the difference %+.2f to %+.2f%s", 100 * (1 - CLAIMS_ALPHA), lo, hi,
           percent ? " points" : "");
}

// The verdict of a difference md with two-sided p under the claimed relation: significant in the
// claimed direction holds, against it does not; "equal" holds when not significant and within tol.
// Appends to ev (of size nev) why it is not significant, and `need`: how far from deciding.
static json_t *decide(json_t *o, relation rel, double tol, double p, double md, char *ev, size_t nev, const char *need) {
  if (!isfinite(p)) return verdict(o, "inconclusive", ev);
  bool sig = p < CLAIMS_ALPHA;
  const char *v;
  switch (rel) {
    case REL_ABOVE: v = !sig ? "inconclusive" : md > 0 ? "holds" : "does-not-hold"; break;
    case REL_BELOW: v = !sig ? "inconclusive" : md < 0 ? "holds" : "does-not-hold"; break;
    case REL_EQUAL: v = sig ? "does-not-hold" : fabs(md) <= tol ? "holds" : "inconclusive"; break;
    default: v = sig && md < 0 ? "does-not-hold" : md >= -tol ? "holds" : "inconclusive"; break;
  }
  if (!sig) snprintf(ev + strlen(ev), nev - strlen(ev), "; not significant at %.2g%s", CLAIMS_ALPHA, need);
  return verdict(o, v, ev);
}

// A against B (what the claim says of A, relative to B). Sets verdict, evidence and test.
static json_t *compare(json_t *o, const side_t *a, const side_t *b, relation rel, double tol, const char *what_a,
                       const char *what_b, const char *unit) {
  double d[SIDE_MAX], va[SIDE_MAX], vb[SIDE_MAX];
  int np = 0, first_a = -1, first_b = -1;
  for (int i = 0; i < a->n; i++)
    for (int j = 0; j < b->n; j++)
      if (a->seed[i] == b->seed[j] && a->subset[i] == b->subset[j]) {  // the same seed's same labels
        va[np] = a->value[i];
        vb[np] = b->value[j];
        d[np++] = a->value[i] - b->value[j];
        if (first_a < 0) { first_a = i; first_b = j; }
      }
  if (!np) return verdict(o, "cannot-test", "no seed produced both numbers");
  double ma, mb, md, sd;
  set_means(o, va, vb, d, np, &ma, &mb, &md, &sd);
  char ev[800], how[320], need[200] = "";
  bool percent = unit && !strcmp(unit, "%");  // differences of percentages are points
  double p = NAN, lo = NAN, hi = NAN;
  json_t *test = NULL;
  if (np >= 3) {
    double t;
    p = stats_paired_t(d, np, &t);
    bool subsets = a->subset[first_a] >= 0;  // low-data: pairs are (seed, label subset)
    test = json_pack("{s:s, s:f, s:f, s:i, s:f}", "name", subsets ? "paired t over seeds and label subsets" : "paired t over seeds",
                     "p", p, "alpha", CLAIMS_ALPHA, "n", np, "t", isfinite(t) ? t : (t > 0 ? 1e300 : -1e300));
    int nseeds = 0;  // the distinct seeds among a's runs
    for (int i = 0; i < a->n; i++) {
      bool seen = false;
      for (int j = 0; j < i; j++) seen |= a->seed[j] == a->seed[i];
      nseeds += !seen;
    }
    char over[96];
    if (subsets) snprintf(over, sizeof over, "label subsets of %d seed%s, the same labels on both sides", nseeds, nseeds == 1 ? "" : "s");
    else snprintf(over, sizeof over, "seeds");
    snprintf(how, sizeof how, "paired t over %d %s, difference %+.2f ± %.2f, p = %.2g", np, over, md, sd, p);
    double need_d = stats_paired_t_min_difference(sd, np, CLAIMS_ALPHA);
    if (isfinite(need_d)) {
      lo = md - need_d;  // the threshold is the interval's half-width
      hi = md + need_d;
      json_object_set_new(test, "min_significant_difference", json_real(need_d));
      snprintf(need, sizeof need, " (with this spread over %d pairs it takes a mean difference of %.2f%s)", np, need_d,
               percent ? " points" : "");
    }
  } else if (a->hex[first_a] && b->hex[first_b] && a->n_test[first_a] > 0 && a->n_test[first_a] == b->n_test[first_b]) {
    mcnemar_result m;
    if (stats_mcnemar(a->hex[first_a], b->hex[first_b], a->n_test[first_a], &m) == 0) {
      p = m.p;
      test = json_pack("{s:s, s:f, s:f, s:I, s:I, s:I, s:i}", "name", "McNemar exact", "p", p, "alpha", CLAIMS_ALPHA, "n",
                       (json_int_t)m.n, "only_a", (json_int_t)m.b, "only_b", (json_int_t)m.c, "seed", a->seed[first_a]);
      snprintf(how, sizeof how, "McNemar on the same %lld test images (seed %d): %lld right only by %s, %lld only by "
               "%s, p = %.2g", (long long)m.n, a->seed[first_a], (long long)m.b, what_a, (long long)m.c, what_b, p);
      // the gap, in images, these discordant images would need; in points where the unit is percent
      int64_t gap = stats_mcnemar_min_gap(m.b + m.c, CLAIMS_ALPHA);
      double per = (percent ? 100.0 : 1.0) / (double)m.n;
      json_object_set_new(test, "min_significant_gap", gap >= 0 ? json_integer(gap) : json_null());
      if (!stats_mcnemar_interval(m.b, m.c, m.n, CLAIMS_ALPHA, &lo, &hi)) {
        lo *= percent ? 100 : 1;
        hi *= percent ? 100 : 1;
      }
      if (gap >= 0) {
        json_object_set_new(test, "min_significant_difference", json_real(gap * per));
        snprintf(need, sizeof need, " (with %lld images right on one side only it takes a gap of %lld, %.2f%s; here "
                 "%lld)", (long long)(m.b + m.c), (long long)gap, gap * per, percent ? " points" : "",
                 (long long)llabs(m.b - m.c));
      } else {
        snprintf(need, sizeof need, " (with only %lld images right on one side only, no split of them is)",
                 (long long)(m.b + m.c));
      }
    } else {
      snprintf(how, sizeof how, "per-image results unusable: %s", igpt_errmsg());
    }
  } else {
    snprintf(how, sizeof how, "%d seed%s and no per-image results: no test", np, np == 1 ? "" : "s");
  }
  set_interval(test, lo, hi, percent, how, sizeof how);
  if (test) json_object_set_new(o, "test", test);
  const char *u = unit ? unit : "";
  snprintf(ev, sizeof ev, "%s %.2f%s vs %s %.2f%s (%s)", what_a, ma, u, what_b, mb, u, how);
  return decide(o, rel, tol, p, md, ev, sizeof ev, need);
}

// The results row a paper row id ran as (its own id, or a stand-in row listing it); NULL.
static const json_t *find_row(const json_t *res, const char *id) {
  size_t i, k; json_t *row, *e;
  json_array_foreach(json_object_get(res, "rows"), i, row) {
    if (!strcmp(str(row, "id"), id)) return row;
    json_array_foreach(json_object_get(row, "stands_in_for"), k, e)
      if (!strcmp(str(e, "id"), id)) return row;
  }
  return NULL;
}

static const char *not_run_reason(const json_t *res, const char *id) {
  size_t i; json_t *e;
  json_array_foreach(json_object_get(res, "not_run"), i, e)
    if (!strcmp(str(e, "id"), id)) return str(e, "reason");
  return NULL;
}

static bool is_probe(const json_t *row) { const char *e = str(row, "eval"); return !e || !strcmp(e, "probe"); }

// Appends a run's layer `layer` as a point of s: that layer's own test number and per-image
// outcomes (the probe's layer_test_accuracy and layer_test_correct). false when it has none.
static bool side_add_layer(side_t *s, const json_t *run, size_t layer) {
  json_t *v = json_array_get(json_object_get(run, "layer_test_accuracy"), layer);
  if (!json_is_number(v) || s->n == SIDE_MAX) return false;
  s->seed[s->n] = (int)json_integer_value(json_object_get(run, "seed"));
  s->subset[s->n] = -1;
  s->value[s->n] = json_number_value(v);
  s->hex[s->n] = json_string_value(json_array_get(json_object_get(run, "layer_test_correct"), layer));
  s->n_test[s->n++] = json_integer_value(json_object_get(run, "n_test"));
  return true;
}

// The probe side at its validation-chosen single layer (the paper's probe) where the runs'
// numbers concatenate layers. 0; -1 when a run is one layer already or recorded no test number
// of its best layer, with why in `why`.
static int side_best_layer(side_t *s, const json_t *runs, char *why, size_t nwhy) {
  s->n = 0;
  size_t i; json_t *run;
  json_array_foreach(runs, i, run) {
    if (!json_is_number(json_object_get(run, "value")) || s->n == SIDE_MAX) continue;
    if (!json_is_integer(json_object_get(run, "concat_layers"))) {
      snprintf(why, nwhy, "the probe here is one layer already, the validation-chosen one: the same claim without "
               "one_layer tests it");
      return -1;
    }
    json_t *bl = json_object_get(run, "best_layer");
    if (!json_is_integer(bl) || !side_add_layer(s, run, (size_t)json_integer_value(bl))) {
      snprintf(why, nwhy, "the probe recorded no test accuracy of its best single layer");
      return -1;
    }
  }
  return 0;
}

// Each row of the claim's kind ("eval": probe rows by default, or fine-tune rows) against its
// baseline of that name in the same run. With "one_layer" the probe side (a probe row's features,
// a fine-tune row's probe baseline) is its best single layer: the paper compares one layer, where
// a scale's probe.concat_blocks makes the row's number a concatenation.
static void claim_baseline(json_t *out, const json_t *def, const json_t *res) {
  const char *which = str(def, "baseline"), *eval = str(def, "eval") ?: "probe";
  bool ft = !strcmp(eval, "finetune"), one = json_is_true(json_object_get(def, "one_layer"));
  size_t i; json_t *row;
  int n = 0;
  json_array_foreach(json_object_get(res, "rows"), i, row) {
    if (ft ? is_probe(row) || strcmp(str(row, "eval") ?: "", "finetune") : !is_probe(row)) continue;
    n++;
    json_t *o = item(def, str(row, "id"));
    json_t *b = json_object_get(json_object_get(row, "baselines"), which);
    if (!b) {
      json_array_append_new(out, verdict(o, "cannot-test", "this row has no such baseline in this run"));
      continue;
    }
    side_t sa, sb;
    side_from_runs(&sa, json_object_get(row, "runs"));
    side_from_runs(&sb, json_object_get(b, "runs"));
    char why[160], lb[96];
    if (one && side_best_layer(ft ? &sb : &sa, json_object_get(ft ? b : row, "runs"), why, sizeof why)) {
      json_array_append_new(out, verdict(o, "cannot-test", why));
      continue;
    }
    snprintf(lb, sizeof lb, "%s%s", str(b, "label") ?: which, one && ft ? " (its best single layer)" : "");
    json_array_append_new(out, compare(o, &sa, &sb, REL_ABOVE, 0,
                                       ft ? "the fine-tune" : one ? "the best single layer's features" : "features", lb,
                                       str(row, "unit")));
  }
  if (!n)
    json_array_append_new(out, verdict(item(def, NULL), "cannot-test", ft ? "no fine-tune row ran in this table"
                                                                          : "no probe row ran in this table"));
}

static void claim_best_layer(json_t *out, const json_t *def, const json_t *res) {
  long min_blocks = json_integer_value(json_object_get(def, "min_blocks"));
  size_t i; json_t *row;
  int n = 0;
  json_array_foreach(json_object_get(res, "rows"), i, row) {
    if (!is_probe(row) || json_object_get(row, "labels_per_class")) continue;
    n++;
    json_t *o = item(def, str(row, "id"));
    // per seed: the validation-chosen layer's test numbers against the last layer's
    side_t sa = {0}, sb = {0};
    int L = -1, votes_last = 0, best_sum = 0;
    char ev[256] = "";
    size_t k; json_t *run;
    json_array_foreach(json_object_get(row, "runs"), k, run) {
      size_t nl = json_array_size(json_object_get(run, "layer_test_accuracy"));
      json_t *b = json_object_get(run, "best_layer");
      if (!nl || !json_is_integer(b) || sa.n == SIDE_MAX) continue;
      L = (int)nl - 1;
      int bl = (int)json_integer_value(b);
      votes_last += bl == L;
      best_sum += bl;
      side_add_layer(&sa, run, (size_t)bl);  // jobs_results.c: every layer has its test number
      side_add_layer(&sb, run, (size_t)L);
    }
    if (L < 0) {
      json_array_append_new(out, verdict(o, "cannot-test", "the probe recorded no per-layer test accuracy"));
      continue;
    }
    if (L < min_blocks) {
      snprintf(ev, sizeof ev, "a %d-block model has no middle to peak in: its features are layer 0 (the embedding), "
               "the %d block input%s between and layer %d (the final norm); the claim needs at least %ld blocks", L, L - 1,
               L - 1 == 1 ? "" : "s", L, min_blocks);
      json_array_append_new(out, verdict(o, "cannot-test", ev));
      continue;
    }
    char wa[64];
    if (sa.n == 1) snprintf(wa, sizeof wa, "best layer (%d of %d)", best_sum, L);  // one seed: no average
    else snprintf(wa, sizeof wa, "best layer (%.1f of %d on average)", (double)best_sum / sa.n, L);
    if (votes_last * 2 > sa.n) {
      snprintf(ev, sizeof ev, "validation chose the last layer (%d) in %d of %d seeds", L, votes_last, sa.n);
      json_array_append_new(out, verdict(o, "does-not-hold", ev));
      continue;
    }
    json_array_append_new(out, compare(o, &sa, &sb, REL_ABOVE, 0, wa, "the last layer", str(row, "unit")));
  }
  if (!n) json_array_append_new(out, verdict(item(def, NULL), "cannot-test", "no full-data probe row ran in this table"));
}

// The results rows of a claim's ids (pairs: a and b, then c and d) into row[n]; false, with o's
// cannot-test verdict appended to out, when one did not run or a pair ran as one job.
static bool claim_find_rows(json_t *out, json_t *o, const json_t *res, const char *const *id, int n, const json_t **row) {
  char ev[512];
  for (int k = 0; k < n; k++) {
    if ((row[k] = find_row(res, id[k]))) continue;
    const char *why = not_run_reason(res, id[k]);
    snprintf(ev, sizeof ev, "row %s did not run%s%s", id[k], why ? ": " : "", why ? why : "");
    json_array_append_new(out, verdict(o, "cannot-test", ev));
    return false;
  }
  for (int k = 0; k + 1 < n; k += 2)
    if (row[k] == row[k + 1]) {
      snprintf(ev, sizeof ev, "rows %s and %s ran as the same job at this scale", id[k], id[k + 1]);
      json_array_append_new(out, verdict(o, "cannot-test", ev));
      return false;
    }
  return true;
}

static void claim_rows(json_t *out, const json_t *def, const json_t *res) {
  const char *id[2] = {str(def, "a"), str(def, "b")};
  const json_t *row[2];
  relation rel;
  json_t *o = item(def, id[0]);
  if (!id[0] || !id[1] || relation_of(str(def, "relation"), &rel)) {
    json_array_append_new(out, verdict(o, "cannot-test", "the claim's definition lacks a, b or a known relation"));
    return;
  }
  if (!claim_find_rows(out, o, res, id, 2, row)) return;
  side_t sa, sb;
  side_from_runs(&sa, json_object_get(row[0], "runs"));
  side_from_runs(&sb, json_object_get(row[1], "runs"));
  json_t *tol = json_object_get(def, "tolerance");
  compare(o, &sa, &sb, rel, json_is_number(tol) ? json_number_value(tol) : 1.0, id[0], id[1], str(row[0], "unit"));
  json_array_append_new(out, o);
}

// "gap": a difference of differences, (a - b) against (c - d): the paper's "fine-tuning closes
// BERT's gap" is (BERT fine-tune - AR fine-tune) above (BERT probe - AR probe). Over 3 or more
// seeds a paired t on the per-seed values; else a one-sample t over the test images of each
// image's (a_i - b_i) - (c_i - d_i), a value in -2..2 (right 1, wrong 0), the four scored on the
// same images by the first seed they share (McNemar does not apply to four classifiers; with
// thousands of images the mean of these bounded values is normal to good approximation).
static void claim_gap(json_t *out, const json_t *def, const json_t *res) {
  const char *const names[4] = {"a", "b", "c", "d"};
  const char *id[4];
  const json_t *row[4];
  json_t *o = item(def, str(def, "a"));
  relation rel;
  for (int k = 0; k < 4; k++) id[k] = str(def, names[k]);
  if (!id[0] || !id[1] || !id[2] || !id[3] || relation_of(str(def, "relation") ?: "above", &rel) ||
      rel == REL_EQUAL || rel == REL_NOT_BELOW) {
    json_array_append_new(out, verdict(o, "cannot-test", "the claim's definition lacks a, b, c, d or an above|below relation"));
    return;
  }
  if (!claim_find_rows(out, o, res, id, 4, row)) return;
  char ev[900], how[400], need[200] = "";
  side_t sd[4];
  for (int k = 0; k < 4; k++) side_from_runs(&sd[k], json_object_get(row[k], "runs"));
  double after[SIDE_MAX], before[SIDE_MAX], dd[SIDE_MAX];
  int np = 0, first[4] = {-1, -1, -1, -1};
  for (int i = 0; i < sd[0].n; i++) {  // the seeds all four ran
    int at[4] = {i, -1, -1, -1};
    for (int k = 1; k < 4; k++)
      for (int j = 0; j < sd[k].n && at[k] < 0; j++)
        if (sd[k].seed[j] == sd[0].seed[i]) at[k] = j;
    if (at[1] < 0 || at[2] < 0 || at[3] < 0) continue;
    after[np] = sd[0].value[at[0]] - sd[1].value[at[1]];
    before[np] = sd[2].value[at[2]] - sd[3].value[at[3]];
    dd[np] = after[np] - before[np];
    if (!np) memcpy(first, at, sizeof first);
    np++;
  }
  if (!np) {
    json_array_append_new(out, verdict(o, "cannot-test", "no seed produced all four numbers"));
    return;
  }
  double ma, mb, md, sdd;
  set_means(o, after, before, dd, np, &ma, &mb, &md, &sdd);
  const char *unit = str(row[0], "unit");
  bool percent = unit && !strcmp(unit, "%");
  double p = NAN, t = NAN, need_d = NAN;
  json_t *test = NULL;
  long long n = sd[0].n_test[first[0]];
  bool images = n > 0;
  for (int k = 0; k < 4; k++) images &= sd[k].hex[first[k]] && sd[k].n_test[first[k]] == n;
  if (np >= 3) {
    p = stats_paired_t(dd, np, &t);
    need_d = stats_paired_t_min_difference(sdd, np, CLAIMS_ALPHA);
    test = json_pack("{s:s, s:f, s:f, s:i}", "name", "paired t over seeds", "p", p, "alpha", CLAIMS_ALPHA, "n", np);
    snprintf(how, sizeof how, "paired t over %d seeds, difference %+.2f ± %.2f, p = %.2g", np, md, sdd, p);
  } else if (images) {
    double *z = malloc((size_t)n * sizeof *z), mz, sz;
    bool ok = z != NULL;
    for (long long i = 0; ok && i < n; i++) {
      int r[4];
      for (int k = 0; k < 4; k++) ok &= (r[k] = correct_bit(sd[k].hex[first[k]], i)) >= 0;
      if (ok) z[i] = (double)(r[0] - r[1]) - (double)(r[2] - r[3]);
    }
    if (ok) {
      double per = percent ? 100.0 : 1.0;  // a mean over images is a fraction; the rows' unit may be %
      p = stats_paired_t(z, (int)n, &t);
      stats_mean_std(z, (int)n, &mz, &sz);
      need_d = per * stats_paired_t_min_difference(sz, (int)n, CLAIMS_ALPHA);
      test = json_pack("{s:s, s:f, s:f, s:I, s:i}", "name", "t over test images of the per-image difference of differences",
                       "p", p, "alpha", CLAIMS_ALPHA, "n", (json_int_t)n, "seed", sd[0].seed[first[0]]);
      snprintf(how, sizeof how, "t over the same %lld test images (seed %d) of each image's difference of the "
               "differences, t = %.2f, p = %.2g", n, sd[0].seed[first[0]], t, p);
    } else {
      snprintf(how, sizeof how, "per-image results of the four rows break before image %lld: no test", n);
    }
    free(z);
  } else {
    snprintf(how, sizeof how, "%d seed%s and no per-image results of all four rows on the same images: no test", np,
             np == 1 ? "" : "s");
  }
  if (test) {
    if (isfinite(t)) json_object_set_new(test, "t", json_real(t));
    if (isfinite(need_d)) json_object_set_new(test, "min_significant_difference", json_real(need_d));
    set_interval(test, md - need_d, md + need_d, percent, how, sizeof how);
    json_object_set_new(o, "test", test);
  }
  if (isfinite(need_d))
    snprintf(need, sizeof need, " (this test takes a change of %.2f%s)", need_d, percent ? " points" : "");
  const char *u = percent ? " points" : "";
  snprintf(ev, sizeof ev, "%s - %s %+.2f%s against %s - %s %+.2f%s: the gap moved %+.2f%s (%s)", id[0], id[1], ma, u,
           id[2], id[3], mb, u, md, u, how);
  json_array_append_new(out, decide(o, rel, 0, p, md, ev, sizeof ev, need));
}

static int by_labels(const void *x, const void *y) {
  const json_t *a = *(const json_t *const *)x, *b = *(const json_t *const *)y;
  json_int_t la = json_integer_value(json_object_get(a, "labels_per_class")), lb = json_integer_value(json_object_get(b, "labels_per_class"));
  return (la > lb) - (la < lb);
}

static void claim_increasing(json_t *out, const json_t *def, const json_t *res) {
  json_t *ids = json_object_get(def, "rows");
  const json_t *rows[SIDE_MAX];
  int n = 0;
  size_t i; json_t *id;
  json_array_foreach(ids, i, id) {  // the distinct rows that ran (capped counts may merge two)
    const json_t *r = find_row(res, json_string_value(id));
    bool seen = false;
    for (int k = 0; k < n; k++) seen |= rows[k] == r;
    if (r && !seen && n < SIDE_MAX) rows[n++] = r;
  }
  json_t *o = item(def, NULL);
  if (n < 2) {
    json_array_append_new(out, verdict(o, "cannot-test", "fewer than two label counts ran at this scale"));
    return;
  }
  qsort(rows, (size_t)n, sizeof *rows, by_labels);
  char ev[768] = "";
  bool all_up = true, any_down = false;
  double pmax = 0;
  for (int k = 0; k + 1 < n; k++) {
    side_t lo, hi;
    side_from_runs(&lo, json_object_get(rows[k], "runs"));
    side_from_runs(&hi, json_object_get(rows[k + 1], "runs"));
    double ml, sl, mh, sh, t;
    stats_mean_std(lo.value, lo.n, &ml, &sl);
    stats_mean_std(hi.value, hi.n, &mh, &sh);
    double p = stats_welch_t(hi.value, hi.n, lo.value, lo.n, &t);
    bool sig = isfinite(p) && p < CLAIMS_ALPHA;
    all_up &= sig && mh > ml;
    any_down |= sig && mh < ml;
    if (isfinite(p) && p > pmax) pmax = p;
    snprintf(ev + strlen(ev), sizeof ev - strlen(ev), "%s%lld labels/class %.2f ± %.2f -> %lld: %.2f ± %.2f (Welch p = %.2g)",
             k ? "; " : "", (long long)json_integer_value(json_object_get(rows[k], "labels_per_class")), ml, sl,
             (long long)json_integer_value(json_object_get(rows[k + 1], "labels_per_class")), mh, sh, p);
    if (!isfinite(p)) all_up = false;
  }
  json_object_set_new(o, "test", json_pack("{s:s, s:f, s:f, s:i}", "name", "Welch t between consecutive label counts "
                                           "(largest p)", "p", pmax, "alpha", CLAIMS_ALPHA, "n", n));
  json_array_append_new(out, verdict(o, any_down ? "does-not-hold" : all_up ? "holds" : "inconclusive", ev));
}

// Lower generative loss, better probe: over the checkpoints of a row (seed 0), the one with the
// lowest test loss against the one with the highest, on the same test images; the evidence lists
// every point and whether accuracy falls monotonically with loss.
static void claim_checkpoints(json_t *out, const json_t *def, const json_t *res) {
  size_t i; json_t *row;
  int n = 0;
  json_array_foreach(json_object_get(res, "rows"), i, row) {
    json_t *cp = json_object_get(row, "checkpoints");
    if (!json_array_size(cp)) continue;
    n++;
    json_t *o = item(def, str(row, "id"));
    const json_t *lo = NULL, *hi = NULL;
    char ev[768] = "";
    size_t k; json_t *pt;
    int usable = 0;
    json_array_foreach(cp, k, pt) {
      json_t *loss = json_object_get(pt, "loss");
      json_t *v = json_object_get(json_array_get(json_object_get(pt, "runs"), 0), "value");
      if (!json_is_number(loss) || !json_is_number(v)) continue;
      usable++;
      if (!lo || json_number_value(loss) < json_number_value(json_object_get(lo, "loss"))) lo = pt;
      if (!hi || json_number_value(loss) > json_number_value(json_object_get(hi, "loss"))) hi = pt;
      snprintf(ev + strlen(ev), sizeof ev - strlen(ev), "%sstep %lld: loss %.3f, probe %.2f", usable > 1 ? "; " : "",
               (long long)json_integer_value(json_object_get(pt, "step")), json_number_value(loss), json_number_value(v));
    }
    if (usable < 2 || lo == hi) {
      json_array_append_new(out, verdict(o, "cannot-test", "fewer than two checkpoints with a loss and a probe"));
      continue;
    }
    // concordance: is every pair ordered as the claim says (lower loss, higher accuracy)?
    int pairs = 0, concordant = 0;
    json_t *pa, *pb;
    size_t a, b;
    json_array_foreach(cp, a, pa) json_array_foreach(cp, b, pb) {
      if (b <= a) continue;
      json_t *la = json_object_get(pa, "loss"), *lb = json_object_get(pb, "loss");
      json_t *va = json_object_get(json_array_get(json_object_get(pa, "runs"), 0), "value");
      json_t *vb = json_object_get(json_array_get(json_object_get(pb, "runs"), 0), "value");
      if (!json_is_number(la) || !json_is_number(lb) || !json_is_number(va) || !json_is_number(vb)) continue;
      pairs++;
      concordant += (json_number_value(la) - json_number_value(lb)) * (json_number_value(va) - json_number_value(vb)) < 0;
    }
    side_t sa, sb;
    side_from_runs(&sa, json_object_get(lo, "runs"));
    side_from_runs(&sb, json_object_get(hi, "runs"));
    char wa[64], wb[64];
    snprintf(wa, sizeof wa, "lowest loss (step %lld)", (long long)json_integer_value(json_object_get(lo, "step")));
    snprintf(wb, sizeof wb, "highest loss (step %lld)", (long long)json_integer_value(json_object_get(hi, "step")));
    compare(o, &sa, &sb, REL_ABOVE, 0, wa, wb, str(row, "unit"));
    char full[1400];
    snprintf(full, sizeof full, "%s. %s; %d of %d pairs of checkpoints ordered as claimed", str(o, "evidence"), ev,
             concordant, pairs);
    json_object_set_new(o, "evidence", json_string(full));
    json_array_append_new(out, o);
  }
  if (!n) json_array_append_new(out, verdict(item(def, NULL), "cannot-test",
                                             "this run keeps no checkpoints to probe (the scale's pretrain.keep_every)"));
}

json_t *claims_evaluate(const json_t *res) {
  json_t *out = json_array();
  size_t i; json_t *def;
  json_array_foreach(json_object_get(res, "claims"), i, def) {
    const char *t = str(def, "test");
    if (!t) json_array_append_new(out, verdict(item(def, NULL), "cannot-test", "the claim names no test"));
    else if (!strcmp(t, "baseline")) claim_baseline(out, def, res);
    else if (!strcmp(t, "best-layer-not-last")) claim_best_layer(out, def, res);
    else if (!strcmp(t, "rows")) claim_rows(out, def, res);
    else if (!strcmp(t, "increasing")) claim_increasing(out, def, res);
    else if (!strcmp(t, "checkpoints")) claim_checkpoints(out, def, res);
    else if (!strcmp(t, "gap")) claim_gap(out, def, res);
    else {
      char ev[160];
      snprintf(ev, sizeof ev, "unknown test \"%s\" (known: baseline, best-layer-not-last, rows, increasing, checkpoints, gap)", t);
      json_array_append_new(out, verdict(item(def, NULL), "cannot-test", ev));
    }
  }
  return out;
}
