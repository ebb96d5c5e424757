// math: the per-element arithmetic of the ops, shared by the CPU reference (kernels/cpu/) and the
// CUDA kernels (kernels/cuda/): the norm's scale of a row, gelu2 and its derivative, one AdamW
// update, the online-softmax step. Under nvcc these are __host__ __device__, so the CPU tests run
// the very expressions the GPU runs and only the thread mapping is new on the GPU.
#pragma once
#include <math.h>

#ifdef __CUDACC__
#define KMATH static __host__ __device__ __forceinline__
#else
#define KMATH static inline
#endif

#define RMSNORM_EPS 1e-5f
#define GELU2_A 1.702f
// The gradients' global norm sums squares over fixed chunks of this many floats (in double), on
// every backend: the rounding then depends on neither the thread count nor the launch shape, which
// the bit-identical resume promise needs and which keeps the CPU's and the GPU's norms alike.
#define NORM_CHUNK 65536

// 1 / sqrt(mean(x^2) + eps) of a row whose squares sum to ss over C channels.
KMATH float rms_rstd(float ss, int C) { return 1.0f / sqrtf(ss / C + RMSNORM_EPS); }

// gelu2(x) = x * sigmoid(1.702 x) and its derivative s + a x s (1 - s), s = sigmoid(a x).
KMATH float gelu2(float x) { return x / (1.0f + expf(-GELU2_A * x)); }
KMATH float gelu2_grad(float x) {
  float s = 1.0f / (1.0f + expf(-GELU2_A * x));
  return s + GELU2_A * x * s * (1.0f - s);
}

// The scalars of one AdamW step, computed once per tensor in double (engine/adamw.c) and applied
// per element in float, the parameters' precision.
typedef struct {
  float lr;      // learning rate
  float b1, b2;  // moment decays
  float eps;
  float c1, c2;  // bias corrections 1 / (1 - b^t)
  float decay;   // lr * weight decay (decoupled)
} adamw_step;

// m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr (m c1) / (sqrt(v c2) + eps) + decay p.
KMATH void adamw_element(float *p, float g, float *m, float *v, const adamw_step *s) {
  float mi = s->b1 * *m + (1.0f - s->b1) * g;
  float vi = s->b2 * *v + (1.0f - s->b2) * g * g;
  *m = mi;
  *v = vi;
  *p -= s->lr * ((mi * s->c1) / (sqrtf(vi * s->c2) + s->eps)) + s->decay * *p;
}

// Online softmax (flash attention's recurrence): after scores s_1..s_j, mx is their max and sum
// is sum_i exp(s_i - mx). Adding score x returns the factor by which earlier exp-weighted sums
// (the running output) must be rescaled; *p gets exp(x - new max).
KMATH float online_softmax_step(float *mx, float *sum, float x, float *p) {
  float m_new = x > *mx ? x : *mx;
  float rescale = expf(*mx - m_new);  // exp(-inf) = 0 on the first score
  *p = expf(x - m_new);
  *sum = *sum * rescale + *p;
  *mx = m_new;
  return rescale;
}

// Flash attention's backward (kernels/cuda/attention.cu) recomputes each probability from the
// row's log-sum-exp that the forward saved, lse = mx + log(sum) of the recurrence above, and takes
// the score's gradient as dS = P (dP - D), dP = dout_i . v_j, with D = dout_i . out_i, which
// equals rowsum(P dP), the term the materialising backward (kernels/cpu/attention.c) sums instead.
KMATH float softmax_lse(float mx, float sum) { return mx + logf(sum); }
KMATH float attn_prob(float s, float lse) { return expf(s - lse); }
KMATH float attn_dscore(float p, float dp, float d) { return p * (dp - d); }
