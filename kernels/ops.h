// ops: the transformer's operations as forward/backward pairs over flat float buffers (llm.c
// style). kernels/cpu/ holds the reference implementation (OpenBLAS sgemm for matrix products,
// OpenMP across rows, batch and heads); kernels/cuda/ holds the same ops on the GPU, and
// kernels/backend.h the table through which the engine calls either. Per-element arithmetic both
// share is in kernels/math.h.
// Dimension letters: B batch, T positions, C channels, OC output channels, V vocabulary,
// NH heads, N rows (= B*T where the op is per position). Weights are [OC, C] (y = x W^T + b).
// Every backward ACCUMULATES (+=) into its input and parameter gradients, so the caller zeroes
// them once; a NULL gradient pointer skips that gradient.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "kernels/math.h"

// h0 = token embedding + position embedding.
// AR (sos != NULL): out[b,0] = sos + wpe[0]; out[b,t] = wte[tok[b,t-1]] + wpe[t].
// BERT (sos == NULL): out[b,t] = (mask[b,t] ? 0 : wte[tok[b,t]]) + wpe[t]  (mask may be NULL).
void encoder_forward(float *out, const uint16_t *tok, const uint8_t *mask, const float *wte,
                     const float *wpe, const float *sos, int B, int T, int C);
void encoder_backward(float *dwte, float *dwpe, float *dsos, const float *dout, const uint16_t *tok,
                      const uint8_t *mask, int B, int T, int C);

// out = x * rsqrt(mean(x^2) + 1e-5) * g per row (no mean subtraction, no bias); rstd[N] kept.
void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *g, int N, int C);
void rmsnorm_backward(float *dinp, float *dg, const float *dout, const float *inp, const float *g,
                      const float *rstd, int N, int C);

// out[N,OC] = inp[N,C] @ w[OC,C]^T (+ bias[OC] when not NULL).
void matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C,
                    int OC);
void matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                     const float *w, int N, int C, int OC);

// Multi-head attention. qkv [B,T,3C] (q | k | v, head h at channels h*C/NH..), out [B,T,C],
// att [B,NH,T,T] softmax(q k^T / sqrt(C/NH)) with the causal mask when causal != 0; with the
// mask, entries right of the diagonal are only written (as 0) within each 64-row block's columns.
void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH,
                       int causal);
// datt is scratch [B,NH,T,T]. out is the forward's output, which the CPU does not read (it has the
// probabilities; the GPU's flash path takes D = rowsum(dout * out) from it, kernels/math.h).
void attention_backward(float *dqkv, float *datt, const float *dout, const float *out,
                        const float *qkv, const float *att, int B, int T, int C, int NH, int causal);

// gelu2(x) = x * sigmoid(1.702 x) (HF: quick_gelu).
void gelu2_forward(float *out, const float *inp, size_t N);
void gelu2_backward(float *dinp, const float *inp, const float *dout, size_t N);

// out = a + b (the residual stream); its backward is the identity to both, so the model passes
// the same gradient buffer on instead of calling a kernel.
void residual_forward(float *out, const float *a, const float *b, size_t N);

// Softmax cross-entropy per row: probs[N,V] = softmax(logits), losses[n] = -log probs[n,tgt[n]]
// for rows with weight[n] != 0 (0 elsewhere). Returns sum_n weight[n] * losses[n] in double.
double crossentropy_forward(float *losses, float *probs, const float *logits, const uint16_t *tgt,
                            const float *weight, int N, int V);
// dlogits[n,:] += weight[n] * (probs[n,:] - onehot(tgt[n])): the gradient of sum_n w_n loss_n.
void crossentropy_backward(float *dlogits, const float *probs, const uint16_t *tgt,
                           const float *weight, int N, int V);

// out[B,C] = mean over T of inp[B,T,C] (the pooled features and the classifier's input).
void meanpool_forward(float *out, const float *inp, int B, int T, int C);
void meanpool_backward(float *dinp, const float *dout, int B, int T, int C);

// One query position against a key/value cache (incremental decoding): for each (b, h),
// out[b, h*hd..] = softmax(q[b, h*hd..] . kc[b,h,j] / sqrt(hd), j < n) @ vc[b,h,j], with
// q rows q_stride floats apart, caches [B, NH, cap, hd], scores scratch [B, NH, cap].
void attention_decode_forward(float *out, float *scores, const float *q, int q_stride, const float *kc,
                              const float *vc, int B, int NH, int hd, int n, int cap);
// Appends position t's keys and values (from qkv [B, 3C], C = NH*hd) to caches [B, NH, cap, hd].
void kvcache_append(float *kc, float *vc, const float *qkv, int B, int NH, int hd, int cap, int t);
