// matmul: the linear layers, y = x W^T + b with W [OC, C], as OpenBLAS sgemm calls, each OpenMP
// thread taking a block of rows (of x for y and dx, of W for dW). See kernels/ops.h, blas.h.
#include "kernels/ops.h"
#include "kernels/cpu/cpu.h"
#include <omp.h>

void matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C,
                    int OC) {
  int nb = blas_threads_off();
#pragma omp parallel if ((size_t)N * C * OC > 8 * PAR_MIN)
  {
    int lo, hi;
    blas_share(N, omp_get_thread_num(), omp_get_num_threads(), 16, &lo, &hi);
    if (hi > lo) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, hi - lo, OC, C, 1.0f, inp + (size_t)lo * C, C,
                  w, C, 0.0f, out + (size_t)lo * OC, OC);
      if (bias)
        for (int n = lo; n < hi; n++)
          for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] += bias[o];
    }
  }
  blas_threads_restore(nb);
}

void matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                     const float *w, int N, int C, int OC) {
  // dinp[N,C] += dout[N,OC] @ w[OC,C];  dw[OC,C] += dout^T[OC,N] @ inp[N,C];  dbias += sum_n dout
  int nb = blas_threads_off();
#pragma omp parallel if ((size_t)N * C * OC > 8 * PAR_MIN)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads(), lo, hi;
    blas_share(N, t, nt, 16, &lo, &hi);
    if (dinp && hi > lo)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, hi - lo, C, OC, 1.0f, dout + (size_t)lo * OC,
                  OC, w, C, 1.0f, dinp + (size_t)lo * C, C);
    blas_share(OC, t, nt, 16, &lo, &hi);
    if (dw && hi > lo)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hi - lo, C, N, 1.0f, dout + lo, OC, inp, C, 1.0f,
                  dw + (size_t)lo * C, C);
    if (dbias)  // row by row: contiguous reads of this thread's columns
      for (int n = 0; n < N; n++)
        for (int o = lo; o < hi; o++) dbias[o] += dout[(size_t)n * OC + o];
  }
  blas_threads_restore(nb);
}
