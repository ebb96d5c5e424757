// model: parameter layout, official initialisation, and the forward and backward passes composed
// from the ops of the model's backend (kernels/backend.h: the ops of kernels/ops.h on the CPU or
// their CUDA twins). The forward reads as REFERENCE.md section 1. See model.h.
#include "engine/model.h"
#include "engine/device.h"
#include "base/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------- parameters

size_t model_param_layout(const model_config *c, model_tensor_info info[P_NTENSORS]) {
  int64_t L = c->n_layer, C = c->n_embd, V = c->n_vocab, K = c->n_classes;
  bool b = c->bias, ar = c->objective == OBJ_AR;
  struct { const char *name; int ndim; int64_t s0, s1, s2; bool present, per_layer; } d[P_NTENSORS] = {
      [P_WTE] = {"wte", 2, V, C, 0, true, false},
      [P_WPE] = {"wpe", 2, c->n_ctx, C, 0, true, false},
      [P_SOS] = {"sos", 1, C, 0, 0, ar, false},
      [P_LN1_G] = {"h.ln_1.g", 2, L, C, 0, true, true},
      [P_QKV_W] = {"h.attn.c_attn.w", 3, L, 3 * C, C, true, true},
      [P_QKV_B] = {"h.attn.c_attn.b", 2, L, 3 * C, 0, b, true},
      [P_ATTPROJ_W] = {"h.attn.c_proj.w", 3, L, C, C, true, true},
      [P_ATTPROJ_B] = {"h.attn.c_proj.b", 2, L, C, 0, b, true},
      [P_LN2_G] = {"h.ln_2.g", 2, L, C, 0, true, true},
      [P_FC_W] = {"h.mlp.c_fc.w", 3, L, 4 * C, C, true, true},
      [P_FC_B] = {"h.mlp.c_fc.b", 2, L, 4 * C, 0, b, true},
      [P_FCPROJ_W] = {"h.mlp.c_proj.w", 3, L, C, 4 * C, true, true},
      [P_FCPROJ_B] = {"h.mlp.c_proj.b", 2, L, C, 0, b, true},
      [P_LNF_G] = {"ln_f.g", 1, C, 0, 0, true, false},
      [P_WTET] = {"wtet", 2, V, C, 0, true, false},
      [P_WCLF] = {"clf.wclf", 2, K, C, 0, K > 0, false},
  };
  size_t off = 0;
  for (int p = 0; p < P_NTENSORS; p++) {
    model_tensor_info *t = &info[p];
    t->name = d[p].name;
    t->ndim = d[p].ndim;
    t->shape[0] = d[p].s0, t->shape[1] = d[p].s1, t->shape[2] = d[p].s2;
    t->per_layer = d[p].per_layer;
    t->numel = 0;
    if (d[p].present) {
      t->numel = 1;
      for (int i = 0; i < t->ndim; i++) t->numel *= (size_t)t->shape[i];
    }
    t->offset = off;
    off += t->numel;
  }
  return off;
}

// Pointers into a flat array by the layout (NULL for absent tensors).
static void carve(float *base, const model_tensor_info *info, float *out[P_NTENSORS]) {
  for (int p = 0; p < P_NTENSORS; p++) out[p] = base && info[p].numel ? base + info[p].offset : NULL;
}

// Backend memory of n floats, or NULL with igpt_err naming what it was for.
static float *be_floats(const backend *be, size_t n, const char *what) {
  float *p = be->alloc(n * sizeof(float));
  if (!p)
    igpt_err("out of memory on %s: %.1f MiB for %s (try a smaller --batch, or --device cpu)", be->detail,
             (double)n * sizeof(float) / 1048576.0, what);
  return p;
}

model *model_new(const model_config *c) { return model_new_on(c, device_current()); }

model *model_new_on(const model_config *c, const backend *be) {
  if (model_config_validate(c, "model config")) return NULL;
  model *m = xcalloc(1, sizeof *m);
  m->cfg = *c;
  m->be = be;
  m->n_params = model_param_layout(c, m->info);
  m->params = xcalloc(m->n_params, sizeof *m->params);
  carve(m->params, m->info, m->param);
  if (be->host_memory) {
    m->bparams = m->params;
  } else if (!(m->bparams = be_floats(be, m->n_params, "the parameters"))) {
    model_free(m);
    return NULL;
  }
  carve(m->bparams, m->info, m->bparam);
  m->host_newer = true;
  return m;
}

void model_free(model *m) {
  if (!m) return;
  const backend *be = m->be;
  if (!be->host_memory) {
    be->release(m->bparams);
    be->release(m->bgrads);
    be->release(m->be_inputs);
  }
  be->release(m->acts_memory);
  be->release(m->grad_acts_memory);
  free(m->params);
  free(m->grads);
  free(m->clf_tgt);
  free(m->host_tmp);
  for (int i = 0; i < 6; i++) free(m->host_out[i]);
  free(m);
}

void model_push(model *m) {
  if (!m->be->host_memory) m->be->upload(m->bparams, m->params, m->n_params * sizeof(float));
  m->host_newer = m->backend_newer = false;
}

void model_pull(model *m) {
  if (!m->be->host_memory && m->backend_newer)
    m->be->download(m->params, m->bparams, m->n_params * sizeof(float));
  m->backend_newer = false;
}

void model_pull_grads(model *m) {
  if (m->be->host_memory || !m->bgrads) return;
  if (!m->grads) {
    m->grads = xmalloc(m->n_params * sizeof *m->grads);
    carve(m->grads, m->info, m->grad);
  }
  m->be->download(m->grads, m->bgrads, m->n_params * sizeof(float));
}

float *model_slice(const model *m, float *base, model_param_id p, int l) {
  if (!base) return NULL;
  return base + (size_t)l * (m->info[p].per_layer ? m->info[p].numel / (size_t)m->cfg.n_layer : 0);
}

float *model_layer(model *m, model_param_id p, int l, bool grads) {
  return model_slice(m, grads ? m->grad[p] : m->param[p], p, l);
}

static void fill_normal(float *x, size_t n, float std, rng_t *r) {
  for (size_t i = 0; i < n; i++) x[i] = std * rng_normal(r);
}

void model_init(model *m, uint64_t seed) {
  m->host_newer = true;
  const model_config *c = &m->cfg;
  rng_t r;
  rng_seed_stream(&r, seed, 0x696e6974 /* "init" */);
  memset(m->params, 0, m->n_params * sizeof *m->params);  // biases, wtet, wclf: zero
  float C = (float)c->n_embd, L = (float)c->n_layer;
  fill_normal(m->param[P_WTE], m->info[P_WTE].numel, 0.02f, &r);
  fill_normal(m->param[P_WPE], m->info[P_WPE].numel, 0.01f, &r);
  if (m->param[P_SOS]) fill_normal(m->param[P_SOS], m->info[P_SOS].numel, 0.02f, &r);
  fill_normal(m->param[P_QKV_W], m->info[P_QKV_W].numel, 1.0f / sqrtf(C), &r);
  fill_normal(m->param[P_ATTPROJ_W], m->info[P_ATTPROJ_W].numel, 1.0f / sqrtf(C * L), &r);
  fill_normal(m->param[P_FC_W], m->info[P_FC_W].numel, 0.02f, &r);
  fill_normal(m->param[P_FCPROJ_W], m->info[P_FCPROJ_W].numel, 0.02f, &r);
  model_param_id gains[] = {P_LN1_G, P_LN2_G, P_LNF_G};
  for (int i = 0; i < 3; i++)
    for (size_t j = 0; j < m->info[gains[i]].numel; j++) m->param[gains[i]][j] = 1.0f;
}

void model_zero_grad(model *m) {
  if (m->be->host_memory) {
    if (!m->grads) {
      m->grads = xcalloc(m->n_params, sizeof *m->grads);
      carve(m->grads, m->info, m->grad);
    } else {
      memset(m->grads, 0, m->n_params * sizeof *m->grads);
    }
    m->bgrads = m->grads;
  } else {
    if (!m->bgrads && !(m->bgrads = be_floats(m->be, m->n_params, "the gradients")))
      igpt_die("%s", igpt_errmsg());  // the caller has no way to go on training without them
    m->be->zero(m->bgrads, m->n_params * sizeof(float));
  }
  carve(m->bgrads, m->info, m->bgrad);
}

void model_bert_mask(rng_t *rng, uint8_t *mask, int B, int T, double p) {
  for (size_t i = 0; i < (size_t)B * T; i++) mask[i] = rng_uniform(rng) < p;
}

// ---------------------------------------------------------------- activations

// Carves the activations for (B, T, layers kept Lk) out of one backend allocation, grown when
// needed. -1 with igpt_err when the backend has no memory for them.
static int acts_alloc(model *m, int B, int T, int Lk, bool keep) {
  size_t C = m->cfg.n_embd, V = m->cfg.n_vocab, K = m->cfg.n_classes, L = m->cfg.n_layer,
         BT = (size_t)B * T;
  m->att_floats = m->be->attention_floats(B, m->cfg.n_head, T, m->cfg.n_embd / m->cfg.n_head, keep);
  model_acts *a = &m->acts;
  struct { float **p; size_t n; } s[] = {
      {&a->encoded, BT * C},         {&a->ln1, Lk * BT * C},       {&a->ln1_rstd, Lk * BT},
      {&a->qkv, Lk * BT * 3 * C},    {&a->atty, Lk * BT * C},      {&a->att, Lk * m->att_floats},
      {&a->attproj, Lk * BT * C},    {&a->res2, Lk * BT * C},      {&a->ln2, Lk * BT * C},
      {&a->ln2_rstd, Lk * BT},       {&a->fch, Lk * BT * 4 * C},   {&a->fch_gelu, Lk * BT * 4 * C},
      {&a->fcproj, Lk * BT * C},     {&a->res3, Lk * BT * C},      {&a->lnf, BT * C},
      {&a->lnf_rstd, BT},            {&a->logits, BT * V},         {&a->probs, BT * V},
      {&a->losses, BT},              {&a->loss_w, BT},             {&a->pooled, (L + 1) * B * C},
      {&a->clf_logits, B * K},       {&a->clf_probs, B * K},       {&a->clf_losses, B},
      {&a->clf_w, B},
  };
  size_t total = 0;
  for (size_t i = 0; i < sizeof s / sizeof *s; i++) total += s[i].n;
  if (total > m->acts_cap) {
    m->be->release(m->acts_memory);
    m->acts_cap = 0;
    if (!(m->acts_memory = be_floats(m->be, total, "the activations"))) return -1;
    m->acts_cap = total;
  }
  float *p = m->acts_memory;
  for (size_t i = 0; i < sizeof s / sizeof *s; i++) {
    *s[i].p = s[i].n ? p : NULL;
    p += s[i].n;
  }
  m->clf_tgt = xrealloc(m->clf_tgt, (size_t)(B ? B : 1) * sizeof *m->clf_tgt);
  return 0;
}

// A host array of n floats to fill for the backend buffer dst, handed over by host_commit: dst
// itself on the CPU, a host scratch otherwise (one at a time).
static float *host_view(model *m, float *dst, size_t n) {
  if (m->be->host_memory) return dst;
  if (n > m->host_tmp_cap) {
    m->host_tmp = xrealloc(m->host_tmp, n * sizeof(float));
    m->host_tmp_cap = n;
  }
  return m->host_tmp;
}
static void host_commit(model *m, float *dst, const float *src, size_t n) {
  if (!m->be->host_memory) m->be->upload(dst, src, n * sizeof(float));
}

// The batch's host inputs (tokens, mask, classifier targets) where the backend's ops read them:
// the arrays themselves on the CPU, copies in one device buffer otherwise.
static int stage_inputs(model *m, const model_batch *b) {
  size_t BT = (size_t)b->B * b->T, ntgt = m->cfg.n_classes ? (size_t)b->B : 0;
  if (m->be->host_memory) {
    m->be_tokens = b->tokens, m->be_mask = b->mask, m->be_clf_tgt = m->clf_tgt;
    return 0;
  }
  size_t bytes = (BT + ntgt) * sizeof(uint16_t) + (b->mask ? BT : 0);
  if (bytes > m->be_inputs_cap) {
    m->be->release(m->be_inputs);
    m->be_inputs_cap = 0;
    if (!(m->be_inputs = m->be->alloc(bytes)))
      return igpt_err("out of memory on %s for a batch's %zu input bytes", m->be->detail, bytes);
    m->be_inputs_cap = bytes;
  }
  uint16_t *tok = m->be_inputs, *tgt = tok + BT;
  uint8_t *mask = (uint8_t *)(tgt + ntgt);
  m->be->upload(tok, b->tokens, BT * sizeof *tok);
  if (ntgt) m->be->upload(tgt, m->clf_tgt, ntgt * sizeof *tgt);
  if (b->mask) m->be->upload(mask, b->mask, BT);
  m->be_tokens = tok, m->be_clf_tgt = ntgt ? tgt : NULL, m->be_mask = b->mask ? mask : NULL;
  return 0;
}

// Layer l's slice of a per-layer activation of n floats per layer (slice 0 when not kept).
#define ACT(m, field, l, n) ((m)->acts.field + (size_t)((m)->layers_kept > 1 ? (l) : 0) * (n))
// Layer l's slice of a per-layer parameter (W) or gradient (DW) on the backend.
#define W(p, l) model_slice(m, m->bparam[p], p, l)
#define DW(p, l) model_slice(m, m->bgrad[p], p, l)

// ---------------------------------------------------------------- forward

static int check_batch(const model *m, const model_batch *b) {
  const model_config *c = &m->cfg;
  if (b->B < 1 || b->T < 1 || b->T > c->n_ctx)
    return igpt_err("batch of %d x %d tokens: expected B >= 1 and 1 <= T <= n_ctx (%d)", b->B, b->T,
                    c->n_ctx);
  if (!b->tokens) return igpt_err("batch has no tokens");
  bool bert = c->objective == OBJ_BERT;
  if (bert && !b->mask) return igpt_err("a BERT model needs a mask for each batch");
  if (!bert && b->mask) return igpt_err("an autoregressive model takes no BERT mask");
  for (int i = 0; i < b->B; i++)
    for (int t = 0; t < b->T; t++) {
      unsigned x = b->tokens[(size_t)i * b->T + t];
      bool last = t == b->T - 1;  // AR: the last token is a target only, may be MODEL_IGNORE
      if (x >= (unsigned)c->n_vocab && !(!bert && last && x == MODEL_IGNORE))
        return igpt_err("token %u at [%d, %d] is outside the palette (n_vocab %d)", x, i, t, c->n_vocab);
    }
  if (b->labels) {
    if (!c->n_classes) return igpt_err("labels given but the model has no classifier (n_classes 0)");
    for (int i = 0; i < b->B; i++)
      if (b->labels[i] < 0 || b->labels[i] >= c->n_classes)
        return igpt_err("label %d of example %d is outside [0, %d)", b->labels[i], i, c->n_classes);
  }
  return 0;
}

// Loss weights: AR, the mean over every counted position; BERT, per example the mean over its
// masked positions, then the mean over the examples that have any. Returns the count of targets.
static int loss_weights(float *w, const model_batch *b, bool bert) {
  int B = b->B, T = b->T, count = 0;
  if (!bert) {
    for (size_t i = 0; i < (size_t)B * T; i++) count += b->tokens[i] != MODEL_IGNORE;
    for (size_t i = 0; i < (size_t)B * T; i++)
      w[i] = b->tokens[i] != MODEL_IGNORE ? 1.0f / (float)count : 0.0f;
    return count;
  }
  int examples = 0;
  for (int i = 0; i < B; i++) {
    int nm = 0;
    for (int t = 0; t < T; t++) nm += b->mask[(size_t)i * T + t] != 0;
    examples += nm > 0;
    count += nm;
  }
  for (int i = 0; i < B; i++) {
    int nm = 0;
    for (int t = 0; t < T; t++) nm += b->mask[(size_t)i * T + t] != 0;
    for (int t = 0; t < T; t++)
      w[(size_t)i * T + t] = b->mask[(size_t)i * T + t] ? 1.0f / ((float)nm * (float)examples) : 0.0f;
  }
  return count;
}

int model_forward(model *m, const model_batch *b) {
  if (check_batch(m, b)) return -1;
  const model_config *c = &m->cfg;
  const backend *be = m->be;
  int B = b->B, T = b->T, C = c->n_embd, NH = c->n_head, L = c->n_layer, V = c->n_vocab;
  size_t BT = (size_t)B * T, BTC = BT * C;
  bool bert = c->objective == OBJ_BERT;
  m->layers_kept = b->grad ? L : 1;
  if (acts_alloc(m, B, T, m->layers_kept, b->grad)) return -1;
  m->B = B, m->T = T, m->batch = *b;
  for (int i = 0; i < B && c->n_classes; i++) m->clf_tgt[i] = b->labels ? (uint16_t)b->labels[i] : 0;
  if (stage_inputs(m, b)) return -1;
  if (m->host_newer) model_push(m);
  model_acts *a = &m->acts;

  // h0 = (sos | wte[x]) + wpe
  be->encoder_forward(a->encoded, m->be_tokens, m->be_mask, m->bparam[P_WTE], m->bparam[P_WPE],
                      bert ? NULL : m->bparam[P_SOS], B, T, C);
  const float *h = a->encoded;
  for (int l = 0; l < L; l++) {
    float *ln1 = ACT(m, ln1, l, BTC), *ln1_rstd = ACT(m, ln1_rstd, l, BT);
    float *qkv = ACT(m, qkv, l, 3 * BTC), *atty = ACT(m, atty, l, BTC);
    float *att = a->att ? ACT(m, att, l, m->att_floats) : NULL, *attproj = ACT(m, attproj, l, BTC);
    float *res2 = ACT(m, res2, l, BTC), *ln2 = ACT(m, ln2, l, BTC), *ln2_rstd = ACT(m, ln2_rstd, l, BT);
    float *fch = ACT(m, fch, l, 4 * BTC), *fch_gelu = ACT(m, fch_gelu, l, 4 * BTC);
    float *fcproj = ACT(m, fcproj, l, BTC), *res3 = ACT(m, res3, l, BTC);
    // h += attn(norm(h))
    be->rmsnorm_forward(ln1, ln1_rstd, h, W(P_LN1_G, l), BT, C);
    be->meanpool_forward(a->pooled + (size_t)l * B * C, ln1, B, T, C);  // feature of layer l
    be->matmul_forward(qkv, ln1, W(P_QKV_W, l), W(P_QKV_B, l), BT, C, 3 * C);
    be->attention_forward(atty, att, qkv, B, T, C, NH, !bert);
    be->matmul_forward(attproj, atty, W(P_ATTPROJ_W, l), W(P_ATTPROJ_B, l), BT, C, C);
    be->residual_forward(res2, h, attproj, BTC);
    // h += mlp(norm(h))
    be->rmsnorm_forward(ln2, ln2_rstd, res2, W(P_LN2_G, l), BT, C);
    be->matmul_forward(fch, ln2, W(P_FC_W, l), W(P_FC_B, l), BT, C, 4 * C);
    be->gelu2_forward(fch_gelu, fch, 4 * BTC);
    be->matmul_forward(fcproj, fch_gelu, W(P_FCPROJ_W, l), W(P_FCPROJ_B, l), BT, 4 * C, C);
    be->residual_forward(res3, res2, fcproj, BTC);
    h = res3;
  }
  be->rmsnorm_forward(a->lnf, a->lnf_rstd, h, m->bparam[P_LNF_G], BT, C);
  float *pooled_f = a->pooled + (size_t)L * B * C;
  be->meanpool_forward(pooled_f, a->lnf, B, T, C);

  m->loss = m->loss_gen = m->loss_clf = 0.0f;
  m->n_targets = 0;
  if (b->head) {  // logits = norm(h) wtet^T; generative cross-entropy
    be->matmul_forward(a->logits, a->lnf, m->bparam[P_WTET], NULL, BT, C, V);
    float *w = host_view(m, a->loss_w, BT);
    m->n_targets = loss_weights(w, b, bert);
    host_commit(m, a->loss_w, w, BT);
    m->loss_gen = (float)be->crossentropy_forward(a->losses, a->probs, a->logits, m->be_tokens, a->loss_w,
                                                  BT, V);
  }
  if (c->n_classes) {  // logits_clf = mean_t norm(h) wclf^T
    int K = c->n_classes;
    be->matmul_forward(a->clf_logits, pooled_f, m->bparam[P_WCLF], NULL, B, C, K);
    float *w = host_view(m, a->clf_w, B);
    for (int i = 0; i < B; i++) w[i] = b->labels ? 1.0f / (float)B : 0.0f;
    host_commit(m, a->clf_w, w, B);
    m->loss_clf = (float)be->crossentropy_forward(a->clf_losses, a->clf_probs, a->clf_logits, m->be_clf_tgt,
                                                  a->clf_w, B, K);
  }
  m->loss = m->loss_gen + m->loss_clf;
  m->have_grad_batch = b->grad && (b->head || b->labels);
  return 0;
}

// ---------------------------------------------------------------- backward

int model_backward(model *m) {
  if (!m->have_grad_batch)
    return igpt_err("model_backward: the last forward kept no activations (grad) or had no loss");
  if (!m->bgrads) model_zero_grad(m);
  const model_config *c = &m->cfg;
  const model_batch *b = &m->batch;
  const backend *be = m->be;
  int B = m->B, T = m->T, C = c->n_embd, NH = c->n_head, L = c->n_layer, V = c->n_vocab;
  int K = c->n_classes;
  size_t BT = (size_t)B * T, BTC = BT * C;
  bool bert = c->objective == OBJ_BERT;
  model_acts *a = &m->acts;

  // gradient buffers of the activations, one layer's worth, reused going down the layers
  size_t datt_n = be->attention_floats(B, NH, T, C / NH, true);  // scratch the attention backward overwrites
  size_t need = BTC /*dres*/ + BTC /*dlnf*/ + (b->head ? BT * V : 0) + B * C + B * K + 4 * BTC * 2 +
                3 * BTC + BTC * 3 + datt_n;
  if (need > m->grad_acts_cap) {
    be->release(m->grad_acts_memory);
    m->grad_acts_cap = 0;
    if (!(m->grad_acts_memory = be_floats(be, need, "the activations' gradients"))) return -1;
    m->grad_acts_cap = need;
  }
  be->zero(m->grad_acts_memory, (need - datt_n) * sizeof(float));
  float *p = m->grad_acts_memory;
  float *dres = p; p += BTC;        // d loss / d h (the residual stream), flowing down
  float *dlnf = p; p += BTC;
  float *dlogits = p; p += b->head ? BT * V : 0;
  float *dpooled = p; p += (size_t)B * C;
  float *dclf = p; p += (size_t)B * K;
  float *dfch_gelu = p; p += 4 * BTC;
  float *dfch = p; p += 4 * BTC;
  float *dqkv = p; p += 3 * BTC;
  float *dln2 = p; p += BTC;
  float *datty = p; p += BTC;
  float *dln1 = p; p += BTC;
  float *datt = p;

  if (b->head) {
    be->crossentropy_backward(dlogits, a->probs, m->be_tokens, a->loss_w, BT, V);
    be->matmul_backward(dlnf, m->bgrad[P_WTET], NULL, dlogits, a->lnf, m->bparam[P_WTET], BT, C, V);
  }
  if (K && b->labels) {
    be->crossentropy_backward(dclf, a->clf_probs, m->be_clf_tgt, a->clf_w, B, K);
    be->matmul_backward(dpooled, m->bgrad[P_WCLF], NULL, dclf, a->pooled + (size_t)L * B * C,
                        m->bparam[P_WCLF], B, C, K);
    be->meanpool_backward(dlnf, dpooled, B, T, C);
  }
  const float *h_last = L ? a->res3 + (size_t)(L - 1) * BTC : a->encoded;
  be->rmsnorm_backward(dres, m->bgrad[P_LNF_G], dlnf, h_last, m->bparam[P_LNF_G], a->lnf_rstd, BT, C);

  for (int l = L - 1; l >= 0; l--) {
    const float *h = l ? a->res3 + (size_t)(l - 1) * BTC : a->encoded;  // block input
    float *ln1 = a->ln1 + l * BTC, *ln1_rstd = a->ln1_rstd + l * BT, *qkv = a->qkv + l * 3 * BTC;
    float *atty = a->atty + l * BTC, *att = a->att + (size_t)l * m->att_floats;
    float *res2 = a->res2 + l * BTC, *ln2 = a->ln2 + l * BTC, *ln2_rstd = a->ln2_rstd + l * BT;
    float *fch = a->fch + l * 4 * BTC, *fch_gelu = a->fch_gelu + l * 4 * BTC;
    if (l != L - 1) {
      be->zero(dfch_gelu, 4 * BTC * sizeof(float));
      be->zero(dfch, 4 * BTC * sizeof(float));
      be->zero(dqkv, 3 * BTC * sizeof(float));
      be->zero(dln2, BTC * sizeof(float));
      be->zero(datty, BTC * sizeof(float));
      be->zero(dln1, BTC * sizeof(float));
    }
    // h_out = res2 + mlp(norm(res2)): dres passes to res2 unchanged, plus through the mlp
    be->matmul_backward(dfch_gelu, DW(P_FCPROJ_W, l), DW(P_FCPROJ_B, l), dres, fch_gelu, W(P_FCPROJ_W, l),
                        BT, 4 * C, C);
    be->gelu2_backward(dfch, fch, dfch_gelu, 4 * BTC);
    be->matmul_backward(dln2, DW(P_FC_W, l), DW(P_FC_B, l), dfch, ln2, W(P_FC_W, l), BT, C, 4 * C);
    be->rmsnorm_backward(dres, DW(P_LN2_G, l), dln2, res2, W(P_LN2_G, l), ln2_rstd, BT, C);
    // res2 = h + attn(norm(h))
    be->matmul_backward(datty, DW(P_ATTPROJ_W, l), DW(P_ATTPROJ_B, l), dres, atty, W(P_ATTPROJ_W, l), BT,
                        C, C);
    be->attention_backward(dqkv, datt, datty, atty, qkv, att, B, T, C, NH, !bert);
    be->matmul_backward(dln1, DW(P_QKV_W, l), DW(P_QKV_B, l), dqkv, ln1, W(P_QKV_W, l), BT, C, 3 * C);
    be->rmsnorm_backward(dres, DW(P_LN1_G, l), dln1, h, W(P_LN1_G, l), ln1_rstd, BT, C);
  }
  be->encoder_backward(m->bgrad[P_WTE], m->bgrad[P_WPE], bert ? NULL : m->bgrad[P_SOS], dres, m->be_tokens,
                       m->be_mask, B, T, C);
  return 0;
}

// ---------------------------------------------------------------- outputs on the host

// n floats of backend memory src as host memory: src itself on the CPU, else a copy in host
// buffer `slot` (the model's host copies are a cache of its outputs, hence the const cast).
static const float *host_copy(const model *cm, int slot, const float *src, size_t n) {
  model *m = (model *)cm;
  if (m->be->host_memory || !src) return src;
  if (n > m->host_out_cap[slot]) {
    m->host_out[slot] = xrealloc(m->host_out[slot], n * sizeof(float));
    m->host_out_cap[slot] = n;
  }
  m->be->download(m->host_out[slot], src, n * sizeof(float));
  return m->host_out[slot];
}

const float *model_logits(const model *m) {
  return host_copy(m, 0, m->acts.logits, (size_t)m->B * m->T * m->cfg.n_vocab);
}
const float *model_features(const model *m) {
  return host_copy(m, 1, m->acts.pooled, (size_t)(m->cfg.n_layer + 1) * m->B * m->cfg.n_embd);
}
const float *model_clf_logits(const model *m) {
  return host_copy(m, 2, m->acts.clf_logits, (size_t)m->B * m->cfg.n_classes);
}
const float *model_losses(const model *m) { return host_copy(m, 3, m->acts.losses, (size_t)m->B * m->T); }
const float *model_loss_weights(const model *m) {
  return host_copy(m, 4, m->acts.loss_w, (size_t)m->B * m->T);
}
const float *model_hidden(const model *m, int l) {
  size_t BTC = (size_t)m->B * m->T * m->cfg.n_embd;
  const float *h = l == 0 ? m->acts.encoded : ACT(m, res3, l - 1, BTC);
  return host_copy(m, 5, h, BTC);
}
