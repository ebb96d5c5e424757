// decode_npy: the official iGPT arrays (openai/image-gpt download.py: {cifar10,imagenet}_
// {trX,trY,vaX,vaY,teX,teY}.npy): X holds palette indices [N, 1024] (already quantised 32x32
// centre crops), Y the classes, one-hot [N, C] as the official run.py feeds them, or indices [N].
// The .npy container is runtime/base/npy.h's; this file checks what the arrays must hold.
#include "datasets/decode.h"
#include "base/npy.h"
#include "base/util.h"
#include <stdlib.h>
#include <string.h>

int decode_igpt_tokens(const uint8_t *buf, size_t len, const char *name, int vocab, token_set *out) {
  npy_array a;
  if (npy_parse(&a, buf, len, name) != 0) return -1;
  int rc = -1;
  if (a.dtype == ST_F32 || a.dtype == ST_F64 || a.dtype == ST_F16 || a.dtype == ST_BF16 || a.dtype == ST_BOOL) {
    igpt_err("%s: tokens must be integers, found %s", name, st_dtype_name(a.dtype));
    goto out;
  }
  if (a.ndim != 2 && a.ndim != 3) {
    igpt_err("%s: tokens have %d dims, expected [N, T] or [N, n_px, n_px]", name, a.ndim);
    goto out;
  }
  int64_t n = a.shape[0], t = a.shape[1] * (a.ndim == 3 ? a.shape[2] : 1);
  if (t < 1 || t > (1 << 20)) {
    igpt_err("%s: sequence length %lld outside 1..%d", name, (long long)t, 1 << 20);
    goto out;
  }
  size_t total = (size_t)n * (size_t)t, esz = st_dtype_size(a.dtype);
  int64_t *v = xmalloc(total * sizeof(int64_t) + 1);
  if (npy_convert(&a, ST_I64, v) != 0) { free(v); goto out; }
  for (size_t i = 0; i < total; i++)
    if (v[i] < 0 || v[i] >= vocab) {
      igpt_err("%s: byte offset %zu (image %zu, token %zu): value %lld outside the palette 0..%d", name,
               a.data_offset + i * esz, i / (size_t)t, i % (size_t)t, (long long)v[i], vocab - 1);
      free(v);
      goto out;
    }
  memset(out, 0, sizeof *out);
  out->n = n;
  out->t = t;
  out->tokens = xmalloc(total * sizeof(uint16_t) + 1);
  for (size_t i = 0; i < total; i++) out->tokens[i] = (uint16_t)v[i];
  free(v);
  rc = 0;
out:
  npy_close(&a);
  return rc;
}

int decode_igpt_labels(const uint8_t *buf, size_t len, const char *name, token_set *s) {
  npy_array a;
  if (npy_parse(&a, buf, len, name) != 0) return -1;
  int rc = -1;
  double *v = NULL;
  int32_t *lab = NULL;
  if ((a.ndim != 1 && a.ndim != 2) || a.shape[0] != s->n) {
    igpt_err("%s: labels of shape [%lld%s] for %lld token rows: expected [N] indices or [N, C] one-hot",
             name, a.ndim ? (long long)a.shape[0] : 0ll, a.ndim == 2 ? ", C" : "", (long long)s->n);
    goto out;
  }
  int C = a.ndim == 2 ? (int)(a.shape[1] < 100000 ? a.shape[1] : 100000) : 0;
  if (a.ndim == 2 && (a.shape[1] < 1 || a.shape[1] > 100000)) {
    igpt_err("%s: %lld classes in one-hot labels, expected 1..100000", name, (long long)a.shape[1]);
    goto out;
  }
  size_t esz = st_dtype_size(a.dtype);
  v = xmalloc(a.numel * sizeof(double) + 1);
  if (npy_convert(&a, ST_F64, v) != 0) goto out;
  lab = xmalloc((size_t)s->n * sizeof(int32_t) + 1);
  for (int64_t i = 0; i < s->n; i++) {
    if (a.ndim == 1) {
      if (!(v[i] >= 0 && v[i] < 100000) || v[i] != (double)(int64_t)v[i]) {
        igpt_err("%s: byte offset %zu: label %g is not a class index", name, a.data_offset + (size_t)i * esz, v[i]);
        goto out;
      }
      lab[i] = (int32_t)v[i];
      if (lab[i] + 1 > C) C = lab[i] + 1;
      continue;
    }
    int hot = -1;
    for (int c = 0; c < C; c++) {
      size_t e = (size_t)i * C + c;
      if (v[e] == 0) continue;
      if (v[e] == 1 && hot < 0) { hot = c; continue; }
      igpt_err("%s: byte offset %zu: row %lld is not one-hot (value %g at class %d)", name,
               a.data_offset + e * esz, (long long)i, v[e], c);
      goto out;
    }
    if (hot < 0) {
      igpt_err("%s: byte offset %zu: row %lld has no class set", name, a.data_offset + (size_t)i * C * esz, (long long)i);
      goto out;
    }
    lab[i] = hot;
  }
  free(s->labels);
  s->labels = lab;
  lab = NULL;
  s->n_classes = C;
  s->label_width = a.ndim == 2 ? C : 0;
  rc = 0;
out:
  free(v);
  free(lab);
  npy_close(&a);
  return rc;
}
