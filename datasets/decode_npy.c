// decode_npy: the official iGPT arrays (openai/image-gpt download.py: {cifar10,imagenet}_
// {trX,trY,vaX,vaY,teX,teY}.npy): X holds palette indices [N, 1024] (already quantised 32x32
// centre crops), Y the classes, one-hot [N, C] as the official run.py feeds them, or indices [N].
// The .npy header (magic, version, a Python dict literal with descr, fortran_order and shape) is
// parsed strictly: only little-endian or byte-sized integer and float dtypes, C order.
#include "decode.h"
#include "util.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char kind;          // 'i', 'u', 'f'
  int size;           // bytes per element
  int ndim;
  int64_t shape[4];
  size_t data_off;
} npy_info;

// Finds 'key': in the header dict and returns a pointer just after the colon and spaces.
static const char *dict_value(const char *h, const char *key) {
  char pat[32];
  snprintf(pat, sizeof pat, "'%s'", key);
  const char *p = strstr(h, pat);
  if (!p) return NULL;
  p += strlen(pat);
  while (*p == ' ') p++;
  if (*p != ':') return NULL;
  p++;
  while (*p == ' ') p++;
  return p;
}

static int npy_parse_header(const uint8_t *buf, size_t len, const char *name, npy_info *info) {
  static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (len < 10) return igpt_err("%s: %zu bytes, truncated .npy header at byte offset %zu", name, len, len);
  if (memcmp(buf, magic, 6) != 0) return igpt_err("%s: byte offset 0: not a .npy file (bad magic)", name);
  int major = buf[6];
  size_t hlen, start;
  if (major == 1) { hlen = buf[8] | (size_t)buf[9] << 8; start = 10; }
  else if (major == 2 || major == 3) {
    if (len < 12) return igpt_err("%s: truncated .npy header at byte offset %zu", name, len);
    hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    start = 12;
  } else return igpt_err("%s: byte offset 6: .npy format version %d.%d not supported (1, 2 or 3)", name, major, buf[7]);
  if (hlen > 65536 || start + hlen > len)
    return igpt_err("%s: byte offset 8: header length %zu runs past the end of the file (%zu bytes)", name, hlen, len);
  char *h = xmalloc(hlen + 1);
  memcpy(h, buf + start, hlen);
  h[hlen] = 0;
  if (strlen(h) != hlen) { free(h); return igpt_err("%s: byte offset %zu: NUL inside the .npy header", name, start); }
  int rc = -1;
  const char *d = dict_value(h, "descr"), *fo = dict_value(h, "fortran_order"), *sh = dict_value(h, "shape");
  if (!d || !fo || !sh) { igpt_err("%s: byte offset %zu: .npy header lacks descr, fortran_order or shape", name, start); goto out; }
  if (d[0] != '\'' || !d[1] || !d[2] || !isdigit((unsigned char)d[3]) || !(d[4] == '\'' || (isdigit((unsigned char)d[4]) && d[5] == '\''))) {
    igpt_err("%s: byte offset %zu: unreadable descr in .npy header", name, start); goto out;
  }
  char order = d[1];
  info->kind = d[2];
  info->size = atoi(d + 3);
  if (!strchr("iuf", info->kind) || !(info->size == 1 || info->size == 2 || info->size == 4 || info->size == 8) ||
      (info->kind == 'f' && info->size < 4) || !(order == '<' || order == '|' || (order == '=' && info->size == 1))) {
    igpt_err("%s: byte offset %zu: dtype %.5s not supported (little-endian integers or float32/64)", name, start, d + 1);
    goto out;
  }
  int fortran = !strncmp(fo, "True", 4);
  if (!fortran && strncmp(fo, "False", 5)) { igpt_err("%s: byte offset %zu: bad fortran_order", name, start); goto out; }
  if (*sh != '(') { igpt_err("%s: byte offset %zu: bad shape in .npy header", name, start); goto out; }
  info->ndim = 0;
  const char *p = sh + 1;
  for (;;) {
    while (*p == ' ' || *p == ',') p++;
    if (*p == ')') break;
    if (!isdigit((unsigned char)*p) || info->ndim == 4) {
      igpt_err("%s: byte offset %zu: bad shape in .npy header (at most 4 non-negative dims)", name, start); goto out;
    }
    char *end;
    long long v = strtoll(p, &end, 10);
    if (v < 0 || v > (1ll << 40)) { igpt_err("%s: byte offset %zu: shape entry %lld out of range", name, start, v); goto out; }
    info->shape[info->ndim++] = v;
    p = end;
  }
  if (fortran && info->ndim > 1) { igpt_err("%s: Fortran-order arrays not supported; save with C order", name); goto out; }
  info->data_off = start + hlen;
  uint64_t numel = 1;
  for (int i = 0; i < info->ndim; i++) {
    numel *= (uint64_t)info->shape[i];
    if (numel > (1ull << 40)) { igpt_err("%s: byte offset %zu: shape too large", name, start); goto out; }
  }
  uint64_t want = numel * (uint64_t)info->size;
  if (len - info->data_off != want) {
    igpt_err("%s: %s at byte offset %zu: the header says %llu elements of %d bytes (%llu data bytes), the file "
             "holds %zu", name, len - info->data_off < want ? "truncated" : "trailing bytes",
             len - info->data_off < want ? len : info->data_off + (size_t)want, (unsigned long long)numel,
             info->size, (unsigned long long)want, len - info->data_off);
    goto out;
  }
  rc = 0;
out:
  free(h);
  return rc;
}

// Element i as a double (integers up to 2^53 exactly), little-endian.
static double npy_get(const npy_info *in, const uint8_t *data, size_t i) {
  const uint8_t *p = data + i * (size_t)in->size;
  uint64_t u = 0;
  for (int b = 0; b < in->size; b++) u |= (uint64_t)p[b] << (8 * b);
  if (in->kind == 'u') return (double)u;
  if (in->kind == 'i') {
    if (in->size < 8 && (u >> (8 * in->size - 1)) & 1) u |= ~0ull << (8 * in->size);  // sign-extend
    return (double)(int64_t)u;
  }
  if (in->size == 4) { uint32_t w = (uint32_t)u; float f; memcpy(&f, &w, 4); return f; }
  double f;
  memcpy(&f, &u, 8);
  return f;
}

int decode_igpt_tokens(const uint8_t *buf, size_t len, const char *name, int vocab, token_set *out) {
  npy_info in;
  if (npy_parse_header(buf, len, name, &in) != 0) return -1;
  if (in.kind == 'f') return igpt_err("%s: tokens must be integers, found float%d", name, 8 * in.size);
  if (in.ndim != 2 && in.ndim != 3)
    return igpt_err("%s: tokens shape has %d dims, expected [N, T] or [N, n_px, n_px]", name, in.ndim);
  int64_t n = in.shape[0], t = in.shape[1] * (in.ndim == 3 ? in.shape[2] : 1);
  if (t == 0 || t > (1 << 20)) return igpt_err("%s: sequence length %lld outside 1..%d", name, (long long)t, 1 << 20);
  const uint8_t *data = buf + in.data_off;
  size_t total = (size_t)n * (size_t)t;
  for (size_t i = 0; i < total; i++) {
    double v = npy_get(&in, data, i);
    if (v < 0 || v >= vocab)
      return igpt_err("%s: byte offset %zu (token %zu of image %zu): value %.0f outside the palette 0..%d",
                      name, in.data_off + i * (size_t)in.size, i % (size_t)t, i / (size_t)t, v, vocab - 1);
  }
  memset(out, 0, sizeof *out);
  out->n = n;
  out->t = t;
  out->tokens = xmalloc(total * sizeof(uint16_t) + 1);
  for (size_t i = 0; i < total; i++) out->tokens[i] = (uint16_t)npy_get(&in, data, i);
  return 0;
}

int decode_igpt_labels(const uint8_t *buf, size_t len, const char *name, token_set *s) {
  npy_info in;
  if (npy_parse_header(buf, len, name, &in) != 0) return -1;
  if ((in.ndim != 1 && in.ndim != 2) || in.shape[0] != s->n)
    return igpt_err("%s: labels shape [%lld%s] does not match %lld token rows: expected [N] or one-hot [N, C]",
                    name, in.ndim ? (long long)in.shape[0] : 0ll, in.ndim == 2 ? ", C" : "", (long long)s->n);
  const uint8_t *data = buf + in.data_off;
  int32_t *lab = xmalloc((size_t)s->n * sizeof(int32_t) + 1);
  int C = 0;
  if (in.ndim == 1) {
    for (int64_t i = 0; i < s->n; i++) {
      double v = npy_get(&in, data, (size_t)i);
      if (!(v >= 0 && v < 100000) || v != (int64_t)v) {
        free(lab);
        return igpt_err("%s: byte offset %zu: label %g is not a class index", name, in.data_off + (size_t)i * in.size, v);
      }
      lab[i] = (int32_t)v;
      if (lab[i] + 1 > C) C = lab[i] + 1;
    }
  } else {
    C = (int)in.shape[1];
    if (C < 1 || C > 100000) { free(lab); return igpt_err("%s: %d classes in the one-hot labels", name, C); }
    for (int64_t i = 0; i < s->n; i++) {
      int hot = -1;
      for (int c = 0; c < C; c++) {
        size_t e = (size_t)i * C + c;
        double v = npy_get(&in, data, e);
        if (v == 0) continue;
        if (v == 1 && hot < 0) { hot = c; continue; }
        free(lab);
        return igpt_err("%s: byte offset %zu: row %lld is not one-hot (value %g at class %d)", name,
                        in.data_off + e * (size_t)in.size, (long long)i, v, c);
      }
      if (hot < 0) {
        free(lab);
        return igpt_err("%s: byte offset %zu: row %lld has no class set", name,
                        in.data_off + (size_t)i * C * (size_t)in.size, (long long)i);
      }
      lab[i] = hot;
    }
  }
  free(s->labels);
  s->labels = lab;
  s->n_classes = C;
  return 0;
}
