// probe_head: the fine-tune's head from the probe's solution; see probe_head.h.
#include "eval/probe_head.h"
#include "eval/probe.h"
#include "engine/featurize.h"
#include "base/util.h"
#include <stdlib.h>
#include <string.h>

// The final norm's pooled features [N, C] of a set (layer L of features_extract_ranks); the
// other layers are freed at once.
static float *final_features(model *m, const finetune_set *d, const probe_head_opts *o) {
  features_opts fo = {.batch = o->batch, .masks = 1, .seed = o->seed, .progress = o->progress};
  float **out = NULL;
  if (features_extract_ranks(m, d->tokens, d->N, (int)d->T, &fo, &out, NULL)) return NULL;
  const int L = m->cfg.n_layer;
  float *x = out[L];
  for (int l = 0; l < L; l++) free(out[l]);
  free(out);
  return x;
}

int probe_head_init(model *m, const finetune_set *train, const finetune_set *val, void *ctx) {
  const probe_head_opts *o = ctx;
  const int C = m->cfg.n_embd, K = m->cfg.n_classes;
  if (K < 2) return igpt_err("probe head: the model has %d classes", K);
  double t0 = now_seconds();
  float *xt = final_features(m, train, o), *xv = xt ? final_features(m, val, o) : NULL;
  if (!xv) { free(xt); return -1; }
  logreg_data tr = {.n = train->N, .d = C, .k = K, .x = xt, .y = train->labels};
  sweep_opts so = sweep_defaults();
  so.seed = o->seed;
  so.no_intercept = 1;
  sweep_result sr = {0};
  int rc = probe_sweep(&tr, xv, 1, val->N, val->labels, &so, &sr);
  if (!rc) {
    float *w = m->param[P_WCLF];  // [K, C]: θ's weights are row-major [K, C] too
    for (int64_t j = 0; j < (int64_t)K * C; j++) w[j] = (float)sr.best_theta[j];
    log_info("finetune: the head starts from the probe on the final norm: C %.3g, validation %.4f "
             "(%d fits, %.1f s)", sr.best_C, sr.best_val_acc, sr.n_fits, now_seconds() - t0);
  }
  sweep_result_free(&sr);
  free(xt);
  free(xv);
  return rc;
}
