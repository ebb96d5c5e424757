// svg: inline SVG line charts. See svg.h.
#include "reports/svg.h"
#include "reports/escape.h"
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char *colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                               "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
#define NCOLORS (int)(sizeof colors / sizeof colors[0])

double svg_nice_step(double range, int target) {
  if (!(range > 0) || !isfinite(range)) return 1;
  double raw = range / (target > 0 ? target : 5);
  double p = pow(10, floor(log10(raw))), f = raw / p;
  double m = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
  return m * p;
}

// Writes at most max characters of s (UTF-8 aware) followed by an ellipsis when cut.
static void write_clipped(FILE *out, const char *s, int max) {
  if (!s) return;
  int chars = 0;
  const char *p = s;
  while (*p && chars < max) {
    p++;
    while ((*p & 0xC0) == 0x80) p++;  // continuation bytes
    chars++;
  }
  if (!*p) { html_escape(out, s); return; }
  char *cut = strndup(s, (size_t)(p - s));
  html_escape(out, cut);
  fputs("\u2026", out);
  free(cut);
}

static void extend(double v, double *lo, double *hi) {
  if (!isfinite(v)) return;
  if (v < *lo) *lo = v;
  if (v > *hi) *hi = v;
}

void svg_line_chart(FILE *out, const svg_chart *c, const svg_series *s, int ns) {
  const int W = c->width, H = c->height, legend_w = c->legend_w > 0 ? c->legend_w : 190;
  const int legend_chars = (legend_w - 34) / 6;  // the legend's text at about 6 px a character
  const double L = 64, R = W - legend_w - 12, T = 34, B = H - 46;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (int k = 0; k < ns; k++)
    for (int i = 0; i < s[k].n; i++) {
      if (!isfinite(s[k].y[i])) continue;
      extend(s[k].x[i], &x0, &x1);
      extend(s[k].y[i], &y0, &y1);
      if (s[k].lo) { extend(s[k].lo[i], &y0, &y1); extend(s[k].hi[i], &y0, &y1); }
    }
  bool empty = !(x0 <= x1);
  if (empty) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
  if (x0 == x1) { x0 -= 1; x1 += 1; }
  if (y0 == y1) { y0 -= 1; y1 += 1; }
  double xs = svg_nice_step(x1 - x0, 6), ys = svg_nice_step(y1 - y0, 5);
  y0 = floor(y0 / ys) * ys;
  y1 = ceil(y1 / ys) * ys;
#define PX(v) (L + ((v) - x0) / (x1 - x0) * (R - L))
#define PY(v) (B - ((v) - y0) / (y1 - y0) * (B - T))
  fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"", W, H, W, H);
  html_escape(out, c->title);
  fputs("\"><title>", out);
  html_escape(out, c->title);
  fprintf(out, "</title>\n<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", W, H);
  fprintf(out, "<text x=\"%g\" y=\"20\" class=\"ct\">", L);
  html_escape(out, c->title);
  fputs("</text>\n<g class=\"grid\">\n", out);
  for (double y = y0; y <= y1 + ys * 1e-9; y += ys)
    fprintf(out, "<line x1=\"%g\" x2=\"%g\" y1=\"%.1f\" y2=\"%.1f\"/><text x=\"%g\" y=\"%.1f\" "
                 "text-anchor=\"end\">%g</text>\n", L, R, PY(y), PY(y), L - 6, PY(y) + 4,
            fabs(y) < ys * 1e-9 ? 0.0 : y);
  for (double x = ceil(x0 / xs) * xs; x <= x1 + xs * 1e-9; x += xs)
    fprintf(out, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%g\" y2=\"%g\"/><text x=\"%.1f\" y=\"%g\" "
                 "text-anchor=\"middle\">%g</text>\n", PX(x), PX(x), T, B, PX(x), B + 16,
            fabs(x) < xs * 1e-9 ? 0.0 : x);
  fputs("</g>\n", out);
  fprintf(out, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#333\"/>\n",
          L, T, R - L, B - T);
  fprintf(out, "<text x=\"%g\" y=\"%d\" text-anchor=\"middle\" class=\"al\">", (L + R) / 2, H - 10);
  html_escape(out, c->xlabel);
  fprintf(out, "</text>\n<text transform=\"translate(16 %g) rotate(-90)\" text-anchor=\"middle\" "
               "class=\"al\">", (T + B) / 2);
  html_escape(out, c->ylabel);
  fputs("</text>\n", out);
  if (empty)
    fprintf(out, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">no data</text>\n", (L + R) / 2, (T + B) / 2);
  for (int k = 0; k < ns; k++) {
    const char *col = colors[k % NCOLORS];
    const svg_series *q = &s[k];
    if (q->lo && q->hi) {  // band: upper edge forward, lower edge back, over finite points
      fprintf(out, "<polygon fill=\"%s\" fill-opacity=\"0.15\" stroke=\"none\" points=\"", col);
      for (int i = 0; i < q->n; i++)
        if (isfinite(q->hi[i]) && isfinite(q->y[i])) fprintf(out, "%.1f,%.1f ", PX(q->x[i]), PY(q->hi[i]));
      for (int i = q->n - 1; i >= 0; i--)
        if (isfinite(q->lo[i]) && isfinite(q->y[i])) fprintf(out, "%.1f,%.1f ", PX(q->x[i]), PY(q->lo[i]));
      fputs("\"/>\n", out);
    }
    fprintf(out, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2\" d=\"", col);
    bool pen = false;
    for (int i = 0; i < q->n; i++) {
      if (!isfinite(q->y[i])) { pen = false; continue; }
      fprintf(out, "%c%.1f,%.1f ", pen ? 'L' : 'M', PX(q->x[i]), PY(q->y[i]));
      pen = true;
    }
    fputs("\"/>\n", out);
    if (q->n <= 60)
      for (int i = 0; i < q->n; i++)
        if (isfinite(q->y[i]))
          fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", PX(q->x[i]), PY(q->y[i]), col);
    if (q->mark >= 0 && q->mark < q->n && isfinite(q->y[q->mark]))
      fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n",
              PX(q->x[q->mark]), PY(q->y[q->mark]), col);
    double ly = T + 8 + 18 * k;
    fprintf(out, "<line x1=\"%g\" x2=\"%g\" y1=\"%g\" y2=\"%g\" stroke=\"%s\" stroke-width=\"3\"/>"
                 "<text x=\"%g\" y=\"%g\" class=\"lg\">", R + 14, R + 34, ly, ly, col, R + 40, ly + 4);
    write_clipped(out, q->name, legend_chars);
    fputs("<title>", out);
    html_escape(out, q->name);
    fputs("</title></text>\n", out);
  }
  fputs("</svg>\n", out);
#undef PX
#undef PY
}
