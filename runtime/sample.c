// sample: KV-cached incremental forward and token sampling. See sample.h.
// One step reads as model_forward does for a single position (REFERENCE.md 1):
//   x = (t ? wte[prev] : sos) + wpe[t]
//   per layer: q,k,v = norm(x; g1) W_qkv^T; cache k, v at row t; y = softmax(q K[0..t]^T / sqrt(hd)) V
//              x += y W_proj^T;  x += gelu2(norm(x; g2) W_fc^T) W_fcproj^T
//   logits = norm(x; g_f) wtet^T
#include "sample.h"
#include "ops.h"
#include "util.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int kv_new(kv_cache *kv, model *m, int B) {
  const model_config *c = &m->cfg;
  if (c->objective != OBJ_AR)
    return igpt_err("sampling needs an autoregressive model; this one is BERT (no sampling order)");
  memset(kv, 0, sizeof *kv);
  kv->m = m;
  kv->B = B;
  size_t C = c->n_embd, L = c->n_layer, cache = L * B * (size_t)c->n_ctx * C;
  kv->k = xmalloc(cache * sizeof(float));
  kv->v = xmalloc(cache * sizeof(float));
  kv->x = xmalloc(B * C * sizeof(float));
  kv->ln = xmalloc(B * C * sizeof(float));
  kv->qkv = xmalloc(B * 3 * C * sizeof(float));
  kv->atty = xmalloc(B * C * sizeof(float));
  kv->proj = xmalloc(B * C * sizeof(float));
  kv->fch = xmalloc(B * 4 * C * sizeof(float));
  kv->fchg = xmalloc(B * 4 * C * sizeof(float));
  kv->rstd = xmalloc(B * sizeof(float));
  kv->scores = xmalloc((size_t)B * c->n_head * c->n_ctx * sizeof(float));
  kv->logits = xmalloc((size_t)B * c->n_vocab * sizeof(float));
  return 0;
}

void kv_free(kv_cache *kv) {
  float *bufs[] = {kv->k, kv->v, kv->x, kv->ln, kv->qkv, kv->atty, kv->proj, kv->fch, kv->fchg,
                   kv->rstd, kv->scores, kv->logits};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  memset(kv, 0, sizeof *kv);
}

void kv_reset(kv_cache *kv) { kv->len = 0; }

// Attention of one new query per (sequence, head) over the cached rows 0..t of this layer:
// scores = K q / sqrt(hd) and y = V^T softmax(scores), two sgemv per pair.
static void attend_cached(kv_cache *kv, const float *kl, const float *vl, int t) {
  const model_config *c = &kv->m->cfg;
  const int C = c->n_embd, NH = c->n_head, hd = C / NH, T = c->n_ctx, B = kv->B;
  const float scale = 1.0f / sqrtf((float)hd);
  // one step's attention is small: threads only pay off over long prefixes or big batches, and
  // then OpenBLAS's own threads would fight the OpenMP ones (as in kernels/cpu/attention.c)
  const bool par = (size_t)B * NH * (t + 1) * hd > (1u << 15);
  int nblas = openblas_get_num_threads();
  if (par) openblas_set_num_threads(1);
#pragma omp parallel for collapse(2) schedule(static) if (par)
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++) {
      const float *q = kv->qkv + (size_t)b * 3 * C + h * hd;
      const float *K = kl + ((size_t)b * NH + h) * T * hd, *Vv = vl + ((size_t)b * NH + h) * T * hd;
      float *s = kv->scores + ((size_t)b * NH + h) * T, mx = -INFINITY;
      cblas_sgemv(CblasRowMajor, CblasNoTrans, t + 1, hd, scale, K, hd, q, 1, 0.0f, s, 1);
      for (int i = 0; i <= t; i++) if (s[i] > mx) mx = s[i];
      float sum = 0;
      for (int i = 0; i <= t; i++) { s[i] = expf(s[i] - mx); sum += s[i]; }
      float *y = kv->atty + (size_t)b * C + h * hd;
      cblas_sgemv(CblasRowMajor, CblasTrans, t + 1, hd, 1.0f / sum, Vv, hd, s, 1, 0.0f, y, 1);
    }
  if (par) openblas_set_num_threads(nblas);
}

const float *kv_step(kv_cache *kv, const uint16_t *prev) {
  model *m = kv->m;
  const model_config *c = &m->cfg;
  const int C = c->n_embd, NH = c->n_head, hd = C / NH, T = c->n_ctx, B = kv->B, t = kv->len;
  if (t >= T) { igpt_err("sample: context of %d positions is full", T); return NULL; }
  const float *wpe = m->param[P_WPE] + (size_t)t * C;
  for (int b = 0; b < B; b++) {
    const float *e = m->param[P_SOS];
    if (t > 0) {
      if (prev[b] >= c->n_vocab) { igpt_err("sample: token %u outside the palette of %d", prev[b], c->n_vocab); return NULL; }
      e = m->param[P_WTE] + (size_t)prev[b] * C;
    }
    for (int i = 0; i < C; i++) kv->x[(size_t)b * C + i] = e[i] + wpe[i];
  }
  for (int l = 0; l < c->n_layer; l++) {
    rmsnorm_forward(kv->ln, kv->rstd, kv->x, model_layer(m, P_LN1_G, l, false), B, C);
    matmul_forward(kv->qkv, kv->ln, model_layer(m, P_QKV_W, l, false), model_layer(m, P_QKV_B, l, false), B, C, 3 * C);
    float *kl = kv->k + (size_t)l * B * NH * T * hd, *vl = kv->v + (size_t)l * B * NH * T * hd;
    for (int b = 0; b < B; b++)
      for (int h = 0; h < NH; h++) {
        const float *src = kv->qkv + (size_t)b * 3 * C + h * hd;
        size_t row = (((size_t)b * NH + h) * T + t) * hd;
        memcpy(kl + row, src + C, hd * sizeof(float));
        memcpy(vl + row, src + 2 * C, hd * sizeof(float));
      }
    attend_cached(kv, kl, vl, t);
    matmul_forward(kv->proj, kv->atty, model_layer(m, P_ATTPROJ_W, l, false), model_layer(m, P_ATTPROJ_B, l, false), B, C, C);
    residual_forward(kv->x, kv->x, kv->proj, (size_t)B * C);
    rmsnorm_forward(kv->ln, kv->rstd, kv->x, model_layer(m, P_LN2_G, l, false), B, C);
    matmul_forward(kv->fch, kv->ln, model_layer(m, P_FC_W, l, false), model_layer(m, P_FC_B, l, false), B, C, 4 * C);
    gelu2_forward(kv->fchg, kv->fch, (size_t)B * 4 * C);
    matmul_forward(kv->proj, kv->fchg, model_layer(m, P_FCPROJ_W, l, false), model_layer(m, P_FCPROJ_B, l, false), B, 4 * C, C);
    residual_forward(kv->x, kv->x, kv->proj, (size_t)B * C);
  }
  rmsnorm_forward(kv->ln, kv->rstd, kv->x, m->param[P_LNF_G], B, C);
  matmul_forward(kv->logits, kv->ln, m->param[P_WTET], NULL, B, C, c->n_vocab);
  kv->len++;
  return kv->logits;
}

uint16_t sample_token(const float *logits, int V, double temperature, int top_k, rng_t *rng) {
  double *p = xmalloc(V * sizeof *p);
  float thresh = -INFINITY;
  if (top_k > 0 && top_k < V) {  // the k-th largest logit: keep those >= it (ties kept)
    float *sorted = xmalloc(V * sizeof *sorted);
    memcpy(sorted, logits, V * sizeof *sorted);
    for (int i = 0; i < top_k; i++) {  // partial selection; V is 512 at most in practice
      int best = i;
      for (int j = i + 1; j < V; j++) if (sorted[j] > sorted[best]) best = j;
      float tmp = sorted[i]; sorted[i] = sorted[best]; sorted[best] = tmp;
    }
    thresh = sorted[top_k - 1];
    free(sorted);
  }
  double mx = -INFINITY, sum = 0;
  for (int i = 0; i < V; i++) if (logits[i] >= thresh && logits[i] > mx) mx = logits[i];
  for (int i = 0; i < V; i++) {
    p[i] = logits[i] >= thresh ? exp((logits[i] - mx) / temperature) : 0;
    sum += p[i];
  }
  double u = rng_uniform(rng) * sum, acc = 0;
  int pick = V - 1;
  for (int i = 0; i < V; i++) {
    acc += p[i];
    if (u < acc) { pick = i; break; }
  }
  while (p[pick] == 0 && pick > 0) pick--;  // u landed past the sum by rounding
  free(p);
  return (uint16_t)pick;
}

int sample_tokens(model *m, uint16_t *tokens, int B, int T, int given, const sample_opts *o,
                  void (*progress)(int, int, void *), void *ctx) {
  const model_config *c = &m->cfg;
  if (T > c->n_ctx || T < 1) return igpt_err("sample: %d positions, the model has %d", T, c->n_ctx);
  if (given < 0 || given > T) return igpt_err("sample: %d given tokens of %d", given, T);
  if (!(o->temperature > 0)) return igpt_err("sample: temperature must be > 0");
  for (int b = 0; b < B; b++)
    for (int t = 0; t < given; t++)
      if (tokens[(size_t)b * T + t] >= c->n_vocab)
        return igpt_err("sample: given token %u (sequence %d, position %d) outside the palette of %d",
                        tokens[(size_t)b * T + t], b, t, c->n_vocab);
  rng_t rng;
  rng_seed_stream(&rng, o->seed, 0x73616d706c65ull);  // "sample"
  const int V = c->n_vocab;
  uint16_t *prev = xmalloc(B * sizeof *prev);
  kv_cache kv = {0};
  uint16_t *buf = NULL;
  if (o->use_cache) {
    if (kv_new(&kv, m, B)) { free(prev); return -1; }
  } else {
    if (c->objective != OBJ_AR) { free(prev); return igpt_err("sampling needs an autoregressive model"); }
    buf = xmalloc((size_t)B * T * sizeof *buf);
  }
  int rc = 0;
  for (int t = 0; t < T && !rc; t++) {
    const float *logits;  // [B, V] predicting token t
    size_t stride = V;
    if (o->use_cache) {
      for (int b = 0; b < B; b++) prev[b] = t ? tokens[(size_t)b * T + t - 1] : 0;
      logits = kv_step(&kv, prev);
    } else {  // the whole prefix again: input sos, tokens[0..t-1]; position t predicts token t
      for (int b = 0; b < B; b++) {
        memcpy(buf + (size_t)b * (t + 1), tokens + (size_t)b * T, t * sizeof *buf);
        buf[(size_t)b * (t + 1) + t] = MODEL_IGNORE;
      }
      model_batch mb = {.tokens = buf, .B = B, .T = t + 1, .head = true};
      logits = model_forward(m, &mb) ? NULL : model_logits(m) + (size_t)t * V;
      stride = (size_t)(t + 1) * V;
    }
    if (!logits) { rc = -1; break; }
    if (t >= given)
      for (int b = 0; b < B; b++)
        tokens[(size_t)b * T + t] = sample_token(logits + b * stride, V, o->temperature, o->top_k, &rng);
    if (progress) progress(t + 1, T, ctx);
  }
  if (o->use_cache) kv_free(&kv);
  free(buf);
  free(prev);
  return rc;
}
