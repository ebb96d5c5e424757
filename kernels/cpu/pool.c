// pool: mean over positions (pooled features, the classifier's input). See kernels/ops.h.
#include "kernels/ops.h"
#include "kernels/cpu/cpu.h"

void meanpool_forward(float *out, const float *inp, int B, int T, int C) {
#pragma omp parallel for schedule(static) if ((size_t)B * T * C > PAR_MIN)
  for (int b = 0; b < B; b++) {
    float *o = out + (size_t)b * C;
    for (int c = 0; c < C; c++) o[c] = 0.0f;
    for (int t = 0; t < T; t++) {
      const float *x = inp + ((size_t)b * T + t) * C;
      for (int c = 0; c < C; c++) o[c] += x[c];
    }
    for (int c = 0; c < C; c++) o[c] /= (float)T;
  }
}

void meanpool_backward(float *dinp, const float *dout, int B, int T, int C) {
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * T * C > PAR_MIN)
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      float *d = dinp + ((size_t)b * T + t) * C;
      const float *g = dout + (size_t)b * C;
      for (int c = 0; c < C; c++) d[c] += g[c] / (float)T;
    }
}
