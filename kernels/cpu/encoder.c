// encoder: token + position embeddings, the learned sos vector at position 0 (AR) or the BERT
// mask zeroing the token embedding. See kernels/ops.h.
#include "kernels/ops.h"
#include "kernels/cpu/cpu.h"
#include <string.h>

void encoder_forward(float *out, const uint16_t *tok, const uint8_t *mask, const float *wte,
                     const float *wpe, const float *sos, int B, int T, int C) {
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * T * C > PAR_MIN)
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      float *o = out + ((size_t)b * T + t) * C;
      const float *p = wpe + (size_t)t * C;
      const float *e;
      if (sos) e = t == 0 ? sos : wte + (size_t)tok[(size_t)b * T + t - 1] * C;
      else e = mask && mask[(size_t)b * T + t] ? NULL : wte + (size_t)tok[(size_t)b * T + t] * C;
      if (e) for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
      else memcpy(o, p, (size_t)C * sizeof *o);
    }
}

void encoder_backward(float *dwte, float *dwpe, float *dsos, const float *dout, const uint16_t *tok,
                      const uint8_t *mask, int B, int T, int C) {
  // Serial over (b, t): several positions may share a token row; C-wide inner loops vectorise.
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const float *d = dout + ((size_t)b * T + t) * C;
      if (dwpe) {
        float *p = dwpe + (size_t)t * C;
        for (int c = 0; c < C; c++) p[c] += d[c];
      }
      float *e = NULL;
      if (dsos) e = t == 0 ? dsos : (dwte ? dwte + (size_t)tok[(size_t)b * T + t - 1] * C : NULL);
      else if (!(mask && mask[(size_t)b * T + t]) && dwte) e = dwte + (size_t)tok[(size_t)b * T + t] * C;
      if (e) for (int c = 0; c < C; c++) e[c] += d[c];
    }
}
