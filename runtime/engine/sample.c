// sample: token sampling over the model's KV-cached decoding (model_decode). See sample.h.
#include "engine/sample.h"
#include "base/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
  if (c->objective != OBJ_AR) {
    free(prev);
    return igpt_err("sampling needs an autoregressive model; this one is BERT (no sampling order)");
  }
  model_kv *kv = o->use_cache ? model_kv_new(m, B) : NULL;
  if (o->use_cache && !kv) {
    free(prev);
    return -1;
  }
  float *step_logits = o->use_cache ? xmalloc((size_t)B * V * sizeof(float)) : NULL;
  uint16_t *buf = o->use_cache ? NULL : xmalloc((size_t)B * T * sizeof *buf);
  int rc = 0;
  for (int t = 0; t < T && !rc; t++) {
    const float *logits;  // [B, V] predicting token t
    size_t stride = V;
    if (o->use_cache) {
      for (int b = 0; b < B; b++) prev[b] = t ? tokens[(size_t)b * T + t - 1] : 0;
      logits = model_decode(m, kv, prev, step_logits) ? NULL : step_logits;
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
  model_kv_free(kv);
  free(step_logits);
  free(buf);
  free(prev);
  return rc;
}
