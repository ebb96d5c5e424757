// images: image sets in memory and the images file (safetensors `images` U8 [N,H,W,3],
// `labels` I32 [N]; DESIGN.md "Files between verbs").
#include "datasets/decode.h"
#include "base/safetensors.h"
#include "base/util.h"
#include <stdlib.h>
#include <string.h>

void image_set_alloc(image_set *s, int64_t n, int h, int w, int n_classes) {
  s->n = n;
  s->h = h;
  s->w = w;
  s->n_classes = n_classes;
  s->pixels = xmalloc((size_t)n * h * w * 3 + 1);
  s->labels = xmalloc((size_t)n * sizeof(int32_t) + 1);
}

void image_set_free(image_set *s) {
  free(s->pixels);
  free(s->labels);
  memset(s, 0, sizeof *s);
}

int image_set_append(image_set *a, const image_set *b) {
  if (a->n && (a->h != b->h || a->w != b->w))
    return igpt_err("cannot join images of %dx%d and %dx%d", a->h, a->w, b->h, b->w);
  size_t px = (size_t)b->h * b->w * 3;
  a->pixels = xrealloc(a->pixels, (size_t)(a->n + b->n) * px + 1);
  a->labels = xrealloc(a->labels, (size_t)(a->n + b->n) * sizeof(int32_t) + 1);
  memcpy(a->pixels + (size_t)a->n * px, b->pixels, (size_t)b->n * px);
  memcpy(a->labels + a->n, b->labels, (size_t)b->n * sizeof(int32_t));
  a->n += b->n;
  a->h = b->h;
  a->w = b->w;
  if (b->n_classes > a->n_classes) a->n_classes = b->n_classes;
  return 0;
}

int images_save(const image_set *s, const char *path) {
  st_writer *w = st_writer_new();
  st_writer_add(w, "images", ST_U8, 4, (int64_t[]){s->n, s->h, s->w, 3}, s->pixels);
  st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){s->n}, s->labels);
  int rc = st_writer_save(w, path);
  st_writer_free(w);
  return rc;
}

int images_load(image_set *s, const char *path) {
  st_file f;
  if (st_open(&f, path) != 0) return -1;
  const st_tensor *im = st_expect(&f, "images", ST_U8, 4, (int64_t[]){-1, -1, -1, 3});
  const st_tensor *lb = im ? st_expect(&f, "labels", ST_I32, 1, (int64_t[]){im->shape[0]}) : NULL;
  if (!lb) { st_close(&f); return -1; }
  image_set_alloc(s, im->shape[0], (int)im->shape[1], (int)im->shape[2], 0);
  memcpy(s->pixels, im->data, st_numel(im));
  memcpy(s->labels, lb->data, (size_t)s->n * sizeof(int32_t));
  st_close(&f);
  for (int64_t i = 0; i < s->n; i++) {
    if (s->labels[i] < -1) {
      int rc = igpt_err("%s: labels[%lld] = %d, expected a class index or -1", path, (long long)i, s->labels[i]);
      image_set_free(s);
      return rc;
    }
    if (s->labels[i] >= s->n_classes) s->n_classes = s->labels[i] + 1;
  }
  return 0;
}

int tokens_save(const token_set *s, const char *path) {
  st_writer *w = st_writer_new();
  st_writer_add(w, "tokens", ST_U16, 2, (int64_t[]){s->n, s->t}, s->tokens);
  if (s->labels) st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){s->n}, s->labels);
  int rc = st_writer_save(w, path);
  st_writer_free(w);
  return rc;
}

void token_set_free(token_set *s) {
  free(s->tokens);
  free(s->labels);
  memset(s, 0, sizeof *s);
}

int64_t *label_counts(const int32_t *labels, int64_t n, int n_classes) {
  int64_t *c = xcalloc((size_t)n_classes + 1, sizeof(int64_t));
  for (int64_t i = 0; i < n; i++)
    if (labels[i] >= 0 && labels[i] < n_classes) c[labels[i]]++;
  return c;
}
