// check: regression verdicts and baseline updates. See check.h.
#include "reports/check.h"
#include "base/version.h"
#include "base/jsonpath.h"
#include "reports/claims.h"
#include "reports/report.h"
#include "reports/results.h"
#include "reports/stats.h"
#include "base/util.h"
#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>

static int check_baseline(const json_t *b, const char *file) {
  jp_doc doc = {.file = file};
  jp c = jp_root(&doc, b), fmt = jp_key(&c, "format"), scale = jp_key(&c, "scale"), tables = jp_key(&c, "tables");
  if (!jp_value(&c, JP_OBJECT, JP_REQUIRED)) return -1;
  jp_value(&fmt, JP_STRING, JP_REQUIRED);
  jp_value(&scale, JP_STRING, JP_REQUIRED);
  jp_value(&tables, JP_OBJECT, JP_REQUIRED);
  jp_get(&c, "history", JP_ARRAY, JP_REQUIRED);
  if (jp_failed(&c)) return -1;
  if (strcmp(json_string_value(fmt.v), BASELINE_FORMAT))
    return jp_fail(&fmt, "expected \"%s\", found \"%s\"", BASELINE_FORMAT, json_string_value(fmt.v));
  if (!scale_meaning(json_string_value(scale.v)))
    return jp_fail(&scale, "unknown scale \"%s\"", json_string_value(scale.v));
  const char *t, *r;
  json_t *rows, *e;
  json_object_foreach((json_t *)tables.v, t, rows) {
    jp tc = jp_key(&tables, t);
    if (!json_is_object(rows)) return jp_expected(&tc, "an object of rows");
    json_object_foreach(rows, r, e) {
      jp ec = jp_key(&tc, r), std = jp_key(&ec, "std"), rule = jp_key(&ec, "rule");
      if (!jp_value(&ec, JP_OBJECT, JP_REQUIRED)) return -1;
      jp_string(&ec, "metric", JP_REQUIRED);
      jp_get(&ec, "higher_is_better", JP_BOOL, JP_REQUIRED);
      jp_get(&ec, "mean", JP_NUMBER, JP_REQUIRED);
      jp_value(&std, JP_NUMBER, JP_REQUIRED);
      jp_get(&ec, "n", JP_INTEGER, JP_REQUIRED);
      jp_value(&rule, JP_OBJECT, JP_REQUIRED);
      if (jp_failed(&c)) return -1;
      if (json_number_value(std.v) < 0) return jp_expected(&std, "a number >= 0");
      rule_t rr;
      if (rule_from_json(rule.v, &rr, file, rule.path)) return -1;
    }
  }
  jp claims = jp_key(&c, "claims");  // optional: table -> claim id -> {"require": "holds", ...}
  if (jp_value(&claims, JP_OBJECT, JP_OPTIONAL)) {
    json_object_foreach((json_t *)claims.v, t, rows) {
      jp tc = jp_key(&claims, t);
      if (!json_is_object(rows)) return jp_expected(&tc, "an object of claim ids");
      json_object_foreach(rows, r, e) {
        jp ec = jp_key(&tc, r), req = jp_key(&ec, "require");
        if (!jp_value(&ec, JP_OBJECT, JP_REQUIRED) || !jp_value(&req, JP_STRING, JP_REQUIRED)) return -1;
        if (strcmp(json_string_value(req.v), "holds")) return jp_expected(&req, "\"holds\"");
      }
    }
  }
  return jp_failed(&c) ? -1 : 0;
}

json_t *baseline_load(const char *path, int *absent) {
  *absent = 0;
  if (!path_exists(path)) { *absent = 1; return NULL; }
  json_error_t e;
  json_t *b = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
  if (!b) { igpt_err("%s: line %d column %d: %s", path, e.line, e.column, e.text); return NULL; }
  if (check_baseline(b, path)) { json_decref(b); return NULL; }
  return b;
}

// Mean, std and n of a results row over the runs that produced a number.
static void row_stats(const json_t *row, double *mean, double *std, int *n) {
  json_t *runs = json_object_get(row, "runs"), *run;
  double *v = xmalloc((json_array_size(runs) + 1) * sizeof *v);
  size_t i;
  *n = 0;
  json_array_foreach(runs, i, run) {
    json_t *x = json_object_get(run, "value");
    if (json_is_number(x)) v[(*n)++] = json_number_value(x);
  }
  stats_mean_std(v, *n, mean, std);
  free(v);
}

static void copy_str(char *dst, size_t n, const char *s) { snprintf(dst, n, "%s", s ? s : ""); }

// The claims the baseline requires of this table (baseline "claims"): each must hold in every row
// it is evaluated on; "does not hold", "inconclusive" or "cannot test" is a regression, so a change
// that breaks a trend fails even when every number stays within its tolerance.
static void check_claims(const json_t *res, const json_t *baseline, check_item **items, int *nitems) {
  const char *table = json_string_value(json_object_get(res, "table"));
  json_t *req = json_object_get(json_object_get(baseline, "claims"), table);
  if (!json_object_size(req)) return;
  json_t *ev = claims_evaluate(res);
  const char *id;
  json_t *rq;
  json_object_foreach(req, id, rq) {
    int found = 0;
    size_t i; json_t *c;
    json_array_foreach(ev, i, c) {
      if (strcmp(json_string_value(json_object_get(c, "id")), id)) continue;
      found++;
      *items = xrealloc(*items, (*nitems + 1) * sizeof **items);
      check_item *it = &(*items)[(*nitems)++];
      memset(it, 0, sizeof *it);
      snprintf(it->table, sizeof it->table, "%s", table);
      const char *row = json_string_value(json_object_get(c, "row"));
      snprintf(it->row, sizeof it->row, "claim %s%s%s", id, row ? " @ " : "", row ? row : "");
      snprintf(it->metric, sizeof it->metric, "claim");
      it->against = AGAINST_BASELINE;
      json_t *a = json_object_get(c, "a"), *b = json_object_get(c, "b");
      it->n = json_is_number(a) ? 1 : 0;
      it->ours = json_is_number(a) ? json_number_value(a) : NAN;
      it->ours_std = 0;
      it->ref = json_is_number(b) ? json_number_value(b) : NAN;
      it->ref_std = 0;
      it->tolerance = NAN;
      const char *v = json_string_value(json_object_get(c, "verdict"));
      bool holds = v && !strcmp(v, "holds");
      it->verdict = holds ? VERDICT_PASS : VERDICT_FAIL;
      // a claim required on one data set says nothing of a run on another (the smoke scale's stand-in)
      const char *want = json_string_value(json_object_get(rq, "dataset")), *ran = NULL;
      size_t q; json_t *rr;
      json_array_foreach(json_object_get(res, "rows"), q, rr)
        if (row && !strcmp(json_string_value(json_object_get(rr, "id")), row)) ran = json_string_value(json_object_get(rr, "dataset"));
      if (want && ran && strcmp(want, ran)) {
        it->verdict = VERDICT_NOT_JUDGED;
        snprintf(it->note, sizeof it->note, "not comparable: the claim was required on %s, these results ran %s", want, ran);
        continue;
      }
      snprintf(it->note, sizeof it->note, "%s%s: %s", holds ? "the claim holds" : "REGRESSION: a required claim ",
               holds ? "" : v ? v : "?", json_string_value(json_object_get(c, "evidence")));
    }
    if (!found) {
      *items = xrealloc(*items, (*nitems + 1) * sizeof **items);
      check_item *it = &(*items)[(*nitems)++];
      memset(it, 0, sizeof *it);
      snprintf(it->table, sizeof it->table, "%s", table);
      snprintf(it->row, sizeof it->row, "claim %s", id);
      snprintf(it->metric, sizeof it->metric, "claim");
      it->ours = it->ref = it->tolerance = it->ours_std = it->ref_std = NAN;
      it->verdict = VERDICT_FAIL;
      snprintf(it->note, sizeof it->note, "REGRESSION: the baseline requires claim %s, which these results do not "
               "evaluate (the table's claims in suite/tables.json)", id);
    }
  }
  json_decref(ev);
}

void check_results(const json_t *res, check_against against, const json_t *baseline,
                   check_item **items, int *nitems) {
  const char *scale = json_string_value(json_object_get(res, "scale"));
  const char *table = json_string_value(json_object_get(res, "table"));
  json_t *brows = json_object_get(json_object_get(baseline, "tables"), table), *row;
  size_t i;
  json_array_foreach(json_object_get(res, "rows"), i, row) {
    *items = xrealloc(*items, (*nitems + 1) * sizeof **items);
    check_item *it = &(*items)[(*nitems)++];
    memset(it, 0, sizeof *it);
    copy_str(it->table, sizeof it->table, table);
    copy_str(it->row, sizeof it->row, json_string_value(json_object_get(row, "id")));
    copy_str(it->metric, sizeof it->metric, json_string_value(json_object_get(row, "metric")));
    copy_str(it->unit, sizeof it->unit, json_string_value(json_object_get(row, "unit")));
    it->against = against;
    it->ref = it->ref_std = it->tolerance = NAN;
    row_stats(row, &it->ours, &it->ours_std, &it->n);
    bool hib = json_is_true(json_object_get(row, "higher_is_better"));
    rule_t rule;
    bool have_ref = false, have_rule = false;
    if (against == AGAINST_BASELINE) {
      json_t *e = json_object_get(brows, it->row);
      if (!baseline) {
        it->verdict = VERDICT_NO_REFERENCE;
        snprintf(it->note, sizeof it->note, "no baseline for scale %s yet", scale);
        continue;
      }
      if (!e) {
        it->verdict = VERDICT_NO_REFERENCE;
        snprintf(it->note, sizeof it->note, "no baseline for this row; add it with --update-baseline");
        continue;
      }
      if (strcmp(json_string_value(json_object_get(e, "metric")), it->metric) ||
          json_is_true(json_object_get(e, "higher_is_better")) != hib) {
        it->verdict = VERDICT_FAIL;
        snprintf(it->note, sizeof it->note, "baseline measures %s, results %s: the row changed meaning; "
                 "update the baseline with a reason", json_string_value(json_object_get(e, "metric")), it->metric);
        continue;
      }
      it->ref = json_number_value(json_object_get(e, "mean"));
      it->ref_std = json_number_value(json_object_get(e, "std"));
      it->ref_n = (int)json_integer_value(json_object_get(e, "n"));
      // a baseline made on other data (a scale's stand-in data set ran) says nothing about these
      const char *bds = json_string_value(json_object_get(e, "dataset"));
      const char *rds = json_string_value(json_object_get(row, "dataset"));
      if (bds && rds && strcmp(bds, rds)) {
        it->verdict = VERDICT_NOT_JUDGED;
        snprintf(it->note, sizeof it->note, "not comparable: the baseline ran on %s, these results on %s (see the "
                 "row's note in results.json); run where %s is present to check against it", bds, rds, bds);
        continue;
      }
      have_ref = true;
      have_rule = rule_from_json(json_object_get(e, "rule"), &rule, "baseline", it->row) == 0;
    } else {
      json_t *pub = json_object_get(row, "published");
      if (!json_is_object(pub)) {
        it->verdict = VERDICT_NO_REFERENCE;
        snprintf(it->note, sizeof it->note, json_object_get(row, "stands_in_for")
                                                ? "a stand-in data set: compared with nothing published"
                                                : "the paper gives no number for this row");
        continue;
      }
      it->ref = json_number_value(json_object_get(pub, "value"));
      json_t *sd = json_object_get(pub, "std");
      it->ref_std = json_is_number(sd) ? json_number_value(sd) : 0;
      have_ref = true;
      json_t *rj = json_object_get(row, "rule");
      have_rule = rj && rule_from_json(rj, &rule, "results", it->row) == 0;
      if (!scale_is_judged(scale)) {
        it->verdict = VERDICT_NOT_JUDGED;
        snprintf(it->note, sizeof it->note, "%s scale: gap shown, not judged (not a reproduction)", scale);
        continue;
      }
    }
    if (it->n == 0) {
      it->verdict = have_ref ? VERDICT_FAIL : VERDICT_NO_RESULT;
      snprintf(it->note, sizeof it->note, "no seed produced a number, the reference has one");
      continue;
    }
    if (!have_rule) {
      it->verdict = VERDICT_NOT_JUDGED;
      snprintf(it->note, sizeof it->note, "no tolerance rule for this row");
      continue;
    }
    // standard errors of the two means; a published std counts as one draw (its n is not given)
    double ref_se = it->ref_std / sqrt(it->ref_n > 0 ? it->ref_n : 1);
    it->verdict = verdict_judge(&rule, hib, it->ours, it->ours_std / sqrt(it->n), it->ref, ref_se, &it->tolerance);
    const char *what = against == AGAINST_BASELINE ? "baseline" : "published value";
    if (it->verdict == VERDICT_PASS)
      snprintf(it->note, sizeof it->note, "within %s of the %s", rule_describe(&rule, it->unit), what);
    else if (it->verdict == VERDICT_BETTER)
      snprintf(it->note, sizeof it->note, "better than the %s beyond %s: passes; the %s may move%s", what,
               rule_describe(&rule, it->unit), what,
               against == AGAINST_BASELINE ? " (igpt check --update-baseline --reason ...)" : " (check why)");
    else
      snprintf(it->note, sizeof it->note, "REGRESSION: worse than the %s beyond %s", what,
               rule_describe(&rule, it->unit));
  }
  if (against == AGAINST_BASELINE) check_claims(res, baseline, items, nitems);
}

static void fmt_ms(char *buf, size_t n, double m, double s, int k) {
  if (!isfinite(m)) { snprintf(buf, n, "-"); return; }
  int dec = fabs(m) >= 10 ? 2 : 4;
  if (k > 0) snprintf(buf, n, "%.*f ± %.*f (n=%d)", dec, m, dec, isfinite(s) ? s : 0, k);
  else snprintf(buf, n, "%.*f", dec, m);
}

int check_print(FILE *out, const check_item *items, int n) {
  int regressions = 0;
  fprintf(out, "%-10s %-14s %-16s %-22s %-22s %8s %9s  %-12s %s\n", "against", "table", "row", "ours",
          "reference", "diff", "tolerance", "verdict", "why");
  for (int i = 0; i < n; i++) {
    const check_item *it = &items[i];
    char ours[48], ref[48], diff[16] = "-", tol[16] = "-";
    fmt_ms(ours, sizeof ours, it->n ? it->ours : NAN, it->ours_std, it->n);
    fmt_ms(ref, sizeof ref, it->ref, it->ref_std, it->against == AGAINST_BASELINE ? it->ref_n : 0);
    if (it->n && isfinite(it->ref))
      snprintf(diff, sizeof diff, "%+.*f", fabs(it->ref) >= 10 ? 2 : 4, it->ours - it->ref);
    if (isfinite(it->tolerance)) snprintf(tol, sizeof tol, "±%.3g", it->tolerance);
    const char *v = it->verdict == VERDICT_NO_REFERENCE && it->against == AGAINST_BASELINE
                        ? "no-baseline" : verdict_name(it->verdict);
    fprintf(out, "%-10s %-14s %-16s %-22s %-22s %8s %9s  %-12s %s\n",
            it->against == AGAINST_BASELINE ? "baseline" : "published", it->table, it->row, ours, ref,
            diff, tol, v, it->note);
    if (verdict_is_failure(it->verdict)) regressions++;
  }
  return regressions;
}

json_t *check_items_json(const check_item *items, int n) {
  json_t *a = json_array();
  for (int i = 0; i < n; i++) {
    const check_item *it = &items[i];
#define NUM(x) (isfinite(x) ? json_real(x) : json_null())
    json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:i, s:o, s:o, s:o, s:s}",
        "against", it->against == AGAINST_BASELINE ? "baseline" : "published", "table", it->table,
        "row", it->row, "metric", it->metric, "verdict", verdict_name(it->verdict),
        "ours", NUM(it->n ? it->ours : NAN), "ours_std", NUM(it->n ? it->ours_std : NAN), "n", it->n,
        "reference", NUM(it->ref), "reference_std", NUM(it->ref_std), "tolerance", NUM(it->tolerance),
        "note", it->note));
#undef NUM
  }
  return a;
}


// --require-claim: the claim must hold in these results (every row it is evaluated on) to be required.
static int require_claims(json_t *b, json_t *const *results, int nresults, const char *const *claims, int nclaims,
                          json_t *changed) {
  for (int q = 0; q < nclaims; q++) {
    int added = 0;
    for (int k = 0; k < nresults; k++) {
      json_t *ev = claims_evaluate(results[k]);
      const char *table = json_string_value(json_object_get(results[k], "table"));
      int seen = 0, hold = 0;
      size_t i; json_t *c;
      const char *bad = NULL;
      json_array_foreach(ev, i, c) {
        if (strcmp(json_string_value(json_object_get(c, "id")), claims[q])) continue;
        seen++;
        if (!strcmp(json_string_value(json_object_get(c, "verdict")), "holds")) hold++;
        else if (!bad) bad = json_string_value(json_object_get(c, "evidence"));
      }
      if (seen && hold < seen) {
        int rc = igpt_err("claim %s does not hold in the %s results (%s): a baseline can require only a claim that "
                          "holds in its reference run", claims[q], table, bad ? bad : "?");
        json_decref(ev);
        return rc;
      }
      json_decref(ev);
      if (!seen) continue;
      json_t *cl = json_object_get(b, "claims");
      if (!cl) { cl = json_object(); json_object_set_new(b, "claims", cl); }
      json_t *t = json_object_get(cl, table);
      if (!t) { t = json_object(); json_object_set_new(cl, table, t); }
      json_t *req = json_pack("{s:s}", "require", "holds");
      json_t *row0 = json_array_get(json_object_get(results[k], "rows"), 0);  // what it held on
      if (json_is_string(json_object_get(row0, "dataset"))) json_object_set(req, "dataset", json_object_get(row0, "dataset"));
      json_object_set_new(t, claims[q], req);
      json_array_append_new(changed, json_sprintf("%s/claim:%s", table, claims[q]));
      added++;
    }
    if (!added) return igpt_err("claim %s is not among the claims of these results' tables (suite/tables.json)", claims[q]);
  }
  return 0;
}

int baseline_update_claims(const char *path, const char *scale, json_t *const *results, int nresults,
                           const char *reason, const rule_t *dflt, const char *const *claims, int nclaims) {
  if (!reason || !*reason) return igpt_err("a baseline update needs a reason (--reason \"...\")");
  int absent;
  json_t *b = baseline_load(path, &absent);
  if (!b && !absent) return -1;
  if (absent)
    b = json_pack("{s:s, s:s, s:{}, s:[]}", "format", BASELINE_FORMAT, "scale", scale, "tables", "history");
  if (strcmp(json_string_value(json_object_get(b, "scale")), scale)) {
    json_decref(b);
    return igpt_err("%s: holds scale %s, not %s", path, json_string_value(json_object_get(b, "scale")), scale);
  }
  char *now = report_utc_now();
  json_t *changed = json_array(), *tables = json_object_get(b, "tables");
  const char *code = NULL;
  for (int k = 0; k < nresults; k++) {
    const json_t *res = results[k];
    const char *table = json_string_value(json_object_get(res, "table"));
    json_t *cv = json_object_get(res, "code_version");
    code = json_is_string(cv) ? json_string_value(cv) : IGPT_VERSION;
    json_t *trows = json_object_get(tables, table);
    if (!trows) { trows = json_object(); json_object_set_new(tables, table, trows); }
    json_t *row;
    size_t i;
    // the table's rows are what ran now: an entry for a row these results no longer have (rows
    // merged into the one data set that ran) is dropped, and the history says so
    const char *old_id;
    json_t *old_e, *gone = json_array();
    json_object_foreach(trows, old_id, old_e) {
      bool still = false;
      json_array_foreach(json_object_get(res, "rows"), i, row) still |= !strcmp(json_string_value(json_object_get(row, "id")), old_id);
      if (!still) json_array_append_new(gone, json_string(old_id));
    }
    json_array_foreach(gone, i, row) {
      json_object_del(trows, json_string_value(row));
      json_array_append_new(changed, json_sprintf("%s/%s (dropped: no longer a row of these results)", table,
                                                  json_string_value(row)));
    }
    json_decref(gone);
    json_array_foreach(json_object_get(res, "rows"), i, row) {
      double mean, std;
      int n;
      row_stats(row, &mean, &std, &n);
      const char *id = json_string_value(json_object_get(row, "id"));
      if (n == 0) { log_warn("baseline: %s/%s has no number; left as it was", table, id); continue; }
      const char *unit = json_string_value(json_object_get(row, "unit"));
      json_t *old = json_object_get(trows, id), *rule;
      if (dflt) rule = rule_to_json(dflt);  // given explicitly: it replaces the row's rule
      else if (old) rule = json_incref(json_object_get(old, "rule"));
      else if (unit && !strcmp(unit, "%")) rule = rule_to_json(&(rule_t){RULE_SIGMA, 3, 1.0});
      else rule = rule_to_json(&(rule_t){RULE_RELATIVE, 0.02, 0});
      json_t *e = json_pack("{s:s, s:b, s:f, s:f, s:i, s:o, s:s, s:s}", "metric",
                            json_string_value(json_object_get(row, "metric")), "higher_is_better",
                            json_is_true(json_object_get(row, "higher_is_better")), "mean", mean, "std", std,
                            "n", n, "rule", rule, "code_version", code, "updated", now);
      if (unit) json_object_set_new(e, "unit", json_string(unit));
      json_t *ds = json_object_get(row, "dataset");  // the data set that ran: check compares like with like
      if (json_is_string(ds)) json_object_set(e, "dataset", ds);
      json_object_set_new(trows, id, e);
      json_array_append_new(changed, json_sprintf("%s/%s", table, id));
    }
  }
  if (require_claims(b, results, nresults, claims, nclaims, changed)) {
    json_decref(changed); json_decref(b); free(now);
    return -1;
  }
  if (!json_array_size(changed)) {
    json_decref(changed); json_decref(b); free(now);
    return igpt_err("no row of the results produced a number; the baseline at %s is unchanged", path);
  }
  json_array_append_new(json_object_get(b, "history"),
                        json_pack("{s:s, s:s, s:s, s:o}", "date", now, "reason", reason, "code_version",
                                  code ? code : IGPT_VERSION, "rows", changed));
  free(now);
  char *dump = json_dumps(b, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
  char *text = xasprintf("%s\n", dump);
  free(dump);
  char *dir = xstrdup(path), *slash = strrchr(dir, '/');
  int rc = 0;
  if (slash) { *slash = 0; rc = mkdir_p(dir); }
  free(dir);
  if (!rc) rc = file_write_atomic(path, text, strlen(text));
  free(text);
  json_decref(b);
  return rc;
}
