// tf_import: the TensorFlow bundle reader against real TF-written files (../shared/fixtures/tf:
// every DECODED.txt line read back exactly, the 2-shard t2t checkpoint completely, the Snappy
// ones, the V1 file refused; damaged copies refused naming file and tensor), and the iGPT
// mapping end to end: a bundle with iGPT-S's names and layouts for the tiny HF oracle's weights,
// written here from the HF tensors through LevelDB's table writer and protobuf-c
// (tf_bundle_writer), imports to the same native weights as the oracle through interop/hf.c.
#include "testutil.h"
#include "fuzz/fuzz_tf.h"
#include "base/rng.h"
#include "base/safetensors.h"
#include "engine/model.h"
#include "interop/hf.h"
#include "interop/tf_bundle.h"
#include "interop/tf_bundle.pb-c.h"
#include "interop/tf_igpt.h"
#include "interop/tf_table.h"
#include <ctype.h>
#include <dirent.h>
#include <sys/stat.h>

static char *fixture(const char *rel) {
  const char *f = getenv("IGPT_TF_FIXTURES");
  return f ? xasprintf("%s/%s", f, rel) : xasprintf("%s/../shared/fixtures/tf/%s", test_root(), rel);
}

static char *copy_fixture(const char *rel, const char *tag) {
  char *src = fixture(rel), *dir = test_tmpdir(tag);
  char *cmd = xasprintf("cp %s/* %s/ && chmod u+w %s/*", src, dir, dir);
  cr_assert_eq(run_cmd(cmd), 0, "%s", cmd);
  free(cmd);
  free(src);
  return dir;
}

// ---------------------------------------------------------------- DECODED.txt, exactly

typedef struct {
  char name[256], dtype[16], shape[64], values[256];
  int shard;
  unsigned long long off, size;
  unsigned crc;
} decoded_line;

// One tensor line of DECODED.txt: "NAME DTYPE [d, ...] shard S off O size Z crc OK (stored masked
// 0xH)  values[n]: v, v, v, v ..." (or "raw: hex..." for strings). 0 when the line is another kind.
static int parse_decoded(const char *line, decoded_line *d) {
  memset(d, 0, sizeof *d);
  int k = 0;
  if (sscanf(line, "%255s %15s %n", d->name, d->dtype, &k) != 2 || strncmp(d->dtype, "DT_", 3)) return 0;
  const char *p = line + k, *close = strchr(p, ']');
  cr_assert(*p == '[' && close, "shape in %s", line);
  snprintf(d->shape, sizeof d->shape, "%.*s", (int)(close - p + 1), p);
  cr_assert_eq(sscanf(close + 1, " shard %d off %llu size %llu crc OK (stored masked 0x%x)", &d->shard, &d->off,
                      &d->size, &d->crc), 4, "%s", line);
  const char *v = strstr(close, "values[");
  if (v) {
    v = strstr(v, ": ") + 2;
    snprintf(d->values, sizeof d->values, "%s", v);
    char *e = strstr(d->values, " ...");
    if (e) *e = 0;
    size_t n = strlen(d->values);
    while (n && isspace((unsigned char)d->values[n - 1])) d->values[--n] = 0;
  }
  return 1;
}

static void shape_text(const tf_entry *e, char *buf, size_t cap) {
  size_t o = (size_t)snprintf(buf, cap, "[");
  for (int i = 0; i < e->ndim; i++) o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)e->shape[i]);
  snprintf(buf + o, cap - o, "]");
}

typedef struct {
  decoded_line *lines;
  int n, seen;
  uint64_t bytes[2];
} decoded_ctx;

// The first (up to 4) values as DECODED.txt prints them: %.7g for floats, integers as they are.
static int check_values(void *ctx, const tf_entry *e, const void *data) {
  decoded_ctx *x = ctx;
  const decoded_line *d = NULL;
  for (int i = 0; i < x->n; i++) if (!strcmp(x->lines[i].name, e->name)) d = &x->lines[i];
  cr_assert_not_null(d, "tensor %s is not in DECODED.txt", e->name);
  x->seen++;
  if (e->shard < 2) x->bytes[e->shard] += e->size;
  if (!d->values[0]) return 0;  // strings: the crc (checked by the reader) covers them
  size_t es = tf_dtype_size(e->dtype), n = es ? (size_t)(e->size / es) : 0;
  char got[256] = "";
  size_t o = 0;
  for (size_t i = 0; i < n && i < 4; i++) {
    const uint8_t *p = (const uint8_t *)data + i * es;
    char one[64];
    if (e->dtype == TF_FLOAT) { float f; memcpy(&f, p, 4); snprintf(one, sizeof one, "%.7g", f); }
    else if (e->dtype == TF_INT64) { int64_t v; memcpy(&v, p, 8); snprintf(one, sizeof one, "%lld", (long long)v); }
    else if (e->dtype == TF_INT32) { int32_t v; memcpy(&v, p, 4); snprintf(one, sizeof one, "%d", v); }
    else cr_assert_fail("%s: no value check for dtype %d", e->name, e->dtype);
    o += (size_t)snprintf(got + o, sizeof got - o, "%s%s", i ? ", " : "", one);
  }
  cr_expect_str_eq(got, d->values, "%s: values %s, DECODED.txt says %s", e->name, got, d->values);
  return 0;
}

// Opens the bundle at path, compares every entry with DIR/DECODED.txt and reads every tensor
// (crc-checked by the reader, values compared here). Returns the bytes read from shards 0 and 1.
static void check_decoded(const char *dir_rel, const char *path_rel, uint64_t bytes[2], int *n_out) {
  char *dir = fixture(dir_rel), *path = xasprintf("%s/%s", dir, path_rel), *txt = xasprintf("%s/DECODED.txt", dir);
  FILE *f = fopen(txt, "r");
  cr_assert_not_null(f, "%s", txt);
  decoded_ctx x = {xcalloc(512, sizeof(decoded_line)), 0, 0, {0, 0}};
  char line[4096];
  while (fgets(line, sizeof line, f))
    if (x.n < 512 && parse_decoded(line, &x.lines[x.n])) x.n++;
  fclose(f);
  tf_bundle b;
  cr_assert_eq(tf_bundle_open(&b, path), 0, "%s", igpt_errmsg());
  cr_assert_eq(b.n, x.n, "%s: %d entries, DECODED.txt lists %d", path, b.n, x.n);
  const tf_entry **all = xcalloc((size_t)b.n, sizeof *all);
  for (int i = 0; i < b.n; i++) {
    const tf_entry *e = &b.entries[i];
    const decoded_line *d = &x.lines[i];  // both in table (key) order
    char s[64];
    shape_text(e, s, sizeof s);
    cr_expect_str_eq(e->name, d->name);
    cr_expect_str_eq(tf_dtype_name(e->dtype), d->dtype, "%s", e->name);
    cr_expect_str_eq(s, d->shape, "%s", e->name);
    cr_expect_eq(e->shard, d->shard, "%s", e->name);
    cr_expect_eq(e->offset, d->off, "%s", e->name);
    cr_expect_eq(e->size, d->size, "%s", e->name);
    cr_expect_eq(e->crc32c, d->crc, "%s: crc 0x%08x, DECODED.txt 0x%08x", e->name, e->crc32c, d->crc);
    all[i] = e;
  }
  cr_assert_eq(tf_bundle_read(&b, b.n, all, check_values, &x, false), 0, "%s", igpt_errmsg());
  cr_expect_eq(x.seen, b.n);
  if (bytes) memcpy(bytes, x.bytes, sizeof x.bytes);
  if (n_out) *n_out = b.n;
  free(all);
  tf_bundle_close(&b);
  free(x.lines);
  free(dir), free(path), free(txt);
}

Test(tf_bundle, crc32c_test_vectors) {
  cr_expect_eq(tf_crc32c("123456789", 9), 0xe3069283u);  // the CRC-32C check value (RFC 3720)
  const uint8_t half[4] = {0, 0, 0, 0x3f};                  // 0.5f, stored masked as REFERENCE.md says
  cr_expect_eq(tf_crc_mask(tf_crc32c(half, 4)), 0x1f273806u);
  cr_expect_eq(tf_crc32c_extend(tf_crc32c("1234", 4), "56789", 5), 0xe3069283u);
}

Test(tf_bundle, every_fixture_reads_as_decoded) {
  check_decoded("serving_saved_model_half_plus_two_mkl", "variables", NULL, NULL);   // uncompressed blocks
  check_decoded("serving_saved_model_counter", "variables.index", NULL, NULL);
  check_decoded("t2t_transformer_test_ckpt", "model.ckpt-1", NULL, NULL);
}

Test(tf_bundle, snappy_compressed_tables) {
  int n;
  check_decoded("serving_saved_model_half_plus_two_cpu", "variables", NULL, &n);  // a, a2, b, c, c2
  cr_expect_eq(n, 5);
  check_decoded("serving_saved_model_half_plus_two_tf2_cpu", "variables", NULL, &n);  // + a DT_STRING
  cr_expect_eq(n, 4);
}

Test(tf_bundle, two_shard_checkpoint_read_completely) {
  char *dir = fixture("t2t_transformer_test_ckpt");
  char *prefix = tf_bundle_resolve(dir);  // through its `checkpoint` file
  cr_assert_not_null(prefix, "%s", igpt_errmsg());
  cr_expect(strstr(prefix, "/model.ckpt-1") != NULL, "%s", prefix);
  uint64_t bytes[2];
  int n;
  check_decoded("t2t_transformer_test_ckpt", ".", bytes, &n);  // the directory itself
  cr_expect_eq(n, 250);
  struct stat s0, s1;
  char *p0 = xasprintf("%s.data-00000-of-00002", prefix), *p1 = xasprintf("%s.data-00001-of-00002", prefix);
  cr_assert(stat(p0, &s0) == 0 && stat(p1, &s1) == 0);
  cr_expect_eq(bytes[0], (uint64_t)s0.st_size, "shard 0: read %llu of %lld bytes", (unsigned long long)bytes[0], (long long)s0.st_size);
  cr_expect_eq(bytes[1], (uint64_t)s1.st_size, "shard 1: read %llu of %lld bytes", (unsigned long long)bytes[1], (long long)s1.st_size);
  free(p0), free(p1), free(prefix), free(dir);
}

Test(tf_bundle, v1_checkpoint_refused) {
  char *p = fixture("serving_bad_half_plus_two_v1/export");
  tf_bundle b;
  cr_expect_eq(tf_bundle_open(&b, p), -1);
  cr_expect(strstr(igpt_errmsg(), "V1") && strstr(igpt_errmsg(), p), "%s", igpt_errmsg());
  cr_expect_null(tf_import(p, NULL, false));
  cr_expect(strstr(igpt_errmsg(), "V1"), "%s", igpt_errmsg());
  // its table read as if it were an index: the header key holds SavedTensorSlices, not a header
  char *dir = test_tmpdir("tfv1"), *cmd = xasprintf("cp %s %s/x.index", p, dir), *px = xasprintf("%s/x", dir);
  cr_assert_eq(run_cmd(cmd), 0);
  cr_expect_eq(tf_bundle_open(&b, px), -1);
  cr_expect(strstr(igpt_errmsg(), "x.index") && strstr(igpt_errmsg(), "V1"), "%s", igpt_errmsg());
  rm_rf(dir);
  free(dir), free(cmd), free(px), free(p);
}

// ---------------------------------------------------------------- damaged copies

static int ignore(void *ctx, const tf_entry *e, const void *data) {
  (void)ctx, (void)e, (void)data;
  return 0;
}

// Reads every tensor of the bundle at prefix; expects a failure whose message holds each
// of the needles.
static void read_fails(const char *prefix, const char *n1, const char *n2, const char *n3) {
  tf_bundle b;
  int rc = tf_bundle_open(&b, prefix);
  if (rc == 0) {
    const tf_entry **all = xcalloc((size_t)b.n, sizeof *all);
    for (int i = 0; i < b.n; i++) all[i] = &b.entries[i];
    rc = tf_bundle_read(&b, b.n, all, ignore, NULL, false);
    free(all);
    tf_bundle_close(&b);
  }
  cr_assert_eq(rc, -1, "a damaged bundle was read (%s)", n1);
  const char *m = igpt_errmsg();
  cr_expect(strstr(m, n1) && (!n2 || strstr(m, n2)) && (!n3 || strstr(m, n3)), "message lacks '%s' / '%s' / '%s': %s",
            n1, n2 ? n2 : "", n3 ? n3 : "", m);
}

// The entry ending last in shard s, and the one with the most bytes.
static void pick(const char *prefix, int s, char *last, char *biggest, uint64_t *off, uint64_t *size) {
  tf_bundle b;
  cr_assert_eq(tf_bundle_open(&b, prefix), 0, "%s", igpt_errmsg());
  uint64_t end = 0, big = 0;
  for (int i = 0; i < b.n; i++) {
    const tf_entry *e = &b.entries[i];
    if (e->shard != s) continue;
    if (e->offset + e->size > end) end = e->offset + e->size, strcpy(last, e->name);
    if (e->size > big) big = e->size, strcpy(biggest, e->name), *off = e->offset, *size = e->size;
  }
  tf_bundle_close(&b);
}

Test(tf_bundle, damaged_copies_refused_naming_file_and_tensor) {
  char *dir = copy_fixture("t2t_transformer_test_ckpt", "tfbad"), *prefix = xasprintf("%s/model.ckpt-1", dir);
  char *s1 = xasprintf("%s.data-00001-of-00002", prefix), *s0 = xasprintf("%s.data-00000-of-00002", prefix);
  char last[256], big[256], last0[256], big0[256];
  uint64_t off, size, off0, size0;
  pick(prefix, 1, last, big, &off, &size);
  pick(prefix, 0, last0, big0, &off0, &size0);
  char *save = xasprintf("cp %s %s.orig", s1, s1), *restore = xasprintf("cp %s.orig %s", s1, s1);
  cr_assert_eq(run_cmd(save), 0);

  // a bit flipped in the middle of the largest tensor: its crc fails
  FILE *f = fopen(s1, "r+b");
  cr_assert_not_null(f);
  fseek(f, (long)(off + size / 2), SEEK_SET);
  int c = fgetc(f);
  fseek(f, (long)(off + size / 2), SEEK_SET);
  fputc(c ^ 0x10, f);
  fclose(f);
  read_fails(prefix, "crc32c mismatch", "model.ckpt-1.data-00001-of-00002", big);

  // truncated by one byte: the tensor ending last does not fit
  cr_assert_eq(run_cmd(restore), 0);
  cr_assert_eq(truncate(s1, 1670407), 0);
  read_fails(prefix, "truncated shard", "model.ckpt-1.data-00001-of-00002", last);

  // a missing shard: named, with a tensor it holds
  cr_assert_eq(run_cmd(restore), 0);
  cr_assert_eq(unlink(s0), 0);
  read_fails(prefix, "missing shard", "model.ckpt-1.data-00000-of-00002", last0);

  // a damaged .index block: LevelDB's block crc names the index file
  char *idx = xasprintf("%s.index", prefix);
  f = fopen(idx, "r+b");
  cr_assert_not_null(f);
  fseek(f, 500, SEEK_SET);
  c = fgetc(f);
  fseek(f, 500, SEEK_SET);
  fputc(c ^ 0x01, f);
  fclose(f);
  read_fails(prefix, "model.ckpt-1.index", "checksum", NULL);
  cr_assert_eq(truncate(idx, 40), 0);  // shorter than the 48-byte footer
  read_fails(prefix, "model.ckpt-1.index", NULL, NULL);

  rm_rf(dir);
  free(dir), free(prefix), free(s1), free(s0), free(save), free(restore), free(idx);
}

// ---------------------------------------------------------------- the iGPT mapping, end to end

// The HF oracle's float32 tensor `name`, checked for its element count.
static const float *hf(const st_file *f, const char *name, size_t numel) {
  const st_tensor *t = st_get(f, name);
  cr_assert(t && t->dtype == ST_F32 && st_numel(t) == numel, "oracle tensor %s", name);
  return t->data;
}

typedef struct {
  tf_bundle_writer *w;
  int shard, n;
  const char *skip, *bad_shape;
} oracle_writer;

// One model tensor (left out when it is `skip`, its first dim one too many when `bad_shape`),
// and an optimizer slot beside it in the other weight shard.
static void put(oracle_writer *o, const char *name, int ndim, const int64_t *shape, const float *data, size_t numel) {
  if (o->skip && !strcmp(o->skip, name)) return;
  int64_t bad[3] = {shape[0] + 1, ndim > 1 ? shape[1] : 0, ndim > 2 ? shape[2] : 0};
  if (o->bad_shape && !strcmp(o->bad_shape, name)) {  // consistent in itself, not with the others
    size_t n = numel / (size_t)shape[0] * (size_t)bad[0];
    float *z = xcalloc(n, sizeof *z);
    tf_bundle_writer_add(o->w, name, o->shard, TF_FLOAT, ndim, bad, z, n * sizeof *z);
    free(z);
  } else {
    tf_bundle_writer_add(o->w, name, o->shard, TF_FLOAT, ndim, shape, data, numel * sizeof(float));
  }
  char *adam = xasprintf("%s/adam_m", name);
  tf_bundle_writer_add(o->w, adam, 3 - o->shard, TF_FLOAT, ndim, shape, data, numel * sizeof(float));
  free(adam);
  o->shard = 3 - o->shard, o->n++;
}

// Writes the HF oracle's weights as an iGPT checkpoint (REFERENCE.md section 7's names, shapes
// and layouts, derived here from HF's Conv1D [in, out] tensors, not through tf_igpt.c), with
// optimizer-like extras in 3 shards as the released ones: shard 0 only scalars. bert: no sos.
// skip / bad_shape name a tensor to leave out / write with a wrong shape.
static void write_oracle_bundle(const char *prefix, bool bert, const char *skip, const char *bad_shape, int *n_model) {
  char *path = oracle_path("hf-imagegpt-tiny/model.safetensors");
  st_file f;
  cr_assert_eq(st_open(&f, path), 0, "%s", igpt_errmsg());
  const int64_t L = 2, C = 64, NH = 4, HD = 16, V = 16, T = 64;
  oracle_writer o = {tf_bundle_writer_new(prefix, 3, true), 1, 0, skip, bad_shape};  // Snappy index blocks
  float *buf = xmalloc((size_t)(C * C) * sizeof(float));
  const float *wte = hf(&f, "transformer.wte.weight", (size_t)((V + 1) * C));
  put(&o, "model/wte", 2, (int64_t[]){V, C}, wte, (size_t)(V * C));
  if (!bert) put(&o, "model/sos", 1, (int64_t[]){C}, wte + V * C, (size_t)C);  // HF's row V
  put(&o, "model/wpe", 2, (int64_t[]){T, C}, hf(&f, "transformer.wpe.weight", (size_t)(T * C)), (size_t)(T * C));
  put(&o, "model/wtet", 2, (int64_t[]){V, C}, hf(&f, "lm_head.weight", (size_t)(V * C)), (size_t)(V * C));
  put(&o, "model/ln_f/g", 1, (int64_t[]){C}, hf(&f, "transformer.ln_f.weight", (size_t)C), (size_t)C);
  for (int l = 0; l < L; l++) {
    char hn[96], tn[96];
#define HF(LEAF, NUMEL) (snprintf(hn, sizeof hn, "transformer.h.%d.%s", l, LEAF), hf(&f, hn, NUMEL))
#define TN(LEAF) (snprintf(tn, sizeof tn, "model/h%d/%s", l, LEAF), tn)
    put(&o, TN("ln_1/g"), 1, (int64_t[]){C}, HF("ln_1.weight", (size_t)C), (size_t)C);
    put(&o, TN("ln_2/g"), 1, (int64_t[]){C}, HF("ln_2.weight", (size_t)C), (size_t)C);
    const float *qkv = HF("attn.c_attn.weight", (size_t)(C * 3 * C));  // [in f, out j], j = part*C + h*HD + e
    static const char *const parts[3] = {"attn/q_proj", "attn/k_proj", "attn/v_proj"};
    for (int part = 0; part < 3; part++) {
      for (int64_t h = 0; h < NH; h++)  // q[h, e, f] = W[f, part*C + h*HD + e]
        for (int64_t e = 0; e < HD; e++)
          for (int64_t fi = 0; fi < C; fi++) buf[(h * HD + e) * C + fi] = qkv[fi * 3 * C + part * C + h * HD + e];
      put(&o, TN(parts[part]), 3, (int64_t[]){NH, HD, C}, buf, (size_t)(C * C));
    }
    // c_proj [NH, HD, C] = [in, out], like HF's Conv1D: the same bytes; so are the mlp's
    put(&o, TN("attn/c_proj"), 3, (int64_t[]){NH, HD, C}, HF("attn.c_proj.weight", (size_t)(C * C)), (size_t)(C * C));
    put(&o, TN("mlp/c_fc/w"), 2, (int64_t[]){C, 4 * C}, HF("mlp.c_fc.weight", (size_t)(C * 4 * C)), (size_t)(C * 4 * C));
    put(&o, TN("mlp/c_proj/w"), 2, (int64_t[]){4 * C, C}, HF("mlp.c_proj.weight", (size_t)(4 * C * C)),
        (size_t)(4 * C * C));
#undef HF
#undef TN
  }
  int64_t step = 1000000;
  tf_bundle_writer_add(o.w, "global_step", 0, TF_INT64, 0, NULL, &step, sizeof step);
  float beta = 0.9f;
  tf_bundle_writer_add(o.w, "model/beta1_power", 0, TF_FLOAT, 0, NULL, &beta, sizeof beta);
  cr_assert_eq(tf_bundle_writer_finish(o.w), 0, "%s", igpt_errmsg());
  if (n_model) *n_model = o.n;
  free(buf);
  st_close(&f);
  free(path);
}

// The HF oracle through interop/hf.c: bias true (the oracle's are nonzero).
static model *oracle_hf(void) {
  char *dir = oracle_path("hf-imagegpt-tiny");
  model *m = hf_import(dir, false);
  cr_assert_not_null(m, "%s", igpt_errmsg());
  free(dir);
  return m;
}

static void expect_same_weights(const model *t, const model *h) {
  for (int p = 0; p < P_NTENSORS; p++) {
    if (!t->info[p].numel) continue;  // biases (only the HF model has them), sos for BERT
    cr_assert_eq(t->info[p].numel, h->info[p].numel, "%s", t->info[p].name);
    cr_expect_eq(memcmp(t->param[p], h->param[p], t->info[p].numel * sizeof(float)), 0, "%s differs",
                 t->info[p].name);
  }
}

Test(tf_igpt, oracle_weights_through_the_igpt_layout, .timeout = 60) {
  char *dir = test_tmpdir("tfigpt"), *prefix = xasprintf("%s/model.ckpt-1000000", dir);
  int n_model;
  write_oracle_bundle(prefix, false, NULL, NULL, &n_model);
  cr_expect_eq(n_model, 4 + 8 * 2 + 1);  // REFERENCE.md: 4 + 8L + 1 model tensors
  tf_import_stats st;
  model *t = tf_import(dir, &st, false);  // the directory: its one .index
  cr_assert_not_null(t, "%s", igpt_errmsg());
  model *h = oracle_hf();
  cr_expect_eq(t->cfg.n_layer, 2);
  cr_expect_eq(t->cfg.n_embd, 64);
  cr_expect_eq(t->cfg.n_head, 4);  // from q_proj's shape
  cr_expect_eq(t->cfg.n_ctx, 64);
  cr_expect_eq(t->cfg.n_vocab, 16);
  cr_expect_eq(t->cfg.objective, OBJ_AR);
  cr_expect(!t->cfg.bias);
  cr_expect_eq(st.n_model, n_model);
  cr_expect_eq(st.n_skipped, n_model + 2, "skipped %d", st.n_skipped);  // the adam_m slots + 2 scalars
  expect_same_weights(t, h);
  // The same logits once the HF model's biases are zero (the checkpoint layout has none); the
  // two forwards differ only in adding exact zeros, so they agree to the last bit but for -0.
  for (int p = 0; p < P_NTENSORS; p++)
    if (p == P_QKV_B || p == P_ATTPROJ_B || p == P_FC_B || p == P_FCPROJ_B) memset(h->param[p], 0, h->info[p].numel * 4);
  uint16_t tok[2 * 64];
  rng_t r;
  rng_seed(&r, 7);
  for (int i = 0; i < 128; i++) tok[i] = (uint16_t)rng_below(&r, 16);
  model_batch b = {.tokens = tok, .B = 2, .T = 64, .head = true};
  cr_assert_eq(model_forward(t, &b), 0, "%s", igpt_errmsg());
  float *lt = xmalloc(2 * 64 * 16 * sizeof(float));
  memcpy(lt, model_logits(t), 2 * 64 * 16 * sizeof(float));
  cr_assert_eq(model_forward(h, &b), 0, "%s", igpt_errmsg());
  for (int i = 0; i < 2 * 64 * 16; i++) cr_expect_eq(lt[i], model_logits(h)[i], "logit %d: %g vs %g", i, lt[i], model_logits(h)[i]);
  free(lt);
  model_free(t), model_free(h);
  rm_rf(dir);
  free(dir), free(prefix);
}

Test(tf_igpt, bert_checkpoint_has_no_sos) {
  char *dir = test_tmpdir("tfbert"), *prefix = xasprintf("%s/model.ckpt-1000000", dir);
  write_oracle_bundle(prefix, true, NULL, NULL, NULL);
  model *t = tf_import(prefix, NULL, false);
  cr_assert_not_null(t, "%s", igpt_errmsg());
  cr_expect_eq(t->cfg.objective, OBJ_BERT);
  cr_expect_null(t->param[P_SOS]);
  model *h = oracle_hf();
  expect_same_weights(t, h);
  model_free(t), model_free(h);
  rm_rf(dir);
  free(dir), free(prefix);
}

static void import_fails(const char *skip, const char *bad_shape, const char *n1, const char *n2) {
  char *dir = test_tmpdir("tfigbad"), *prefix = xasprintf("%s/model.ckpt-5", dir);
  write_oracle_bundle(prefix, false, skip, bad_shape, NULL);
  cr_expect_null(tf_import(prefix, NULL, false), "imported a bad checkpoint (%s)", n1);
  cr_expect(strstr(igpt_errmsg(), "model.ckpt-5.index") && strstr(igpt_errmsg(), n1) && strstr(igpt_errmsg(), n2),
            "message lacks the file, '%s' or '%s': %s", n1, n2, igpt_errmsg());
  rm_rf(dir);
  free(dir), free(prefix);
}

Test(tf_igpt, bad_checkpoints_refused_naming_the_tensor) {
  import_fails("model/h1/mlp/c_fc/w", NULL, "'model/h1/mlp/c_fc/w'", "missing");
  import_fails(NULL, "model/h1/ln_2/g", "'model/h1/ln_2/g' has shape [65]", "does not fit");
  import_fails(NULL, "model/h0/attn/k_proj", "'model/h0/attn/k_proj' has shape [5, 16, 64]", "expected [4, 16, 64]");
  import_fails("model/wte", NULL, "'model/wte' is missing", "not an iGPT checkpoint");
}

// An index written by hand (LevelDB's table writer, protobuf-c messages) with one bad entry.
static void index_with_entry(const char *prefix, IgptTf__BundleEntryProto *e, const char *name) {
  char err[TF_TABLE_ERR], *path = xasprintf("%s.index", prefix);
  tf_table_writer *w = tf_table_writer_open(path, 0, err);
  cr_assert_not_null(w, "%s", err);
  IgptTf__BundleHeaderProto h = IGPT_TF__BUNDLE_HEADER_PROTO__INIT;
  h.num_shards = 1;
  uint8_t buf[256];
  size_t n = igpt_tf__bundle_header_proto__pack(&h, buf);
  cr_assert_eq(tf_table_writer_add(w, "", 0, buf, n, err), 0, "%s", err);
  n = igpt_tf__bundle_entry_proto__pack(e, buf);
  cr_assert_eq(tf_table_writer_add(w, name, strlen(name), buf, n, err), 0, "%s", err);
  cr_assert_eq(tf_table_writer_finish(w, err), 0, "%s", err);
  free(path);
}

Test(tf_bundle, sliced_and_inconsistent_entries_refused) {
  char *dir = test_tmpdir("tfslice"), *prefix = xasprintf("%s/p", dir);
  IgptTf__TensorShapeProto__Dim d0 = IGPT_TF__TENSOR_SHAPE_PROTO__DIM__INIT, *dims[1] = {&d0};
  d0.size = 4;
  IgptTf__TensorShapeProto shape = IGPT_TF__TENSOR_SHAPE_PROTO__INIT;
  shape.n_dim = 1, shape.dim = dims;
  IgptTf__TensorSliceProto slice = IGPT_TF__TENSOR_SLICE_PROTO__INIT, *slices[1] = {&slice};
  IgptTf__BundleEntryProto e = IGPT_TF__BUNDLE_ENTRY_PROTO__INIT;
  e.dtype = TF_FLOAT, e.shape = &shape, e.size = 16, e.n_slices = 1, e.slices = slices;
  index_with_entry(prefix, &e, "model/wte");
  tf_bundle b;
  cr_expect_eq(tf_bundle_open(&b, prefix), -1);
  cr_expect(strstr(igpt_errmsg(), "'model/wte' is partitioned") && strstr(igpt_errmsg(), "p.index"), "%s", igpt_errmsg());
  e.n_slices = 0, e.size = 12;  // 4 floats in 12 bytes
  index_with_entry(prefix, &e, "model/wte");
  cr_expect_eq(tf_bundle_open(&b, prefix), -1);
  cr_expect(strstr(igpt_errmsg(), "needs 16 bytes but its entry says 12"), "%s", igpt_errmsg());
  e.size = 16, e.shard_id = 1;  // the header says 1 shard
  index_with_entry(prefix, &e, "model/wte");
  cr_expect_eq(tf_bundle_open(&b, prefix), -1);
  cr_expect(strstr(igpt_errmsg(), "shard 1 outside 0..0"), "%s", igpt_errmsg());
  e.shard_id = 0, e.shape = NULL, e.size = 4;  // no shape at all: a scalar, as TensorFlow reads it
  index_with_entry(prefix, &e, "step");
  cr_assert_eq(tf_bundle_open(&b, prefix), 0, "%s", igpt_errmsg());
  cr_expect_eq(b.n, 1);
  cr_expect_eq(b.entries[0].ndim, 0);
  tf_bundle_close(&b);
  rm_rf(dir);
  free(dir), free(prefix);
}

// ---------------------------------------------------------------- the command

Test(tf_igpt, import_and_export_commands, .timeout = 60) {
  char *dir = test_tmpdir("tfcli"), *prefix = xasprintf("%s/ck/model.ckpt-1000000", dir), *out = NULL;
  char *mk = xasprintf("mkdir -p %s/ck", dir);
  cr_assert_eq(run_cmd(mk), 0);
  write_oracle_bundle(prefix, false, NULL, NULL, NULL);
  char *args = xasprintf("import --from tf %s/ck --out %s/m.safetensors --json", dir, dir);
  cr_assert_eq(igpt_in(dir, args, &out), 0, "%s", out);
  cr_expect(strstr(out, "\"tensors\": 21") || strstr(out, "\"tensors\":21"), "%s", out);
  cr_expect(strstr(out, "data-00001-of-00003: read"), "progress per shard on stderr: %s", out);
  free(out), free(args);
  // export --to tf then import: the same native weights bit for bit
  args = xasprintf("export --to tf %s/m.safetensors --out %s/new/dir/rt --shards 4 --step 7", dir, dir);
  cr_assert_eq(igpt_in(dir, args, &out), 0, "%s", out);
  free(out), free(args);
  args = xasprintf("import --from tf %s/new/dir/rt.index --out %s/m2.safetensors", dir, dir);
  cr_assert_eq(igpt_in(dir, args, &out), 0, "%s", out);
  free(out), free(args);
  char *a = xasprintf("%s/m.safetensors", dir), *b2 = xasprintf("%s/m2.safetensors", dir);
  model *m1 = model_load(a), *m2 = model_load(b2);
  cr_assert(m1 && m2, "%s", igpt_errmsg());
  cr_expect_eq(m1->n_params, m2->n_params);
  cr_expect_eq(memcmp(m1->params, m2->params, m1->n_params * sizeof(float)), 0);
  model_free(m1), model_free(m2);
  // the V1 file: exit 1, the message on stderr
  char *v1 = fixture("serving_bad_half_plus_two_v1/export");
  args = xasprintf("import --from tf %s --out %s/v1.safetensors", v1, dir);
  cr_expect_eq(igpt_in(dir, args, &out), 1, "%s", out);
  cr_expect(strstr(out, "V1"), "%s", out);
  free(out), free(args);
  rm_rf(dir);
  free(dir), free(prefix), free(mk), free(a), free(b2), free(v1);
}

// The committed protobuf-c code is protoc-c's output for tf_bundle.proto (regenerate with
// `protoc-c -Iruntime --c_out=runtime runtime/interop/tf_bundle.proto`).
Test(tf_bundle, generated_code_matches_the_proto) {
  if (run_cmd("command -v protoc-c >/dev/null") != 0) cr_skip_test("protoc-c absent (Debian: protobuf-c-compiler)");
  char *dir = test_tmpdir("tfproto");
  char *cmd = xasprintf("cd %s/runtime && protoc-c --c_out=%s interop/tf_bundle.proto && "
                        "cmp %s/interop/tf_bundle.pb-c.c interop/tf_bundle.pb-c.c && "
                        "cmp %s/interop/tf_bundle.pb-c.h interop/tf_bundle.pb-c.h", test_root(), dir, dir, dir);
  cr_expect_eq(run_cmd(cmd), 0, "runtime/interop/tf_bundle.pb-c.{c,h} are stale: %s", cmd);
  rm_rf(dir);
  free(dir), free(cmd);
}

// Every input kept under tests/fixtures/fuzz/tf_index/ (seeds: the fixtures' index files and
// entries; and what the fuzzer found) through the harness's entry point (tests/fuzz/fuzz_tf.h).
Test(tf_bundle, fuzz_inputs_replay) {
  cr_expect_gt(fuzz_replay_dir("tf_index", fuzz_tf_index_one), 5);
}
