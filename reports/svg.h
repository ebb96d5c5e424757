// svg: inline SVG line charts for report.html (per-layer probe curves, loss curves): axes with
// round ticks, one coloured line per series with an optional ±std band and a marked point, and a
// legend. No script, no external font or asset; every label is HTML-escaped.
#pragma once
#include <stdio.h>

typedef struct {
  const char *name;           // legend entry
  int n;
  const double *x, *y;        // NAN in y leaves a gap
  const double *lo, *hi;      // optional band (both or neither), e.g. mean ± std
  int mark;                   // index of a point to ring (the best layer), -1 for none
} svg_series;

typedef struct {
  const char *title, *xlabel, *ylabel;
  int width, height;          // pixels, including legend and labels
  int legend_w;               // pixels for the legend at the right (0: 190, about 26 characters)
} svg_chart;

void svg_line_chart(FILE *out, const svg_chart *c, const svg_series *s, int ns);
// Round tick step for a range, about target ticks (1, 2, 2.5, 5 times a power of ten).
double svg_nice_step(double range, int target);
