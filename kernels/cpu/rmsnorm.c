// rmsnorm: the official norm, x * rsqrt(mean(x^2) + eps) * g (no mean subtraction, no bias).
// See kernels/ops.h.
#include "kernels/ops.h"
#include "kernels/cpu/cpu.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *g, int N, int C) {
#pragma omp parallel for schedule(static) if ((size_t)N * C > PAR_MIN)
  for (int n = 0; n < N; n++) {
    const float *x = inp + (size_t)n * C;
    float *y = out + (size_t)n * C;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int c = 0; c < C; c++) ss += x[c] * x[c];
    float r = rms_rstd(ss, C);
    for (int c = 0; c < C; c++) y[c] = x[c] * r * g[c];
    if (rstd) rstd[n] = r;
  }
}

// y_i = x_i r g_i with r = (mean x^2 + eps)^-1/2:
//   dx_i = r g_i dy_i - x_i r^3 / C * sum_j dy_j g_j x_j ;  dg_i = sum_n dy_i x_i r.
void rmsnorm_backward(float *dinp, float *dg, const float *dout, const float *inp, const float *g,
                      const float *rstd, int N, int C) {
  int nt = omp_get_max_threads();
  float *dg_part = dg ? calloc((size_t)nt * C, sizeof *dg_part) : NULL;
#pragma omp parallel if ((size_t)N * C > PAR_MIN)
  {
    float *dgp = dg_part ? dg_part + (size_t)omp_get_thread_num() * C : NULL;
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++) {
      const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
      float r = rstd[n];
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int c = 0; c < C; c++) dot += dy[c] * g[c] * x[c];
      float k = dot * r * r * r / C;
      if (dinp) {
        float *dx = dinp + (size_t)n * C;
        for (int c = 0; c < C; c++) dx[c] += r * g[c] * dy[c] - x[c] * k;
      }
      if (dgp) for (int c = 0; c < C; c++) dgp[c] += dy[c] * x[c] * r;
    }
  }
  if (dg_part) {
    for (int t = 0; t < nt; t++)
      for (int c = 0; c < C; c++) dg[c] += dg_part[(size_t)t * C + c];
    free(dg_part);
  }
}
