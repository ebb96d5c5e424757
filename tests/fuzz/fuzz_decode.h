// fuzz_decode: one entry per data set decoder taking an arbitrary byte string; shared by the
// libFuzzer harnesses (tests/fuzz/fuzz_*.c) and the Criterion replay of the kept inputs
// (tests/test_fuzz_replay.c). Each must decode or fail with a message, never crash or read out
// of bounds; what decodes is touched entirely so ASan sees every byte.
#pragma once
#include "datasets/decode.h"
#include "base/safetensors.h"
#include "base/util.h"
#include <stdlib.h>
#include <string.h>

static void fuzz_touch(const image_set *s) {
  volatile uint32_t sink = 0;
  size_t n = (size_t)s->n * s->h * s->w * 3;
  for (size_t i = 0; i < n; i++) sink += s->pixels[i];
  for (int64_t i = 0; i < s->n; i++) sink += (uint32_t)s->labels[i];
  (void)sink;
}

// The first byte picks CIFAR-10 or CIFAR-100; the rest is the file.
static int fuzz_cifar_one(const uint8_t *d, size_t n) {
  if (n < 1) return 0;
  image_set s;
  int32_t *coarse = NULL;
  int rc = d[0] & 1 ? decode_cifar100(d + 1, n - 1, "fuzz", &s, &coarse) : decode_cifar10(d + 1, n - 1, "fuzz", &s);
  if (rc == 0) {
    fuzz_touch(&s);
    if (s.labels[0] < 0 || s.labels[0] >= s.n_classes) abort();
    image_set_free(&s);
  } else if (!strstr(igpt_errmsg(), "fuzz")) abort();  // every message names the file
  free(coarse);
  return 0;
}

// d[0] label bytes follow the first byte; the rest is an images file.
static int fuzz_stl10_one(const uint8_t *d, size_t n) {
  if (n < 1 || (size_t)d[0] + 1 > n) return 0;
  size_t nl = d[0];
  image_set s;
  if (decode_stl10_images(d + 1 + nl, n - 1 - nl, "fuzz_X", &s) != 0) return 0;
  if (decode_stl10_labels(d + 1, nl, "fuzz_y", &s) == 0)
    for (int64_t i = 0; i < s.n; i++) if (s.labels[i] < 0 || s.labels[i] > 9) abort();
  fuzz_touch(&s);
  image_set_free(&s);
  return 0;
}

// d[0] bit 0: the rest is gzip (decompressed, at most 4 MiB) or raw; bits 1..: where the image
// file ends and the label file starts (d[1..2], big-endian, within the rest).
static int fuzz_idx_one(const uint8_t *d, size_t n) {
  if (n < 3) return 0;
  const uint8_t *p = d + 3;
  size_t len = n - 3;
  uint8_t *un = NULL;
  if (d[0] & 1) {
    if (gunzip_buf(p, len, "fuzz.gz", 4u << 20, &un, &len) != 0) return 0;
    p = un;
  }
  size_t cut = (size_t)d[1] << 8 | d[2];
  if (cut > len) cut = len;
  image_set s;
  if (decode_idx_images(p, cut, "fuzz-images", &s) == 0) {
    if (decode_idx_labels(p + cut, len - cut, "fuzz-labels", &s, 10) == 0)
      for (int64_t i = 0; i < s.n; i++) if (s.labels[i] < 0 || s.labels[i] > 9) abort();
    fuzz_touch(&s);
    image_set_free(&s);
  }
  free(un);
  return 0;
}

// d[0..1] (big-endian): the length of the tokens .npy; the rest is the labels .npy.
static int fuzz_npy_one(const uint8_t *d, size_t n) {
  if (n < 2) return 0;
  size_t cut = (size_t)d[0] << 8 | d[1];
  if (cut > n - 2) cut = n - 2;
  token_set t;
  if (decode_igpt_tokens(d + 2, cut, "fuzz_X.npy", 512, &t) != 0) return 0;
  for (size_t i = 0; i < (size_t)t.n * t.t; i++) if (t.tokens[i] >= 512) abort();
  if (decode_igpt_labels(d + 2 + cut, n - 2 - cut, "fuzz_Y.npy", &t) == 0)
    for (int64_t i = 0; i < t.n; i++) if (t.labels[i] < 0 || t.labels[i] >= t.n_classes) abort();
  token_set_free(&t);
  return 0;
}

// A safetensors file: parses or fails with a message naming it; accepted tensors lie inside it.
static int fuzz_safetensors_one(const uint8_t *d, size_t n) {
  st_file f;
  if (st_parse(&f, d, n, "fuzz") != 0) {
    if (!strstr(igpt_errmsg(), "fuzz")) abort();
    return 0;
  }
  volatile uint8_t sink = 0;
  for (int i = 0; i < f.n; i++) {
    const st_tensor *t = &f.tensors[i];
    const uint8_t *p = t->data;
    size_t nb = st_numel(t) * st_dtype_size(t->dtype);
    if (p < d || p + nb > d + n) abort();
    for (size_t k = 0; k < nb; k++) sink ^= p[k];  // touch every byte under ASan
  }
  (void)sink;
  st_get(&f, "x");
  st_meta(&f, "config");
  st_close(&f);
  return 0;
}

// d[0] & 3 picks the image size (1, 2, 4 or 32); the rest is a pickled downsampled-ImageNet batch.
static int fuzz_pickle_one(const uint8_t *d, size_t n) {
  if (n < 1) return 0;
  static const int sizes[4] = {1, 2, 4, 32};
  image_set s;
  if (decode_imagenet_batch(d + 1, n - 1, "fuzz.pkl", sizes[d[0] & 3], &s) == 0) {
    fuzz_touch(&s);
    for (int64_t i = 0; i < s.n; i++) if (s.labels[i] < 0 || s.labels[i] > 999) abort();
    image_set_free(&s);
  } else if (!strstr(igpt_errmsg(), "fuzz.pkl: byte offset")) abort();  // file and offset in every message
  return 0;
}
