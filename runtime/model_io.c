// model_io: the native model file, safetensors with every present parameter tensor as F32 under
// its native name and the config JSON in __metadata__["config"]. See model.h.
#include "model.h"
#include "safetensors.h"
#include "util.h"
#include <stdlib.h>
#include <string.h>

int model_save(const model *m, const char *path) {
  st_writer *w = st_writer_new();
  for (int p = 0; p < P_NTENSORS; p++) {
    const model_tensor_info *t = &m->info[p];
    if (t->numel) st_writer_add(w, t->name, ST_F32, t->ndim, t->shape, m->param[p]);
  }
  char *cfg = model_config_dump(&m->cfg);
  st_writer_meta(w, "config", cfg);
  free(cfg);
  int rc = st_writer_save(w, path);
  st_writer_free(w);
  return rc;
}

model *model_load(const char *path) {
  st_file f;
  if (st_open(&f, path)) return NULL;
  model *m = NULL;
  const char *cfg_json = st_meta(&f, "config");
  if (!cfg_json) {
    igpt_err("%s: no __metadata__ \"config\": not a native model file (HuggingFace weights are "
             "read with 'igpt import --from hf')", path);
    goto fail;
  }
  model_config cfg;
  char *where = xasprintf("%s: __metadata__ config", path);
  int rc = model_config_parse(cfg_json, where, &cfg);
  free(where);
  if (rc) goto fail;
  m = model_new(&cfg);
  if (!m) goto fail;
  for (int p = 0; p < P_NTENSORS; p++) {
    const model_tensor_info *ti = &m->info[p];
    if (!ti->numel) {
      if (st_get(&f, ti->name)) {
        igpt_err("%s: tensor '%s' is present but the config (bias %s, objective %s, n_classes %d) "
                 "has no such tensor", path, ti->name, cfg.bias ? "true" : "false",
                 cfg.objective == OBJ_BERT ? "bert" : "ar", cfg.n_classes);
        goto fail;
      }
      continue;
    }
    const st_tensor *t = st_expect(&f, ti->name, ST_F32, ti->ndim, ti->shape);
    if (!t) {
      char *msg = xstrdup(igpt_errmsg());
      igpt_err("%s (for the config in the file: n_layer %d, n_embd %d, n_ctx %d, n_vocab %d)", msg,
               cfg.n_layer, cfg.n_embd, cfg.n_ctx, cfg.n_vocab);
      free(msg);
      goto fail;
    }
    memcpy(m->param[p], t->data, ti->numel * sizeof(float));
  }
  for (int i = 0; i < f.n; i++) {
    int p = 0;
    while (p < P_NTENSORS && strcmp(m->info[p].name, f.tensors[i].name)) p++;
    if (p == P_NTENSORS) {
      igpt_err("%s: unexpected tensor '%s' in a native model file", path, f.tensors[i].name);
      goto fail;
    }
  }
  st_close(&f);
  return m;
fail:
  model_free(m);
  st_close(&f);
  return NULL;
}
