// matmul: the linear layers, y = x W^T + b with W [OC, C], as OpenBLAS sgemm calls.
// See kernels/ops.h.
#include "ops.h"
#include <cblas.h>

void matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C,
                    int OC) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, w, C, 0.0f, out, OC);
  if (bias) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
      for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] += bias[o];
  }
}

void matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                     const float *w, int N, int C, int OC) {
  // dinp[N,C] += dout[N,OC] @ w[OC,C];  dw[OC,C] += dout^T[OC,N] @ inp[N,C];  dbias += sum_n dout
  if (dinp)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, w, C, 1.0f,
                dinp, C);
  if (dw)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f,
                dw, C);
  if (dbias) {
#pragma omp parallel for schedule(static)
    for (int o = 0; o < OC; o++) {
      float s = 0.0f;
      for (int n = 0; n < N; n++) s += dout[(size_t)n * OC + o];
      dbias[o] += s;
    }
  }
}
