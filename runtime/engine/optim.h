// optim: the optimizer on the model's backend, shared by pretraining and fine-tuning: the AdamW
// moments beside the parameters (device memory on a GPU, the checkpoint's own arrays on the CPU),
// one AdamW step over every tensor (matrices decay; gains, biases and sos do not), accumulation
// scaling and global-norm clipping of the gradients (engine/adamw.h has the arithmetic).
#pragma once
#include "engine/adamw.h"
#include "engine/model.h"

typedef struct {
  model *m;
  float *host_m, *host_v;  // the checkpoint's moments [n_params] (train_state)
  float *mom_m, *mom_v;    // the same on the backend (== host_m, host_v on the CPU)
  double lr_scale[P_NTENSORS];  // each tensor's rate is lr x this (1 after attach; fine-tune's head)
} optim;

// Attaches moments host_m, host_v [n_params] (read now) to model m. -1 with igpt_err when the
// backend has no memory for them.
int optim_attach(optim *o, model *m, float *host_m, float *host_v);
void optim_release(optim *o);
// grads *= s (s = 1 / micro-batches).
void optim_scale(optim *o, float s);
// Clips the gradients' global norm to max_norm as grad_clip does; returns the norm before.
double optim_clip(optim *o, double max_norm);
// One AdamW step t (1-based) at learning rate lr; weight_decay applies to matrices only.
void optim_step(optim *o, long t, double lr, double weight_decay, const adamw_opts *ao);
// The moments into host_m, host_v and the parameters into m->params (before a checkpoint).
void optim_sync(optim *o);
