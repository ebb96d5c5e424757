// verdict: tolerance rules and direction-aware judgement. See verdict.h.
#include "reports/verdict.h"
#include "base/jsonpath.h"
#include "base/util.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[] = {"absolute", "sigma", "relative", NULL};  // rule_kind's order

int rule_from_json(const json_t *j, rule_t *r, const char *file, const char *path) {
  jp_doc doc = {.file = file};
  jp c = jp_at(&doc, path, j);
  int kind = jp_enum(&c, "kind", JP_REQUIRED, kind_names);
  json_t *tol = jp_get(&c, "tolerance", JP_NUMBER, JP_REQUIRED);
  json_t *fl = jp_get(&c, "floor", JP_NUMBER, JP_OPTIONAL);
  if (jp_failed(&c)) return -1;
  r->kind = (rule_kind)kind;
  r->tolerance = json_number_value(tol);
  r->floor = fl ? json_number_value(fl) : 0;
  if (!(r->tolerance >= 0) || !(r->floor >= 0) || !isfinite(r->tolerance) || !isfinite(r->floor))
    return jp_fail(&c, "tolerance and floor must be finite and >= 0");
  return 0;
}

json_t *rule_to_json(const rule_t *r) {
  json_t *j = json_pack("{s:s, s:f}", "kind", kind_names[r->kind], "tolerance", r->tolerance);
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
