// cuda: what the CUDA ops share: the error checks (file, line and a hint, then exit 1, as llm.c:
// a failed launch mid-pass leaves nothing to recover), the process's device state (the
// cuBLASLt handle and workspace, precision), launch helpers, and the ops' declarations
// (each defined in its own .cu beside this, with the signature of kernels/ops.h, prefixed cuda_).
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include "kernels/backend.h"

#define CUDA_CHECK(call)                                                                          \
  do {                                                                                            \
    cudaError_t e_ = (call);                                                                      \
    if (e_ != cudaSuccess) {                                                                      \
      fprintf(stderr, "igpt: CUDA error at %s:%d: %s (%s); rerun with CUDA_LAUNCH_BLOCKING=1 to " \
              "place it, or --device cpu\n", __FILE__, __LINE__, cudaGetErrorString(e_), #call);  \
      exit(1);                                                                                    \
    }                                                                                             \
  } while (0)
#define CUBLAS_CHECK(call)                                                                        \
  do {                                                                                            \
    cublasStatus_t s_ = (call);                                                                   \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                            \
      fprintf(stderr, "igpt: cuBLAS error %d at %s:%d (%s); check the shapes, or --device cpu\n", \
              (int)s_, __FILE__, __LINE__, #call);                                                \
      exit(1);                                                                                    \
    }                                                                                             \
  } while (0)
#define LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

typedef struct {
  cublasLtHandle_t lt;
  void *workspace;  // cuBLASLt's (32 MiB, as Hopper's kernels want)
  size_t workspace_size;
  bool bf16;        // products with bf16 inputs and fp32 accumulation (else pure fp32)
  int sm_count;
  char detail[352];
} cuda_state;
extern cuda_state cuda_g;

static inline unsigned ceil_div(size_t a, size_t b) { return (unsigned)((a + b - 1) / b); }

// A device scratch buffer that grows (never shrinks) across calls; one per purpose.
void *cuda_scratch(void **buf, size_t *cap, size_t bytes);

// C = alpha op(A) op(B) + beta C in column-major terms, fp32 storage, strided batches (batch 1:
// plain); bf16 precision uses CUBLAS_COMPUTE_32F_FAST_16BF (inputs rounded to bf16, fp32
// accumulation), fp32 CUBLAS_COMPUTE_32F (no TF32).
void cuda_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *A, int lda,
               long long sA, const float *B, int ldb, long long sB, float beta, float *C, int ldc,
               long long sC, int batch);

void cuda_encoder_forward(float *out, const uint16_t *tok, const uint8_t *mask, const float *wte,
                          const float *wpe, const float *sos, int B, int T, int C);
void cuda_encoder_backward(float *dwte, float *dwpe, float *dsos, const float *dout,
                           const uint16_t *tok, const uint8_t *mask, int B, int T, int C);
void cuda_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *g, int N, int C);
void cuda_rmsnorm_backward(float *dinp, float *dg, const float *dout, const float *inp,
                           const float *g, const float *rstd, int N, int C);
void cuda_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N,
                         int C, int OC);
void cuda_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout,
                          const float *inp, const float *w, int N, int C, int OC);
size_t cuda_attention_floats(int B, int NH, int T, int hd, bool keep);
void cuda_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH,
                            int causal);
void cuda_attention_backward(float *dqkv, float *datt, const float *dout, const float *out,
                             const float *qkv, const float *att, int B, int T, int C, int NH, int causal);
void cuda_gelu2_forward(float *out, const float *inp, size_t N);
void cuda_gelu2_backward(float *dinp, const float *inp, const float *dout, size_t N);
void cuda_residual_forward(float *out, const float *a, const float *b, size_t N);
double cuda_crossentropy_forward(float *losses, float *probs, const float *logits,
                                 const uint16_t *tgt, const float *weight, int N, int V);
void cuda_crossentropy_backward(float *dlogits, const float *probs, const uint16_t *tgt,
                                const float *weight, int N, int V);
void cuda_meanpool_forward(float *out, const float *inp, int B, int T, int C);
void cuda_meanpool_backward(float *dinp, const float *dout, int B, int T, int C);
void cuda_attention_decode_forward(float *out, float *scores, const float *q, int q_stride,
                                   const float *kc, const float *vc, int B, int NH, int hd, int n,
                                   int cap);
void cuda_kvcache_append(float *kc, float *vc, const float *qkv, int B, int NH, int hd, int cap,
                         int t);
void cuda_adamw_apply(float *p, const float *g, float *m, float *v, size_t n, const adamw_step *s);
double cuda_global_norm(const float *g, size_t n);
void cuda_scale(float *g, size_t n, float s);
