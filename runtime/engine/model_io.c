// model_io: the native model file, safetensors with every present parameter tensor as F32 under
// its native name and the config JSON in __metadata__["config"]. See model.h.
#include "engine/model.h"
#include "base/safetensors.h"
#include "base/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int model_save(const model *m, const char *path) { return model_save_at(m, path, -1); }

int model_save_at(const model *m, const char *path, long long step) {
  model_pull((model *)m);  // the host copy is a cache of the backend's weights: refresh it
  st_writer *w = st_writer_new();
  for (int p = 0; p < P_NTENSORS; p++) {
    const model_tensor_info *t = &m->info[p];
    if (t->numel) st_writer_add(w, t->name, ST_F32, t->ndim, t->shape, m->param[p]);
  }
  char *cfg = model_config_dump(&m->cfg);
  st_writer_meta(w, "config", cfg);
  free(cfg);
  if (step >= 0) {
    char sv[24];
    snprintf(sv, sizeof sv, "%lld", step);
    st_writer_meta(w, "step", sv);
  }
  int rc = st_writer_save(w, path);
  st_writer_free(w);
  return rc;
}

model *model_load(const char *path) {
  st_file f;
  if (st_open(&f, path)) return NULL;
  model *m = model_from_st(&f);
  st_close(&f);
  return m;
}

model *model_from_st(const st_file *f) {
  const char *path = f->path ? f->path : "(buffer)";
  const char *cfg_json = st_meta(f, "config");
  if (!cfg_json) {
    igpt_err("%s: no __metadata__ \"config\": not a native model file (HuggingFace weights are "
             "read with 'igpt import --from hf')", path);
    return NULL;
  }
  model_config cfg;
  char *where = xasprintf("%s: __metadata__ config", path);
  int rc = model_config_parse(cfg_json, where, &cfg);
  free(where);
  if (rc) return NULL;
  // every tensor is checked against the config's layout before anything is allocated, so a
  // config that claims a huge model fails on its tensors instead of exhausting memory
  model_tensor_info info[P_NTENSORS];
  model_param_layout(&cfg, info);
  const st_tensor *src[P_NTENSORS] = {0};
  for (int p = 0; p < P_NTENSORS; p++) {
    const model_tensor_info *ti = &info[p];
    if (!ti->numel) {
      if (st_get(f, ti->name))
        return igpt_err("%s: tensor '%s' is present but the config (bias %s, objective %s, n_classes %d) "
                        "has no such tensor", path, ti->name, cfg.bias ? "true" : "false",
                        cfg.objective == OBJ_BERT ? "bert" : "ar", cfg.n_classes), NULL;
      continue;
    }
    src[p] = st_expect(f, ti->name, ST_F32, ti->ndim, ti->shape);
    if (!src[p]) {
      char *msg = xstrdup(igpt_errmsg());
      igpt_err("%s (for the config in the file: n_layer %d, n_embd %d, n_ctx %d, n_vocab %d)", msg,
               cfg.n_layer, cfg.n_embd, cfg.n_ctx, cfg.n_vocab);
      free(msg);
      return NULL;
    }
  }
  for (int i = 0; i < f->n; i++) {
    int p = 0;
    while (p < P_NTENSORS && strcmp(info[p].name, f->tensors[i].name)) p++;
    if (p == P_NTENSORS)
      return igpt_err("%s: unexpected tensor '%s' in a native model file", path, f->tensors[i].name), NULL;
  }
  model *m = model_new(&cfg);
  if (!m) return NULL;
  for (int p = 0; p < P_NTENSORS; p++)
    if (src[p]) memcpy(m->param[p], src[p]->data, info[p].numel * sizeof(float));
  if (model_check_finite(m, path) < 0) {
    model_free(m);
    return NULL;
  }
  return m;
}

int model_check_finite(const model *m, const char *path) {
  for (int p = 0; p < P_NTENSORS; p++) {
    const model_tensor_info *t = &m->info[p];
    const float *x = m->param[p];
    size_t bad = t->numel;
#pragma omp parallel for reduction(min : bad) schedule(static)
    for (size_t i = 0; i < t->numel; i++)
      if (!isfinite(x[i]) && i < bad) bad = i;
    if (bad == t->numel) continue;
    char layer[48] = "";
    if (t->per_layer && m->cfg.n_layer > 0)
      snprintf(layer, sizeof layer, " (layer %zu)", bad / (t->numel / (size_t)m->cfg.n_layer));
    return igpt_err("%s: tensor '%s'%s holds %g at element %zu: the weights are not finite (a diverged run?); "
                    "use an earlier checkpoint or retrain with a lower --lr", path, t->name, layer, (double)x[bad], bad);
  }
  return 0;
}
