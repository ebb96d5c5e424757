// torch_bin: PyTorch zip files (torch.save) to tensors and to the native model. See torch_bin.h.
#include "interop/torch_bin.h"
#include "base/util.h"
#include "datasets/decode.h"
#include "datasets/unpack.h"
#include "interop/hf.h"
#include <stdlib.h>
#include <string.h>

// A storage member may be a whole embedding; data.pkl is small.
#define TORCH_MAX_MEMBER ((size_t)1 << 34)

typedef struct {
  const char *bin;
  char *prefix;          // "ARCHIVE/" of ARCHIVE/data.pkl
  torch_tensor *t;
  int n;
  bool *filled;
  uint8_t *data;         // every tensor's bytes, one allocation
  size_t *at;            // tensor i's offset in data
} bin_ctx;

// The safetensors dtype of a torch storage kind and element size (-1: none).
static int st_dtype_of(char kind, int size) {
  static const struct { char kind; int size; st_dtype dt; } map[] = {
      {'f', 4, ST_F32}, {'f', 8, ST_F64}, {'f', 2, ST_F16}, {'h', 2, ST_BF16}, {'i', 8, ST_I64}, {'i', 4, ST_I32},
      {'i', 2, ST_I16}, {'i', 1, ST_I8},  {'u', 1, ST_U8},  {'b', 1, ST_BOOL}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (map[i].kind == kind && map[i].size == size) return (int)map[i].dt;
  return -1;
}

// ARCHIVE/data.pkl, ARCHIVE/data/<key>, ARCHIVE/byteorder; the rest (version, ...) unread.
static int want(void *ctx, const char *entry) {
  (void)ctx;
  const char *slash = strchr(entry, '/');
  return slash && (!strcmp(slash, "/data.pkl") || !strncmp(slash, "/data/", 6) || !strcmp(slash, "/byteorder"));
}

static int on_pickle(bin_ctx *x, const char *entry, const uint8_t *buf, size_t len) {
  if (x->t) return igpt_err("%s: a second data.pkl (%s)", x->bin, entry);
  char *name = xasprintf("%s:%s", x->bin, entry);
  int rc = decode_torch_pickle(buf, len, name, &x->t, &x->n);
  free(name);
  if (rc) return -1;
  x->prefix = xasprintf("%.*s", (int)(strchr(entry, '/') - entry + 1), entry);
  size_t total = 0;
  x->at = xcalloc((size_t)x->n + 1, sizeof *x->at);
  x->filled = xcalloc((size_t)x->n + 1, sizeof *x->filled);
  for (int i = 0; i < x->n; i++) {
    const torch_tensor *t = &x->t[i];
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) numel *= (uint64_t)t->shape[d];  // below storage_numel <= 2^40
    x->at[i] = total;
    total += (size_t)numel * (size_t)t->elsize;
  }
  x->data = xmalloc(total ? total : 1);
  return 0;
}

static int on_member(void *ctx, const char *entry, const uint8_t *buf, size_t len) {
  bin_ctx *x = ctx;
  const char *slash = strchr(entry, '/');
  if (!strcmp(slash, "/data.pkl")) return on_pickle(x, entry, buf, len);
  if (!strcmp(slash, "/byteorder")) {
    if (len >= 3 && !memcmp(buf, "big", 3))
      return igpt_err("%s: %s says big-endian: only little-endian files are read", x->bin, entry);
    return 0;
  }
  if (!x->t) return igpt_err("%s: %s comes before data.pkl (torch.save writes data.pkl first)", x->bin, entry);
  if (strncmp(entry, x->prefix, strlen(x->prefix))) return 0;  // another archive's: unused
  const char *key = slash + 6;
  for (int i = 0; i < x->n; i++) {
    const torch_tensor *t = &x->t[i];
    if (strcmp(t->storage, key)) continue;
    if ((uint64_t)len < (uint64_t)t->storage_numel * (uint64_t)t->elsize)
      return igpt_err("%s: storage %s holds %zu bytes but data.pkl declares %lld elements of %d bytes (tensor '%s')",
                      x->bin, entry, len, (long long)t->storage_numel, t->elsize, t->name);
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) numel *= (uint64_t)t->shape[d];
    memcpy(x->data + x->at[i], buf + (size_t)t->offset * (size_t)t->elsize, (size_t)numel * (size_t)t->elsize);
    x->filled[i] = true;
  }
  return 0;
}

void torch_bin_close(st_file *f) {
  free(f->map);  // the tensors' bytes (st_close frees only mapped files)
  f->map = NULL;
  st_close(f);
}

int torch_bin_read(const char *bin, st_file *f) {
  memset(f, 0, sizeof *f);
  bin_ctx x = {.bin = bin};
  int rc = unpack_each_member(bin, TORCH_MAX_MEMBER, want, on_member, &x);
  if (rc == 0 && !x.t) rc = igpt_err("%s: no ARCHIVE/data.pkl member: not a torch.save zip (a legacy pre-1.6 file?)", bin);
  for (int i = 0; rc == 0 && i < x.n; i++)
    if (!x.filled[i])
      rc = igpt_err("%s: storage member %sdata/%s of tensor '%s' is missing", bin, x.prefix, x.t[i].storage, x.t[i].name);
  if (rc == 0) {
    f->path = xstrdup(bin);
    f->n = x.n;
    f->tensors = xcalloc((size_t)x.n + 1, sizeof *f->tensors);
    f->map = x.data;
    x.data = NULL;
    for (int i = 0; i < x.n; i++) {
      st_tensor *t = &f->tensors[i];
      t->name = xstrdup(x.t[i].name);
      t->dtype = (st_dtype)st_dtype_of(x.t[i].dtype, x.t[i].elsize);  // every storage type has one
      t->ndim = x.t[i].ndim;
      memcpy(t->shape, x.t[i].shape, sizeof x.t[i].shape);
      t->data = (const uint8_t *)f->map + x.at[i];
    }
  }
  torch_tensors_free(x.t, x.n);
  free(x.prefix);
  free(x.filled);
  free(x.at);
  free(x.data);
  return rc;
}

model *torch_import(const char *bin, bool drop_zero_biases) {
  st_file f;
  if (torch_bin_read(bin, &f)) return NULL;
  const char *slash = strrchr(bin, '/');
  char *dir = slash ? xasprintf("%.*s", (int)(slash - bin), bin) : xstrdup(".");
  model *m = hf_import_tensors(dir, &f, drop_zero_biases);
  free(dir);
  torch_bin_close(&f);
  return m;
}
