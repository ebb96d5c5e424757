// tf_igpt: iGPT checkpoints in TensorFlow's bundle format <-> the native model. See tf_igpt.h.
#include "interop/tf_igpt.h"
#include "base/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add(tf_igpt_tensor *t, int *n, int layer, model_param_id p, int part, tfi_kind kind, int ndim,
                int64_t s0, int64_t s1, int64_t s2, const char *leaf) {
  tf_igpt_tensor *x = &t[(*n)++];
  if (layer >= 0) snprintf(x->name, sizeof x->name, "model/h%d/%s", layer, leaf);
  else snprintf(x->name, sizeof x->name, "model/%s", leaf);
  x->p = p, x->layer = layer, x->part = part, x->kind = kind, x->ndim = ndim;
  x->shape[0] = s0, x->shape[1] = s1, x->shape[2] = s2;
}

int tf_igpt_tensors(const model_config *c, tf_igpt_tensor **out) {
  int L = c->n_layer, n = 0;
  int64_t C = c->n_embd, V = c->n_vocab, NH = c->n_head, HD = C / NH;
  tf_igpt_tensor *t = xcalloc((size_t)L * 8 + 5, sizeof *t);
  add(t, &n, -1, P_WPE, 0, TFI_PLAIN, 2, c->n_ctx, C, 0, "wpe");
  add(t, &n, -1, P_WTE, 0, TFI_PLAIN, 2, V, C, 0, "wte");
  if (c->objective == OBJ_AR) add(t, &n, -1, P_SOS, 0, TFI_PLAIN, 1, C, 0, 0, "sos");
  add(t, &n, -1, P_WTET, 0, TFI_PLAIN, 2, V, C, 0, "wtet");
  add(t, &n, -1, P_LNF_G, 0, TFI_PLAIN, 1, C, 0, 0, "ln_f/g");
  for (int l = 0; l < L; l++) {
    add(t, &n, l, P_LN1_G, 0, TFI_PLAIN, 1, C, 0, 0, "ln_1/g");
    add(t, &n, l, P_LN2_G, 0, TFI_PLAIN, 1, C, 0, 0, "ln_2/g");
    add(t, &n, l, P_QKV_W, 0, TFI_PLAIN, 3, NH, HD, C, "attn/q_proj");
    add(t, &n, l, P_QKV_W, 1, TFI_PLAIN, 3, NH, HD, C, "attn/k_proj");
    add(t, &n, l, P_QKV_W, 2, TFI_PLAIN, 3, NH, HD, C, "attn/v_proj");
    add(t, &n, l, P_ATTPROJ_W, 0, TFI_TRANSPOSE, 3, NH, HD, C, "attn/c_proj");
    add(t, &n, l, P_FC_W, 0, TFI_TRANSPOSE, 2, C, 4 * C, 0, "mlp/c_fc/w");
    add(t, &n, l, P_FCPROJ_W, 0, TFI_TRANSPOSE, 2, 4 * C, C, 0, "mlp/c_proj/w");
  }
  *out = t;
  return n;
}

static size_t numel(const tf_igpt_tensor *t) {
  size_t n = 1;
  for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
  return n;
}

// The native slice a checkpoint tensor fills (a third of c_attn's rows for q/k/v).
static float *native(model *m, const tf_igpt_tensor *t) {
  float *base = t->layer >= 0 ? model_layer(m, t->p, t->layer, false) : m->param[t->p];
  return base + (size_t)t->part * numel(t);
}

// [in, out] as the checkpoint stores it: rows of the [R, K] matrix it is viewed as.
static void view_2d(const tf_igpt_tensor *t, int64_t *rows, int64_t *cols) {
  *cols = t->shape[t->ndim - 1];
  *rows = (int64_t)(numel(t) / (size_t)*cols);
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
  size_t o = (size_t)snprintf(buf, cap, "[");
  for (int d = 0; d < ndim && o < cap; d++) o += (size_t)snprintf(buf + o, cap - o, "%s%lld", d ? ", " : "", (long long)shape[d]);
  if (o < cap) snprintf(buf + o, cap - o, "]");
}

// ---------------------------------------------------------------- the config from the shapes

static const tf_entry *need(const tf_bundle *b, const char *name, int ndim, const char *why) {
  const tf_entry *e = tf_bundle_find(b, name);
  if (!e) {
    igpt_err("%s: tensor '%s' is missing: not an iGPT checkpoint (%s)", b->index_path, name, why);
    return NULL;
  }
  if (e->ndim != ndim) {
    char s[128];
    shape_str(s, sizeof s, e->ndim, e->shape);
    igpt_err("%s: tensor '%s' has shape %s, expected %d dims (%s)", b->index_path, name, s, ndim, why);
    return NULL;
  }
  return e;
}

static int infer_config(const tf_bundle *b, model_config *c) {
  model_config_default(c);
  const tf_entry *wte = need(b, "model/wte", 2, "[n_vocab, n_embd]");
  const tf_entry *wpe = wte ? need(b, "model/wpe", 2, "[n_ctx, n_embd]") : NULL;
  const tf_entry *q = wpe ? need(b, "model/h0/attn/q_proj", 3, "[n_head, head_dim, n_embd]") : NULL;
  if (!q) return -1;
  int L = 0;  // blocks h0..h{L-1}: the largest index seen, each one checked below
  for (int i = 0; i < b->n; i++) {
    int l;
    char slash;
    if (sscanf(b->entries[i].name, "model/h%d%c", &l, &slash) == 2 && slash == '/' && l >= 0 && l < 4096 && l + 1 > L)
      L = l + 1;
  }
  if (wte->shape[0] > 0xFFFE || wte->shape[1] > (1 << 16) || wpe->shape[0] > (1 << 16) || q->shape[0] > (1 << 16))
    return igpt_err("%s: shapes out of range (model/wte [%lld, %lld])", b->index_path, (long long)wte->shape[0],
                    (long long)wte->shape[1]);
  c->n_vocab = (int)wte->shape[0];
  c->n_embd = (int)wte->shape[1];
  c->n_ctx = (int)wpe->shape[0];
  c->n_head = (int)q->shape[0];
  c->n_layer = L;
  c->objective = tf_bundle_find(b, "model/sos") ? OBJ_AR : OBJ_BERT;
  if ((int64_t)c->n_head * q->shape[1] != c->n_embd)
    return igpt_err("%s: tensor 'model/h0/attn/q_proj' is [%lld, %lld, %lld]: n_head x head_dim must equal "
                    "model/wte's n_embd %d", b->index_path, (long long)q->shape[0], (long long)q->shape[1],
                    (long long)q->shape[2], c->n_embd);
  return model_config_validate(c, b->index_path);
}

// ---------------------------------------------------------------- import

typedef struct {
  model *m;
  const tf_bundle *b;
  const tf_igpt_tensor *t;     // the model's tensors,
  const tf_entry **e;          // and their entries (same order)
  int n;
} import_ctx;

static int import_one(void *ctx, const tf_entry *e, const void *data) {
  import_ctx *x = ctx;
  int i = 0;
  while (i < x->n && x->e[i] != e) i++;
  const tf_igpt_tensor *t = &x->t[i];
  float *dst = native(x->m, t);
  if (t->kind == TFI_PLAIN) {
    memcpy(dst, data, numel(t) * sizeof(float));
    return 0;
  }
  int64_t R, K;  // the checkpoint's [in, out] = [R, K]; native [out, in]
  view_2d(t, &R, &K);
  const float *src = data;
  for (int64_t r = 0; r < R; r++)
    for (int64_t k = 0; k < K; k++) dst[k * R + r] = src[r * K + k];
  return 0;
}

model *tf_import(const char *path, tf_import_stats *stats, bool verbose) {
  tf_bundle b;
  if (tf_bundle_open(&b, path)) return NULL;
  model_config c;
  model *m = NULL;
  tf_igpt_tensor *t = NULL;
  const tf_entry **e = NULL;
  if (infer_config(&b, &c)) goto fail;
  int n = tf_igpt_tensors(&c, &t);
  e = xcalloc((size_t)n, sizeof *e);
  char why[192];
  snprintf(why, sizeof why, "n_embd %d and n_vocab %d from model/wte, n_ctx %d from model/wpe, n_head %d from "
           "model/h0/attn/q_proj, %d blocks", c.n_embd, c.n_vocab, c.n_ctx, c.n_head, c.n_layer);
  for (int i = 0; i < n; i++) {  // every model tensor checked before anything is allocated or read
    e[i] = tf_bundle_find(&b, t[i].name);
    if (!e[i]) {
      igpt_err("%s: model tensor '%s' is missing (%s)", b.index_path, t[i].name, why);
      goto fail;
    }
    if (e[i]->dtype != TF_FLOAT) {
      const char *dn = tf_dtype_name(e[i]->dtype);
      igpt_err("%s: tensor '%s' is %s, expected DT_FLOAT", b.index_path, t[i].name, dn ? dn : "?");
      goto fail;
    }
    bool same = e[i]->ndim == t[i].ndim;
    for (int d = 0; same && d < t[i].ndim; d++) same = e[i]->shape[d] == t[i].shape[d];
    if (!same) {
      char got[128], want[128];
      shape_str(got, sizeof got, e[i]->ndim, e[i]->shape);
      shape_str(want, sizeof want, t[i].ndim, t[i].shape);
      igpt_err("%s: tensor '%s' has shape %s, which does not fit the others: expected %s (%s)", b.index_path,
               t[i].name, got, want, why);
      goto fail;
    }
  }
  tf_import_stats st = {.n_model = n, .n_skipped = b.n - n};
  for (int i = 0; i < b.n; i++) st.skipped_bytes += b.entries[i].size;
  for (int i = 0; i < n; i++) st.skipped_bytes -= e[i]->size;
  if (verbose)
    log_info("%s: iGPT %s, %d layers, n_embd %d, %d heads, n_ctx %d, %d colours: %d model tensors; skipping %d "
             "others (optimizer state, counters: %.1f MB)", b.prefix, c.objective == OBJ_AR ? "AR" : "BERT",
             c.n_layer, c.n_embd, c.n_head, c.n_ctx, c.n_vocab, n, st.n_skipped, st.skipped_bytes / 1e6);
  m = model_new(&c);
  if (!m) goto fail;
  import_ctx ctx = {m, &b, t, e, n};
  if (tf_bundle_read(&b, n, e, import_one, &ctx, verbose)) goto fail;
  if (stats) *stats = st;
  free(e);
  free(t);
  tf_bundle_close(&b);
  return m;
fail:
  model_free(m);
  free(e);
  free(t);
  tf_bundle_close(&b);
  return NULL;
}

// ---------------------------------------------------------------- export

int tf_export(const model *m, const char *prefix, int num_shards, int64_t global_step) {
  const model_config *c = &m->cfg;
  if (c->bias || c->n_classes)
    return igpt_err("%s: the iGPT checkpoint layout has no biases and no classifier: export a model in the "
                    "official layout (bias false, no classifier)", prefix);
  if (num_shards < 2) return igpt_err("%s: %d shards: at least 2 (shard 0 holds only the step)", prefix, num_shards);
  const char *slash = strrchr(prefix, '/');
  if (slash && slash != prefix) {  // the prefix's directory
    char *dir = xasprintf("%.*s", (int)(slash - prefix), prefix);
    int rc = mkdir_p(dir);
    free(dir);
    if (rc) return -1;
  }
  tf_igpt_tensor *t;
  int n = tf_igpt_tensors(c, &t);
  size_t maxn = 0;
  for (int i = 0; i < n; i++) maxn = numel(&t[i]) > maxn ? numel(&t[i]) : maxn;
  float *buf = xmalloc(maxn * sizeof *buf);
  tf_bundle_writer *w = tf_bundle_writer_new(prefix, num_shards, false);
  tf_bundle_writer_add(w, "global_step", 0, TF_INT64, 0, NULL, &global_step, sizeof global_step);
  for (int i = 0; i < n; i++) {
    const float *src = native((model *)m, &t[i]);
    size_t k = numel(&t[i]);
    if (t[i].kind == TFI_PLAIN) {
      memcpy(buf, src, k * sizeof *buf);
    } else {
      int64_t R, K;
      view_2d(&t[i], &R, &K);
      for (int64_t r = 0; r < R; r++)
        for (int64_t q = 0; q < K; q++) buf[r * K + q] = src[q * R + r];
    }
    tf_bundle_writer_add(w, t[i].name, 1 + i % (num_shards - 1), TF_FLOAT, t[i].ndim, t[i].shape, buf, k * sizeof *buf);
  }
  free(buf);
  free(t);
  return tf_bundle_writer_finish(w);
}
