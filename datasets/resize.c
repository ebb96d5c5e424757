// resize: centre crop to a square and area (box) resampling. Source pixel j spans [j, j+1) and
// output pixel i spans [i*s/d, (i+1)*s/d); scaling both by d makes every overlap an integer, so
// the weights are exact integers summing to s per axis and the result is an exact weighted mean.
#include "datasets/decode.h"
#include "base/util.h"
#include <stdlib.h>
#include <string.h>

// For each output index i: the first source index and the integer weights (units of 1/d) of the
// source indices it overlaps. A footprint spans at most s/d + 2 source pixels.
typedef struct { int first, count; int64_t *w; } axis_weights;

static axis_weights *axis_plan(int s, int d, int *maxc) {
  axis_weights *a = xcalloc((size_t)d, sizeof *a);
  *maxc = s / d + 2;
  for (int i = 0; i < d; i++) {
    int64_t lo = (int64_t)i * s, hi = (int64_t)(i + 1) * s;  // output footprint, units of 1/d
    int j0 = (int)(lo / d), j1 = (int)((hi + d - 1) / d);    // source pixels [j0, j1)
    a[i].first = j0;
    a[i].count = j1 - j0;
    a[i].w = xmalloc(sizeof(int64_t) * (size_t)a[i].count);
    for (int j = j0; j < j1; j++) {
      int64_t s0 = (int64_t)j * d, s1 = (int64_t)(j + 1) * d;
      a[i].w[j - j0] = (hi < s1 ? hi : s1) - (lo > s0 ? lo : s0);
    }
  }
  return a;
}

static void axis_free(axis_weights *a, int d) {
  for (int i = 0; i < d; i++) free(a[i].w);
  free(a);
}

// The box resampling itself, with the two axes' weights planned once per size pair.
static void resize_planned(const uint8_t *src, int sh, int sw, uint8_t *dst, int dh, int dw,
                           const axis_weights *ay, const axis_weights *ax) {
  int64_t den = (int64_t)sh * sw;  // sum of all weights of one output pixel
  for (int y = 0; y < dh; y++)
    for (int x = 0; x < dw; x++) {
      int64_t acc[3] = {0, 0, 0};
      for (int a = 0; a < ay[y].count; a++) {
        const uint8_t *row = src + (size_t)(ay[y].first + a) * sw * 3;
        for (int b = 0; b < ax[x].count; b++) {
          int64_t wt = ay[y].w[a] * ax[x].w[b];
          const uint8_t *p = row + (size_t)(ax[x].first + b) * 3;
          acc[0] += wt * p[0];
          acc[1] += wt * p[1];
          acc[2] += wt * p[2];
        }
      }
      for (int c = 0; c < 3; c++) dst[((size_t)y * dw + x) * 3 + c] = (uint8_t)((2 * acc[c] + den) / (2 * den));
    }
}

void resize_area(const uint8_t *src, int sh, int sw, uint8_t *dst, int dh, int dw) {
  if (sh == dh && sw == dw) { memcpy(dst, src, (size_t)sh * sw * 3); return; }
  int my, mx;
  axis_weights *ay = axis_plan(sh, dh, &my), *ax = axis_plan(sw, dw, &mx);
  resize_planned(src, sh, sw, dst, dh, dw, ay, ax);
  axis_free(ay, dh);
  axis_free(ax, dw);
}

void image_set_square_resize(const image_set *in, int size, image_set *out) {
  int side = in->h < in->w ? in->h : in->w;
  int oy = (in->h - side) / 2, ox = (in->w - side) / 2;
  image_set_alloc(out, in->n, size, size, in->n_classes);
  memcpy(out->labels, in->labels, (size_t)in->n * sizeof(int32_t));
  size_t in_px = (size_t)in->h * in->w * 3, out_px = (size_t)size * size * 3;
  if (side == size && in->h == size && in->w == size) {  // nothing to do
    memcpy(out->pixels, in->pixels, (size_t)in->n * in_px);
    return;
  }
  int m;
  axis_weights *plan = axis_plan(side, size, &m);
  #pragma omp parallel
  {
    uint8_t *crop = xmalloc((size_t)side * side * 3);
    #pragma omp for schedule(static)
    for (int64_t i = 0; i < in->n; i++) {
      const uint8_t *src = in->pixels + (size_t)i * in_px;
      for (int y = 0; y < side; y++)
        memcpy(crop + (size_t)y * side * 3, src + ((size_t)(y + oy) * in->w + ox) * 3, (size_t)side * 3);
      resize_planned(crop, side, side, out->pixels + (size_t)i * out_px, size, size, plan, plan);
    }
    free(crop);
  }
  axis_free(plan, size);
}
