// safetensors: a validating reader and an atomic writer. See safetensors.h.
#include "base/safetensors.h"
#include "base/util.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct { const char *name; size_t size; } dtypes[ST_NDTYPES] = {
  [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1},   [ST_I8] = {"I8", 1},
  [ST_U16] = {"U16", 2},   [ST_I16] = {"I16", 2}, [ST_F16] = {"F16", 2},
  [ST_BF16] = {"BF16", 2}, [ST_U32] = {"U32", 4}, [ST_I32] = {"I32", 4},
  [ST_F32] = {"F32", 4},   [ST_U64] = {"U64", 8}, [ST_I64] = {"I64", 8},
  [ST_F64] = {"F64", 8},
};

size_t st_dtype_size(st_dtype dt) { return dt < ST_NDTYPES ? dtypes[dt].size : 0; }
const char *st_dtype_name(st_dtype dt) { return dt < ST_NDTYPES ? dtypes[dt].name : "?"; }

size_t st_numel(const st_tensor *t) {
  size_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
  return n;
}

static int dtype_parse(const char *s, st_dtype *dt) {
  for (int i = 0; i < ST_NDTYPES; i++)
    if (strcmp(s, dtypes[i].name) == 0) { *dt = (st_dtype)i; return 0; }
  return -1;
}

static int cmp_begin(const void *a, const void *b) {
  const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
  return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static void free_tensors(st_file *f) {
  for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
  free(f->tensors);
  f->tensors = NULL;
  f->n = 0;
}

static int parse(st_file *f, const void *buf, size_t len, const char *name) {
  const char *who = name ? name : "(buffer)";
  const uint8_t *b = buf;
  if (len < 8) return igpt_err("%s: not a safetensors file: %zu bytes, shorter than the 8-byte header length", who, len);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | b[i];
  if (hlen > ST_MAX_HEADER)
    return igpt_err("%s: header length %llu exceeds the %u-byte limit (corrupt or not safetensors)", who,
                    (unsigned long long)hlen, ST_MAX_HEADER);
  if (hlen > len - 8)
    return igpt_err("%s: header length %llu runs past the end of the file (%zu bytes): truncated?", who,
                    (unsigned long long)hlen, len);
  json_error_t jerr;
  json_t *root = json_loadb((const char *)b + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) return igpt_err("%s: header is not valid JSON at byte %d: %s", who, jerr.position + 8, jerr.text);
  if (!json_is_object(root)) { json_decref(root); return igpt_err("%s: header is not a JSON object", who); }

  const uint8_t *data = b + 8 + hlen;
  uint64_t data_len = len - 8 - hlen;
  size_t cap = json_object_size(root);
  f->tensors = xcalloc(cap ? cap : 1, sizeof(st_tensor));
  f->n = 0;
  f->metadata = NULL;
  const char *key;
  json_t *val;
  int rc = 0;
  json_object_foreach(root, key, val) {
    if (strcmp(key, "__metadata__") == 0) {
      const char *mk; json_t *mv;
      if (!json_is_object(val)) { rc = igpt_err("%s: __metadata__ is not an object", who); break; }
      json_object_foreach(val, mk, mv) if (!json_is_string(mv)) {
        rc = igpt_err("%s: __metadata__.%s is not a string", who, mk); break;
      }
      if (rc) break;
      f->metadata = json_incref(val);
      continue;
    }
    st_tensor *t = &f->tensors[f->n];
    const char *dts = NULL;
    json_t *shape = NULL, *offs = NULL;
    if (!json_is_object(val) || json_unpack(val, "{s:s, s:o, s:o}", "dtype", &dts, "shape", &shape,
                                            "data_offsets", &offs) != 0) {
      rc = igpt_err("%s: tensor '%s': entry needs dtype, shape and data_offsets", who, key); break;
    }
    if (dtype_parse(dts, &t->dtype) != 0) { rc = igpt_err("%s: tensor '%s': unknown dtype '%s'", who, key, dts); break; }
    if (!json_is_array(shape) || json_array_size(shape) > ST_MAX_DIMS) {
      rc = igpt_err("%s: tensor '%s': shape must be an array of at most %d dims", who, key, ST_MAX_DIMS); break;
    }
    t->ndim = (int)json_array_size(shape);
    uint64_t numel = 1;
    for (int i = 0; i < t->ndim && !rc; i++) {
      json_t *d = json_array_get(shape, (size_t)i);
      if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > (1LL << 40)) {
        rc = igpt_err("%s: tensor '%s': shape[%d] is not a sane non-negative integer", who, key, i); break;
      }
      t->shape[i] = json_integer_value(d);
      if (t->shape[i] && numel > (UINT64_MAX >> 4) / (uint64_t)t->shape[i]) {
        rc = igpt_err("%s: tensor '%s': shape overflows", who, key); break;
      }
      numel *= (uint64_t)t->shape[i];
    }
    if (rc) break;
    json_t *o0 = json_array_get(offs, 0), *o1 = json_array_get(offs, 1);
    if (!json_is_array(offs) || json_array_size(offs) != 2 || !json_is_integer(o0) || !json_is_integer(o1) ||
        json_integer_value(o0) < 0 || json_integer_value(o1) < json_integer_value(o0)) {
      rc = igpt_err("%s: tensor '%s': data_offsets must be [begin, end] with 0 <= begin <= end", who, key); break;
    }
    t->begin = (uint64_t)json_integer_value(o0);
    t->end = (uint64_t)json_integer_value(o1);
    if (t->end > data_len) {
      rc = igpt_err("%s: tensor '%s': data_offsets [%llu, %llu] run past the data section (%llu bytes): truncated file?",
                    who, key, (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)data_len);
      break;
    }
    if (t->end - t->begin != numel * dtypes[t->dtype].size) {
      rc = igpt_err("%s: tensor '%s': %llu bytes for shape of %llu %s elements (needs %llu)", who, key,
                    (unsigned long long)(t->end - t->begin), (unsigned long long)numel, dts,
                    (unsigned long long)(numel * dtypes[t->dtype].size));
      break;
    }
    t->name = xstrdup(key);
    t->data = data + t->begin;
    f->n++;
  }
  json_decref(root);
  if (rc == 0 && f->n > 1) {  // no two tensors may share bytes
    const st_tensor **order = xmalloc(sizeof(*order) * (size_t)f->n);
    for (int i = 0; i < f->n; i++) order[i] = &f->tensors[i];
    qsort(order, (size_t)f->n, sizeof(*order), cmp_begin);
    const st_tensor *widest = order[0];  // the tensor reaching furthest so far
    for (int i = 1; i < f->n && !rc; i++) {
      if (order[i]->begin < widest->end && order[i]->end > order[i]->begin)
        rc = igpt_err("%s: tensors '%s' and '%s' overlap in the data section", who, widest->name, order[i]->name);
      if (order[i]->end > widest->end) widest = order[i];
    }
    free(order);
  }
  if (rc) {
    free_tensors(f);
    json_decref(f->metadata);
    f->metadata = NULL;
  }
  return rc;
}

int st_parse(st_file *f, const void *buf, size_t len, const char *name) {
  memset(f, 0, sizeof *f);
  return parse(f, buf, len, name);
}

int st_open(st_file *f, const char *path) {
  memset(f, 0, sizeof *f);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return igpt_err("%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return igpt_err("%s: %s, expected a safetensors file", path, S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
  }
  f->map_len = (size_t)st.st_size;
  if (f->map_len > 0) {
    f->map = mmap(NULL, f->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f->map == MAP_FAILED) { close(fd); f->map = NULL; return igpt_err("%s: cannot map: %s", path, strerror(errno)); }
    f->mapped = 1;
  }
  close(fd);
  f->path = xstrdup(path);
  if (parse(f, f->map, f->map_len, path) != 0) {
    st_close(f);
    return -1;
  }
  return 0;
}

void st_close(st_file *f) {
  free_tensors(f);
  json_decref(f->metadata);
  if (f->mapped && f->map) munmap(f->map, f->map_len);
  free(f->path);
  memset(f, 0, sizeof *f);
}

const st_tensor *st_get(const st_file *f, const char *name) {
  for (int i = 0; i < f->n; i++)
    if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
  return NULL;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
}

const st_tensor *st_expect(const st_file *f, const char *name, st_dtype dt, int ndim, const int64_t *shape) {
  const char *who = f->path ? f->path : "(buffer)";
  const st_tensor *t = st_get(f, name);
  if (!t) { igpt_err("%s: tensor '%s' is missing", who, name); return NULL; }
  if (t->dtype != dt) {
    igpt_err("%s: tensor '%s' has dtype %s, expected %s", who, name, st_dtype_name(t->dtype), st_dtype_name(dt));
    return NULL;
  }
  int ok = t->ndim == ndim;
  for (int i = 0; ok && shape && i < ndim; i++) ok = shape[i] < 0 || shape[i] == t->shape[i];
  if (!ok) {
    char want[256], got[256];
    shape_str(want, sizeof want, ndim, shape ? shape : t->shape);
    shape_str(got, sizeof got, t->ndim, t->shape);
    igpt_err("%s: tensor '%s' has shape %s, expected %s (-1 = any)", who, name, got, want);
    return NULL;
  }
  return t;
}

const char *st_meta(const st_file *f, const char *key) {
  return f->metadata ? json_string_value(json_object_get(f->metadata, key)) : NULL;
}

struct st_writer {
  int n, cap;
  st_tensor *t;
  json_t *meta;
};

st_writer *st_writer_new(void) {
  st_writer *w = xcalloc(1, sizeof *w);
  w->meta = json_object();
  return w;
}

void st_writer_add(st_writer *w, const char *name, st_dtype dt, int ndim, const int64_t *shape, const void *data) {
  if (w->n == w->cap) {
    w->cap = w->cap ? 2 * w->cap : 16;
    w->t = xrealloc(w->t, sizeof(st_tensor) * (size_t)w->cap);
  }
  st_tensor *t = &w->t[w->n++];
  memset(t, 0, sizeof *t);
  t->name = xstrdup(name);
  t->dtype = dt;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  t->data = data;
}

void st_writer_meta(st_writer *w, const char *key, const char *value) {
  json_object_set_new(w->meta, key, json_string(value));
}

int st_writer_save(st_writer *w, const char *path) {
  json_t *hdr = json_object();
  uint64_t off = 0;
  if (json_object_size(w->meta)) json_object_set(hdr, "__metadata__", w->meta);
  for (int i = 0; i < w->n; i++) {
    st_tensor *t = &w->t[i];
    uint64_t nbytes = st_numel(t) * st_dtype_size(t->dtype);
    json_t *shape = json_array();
    for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
    json_object_set_new(hdr, t->name, json_pack("{s:s, s:o, s:[I,I]}", "dtype", st_dtype_name(t->dtype),
                                                "shape", shape, "data_offsets", (json_int_t)off,
                                                (json_int_t)(off + nbytes)));
    t->begin = off;
    t->end = off + nbytes;
    off += nbytes;
  }
  char *js = json_dumps(hdr, JSON_COMPACT);
  json_decref(hdr);
  size_t jlen = strlen(js), padded = (jlen + 7) & ~(size_t)7;  // data 8-byte aligned
  uint8_t lenbuf[8];
  for (int i = 0; i < 8; i++) lenbuf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
  atomic_file a;
  if (atomic_open(&a, path) != 0) { free(js); return -1; }
  int ok = fwrite(lenbuf, 1, 8, a.f) == 8 && fwrite(js, 1, jlen, a.f) == jlen;
  for (size_t i = jlen; ok && i < padded; i++) ok = fputc(' ', a.f) != EOF;
  for (int i = 0; ok && i < w->n; i++) {
    size_t nb = (size_t)(w->t[i].end - w->t[i].begin);
    ok = nb == 0 || fwrite(w->t[i].data, 1, nb, a.f) == nb;
  }
  free(js);
  if (!ok) {
    int rc = igpt_err("%s: write failed: %s (disk full?)", path, strerror(errno));
    atomic_abort(&a);
    return rc;
  }
  return atomic_commit(&a);
}

void st_writer_free(st_writer *w) {
  if (!w) return;
  for (int i = 0; i < w->n; i++) free(w->t[i].name);
  free(w->t);
  json_decref(w->meta);
  free(w);
}
