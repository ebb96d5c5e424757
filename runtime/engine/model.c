// model: parameter layout, official initialisation, and the forward and backward passes composed
// from the ops of kernels/ops.h. The forward reads as REFERENCE.md section 1. See model.h.
#include "engine/model.h"
#include "kernels/ops.h"
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

model *model_new(const model_config *c) {
  if (model_config_validate(c, "model config")) return NULL;
  model *m = xcalloc(1, sizeof *m);
  m->cfg = *c;
  m->n_params = model_param_layout(c, m->info);
  m->params = xcalloc(m->n_params, sizeof *m->params);
  for (int p = 0; p < P_NTENSORS; p++)
    m->param[p] = m->info[p].numel ? m->params + m->info[p].offset : NULL;
  return m;
}

void model_free(model *m) {
  if (!m) return;
  free(m->params);
  free(m->grads);
  free(m->acts_memory);
  free(m->grad_acts_memory);
  free(m->clf_tgt);
  free(m);
}

float *model_layer(model *m, model_param_id p, int l, bool grads) {
  float *base = grads ? m->grad[p] : m->param[p];
  if (!base) return NULL;
  size_t per = m->info[p].per_layer ? m->info[p].numel / (size_t)m->cfg.n_layer : 0;
  return base + (size_t)l * per;
}

static void fill_normal(float *x, size_t n, float std, rng_t *r) {
  for (size_t i = 0; i < n; i++) x[i] = std * rng_normal(r);
}

void model_init(model *m, uint64_t seed) {
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
  if (!m->grads) {
    m->grads = xcalloc(m->n_params, sizeof *m->grads);
    for (int p = 0; p < P_NTENSORS; p++)
      m->grad[p] = m->info[p].numel ? m->grads + m->info[p].offset : NULL;
  } else {
    memset(m->grads, 0, m->n_params * sizeof *m->grads);
  }
}

void model_bert_mask(rng_t *rng, uint8_t *mask, int B, int T, double p) {
  for (size_t i = 0; i < (size_t)B * T; i++) mask[i] = rng_uniform(rng) < p;
}

// ---------------------------------------------------------------- activations

// Carves the activations for (B, T, layers kept Lk) out of one allocation, grown when needed.
static void acts_alloc(model *m, int B, int T, int Lk) {
  size_t C = m->cfg.n_embd, V = m->cfg.n_vocab, NH = m->cfg.n_head, K = m->cfg.n_classes,
         L = m->cfg.n_layer, BT = (size_t)B * T;
  model_acts *a = &m->acts;
  struct { float **p; size_t n; } s[] = {
      {&a->encoded, BT * C},         {&a->ln1, Lk * BT * C},       {&a->ln1_rstd, Lk * BT},
      {&a->qkv, Lk * BT * 3 * C},    {&a->atty, Lk * BT * C},      {&a->att, Lk * B * NH * T * T},
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
    free(m->acts_memory);
    m->acts_memory = xmalloc(total * sizeof(float));
    m->acts_cap = total;
  }
  float *p = m->acts_memory;
  for (size_t i = 0; i < sizeof s / sizeof *s; i++) {
    *s[i].p = p;
    p += s[i].n;
  }
  m->clf_tgt = xrealloc(m->clf_tgt, (size_t)(B ? B : 1) * sizeof *m->clf_tgt);
}

// Layer l's slice of a per-layer activation of n floats per layer (slice 0 when not kept).
#define ACT(m, field, l, n) ((m)->acts.field + (size_t)((m)->layers_kept > 1 ? (l) : 0) * (n))

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
  int B = b->B, T = b->T, C = c->n_embd, NH = c->n_head, L = c->n_layer, V = c->n_vocab;
  size_t BT = (size_t)B * T, BTC = BT * C;
  bool bert = c->objective == OBJ_BERT;
  m->layers_kept = b->grad ? L : 1;
  acts_alloc(m, B, T, m->layers_kept);
  m->B = B, m->T = T, m->batch = *b;
  model_acts *a = &m->acts;

  // h0 = (sos | wte[x]) + wpe
  encoder_forward(a->encoded, b->tokens, b->mask, m->param[P_WTE], m->param[P_WPE],
                  bert ? NULL : m->param[P_SOS], B, T, C);
  const float *h = a->encoded;
  for (int l = 0; l < L; l++) {
    float *ln1 = ACT(m, ln1, l, BTC), *ln1_rstd = ACT(m, ln1_rstd, l, BT);
    float *qkv = ACT(m, qkv, l, 3 * BTC), *atty = ACT(m, atty, l, BTC);
    float *att = ACT(m, att, l, (size_t)B * NH * T * T), *attproj = ACT(m, attproj, l, BTC);
    float *res2 = ACT(m, res2, l, BTC), *ln2 = ACT(m, ln2, l, BTC), *ln2_rstd = ACT(m, ln2_rstd, l, BT);
    float *fch = ACT(m, fch, l, 4 * BTC), *fch_gelu = ACT(m, fch_gelu, l, 4 * BTC);
    float *fcproj = ACT(m, fcproj, l, BTC), *res3 = ACT(m, res3, l, BTC);
    // h += attn(norm(h))
    rmsnorm_forward(ln1, ln1_rstd, h, model_layer(m, P_LN1_G, l, false), BT, C);
    meanpool_forward(a->pooled + (size_t)l * B * C, ln1, B, T, C);  // feature of layer l
    matmul_forward(qkv, ln1, model_layer(m, P_QKV_W, l, false), model_layer(m, P_QKV_B, l, false), BT, C, 3 * C);
    attention_forward(atty, att, qkv, B, T, C, NH, !bert);
    matmul_forward(attproj, atty, model_layer(m, P_ATTPROJ_W, l, false),
                   model_layer(m, P_ATTPROJ_B, l, false), BT, C, C);
    residual_forward(res2, h, attproj, BTC);
    // h += mlp(norm(h))
    rmsnorm_forward(ln2, ln2_rstd, res2, model_layer(m, P_LN2_G, l, false), BT, C);
    matmul_forward(fch, ln2, model_layer(m, P_FC_W, l, false), model_layer(m, P_FC_B, l, false), BT, C, 4 * C);
    gelu2_forward(fch_gelu, fch, 4 * BTC);
    matmul_forward(fcproj, fch_gelu, model_layer(m, P_FCPROJ_W, l, false),
                   model_layer(m, P_FCPROJ_B, l, false), BT, 4 * C, C);
    residual_forward(res3, res2, fcproj, BTC);
    h = res3;
  }
  rmsnorm_forward(a->lnf, a->lnf_rstd, h, m->param[P_LNF_G], BT, C);
  float *pooled_f = a->pooled + (size_t)L * B * C;
  meanpool_forward(pooled_f, a->lnf, B, T, C);

  m->loss = m->loss_gen = m->loss_clf = 0.0f;
  m->n_targets = 0;
  if (b->head) {  // logits = norm(h) wtet^T; generative cross-entropy
    matmul_forward(a->logits, a->lnf, m->param[P_WTET], NULL, BT, C, V);
    m->n_targets = loss_weights(a->loss_w, b, bert);
    m->loss_gen = (float)crossentropy_forward(a->losses, a->probs, a->logits, b->tokens, a->loss_w, BT, V);
  }
  if (c->n_classes) {  // logits_clf = mean_t norm(h) wclf^T
    int K = c->n_classes;
    matmul_forward(a->clf_logits, pooled_f, m->param[P_WCLF], NULL, B, C, K);
    for (int i = 0; i < B; i++) {
      m->clf_tgt[i] = b->labels ? (uint16_t)b->labels[i] : 0;
      a->clf_w[i] = b->labels ? 1.0f / (float)B : 0.0f;
    }
    m->loss_clf = (float)crossentropy_forward(a->clf_losses, a->clf_probs, a->clf_logits, m->clf_tgt,
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
  if (!m->grads) model_zero_grad(m);
  const model_config *c = &m->cfg;
  const model_batch *b = &m->batch;
  int B = m->B, T = m->T, C = c->n_embd, NH = c->n_head, L = c->n_layer, V = c->n_vocab;
  int K = c->n_classes;
  size_t BT = (size_t)B * T, BTC = BT * C;
  bool bert = c->objective == OBJ_BERT;
  model_acts *a = &m->acts;

  // gradient buffers of the activations, one layer's worth, reused going down the layers
  size_t datt_n = (size_t)B * NH * T * T;  // scratch the attention backward overwrites
  size_t need = BTC /*dres*/ + BTC /*dlnf*/ + (b->head ? BT * V : 0) + B * C + B * K + 4 * BTC * 2 +
                3 * BTC + BTC * 3 + datt_n;
  if (need > m->grad_acts_cap) {
    free(m->grad_acts_memory);
    m->grad_acts_memory = xmalloc(need * sizeof(float));
    m->grad_acts_cap = need;
  }
  memset(m->grad_acts_memory, 0, (need - datt_n) * sizeof(float));
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
    crossentropy_backward(dlogits, a->probs, b->tokens, a->loss_w, BT, V);
    matmul_backward(dlnf, m->grad[P_WTET], NULL, dlogits, a->lnf, m->param[P_WTET], BT, C, V);
  }
  if (K && b->labels) {
    crossentropy_backward(dclf, a->clf_probs, m->clf_tgt, a->clf_w, B, K);
    matmul_backward(dpooled, m->grad[P_WCLF], NULL, dclf, a->pooled + (size_t)L * B * C,
                    m->param[P_WCLF], B, C, K);
    meanpool_backward(dlnf, dpooled, B, T, C);
  }
  const float *h_last = L ? a->res3 + (size_t)(L - 1) * BTC : a->encoded;
  rmsnorm_backward(dres, m->grad[P_LNF_G], dlnf, h_last, m->param[P_LNF_G], a->lnf_rstd, BT, C);

  for (int l = L - 1; l >= 0; l--) {
    const float *h = l ? a->res3 + (size_t)(l - 1) * BTC : a->encoded;  // block input
    float *ln1 = a->ln1 + l * BTC, *ln1_rstd = a->ln1_rstd + l * BT, *qkv = a->qkv + l * 3 * BTC;
    float *atty = a->atty + l * BTC, *att = a->att + (size_t)l * B * NH * T * T;
    float *res2 = a->res2 + l * BTC, *ln2 = a->ln2 + l * BTC, *ln2_rstd = a->ln2_rstd + l * BT;
    float *fch = a->fch + l * 4 * BTC, *fch_gelu = a->fch_gelu + l * 4 * BTC;
    if (l != L - 1) {
      memset(dfch_gelu, 0, 4 * BTC * sizeof(float));
      memset(dfch, 0, 4 * BTC * sizeof(float));
      memset(dqkv, 0, 3 * BTC * sizeof(float));
      memset(dln2, 0, BTC * sizeof(float));
      memset(datty, 0, BTC * sizeof(float));
      memset(dln1, 0, BTC * sizeof(float));
    }
    // h_out = res2 + mlp(norm(res2)): dres passes to res2 unchanged, plus through the mlp
    matmul_backward(dfch_gelu, model_layer(m, P_FCPROJ_W, l, true), model_layer(m, P_FCPROJ_B, l, true),
                    dres, fch_gelu, model_layer(m, P_FCPROJ_W, l, false), BT, 4 * C, C);
    gelu2_backward(dfch, fch, dfch_gelu, 4 * BTC);
    matmul_backward(dln2, model_layer(m, P_FC_W, l, true), model_layer(m, P_FC_B, l, true), dfch, ln2,
                    model_layer(m, P_FC_W, l, false), BT, C, 4 * C);
    rmsnorm_backward(dres, model_layer(m, P_LN2_G, l, true), dln2, res2,
                     model_layer(m, P_LN2_G, l, false), ln2_rstd, BT, C);
    // res2 = h + attn(norm(h))
    matmul_backward(datty, model_layer(m, P_ATTPROJ_W, l, true), model_layer(m, P_ATTPROJ_B, l, true),
                    dres, atty, model_layer(m, P_ATTPROJ_W, l, false), BT, C, C);
    attention_backward(dqkv, datt, datty, qkv, att, B, T, C, NH, !bert);
    matmul_backward(dln1, model_layer(m, P_QKV_W, l, true), model_layer(m, P_QKV_B, l, true), dqkv, ln1,
                    model_layer(m, P_QKV_W, l, false), BT, C, 3 * C);
    rmsnorm_backward(dres, model_layer(m, P_LN1_G, l, true), dln1, h, model_layer(m, P_LN1_G, l, false),
                     ln1_rstd, BT, C);
  }
  encoder_backward(m->grad[P_WTE], m->grad[P_WPE], bert ? NULL : m->grad[P_SOS], dres, b->tokens,
                   b->mask, B, T, C);
  return 0;
}
