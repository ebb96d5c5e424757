// probe_head: the fine-tune's head from the probe's solution; see probe_head.h.
#include "eval/probe_head.h"
#include "eval/probe.h"
#include "engine/featurize.h"
#include "base/util.h"
#include <math.h>
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

// The same layer read from a features file of this model on set d (split names it: "train",
// "val"): checked against the set and the model (shape, labels, BERT mask seed, and the first
// batch's features recomputed), so a file of another model, set or mask seed is an error naming
// it rather than a head fit to the wrong rows. The first mask's rows (BERT).
static float *file_features(model *m, const finetune_set *d, const probe_head_opts *o, const char *split) {
  char *path = xasprintf("%s/%s.safetensors", o->features_dir, split);
  features_file ff;
  float *x = NULL;
  if (features_open(&ff, path)) {
    igpt_err_prefix("--head-features");
    free(path);
    return NULL;
  }
  const int L = m->cfg.n_layer, C = m->cfg.n_embd;
  const char *seed = st_meta(&ff.st, "mask_seed");
  if (ff.n_layers != L + 1 || ff.dims[L] != C)
    igpt_err("--head-features %s: %d layers, the last %d wide; the model has layers 0..%d of %d", path, ff.n_layers,
             ff.dims[ff.n_layers - 1], L, C);
  else if (ff.n != d->N)
    igpt_err("--head-features %s: %lld rows, the %s tokens %lld", path, (long long)ff.n, split, (long long)d->N);
  else if (memcmp(ff.labels, d->labels, sizeof(int32_t) * (size_t)d->N))
    igpt_err("--head-features %s: its labels are not the %s tokens' (another set, or another order)", path, split);
  else if (m->cfg.objective == OBJ_BERT && (!seed || strtoull(seed, NULL, 10) != o->seed))
    igpt_err("--head-features %s: BERT features with mask seed %s; the fine-tune's seed is %llu", path,
             seed ? seed : "(none)", (unsigned long long)o->seed);
  else if (!features_check_finite(&ff, split)) {
    x = xmalloc(sizeof(float) * (size_t)d->N * C);
    memcpy(x, ff.layer[L], sizeof(float) * (size_t)d->N * C);
  }
  if (x) {  // the first batch's rows recomputed: the file must be this model on these tokens
    finetune_set head = *d;
    head.N = d->N < o->batch ? d->N : o->batch;
    float *y = final_features(m, &head, &(probe_head_opts){.batch = o->batch, .seed = o->seed});
    double diff = 0, scale = 0;
    for (int64_t i = 0; y && i < head.N * C; i++) {
      diff = fmax(diff, fabs((double)x[i] - y[i]));
      scale = fmax(scale, fabs((double)y[i]));
    }
    // 1e-2 of the features' scale: far above a batch size's or bf16's rounding, far below
    // the difference between two images' features
    if (!y || diff > 1e-2 * fmax(scale, 1e-6)) {
      if (y) igpt_err("--head-features %s: its first %lld rows differ from this model's features of the %s tokens "
                      "by up to %.3g (scale %.3g): another model or another set", path, (long long)head.N, split,
                      diff, scale);
      free(x);
      x = NULL;
    }
    free(y);
  }
  features_close(&ff);
  free(path);
  return x;
}

static float *head_features(model *m, const finetune_set *d, const probe_head_opts *o, const char *split) {
  return o->features_dir ? file_features(m, d, o, split) : final_features(m, d, o);
}

int probe_head_init(model *m, const finetune_set *train, const finetune_set *val, void *ctx) {
  const probe_head_opts *o = ctx;
  const int C = m->cfg.n_embd, K = m->cfg.n_classes;
  if (K < 2) return igpt_err("probe head: the model has %d classes", K);
  double t0 = now_seconds();
  float *xt = head_features(m, train, o, "train"), *xv = xt ? head_features(m, val, o, "val") : NULL;
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
             "(%d fits, %.1f s%s%s)", sr.best_C, sr.best_val_acc, sr.n_fits, now_seconds() - t0,
             o->features_dir ? ", features from " : "", o->features_dir ? o->features_dir : "");
  }
  sweep_result_free(&sr);
  free(xt);
  free(xv);
  return rc;
}
