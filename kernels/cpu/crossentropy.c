// crossentropy: softmax and cross-entropy per row with per-row weights (which rows count and how
// the loss is normalised is the model's choice: AR mean, BERT per-example mean). kernels/ops.h.
#include "kernels/ops.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vmath.h"

double crossentropy_forward(float *losses, float *probs, const float *logits, const uint16_t *tgt,
                            const float *weight, int N, int V) {
  double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total) if ((size_t)N * V > PAR_MIN)
  for (int n = 0; n < N; n++) {
    const float *z = logits + (size_t)n * V;
    float *p = probs + (size_t)n * V;
    float mx = z[0];
#pragma omp simd reduction(max : mx)
    for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int v = 0; v < V; v++) {
      p[v] = expf(z[v] - mx);
      sum += p[v];
    }
    float inv = 1.0f / sum;
    for (int v = 0; v < V; v++) p[v] *= inv;
    if (weight[n] != 0.0f) {
      // -log softmax computed from the logits (not log of a rounded probability)
      losses[n] = logf(sum) + mx - z[tgt[n]];
      total += (double)weight[n] * losses[n];
    } else {
      losses[n] = 0.0f;
    }
  }
  return total;
}

void crossentropy_backward(float *dlogits, const float *probs, const uint16_t *tgt,
                           const float *weight, int N, int V) {
#pragma omp parallel for schedule(static) if ((size_t)N * V > PAR_MIN)
  for (int n = 0; n < N; n++) {
    float w = weight[n];
    if (w == 0.0f) continue;
    float *d = dlogits + (size_t)n * V;
    const float *p = probs + (size_t)n * V;
    for (int v = 0; v < V; v++) d[v] += w * p[v];
    d[tgt[n]] -= w;
  }
}
