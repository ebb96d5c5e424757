// check: regression verdicts for results against our own baselines (suite/baselines/<scale>.json,
// reports/baseline.schema.json) or against the published numbers, and baseline updates.
// Against a baseline every scale is judged; against the published numbers only paper and
// released are (smoke and mini are never presented as reproductions). A row whose result moved
// past its tolerance in the worse direction is a regression; beyond it in the better direction it
// passes and says the baseline may move; a row that produced no number where the reference has
// one is a regression too. A claim the baseline requires (claims.h) that does not hold is one too.
#pragma once
#include "reports/verdict.h"
#include <jansson.h>
#include <stdio.h>

#define BASELINE_FORMAT "igpt-baseline/1"

typedef enum { AGAINST_BASELINE, AGAINST_PUBLISHED } check_against;

typedef struct {
  char table[64], row[96], metric[64], unit[16];
  check_against against;
  verdict_t verdict;
  int n, ref_n;                    // seeds behind ours / the reference
  double ours, ours_std, ref, ref_std, tolerance;  // NAN when absent
  char note[256];
} check_item;

// Loads a baseline file; *absent = 1 (and NULL, no error) when the file does not exist.
json_t *baseline_load(const char *path, int *absent);
// Appends one item per row of results (checked, results_load) to *items (realloc'd, *n grows).
// baseline may be NULL (absent): rows then get VERDICT_NO_REFERENCE with a clear note.
void check_results(const json_t *results, check_against against, const json_t *baseline,
                   check_item **items, int *n);
// Prints the verdict table; returns the number of regressions.
int check_print(FILE *out, const check_item *items, int n);
json_t *check_items_json(const check_item *items, int n);
// Writes every row of the results (n >= 1) into the baseline at path (created if absent), keeping
// an existing row's rule, with the reason in history; atomic. dflt is the rule for new rows when
// not NULL, else: sigma 3 with floor 1 point for '%' metrics, relative 2% otherwise. Each of
// claims[nclaims] (claim ids of the results' tables; none: NULL, 0) is required to hold from now
// on (baseline "claims"): refused unless the claim holds in these results.
int baseline_update_claims(const char *path, const char *scale, json_t *const *results, int nresults,
                           const char *reason, const rule_t *dflt, const char *const *claims, int nclaims);
