// claims and their statistics: the per-image hex encoding, McNemar's exact p and the paired t
// against closed forms, and the verdicts of the claim kinds on small hand-made results.
#include "testutil.h"
#include "reports/claims.h"
#include "reports/stats.h"
#include <jansson.h>
#include <math.h>

Test(claims, correct_hex_round_trips) {
  uint8_t right[13] = {1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 0};
  char hex[8];
  correct_hex(right, 13, hex);
  cr_assert_str_eq(hex, "b1f0");  // 1011 0001 1111 0(000)
  for (int i = 0; i < 13; i++) cr_assert_eq(correct_bit(hex, i), right[i], "image %d", i);
  cr_assert_eq(correct_bit(hex, 16), -1);
  cr_assert_eq(correct_bit("0z", 5), -1, "a non-hex digit is no outcome");
}

Test(claims, mcnemar_exact_p_matches_the_binomial_tail) {
  // A right and B wrong on 10 images, the reverse on 2, both right on the rest (20 images):
  // p = 2 P(X <= 2), X ~ Binomial(12, 1/2) = 2 (1 + 12 + 66) / 4096
  uint8_t a[20] = {0}, b[20] = {0};
  for (int i = 0; i < 20; i++) a[i] = b[i] = 1;
  for (int i = 0; i < 10; i++) b[i] = 0;
  a[10] = a[11] = 0;
  char ha[8], hb[8];
  correct_hex(a, 20, ha);
  correct_hex(b, 20, hb);
  mcnemar_result m;
  cr_assert_eq(stats_mcnemar(ha, hb, 20, &m), 0);
  cr_assert_eq(m.b, 10);
  cr_assert_eq(m.c, 2);
  cr_assert_float_eq(m.p, 158.0 / 4096.0, 1e-12, "p = %.15g", m.p);
  cr_assert_eq(stats_mcnemar(ha, hb, 24, &m), -1, "outcomes shorter than n must be refused");
  cr_assert_eq(stats_mcnemar(ha, ha, 20, &m), 0);
  cr_assert_float_eq(m.p, 1.0, 0, "no discordant pair: p = 1");
}

Test(claims, paired_t_matches_the_closed_form_for_two_degrees_of_freedom) {
  // d = 1, 2, 3: t = 2 / (1 / sqrt 3) = 2 sqrt 3; with 2 degrees of freedom the two-sided tail is
  // 1 - t / sqrt(2 + t^2) exactly
  double d[3] = {1, 2, 3}, t;
  double p = stats_paired_t(d, 3, &t);
  cr_assert_float_eq(t, 2 * sqrt(3), 1e-12);
  cr_assert_float_eq(p, 1 - t / sqrt(2 + t * t), 1e-9, "p = %.12g", p);
  double same[3] = {2, 2, 2};
  cr_assert_float_eq(stats_paired_t(same, 3, &t), 0, 0, "seeds that agree on a gain: significant");
}

Test(claims, the_smallest_significant_gap_matches_the_binomial_and_t_quantiles) {
  // expected values from scipy.stats 1.10: the widest k with binomtest(k, m, 0.5).pvalue < 0.05
  // gives the gap m - 2k (12 -> 8: the 10-to-2 split of the test above, p = 0.039, is the
  // narrowest; 9 to 3 gives p = 0.15); t.ppf(0.975, 2) / sqrt(3) for sd 1 over 3 seeds
  const int64_t m[] = {12, 5, 6, 16, 17, 703}, gap[] = {8, -1, 6, 10, 9, 53};
  for (int i = 0; i < 6; i++)
    cr_assert_eq(stats_mcnemar_min_gap(m[i], 0.05), gap[i], "m %lld: gap %lld", (long long)m[i],
                 (long long)stats_mcnemar_min_gap(m[i], 0.05));
  cr_assert_eq(stats_mcnemar_min_gap(0, 0.05), -1, "no discordant image: nothing can be significant");
  cr_assert_float_eq(stats_paired_t_min_difference(1.0, 3, 0.05), 2.484137711843753, 1e-9);
  cr_assert(isnan(stats_paired_t_min_difference(1.0, 1, 0.05)), "one seed has no spread");
}

Test(claims, the_difference_interval_matches_clopper_pearson_and_agrees_with_the_test) {
  // expected: scipy.stats 1.10, binomtest(b, b + c).proportion_ci(0.95, method="exact") as
  // (2 pi - 1) (b + c) / n. The cases: the 10-to-2 split above (p 0.039: the interval leaves out
  // 0), the cpu scale's best layer against the last (377 vs 326, p 0.059) and fine-tune against
  // the probe (308 vs 297), and one-sided splits, where a limit is the whole discordant share.
  const int64_t b[] = {10, 377, 308, 0, 16}, c[] = {2, 326, 297, 5, 0}, n[] = {20, 10000, 10000, 40, 40};
  const double lo[] = {0.01903470157670819, -0.0001951697223459235, -0.0038153636132319305, -0.125, 0.23527422863374153};
  const double hi[] = {0.5749649694484058, 0.01035220044033802, 0.006004578323764678, 0.005455937526245347, 0.4};
  for (int i = 0; i < 5; i++) {
    double l, h;
    cr_assert_eq(stats_mcnemar_interval(b[i], c[i], n[i], 0.05, &l, &h), 0);
    // 1e-12: GSL's beta quantiles against scipy's, both to near double precision
    cr_assert_float_eq(l, lo[i], 1e-12, "case %d: low %.17g", i, l);
    cr_assert_float_eq(h, hi[i], 1e-12, "case %d: high %.17g", i, h);
  }
  double l, h;
  cr_assert_eq(stats_mcnemar_interval(0, 0, 40, 0.05, &l, &h), -1, "no discordant image, no interval");
  // the interval leaves out 0 exactly when McNemar's p < alpha, over every split of m = 30
  for (int64_t k = 0; k <= 30; k++) {
    uint8_t ra[40] = {0}, rb[40] = {0};
    for (int i = 0; i < k; i++) ra[i] = 1;
    for (int i = (int)k; i < 30; i++) rb[i] = 1;
    char ha[16], hb[16];
    correct_hex(ra, 40, ha);
    correct_hex(rb, 40, hb);
    mcnemar_result m;
    cr_assert_eq(stats_mcnemar(ha, hb, 40, &m), 0);
    stats_mcnemar_interval(m.b, m.c, 40, 0.05, &l, &h);
    cr_assert_eq(m.p < 0.05, l > 0 || h < 0, "split %lld-%lld: p %g, interval %g..%g", (long long)m.b, (long long)m.c, m.p, l, h);
  }
}

// results with one stand-in probe row: ours right on `ours` of 40 test images, the pixel baseline
// on `pix` of them (the first ones), one seed; the untrained baseline absent.
static json_t *results_with(int ours, int pix, int n_layer) {
  uint8_t a[40] = {0}, b[40] = {0};
  for (int i = 0; i < ours; i++) a[i] = 1;
  for (int i = 0; i < pix; i++) b[i] = 1;
  char ha[16], hb[16];
  correct_hex(a, 40, ha);
  correct_hex(b, 40, hb);
  json_t *lt = json_array(), *lc = json_array();
  for (int l = 0; l <= n_layer; l++) {
    json_array_append_new(lt, json_real(l == n_layer ? 100.0 * pix / 40 : 100.0 * ours / 40));
    json_array_append_new(lc, json_string(l == n_layer ? hb : ha));
  }
  json_t *run = json_pack("{s:i, s:f, s:s, s:i, s:i, s:o, s:o}", "seed", 0, "value", 100.0 * ours / 40, "test_correct", ha,
                          "n_test", 40, "best_layer", n_layer / 2, "layer_test_accuracy", lt, "layer_test_correct", lc);
  json_t *pixrun = json_pack("{s:i, s:f, s:s, s:i}", "seed", 0, "value", 100.0 * pix / 40, "test_correct", hb, "n_test", 40);
  json_t *row = json_pack("{s:s, s:s, s:s, s:b, s:[o], s:{s:{s:s, s:[o]}}, s:[{s:s}]}", "id", "fm/c10", "unit", "%",
                          "metric", "test_accuracy", "higher_is_better", 1, "runs", run, "baselines", "pixels", "label",
                          "raw pixels", "runs", pixrun, "stands_in_for", "id", "c10");
  json_t *claims = json_pack("[{s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:i}, {s:s, s:s, s:s, s:s, s:s}]",
                             "id", "px", "test", "baseline", "baseline", "pixels",
                             "id", "un", "test", "baseline", "baseline", "untrained",
                             "id", "mid", "test", "best-layer-not-last", "min_blocks", 4,
                             "id", "same", "test", "rows", "a", "c10", "relation", "above", "b", "fm/c10");
  return json_pack("{s:s, s:[o], s:o}", "table", "t", "rows", row, "claims", claims);
}

static json_t *claim_of(json_t *ev, const char *id) {
  size_t i; json_t *c;
  json_array_foreach(ev, i, c)
    if (!strcmp(json_string_value(json_object_get(c, "id")), id)) return c;
  cr_assert_fail("claim %s absent", id);
  return NULL;
}

static const char *verdict_of(const json_t *ev, const char *id) {
  size_t i; json_t *c;
  json_array_foreach(ev, i, c)
    if (!strcmp(json_string_value(json_object_get(c, "id")), id)) return json_string_value(json_object_get(c, "verdict"));
  return "(absent)";
}

Test(claims, verdicts_follow_the_evidence) {
  // 36 of 40 against 20 of 40, the 16 extra all ours: McNemar p = 2^-15, holds
  json_t *r = results_with(36, 20, 6), *ev = claims_evaluate(r);
  cr_assert_str_eq(verdict_of(ev, "px"), "holds");
  cr_assert_str_eq(verdict_of(ev, "un"), "cannot-test", "no untrained baseline in these results");
  cr_assert_str_eq(verdict_of(ev, "mid"), "holds", "best layer 3 of 6 beats the last by 16 images");
  cr_assert_str_eq(verdict_of(ev, "same"), "cannot-test", "a row against itself");
  json_decref(ev); json_decref(r);
  // 21 against 20: one discordant image is no evidence either way
  r = results_with(21, 20, 6);
  ev = claims_evaluate(r);
  cr_assert_str_eq(verdict_of(ev, "px"), "inconclusive");
  json_decref(ev); json_decref(r);
  // 25 against 20: 5 discordant images, all ours, p = 1/16: no split of 5 could decide it, and
  // the evidence says so; 36 against 20 says what the 16 needed: a gap of 10 (25 points of 40)
  r = results_with(25, 20, 6);
  ev = claims_evaluate(r);
  json_t *c = claim_of(ev, "px"), *test = json_object_get(c, "test");
  cr_assert_str_eq(json_string_value(json_object_get(c, "verdict")), "inconclusive");
  cr_assert(json_is_null(json_object_get(test, "min_significant_gap")));
  const char *evd = json_string_value(json_object_get(c, "evidence"));
  cr_assert(strstr(evd, "with only 5 images right on one side only, no split of them is"), "%s", evd);
  json_decref(ev); json_decref(r);
  r = results_with(36, 20, 6);
  ev = claims_evaluate(r);
  test = json_object_get(claim_of(ev, "px"), "test");
  cr_assert_eq(json_integer_value(json_object_get(test, "min_significant_gap")), 10);
  cr_assert_float_eq(json_real_value(json_object_get(test, "min_significant_difference")), 25.0, 1e-9);
  // 16 to 0 of 40 in points: the interval above (scipy), in the test and in the evidence
  json_t *iv = json_object_get(test, "interval");
  cr_assert_float_eq(json_real_value(json_array_get(iv, 0)), 23.527422863374153, 1e-9);
  cr_assert_float_eq(json_real_value(json_array_get(iv, 1)), 40.0, 1e-9);
  cr_assert_float_eq(json_real_value(json_object_get(test, "confidence")), 0.95, 1e-12);
  evd = json_string_value(json_object_get(claim_of(ev, "px"), "evidence"));
  cr_assert(strstr(evd, "95 % interval of the difference +23.53 to +40.00 points"), "%s", evd);
  json_decref(ev); json_decref(r);
  // the pixels far ahead: does not hold; a 2-block model has no middle
  r = results_with(20, 36, 2);
  ev = claims_evaluate(r);
  cr_assert_str_eq(verdict_of(ev, "px"), "does-not-hold");
  cr_assert_str_eq(verdict_of(ev, "mid"), "cannot-test");
  json_decref(ev); json_decref(r);
}

// A fine-tune row against its "probe" baseline (the linear probe of the same model), by McNemar on
// the same test images; probe rows are not judged by a fine-tune claim, nor fine-tune rows by a
// probe claim.
Test(claims, finetune_beats_probe_is_judged_on_finetune_rows) {
  uint8_t a[40] = {0}, b[40] = {0};
  for (int i = 0; i < 36; i++) a[i] = 1;
  for (int i = 0; i < 20; i++) b[i] = 1;
  char ha[16], hb[16];
  correct_hex(a, 40, ha);
  correct_hex(b, 40, hb);
  json_t *ft = json_pack("{s:s, s:s, s:s, s:[{s:i, s:f, s:s, s:i}], s:{s:{s:s, s:[{s:i, s:f, s:s, s:i}]}}}", "id", "ft",
                         "eval", "finetune", "unit", "%", "runs", "seed", 0, "value", 90.0, "test_correct", ha, "n_test", 40,
                         "baselines", "probe", "label", "linear probe of the same model", "runs", "seed", 0, "value", 50.0,
                         "test_correct", hb, "n_test", 40);
  json_t *claims = json_pack("[{s:s, s:s, s:s, s:s}, {s:s, s:s, s:s}]", "id", "ftp", "test", "baseline", "baseline", "probe",
                             "eval", "finetune", "id", "px", "test", "baseline", "baseline", "pixels");
  json_t *r = json_pack("{s:s, s:[o], s:o}", "table", "t", "rows", ft, "claims", claims), *ev = claims_evaluate(r);
  cr_assert_str_eq(verdict_of(ev, "ftp"), "holds", "36 of 40 against 20 of 40, the 16 extra all the fine-tune's");
  cr_assert_str_eq(verdict_of(ev, "px"), "cannot-test", "a probe claim in a table of fine-tune rows");
  json_decref(ev);
  json_decref(r);
}

// first `n` of 40 test images right, as the probe writes it
static json_t *right_first(int n) {
  uint8_t r[40] = {0};
  for (int i = 0; i < n; i++) r[i] = 1;
  char h[16];
  correct_hex(r, 40, h);
  return json_string(h);
}

// A run whose number is a probe of 6 layers concatenated (right on the first `cat` images), its
// validation-chosen single layer 2 right on the first `one`.
static json_t *concat_run(int cat, int one) {
  json_t *lt = json_array(), *lc = json_array();
  for (int l = 0; l <= 6; l++) {
    json_array_append_new(lt, json_real(100.0 * (l == 2 ? one : 10) / 40));
    json_array_append_new(lc, right_first(l == 2 ? one : 10));
  }
  return json_pack("{s:i, s:f, s:o, s:i, s:i, s:i, s:o, s:o}", "seed", 0, "value", 100.0 * cat / 40, "test_correct",
                   right_first(cat), "n_test", 40, "concat_layers", 6, "best_layer", 2, "layer_test_accuracy", lt,
                   "layer_test_correct", lc);
}

// "one_layer" claims take the probe side at its best single layer where the probe concatenates
// layers (the paper compares one layer): the probe row's features against the pixels, the
// fine-tune against its probe baseline. A probe of one layer already cannot test them apart.
Test(claims, one_layer_claims_read_the_best_single_layer) {
  json_t *probe = json_pack("{s:s, s:s, s:[o], s:{s:{s:s, s:[{s:i, s:f, s:o, s:i}]}}}", "id", "lp", "unit", "%", "runs",
                            concat_run(36, 20), "baselines", "pixels", "label", "raw pixels", "runs", "seed", 0, "value",
                            75.0, "test_correct", right_first(30), "n_test", 40);
  json_t *ft = json_pack("{s:s, s:s, s:s, s:[{s:i, s:f, s:o, s:i}], s:{s:{s:s, s:[o]}}}", "id", "ft", "eval", "finetune",
                         "unit", "%", "runs", "seed", 0, "value", 90.0, "test_correct", right_first(36), "n_test", 40,
                         "baselines", "probe", "label", "linear probe of the same model", "runs", concat_run(38, 20));
  json_t *claims = json_pack("[{s:s, s:s, s:s}, {s:s, s:s, s:s, s:b}, {s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:b}]",
                             "id", "px", "test", "baseline", "baseline", "pixels",
                             "id", "px1", "test", "baseline", "baseline", "pixels", "one_layer", 1,
                             "id", "ftp", "test", "baseline", "baseline", "probe", "eval", "finetune",
                             "id", "ftp1", "test", "baseline", "baseline", "probe", "eval", "finetune", "one_layer", 1);
  json_t *r = json_pack("{s:s, s:[o, o], s:o}", "table", "t", "rows", probe, ft, "claims", claims), *ev = claims_evaluate(r);
  cr_assert_str_eq(verdict_of(ev, "px"), "holds", "the concatenation 36 against the pixels' 30, 6 discordant: p = 1/32");
  cr_assert_str_eq(verdict_of(ev, "px1"), "does-not-hold", "layer 2 alone 20 against 30, 10 discordant: p = 2^-9");
  cr_assert_str_eq(verdict_of(ev, "ftp"), "inconclusive", "36 against the concatenation's 38: 2 discordant");
  cr_assert_str_eq(verdict_of(ev, "ftp1"), "holds", "36 against layer 2's 20: 16 discordant");
  json_t *c = json_array_get(ev, 3);
  cr_assert_float_eq(json_real_value(json_object_get(c, "b")), 50.0, 1e-9, "the probe side is layer 2's number");
  const char *evd = json_string_value(json_object_get(c, "evidence"));
  cr_assert(evd && strstr(evd, "best single layer"), "%s", evd ? evd : "(none)");
  json_decref(ev);
  // a probe of one layer already: the one_layer claim is the other one, not a second test
  json_object_del(json_array_get(json_object_get(probe, "runs"), 0), "concat_layers");
  ev = claims_evaluate(r);
  cr_assert_str_eq(verdict_of(ev, "px1"), "cannot-test");
  cr_assert_str_eq(verdict_of(ev, "px"), "holds");
  json_decref(ev);
  json_decref(r);
}

// A low-data row's runs are one seed's label subsets: the row and its baseline pair by (seed,
// subset), the same labels on both sides, and the evidence says subsets, not seeds. A baseline
// subset with no counterpart in the row is not paired with another.
Test(claims, low_data_runs_pair_by_label_subset) {
  json_t *runs = json_array(), *pix = json_array();
  double ours[4] = {60, 62, 58, 61}, px[4] = {55, 58, 54, 57};
  for (int i = 0; i < 4; i++) {
    json_array_append_new(runs, json_pack("{s:i, s:i, s:f}", "seed", 0, "subset", i, "value", ours[i]));
    json_array_append_new(pix, json_pack("{s:i, s:i, s:f}", "seed", 0, "subset", i, "value", px[i]));
  }
  json_array_append_new(pix, json_pack("{s:i, s:i, s:f}", "seed", 0, "subset", 9, "value", 99.0));  // no partner
  json_t *row = json_pack("{s:s, s:s, s:i, s:o, s:{s:{s:s, s:o}}}", "id", "ld", "unit", "%", "labels_per_class", 4, "runs", runs,
                          "baselines", "pixels", "label", "raw pixels", "runs", pix);
  json_t *claims = json_pack("[{s:s, s:s, s:s}]", "id", "px", "test", "baseline", "baseline", "pixels");
  json_t *r = json_pack("{s:s, s:[o], s:o}", "table", "t", "rows", row, "claims", claims), *ev = claims_evaluate(r);
  json_t *c = json_array_get(ev, 0), *test = json_object_get(c, "test");
  cr_assert_str_eq(json_string_value(json_object_get(c, "verdict")), "holds", "ours ahead by 4 on each of the 4 subsets");
  cr_assert_eq(json_integer_value(json_object_get(test, "n")), 4, "4 pairs: the unpartnered subset left out");
  cr_assert_str_eq(json_string_value(json_object_get(test, "name")), "paired t over seeds and label subsets");
  const char *evd = json_string_value(json_object_get(c, "evidence"));
  cr_assert(evd && strstr(evd, "label subsets") && !strstr(evd, "4 seeds"), "%s", evd ? evd : "(none)");
  cr_assert_float_eq(json_real_value(json_object_get(c, "difference")), 4.25, 1e-9);
  // differences 5, 4, 4, 4: sd 0.5 over 4 pairs, so t.ppf(0.975, 3) * 0.5 / 2 (scipy 1.10)
  cr_assert_float_eq(json_real_value(json_object_get(test, "min_significant_difference")), 0.7956115763211, 1e-9);
  // the mean difference's interval: 4.25 -+ that half-width
  cr_assert_float_eq(json_real_value(json_array_get(json_object_get(test, "interval"), 0)), 4.25 - 0.7956115763211, 1e-9);
  cr_assert_float_eq(json_real_value(json_array_get(json_object_get(test, "interval"), 1)), 4.25 + 0.7956115763211, 1e-9);
  json_decref(ev);
  json_decref(r);
}

// A row of one seed right on the first `right` of 40 test images (per-image outcomes included).
static json_t *row_right(const char *id, int right) {
  uint8_t r[40] = {0};
  for (int i = 0; i < right; i++) r[i] = 1;
  char hex[16];
  correct_hex(r, 40, hex);
  return json_pack("{s:s, s:s, s:[{s:i, s:f, s:s, s:i}]}", "id", id, "unit", "%", "runs", "seed", 0, "value",
                   100.0 * right / 40, "test_correct", hex, "n_test", 40);
}

// "gap": (a - b) against (c - d) on the same images. BERT probed right on 20 of 40 against AR's
// 36, fine-tuned on 34 against 36: on 14 images (20..33) only the fine-tune closed the gap, so
// each image's (a - b) - (c - d) is 1 there and 0 elsewhere. Expected t and p from scipy 1.10's
// ttest_1samp of those 40 values against 0: t = 4.58257569495584, p = 4.629107098940451e-05.
Test(claims, a_gap_claim_tests_the_difference_of_differences_per_image) {
  json_t *claims = json_pack("[{s:s, s:s, s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:s, s:s, s:s}]",
                             "id", "closes", "test", "gap", "a", "ft-bert", "b", "ft-ar", "c", "pr-bert", "d", "pr-ar",
                             "relation", "above",
                             "id", "same", "test", "gap", "a", "ft-bert", "b", "ft-ar", "c", "pr-bert", "d", "pr-bert",
                             "relation", "above");
  json_t *r = json_pack("{s:s, s:[o, o, o, o], s:o}", "table", "t", "rows", row_right("ft-bert", 34), row_right("ft-ar", 36),
                        row_right("pr-bert", 20), row_right("pr-ar", 36), "claims", claims);
  json_t *ev = claims_evaluate(r), *c = claim_of(ev, "closes"), *test = json_object_get(c, "test");
  cr_assert_str_eq(json_string_value(json_object_get(c, "verdict")), "holds", "%s",
                   json_string_value(json_object_get(c, "evidence")));
  cr_assert_float_eq(json_real_value(json_object_get(c, "a")), -5.0, 1e-9, "fine-tuned: 34 - 36 of 40");
  cr_assert_float_eq(json_real_value(json_object_get(c, "b")), -40.0, 1e-9, "probed: 20 - 36 of 40");
  cr_assert_float_eq(json_real_value(json_object_get(c, "difference")), 35.0, 1e-9);
  cr_assert_float_eq(json_real_value(json_object_get(test, "t")), 4.58257569495584, 1e-9);
  cr_assert_float_eq(json_real_value(json_object_get(test, "p")), 4.629107098940451e-05, 1e-10);
  cr_assert_eq(json_integer_value(json_object_get(test, "n")), 40);
  // ttest_1samp(z).confidence_interval(0.95) x 100 (scipy 1.10), z: 14 ones among 40; 1e-7 points:
  // GSL's t quantile at 39 degrees of freedom and scipy's agree to about 4e-9 of the half-width
  // (measured: 6.3e-8 of 15.45 points)
  json_t *iv = json_object_get(test, "interval");
  cr_assert_float_eq(json_real_value(json_array_get(iv, 0)), 19.55144298246061, 1e-7);
  cr_assert_float_eq(json_real_value(json_array_get(iv, 1)), 50.448557017539386, 1e-7);
  cr_assert_str_eq(verdict_of(ev, "same"), "cannot-test", "c and d one row");
  json_decref(ev); json_decref(r);
  // the fine-tune widening it instead (BERT fine-tuned on 6 of 40): does not hold
  claims = json_pack("[{s:s, s:s, s:s, s:s, s:s, s:s, s:s}]", "id", "closes", "test", "gap", "a", "ft-bert", "b", "ft-ar",
                     "c", "pr-bert", "d", "pr-ar", "relation", "above");
  r = json_pack("{s:s, s:[o, o, o, o], s:o}", "table", "t", "rows", row_right("ft-bert", 6), row_right("ft-ar", 36),
                row_right("pr-bert", 20), row_right("pr-ar", 36), "claims", claims);
  ev = claims_evaluate(r);
  cr_assert_str_eq(verdict_of(ev, "closes"), "does-not-hold");
  json_decref(ev); json_decref(r);
  // a row that did not run: cannot test, naming it
  claims = json_pack("[{s:s, s:s, s:s, s:s, s:s, s:s, s:s}]", "id", "closes", "test", "gap", "a", "ft-bert", "b", "ft-ar",
                     "c", "pr-bert", "d", "pr-ar", "relation", "above");
  r = json_pack("{s:s, s:[o, o, o], s:o}", "table", "t", "rows", row_right("ft-bert", 6), row_right("ft-ar", 36),
                row_right("pr-bert", 20), "claims", claims);
  ev = claims_evaluate(r);
  c = claim_of(ev, "closes");
  cr_assert_str_eq(json_string_value(json_object_get(c, "verdict")), "cannot-test");
  cr_assert(strstr(json_string_value(json_object_get(c, "evidence")), "pr-ar did not run"));
  json_decref(ev); json_decref(r);
}

// A baseline can require a claim only where it holds; then a change that breaks it is a regression
// of igpt check even though no number has a baseline entry that moved past its tolerance.
#include "reports/check.h"
Test(claims, a_required_claim_that_breaks_fails_the_check) {
  char *dir = test_tmpdir("claims-check"), *path = xasprintf("%s/smoke.json", dir);
  json_t *good = results_with(36, 20, 6), *bad = results_with(20, 36, 6);
  json_object_set_new(good, "scale", json_string("smoke"));
  json_object_set_new(bad, "scale", json_string("smoke"));
  const char *req[] = {"px"};
  cr_assert_eq(baseline_update_claims(path, "smoke", &bad, 1, "try", NULL, req, 1), -1,
               "a claim that does not hold cannot be required");
  cr_assert(strstr(igpt_errmsg(), "does not hold"), "%s", igpt_errmsg());
  cr_assert_eq(baseline_update_claims(path, "smoke", &good, 1, "reference", NULL, req, 1), 0, "%s", igpt_errmsg());
  int absent;
  json_t *b = baseline_load(path, &absent);
  cr_assert_not_null(b, "%s", igpt_errmsg());
  check_item *items = NULL;
  int n = 0;
  check_results(good, AGAINST_BASELINE, b, &items, &n);
  FILE *null = fopen("/dev/null", "w");
  cr_assert_eq(check_print(null, items, n), 0, "the reference itself regresses");
  free(items);
  items = NULL;
  n = 0;
  check_results(bad, AGAINST_BASELINE, b, &items, &n);
  int regressions = check_print(null, items, n), claim_fails = 0;
  for (int i = 0; i < n; i++) claim_fails += !strncmp(items[i].row, "claim px", 8) && items[i].verdict == VERDICT_FAIL;
  cr_assert_eq(claim_fails, 1, "the broken claim is not reported");
  cr_assert_geq(regressions, 1);
  fclose(null);
  free(items);
  json_decref(b); json_decref(good); json_decref(bad);
  rm_rf(dir);
  free(path); free(dir);
}
