// attention: multi-head scaled dot-product attention, causal (AR) or bidirectional (BERT).
// One (batch, head) pair per OpenMP task, each computed with single-threaded sgemm over blocks of
// query rows; with the causal mask a row block only touches the key columns it can see, which
// halves the work. See kernels/ops.h.
#include "kernels/ops.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vmath.h"
#include <string.h>

#define ROWS 64  // query rows per block

void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH,
                       int causal) {
  int hd = C / NH, C3 = 3 * C;
  float scale = 1.0f / sqrtf((float)hd);
  int nblas = blas_threads_off();
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if ((size_t)B * T * T * C > 8 * PAR_MIN)
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++) {
      const float *q = qkv + (size_t)b * T * C3 + h * hd, *k = q + C, *v = q + 2 * C;
      float *a = att + ((size_t)b * NH + h) * T * T;
      float *y = out + (size_t)b * T * C + h * hd;
      for (int r0 = 0; r0 < T; r0 += ROWS) {
        int nr = T - r0 < ROWS ? T - r0 : ROWS;
        int ncol = causal ? r0 + nr : T;
        float *ab = a + (size_t)r0 * T;
        // S = q k^T / sqrt(hd) for rows r0.. against the visible columns
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, ncol, hd, scale,
                    q + (size_t)r0 * C3, C3, k, C3, 0.0f, ab, T);
        for (int i = 0; i < nr; i++) {
          float *row = ab + (size_t)i * T;
          int n = causal ? r0 + i + 1 : T;
          float mx = row[0];
#pragma omp simd reduction(max : mx)
          for (int j = 1; j < n; j++) mx = row[j] > mx ? row[j] : mx;
          float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
          for (int j = 0; j < n; j++) {
            row[j] = expf(row[j] - mx);
            sum += row[j];
          }
          float inv = 1.0f / sum;
          for (int j = 0; j < n; j++) row[j] *= inv;
          // P v below reads the block's columns up to ncol: zero the masked ones among them
          if (n < ncol) memset(row + n, 0, (size_t)(ncol - n) * sizeof *row);
        }
        // y = P v
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, hd, ncol, 1.0f, ab, T, v, C3,
                    0.0f, y + (size_t)r0 * C, C);
      }
    }
  blas_threads_restore(nblas);
}

// With P = softmax(S), y = P v:  dP = dy v^T, dv += P^T dy, dS = P (dP - rowsum(P dP)) / sqrt(hd),
// dq += dS k, dk += dS^T q.
void attention_backward(float *dqkv, float *datt, const float *dout, const float *out,
                        const float *qkv, const float *att, int B, int T, int C, int NH, int causal) {
  (void)out;  // the probabilities are at hand: D is their rowsum(P dP)
  int hd = C / NH, C3 = 3 * C;
  float scale = 1.0f / sqrtf((float)hd);
  int nblas = blas_threads_off();
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if ((size_t)B * T * T * C > 8 * PAR_MIN)
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++) {
      const float *q = qkv + (size_t)b * T * C3 + h * hd, *k = q + C, *v = q + 2 * C;
      float *dq = dqkv + (size_t)b * T * C3 + h * hd, *dk = dq + C, *dv = dq + 2 * C;
      const float *a = att + ((size_t)b * NH + h) * T * T;
      float *da = datt + ((size_t)b * NH + h) * T * T;
      const float *dy = dout + (size_t)b * T * C + h * hd;
      for (int r0 = 0; r0 < T; r0 += ROWS) {
        int nr = T - r0 < ROWS ? T - r0 : ROWS;
        int ncol = causal ? r0 + nr : T;  // masked columns have P = 0: no gradient
        const float *ab = a + (size_t)r0 * T;
        float *db = da + (size_t)r0 * T;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, ncol, hd, 1.0f,
                    dy + (size_t)r0 * C, C, v, C3, 0.0f, db, T);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ncol, hd, nr, 1.0f, ab, T,
                    dy + (size_t)r0 * C, C, 1.0f, dv, C3);
        for (int i = 0; i < nr; i++) {
          const float *p = ab + (size_t)i * T;
          float *d = db + (size_t)i * T;
          float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
          for (int j = 0; j < ncol; j++) dot += p[j] * d[j];
          for (int j = 0; j < ncol; j++) d[j] = attn_dscore(p[j], d[j], dot) * scale;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, hd, ncol, 1.0f, db, T, k, C3,
                    1.0f, dq + (size_t)r0 * C3, C3);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ncol, hd, nr, 1.0f, db, T,
                    q + (size_t)r0 * C3, C3, 1.0f, dk, C3);
      }
    }
  blas_threads_restore(nblas);
}
