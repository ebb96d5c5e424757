// model_decode: autoregressive decoding one position at a time with a key/value cache, the
// forward's computation for a single row per sequence, through the model's backend. See model.h.
#include "engine/model.h"
#include "base/util.h"
#include <stdlib.h>
#include <string.h>

#define W(p, l) ((const float *)model_slice(m, m->bparam[p], p, l))

model_kv *model_kv_new(const model *m, int B) {
  const model_config *c = &m->cfg;
  const backend *be = m->be;
  size_t C = c->n_embd, L = c->n_layer, cap = c->n_ctx, V = c->n_vocab;
  model_kv *kv = xcalloc(1, sizeof *kv);
  kv->B = B, kv->cap = (int)cap, kv->be = be;
  struct { float **p; size_t n; } s[] = {
      {&kv->k, L * B * cap * C}, {&kv->v, L * B * cap * C}, {&kv->x, B * C}, {&kv->ln, B * C},
      {&kv->qkv, B * 3 * C}, {&kv->atty, B * C}, {&kv->proj, B * C}, {&kv->fch, B * 4 * C},
      {&kv->fch_gelu, B * 4 * C}, {&kv->scores, (size_t)B * c->n_head * cap},
      {&kv->logits, be->host_memory ? 0 : B * V}};
  for (size_t i = 0; i < sizeof s / sizeof *s; i++) {
    if (!s[i].n) continue;
    if (!(*s[i].p = be->alloc(s[i].n * sizeof(float)))) {
      igpt_err("out of memory on %s: %.1f MiB for the key/value cache of %d sequences (try a smaller --batch)",
               be->detail, (double)s[i].n * sizeof(float) / 1048576.0, B);
      model_kv_free(kv);
      return NULL;
    }
  }
  if (!be->host_memory && !(kv->prev = be->alloc((size_t)B * sizeof *kv->prev))) {
    igpt_err("out of memory on %s for the decoder's tokens", be->detail);
    model_kv_free(kv);
    return NULL;
  }
  return kv;
}

void model_kv_free(model_kv *kv) {
  if (!kv) return;
  float *bufs[] = {kv->k, kv->v, kv->x, kv->ln, kv->qkv, kv->atty, kv->proj, kv->fch, kv->fch_gelu,
                   kv->scores, kv->logits};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
    if (bufs[i]) kv->be->release(bufs[i]);
  if (kv->prev) kv->be->release(kv->prev);
  free(kv);
}

int model_decode(model *m, model_kv *kv, const uint16_t *prev, float *logits) {
  const model_config *c = &m->cfg;
  const backend *be = m->be;
  int B = kv->B, C = c->n_embd, NH = c->n_head, hd = C / NH, L = c->n_layer, t = kv->len;
  if (c->objective != OBJ_AR) return igpt_err("model_decode: a BERT model does not decode left to right");
  if (t >= kv->cap) return igpt_err("model_decode: the cache is full (n_ctx %d positions)", kv->cap);
  for (int b = 0; b < B && t > 0; b++)
    if (prev[b] >= c->n_vocab)
      return igpt_err("model_decode: token %u of sequence %d is outside the palette (n_vocab %d)", prev[b], b,
                      c->n_vocab);
  if (m->host_newer) model_push(m);
  const uint16_t *tok = prev;
  if (!be->host_memory && t > 0) {
    be->upload(kv->prev, prev, (size_t)B * sizeof *prev);
    tok = kv->prev;
  }
  // x = (sos | wte[prev]) + wpe[t]: the encoder over one position, its wpe row t
  be->encoder_forward(kv->x, tok, NULL, m->bparam[P_WTE], m->bparam[P_WPE] + (size_t)t * C,
                      t == 0 ? m->bparam[P_SOS] : NULL, B, 1, C);
  size_t layer_cache = (size_t)B * NH * kv->cap * hd;
  for (int l = 0; l < L; l++) {
    // h += attn(norm(h)), with this position's k, v appended to the cache
    be->rmsnorm_forward(kv->ln, NULL, kv->x, W(P_LN1_G, l), B, C);
    be->matmul_forward(kv->qkv, kv->ln, W(P_QKV_W, l), W(P_QKV_B, l), B, C, 3 * C);
    float *kc = kv->k + l * layer_cache, *vc = kv->v + l * layer_cache;
    be->kvcache_append(kc, vc, kv->qkv, B, NH, hd, kv->cap, t);
    be->attention_decode_forward(kv->atty, kv->scores, kv->qkv, 3 * C, kc, vc, B, NH, hd, t + 1, kv->cap);
    be->matmul_forward(kv->proj, kv->atty, W(P_ATTPROJ_W, l), W(P_ATTPROJ_B, l), B, C, C);
    be->residual_forward(kv->x, kv->x, kv->proj, (size_t)B * C);
    // h += mlp(norm(h))
    be->rmsnorm_forward(kv->ln, NULL, kv->x, W(P_LN2_G, l), B, C);
    be->matmul_forward(kv->fch, kv->ln, W(P_FC_W, l), W(P_FC_B, l), B, C, 4 * C);
    be->gelu2_forward(kv->fch_gelu, kv->fch, (size_t)B * 4 * C);
    be->matmul_forward(kv->proj, kv->fch_gelu, W(P_FCPROJ_W, l), W(P_FCPROJ_B, l), B, 4 * C, C);
    be->residual_forward(kv->x, kv->x, kv->proj, (size_t)B * C);
  }
  be->rmsnorm_forward(kv->ln, NULL, kv->x, m->bparam[P_LNF_G], B, C);
  float *out = be->host_memory ? logits : kv->logits;
  be->matmul_forward(out, kv->ln, m->bparam[P_WTET], NULL, B, C, c->n_vocab);
  if (!be->host_memory) be->download(logits, out, (size_t)B * c->n_vocab * sizeof(float));
  kv->len = t + 1;
  return 0;
}
