// batcher: tokens file, epoch shuffles, positions and BERT masks. See batcher.h.
#include "engine/batcher.h"
#include "base/util.h"
#include <stdlib.h>
#include <string.h>

// Independent streams of one seed (rng_seed_stream purposes); model init uses others.
enum { STREAM_ORDER = 0x6f72646572, STREAM_MASK = 0x6d61736b };

static void shuffle_epoch(batcher *b) {
  rng_t r = b->st.order_rng;  // the saved state stays the one before the shuffle
  for (int64_t i = 0; i < b->N; i++) b->order[i] = (uint32_t)i;
  for (int64_t i = b->N - 1; i > 0; i--) {  // Fisher-Yates
    uint32_t j = rng_below(&r, (uint32_t)(i + 1));
    uint32_t t = b->order[i];
    b->order[i] = b->order[j];
    b->order[j] = t;
  }
  b->next_order_rng = r;
}

int tokens_check_labels(const st_file *f, int64_t n) {
  const st_tensor *l = st_get(f, "labels");
  if (!l) return 0;
  if (l->dtype == ST_I32 && l->ndim == 1 && l->shape[0] == n) return 0;
  char shape[64] = "";
  for (int i = 0; i < l->ndim; i++)
    snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", i ? ", " : "", (long long)l->shape[i]);
  return igpt_err("%s: tensor 'labels' is %s [%s], but 'tokens' has %lld rows: expected I32 [%lld], one label a "
                  "row (re-run igpt tokenize on the images file)", f->path ? f->path : "(buffer)",
                  st_dtype_name(l->dtype), shape, (long long)n, (long long)n);
}

int batcher_open(batcher *b, const char *path, int64_t n_ctx, int64_t n_vocab, uint64_t seed) {
  memset(b, 0, sizeof *b);
  if (st_open(&b->file, path) < 0) return -1;
  const st_tensor *t = st_expect(&b->file, "tokens", ST_U16, 2, (int64_t[]){-1, -1});
  if (!t) goto fail;
  b->N = t->shape[0];
  b->T = t->shape[1];
  if (b->N < 1) {
    igpt_err("%s: tensor 'tokens' has no rows; a tokens file needs at least one sequence", path);
    goto fail;
  }
  if (tokens_check_labels(&b->file, b->N) < 0) goto fail;
  if (b->N > UINT32_MAX) {
    igpt_err("%s: %lld rows, more than this trainer indexes (2^32)", path, (long long)b->N);
    goto fail;
  }
  if (b->T != n_ctx) {
    igpt_err("%s: sequences of %lld tokens, but the model's n_ctx is %lld; tokenize at the "
             "model's size or set n_ctx to %lld", path, (long long)b->T, (long long)n_ctx,
             (long long)b->T);
    goto fail;
  }
  b->tokens = t->data;
  size_t n = (size_t)b->N * (size_t)b->T;
  for (size_t i = 0; i < n; i++)
    if (b->tokens[i] >= n_vocab) {
      igpt_err("%s: tokens[%zu, %zu] = %u is outside the vocabulary (n_vocab %lld)", path,
               i / (size_t)b->T, i % (size_t)b->T, b->tokens[i], (long long)n_vocab);
      goto fail;
    }
  b->order = xmalloc((size_t)b->N * sizeof *b->order);
  rng_seed_stream(&b->st.order_rng, seed, STREAM_ORDER);
  rng_seed_stream(&b->st.mask_rng, seed, STREAM_MASK);
  shuffle_epoch(b);
  return 0;
fail:
  st_close(&b->file);
  memset(b, 0, sizeof *b);
  return -1;
}

void batcher_close(batcher *b) {
  free(b->order);
  st_close(&b->file);
  memset(b, 0, sizeof *b);
}

// The next row of the stream (a new epoch and shuffle when this one is used up).
static const uint16_t *next_row(batcher *b) {
  if (b->st.pos == (uint64_t)b->N) {
    b->st.order_rng = b->next_order_rng;
    b->st.epoch++;
    b->st.pos = 0;
    shuffle_epoch(b);
  }
  return b->tokens + (size_t)b->order[b->st.pos++] * (size_t)b->T;
}

void batcher_next(batcher *b, uint16_t *out, int64_t rows) {
  for (int64_t r = 0; r < rows; r++)
    memcpy(out + (size_t)r * (size_t)b->T, next_row(b), (size_t)b->T * sizeof *out);
}

void batcher_skip(batcher *b, int64_t rows) {
  for (int64_t r = 0; r < rows; r++) next_row(b);
}

void batcher_mask_skip(batcher *b, size_t n) {
  for (size_t i = 0; i < n; i++) rng_uniform(&b->st.mask_rng);
}

void batcher_mask(batcher *b, uint8_t *mask, size_t n, double p) {
  for (size_t i = 0; i < n; i++) mask[i] = rng_uniform(&b->st.mask_rng) < p;
}

int batcher_restore(batcher *b, const batcher_state *st) {
  if (st->pos > (uint64_t)b->N)
    return igpt_err("saved data position %llu is past the tokens file's %lld rows; the tokens "
                    "file changed since the checkpoint", (unsigned long long)st->pos,
                    (long long)b->N);
  b->st = *st;
  shuffle_epoch(b);
  return 0;
}
