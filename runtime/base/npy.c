// npy: NumPy .npy reader and writer. See npy.h. The header is a Python dict literal
// ({'descr': '<f4', 'fortran_order': False, 'shape': (512, 3), }), parsed here by a small
// scanner that accepts exactly that grammar and reports the byte offset of what it rejects.
#include "base/npy.h"
#include "base/util.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const uint8_t MAGIC[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

// The header scanner: text h[0..n), file offset base of h[0], name for messages.
typedef struct { const char *h; size_t n, i, base; const char *name; } scan_t;

static int scan_err(const scan_t *s, const char *what) {
  return igpt_err("%s: offset %zu: npy header: %s", s->name, s->base + s->i, what);
}
static void skip_ws(scan_t *s) {
  while (s->i < s->n && (s->h[s->i] == ' ' || s->h[s->i] == '\t' || s->h[s->i] == '\n' ||
                         s->h[s->i] == '\r'))
    s->i++;
}
static int expect_ch(scan_t *s, char c) {
  skip_ws(s);
  if (s->i >= s->n || s->h[s->i] != c) {
    char msg[64];
    snprintf(msg, sizeof msg, "expected '%c'", c);
    return scan_err(s, msg);
  }
  s->i++;
  return 0;
}
static int peek(scan_t *s) {
  skip_ws(s);
  return s->i < s->n ? (unsigned char)s->h[s->i] : -1;
}
// A quoted string (single or double quotes, no escapes: numpy writes none) into out.
static int scan_string(scan_t *s, char *out, size_t cap) {
  skip_ws(s);
  if (s->i >= s->n || (s->h[s->i] != '\'' && s->h[s->i] != '"')) return scan_err(s, "expected a string");
  char q = s->h[s->i++];
  size_t start = s->i;
  while (s->i < s->n && s->h[s->i] != q) {
    if (s->h[s->i] == '\\') return scan_err(s, "escapes in strings are not supported");
    s->i++;
  }
  if (s->i >= s->n) { s->i = start - 1; return scan_err(s, "unterminated string"); }
  size_t len = s->i - start;
  if (len >= cap) { s->i = start; return scan_err(s, "string too long"); }
  memcpy(out, s->h + start, len);
  out[len] = 0;
  s->i++;
  return 0;
}
static int scan_word(scan_t *s, const char *w) {
  size_t l = strlen(w);
  if (s->i + l <= s->n && memcmp(s->h + s->i, w, l) == 0) { s->i += l; return 1; }
  return 0;
}

// descr ('<f4', '|u1', ...) to a dtype and byte order.
static int parse_descr(scan_t *s, size_t at, const char *d, npy_array *a) {
  s->i = at;
  char bo = d[0];
  if (bo != '<' && bo != '>' && bo != '|' && bo != '=') bo = 0;
  const char *t = bo ? d + 1 : d;
  if (strchr(t, 'O') || !strcmp(t, "O8") || !strcmp(t, "O4"))
    return igpt_err("%s: offset %zu: npy dtype '%s' is an object array (Python pickles), which is "
                    "never loaded: save the data with a numeric dtype", s->name, s->base + at, d);
  static const struct { const char *code; st_dtype dt; } codes[] = {
      {"u1", ST_U8},  {"i1", ST_I8},  {"b1", ST_BOOL}, {"u2", ST_U16}, {"i2", ST_I16},
      {"u4", ST_U32}, {"i4", ST_I32}, {"u8", ST_U64},  {"i8", ST_I64}, {"f4", ST_F32},
      {"f8", ST_F64}};
  for (size_t k = 0; k < sizeof codes / sizeof codes[0]; k++)
    if (!strcmp(t, codes[k].code)) {
      a->dtype = codes[k].dt;
      a->big_endian = (bo == '>' && st_dtype_size(codes[k].dt) > 1);
      if (bo == '|' && st_dtype_size(codes[k].dt) > 1)
        return igpt_err("%s: offset %zu: npy dtype '%s': '|' (no byte order) on a multi-byte type",
                        s->name, s->base + at, d);
      return 0;
    }
  return igpt_err("%s: offset %zu: npy dtype '%s' is not supported (expected one of u1 i1 b1 u2 i2 "
                  "u4 i4 u8 i8 f4 f8 with a byte order < > | =)", s->name, s->base + at, d);
}

static int parse_shape(scan_t *s, npy_array *a) {
  if (expect_ch(s, '(') != 0) return scan_err(s, "shape: expected a tuple");
  a->ndim = 0;
  for (;;) {
    int c = peek(s);
    if (c == ')') { s->i++; return 0; }
    if (c < '0' || c > '9') return scan_err(s, "shape: expected a non-negative integer or ')'");
    if (a->ndim == NPY_MAX_DIMS) return scan_err(s, "shape: more than 8 dimensions");
    int64_t v = 0;
    while (s->i < s->n && s->h[s->i] >= '0' && s->h[s->i] <= '9') {
      if (v > (INT64_MAX - 9) / 10) return scan_err(s, "shape: dimension too large");
      v = v * 10 + (s->h[s->i++] - '0');
    }
    if (s->i < s->n && s->h[s->i] == 'L') s->i++;  // Python 2 longs
    a->shape[a->ndim++] = v;
    c = peek(s);
    if (c == ',') { s->i++; continue; }
    if (c == ')') { s->i++; if (a->ndim == 1) return scan_err(s, "shape: a 1-tuple needs a comma"); return 0; }
    return scan_err(s, "shape: expected ',' or ')'");
  }
}

static int parse_header(scan_t *s, npy_array *a) {
  int have_descr = 0, have_fortran = 0, have_shape = 0;
  if (expect_ch(s, '{') != 0) return -1;
  for (;;) {
    int c = peek(s);
    if (c == '}') { s->i++; break; }
    size_t key_at = s->i;
    char key[32];
    if (scan_string(s, key, sizeof key) != 0) return -1;
    if (expect_ch(s, ':') != 0) return -1;
    skip_ws(s);
    size_t val_at = s->i;
    if (!strcmp(key, "descr")) {
      if (have_descr++) { s->i = key_at; return scan_err(s, "'descr' given twice"); }
      if (peek(s) == '[')
        return scan_err(s, "descr is a list: structured (record) dtypes are not supported");
      char d[32];
      if (scan_string(s, d, sizeof d) != 0) return -1;
      size_t end = s->i;
      if (parse_descr(s, val_at, d, a) != 0) return -1;
      s->i = end;
    } else if (!strcmp(key, "fortran_order")) {
      if (have_fortran++) { s->i = key_at; return scan_err(s, "'fortran_order' given twice"); }
      if (scan_word(s, "False")) {
      } else if (scan_word(s, "True")) {
        s->i = val_at;
        return scan_err(s, "fortran_order is True: only C-order arrays are read "
                           "(re-save with numpy.ascontiguousarray)");
      } else return scan_err(s, "fortran_order: expected True or False");
    } else if (!strcmp(key, "shape")) {
      if (have_shape++) { s->i = key_at; return scan_err(s, "'shape' given twice"); }
      if (parse_shape(s, a) != 0) return -1;
    } else {
      s->i = key_at;
      char msg[96];
      snprintf(msg, sizeof msg, "unexpected key '%s' (expected descr, fortran_order, shape)", key);
      return scan_err(s, msg);
    }
    c = peek(s);
    if (c == ',') { s->i++; continue; }
    if (c == '}') { s->i++; break; }
    return scan_err(s, "expected ',' or '}'");
  }
  skip_ws(s);
  if (s->i != s->n) return scan_err(s, "unexpected text after the header dict");
  if (!have_descr || !have_fortran || !have_shape)
    return scan_err(s, !have_descr ? "missing 'descr'" : !have_fortran ? "missing 'fortran_order'"
                                                                      : "missing 'shape'");
  return 0;
}

// Fills a from buf; a->path and a->map are already set (everything else zero).
static int parse_into(npy_array *a, const void *buf, size_t len, const char *name) {
  const uint8_t *b = buf;
  if (len < 10 || memcmp(b, MAGIC, 6) != 0)
    return igpt_err("%s: offset 0: not an npy file (no \\x93NUMPY magic%s)", name,
                    len < 10 ? ", file shorter than 10 bytes" : "");
  a->major = b[6];
  a->minor = b[7];
  if (a->major < 1 || a->major > 3 || a->minor != 0)
    return igpt_err("%s: offset 6: npy format version %d.%d is not supported (1.0, 2.0, 3.0 are)",
                    name, a->major, a->minor);
  size_t hl, hstart;
  if (a->major == 1) {
    hl = (size_t)b[8] | (size_t)b[9] << 8;
    hstart = 10;
  } else {
    if (len < 12) return igpt_err("%s: offset 8: truncated npy header length", name);
    hl = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    hstart = 12;
  }
  if (hl > NPY_MAX_HEADER)
    return igpt_err("%s: offset 8: npy header length %zu exceeds the %u-byte limit", name, hl,
                    NPY_MAX_HEADER);
  if (hstart + hl > len)
    return igpt_err("%s: offset %zu: npy header of %zu bytes runs past the end of the file "
                    "(%zu bytes): truncated file", name, hstart, hl, len);
  const char *h = (const char *)b + hstart;
  // Versions 1 and 2 hold latin-1, 3 utf-8; a plain header is ASCII either way.
  for (size_t i = 0; i < hl; i++)
    if ((unsigned char)h[i] >= 0x80 || h[i] == 0)
      return igpt_err("%s: offset %zu: npy header holds a non-ASCII or NUL byte", name, hstart + i);
  scan_t s = {h, hl, 0, hstart, name};
  if (parse_header(&s, a) != 0) return -1;
  size_t esz = st_dtype_size(a->dtype);
  size_t numel = 1;
  for (int d = 0; d < a->ndim; d++) {
    if (a->shape[d] != 0 && numel > SIZE_MAX / esz / (size_t)a->shape[d])
      return igpt_err("%s: offset %zu: npy shape overflows the address space", name, hstart);
    numel *= (size_t)a->shape[d];
  }
  a->numel = numel;
  a->data_offset = hstart + hl;
  size_t have = len - a->data_offset, want = numel * esz;
  if (have != want) {
    char shp[160];
    int o = snprintf(shp, sizeof shp, "(");
    for (int d = 0; d < a->ndim && o < (int)sizeof shp - 24; d++)
      o += snprintf(shp + o, sizeof shp - o, "%s%lld", d ? ", " : "", (long long)a->shape[d]);
    snprintf(shp + o, sizeof shp - o, ")");
    return igpt_err("%s: offset %zu: npy shape %s of %s needs %zu data bytes but the file has %zu "
                    "(%s)", name, a->data_offset, shp, st_dtype_name(a->dtype), want, have,
                    have < want ? "truncated file" : "trailing bytes");
  }
  a->data = b + a->data_offset;
  return 0;
}

int npy_open(npy_array *a, const char *path) {
  memset(a, 0, sizeof *a);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return igpt_err("%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return igpt_err("%s: cannot stat: %s", path, strerror(errno));
  }
  a->map_len = (size_t)st.st_size;
  if (a->map_len > 0) {
    a->map = mmap(NULL, a->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (a->map == MAP_FAILED) {
      close(fd);
      a->map = NULL;
      return igpt_err("%s: cannot map: %s", path, strerror(errno));
    }
  }
  close(fd);
  a->path = xstrdup(path);
  if (parse_into(a, a->map ? a->map : (const void *)"", a->map_len, path) != 0) {
    npy_close(a);
    return -1;
  }
  return 0;
}

int npy_parse(npy_array *a, const void *buf, size_t len, const char *name) {
  memset(a, 0, sizeof *a);
  a->path = xstrdup(name);
  if (parse_into(a, buf, len, name) == 0) return 0;
  npy_close(a);
  return -1;
}

void npy_close(npy_array *a) {
  if (a->map) munmap(a->map, a->map_len);
  free(a->path);
  memset(a, 0, sizeof *a);
}

// One element in a neutral form: kind 0 signed, 1 unsigned, 2 floating.
typedef struct { int kind; int64_t i; uint64_t u; double f; } elem_t;

static uint64_t load_bits(const uint8_t *p, size_t sz, int big) {
  uint64_t v = 0;
  if (big)
    for (size_t k = 0; k < sz; k++) v = v << 8 | p[k];
  else
    for (size_t k = sz; k-- > 0;) v = v << 8 | p[k];
  return v;
}

static elem_t load_elem(const npy_array *a, size_t idx) {
  size_t sz = st_dtype_size(a->dtype);
  uint64_t v = load_bits(a->data + idx * sz, sz, a->big_endian);
  elem_t e = {0};
  switch (a->dtype) {
    case ST_BOOL: case ST_U8: case ST_U16: case ST_U32: case ST_U64: e.kind = 1; e.u = v; break;
    case ST_I8: e.i = (int8_t)v; break;
    case ST_I16: e.i = (int16_t)v; break;
    case ST_I32: e.i = (int32_t)v; break;
    case ST_I64: e.i = (int64_t)v; break;
    case ST_F32: { uint32_t w = (uint32_t)v; float f; memcpy(&f, &w, 4); e.kind = 2; e.f = f; break; }
    case ST_F64: { double f; memcpy(&f, &v, 8); e.kind = 2; e.f = f; break; }
    default: break;
  }
  return e;
}

static int range_of(st_dtype to, int64_t *lo, uint64_t *hi) {
  switch (to) {
    case ST_BOOL: *lo = 0; *hi = 1; return 0;
    case ST_U8: *lo = 0; *hi = UINT8_MAX; return 0;
    case ST_I8: *lo = INT8_MIN; *hi = INT8_MAX; return 0;
    case ST_U16: *lo = 0; *hi = UINT16_MAX; return 0;
    case ST_I16: *lo = INT16_MIN; *hi = INT16_MAX; return 0;
    case ST_U32: *lo = 0; *hi = UINT32_MAX; return 0;
    case ST_I32: *lo = INT32_MIN; *hi = INT32_MAX; return 0;
    case ST_U64: *lo = 0; *hi = UINT64_MAX; return 0;
    case ST_I64: *lo = INT64_MIN; *hi = INT64_MAX; return 0;
    default: return -1;
  }
}

int npy_convert(const npy_array *a, st_dtype to, void *out) {
  size_t osz = st_dtype_size(to);
  int64_t lo = 0;
  uint64_t hi = 0;
  int to_float = (to == ST_F32 || to == ST_F64);
  if (!to_float && range_of(to, &lo, &hi) != 0)
    return igpt_err("%s: cannot convert npy elements to %s", a->path, st_dtype_name(to));
  if (to == a->dtype && !a->big_endian) {  // the common case: a copy
    memcpy(out, a->data, a->numel * osz);
    return 0;
  }
  uint8_t *o = out;
  for (size_t idx = 0; idx < a->numel; idx++) {
    elem_t e = load_elem(a, idx);
    uint8_t *p = o + idx * osz;
    if (to_float) {
      double f = e.kind == 0 ? (double)e.i : e.kind == 1 ? (double)e.u : e.f;
      if (to == ST_F32) { float g = (float)f; memcpy(p, &g, 4); }
      else memcpy(p, &f, 8);
      continue;
    }
    // integer target: range-checked, floats must hold integers exactly
    int ok = 1;
    if (e.kind == 2) {
      ok = isfinite(e.f) && e.f == floor(e.f) && e.f >= (double)lo && e.f < 18446744073709551616.0;
      if (ok && e.f < 0) { e.i = (int64_t)e.f; e.kind = 0; }
      else if (ok) { e.u = (uint64_t)e.f; e.kind = 1; }
    }
    if (ok && e.kind == 0) ok = e.i >= lo && (e.i < 0 || (uint64_t)e.i <= hi);
    else if (ok) ok = e.u <= hi;
    if (!ok) {
      elem_t r = load_elem(a, idx);
      char val[48];
      if (r.kind == 0) snprintf(val, sizeof val, "%lld", (long long)r.i);
      else if (r.kind == 1) snprintf(val, sizeof val, "%llu", (unsigned long long)r.u);
      else snprintf(val, sizeof val, "%.17g", r.f);
      return igpt_err("%s: offset %zu: element %zu is %s, which %s cannot hold", a->path,
                      a->data_offset + idx * st_dtype_size(a->dtype), idx, val, st_dtype_name(to));
    }
    uint64_t bits = e.kind == 0 ? (uint64_t)e.i : e.u;
    switch (osz) {  // little-endian host: the low bytes
      case 1: { uint8_t w = (uint8_t)bits; memcpy(p, &w, 1); break; }
      case 2: { uint16_t w = (uint16_t)bits; memcpy(p, &w, 2); break; }
      case 4: { uint32_t w = (uint32_t)bits; memcpy(p, &w, 4); break; }
      default: memcpy(p, &bits, 8); break;
    }
  }
  return 0;
}

void *npy_load(const char *path, st_dtype to, int ndim, int64_t *shape, int *ndim_out) {
  npy_array a;
  if (npy_open(&a, path) != 0) return NULL;
  if (ndim >= 0 && a.ndim != ndim) {
    igpt_err("%s: npy array has %d dimensions, expected %d", path, a.ndim, ndim);
    npy_close(&a);
    return NULL;
  }
  void *out = xmalloc(a.numel * st_dtype_size(to) + 1);
  if (npy_convert(&a, to, out) != 0) {
    free(out);
    npy_close(&a);
    return NULL;
  }
  if (shape) memcpy(shape, a.shape, sizeof(int64_t) * (size_t)a.ndim);
  if (ndim_out) *ndim_out = a.ndim;
  npy_close(&a);
  return out;
}

int npy_encode(st_dtype dt, int ndim, const int64_t *shape, const void *data, uint8_t **buf,
               size_t *len) {
  static const char *codes[ST_NDTYPES] = {
      [ST_BOOL] = "|b1", [ST_U8] = "|u1", [ST_I8] = "|i1", [ST_U16] = "<u2", [ST_I16] = "<i2",
      [ST_U32] = "<u4", [ST_I32] = "<i4", [ST_U64] = "<u8", [ST_I64] = "<i8", [ST_F32] = "<f4",
      [ST_F64] = "<f8"};
  if (dt >= ST_NDTYPES || !codes[dt]) return igpt_err("npy: cannot write dtype %s", st_dtype_name(dt));
  if (ndim < 0 || ndim > NPY_MAX_DIMS) return igpt_err("npy: cannot write %d dimensions", ndim);
  char h[512];
  int o = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (", codes[dt]);
  size_t numel = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0) return igpt_err("npy: negative dimension %lld", (long long)shape[d]);
    o += snprintf(h + o, sizeof h - o, "%lld,%s", (long long)shape[d], d + 1 < ndim ? " " : "");
    numel *= (size_t)shape[d];
  }
  if (ndim > 1) o--;  // numpy writes (2, 3) but (5,)
  o += snprintf(h + o, sizeof h - o, "), }");
  size_t total = 10 + (size_t)o + 1;
  size_t pad = (64 - total % 64) % 64;
  size_t hl = (size_t)o + pad + 1;
  size_t nbytes = numel * st_dtype_size(dt);
  uint8_t *b = xmalloc(10 + hl + nbytes + 1);
  memcpy(b, MAGIC, 6);
  b[6] = 1;
  b[7] = 0;
  b[8] = (uint8_t)(hl & 0xff);
  b[9] = (uint8_t)(hl >> 8);
  memcpy(b + 10, h, (size_t)o);
  memset(b + 10 + o, ' ', pad);
  b[10 + hl - 1] = '\n';
  if (nbytes) memcpy(b + 10 + hl, data, nbytes);
  *buf = b;
  *len = 10 + hl + nbytes;
  return 0;
}

int npy_write(const char *path, st_dtype dt, int ndim, const int64_t *shape, const void *data) {
  uint8_t *b;
  size_t n;
  if (npy_encode(dt, ndim, shape, data, &b, &n) != 0) return igpt_err_prefix("%s", path);
  int rc = file_write_atomic(path, b, n);
  free(b);
  return rc;
}
