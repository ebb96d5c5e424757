// hf: HuggingFace ImageGPT import and export. See hf.h.
#include "interop/hf.h"
#include "base/safetensors.h"
#include "base/util.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add(hf_tensor *t, int *n, int layer, model_param_id p, hf_kind kind, int ndim,
                int64_t s0, int64_t s1, const char *fmt) {
  hf_tensor *x = &t[(*n)++];
  snprintf(x->name, sizeof x->name, fmt, layer);  // fmt has one %d for per-layer tensors
  x->p = p, x->layer = layer, x->kind = kind, x->ndim = ndim, x->shape[0] = s0, x->shape[1] = s1;
}

int hf_tensors(const model_config *c, hf_tensor **out) {
  int L = c->n_layer, n = 0;
  int64_t C = c->n_embd, V = c->n_vocab;
  hf_tensor *t = xcalloc((size_t)L * 10 + 5, sizeof *t);
  add(t, &n, -1, P_WTE, HF_WTE_SOS, 2, V + 1, C, "transformer.wte.weight");
  add(t, &n, -1, P_WPE, HF_PLAIN, 2, c->n_ctx, C, "transformer.wpe.weight");
  for (int l = 0; l < L; l++) {
    add(t, &n, l, P_LN1_G, HF_PLAIN, 1, C, 0, "transformer.h.%d.ln_1.weight");
    add(t, &n, l, P_QKV_W, HF_TRANSPOSE, 2, C, 3 * C, "transformer.h.%d.attn.c_attn.weight");
    add(t, &n, l, P_QKV_B, HF_PLAIN, 1, 3 * C, 0, "transformer.h.%d.attn.c_attn.bias");
    add(t, &n, l, P_ATTPROJ_W, HF_TRANSPOSE, 2, C, C, "transformer.h.%d.attn.c_proj.weight");
    add(t, &n, l, P_ATTPROJ_B, HF_PLAIN, 1, C, 0, "transformer.h.%d.attn.c_proj.bias");
    add(t, &n, l, P_LN2_G, HF_PLAIN, 1, C, 0, "transformer.h.%d.ln_2.weight");
    add(t, &n, l, P_FC_W, HF_TRANSPOSE, 2, C, 4 * C, "transformer.h.%d.mlp.c_fc.weight");
    add(t, &n, l, P_FC_B, HF_PLAIN, 1, 4 * C, 0, "transformer.h.%d.mlp.c_fc.bias");
    add(t, &n, l, P_FCPROJ_W, HF_TRANSPOSE, 2, 4 * C, C, "transformer.h.%d.mlp.c_proj.weight");
    add(t, &n, l, P_FCPROJ_B, HF_PLAIN, 1, C, 0, "transformer.h.%d.mlp.c_proj.bias");
  }
  add(t, &n, -1, P_LNF_G, HF_PLAIN, 1, C, 0, "transformer.ln_f.weight");
  add(t, &n, -1, P_WTET, HF_PLAIN, 2, V, C, "lm_head.weight");
  if (c->n_classes) add(t, &n, -1, P_WCLF, HF_PLAIN, 2, c->n_classes, C, "score.weight");
  *out = t;
  return n;
}

static size_t hf_numel(const hf_tensor *t) {
  return (size_t)t->shape[0] * (size_t)(t->ndim == 2 ? t->shape[1] : 1);
}

// The native slice behind an HF tensor (NULL: a bias the native model does not have).
static float *native(const model *m, bool grads, const hf_tensor *t) {
  float *base = grads ? m->grad[t->p] : m->param[t->p];
  if (!base || t->layer < 0) return base;
  return base + (size_t)t->layer * (m->info[t->p].numel / (size_t)m->cfg.n_layer);
}

void hf_tensor_get(const model *m, bool grads, const hf_tensor *t, float *out) {
  const float *src = native(m, grads, t);
  size_t n = hf_numel(t);
  int64_t C = m->cfg.n_embd, V = m->cfg.n_vocab;
  if (!src) {
    memset(out, 0, n * sizeof *out);
  } else if (t->kind == HF_PLAIN) {
    memcpy(out, src, n * sizeof *out);
  } else if (t->kind == HF_TRANSPOSE) {  // HF [in, out] from native [out, in]
    int64_t in = t->shape[0], o = t->shape[1];
    for (int64_t i = 0; i < in; i++)
      for (int64_t j = 0; j < o; j++) out[i * o + j] = src[j * in + i];
  } else {  // wte rows then sos
    memcpy(out, src, (size_t)(V * C) * sizeof *out);
    const float *sos = grads ? m->grad[P_SOS] : m->param[P_SOS];
    if (sos) memcpy(out + V * C, sos, (size_t)C * sizeof *out);
    else memset(out + V * C, 0, (size_t)C * sizeof *out);
  }
}

int hf_tensor_set(model *m, const hf_tensor *t, const float *in) {
  float *dst = native(m, false, t);
  size_t n = hf_numel(t);
  int64_t C = m->cfg.n_embd, V = m->cfg.n_vocab;
  if (!dst) {
    for (size_t i = 0; i < n; i++)
      if (in[i] != 0.0f) return igpt_err("tensor '%s' has nonzero entries but the model has no biases", t->name);
  } else if (t->kind == HF_PLAIN) {
    memcpy(dst, in, n * sizeof *dst);
  } else if (t->kind == HF_TRANSPOSE) {
    int64_t i_n = t->shape[0], o = t->shape[1];
    for (int64_t i = 0; i < i_n; i++)
      for (int64_t j = 0; j < o; j++) dst[j * i_n + i] = in[i * o + j];
  } else {
    memcpy(dst, in, (size_t)(V * C) * sizeof *dst);
    if (!m->param[P_SOS]) return igpt_err("tensor '%s': the model has no sos vector (BERT)", t->name);
    memcpy(m->param[P_SOS], in + V * C, (size_t)C * sizeof *dst);
  }
  return 0;
}

// ---------------------------------------------------------------- config.json

static int cfg_int(json_t *root, const char *path, const char *key, int *out) {
  json_t *v = json_object_get(root, key);
  if (!v) return igpt_err("%s: field '%s' is missing", path, key);
  if (!json_is_integer(v)) return igpt_err("%s: field '%s' must be an integer", path, key);
  json_int_t x = json_integer_value(v);
  if (x < 0 || x > (1 << 20)) return igpt_err("%s: field '%s' is out of range (%lld)", path, key, (long long)x);
  *out = (int)x;
  return 0;
}

int hf_config_load(const char *dir, model_config *c) {
  char *path = xasprintf("%s/config.json", dir);
  json_error_t e;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
  int rc = -1;
  if (!root) {
    igpt_err("%s: cannot read as JSON: %s (line %d)", path, e.text, e.line);
    goto out;
  }
  if (!json_is_object(root)) {
    igpt_err("%s: not a JSON object", path);
    goto out;
  }
  model_config_default(c);
  c->bias = true;
  int vocab;
  if (cfg_int(root, path, "n_layer", &c->n_layer) || cfg_int(root, path, "n_embd", &c->n_embd) ||
      cfg_int(root, path, "n_head", &c->n_head) || cfg_int(root, path, "n_positions", &c->n_ctx) ||
      cfg_int(root, path, "vocab_size", &vocab))
    goto out;
  c->n_vocab = vocab - 1;  // the last row is sos
  const char *act = json_string_value(json_object_get(root, "activation_function"));
  if (act && strcmp(act, "quick_gelu")) {
    igpt_err("%s: field 'activation_function' is \"%s\"; Image GPT uses quick_gelu (gelu2), the only "
             "one this engine implements", path, act);
    goto out;
  }
  json_t *eps = json_object_get(root, "layer_norm_epsilon");
  if (eps && (!json_is_number(eps) || fabs(json_number_value(eps) - 1e-5) > 1e-12)) {
    igpt_err("%s: field 'layer_norm_epsilon' must be 1e-5 (the official norm's)", path);
    goto out;
  }
  json_t *inner = json_object_get(root, "n_inner");
  if (inner && !json_is_null(inner) &&
      !(json_is_integer(inner) && json_integer_value(inner) == 4 * (json_int_t)c->n_embd)) {
    igpt_err("%s: field 'n_inner' must be null or 4 * n_embd", path);
    goto out;
  }
  json_t *inv = json_object_get(root, "scale_attn_by_inverse_layer_idx");
  if (json_is_true(inv)) {
    igpt_err("%s: field 'scale_attn_by_inverse_layer_idx' is true; Image GPT does not scale so", path);
    goto out;
  }
  rc = model_config_validate(c, path);
out:
  json_decref(root);
  free(path);
  return rc;
}

// ---------------------------------------------------------------- import / export

// Tensors that are buffers in older HF checkpoints, not weights.
static bool hf_buffer(const char *name) {
  size_t n = strlen(name);
  return (n > 10 && !strcmp(name + n - 10, ".attn.bias")) ||
         (n > 17 && !strcmp(name + n - 17, ".attn.masked_bias"));
}

model *hf_import(const char *dir, bool drop_zero_biases) {
  char *path = xasprintf("%s/model.safetensors", dir);
  st_file f;
  model *m = NULL;
  if (st_open(&f, path) == 0) {
    m = hf_import_tensors(dir, &f, drop_zero_biases);
    st_close(&f);
  }
  free(path);
  return m;
}

model *hf_import_tensors(const char *dir, const st_file *fp, bool drop_zero_biases) {
  model_config c;
  if (hf_config_load(dir, &c)) return NULL;
  const st_file f = *fp;
  const char *path = f.path;
  model *m = NULL;
  hf_tensor *t = NULL;
  float *buf = NULL;
  const st_tensor *score = st_get(&f, "score.weight");
  if (score) {
    if (score->ndim != 2 || score->shape[0] < 1 || score->shape[0] > 0xFFFE) {
      igpt_err("%s: tensor 'score.weight' must be [n_classes, n_embd]", path);
      goto fail;
    }
    c.n_classes = (int)score->shape[0];
  }
  if (drop_zero_biases) {  // official layout when the file's biases are all zero
    bool zero = true;
    for (int i = 0; i < f.n && zero; i++) {
      const char *nm = f.tensors[i].name;
      size_t k = strlen(nm);
      if (hf_buffer(nm) || k < 5 || strcmp(nm + k - 5, ".bias")) continue;
      if (f.tensors[i].dtype != ST_F32) continue;  // reported below
      size_t n = st_numel(&f.tensors[i]);
      for (size_t j = 0; j < n && zero; j++) {
        float x;
        memcpy(&x, (const char *)f.tensors[i].data + j * 4, 4);
        zero = x == 0.0f;
      }
    }
    if (!zero) {
      igpt_err("%s: --drop-zero-biases: the biases are not all zero", path);
      goto fail;
    }
    c.bias = false;
  }
  int n = hf_tensors(&c, &t);
  // check every tensor before allocating the model (a config may claim a huge one)
  const st_tensor **src = xcalloc((size_t)n, sizeof *src);
  size_t maxn = 0;
  for (int i = 0; i < n; i++) {
    src[i] = st_expect(&f, t[i].name, ST_F32, t[i].ndim, t[i].shape);
    if (!src[i]) {
      char *msg = xstrdup(igpt_errmsg());
      igpt_err("%s (for %s's n_layer %d, n_embd %d, n_positions %d, vocab_size %d)", msg, dir,
               c.n_layer, c.n_embd, c.n_ctx, c.n_vocab + 1);
      free(msg);
      free(src);
      goto fail;
    }
    maxn = hf_numel(&t[i]) > maxn ? hf_numel(&t[i]) : maxn;
  }
  m = model_new(&c);
  if (!m) {
    free(src);
    goto fail;
  }
  buf = xmalloc(maxn * sizeof *buf);
  for (int i = 0; i < n; i++) {
    memcpy(buf, src[i]->data, hf_numel(&t[i]) * sizeof *buf);
    if (hf_tensor_set(m, &t[i], buf)) {
      igpt_err_prefix("%s", path);
      free(src);
      goto fail;
    }
  }
  free(src);
  for (int i = 0; i < f.n; i++) {
    int j = 0;
    while (j < n && strcmp(t[j].name, f.tensors[i].name)) j++;
    if (j == n && !hf_buffer(f.tensors[i].name)) {
      igpt_err("%s: unexpected tensor '%s' for an ImageGPT model", path, f.tensors[i].name);
      goto fail;
    }
  }
  free(buf);
  free(t);
  return m;
fail:
  free(buf);
  free(t);
  model_free(m);
  return NULL;
}

int hf_export(const model *m, const char *dir) {
  const model_config *c = &m->cfg;
  if (c->objective != OBJ_AR)
    return igpt_err("HuggingFace's ImageGPT has no BERT variant: cannot export a BERT model");
  if (mkdir_p(dir)) return -1;
  hf_tensor *t;
  int n = hf_tensors(c, &t);
  float **bufs = xcalloc((size_t)n, sizeof *bufs);
  st_writer *w = st_writer_new();
  for (int i = 0; i < n; i++) {
    bufs[i] = xmalloc(hf_numel(&t[i]) * sizeof(float));
    hf_tensor_get(m, false, &t[i], bufs[i]);
    st_writer_add(w, t[i].name, ST_F32, t[i].ndim, t[i].shape, bufs[i]);
  }
  st_writer_meta(w, "format", "pt");
  char *path = xasprintf("%s/model.safetensors", dir);
  int rc = st_writer_save(w, path);
  st_writer_free(w);
  for (int i = 0; i < n; i++) free(bufs[i]);
  free(bufs);
  free(t);
  free(path);
  if (rc) return -1;

  json_t *o = json_object();
  json_object_set_new(o, "activation_function", json_string("quick_gelu"));
  json_object_set_new(o, "architectures", json_pack("[s]", "ImageGPTForCausalImageModeling"));
  json_object_set_new(o, "attn_pdrop", json_real(0.0));
  json_object_set_new(o, "embd_pdrop", json_real(0.0));
  json_object_set_new(o, "initializer_range", json_real(0.02));
  json_object_set_new(o, "layer_norm_epsilon", json_real(1e-5));
  json_object_set_new(o, "model_type", json_string("imagegpt"));
  json_object_set_new(o, "n_embd", json_integer(c->n_embd));
  json_object_set_new(o, "n_head", json_integer(c->n_head));
  json_object_set_new(o, "n_inner", json_null());
  json_object_set_new(o, "n_layer", json_integer(c->n_layer));
  json_object_set_new(o, "n_positions", json_integer(c->n_ctx));
  json_object_set_new(o, "resid_pdrop", json_real(0.0));
  json_object_set_new(o, "scale_attn_weights", json_true());
  json_object_set_new(o, "scale_attn_by_inverse_layer_idx", json_false());
  json_object_set_new(o, "reorder_and_upcast_attn", json_false());
  json_object_set_new(o, "tie_word_embeddings", json_false());
  json_object_set_new(o, "vocab_size", json_integer(c->n_vocab + 1));
  if (c->n_classes) json_object_set_new(o, "num_labels", json_integer(c->n_classes));
  char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
  json_decref(o);
  path = xasprintf("%s/config.json", dir);
  rc = file_write_atomic(path, s, strlen(s));
  free(s);
  free(path);
  return rc;
}
