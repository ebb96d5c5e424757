// report: results.json -> report.json + report.html. The report validates against its schema,
// opens with the scale, embeds images, loads nothing, escapes every string from data, judges only
// at judged scales and in the right direction, and refuses malformed results naming the field.
#include "testutil.h"
#include "reports/pngio.h"
#include "reports/report.h"
#include "reports/results.h"
#include "reports/verdict.h"
#include <jansson.h>

static json_t *fixture(void) {
  char *p = repo_path("tests/fixtures/reports/linear-probe-smoke/results.json");
  json_t *r = results_load(p);
  cr_assert_not_null(r, "%s", igpt_errmsg());
  free(p);
  return r;
}

static char *write_results(const char *tag, json_t *res) {
  char *dir = test_tmpdir(tag);
  char *p = xasprintf("%s/results.json", dir);
  cr_assert_eq(json_dump_file(res, p, JSON_INDENT(1)), 0);
  free(p);
  return dir;
}

static char *slurp(const char *dir, const char *name) {
  char *p = xasprintf("%s/%s", dir, name);
  uint8_t *d;
  size_t n;
  cr_assert_eq(file_read_all(p, &d, &n), 0, "%s", igpt_errmsg());
  free(p);
  d = xrealloc(d, n + 1);
  d[n] = 0;
  return (char *)d;
}

static int validate(const char *schema, const char *file) {
  if (run_cmd("/usr/bin/python3 -c 'import jsonschema' >/dev/null 2>&1") != 0) return -2;
  char *s = repo_path(schema), *py = repo_path("ci/validate-json.py");
  char *cmd = xasprintf("/usr/bin/python3 '%s' '%s' '%s'", py, s, file);
  int rc = run_cmd(cmd);
  free(cmd); free(py); free(s);
  return rc;
}

Test(report, fixture_renders_and_validates) {
  json_t *res = fixture();
  char *dir = write_results("rep", res);
  json_t *rep = NULL;
  cr_assert_eq(report_render_dir(dir, &rep), 0, "%s", igpt_errmsg());
  // the scale is the first key, and smoke numbers are not judged
  void *it = json_object_iter(rep);
  cr_assert_str_eq(json_object_iter_key(it), "scale");
  json_t *row0 = json_array_get(json_object_get(rep, "rows"), 0);
  cr_assert_str_eq(json_string_value(json_object_get(row0, "verdict")), "not-judged");
  // ours = mean ± sample std of the fixture's three seeds, computed here independently
  json_t *runs = json_object_get(json_array_get(json_object_get(res, "rows"), 0), "runs");
  double v[3], m = 0, ss = 0;
  for (int i = 0; i < 3; i++) { v[i] = json_number_value(json_object_get(json_array_get(runs, i), "value")); m += v[i] / 3; }
  for (int i = 0; i < 3; i++) ss += (v[i] - m) * (v[i] - m);
  json_t *ours = json_object_get(row0, "ours");
  cr_assert_float_eq(json_number_value(json_object_get(ours, "mean")), m, 1e-9);
  cr_assert_float_eq(json_number_value(json_object_get(ours, "std")), sqrt(ss / 2), 1e-9);
  cr_assert_float_eq(json_number_value(json_object_get(row0, "difference")), m - 96.3, 1e-9);
  char *rp = xasprintf("%s/report.json", dir);
  int vr = validate("reports/report.schema.json", rp);
  if (vr != -2) cr_assert_eq(vr, 0, "report.json does not validate");
  char *html = slurp(dir, "report.html");
  char *body = strstr(html, "<body>");
  cr_assert_not_null(body);
  cr_assert(strstr(body, "Scale: smoke") && strstr(body, "Scale: smoke") < strstr(body, "<h1>"),
            "report.html must open with the scale");
  cr_assert_not_null(strstr(body, "not a reproduction"));
  cr_assert_not_null(strstr(html, "<svg"), "probe/loss charts missing");
  cr_assert(!strstr(html, "src=\"http") && !strstr(html, "href=") && !strstr(html, "url("),
            "report.html must load no external asset");
  cr_assert_null(strstr(html, "<script"), "report.html must carry no script");
  free(html); free(rp);
  json_decref(rep);
  json_decref(res);
  rm_rf(dir);
  free(dir);
}

// A fine-tune row's "probe" baseline (the linear probe of the same model) gets its own column, with
// our gain over it; a table without one keeps the two baseline columns.
Test(report, finetune_rows_show_the_probe_baseline) {
  json_t *res = fixture();
  char *dir0 = write_results("rep-noprobe", res);
  cr_assert_eq(report_render_dir(dir0, NULL), 0, "%s", igpt_errmsg());
  char *html0 = slurp(dir0, "report.html");
  cr_assert_null(strstr(html0, ">linear probe</th>"), "a probe column without a probe baseline");
  json_t *row0 = json_array_get(json_object_get(res, "rows"), 0);
  json_object_set_new(row0, "eval", json_string("finetune"));
  json_object_set_new(row0, "baselines", json_pack("{s:{s:s, s:[{s:i, s:f, s:s, s:s}]}}", "probe", "label",
                                                   "linear probe of the same model", "runs", "seed", 0, "value", 30.0,
                                                   "status", "done", "job", "probejob"));
  char *dir = write_results("rep-probe", res);
  json_t *rep = NULL;
  cr_assert_eq(report_render_dir(dir, &rep), 0, "%s", igpt_errmsg());
  json_t *b = json_object_get(json_object_get(json_array_get(json_object_get(rep, "rows"), 0), "baselines"), "probe");
  cr_assert_not_null(b, "the probe baseline is not in report.json");
  cr_assert_float_eq(json_number_value(json_object_get(b, "mean")), 30.0, 1e-12);
  char *html = slurp(dir, "report.html");
  cr_assert_not_null(strstr(html, ">linear probe</th>"), "no probe column");
  cr_assert_not_null(strstr(html, "30.00 %"), "the probe baseline's value is not shown");
  free(html); free(html0);
  json_decref(rep);
  json_decref(res);
  rm_rf(dir); rm_rf(dir0);
  free(dir); free(dir0);
}

// A probe row whose number is a concatenation of layers: the layer chart draws that number as a
// flat line beside the single layers' curve, so the row's number is on the chart it explains.
Test(report, a_concatenated_probe_is_drawn_on_the_layer_chart) {
  json_t *res = fixture();
  json_object_set_new(json_array_get(json_object_get(res, "rows"), 0), "concat_layers", json_integer(3));
  char *dir = write_results("rep-concat", res);
  json_t *rep = NULL;
  cr_assert_eq(report_render_dir(dir, &rep), 0, "%s", igpt_errmsg());
  cr_assert_eq(json_integer_value(json_object_get(json_array_get(json_object_get(rep, "rows"), 0), "concat_layers")), 3);
  char *html = slurp(dir, "report.html");
  cr_assert_not_null(strstr(html, "3 layers concatenated<"), "no concatenation line in the chart");
  free(html);
  json_decref(rep);
  json_decref(res);
  rm_rf(dir);
  free(dir);
}

// The layer chart's legend names rows by what tells them apart (the shared "Fashion-MNIST 16x16
// (CIFAR-10, " left out, where it used to clip every entry to the same 26 characters), and draws
// the raw pixels, which no model's row owns, once.
Test(report, the_layer_legend_names_rows_by_their_difference) {
  json_t *res = fixture(), *rows = json_object_get(res, "rows");
  const char *labels[2] = {"Fashion-MNIST 16x16 (CIFAR-10, AR linear probe)", "Fashion-MNIST 16x16 (CIFAR-10, BERT linear probe)"};
  for (int i = 0; i < 2; i++) {
    json_t *row = json_array_get(rows, i);
    json_object_set_new(row, "label", json_string(labels[i]));
    json_object_set_new(row, "baselines", json_pack("{s:{s:s, s:[{s:i, s:f, s:s, s:s}]}}", "pixels", "label", "raw pixels",
                                                    "runs", "seed", 0, "value", 40.0, "status", "done", "job", "pixjob"));
  }
  char *dir = write_results("rep-legend", res);
  cr_assert_eq(report_render_dir(dir, NULL), 0, "%s", igpt_errmsg());
  char *html = slurp(dir, "report.html");
  cr_assert_not_null(strstr(html, "class=\"lg\">AR linear probe<"), "no short AR entry");
  cr_assert_not_null(strstr(html, "class=\"lg\">BERT linear probe<"), "no short BERT entry");
  cr_assert_not_null(strstr(html, "class=\"lg\">STL-10<"), "a label sharing nothing is kept whole");
  const char *px = strstr(html, "class=\"lg\">raw pixels<");
  cr_assert(px && !strstr(px + 1, "class=\"lg\">raw pixels<"), "the raw pixels must be drawn once");
  free(html);
  json_decref(res);
  rm_rf(dir);
  free(dir);
}

Test(report, strings_from_data_are_escaped) {
  json_t *res = fixture();
  const char *evil = "<script>alert('x')</script>&\"";
  json_t *row0 = json_array_get(json_object_get(res, "rows"), 0);
  json_object_set_new(row0, "label", json_string(evil));
  json_object_set_new(row0, "model", json_string(evil));
  json_object_set_new(json_object_get(row0, "published"), "source", json_string(evil));
  json_object_set_new(json_array_get(json_object_get(res, "loss_curves"), 0), "name", json_string(evil));
  json_object_set_new(res, "notes", json_pack("[s]", evil));
  json_object_set_new(json_object_get(res, "environment"), "cpu", json_string(evil));
  char *dir = write_results("esc", res);
  cr_assert_eq(report_render_dir(dir, NULL), 0, "%s", igpt_errmsg());
  char *html = slurp(dir, "report.html");
  cr_assert_null(strstr(html, "<script"), "a <script> from data reached the HTML unescaped");
  cr_assert_not_null(strstr(html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"),
                     "the escaped class name is not shown as text");
  free(html);
  json_decref(res);
  rm_rf(dir);
  free(dir);
}

Test(report, images_embedded_as_png) {
  json_t *res = fixture();
  char *dir = test_tmpdir("img");
  uint8_t px[4 * 6 * 3];
  for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 11);
  char *pp = xasprintf("%s/samples.png", dir);
  cr_assert_eq(pngio_write(pp, px, 6, 4), 0, "%s", igpt_errmsg());
  uint8_t *back;
  int w, h;
  cr_assert_eq(pngio_read(pp, &back, &w, &h), 0, "%s", igpt_errmsg());
  cr_assert(w == 6 && h == 4 && !memcmp(back, px, sizeof px), "PNG round trip differs");
  free(back);
  json_object_set_new(res, "images", json_pack("[{s:s, s:s, s:s}]", "kind", "samples", "path",
                                               "samples.png", "title", "<b>samples</b>"));
  char *rp = xasprintf("%s/results.json", dir);
  cr_assert_eq(json_dump_file(res, rp, 0), 0);
  json_t *rep;
  cr_assert_eq(report_render_dir(dir, &rep), 0, "%s", igpt_errmsg());
  json_t *im = json_array_get(json_object_get(rep, "images"), 0);
  cr_assert_eq(json_integer_value(json_object_get(im, "width")), 6);
  char *jp = xasprintf("%s/report.json", dir);
  int vr = validate("reports/report.schema.json", jp);
  if (vr != -2) cr_assert_eq(vr, 0, "report.json with images does not validate");
  free(jp);
  char *html = slurp(dir, "report.html");
  cr_assert_not_null(strstr(html, "src=\"data:image/png;base64,iVBORw0KGgo"), "PNG not embedded");
  cr_assert_null(strstr(html, "<b>samples"), "image title not escaped");
  free(html); free(rp); free(pp);
  json_decref(rep);
  json_decref(res);
  rm_rf(dir);
  free(dir);
}

Test(report, judged_scale_verdicts) {
  json_t *res = fixture();
  json_object_set_new(res, "scale", json_string("paper"));
  json_t *rows = json_object_get(res, "rows");
  // set every run of row r to value v (std 0), published 96.3, rule absolute 1.0
  double vals[3] = {95.8, 94.0, 97.9};  // inside, worse beyond, better beyond
  const char *want[3] = {"pass", "fail", "better"};
  for (int r = 0; r < 3; r++) {
    json_t *row = json_array_get(rows, r), *run;
    json_object_set_new(json_object_get(row, "published"), "value", json_real(96.3));
    size_t i;
    json_array_foreach(json_object_get(row, "runs"), i, run) json_object_set_new(run, "value", json_real(vals[r]));
  }
  char *dir = write_results("judged", res);
  json_t *rep = NULL;
  cr_assert_eq(report_render_dir(dir, &rep), 0, "%s", igpt_errmsg());
  char *jp = xasprintf("%s/report.json", dir);
  int vr = validate("reports/report.schema.json", jp);
  if (vr != -2) cr_assert_eq(vr, 0, "judged report.json does not validate");
  free(jp);
  rm_rf(dir);
  free(dir);
  for (int r = 0; r < 3; r++)
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(rep, "rows"), r), "verdict")),
                     want[r], "row %d", r);
  cr_assert(json_is_true(json_object_get(json_object_get(rep, "scale"), "judged")));
  json_decref(rep);
  json_decref(res);
}

Test(report, malformed_results_name_the_field) {
  json_t *res = fixture();
  json_t *run = json_array_get(json_object_get(json_array_get(json_object_get(res, "rows"), 1), "runs"), 2);
  json_object_set_new(run, "value", json_string("96.3"));
  cr_assert_eq(results_check(res, "results.json"), -1);
  cr_assert(strstr(igpt_errmsg(), "results.json: $.rows[1].runs[2].value: expected a number or null, found a string"),
            "%s", igpt_errmsg());
  json_object_set_new(run, "value", json_real(1));
  json_object_set_new(res, "images", json_pack("[{s:s, s:s}]", "kind", "samples", "path", "../../etc/x.png"));
  cr_assert_eq(results_check(res, "results.json"), -1);
  cr_assert(strstr(igpt_errmsg(), "images[0].path"), "%s", igpt_errmsg());
  json_object_del(res, "images");
  json_object_set_new(res, "scale", json_string("huge"));
  cr_assert_eq(results_check(res, "results.json"), -1);
  cr_assert(strstr(igpt_errmsg(), "scale"), "%s", igpt_errmsg());
  json_decref(res);
}

Test(verdict, rules_are_direction_aware) {
  rule_t abs1 = {RULE_ABSOLUTE, 1.0, 0}, sig = {RULE_SIGMA, 2.0, 0.5}, rel = {RULE_RELATIVE, 0.05, 0};
  cr_assert_eq(verdict_judge(&abs1, true, 95.5, 0, 96.3, 0, NULL), VERDICT_PASS);
  cr_assert_eq(verdict_judge(&abs1, true, 95.2, 0, 96.3, 0, NULL), VERDICT_FAIL);
  cr_assert_eq(verdict_judge(&abs1, true, 97.4, 0, 96.3, 0, NULL), VERDICT_BETTER);
  // lower is better (a loss): the same differences mean the opposite
  cr_assert_eq(verdict_judge(&abs1, false, 95.2, 0, 96.3, 0, NULL), VERDICT_BETTER);
  cr_assert_eq(verdict_judge(&abs1, false, 97.4, 0, 96.3, 0, NULL), VERDICT_FAIL);
  // sigma: 2 * sqrt(0.3^2 + 0.4^2) = 1.0; floor 0.5 applies when both stds are tiny
  double tol;
  cr_assert_eq(verdict_judge(&sig, true, 49.1, 0.3, 50, 0.4, &tol), VERDICT_PASS);
  cr_assert_float_eq(tol, 1.0, 1e-12);
  cr_assert_eq(verdict_judge(&sig, true, 48.9, 0.3, 50, 0.4, NULL), VERDICT_FAIL);
  cr_assert_eq(verdict_judge(&sig, true, 49.6, 0, 50, 0, &tol), VERDICT_PASS);
  cr_assert_float_eq(tol, 0.5, 1e-12);
  // relative: 5% of 2.0 nats = 0.1
  cr_assert_eq(verdict_judge(&rel, false, 2.09, 0, 2.0, 0, NULL), VERDICT_PASS);
  cr_assert_eq(verdict_judge(&rel, false, 2.11, 0, 2.0, 0, NULL), VERDICT_FAIL);
}

// Results without an environment get this machine's, collected by the reporter, and the report
// still validates (the collector writes only fields the schema knows).
Test(report, environment_collected_when_absent) {
  json_t *res = fixture();
  json_object_del(res, "environment");
  char *dir = write_results("env", res);
  json_t *rep = NULL;
  cr_assert_eq(report_render_dir(dir, &rep), 0, "%s", igpt_errmsg());
  json_t *env = json_object_get(rep, "environment");
  cr_assert(json_integer_value(json_object_get(env, "cores")) >= 1);
  cr_assert_not_null(json_object_get(json_object_get(env, "libraries"), "openblas"));
  cr_assert_not_null(strstr(json_string_value(json_object_get(env, "collected_by")), "igpt report"));
  char *jp = xasprintf("%s/report.json", dir);
  int vr = validate("reports/report.schema.json", jp);
  if (vr != -2) cr_assert_eq(vr, 0, "report.json with a collected environment does not validate");
  free(jp);
  json_decref(rep);
  json_decref(res);
  rm_rf(dir);
  free(dir);
}
