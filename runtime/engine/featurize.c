// featurize: pooled per-layer features in one forward pass per batch; see featurize.h.
#include "engine/featurize.h"
#include "engine/comm.h"
#include "base/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void features_mask(uint64_t seed, int k, int64_t row, double p, uint8_t *mask, int T) {
  rng_t r;
  rng_seed_stream(&r, seed, ((uint64_t)k << 40) ^ (uint64_t)row ^ 0x6d61736bULL /* "mask" */);
  model_bert_mask(&r, mask, 1, T, p);
}

// Mean over T positions of x [B, T, C] into out [B, C] (double sums).
static void mean_positions(float *out, const float *x, int B, int T, int C) {
  for (int b = 0; b < B; b++)
    for (int c = 0; c < C; c++) {
      double s = 0;
      for (int t = 0; t < T; t++) s += x[((size_t)b * T + t) * C + c];
      out[(size_t)b * C + c] = (float)(s / T);
    }
}

int features_loss_add(features_loss *l, const model *m, int B, int T, int64_t row0) {
  const float *w = model_loss_weights(m), *loss = model_losses(m);
  for (size_t k = 0; k < (size_t)B * T; k++) {
    if (w[k] == 0.0f) continue;
    if (!isfinite(loss[k]))
      return igpt_err("the loss of sequence %lld at position %lld is %g: the model's outputs are not finite on it",
                      (long long)(row0 + (int64_t)(k / (size_t)T)), (long long)(k % (size_t)T), (double)loss[k]);
    l->nats += loss[k], l->tokens++;
  }
  return 0;
}

int features_extract(model *m, const uint16_t *tokens, int64_t N, int T, const features_opts *o,
                     float ***out, float ***raw) {
  const model_config *c = &m->cfg;
  const int L = c->n_layer, C = c->n_embd, K = o->masks < 1 ? 1 : o->masks;
  const int Bmax = o->batch < 1 ? 1 : o->batch;
  const bool bert = c->objective == OBJ_BERT;
  if (!bert && K > 1) return igpt_err("--masks %d: only BERT models take evaluation masks", K);
  float **f = xcalloc(L + 1, sizeof(float *)), **r = o->raw ? xcalloc(L + 1, sizeof(float *)) : NULL;
  for (int l = 0; l <= L; l++) {
    f[l] = xmalloc(sizeof(float) * K * N * C);
    if (r) r[l] = xmalloc(sizeof(float) * K * N * C);
  }
  uint8_t *mask = bert ? xmalloc((size_t)Bmax * T) : NULL;
  const bool tty = isatty(2);
  const double t0 = now_seconds();
  double last = t0;
  const int64_t total = N * K;
  int rc = 0;
  if (o->loss) *o->loss = (features_loss){0};
  for (int k = 0; k < K && !rc; k++)
    for (int64_t i0 = 0; i0 < N; i0 += Bmax) {
      int B = (int)(N - i0 < Bmax ? N - i0 : Bmax);
      if (bert)
        for (int b = 0; b < B; b++) features_mask(o->seed, k, o->row0 + i0 + b, c->mask_prob, mask + (size_t)b * T, T);
      // raw features need every layer's residual stream, which only a gradient forward keeps
      model_batch mb = {.tokens = tokens + i0 * T, .mask = mask, .B = B, .T = T,
                        .grad = o->raw != 0, .head = o->loss != NULL};
      if (model_forward(m, &mb)) {
        rc = igpt_err_prefix("images %lld..%lld", (long long)i0, (long long)(i0 + B - 1));
        break;
      }
      if (o->loss && (rc = features_loss_add(o->loss, m, B, T, o->row0 + i0))) break;
      const float *pooled = model_features(m);  // [L+1, B, C]
      for (int l = 0; l <= L; l++)
        memcpy(f[l] + ((int64_t)k * N + i0) * C, pooled + (size_t)l * B * C, sizeof(float) * B * C);
      if (r) {
        for (int l = 0; l <= L; l++) {
          mean_positions(r[l] + ((int64_t)k * N + i0) * C, model_hidden(m, l), B, T, C);
        }
      }
      double now = now_seconds();
      int64_t done = (int64_t)k * N + i0 + B;
      if (o->progress && done == B && done < total) {  // the estimate, before the bulk of the work
        double rate = B / (now - t0 + 1e-9), left = (total - done) / rate;
        fprintf(stderr, "features: %lld images x %d masks at %.1f images/s (measured on the first batch of %d, "
                "here): about %.0f s (%.1f h) to go\n", (long long)N, K, rate, B, left, left / 3600);
      }
      if (o->progress && (now - last > (tty ? 0.2 : 10) || done == total)) {
        double rate = done / (now - t0);
        fprintf(stderr, "%sfeatures: %lld/%lld images (%d masks), %.1f images/s, ETA %.0f s%s",
                tty ? "\r" : "", (long long)done, (long long)total, K, rate, (total - done) / rate,
                tty ? (done == total ? "\n" : "") : "\n");
        last = now;
      }
    }
  free(mask);
  if (rc) {
    for (int l = 0; l <= L; l++) { free(f[l]); if (r) free(r[l]); }
    free(f); free(r);
    return -1;
  }
  *out = f;
  if (raw) *raw = r;
  return 0;
}

int features_extract_ranks(model *m, const uint16_t *tokens, int64_t N, int T, const features_opts *o,
                           float ***out, float ***raw) {
  if (comm_init()) return -1;
  const int size = comm_size(), rank = comm_rank();
  if (size == 1) return features_extract(m, tokens, N, T, o, out, raw);
  const int64_t lo = comm_slice_start(N, rank, size), hi = comm_slice_start(N, rank + 1, size);
  if (hi <= lo) return igpt_err("%lld images for %d ranks: every rank needs at least one", (long long)N, size);
  features_opts mine = *o;
  mine.row0 = o->row0 + lo;
  mine.progress = o->progress && rank == 0;
  float **f = NULL, **r = NULL;
  if (features_extract(m, tokens + lo * T, hi - lo, T, &mine, &f, o->raw ? &r : NULL)) return -1;
  const int L = m->cfg.n_layer, C = m->cfg.n_embd, K = o->masks < 1 ? 1 : o->masks;
  float **F = xcalloc(L + 1, sizeof(float *)), **R = r ? xcalloc(L + 1, sizeof(float *)) : NULL;
  int rc = 0;
  for (int l = 0; l <= L; l++)
    for (int which = 0; which < (r ? 2 : 1); which++) {
      float *full = xmalloc(sizeof(float) * K * N * C), *part = which ? r[l] : f[l];
      for (int k = 0; k < K; k++) {
        memcpy(full + ((size_t)k * N + lo) * C, part + (size_t)k * (hi - lo) * C, sizeof(float) * (hi - lo) * C);
        for (int q = 0; q < size && !rc; q++) {  // rank q's rows reach every rank
          int64_t a = comm_slice_start(N, q, size), b = comm_slice_start(N, q + 1, size);
          rc = comm_broadcast(full + ((size_t)k * N + a) * C, sizeof(float) * (b - a) * C, q);
        }
      }
      free(part);
      if (which) R[l] = full;
      else F[l] = full;
    }
  free(f);
  free(r);
  if (!rc && o->loss) {  // every rank's sums, added
    double sums[2] = {o->loss->nats, (double)o->loss->tokens};
    rc = comm_allreduce_sum_f64(sums, 2);
    *o->loss = (features_loss){.nats = sums[0], .tokens = (int64_t)sums[1]};
  }
  if (rc) {
    for (int l = 0; l <= L; l++) { free(F[l]); if (R) free(R[l]); }
    free(F); free(R);
    return -1;
  }
  *out = F;
  if (raw) *raw = R;
  return 0;
}
