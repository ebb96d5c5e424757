// backend: the table of function pointers through which the engine runs the ops (ggml style):
// memory on the backend, transfers, the ops of kernels/ops.h with the same signatures and
// meanings, and the optimizer's per-element pieces. The engine (runtime/engine/) composes the
// model from this table only; it never names a device. Two tables exist: the CPU reference
// (engine/device.c, pointing at kernels/cpu/) and CUDA (kernels/cuda/, when built with nvcc).
// Every pointer argument of an op is backend memory (device memory for CUDA) unless said.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kernels/math.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct backend {
  const char *name;     // "cpu", "cuda"
  const char *detail;   // the device and precision, for logs and done.json ("NVIDIA H200, bf16")
  bool host_memory;     // buffers are host memory: the engine reads them without copies

  // memory: alloc returns NULL on exhaustion (the caller reports it); sizes in bytes
  void *(*alloc)(size_t bytes);
  void (*release)(void *p);
  void (*zero)(void *p, size_t bytes);
  void (*upload)(void *dst, const void *host_src, size_t bytes);
  void (*download)(void *host_dst, const void *src, size_t bytes);

  // Floats of `att` that attention_forward needs for B x NH heads of hd channels and T positions
  // (also the size of the backward's datt scratch); keep: the backward will run. The CPU keeps the
  // probabilities [B,NH,T,T] either way; CUDA keeps only each row's log-sum-exp [B,NH,T] for its
  // flash backward (or [B,NH,T,T] on its materialising path) and nothing without a backward.
  size_t (*attention_floats)(int B, int NH, int T, int hd, bool keep);

  // the ops: see kernels/ops.h for each one's contract
  void (*encoder_forward)(float *out, const uint16_t *tok, const uint8_t *mask, const float *wte,
                          const float *wpe, const float *sos, int B, int T, int C);
  void (*encoder_backward)(float *dwte, float *dwpe, float *dsos, const float *dout,
                           const uint16_t *tok, const uint8_t *mask, int B, int T, int C);
  void (*rmsnorm_forward)(float *out, float *rstd, const float *inp, const float *g, int N, int C);
  void (*rmsnorm_backward)(float *dinp, float *dg, const float *dout, const float *inp,
                           const float *g, const float *rstd, int N, int C);
  void (*matmul_forward)(float *out, const float *inp, const float *w, const float *bias, int N,
                         int C, int OC);
  void (*matmul_backward)(float *dinp, float *dw, float *dbias, const float *dout,
                          const float *inp, const float *w, int N, int C, int OC);
  void (*attention_forward)(float *out, float *att, const float *qkv, int B, int T, int C, int NH,
                            int causal);
  void (*attention_backward)(float *dqkv, float *datt, const float *dout, const float *out,
                             const float *qkv, const float *att, int B, int T, int C, int NH, int causal);
  void (*gelu2_forward)(float *out, const float *inp, size_t N);
  void (*gelu2_backward)(float *dinp, const float *inp, const float *dout, size_t N);
  void (*residual_forward)(float *out, const float *a, const float *b, size_t N);
  double (*crossentropy_forward)(float *losses, float *probs, const float *logits,
                                 const uint16_t *tgt, const float *weight, int N, int V);
  void (*crossentropy_backward)(float *dlogits, const float *probs, const uint16_t *tgt,
                                const float *weight, int N, int V);
  void (*meanpool_forward)(float *out, const float *inp, int B, int T, int C);
  void (*meanpool_backward)(float *dinp, const float *dout, int B, int T, int C);
  void (*attention_decode_forward)(float *out, float *scores, const float *q, int q_stride,
                                   const float *kc, const float *vc, int B, int NH, int hd, int n,
                                   int cap);
  void (*kvcache_append)(float *kc, float *vc, const float *qkv, int B, int NH, int hd, int cap,
                         int t);

  // optimizer: one AdamW step over n elements; the L2 norm (thread-count and launch independent);
  // g *= s
  void (*adamw_apply)(float *p, const float *g, float *m, float *v, size_t n, const adamw_step *s);
  double (*global_norm)(const float *g, size_t n);
  void (*scale)(float *g, size_t n, float s);
} backend;

// The CUDA backend (kernels/cuda/): opens device `ordinal` (a data-parallel rank's local rank, 0
// for one process) with precision bf16 (bf16 products with fp32
// accumulation, fp32 master weights) or fp32. 0 and *out set, or -1 with the reason (no driver,
// no device, out of memory, built without CUDA) written into why[n].
int cuda_backend_open(bool bf16, int ordinal, const backend **out, char *why, size_t n);

#ifdef __cplusplus
}
#endif
