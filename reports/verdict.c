// verdict: tolerance rules and direction-aware judgement. See verdict.h.
#include "verdict.h"
#include "jcheck.h"
#include "util.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

int rule_from_json(const json_t *j, rule_t *r, const char *file, const char *path) {
  int err = 0;
  json_t *kind = jc_get(j, "kind", JC_STRING, true, file, path, &err);
  json_t *tol = jc_get(j, "tolerance", JC_NUMBER, true, file, path, &err);
  json_t *fl = jc_get(j, "floor", JC_NUMBER, false, file, path, &err);
  if (err) return -1;
  const char *k = json_string_value(kind);
  if (!strcmp(k, "absolute")) r->kind = RULE_ABSOLUTE;
  else if (!strcmp(k, "sigma")) r->kind = RULE_SIGMA;
  else if (!strcmp(k, "relative")) r->kind = RULE_RELATIVE;
  else return igpt_err("%s: %s.kind: expected absolute, sigma or relative, found '%s'", file, path, k);
  r->tolerance = json_number_value(tol);
  r->floor = fl ? json_number_value(fl) : 0;
  if (!(r->tolerance >= 0) || !(r->floor >= 0) || !isfinite(r->tolerance) || !isfinite(r->floor))
    return igpt_err("%s: %s: tolerance and floor must be finite and >= 0", file, path);
  return 0;
}

json_t *rule_to_json(const rule_t *r) {
  static const char *kinds[] = {"absolute", "sigma", "relative"};
  json_t *j = json_pack("{s:s, s:f}", "kind", kinds[r->kind], "tolerance", r->tolerance);
  if (r->kind == RULE_SIGMA && r->floor > 0) json_object_set_new(j, "floor", json_real(r->floor));
  return j;
}

const char *rule_describe(const rule_t *r, const char *unit) {
  static _Thread_local char buf[96];
  const char *u = unit && !strcmp(unit, "%") ? " points" : "";
  switch (r->kind) {
    case RULE_ABSOLUTE: snprintf(buf, sizeof buf, "±%g%s", r->tolerance, u); break;
    case RULE_SIGMA:
      if (r->floor > 0) snprintf(buf, sizeof buf, "±%gσ (at least %g%s)", r->tolerance, r->floor, u);
      else snprintf(buf, sizeof buf, "±%gσ", r->tolerance);
      break;
    case RULE_RELATIVE: snprintf(buf, sizeof buf, "±%g%% relative", 100 * r->tolerance); break;
  }
  return buf;
}

double rule_tolerance(const rule_t *r, double ours_se, double ref, double ref_se) {
  switch (r->kind) {
    case RULE_ABSOLUTE: return r->tolerance;
    case RULE_SIGMA: {
      double s = r->tolerance * sqrt(ours_se * ours_se + ref_se * ref_se);
      return s > r->floor ? s : r->floor;
    }
    case RULE_RELATIVE: return r->tolerance * fabs(ref);
  }
  return 0;
}

verdict_t verdict_judge(const rule_t *r, bool higher_is_better, double ours, double ours_se,
                        double ref, double ref_se, double *tol_out) {
  double tol = rule_tolerance(r, ours_se, ref, ref_se);
  if (tol_out) *tol_out = tol;
  double gain = higher_is_better ? ours - ref : ref - ours;  // > 0: ours is better
  if (gain < -tol) return VERDICT_FAIL;
  if (gain > tol) return VERDICT_BETTER;
  return VERDICT_PASS;
}

const char *verdict_name(verdict_t v) {
  static const char *names[] = {"pass", "better", "fail", "not-judged", "no-result", "no-reference"};
  return v < VERDICT_COUNT ? names[v] : "?";
}

bool verdict_is_failure(verdict_t v) { return v == VERDICT_FAIL; }
