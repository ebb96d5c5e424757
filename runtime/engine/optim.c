// optim: AdamW, clipping and accumulation scaling through the model's backend. See optim.h.
#include "engine/optim.h"
#include "base/util.h"
#include <string.h>

int optim_attach(optim *o, model *m, float *host_m, float *host_v) {
  const backend *be = m->be;
  *o = (optim){.m = m, .host_m = host_m, .host_v = host_v, .mom_m = host_m, .mom_v = host_v};
  for (int p = 0; p < P_NTENSORS; p++) o->lr_scale[p] = 1.0;
  if (be->host_memory) return 0;
  size_t bytes = m->n_params * sizeof(float);
  o->mom_m = be->alloc(bytes);
  o->mom_v = o->mom_m ? be->alloc(bytes) : NULL;
  if (!o->mom_v) {
    optim_release(o);
    return igpt_err("out of memory on %s: 2 x %.1f MiB for the Adam moments", be->detail, bytes / 1048576.0);
  }
  be->upload(o->mom_m, host_m, bytes);
  be->upload(o->mom_v, host_v, bytes);
  return 0;
}

void optim_release(optim *o) {
  if (o->m && !o->m->be->host_memory) {
    if (o->mom_m) o->m->be->release(o->mom_m);
    if (o->mom_v) o->m->be->release(o->mom_v);
  }
  memset(o, 0, sizeof *o);
}

void optim_scale(optim *o, float s) { o->m->be->scale(o->m->bgrads, o->m->n_params, s); }

double optim_clip(optim *o, double max_norm) {
  const backend *be = o->m->be;
  double norm = be->global_norm(o->m->bgrads, o->m->n_params);
  if (max_norm > 0 && norm > max_norm) be->scale(o->m->bgrads, o->m->n_params, (float)(max_norm / (norm + 1e-6)));
  return norm;
}

// Matrices decay; gains, biases and the sos vector do not (AdamW practice, GPT-2 style).
static bool decays(const model_tensor_info *t) { return t->ndim - (t->per_layer ? 1 : 0) >= 2; }

void optim_step(optim *o, long t, double lr, double weight_decay, const adamw_opts *ao) {
  model *m = o->m;
  for (int p = 0; p < P_NTENSORS; p++) {
    const model_tensor_info *ti = &m->info[p];
    if (!ti->numel) continue;
    adamw_step s = adamw_scalars(t, lr * o->lr_scale[p], decays(ti) ? weight_decay : 0.0, ao);
    m->be->adamw_apply(m->bparam[p], m->bgrad[p], o->mom_m + ti->offset, o->mom_v + ti->offset, ti->numel, &s);
  }
  m->backend_newer = !m->be->host_memory;
}

void optim_sync(optim *o) {
  model *m = o->m;
  if (m->be->host_memory) return;
  size_t bytes = m->n_params * sizeof(float);
  m->be->download(o->host_m, o->mom_m, bytes);
  m->be->download(o->host_v, o->mom_v, bytes);
  model_pull(m);
}
