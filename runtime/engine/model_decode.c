// model_decode: autoregressive decoding one position at a time with a key/value cache, the
// forward's computation for a single row per sequence. See model.h.
#include "engine/model.h"
#include "kernels/ops.h"
#include "base/util.h"
#include <stdlib.h>
#include <string.h>

model_kv *model_kv_new(const model *m, int B) {
  const model_config *c = &m->cfg;
  size_t C = c->n_embd, L = c->n_layer, cap = c->n_ctx;
  model_kv *kv = xcalloc(1, sizeof *kv);
  kv->B = B, kv->cap = (int)cap;
  kv->k = xmalloc(L * B * cap * C * sizeof(float));
  kv->v = xmalloc(L * B * cap * C * sizeof(float));
  kv->x = xmalloc(B * C * sizeof(float));
  kv->ln = xmalloc(B * C * sizeof(float));
  kv->qkv = xmalloc(B * 3 * C * sizeof(float));
  kv->atty = xmalloc(B * C * sizeof(float));
  kv->proj = xmalloc(B * C * sizeof(float));
  kv->fch = xmalloc(B * 4 * C * sizeof(float));
  kv->fch_gelu = xmalloc(B * 4 * C * sizeof(float));
  kv->scores = xmalloc((size_t)B * c->n_head * cap * sizeof(float));
  return kv;
}

void model_kv_free(model_kv *kv) {
  if (!kv) return;
  free(kv->k), free(kv->v), free(kv->x), free(kv->ln), free(kv->qkv), free(kv->atty);
  free(kv->proj), free(kv->fch), free(kv->fch_gelu), free(kv->scores);
  free(kv);
}

int model_decode(model *m, model_kv *kv, const uint16_t *prev, float *logits) {
  const model_config *c = &m->cfg;
  int B = kv->B, C = c->n_embd, NH = c->n_head, hd = C / NH, L = c->n_layer, t = kv->len;
  if (c->objective != OBJ_AR) return igpt_err("model_decode: a BERT model does not decode left to right");
  if (t >= kv->cap) return igpt_err("model_decode: the cache is full (n_ctx %d positions)", kv->cap);
  // x = (sos | wte[prev]) + wpe[t]
  for (int b = 0; b < B; b++) {
    if (t > 0 && prev[b] >= c->n_vocab)
      return igpt_err("model_decode: token %u of sequence %d is outside the palette (n_vocab %d)", prev[b], b,
                      c->n_vocab);
    const float *e = t == 0 ? m->param[P_SOS] : m->param[P_WTE] + (size_t)prev[b] * C;
    const float *p = m->param[P_WPE] + (size_t)t * C;
    for (int i = 0; i < C; i++) kv->x[(size_t)b * C + i] = e[i] + p[i];
  }
  size_t layer_cache = (size_t)B * NH * kv->cap * hd;
  for (int l = 0; l < L; l++) {
    // h += attn(norm(h)), with this position's k, v appended to the cache
    rmsnorm_forward(kv->ln, NULL, kv->x, model_layer(m, P_LN1_G, l, false), B, C);
    matmul_forward(kv->qkv, kv->ln, model_layer(m, P_QKV_W, l, false), model_layer(m, P_QKV_B, l, false), B, C,
                   3 * C);
    float *kc = kv->k + l * layer_cache, *vc = kv->v + l * layer_cache;
    for (int b = 0; b < B; b++)
      for (int h = 0; h < NH; h++) {
        size_t row = (((size_t)b * NH + h) * kv->cap + t) * hd;
        memcpy(kc + row, kv->qkv + (size_t)b * 3 * C + C + h * hd, hd * sizeof(float));
        memcpy(vc + row, kv->qkv + (size_t)b * 3 * C + 2 * C + h * hd, hd * sizeof(float));
      }
    attention_decode_forward(kv->atty, kv->scores, kv->qkv, 3 * C, kc, vc, B, NH, hd, t + 1, kv->cap);
    matmul_forward(kv->proj, kv->atty, model_layer(m, P_ATTPROJ_W, l, false),
                   model_layer(m, P_ATTPROJ_B, l, false), B, C, C);
    residual_forward(kv->x, kv->x, kv->proj, (size_t)B * C);
    // h += mlp(norm(h))
    rmsnorm_forward(kv->ln, NULL, kv->x, model_layer(m, P_LN2_G, l, false), B, C);
    matmul_forward(kv->fch, kv->ln, model_layer(m, P_FC_W, l, false), model_layer(m, P_FC_B, l, false), B, C,
                   4 * C);
    gelu2_forward(kv->fch_gelu, kv->fch, (size_t)B * 4 * C);
    matmul_forward(kv->proj, kv->fch_gelu, model_layer(m, P_FCPROJ_W, l, false),
                   model_layer(m, P_FCPROJ_B, l, false), B, 4 * C, C);
    residual_forward(kv->x, kv->x, kv->proj, (size_t)B * C);
  }
  rmsnorm_forward(kv->ln, NULL, kv->x, m->param[P_LNF_G], B, C);
  matmul_forward(logits, kv->ln, m->param[P_WTET], NULL, B, C, c->n_vocab);
  kv->len = t + 1;
  return 0;
}
