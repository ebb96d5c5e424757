// adamw: the optimizer step over the flat parameter array (tensor-major, one allocation, so one
// loop covers every tensor): gradient accumulation scaling, global-norm clipping and the AdamW
// update with decoupled weight decay (Loshchilov and Hutter), b1 0.9, b2 0.95, eps 1e-8 (the
// iGPT paper's Adam betas). Every function here gives the same bits for any thread count:
// updates are elementwise and reductions sum fixed chunks in a fixed order.
#pragma once
#include <stddef.h>
#include "kernels/math.h"

typedef struct {
  double beta1, beta2, eps;  // 0.9, 0.95, 1e-8 (adamw_defaults)
  double weight_decay;       // decoupled: p -= lr * wd * p; 0 by default (the paper used none)
} adamw_opts;

adamw_opts adamw_defaults(void);

// One AdamW update of n parameters at step t (1-based, for the bias corrections), learning rate
// lr, weight decay wd (pass 0 for tensors that must not decay, e.g. norm gains):
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p -= lr * ( (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + wd p )
// m and v are the moments (zero before the first step), updated in place.
void adamw_update(float *p, const float *g, float *m, float *v, size_t n, long t, double lr,
                  double wd, const adamw_opts *o);
// The same in two parts, as a backend runs it: the step's scalars (in double, then rounded to
// float once) and the per-element update (adamw_element of kernels/math.h, the CPU's loop).
adamw_step adamw_scalars(long t, double lr, double wd, const adamw_opts *o);
void adamw_apply(float *p, const float *g, float *m, float *v, size_t n, const adamw_step *s);

// The L2 norm of the n gradients (summed in double over fixed chunks: thread-count independent).
double grad_global_norm(const float *g, size_t n);
// g *= s (accumulation: s = 1/micro-batches; clipping: s = clip / norm).
void grad_scale(float *g, size_t n, float s);
// Global-norm clipping as PyTorch's clip_grad_norm_: when norm > max_norm, scales g by
// max_norm / (norm + 1e-6). Returns the norm before clipping. max_norm <= 0 disables clipping.
double grad_clip(float *g, size_t n, double max_norm);
