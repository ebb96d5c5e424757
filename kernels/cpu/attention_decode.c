// attention_decode: one new query per sequence against its key/value cache (sampling), and the
// cache's append. Plain loops: the work is a few dot products per cached position. kernels/ops.h.
#include "kernels/ops.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vmath.h"
#include <string.h>

void attention_decode_forward(float *out, float *scores, const float *q, int q_stride, const float *kc,
                              const float *vc, int B, int NH, int hd, int n, int cap) {
  float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * NH * n * hd > PAR_MIN)
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++) {
      const float *qh = q + (size_t)b * q_stride + h * hd;
      const float *k = kc + ((size_t)b * NH + h) * cap * hd, *v = vc + ((size_t)b * NH + h) * cap * hd;
      float *s = scores + ((size_t)b * NH + h) * cap;
      float mx = -INFINITY;
      for (int j = 0; j < n; j++) {
        float d = 0.0f;
#pragma omp simd reduction(+ : d)
        for (int e = 0; e < hd; e++) d += qh[e] * k[(size_t)j * hd + e];
        s[j] = d * scale;
        mx = s[j] > mx ? s[j] : mx;
      }
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int j = 0; j < n; j++) {
        s[j] = expf(s[j] - mx);
        sum += s[j];
      }
      float *o = out + (size_t)b * NH * hd + h * hd;
      for (int e = 0; e < hd; e++) o[e] = 0.0f;
      for (int j = 0; j < n; j++) {
        float p = s[j] / sum;
        for (int e = 0; e < hd; e++) o[e] += p * v[(size_t)j * hd + e];
      }
    }
}

void kvcache_append(float *kc, float *vc, const float *qkv, int B, int NH, int hd, int cap, int t) {
  size_t C = (size_t)NH * hd;
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++) {
      size_t row = (((size_t)b * NH + h) * cap + t) * hd;
      memcpy(kc + row, qkv + (size_t)b * 3 * C + C + h * hd, hd * sizeof(float));
      memcpy(vc + row, qkv + (size_t)b * 3 * C + 2 * C + h * hd, hd * sizeof(float));
    }
}
