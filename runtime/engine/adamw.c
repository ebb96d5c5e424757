// adamw: AdamW update, clipping and accumulation scaling over flat float arrays. See adamw.h.
#include "engine/adamw.h"
#include "base/util.h"
#include <math.h>
#include <stdlib.h>

adamw_opts adamw_defaults(void) {
  return (adamw_opts){.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.0};
}

adamw_step adamw_scalars(long t, double lr, double wd, const adamw_opts *o) {
  return (adamw_step){.lr = (float)lr, .b1 = (float)o->beta1, .b2 = (float)o->beta2,
                      .eps = (float)o->eps,
                      .c1 = (float)(1.0 / (1.0 - pow(o->beta1, (double)t))),
                      .c2 = (float)(1.0 / (1.0 - pow(o->beta2, (double)t))),
                      .decay = (float)(lr * wd)};
}

void adamw_apply(float *p, const float *g, float *m, float *v, size_t n, const adamw_step *s) {
  const adamw_step st = *s;  // a local copy: the loop's scalars stay in registers
#pragma omp parallel for schedule(static) if (n > 32768)
  for (size_t i = 0; i < n; i++) adamw_element(&p[i], g[i], &m[i], &v[i], &st);
}

void adamw_update(float *p, const float *g, float *m, float *v, size_t n, long t, double lr,
                  double wd, const adamw_opts *o) {
  // Scalars in double, then the per-element work in float (the parameters' precision).
  adamw_step s = adamw_scalars(t, lr, wd, o);
  adamw_apply(p, g, m, v, n, &s);
}

// Fixed chunking (NORM_CHUNK, kernels/math.h) makes the sum's rounding independent of the number
// of threads, which the bit-identical resume promise needs (a resumed run may be scheduled differently).

double grad_global_norm(const float *g, size_t n) {
  size_t nchunks = (n + NORM_CHUNK - 1) / NORM_CHUNK;
  double partial_stack[256];
  double *partial = nchunks <= 256 ? partial_stack : xmalloc(nchunks * sizeof *partial);
#pragma omp parallel for schedule(static) if (nchunks > 1)
  for (size_t c = 0; c < nchunks; c++) {
    size_t b = c * NORM_CHUNK, e = b + NORM_CHUNK < n ? b + NORM_CHUNK : n;
    double s = 0;
    for (size_t i = b; i < e; i++) s += (double)g[i] * g[i];
    partial[c] = s;
  }
  double total = 0;
  for (size_t c = 0; c < nchunks; c++) total += partial[c];
  if (partial != partial_stack) free(partial);
  return sqrt(total);
}

void grad_scale(float *g, size_t n, float s) {
#pragma omp parallel for schedule(static) if (n > 32768)
  for (size_t i = 0; i < n; i++) g[i] *= s;
}

double grad_clip(float *g, size_t n, double max_norm) {
  double norm = grad_global_norm(g, n);
  if (max_norm > 0 && norm > max_norm) grad_scale(g, n, (float)(max_norm / (norm + 1e-6)));
  return norm;
}
