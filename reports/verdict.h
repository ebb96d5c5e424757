// verdict: the tolerance rules and the direction-aware judgement shared by reports (ours against
// the published number) and checks (ours against our own baseline).
//   absolute: tolerance in the metric's units (points of accuracy);
//   sigma:    k * sqrt(ours_se^2 + ref_se^2), the standard error of the difference of two means
//             (se = std over seeds / sqrt(n)), never below floor (seeds that agree by chance
//             must not shrink the tolerance to zero);
//   relative: a fraction of |reference|.
// A difference beyond the tolerance in the worse direction fails; beyond it in the better
// direction passes as "better" (the reference may move); inside it passes.
#pragma once
#include <jansson.h>
#include <stdbool.h>

typedef enum { RULE_ABSOLUTE, RULE_SIGMA, RULE_RELATIVE } rule_kind;
typedef struct { rule_kind kind; double tolerance, floor; } rule_t;

typedef enum { VERDICT_PASS, VERDICT_BETTER, VERDICT_FAIL, VERDICT_NOT_JUDGED, VERDICT_NO_RESULT,
               VERDICT_NO_REFERENCE, VERDICT_COUNT } verdict_t;

// Reads {"kind", "tolerance", "floor"?}; errors name file and path.
int rule_from_json(const json_t *j, rule_t *r, const char *file, const char *path);
json_t *rule_to_json(const rule_t *r);
// "±1 point", "3σ (min 0.5)", "±2%": the rule in words; static buffer per thread.
const char *rule_describe(const rule_t *r, const char *unit);
// The rule evaluated to metric units.
double rule_tolerance(const rule_t *r, double ours_se, double ref, double ref_se);
// Judges ours (mean and its standard error) against a reference (value and its standard error;
// 0 when unknown).
// *tol_out (may be NULL) receives the tolerance in metric units.
verdict_t verdict_judge(const rule_t *r, bool higher_is_better, double ours, double ours_se,
                        double ref, double ref_se, double *tol_out);
const char *verdict_name(verdict_t v);  // "pass", "better", "fail", "not-judged", ...
bool verdict_is_failure(verdict_t v);
