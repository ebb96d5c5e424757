// claims: the paper's qualitative findings as checks on one table's results. The table lists its
// claims (suite/tables.json "claims", copied into results.json); each is evaluated from the
// numbers this run produced and gets a verdict with its statistics:
//   holds / does-not-hold   the difference is significant at alpha = 0.05 (two-sided), in the
//                           claimed direction or against it;
//   inconclusive            neither way significant at this scale;
//   cannot-test             the evidence is not in this run, and why (a row not run, a 2-block
//                           model has no middle layer, no baseline).
// The test: with 3 or more seeds behind both numbers, Student's t on the per-seed differences (the
// training's own spread); else McNemar's exact test on the first shared seed's per-image outcomes
// on the same test images; neither available: inconclusive. Low-data rows (independent subsets)
// use Welch's t over their subsets.
// Kinds ("test" in a claim): "baseline" (every probe row against its "pixels" or "untrained"
// baseline, or with "eval": "finetune" every fine-tune row against its "probe"; "one_layer" takes
// the probe side at its validation-chosen single layer where the row's probe concatenates layers),
// "best-layer-not-last" (the validation-chosen layer against the last, models of at
// least "min_blocks" blocks), "rows" (row "a" in "relation" above|below|equal|not_below to row
// "b", with "tolerance" points for equal/not_below), "increasing" (the "rows" rise with labels),
// "checkpoints" (lower generative loss, better probe: the checkpoint with the lowest test loss
// against the one with the highest, from the checkpoints seed 0's pretraining kept), "gap" (a
// difference of differences: (a - b) in "relation" above|below to (c - d), e.g. BERT's deficit to
// AR after fine-tuning against after probing; paired t over seeds, else t over the test images of
// each image's (a_i - b_i) - (c_i - d_i)).
#pragma once
#include <jansson.h>

#define CLAIMS_ALPHA 0.05

// The verdicts of results["claims"]: an array of {id, claim, source, row, verdict, evidence,
// test: {name, p, alpha, n, ...}}, empty when the table lists none. Never NULL.
json_t *claims_evaluate(const json_t *results);

