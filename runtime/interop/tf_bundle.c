// tf_bundle: reading (and, for round trips, writing) TensorFlow V2 tensor bundles. See tf_bundle.h.
#include "interop/tf_bundle.h"
#include "base/util.h"
#include "interop/tf_bundle.pb-c.h"
#include "interop/tf_table.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <isa-l/crc.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// TensorFlow's kTensorBundleVersion: a bundle whose min_consumer is above it needs a newer reader.
#define TF_BUNDLE_VERSION 1

static const struct { int dtype; const char *name; size_t size; } dtypes[] = {
    {TF_FLOAT, "DT_FLOAT", 4},   {TF_DOUBLE, "DT_DOUBLE", 8}, {TF_INT32, "DT_INT32", 4},
    {TF_UINT8, "DT_UINT8", 1},   {TF_INT16, "DT_INT16", 2},   {TF_INT8, "DT_INT8", 1},
    {TF_STRING, "DT_STRING", 0}, {TF_INT64, "DT_INT64", 8},   {TF_BOOL, "DT_BOOL", 1},
    {TF_BFLOAT16, "DT_BFLOAT16", 2}, {TF_UINT16, "DT_UINT16", 2}, {TF_HALF, "DT_HALF", 2},
    {TF_UINT32, "DT_UINT32", 4}, {TF_UINT64, "DT_UINT64", 8},
};

const char *tf_dtype_name(int dtype) {
  for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
    if (dtypes[i].dtype == dtype) return dtypes[i].name;
  return NULL;
}

size_t tf_dtype_size(int dtype) {
  for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
    if (dtypes[i].dtype == dtype) return dtypes[i].size;
  return 0;
}

// ISA-L's crc32_iscsi keeps the register uninverted and takes an int length.
uint32_t tf_crc32c_extend(uint32_t crc, const void *data, size_t n) {
  uint32_t r = ~crc;
  const unsigned char *p = data;
  while (n) {
    int k = n > (1u << 30) ? 1 << 30 : (int)n;
    r = crc32_iscsi((unsigned char *)p, k, r);
    p += k, n -= (size_t)k;
  }
  return ~r;
}

// ---------------------------------------------------------------- locating the files

static bool has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), k = strlen(suf);
  return n >= k && !strcmp(s + n - k, suf);
}

static bool is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

// DIR/checkpoint (a text proto): model_checkpoint_path: "NAME", relative to DIR unless absolute.
static char *from_checkpoint_file(const char *dir, const char *path) {
  uint8_t *buf;
  size_t len;
  if (file_read_all(path, &buf, &len)) return NULL;
  char *text = xrealloc(buf, len + 1), *out = NULL;
  text[len] = 0;
  const char *k = strstr(text, "model_checkpoint_path:");
  const char *q1 = k ? strchr(k, '"') : NULL, *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
  if (!q2 || q2 == q1 + 1)
    igpt_err("%s: no model_checkpoint_path: \"...\" line (expected TensorFlow's checkpoint state file)", path);
  else if (q1[1] == '/')
    out = xasprintf("%.*s", (int)(q2 - q1 - 1), q1 + 1);
  else
    out = xasprintf("%s/%.*s", dir, (int)(q2 - q1 - 1), q1 + 1);
  free(text);
  return out;
}

// The one PREFIX.index in dir (none or several: an error listing them).
static char *from_index_glob(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    igpt_err("%s: cannot list: %s", dir, strerror(errno));
    return NULL;
  }
  char *found = NULL, *others = NULL;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!has_suffix(e->d_name, ".index") || e->d_name[0] == '.') continue;
    if (n++ == 0) found = xstrdup(e->d_name);
    else {
      char *o = xasprintf("%s%s%s", others ? others : "", others ? ", " : "", e->d_name);
      free(others);
      others = o;
    }
  }
  closedir(d);
  char *out = NULL;
  if (n == 0)
    igpt_err("%s: no `checkpoint` file and no *.index file: not a TensorFlow checkpoint directory", dir);
  else if (n > 1)
    igpt_err("%s: no `checkpoint` file and several checkpoints (%s, %s): name one as %s/PREFIX", dir, found, others, dir);
  else
    out = xasprintf("%s/%.*s", dir, (int)(strlen(found) - 6), found);
  free(found);
  free(others);
  return out;
}

char *tf_bundle_resolve(const char *path) {
  if (is_dir(path)) {
    char *ck = xasprintf("%s/checkpoint", path), *out;
    out = path_exists(ck) ? from_checkpoint_file(path, ck) : from_index_glob(path);
    free(ck);
    return out;
  }
  if (has_suffix(path, ".index")) return xasprintf("%.*s", (int)(strlen(path) - 6), path);
  return xstrdup(path);
}

char *tf_bundle_shard_path(const tf_bundle *b, int shard) {
  return xasprintf("%s.data-%05d-of-%05d", b->prefix, shard, b->num_shards);
}

// ---------------------------------------------------------------- the index

static void printable(char *dst, size_t cap, const char *s, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 5 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 32 && c < 127) dst[o++] = (char)c;
    else o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
  }
  dst[o] = 0;
}

int tf_entry_parse(const void *val, size_t len, const char *name, const char *where, int num_shards,
                   tf_entry *e) {
  memset(e, 0, sizeof *e);
  IgptTf__BundleEntryProto *p = igpt_tf__bundle_entry_proto__unpack(NULL, len, val);
  if (!p) return igpt_err("%s: tensor '%s': its entry is not a BundleEntryProto (%zu bytes)", where, name, len);
  int rc = -1;
  const char *dn = tf_dtype_name(p->dtype);
  if (!dn) {
    igpt_err("%s: tensor '%s': unknown dtype %d", where, name, p->dtype);
    goto out;
  }
  if (p->n_slices) {
    igpt_err("%s: tensor '%s' is partitioned (%zu slices): partitioned variables are not supported (the iGPT "
             "checkpoints have none)", where, name, p->n_slices);
    goto out;
  }
  if (p->shape && p->shape->unknown_rank) {  // an absent shape is a scalar, as TensorFlow reads it
    igpt_err("%s: tensor '%s' has an unknown rank", where, name);
    goto out;
  }
  size_t nd = p->shape ? p->shape->n_dim : 0;
  if (nd > TF_MAX_DIMS) {
    igpt_err("%s: tensor '%s' has %zu dims (at most %d supported)", where, name, nd, TF_MAX_DIMS);
    goto out;
  }
  uint64_t numel = 1;
  for (size_t i = 0; i < nd; i++) {
    int64_t d = p->shape->dim[i]->size;
    if (d < 0 || d > (INT64_C(1) << 40)) {
      igpt_err("%s: tensor '%s': dimension %zu is %lld", where, name, i, (long long)d);
      goto out;
    }
    e->shape[i] = d;
    if (d && numel > UINT64_MAX / 2 / (uint64_t)d) {
      igpt_err("%s: tensor '%s': its shape overflows 64 bits", where, name);
      goto out;
    }
    numel *= (uint64_t)d;
  }
  e->ndim = (int)nd;
  if (p->shard_id < 0 || p->shard_id >= num_shards) {
    igpt_err("%s: tensor '%s': shard %d outside 0..%d (the header says %d shards)", where, name, p->shard_id,
             num_shards - 1, num_shards);
    goto out;
  }
  if (p->offset < 0 || p->size < 0 || (uint64_t)p->offset > UINT64_MAX / 2 - (uint64_t)p->size) {
    igpt_err("%s: tensor '%s': offset %lld and size %lld are not a byte range", where, name, (long long)p->offset,
             (long long)p->size);
    goto out;
  }
  size_t es = tf_dtype_size(p->dtype);
  if (es && (numel > UINT64_MAX / es || (uint64_t)p->size != numel * es)) {
    igpt_err("%s: tensor '%s': %s of %llu elements needs %llu bytes but its entry says %lld", where, name, dn,
             (unsigned long long)numel, (unsigned long long)(numel * es), (long long)p->size);
    goto out;
  }
  e->dtype = p->dtype;
  e->shard = p->shard_id;
  e->offset = (uint64_t)p->offset;
  e->size = (uint64_t)p->size;
  e->crc32c = p->crc32c;
  rc = 0;
out:
  igpt_tf__bundle_entry_proto__free_unpacked(p, NULL);
  return rc;
}

static int read_header(const char *where, const char *val, size_t len, int *num_shards) {
  IgptTf__BundleHeaderProto *h = igpt_tf__bundle_header_proto__unpack(NULL, len, (const uint8_t *)val);
  if (!h)
    return igpt_err("%s: key \"\" is not a BundleHeaderProto: not a TensorFlow V2 bundle (a V1 checkpoint holds "
                    "SavedTensorSlices there; re-save it with tf.train.Saver, whose default is V2 since TensorFlow 1.0)", where);
  int rc = 0;
  if (h->endianness != IGPT_TF__BUNDLE_HEADER_PROTO__ENDIANNESS__LITTLE)
    rc = igpt_err("%s: a big-endian bundle; only little-endian ones (every x86/ARM writer) are supported", where);
  else if (h->num_shards < 1 || h->num_shards > 99999)
    rc = igpt_err("%s: the header says %d shards (1..99999 expected)", where, h->num_shards);
  else if (h->version && h->version->min_consumer > TF_BUNDLE_VERSION)
    rc = igpt_err("%s: written for readers of bundle version %d or later (this one reads version %d)", where,
                  h->version->min_consumer, TF_BUNDLE_VERSION);
  *num_shards = h->num_shards;
  igpt_tf__bundle_header_proto__free_unpacked(h, NULL);
  return rc;
}

void tf_bundle_close(tf_bundle *b) {
  for (int i = 0; i < b->n; i++) free(b->entries[i].name);
  free(b->entries);
  free(b->prefix);
  free(b->index_path);
  memset(b, 0, sizeof *b);
}

// Reads every entry of the open table t into b.
static int read_index(tf_bundle *b, tf_table *t) {
  char err[TF_TABLE_ERR];
  const char *k, *v;
  size_t kl, vl;
  int r, cap = 0;
  bool header = false;
  while ((r = tf_table_next(t, &k, &kl, &v, &vl, err)) == 1) {
    if (!header) {
      if (kl != 0) {
        char pk[96];
        printable(pk, sizeof pk, k, kl < 24 ? kl : 24);
        return igpt_err("%s: the first key is '%s', not the bundle header \"\": not a TensorFlow V2 bundle%s", b->index_path,
                        pk, k[0] == 0 ? " (keys starting with \\x00 are a V1 checkpoint's)" : "");
      }
      if (read_header(b->index_path, v, vl, &b->num_shards)) return -1;
      header = true;
      continue;
    }
    if (memchr(k, 0, kl)) {
      char pk[96];
      printable(pk, sizeof pk, k, kl < 24 ? kl : 24);
      return igpt_err("%s: key '%s' holds a NUL byte: a TensorFlow V1 checkpoint (SavedTensorSlices), which this "
                      "reader refuses; only V2 bundles (PREFIX.index + PREFIX.data-*) are read", b->index_path, pk);
    }
    if (b->n == cap) {
      cap = cap ? 2 * cap : 64;
      b->entries = xrealloc(b->entries, (size_t)cap * sizeof *b->entries);
    }
    char *name = xasprintf("%.*s", (int)kl, k);
    if (tf_entry_parse(v, vl, name, b->index_path, b->num_shards, &b->entries[b->n])) {
      free(name);
      return -1;
    }
    b->entries[b->n++].name = name;
  }
  if (r < 0) return igpt_err("%s", err);
  if (!header) return igpt_err("%s: an empty table: no bundle header", b->index_path);
  return 0;
}

int tf_bundle_open_mem(tf_bundle *b, const void *index, size_t len, const char *name) {
  memset(b, 0, sizeof *b);
  b->prefix = xstrdup(name);
  b->index_path = xstrdup(name);
  char err[TF_TABLE_ERR];
  tf_table *t = tf_table_open_mem(index, len, name, err);
  int rc = t ? read_index(b, t) : igpt_err("%s", err);
  tf_table_close(t);
  if (rc) tf_bundle_close(b);
  return rc;
}

int tf_bundle_open(tf_bundle *b, const char *path) {
  memset(b, 0, sizeof *b);
  b->prefix = tf_bundle_resolve(path);
  if (!b->prefix) return -1;
  b->index_path = xasprintf("%s.index", b->prefix);
  char err[TF_TABLE_ERR];
  if (!path_exists(b->index_path)) {
    struct stat st;
    if (stat(b->prefix, &st) == 0 && S_ISREG(st.st_mode)) {  // a one-file checkpoint: V1?
      tf_table *t = tf_table_open(b->prefix, err);
      int rc = igpt_err(t ? "%s: a TensorFlow V1 checkpoint (one table file of SavedTensorSlices, no .index "
                            "beside it): only V2 bundles (PREFIX.index + PREFIX.data-*) can be read; re-save it "
                            "with tf.train.Saver (V2 is its default since TensorFlow 1.0)"
                          : "%s: neither a V2 bundle prefix (no %s.index) nor a checkpoint table",
                        b->prefix, b->prefix);
      tf_table_close(t);
      tf_bundle_close(b);
      return rc;
    }
    igpt_err("%s: not found (give a checkpoint directory, PREFIX or PREFIX.index)", b->index_path);
    tf_bundle_close(b);
    return -1;
  }
  tf_table *t = tf_table_open(b->index_path, err);
  if (!t) {
    igpt_err("%s", err);
    tf_bundle_close(b);
    return -1;
  }
  int rc = read_index(b, t);
  tf_table_close(t);
  if (rc) tf_bundle_close(b);
  return rc;
}

const tf_entry *tf_bundle_find(const tf_bundle *b, const char *name) {
  int lo = 0, hi = b->n - 1;  // table order is bytewise, as strcmp
  while (lo <= hi) {
    int mid = (lo + hi) / 2, c = strcmp(b->entries[mid].name, name);
    if (!c) return &b->entries[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return NULL;
}

// ---------------------------------------------------------------- the data

static int by_place(const void *a, const void *b) {
  const tf_entry *x = *(const tf_entry *const *)a, *y = *(const tf_entry *const *)b;
  if (x->shard != y->shard) return x->shard < y->shard ? -1 : 1;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int read_at(int fd, const char *path, const tf_entry *e, uint8_t *buf) {
  uint64_t done = 0;
  while (done < e->size) {
    size_t want = e->size - done > (1u << 30) ? 1u << 30 : (size_t)(e->size - done);
    ssize_t r = pread(fd, buf + done, want, (off_t)(e->offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return igpt_err("%s: reading tensor '%s' at byte %llu: %s", path, e->name,
                               (unsigned long long)(e->offset + done), strerror(errno));
    if (r == 0) return igpt_err("%s: tensor '%s' ends at byte %llu but the file ends at %llu (truncated shard: "
                                "download it again)", path, e->name, (unsigned long long)(e->offset + e->size),
                                (unsigned long long)(e->offset + done));
    done += (uint64_t)r;
  }
  return 0;
}

static uint64_t numel_of(const tf_entry *e) {
  uint64_t n = 1;
  for (int d = 0; d < e->ndim; d++) n *= (uint64_t)e->shape[d];
  return n;
}

// A DT_STRING tensor is [varint64 length] x numel, a masked crc32c of those lengths, then the
// bytes; TensorFlow's crc runs over each length as a little-endian uint32 (uint64 above 2^32),
// the length crc and the bytes (tensor_bundle.cc, WriteStringTensor).
static int string_crc(const char *path, const tf_entry *e, const uint8_t *buf, uint32_t *masked) {
  uint64_t n = numel_of(e), pos = 0, total = 0;
  uint32_t crc = 0;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t len = 0;
    int shift = 0;
    for (;;) {
      if (pos >= e->size || shift > 63)
        return igpt_err("%s: string tensor '%s': element %llu's length runs past its %llu bytes", path, e->name,
                        (unsigned long long)i, (unsigned long long)e->size);
      uint8_t c = buf[pos++];
      len |= (uint64_t)(c & 0x7f) << shift;
      shift += 7;
      if (!(c & 0x80)) break;
    }
    if (len <= UINT32_MAX) {
      uint8_t le[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24)};
      crc = tf_crc32c_extend(crc, le, 4);
    } else {
      uint8_t le[8];
      for (int k = 0; k < 8; k++) le[k] = (uint8_t)(len >> (8 * k));
      crc = tf_crc32c_extend(crc, le, 8);
    }
    if (len > e->size) return igpt_err("%s: string tensor '%s': element %llu is longer than the tensor", path, e->name, (unsigned long long)i);
    total += len;
  }
  if (e->size - pos < 4 || e->size - pos - 4 != total)
    return igpt_err("%s: string tensor '%s': lengths add up to %llu bytes but %llu remain", path, e->name,
                    (unsigned long long)total, (unsigned long long)(e->size - pos < 4 ? 0 : e->size - pos - 4));
  crc = tf_crc32c_extend(crc, buf + pos, (size_t)(e->size - pos));  // the length crc, then the bytes
  *masked = tf_crc_mask(crc);
  return 0;
}

int tf_bundle_read(const tf_bundle *b, int n, const tf_entry *const *which, tf_sink sink, void *ctx,
                   bool verbose) {
  const tf_entry **order = xmalloc((size_t)(n ? n : 1) * sizeof *order);
  memcpy(order, which, (size_t)n * sizeof *order);
  qsort(order, (size_t)n, sizeof *order, by_place);
  uint64_t maxsize = 0, total = 0;
  int rc = 0;
  // every shard present and long enough before anything is read
  for (int i = 0; i < n && !rc; i++) {
    maxsize = order[i]->size > maxsize ? order[i]->size : maxsize;
    total += order[i]->size;
    if (i + 1 < n && order[i + 1]->shard == order[i]->shard) continue;  // the shard's last entry
    char *path = tf_bundle_shard_path(b, order[i]->shard);
    struct stat st;
    if (stat(path, &st) != 0)
      rc = igpt_err("%s: missing shard (it holds tensor '%s'): %s; download the whole checkpoint", path,
                    order[i]->name, strerror(errno));
    else if ((uint64_t)st.st_size < order[i]->offset + order[i]->size)
      rc = igpt_err("%s: truncated shard: tensor '%s' needs bytes up to %llu but the file has %llu; download it again",
                    path, order[i]->name, (unsigned long long)(order[i]->offset + order[i]->size),
                    (unsigned long long)st.st_size);
    free(path);
  }
  uint8_t *buf = rc ? NULL : xmalloc(maxsize ? (size_t)maxsize : 1);
  uint64_t done = 0;
  double t0 = now_seconds();
  for (int i = 0; i < n && !rc;) {
    int shard = order[i]->shard;
    char *path = tf_bundle_shard_path(b, shard);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) rc = igpt_err("%s: cannot open: %s", path, strerror(errno));
    for (; !rc && i < n && order[i]->shard == shard; i++) {
      const tf_entry *e = order[i];
      if (read_at(fd, path, e, buf)) { rc = -1; break; }
      uint32_t got = 0;
      if (e->dtype == TF_STRING ? string_crc(path, e, buf, &got) : (got = tf_crc_mask(tf_crc32c(buf, (size_t)e->size)), 0)) {
        rc = -1;
        break;
      }
      if (got != e->crc32c) {
        rc = igpt_err("%s: tensor '%s' (bytes %llu..%llu): crc32c mismatch (stored 0x%08x, computed 0x%08x): the "
                      "shard is damaged; download it again", path, e->name, (unsigned long long)e->offset,
                      (unsigned long long)(e->offset + e->size), e->crc32c, got);
        break;
      }
      if (sink(ctx, e, buf)) { rc = -1; break; }
      done += e->size;
    }
    if (fd >= 0) close(fd);
    if (!rc && verbose)
      log_info("%s: read (%.1f of %.1f MB, %.0f MB/s)", path, done / 1e6, total / 1e6,
               done / 1e6 / (now_seconds() - t0 + 1e-9));
    free(path);
  }
  free(buf);
  free(order);
  return rc;
}

// ---------------------------------------------------------------- writing

typedef struct {
  char *name;
  int shard, dtype, ndim;
  int64_t shape[TF_MAX_DIMS];
  uint64_t offset, size;
  uint32_t crc;
} w_entry;

struct tf_bundle_writer {
  char *prefix;
  int num_shards;
  bool snappy, failed;
  atomic_file *shards;
  uint64_t *ends;
  w_entry *e;
  int n, cap;
};

tf_bundle_writer *tf_bundle_writer_new(const char *prefix, int num_shards, bool snappy) {
  tf_bundle_writer *w = xcalloc(1, sizeof *w);
  w->prefix = xstrdup(prefix);
  w->num_shards = num_shards;
  w->snappy = snappy;
  w->shards = xcalloc((size_t)num_shards, sizeof *w->shards);
  w->ends = xcalloc((size_t)num_shards, sizeof *w->ends);
  for (int s = 0; s < num_shards && !w->failed; s++) {
    char *p = xasprintf("%s.data-%05d-of-%05d", prefix, s, num_shards);
    w->failed = atomic_open(&w->shards[s], p) != 0;
    free(p);
  }
  return w;
}

void tf_bundle_writer_add(tf_bundle_writer *w, const char *name, int shard, int dtype, int ndim,
                          const int64_t *shape, const void *data, size_t nbytes) {
  if (w->failed) return;
  if (shard < 0 || shard >= w->num_shards || ndim > TF_MAX_DIMS) {
    igpt_err("%s: tensor '%s': shard %d or %d dims out of range", w->prefix, name, shard, ndim);
    w->failed = true;
    return;
  }
  if (w->n == w->cap) {
    w->cap = w->cap ? 2 * w->cap : 64;
    w->e = xrealloc(w->e, (size_t)w->cap * sizeof *w->e);
  }
  w_entry *e = &w->e[w->n++];
  memset(e, 0, sizeof *e);
  e->name = xstrdup(name);
  e->shard = shard, e->dtype = dtype, e->ndim = ndim;
  if (ndim) memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
  e->offset = w->ends[shard];
  e->size = nbytes;
  e->crc = tf_crc_mask(tf_crc32c(data, nbytes));
  w->ends[shard] += nbytes;
  if (nbytes && fwrite(data, 1, nbytes, w->shards[shard].f) != nbytes) {
    igpt_err("%s: cannot write tensor '%s': %s", w->shards[shard].path, name, strerror(errno));
    w->failed = true;
  }
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const w_entry *)a)->name, ((const w_entry *)b)->name);
}

// The index: header under "", then each entry under its name, through LevelDB's TableBuilder.
static int write_index(tf_bundle_writer *w, const char *path) {
  char err[TF_TABLE_ERR];
  tf_table_writer *t = tf_table_writer_open(path, w->snappy, err);
  if (!t) return igpt_err("%s", err);
  IgptTf__VersionDef ver = IGPT_TF__VERSION_DEF__INIT;
  ver.producer = 1;
  IgptTf__BundleHeaderProto h = IGPT_TF__BUNDLE_HEADER_PROTO__INIT;
  h.num_shards = w->num_shards;
  h.version = &ver;
  size_t cap = igpt_tf__bundle_header_proto__get_packed_size(&h);
  uint8_t *buf = xmalloc(cap);
  igpt_tf__bundle_header_proto__pack(&h, buf);
  int rc = tf_table_writer_add(t, "", 0, buf, cap, err);
  for (int i = 0; i < w->n && !rc; i++) {
    const w_entry *x = &w->e[i];
    IgptTf__TensorShapeProto__Dim dims[TF_MAX_DIMS], *dp[TF_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) {
      igpt_tf__tensor_shape_proto__dim__init(&dims[d]);
      dims[d].size = x->shape[d];
      dp[d] = &dims[d];
    }
    IgptTf__TensorShapeProto shape = IGPT_TF__TENSOR_SHAPE_PROTO__INIT;
    shape.n_dim = (size_t)x->ndim;
    shape.dim = dp;
    IgptTf__BundleEntryProto e = IGPT_TF__BUNDLE_ENTRY_PROTO__INIT;
    e.dtype = x->dtype, e.shape = &shape, e.shard_id = x->shard;
    e.offset = (int64_t)x->offset, e.size = (int64_t)x->size, e.crc32c = x->crc;
    size_t len = igpt_tf__bundle_entry_proto__get_packed_size(&e);
    if (len > cap) buf = xrealloc(buf, cap = len);
    igpt_tf__bundle_entry_proto__pack(&e, buf);
    rc = tf_table_writer_add(t, x->name, strlen(x->name), buf, len, err);
  }
  free(buf);
  if (rc) {
    tf_table_writer_finish(t, err);
    return igpt_err("%s", err);
  }
  return tf_table_writer_finish(t, err) ? igpt_err("%s", err) : 0;
}

int tf_bundle_writer_finish(tf_bundle_writer *w) {
  int rc = w->failed ? -1 : 0;
  qsort(w->e, (size_t)w->n, sizeof *w->e, by_name);
  for (int i = 1; i < w->n && !rc; i++)
    if (!strcmp(w->e[i].name, w->e[i - 1].name)) rc = igpt_err("%s: tensor '%s' added twice", w->prefix, w->e[i].name);
  char *index = xasprintf("%s.index", w->prefix), *tmp = xasprintf("%s.index.tmp", w->prefix);
  if (!rc) rc = write_index(w, tmp);
  for (int s = 0; s < w->num_shards; s++) {
    if (!rc && w->shards[s].f) rc = atomic_commit(&w->shards[s]);
    else if (w->shards[s].f) atomic_abort(&w->shards[s]);
  }
  if (!rc && rename(tmp, index)) rc = igpt_err("%s: cannot rename into place: %s", index, strerror(errno));
  if (rc) unlink(tmp);
  for (int i = 0; i < w->n; i++) free(w->e[i].name);
  free(w->e);
  free(w->shards);
  free(w->ends);
  free(w->prefix);
  free(index);
  free(tmp);
  free(w);
  return rc;
}
