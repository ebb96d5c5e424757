// html: rendering report.html from report.json. See html.h.
#include "reports/html.h"
#include "reports/escape.h"
#include "reports/results.h"
#include "reports/svg.h"
#include "base/util.h"
#include "reports/verdict.h"
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char *css =
  "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d1d1f;"
  "margin:0 auto;max-width:1180px;padding:0 20px 40px;background:#fafafa}"
  "header.scale{margin:0 -20px 18px;padding:14px 20px;border-bottom:3px solid}"
  "header.unjudged{background:#fff4d6;border-color:#e0a800}"
  "header.judged{background:#e3f4e6;border-color:#2e8540}"
  "header p{margin:0}header .big{font-size:19px;font-weight:700}"
  "h1{font-size:24px;margin:10px 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #ddd}"
  ".meta{color:#555;font-size:13px}"
  "table{border-collapse:collapse;background:#fff;margin:6px 0;font-size:14px}"
  "th,td{border:1px solid #d5d5d5;padding:4px 8px;text-align:left;vertical-align:top}"
  "th{background:#f0f0f3}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
  "th.paper,td.paper{background:#f4f7fb}th.ours,td.ours{background:#fbf8f1}"
  ".v{font-weight:700;white-space:nowrap}.v-pass{color:#2e8540}.v-better{color:#1f5fbf}"
  ".v-fail{color:#c62828}.v-not-judged,.v-no-reference{color:#666}.v-no-result{color:#a15c00}"
  ".note{color:#555;font-size:12px;display:block;max-width:340px}"
  ".summary span{margin-right:14px}"
  "svg.chart{background:#fff;border:1px solid #ddd;margin:6px 12px 6px 0}"
  "svg .grid line{stroke:#e6e6e6}svg text{font:12px system-ui,sans-serif;fill:#333}"
  "svg .ct{font-size:14px;font-weight:600}svg .al{font-size:13px}"
  "figure{display:inline-block;vertical-align:top;margin:6px 16px 12px 0;background:#fff;padding:8px;border:1px solid #ddd}"
  "figure img{image-rendering:pixelated;max-width:100%}figcaption{font-size:13px;color:#444}"
  "code{font-size:12px}details{margin:6px 0}"
  "td.base{background:#f6f6f6}.gain{color:#555;font-size:12px;display:block}"
  "table.context td,table.context th{color:#666;background:#fafafa;font-style:italic}"
  ".c-holds{color:#2e8540}.c-does-not-hold{color:#c62828}.c-inconclusive{color:#a15c00}.c-cannot-test{color:#666}";

static void num(FILE *o, double v) {
  double a = fabs(v);
  if (!isfinite(v)) fputs("—", o);
  else if (a >= 1000) fprintf(o, "%.0f", v);
  else if (a >= 1) fprintf(o, "%.2f", v);
  else fprintf(o, "%.4g", v);
}

static const char *str(const json_t *o, const char *key) {
  return json_string_value(json_object_get(o, key));
}

static double dbl(const json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

static void esc_or(FILE *o, const char *s, const char *dflt) { html_escape(o, s ? s : dflt); }

static void render_row(FILE *o, const json_t *row, bool probe_column) {
  const json_t *pub = json_object_get(row, "published"), *ours = json_object_get(row, "ours");
  const char *unit = str(row, "unit");
  bool pct = unit && !strcmp(unit, "%");
  fputs("<tr><td><b>", o);
  esc_or(o, str(row, "label"), str(row, "id"));
  fputs("</b>", o);
  if (str(row, "dataset")) { fputs("<br><span class=\"note\">", o); html_escape(o, str(row, "dataset")); fputs("</span>", o); }
  if (str(row, "note")) { fputs("<span class=\"note\">", o); html_escape(o, str(row, "note")); fputs("</span>", o); }
  fputs("</td><td class=\"paper num\">", o);
  if (json_is_object(pub)) {
    fprintf(o, "%g", dbl(pub, "value"));  // as printed in the paper
    if (isfinite(dbl(pub, "std"))) fprintf(o, " ± %g", dbl(pub, "std"));
    if (pct) fputs(" %", o);
  } else fputs("—", o);
  fputs("</td><td class=\"paper\">", o);
  if (json_object_get(row, "stands_in_for")) fputs("<span class=\"note\">a stand-in: compared with nothing published</span>", o);
  if (json_is_object(pub)) {
    esc_or(o, str(pub, "model"), "");
    fputs("<span class=\"note\">", o);
    html_escape(o, str(pub, "source"));
    fputs("</span>", o);
  }
  fputs("</td><td class=\"ours num\">", o);
  double mean = dbl(ours, "mean"), sd = dbl(ours, "std");
  json_int_t n = json_integer_value(json_object_get(ours, "n"));
  json_int_t failed = json_integer_value(json_object_get(ours, "failed"));
  if (n) {
    int dec = fabs(mean) >= 10 ? 2 : 4;  // the same decimals for mean and std
    fprintf(o, "%.*f ± %.*f", dec, mean, dec, sd);
    if (pct) fputs(" %", o);
    json_int_t subsets = json_integer_value(json_object_get(ours, "subsets"));
    if (subsets > 0 && n % subsets == 0)  // low-data: each seed's probe fits several label subsets
      fprintf(o, "<span class=\"note\">n = %lld: %lld seed%s × %lld label subsets", (long long)n, (long long)(n / subsets),
              n / subsets == 1 ? "" : "s", (long long)subsets);
    else
      fprintf(o, "<span class=\"note\">n = %lld seed%s", (long long)n, n == 1 ? "" : "s");
    if (failed) fprintf(o, ", %lld failed", (long long)failed);
    fputs("</span>", o);
  } else fprintf(o, "—<span class=\"note\">%lld failed or missing</span>", (long long)failed);
  fputs("</td><td class=\"ours\">", o);
  esc_or(o, str(row, "model"), "");
  fputs("</td>", o);
  static const char *const bnames[] = {"pixels", "untrained", "probe"};
  for (int k = 0; k < 2 + probe_column; k++) {  // the baselines of this row, in the same run, and our gain over each
    const json_t *b = json_object_get(json_object_get(row, "baselines"), bnames[k]);
    fputs("<td class=\"base num\">", o);
    if (b && isfinite(dbl(b, "mean"))) {
      fprintf(o, "%.2f", dbl(b, "mean"));
      if (pct) fputs(" %", o);
      if (isfinite(dbl(b, "gain"))) fprintf(o, "<span class=\"gain\">ours %+.2f</span>", dbl(b, "gain"));
    } else fputs("—", o);
    fputs("</td>", o);
  }
  fputs("<td class=\"num\">", o);
  double d = dbl(row, "difference");
  if (isfinite(d)) fprintf(o, "%+.2f", d); else fputs("—", o);
  fputs("</td><td>", o);
  const json_t *rule = json_object_get(row, "rule");
  if (json_is_object(rule)) {
    rule_t r;
    if (rule_from_json(rule, &r, "report.json", "rule") == 0) {
      html_escape(o, rule_describe(&r, unit));
      if (isfinite(dbl(row, "tolerance"))) { fputs("<span class=\"note\">= ±", o); num(o, dbl(row, "tolerance")); fputs("</span>", o); }
    } else fputs("?", o);
  } else fputs("—", o);
  const char *v = str(row, "verdict");
  fputs("</td><td><span class=\"v v-", o);
  html_escape(o, v);
  fputs("\">", o);
  html_escape(o, v);
  fputs("</span><span class=\"note\">", o);
  html_escape(o, str(row, "verdict_note"));
  fputs("</span></td></tr>\n", o);
}

// The paper's rows this scale does not run: once, together, with the reason (not as failures).
static void render_not_run(FILE *o, const json_t *nr) {
  if (!json_array_size(nr)) return;
  fputs("<h2>Not run at this scale</h2>\n<table><tr><th>paper row</th><th>data set</th><th>model</th>"
        "<th class=\"paper\">published</th><th>why</th></tr>\n", o);
  size_t i;
  const json_t *e;
  json_array_foreach(nr, i, e) {
    fputs("<tr><td>", o);
    esc_or(o, str(e, "label"), str(e, "id"));
    fputs("<span class=\"note\">", o);
    html_escape(o, str(e, "id"));
    fputs("</span></td><td>", o);
    html_escape(o, str(e, "dataset"));
    fputs("</td><td>", o);
    html_escape(o, str(e, "model"));
    fputs("</td><td class=\"paper num\">", o);
    if (isfinite(dbl(e, "published"))) fprintf(o, "%g", dbl(e, "published")); else fputs("—", o);
    fputs("</td><td>", o);
    html_escape(o, str(e, "reason"));
    fputs("</td></tr>\n", o);
  }
  fputs("</table>\n", o);
}

static void render_claims(FILE *o, const json_t *claims) {
  if (!json_is_array(claims)) return;
  fputs("<h2>The paper's claims</h2>\n<p class=\"meta\">Each finding of the paper this table can test, from this "
        "run's numbers: <b>holds</b> or <b>does not hold</b> when the difference is significant at 5% (two-sided; "
        "paired t over 3 or more seeds, or label subsets of the same seeds, else McNemar's exact test on the same test images), <b>inconclusive</b> "
        "when it is not (its evidence then says how large a difference the same test, on these images or with this "
        "spread over seeds, would have called significant), <b>cannot test</b> when this run lacks the evidence. Each "
        "test gives the difference's 95% interval (McNemar's exact, from the binomial; t for the others): an "
        "inconclusive claim's effect at this scale lies inside it.</p>\n", o);
  if (!json_array_size(claims)) { fputs("<p>This table lists no claims.</p>\n", o); return; }
  fputs("<table class=\"claims\"><tr><th>claim</th><th>row</th><th>evidence (this run)</th><th>verdict</th></tr>\n", o);
  size_t i;
  const json_t *c;
  json_array_foreach(claims, i, c) {
    fputs("<tr><td><b>", o);
    html_escape(o, str(c, "claim"));
    fputs("</b><span class=\"note\">", o);
    html_escape(o, str(c, "source"));
    fputs("</span></td><td>", o);
    esc_or(o, str(c, "row"), "—");
    fputs("</td><td>", o);
    html_escape(o, str(c, "evidence"));
    const char *v = str(c, "verdict");
    fputs("</td><td><span class=\"v c-", o);
    html_escape(o, v);
    fputs("\">", o);
    for (const char *p = v ? v : "?"; *p; p++) fputc(*p == '-' ? ' ' : *p, o);  // "does not hold"
    fputs("</span></td></tr>\n", o);
  }
  fputs("</table>\n", o);
}

// The other methods the paper prints beside its numbers: context, not our result.
static void render_context(FILE *o, const json_t *ctx) {
  if (!json_array_size(ctx)) return;
  fputs("<h2>Published context</h2>\n<p class=\"meta\">Other methods as the paper reports them, for orientation "
        "beside its own numbers; nothing here ran in this suite.</p>\n<table class=\"context\"><tr><th>method</th>"
        "<th>data set</th><th>published</th><th>source</th></tr>\n", o);
  size_t i;
  const json_t *c;
  json_array_foreach(ctx, i, c) {
    fputs("<tr><td>", o);
    html_escape(o, str(c, "method"));
    fputs("</td><td>", o);
    html_escape(o, dataset_title(str(c, "dataset")));
    fprintf(o, "</td><td class=\"num\">%g %%</td><td>", dbl(c, "value"));
    html_escape(o, str(c, "source"));
    fputs("</td></tr>\n", o);
  }
  fputs("</table>\n", o);
}

// How much of row `self`'s label the chart's legend leaves out: the beginning it shares with the
// other rows' labels, cut back to just after a "(" or ", " (the shortest such part it shares with
// any row), so that "Fashion-MNIST 16x16 (CIFAR-10, AR linear probe)" beside the BERT rows reads
// "AR linear probe", and a label that shares nothing, or would be left empty, stays whole.
static size_t shared_prefix(const json_t *rows, size_t self) {
  const char *me = str(json_array_get(rows, self), "label");
  size_t best = 0, i;
  const json_t *row;
  if (!me) return 0;
  json_array_foreach(rows, i, row) {
    const char *l = str(row, "label");
    if (i == self || !l || !json_is_object(json_object_get(row, "layers"))) continue;
    size_t k = 0;
    while (me[k] && me[k] == l[k]) k++;
    while (k > 0 && me[k - 1] != '(' && !(k >= 2 && me[k - 2] == ',' && me[k - 1] == ' ')) k--;
    if (k && me[k] && (!best || k < best)) best = k;
  }
  return best;
}

// A legend name: the label without the shared prefix, and without the ")" that closes a "(" the
// prefix opened.
static char *short_label(const char *label, size_t skip) {
  if (skip == 0 || strlen(label) <= skip) return xstrdup(label);
  bool open = memchr(label, '(', skip) != NULL;
  size_t n = strlen(label + skip);
  if (open && n && label[skip + n - 1] == ')') n--;
  return xstrndup(label + skip, n);
}

// Per-layer probe accuracy, one line per row: on test where the probe measured every layer there
// (after the choice), else on validation; the ring marks the layer validation chose; each row's
// baselines (raw pixels, untrained model: test accuracy) as flat lines across the layers.
static void render_probe_chart(FILE *o, const json_t *rows) {
  size_t i, ns = 0, nr = json_array_size(rows);
  const json_t *row;
  // per row: its layers, up to three baselines and its concatenation's number
  svg_series *s = xcalloc(5 * nr + 1, sizeof *s);
  double **bufs = xcalloc(4 * 5 * nr + 1, sizeof *bufs);
  char **names = xcalloc(6 * nr + 1, sizeof *names);
  int nb = 0, nn = 0;
  bool on_test = false;
  json_array_foreach(rows, i, row) {
    const json_t *ly = json_object_get(row, "layers");
    on_test |= json_is_object(ly) && json_is_array(json_object_get(ly, "test_mean"));
  }
  json_array_foreach(rows, i, row) {
    const json_t *ly = json_object_get(row, "layers");
    if (!json_is_object(ly)) continue;
    const json_t *mean = json_object_get(ly, on_test ? "test_mean" : "mean"), *sd = json_object_get(ly, "std");
    int n = (int)json_array_size(mean);
    if (!n) continue;
    double *x = xmalloc(n * sizeof *x), *y = xmalloc(n * sizeof *y);
    double *lo = xmalloc(n * sizeof *lo), *hi = xmalloc(n * sizeof *hi);
    bufs[nb++] = x; bufs[nb++] = y; bufs[nb++] = lo; bufs[nb++] = hi;
    for (int l = 0; l < n; l++) {
      json_t *m = json_array_get(mean, l), *e = json_array_get(sd, l);
      x[l] = l;
      y[l] = json_is_number(m) ? json_number_value(m) : NAN;
      double ev = !on_test && json_is_number(e) ? json_number_value(e) : 0;
      lo[l] = y[l] - ev;
      hi[l] = y[l] + ev;
    }
    json_t *b = json_object_get(ly, "best_layer");
    const char *label = names[nn++] = str(row, "label") ? short_label(str(row, "label"), shared_prefix(rows, i)) : xstrdup(str(row, "id"));
    s[ns++] = (svg_series){label, n, x, y, on_test ? NULL : lo, on_test ? NULL : hi,
                           json_is_integer(b) ? (int)json_integer_value(b) : -1};
    const char *k;
    const json_t *bl;
    json_object_foreach(json_object_get(row, "baselines"), k, bl) {
      if (!isfinite(dbl(bl, "mean"))) continue;
      bool drawn = false;  // one baseline several rows share (the raw pixels): one line
      for (size_t q = 0; q < ns; q++)
        drawn |= !strcmp(k, "pixels") && s[q].n == 2 && s[q].y[0] == dbl(bl, "mean") && !strcmp(s[q].name, str(bl, "label"));
      if (drawn) continue;
      double *bx = xmalloc(2 * sizeof *bx), *by = xmalloc(2 * sizeof *by);
      bufs[nb++] = bx; bufs[nb++] = by;
      bx[0] = 0; bx[1] = n - 1;
      by[0] = by[1] = dbl(bl, "mean");
      // the raw pixels are no model's: one line, named alone, whatever row it came with
      names[nn] = nr > 1 && strcmp(k, "pixels") ? xasprintf("%s: %s", label, str(bl, "label")) : xstrdup(str(bl, "label"));
      s[ns++] = (svg_series){names[nn++], 2, bx, by, NULL, NULL, -1};
    }
    json_t *cat = json_object_get(row, "concat_layers");
    double cv = dbl(json_object_get(row, "ours"), "mean");
    if (json_is_integer(cat) && isfinite(cv)) {  // the row's own number is not on the curve: draw it
      double *bx = xmalloc(2 * sizeof *bx), *by = xmalloc(2 * sizeof *by);
      bufs[nb++] = bx; bufs[nb++] = by;
      bx[0] = 0; bx[1] = n - 1;
      by[0] = by[1] = cv;
      names[nn] = xasprintf("%s%s%lld layers concatenated", nr > 1 ? label : "", nr > 1 ? ": " : "",
                            (long long)json_integer_value(cat));
      s[ns++] = (svg_series){names[nn++], 2, bx, by, NULL, NULL, -1};
    }
  }
  if (ns) {
    const char *yl = on_test ? "test accuracy of each layer's probe (mean over seeds)"
                             : "probe accuracy on val (mean ± std over seeds)";
    fputs("<h2>Linear probe accuracy by layer</h2>\n<p class=\"meta\">Each layer's pooled, "
          "normalised features probed separately; the ring marks the layer chosen on validation (each layer's "
          "test accuracy is measured after that choice and never used for it). Flat lines: the baselines on the "
          "same test images, and where a row's probe is a concatenation of layers, its number. The paper finds the "
          "best layer mid-network.</p>\n", o);
    svg_line_chart(o, &(svg_chart){"Probe accuracy by layer", "layer (0 = first block's input, last = final norm)",
                                   yl, 1000, 360, 440}, s, (int)ns);
  }
  for (int k = 0; k < nb; k++) free(bufs[k]);
  for (int k = 0; k < nn; k++) free(names[k]);
  free(bufs);
  free(names);
  free(s);
}

static void render_loss_chart(FILE *o, const json_t *curves) {
  size_t nc = json_array_size(curves), i;
  if (!nc) return;
  svg_series *s = xcalloc(nc, sizeof *s);
  const json_t *c;
  json_array_foreach(curves, i, c) {
    const json_t *pts = json_object_get(c, "points");
    int n = (int)json_array_size(pts);
    double *x = xmalloc((n + 1) * sizeof *x), *y = xmalloc((n + 1) * sizeof *y);
    for (int k = 0; k < n; k++) {
      x[k] = json_number_value(json_array_get(json_array_get(pts, k), 0));
      y[k] = json_number_value(json_array_get(json_array_get(pts, k), 1));
    }
    s[i] = (svg_series){str(c, "name"), n, x, y, NULL, NULL, -1};
  }
  const json_t *c0 = json_array_get(curves, 0);
  fputs("<h2>Training loss</h2>\n", o);
  svg_line_chart(o, &(svg_chart){"Pretraining loss", str(c0, "x") ? str(c0, "x") : "step",
                                 str(c0, "y") ? str(c0, "y") : "loss (nats/token)", 760, 340, 0}, s, (int)nc);
  for (size_t k = 0; k < nc; k++) { free((void *)s[k].x); free((void *)s[k].y); }
  free(s);
}

static void render_images(FILE *o, const json_t *images, const char *dir) {
  if (!json_array_size(images)) return;
  fputs("<h2>Samples and completions</h2>\n", o);
  size_t i;
  const json_t *im;
  json_array_foreach(images, i, im) {
    char *path = xasprintf("%s/%s", dir, str(im, "path"));
    uint8_t *data;
    size_t len;
    char hex[65];
    if (file_read_all(path, &data, &len) == 0) {
      sha256_hex(data, len, hex);
      const char *want = str(im, "sha256");
      if (want && strcmp(want, hex)) {
        fputs("<p class=\"v-fail\">", o);
        html_escape(o, str(im, "path"));
        fputs(" changed after report.json was written; rerun igpt report.</p>\n", o);
      } else {
        char *b64 = base64_encode(data, len);
        fputs("<figure><img alt=\"", o);
        esc_or(o, str(im, "title"), str(im, "kind"));
        fprintf(o, "\" width=\"%lld\" height=\"%lld\" src=\"data:image/png;base64,%s\"><figcaption><b>",
                json_integer_value(json_object_get(im, "width")),
                json_integer_value(json_object_get(im, "height")), b64);
        esc_or(o, str(im, "title"), str(im, "kind"));
        fputs("</b>", o);
        if (str(im, "model")) { fputs(" — ", o); html_escape(o, str(im, "model")); }
        if (str(im, "caption")) { fputs("<br>", o); html_escape(o, str(im, "caption")); }
        fputs("</figcaption></figure>\n", o);
        free(b64);
      }
      free(data);
    } else {
      fputs("<p class=\"v-fail\">missing image: ", o);
      html_escape(o, str(im, "path"));
      fputs("</p>\n", o);
    }
    free(path);
  }
}

static void render_jobs(FILE *o, const json_t *jobs) {
  size_t i;
  const json_t *j;
  double total = 0;
  json_array_foreach(jobs, i, j) if (isfinite(dbl(j, "duration_s"))) total += dbl(j, "duration_s");
  fprintf(o, "<h2>Jobs</h2>\n<details><summary>%zu jobs, %.1f s in all</summary>\n<table><tr><th>key</th>"
             "<th>verb</th><th>status</th><th>duration</th><th>device</th><th>code version</th></tr>\n",
          json_array_size(jobs), total);
  json_array_foreach(jobs, i, j) {
    const char *key = str(j, "key");
    fputs("<tr><td><code title=\"", o);
    html_escape(o, key);
    fputs("\">", o);
    char shortkey[13] = "";
    if (key) snprintf(shortkey, sizeof shortkey, "%s", key);
    html_escape(o, shortkey);
    fputs("</code></td><td>", o);
    html_escape(o, str(j, "verb"));
    fputs("</td><td>", o);
    html_escape(o, str(j, "status"));
    fputs("</td><td class=\"num\">", o);
    if (isfinite(dbl(j, "duration_s"))) fprintf(o, "%.1f s", dbl(j, "duration_s"));
    fputs("</td><td>", o);
    html_escape(o, str(j, "device"));
    fputs("</td><td>", o);
    html_escape(o, str(j, "code_version"));
    fputs("</td></tr>\n", o);
  }
  fputs("</table></details>\n", o);
}

static void render_env(FILE *o, const json_t *env) {
  fputs("<h2>Environment</h2>\n<table>\n", o);
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)env, k, v) {
    if (json_is_object(v)) continue;
    fputs("<tr><th>", o);
    html_escape(o, k);
    fputs("</th><td>", o);
    if (json_is_string(v)) html_escape(o, json_string_value(v));
    else if (json_is_null(v)) fputs("none", o);
    else if (json_is_integer(v)) fprintf(o, "%lld", (long long)json_integer_value(v));
    else if (json_is_number(v)) fprintf(o, "%.1f", json_number_value(v));
    fputs("</td></tr>\n", o);
  }
  json_t *libs = json_object_get(env, "libraries");
  json_object_foreach(libs, k, v) {
    fputs("<tr><th>", o);
    html_escape(o, k);
    fputs("</th><td>", o);
    html_escape(o, json_string_value(v));
    fputs("</td></tr>\n", o);
  }
  fputs("</table>\n", o);
}

int html_render(const json_t *rep, const char *dir, char **html, size_t *len) {
  FILE *o = open_memstream(html, len);
  if (!o) return igpt_err("html: open_memstream failed");
  const json_t *scale = json_object_get(rep, "scale");
  const char *sname = str(scale, "name"), *table = str(rep, "table");
  bool judged = json_is_true(json_object_get(scale, "judged"));
  fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<title>igpt report: ", o);
  html_escape(o, table);
  fputs(" (", o);
  html_escape(o, sname);
  fprintf(o, " scale)</title>\n<style>%s</style>\n</head><body>\n", css);
  fprintf(o, "<header class=\"scale %s\"><p class=\"big\">Scale: ", judged ? "judged" : "unjudged");
  html_escape(o, sname);
  fputs(judged ? " — judged against the published numbers" : " — not a reproduction of the published numbers", o);
  fputs("</p><p>", o);
  html_escape(o, str(scale, "meaning"));
  fputs("</p></header>\n<h1>", o);
  esc_or(o, str(rep, "title"), table);
  fputs("</h1>\n<p class=\"meta\">table <code>", o);
  html_escape(o, table);
  fputs("</code> · code <code>", o);
  html_escape(o, str(rep, "code_version"));
  fputs("</code> · generated ", o);
  html_escape(o, str(rep, "generated"));
  fputs(" by igpt ", o);
  html_escape(o, str(rep, "reporter_version"));
  fputs(" from report.json</p>\n<p class=\"summary\">", o);
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(rep, "summary"), k, v) {
    fputs("<span class=\"v v-", o);
    html_escape(o, k);
    fprintf(o, "\">%lld ", (long long)json_integer_value(v));
    html_escape(o, k);
    fputs("</span>", o);
  }
  size_t i;
  const json_t *row;
  // a fine-tune table's rows have the probe of their model as a baseline: one more column
  bool probe_column = false;
  json_array_foreach(json_object_get(rep, "rows"), i, row)
    probe_column |= json_object_get(json_object_get(row, "baselines"), "probe") != NULL;
  fprintf(o, "</p>\n<h2>The paper's numbers and ours</h2>\n<table class=\"results\">\n"
          "<tr><th rowspan=\"2\">row</th><th class=\"paper\" colspan=\"2\">paper (published)</th>"
          "<th class=\"ours\" colspan=\"%d\">this run (", 4 + probe_column);
  html_escape(o, sname);
  fputs(" scale)</th><th rowspan=\"2\">difference</th><th rowspan=\"2\">rule</th><th rowspan=\"2\">verdict</th></tr>\n"
        "<tr><th class=\"paper\">value</th><th class=\"paper\">model, source</th>"
        "<th class=\"ours\">mean ± std</th><th class=\"ours\">model</th>"
        "<th class=\"base\">raw pixels</th><th class=\"base\">untrained</th>", o);
  if (probe_column) fputs("<th class=\"base\">linear probe</th>", o);
  fputs("</tr>\n", o);
  json_array_foreach(json_object_get(rep, "rows"), i, row) render_row(o, row, probe_column);
  fputs("</table>\n", o);
  render_not_run(o, json_object_get(rep, "not_run"));
  render_claims(o, json_object_get(rep, "claims"));
  render_context(o, json_object_get(rep, "context"));
  render_probe_chart(o, json_object_get(rep, "rows"));
  render_loss_chart(o, json_object_get(rep, "loss_curves"));
  render_images(o, json_object_get(rep, "images"), dir);
  render_jobs(o, json_object_get(rep, "jobs"));
  render_env(o, json_object_get(rep, "environment"));
  const json_t *notes = json_object_get(rep, "notes"), *n;
  if (json_array_size(notes)) {
    fputs("<h2>Notes</h2>\n<ul>\n", o);
    json_array_foreach(notes, i, n) {
      fputs("<li>", o);
      html_escape(o, json_string_value(n));
      fputs("</li>\n", o);
    }
    fputs("</ul>\n", o);
  }
  fputs("<p class=\"meta\">report.json beside this file is the source of truth; this page is "
        "rendered from it alone and loads nothing.</p>\n</body></html>\n", o);
  if (fclose(o)) return igpt_err("html: writing to memory failed");
  return 0;
}
