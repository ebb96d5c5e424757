// prepare: the embedded synthetic set (deterministic, balanced) and `igpt prepare` end to end on
// crafted CIFAR-10 / STL-10 members, on broken members, and on Debian's Fashion-MNIST files.
#include "testutil.h"
#include "datasets/decode.h"
#include "datasets/synthetic.h"
#include "base/npy.h"
#include "base/safetensors.h"
#include <jansson.h>
#include <zlib.h>

Test(synthetic, same_seed_same_bytes_balanced) {
  image_set a, b, c, small;
  synthetic_generate(&a, 200, 32, 7, 1);
  synthetic_generate(&b, 200, 32, 7, 1);
  synthetic_generate(&c, 200, 32, 8, 1);
  synthetic_generate(&small, 50, 32, 7, 1);
  size_t bytes = 200 * 32 * 32 * 3;
  cr_assert_eq(memcmp(a.pixels, b.pixels, bytes), 0, "same seed, same bytes");
  cr_assert_eq(memcmp(a.labels, b.labels, 200 * 4), 0);
  cr_assert_neq(memcmp(a.pixels, c.pixels, bytes), 0, "another seed, other images");
  cr_assert_eq(memcmp(a.pixels, small.pixels, 50 * 32 * 32 * 3), 0, "a smaller set is a prefix");
  int64_t *cnt = label_counts(a.labels, a.n, SYNTH_CLASSES);
  for (int k = 0; k < SYNTH_CLASSES; k++) cr_assert_eq(cnt[k], 20, "class %d: %lld", k, (long long)cnt[k]);
  free(cnt);
  // not degenerate: images of one class differ, and pixels use most of the range
  cr_assert_neq(memcmp(a.pixels, a.pixels + 10 * 32 * 32 * 3, 32 * 32 * 3), 0);
  int lo = 255, hi = 0;
  for (size_t i = 0; i < bytes; i++) { lo = a.pixels[i] < lo ? a.pixels[i] : lo; hi = a.pixels[i] > hi ? a.pixels[i] : hi; }
  cr_assert(lo < 20 && hi > 235, "pixel range %d..%d", lo, hi);
  image_set_free(&a);
  image_set_free(&b);
  image_set_free(&c);
  image_set_free(&small);
}

static json_t *load_meta(const char *dir, const char *sub) {
  char *p = xasprintf("%s/prepared/%s/meta.json", dir, sub);
  json_error_t e;
  json_t *m = json_load_file(p, 0, &e);
  cr_assert_not_null(m, "%s: %s", p, e.text);
  free(p);
  return m;
}

// A refused run published nothing at DIR/prepared/sub.
static void expect_unpublished(const char *dir, const char *sub) {
  char *p = xasprintf("%s/prepared/%s", dir, sub);
  cr_assert(!path_exists(p), "%s was published after a failure", p);
  free(p);
}

static int64_t count_at(json_t *meta, const char *split, int k) {
  return json_integer_value(json_array_get(json_object_get(json_object_get(meta, "label_counts"), split), k));
}

Test(prepare, synthetic_end_to_end_and_rerun) {
  char *dir = test_tmpdir("prep-syn"), *out;
  char *stale = xasprintf("%s/prepared/synthetic-32.tmp.999999999", dir);  // no such process
  cr_assert_eq(mkdir_p(stale), 0);
  int rc = igpt_in(dir, "prepare synthetic --n-train 300 --n-test 100 --seed 3 --json", &out);
  cr_assert(!path_exists(stale), "an interrupted run's directory is cleaned");
  free(stale);
  cr_assert_eq(rc, 0, "%s", out);
  cr_assert(strstr(out, "\"label_counts\""), "%s", out);
  free(out);
  json_t *m = load_meta(dir, "synthetic-32");
  cr_assert_eq(json_integer_value(json_object_get(json_object_get(m, "n"), "val")), 30);
  for (int k = 0; k < 10; k++) cr_assert_eq(count_at(m, "train", k), 27);
  cr_assert_eq(json_integer_value(json_object_get(json_object_get(m, "split"), "seed")), 3);
  json_decref(m);
  char *p = xasprintf("%s/prepared/synthetic-32/val.safetensors", dir);
  image_set v;
  cr_assert_eq(images_load(&v, p), 0, "%s", igpt_errmsg());
  cr_assert_eq(v.n, 30);
  image_set_free(&v);
  rc = igpt_in(dir, "prepare synthetic --n-train 300 --n-test 100 --seed 3", &out);
  cr_assert_eq(rc, 0, "%s", out);
  cr_assert(strstr(out, "already prepared"), "a rerun finds the work done: %s", out);
  free(out);
  cr_assert_eq(igpt_in(dir, "prepare igpt-cifar10 --size 48", &out), 2, "%s", out);
  free(out);
  cr_assert_eq(igpt_in(dir, "prepare synthetic --size 40", &out), 2, "%s", out);
  free(out);
  // 20 images of 10 classes leave no image for a 10% validation split: refused, not written empty
  cr_assert_eq(igpt_in(dir, "prepare synthetic --size 64 --n-train 20 --n-test 10", &out), 1, "%s", out);
  cr_assert(strstr(out, "the val split is empty"), "%s", out);
  free(out);
  expect_unpublished(dir, "synthetic-64");
  cr_assert_eq(igpt_in(dir, "prepare synthetic --size 64 --n-train 100 --n-test 10", &out), 0, "%s", out);
  free(out);
  free(p);
  p = xasprintf("%s/prepared/synthetic-64/test.safetensors", dir);
  cr_assert_eq(images_load(&v, p), 0, "%s", igpt_errmsg());
  cr_assert(v.n == 10 && v.h == 64 && v.w == 64);
  image_set_free(&v);
  cr_assert_eq(igpt_in(dir, "prepare nonesuch", &out), 2, "%s", out);
  free(out);
  cr_assert_eq(igpt_in(dir, "prepare --help", &out), 0, "%s", out);
  free(out);
  free(p);
  rm_rf(dir);
  free(dir);
}

static void write_file(const char *dir, const char *rel, const void *data, size_t len) {
  char *p = xasprintf("%s/%s", dir, rel), *d = xstrdup(p);
  *strrchr(d, '/') = 0;
  cr_assert_eq(mkdir_p(d), 0);
  cr_assert_eq(file_write_atomic(p, data, len), 0);
  free(p);
  free(d);
}

// DIR/registry.json describing the crafted files of set (the shipped registry sizes the real
// ones): an archive unpacked to top holding members of the given sizes, or (top NULL) gzip files
// whose decompressed content has the given sizes. Returns " --registry DIR/registry.json".
static char *crafted_registry(const char *dir, const char *set, const char *top, const char *const *names,
                              const int64_t *sizes, int n) {
  json_t *files = json_array(), *members = json_array();
  for (int i = 0; i < n; i++) {
    if (top) {
      json_array_append_new(members, json_pack("{s:s, s:I, s:n}", "path", names[i], "size", (json_int_t)sizes[i], "sha256"));
      continue;
    }
    json_array_append_new(files, json_pack("{s:s, s:[s], s:n, s:n, s:n, s:s, s:{s:I, s:n, s:n}}", "name", names[i],
                                           "mirrors", "file:///nonexistent", "size", "sha256", "md5", "format", "gzip",
                                           "decompressed", "size", (json_int_t)sizes[i], "sha256", "md5"));
  }
  if (top)
    json_array_append_new(files, json_pack("{s:s, s:[s], s:n, s:n, s:n, s:s, s:s, s:o}", "name", "crafted.tar.gz", "mirrors",
                                           "file:///nonexistent", "size", "sha256", "md5", "format", "tar.gz", "unpack",
                                           top, "members", members));
  else json_decref(members);
  json_t *r = json_pack("{s:s, s:{s:{s:s, s:s, s:o}}}", "format", "igpt-registry/1", "datasets", set, "kind", "download",
                        "description", "crafted by tests/test_prepare.c", "files", files);
  char *p = xasprintf("%s/registry.json", dir), *js = json_dumps(r, 0);
  cr_assert_eq(file_write_atomic(p, js, strlen(js)), 0);
  char *arg = xasprintf(" --registry %s", p);
  json_decref(r);
  free(js); free(p);
  return arg;
}

// "prepare ARGS" + the crafted registry option.
static int prepare_in(const char *dir, const char *args, const char *reg, char **out) {
  char *a = xasprintf("prepare %s%s", args, reg);
  int rc = igpt_in(dir, a, out);
  free(a);
  return rc;
}

// Six CIFAR-10 batches of 20 records (labels i % 10, image value = its label * 20 + batch), and
// a registry sizing them; returns the registry option.
static char *fake_cifar10(const char *dir) {
  const char *files[6] = {"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"};
  const char *members[6];
  int64_t sizes[6];
  char *rels[6];
  for (int f = 0; f < 6; f++) {
    rels[f] = xasprintf("cifar-10-batches-bin/%s.bin", files[f]);
    members[f] = rels[f];
    sizes[f] = 20 * 3073;
  }
  char *reg = crafted_registry(dir, "cifar10", "cifar-10-batches-bin", members, sizes, 6);
  for (int f = 0; f < 6; f++) free(rels[f]);
  for (int f = 0; f < 6; f++) {
    uint8_t *b = xmalloc(20 * 3073);
    for (int i = 0; i < 20; i++) {
      b[i * 3073] = (uint8_t)(i % 10);
      memset(b + i * 3073 + 1, (i % 10) * 20 + f, 3072);
    }
    char *rel = xasprintf("downloads/cifar10/cifar-10-batches-bin/%s.bin", files[f]);
    write_file(dir, rel, b, 20 * 3073);
    free(rel);
    free(b);
  }
  return reg;
}

Test(prepare, cifar10_crafted_members) {
  char *dir = test_tmpdir("prep-c10"), *out;
  char *reg = fake_cifar10(dir);
  int rc = prepare_in(dir, "cifar10 --size 48 --json", reg, &out);
  cr_assert_eq(rc, 0, "%s", out);
  free(out);
  json_t *m = load_meta(dir, "cifar10-48");
  for (int k = 0; k < 10; k++) {
    cr_assert_eq(count_at(m, "train", k), 9);  // 10 per class, 1 to val
    cr_assert_eq(count_at(m, "val", k), 1);
    cr_assert_eq(count_at(m, "test", k), 2);
  }
  cr_assert_str_eq(json_string_value(json_array_get(json_object_get(m, "classes"), 1)), "automobile");
  json_t *src = json_array_get(json_object_get(m, "sources"), 0);
  cr_assert_str_eq(json_string_value(json_object_get(src, "file")), "cifar-10-batches-bin/data_batch_1.bin");
  cr_assert_eq(strlen(json_string_value(json_object_get(src, "sha256"))), 64);
  json_decref(m);
  char *p = xasprintf("%s/prepared/cifar10-48/test.safetensors", dir);
  image_set t;
  cr_assert_eq(images_load(&t, p), 0, "%s", igpt_errmsg());
  cr_assert_eq(t.h, 48);
  for (int i = 0; i < t.n; i++)  // constant images stay constant through 32 -> 48
    cr_assert_eq(t.pixels[(size_t)i * 48 * 48 * 3 + 1000], t.labels[i] * 20 + 5);
  image_set_free(&t);
  free(p);
  // a truncated member: the error names it and its offset, and no output appears
  char *bad = xasprintf("%s/downloads/cifar10/cifar-10-batches-bin/data_batch_3.bin", dir);
  cr_assert_eq(truncate(bad, 20 * 3073 - 1), 0);
  rc = prepare_in(dir, "cifar10 --size 32", "", &out);  // the shipped registry: not a real batch
  cr_assert_eq(rc, 1, "%s", out);
  cr_assert(strstr(out, "data_batch_1.bin: 61460 bytes, the registry") && strstr(out, "expects 30730000"), "%s", out);
  free(out);
  rc = prepare_in(dir, "cifar10 --size 32", reg, &out);
  cr_assert_eq(rc, 1, "%s", out);
  cr_assert(strstr(out, "data_batch_3.bin: 61459 bytes") && strstr(out, "expects 61460 (truncated)"), "%s", out);
  free(out);
  // cut at a record boundary, it still decodes: the registry's size refuses it
  cr_assert_eq(truncate(bad, 19 * 3073), 0);
  rc = prepare_in(dir, "cifar10 --size 32", reg, &out);
  cr_assert_eq(rc, 1, "a batch cut at a record boundary was accepted: %s", out);
  cr_assert(strstr(out, "data_batch_3.bin: 58387 bytes") && strstr(out, "expects 61460 (truncated)") &&
            strstr(out, "igpt fetch cifar10"), "%s", out);
  free(out);
  expect_unpublished(dir, "cifar10-32");
  unlink(bad);
  cr_assert_eq(mkdir_p(bad), 0);  // a directory where the member should be
  rc = prepare_in(dir, "cifar10", reg, &out);
  cr_assert_eq(rc, 1);
  cr_assert(strstr(out, "data_batch_3.bin: a directory, expected a file"), "%s", out);
  free(out);
  rm_rf(bad);
  rc = prepare_in(dir, "cifar10", reg, &out);
  cr_assert_eq(rc, 1);
  cr_assert(strstr(out, "data_batch_3.bin: missing") && strstr(out, "igpt fetch cifar10"), "%s", out);
  free(out);
  free(bad);
  free(reg);
  rm_rf(dir);
  free(dir);
}

Test(prepare, stl10_crafted_members_96_to_32) {
  char *dir = test_tmpdir("prep-stl"), *out;
  const size_t rec = 3 * 96 * 96;
  for (int s = 0; s < 2; s++) {
    int n = s ? 10 : 100;  // 10 a class, so a 10% validation split is not empty
    uint8_t *x = xmalloc(rec * n), *y = xmalloc(n);
    for (int i = 0; i < n; i++) {
      y[i] = (uint8_t)(i % 10 + 1);
      for (size_t j = 0; j < rec; j++) x[i * rec + j] = (uint8_t)(j % 96 < 48 ? 10 * (i % 10) : 200);  // left/top halves
    }
    write_file(dir, s ? "downloads/stl10/stl10_binary/test_X.bin" : "downloads/stl10/stl10_binary/train_X.bin", x, rec * n);
    write_file(dir, s ? "downloads/stl10/stl10_binary/test_y.bin" : "downloads/stl10/stl10_binary/train_y.bin", y, n);
    free(x);
    free(y);
  }
  const char *members[] = {"stl10_binary/train_X.bin", "stl10_binary/train_y.bin", "stl10_binary/test_X.bin",
                           "stl10_binary/test_y.bin", "stl10_binary/unlabeled_X.bin"};
  const int64_t sizes[] = {100 * (int64_t)rec, 100, 10 * (int64_t)rec, 10, 3 * (int64_t)rec};
  char *reg = crafted_registry(dir, "stl10", "stl10_binary", members, sizes, 5);
  int rc = prepare_in(dir, "stl10 --json", reg, &out);
  cr_assert_eq(rc, 0, "%s", out);
  free(out);
  char *p = xasprintf("%s/prepared/stl10-32/test.safetensors", dir);
  image_set t;
  cr_assert_eq(images_load(&t, p), 0, "%s", igpt_errmsg());
  cr_assert_eq(t.n, 10);
  cr_assert_eq(t.labels[3], 3);
  // column-major storage: the first 48 bytes of a column are its top rows, so the top half is dark
  cr_assert_eq(t.pixels[(3 * 32 * 32 + 0 * 32 + 20) * 3], 30);
  cr_assert_eq(t.pixels[(3 * 32 * 32 + 20 * 32 + 0) * 3], 200);
  image_set_free(&t);
  free(p);
  // --unlabeled: unlabeled_X.bin streamed in chunks; a truncated one is refused with its offset
  uint8_t *u = xmalloc(3 * rec);
  for (size_t j = 0; j < 3 * rec; j++) u[j] = (uint8_t)(j / rec * 50 + 7);
  write_file(dir, "downloads/stl10/stl10_binary/unlabeled_X.bin", u, 3 * rec - 5);
  rc = prepare_in(dir, "stl10 --unlabeled --size 48", reg, &out);
  cr_assert_eq(rc, 1, "%s", out);
  cr_assert(strstr(out, "unlabeled_X.bin") && strstr(out, "byte offset 55296"), "%s", out);
  free(out);
  write_file(dir, "downloads/stl10/stl10_binary/unlabeled_X.bin", u, 3 * rec);
  rc = prepare_in(dir, "stl10 --unlabeled --size 48 --json", reg, &out);
  cr_assert_eq(rc, 0, "%s", out);
  cr_assert(strstr(out, "\"unlabeled\":3"), "%s", out);
  free(out);
  p = xasprintf("%s/prepared/stl10-48/unlabeled.safetensors", dir);
  cr_assert_eq(images_load(&t, p), 0, "%s", igpt_errmsg());
  cr_assert_eq(t.n, 3);
  cr_assert_eq(t.h, 48);
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(t.labels[i], -1);
    cr_assert_eq(t.pixels[(size_t)i * 48 * 48 * 3 + 100], i * 50 + 7);
  }
  image_set_free(&t);
  free(p);
  free(u);
  free(reg);
  rm_rf(dir);
  free(dir);
}

// One crafted Fashion-MNIST split: n 28x28 images (value label * 20, labels i % 10) as IDX gzip
// files under downloads/fashion-mnist/; the images file in two gzip members (as gzip -d and
// `cat a.gz b.gz` make them), then tail (may be NULL) after the last member.
static void fake_fashion_split(const char *dir, const char *img, const char *lab, int n, const char *tail) {
  size_t ilen = 16 + (size_t)n * 784, llen = 8 + (size_t)n;
  uint8_t *raw = xcalloc(ilen, 1), *lraw = xcalloc(llen, 1);
  const uint32_t ih[4] = {0x803, (uint32_t)n, 28, 28}, lh[2] = {0x801, (uint32_t)n};
  for (int k = 0; k < 16; k++) raw[k] = (uint8_t)(ih[k / 4] >> (24 - 8 * (k % 4)));
  for (int k = 0; k < 8; k++) lraw[k] = (uint8_t)(lh[k / 4] >> (24 - 8 * (k % 4)));
  for (int i = 0; i < n; i++) {
    memset(raw + 16 + (size_t)i * 784, (i % 10) * 20, 784);
    lraw[8 + i] = (uint8_t)(i % 10);
  }
  char *d = xasprintf("%s/downloads/fashion-mnist", dir), *ip = xasprintf("%s/%s", d, img), *lp = xasprintf("%s/%s", d, lab);
  cr_assert_eq(mkdir_p(d), 0);
  const char *modes[2] = {"wb", "ab"};  // "ab": gzopen appends a new member
  for (int m = 0; m < 2; m++) {
    gzFile g = gzopen(ip, modes[m]);
    size_t from = m ? ilen / 2 : 0, to = m ? ilen : ilen / 2;
    cr_assert(g && gzwrite(g, raw + from, (unsigned)(to - from)) == (int)(to - from) && gzclose(g) == Z_OK);
  }
  if (tail) {
    FILE *f = fopen(ip, "ab");
    cr_assert(f && fwrite(tail, 1, strlen(tail), f) == strlen(tail) && fclose(f) == 0);
  }
  gzFile g = gzopen(lp, "wb");
  cr_assert(g && gzwrite(g, lraw, (unsigned)llen) == (int)llen && gzclose(g) == Z_OK);
  free(raw); free(lraw); free(d); free(ip); free(lp);
}

// A multi-member gzip file verifies in fetch and verify, so prepare decodes every member too;
// bytes after the last member are an error naming the file and offset.
Test(prepare, fashion_mnist_multi_member_gzip) {
  char *dir = test_tmpdir("prep-gz"), *out;
  const char *names[] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                         "t10k-labels-idx1-ubyte.gz"};
  const int64_t sizes[] = {16 + 100 * 784, 8 + 100, 16 + 10 * 784, 8 + 10};
  char *reg = crafted_registry(dir, "fashion-mnist", NULL, names, sizes, 4);
  fake_fashion_split(dir, names[0], names[1], 100, NULL);
  fake_fashion_split(dir, names[2], names[3], 10, NULL);
  cr_assert_eq(prepare_in(dir, "fashion-mnist --json", reg, &out), 0, "%s", out);
  free(out);
  json_t *m = load_meta(dir, "fashion-mnist-32");
  for (int k = 0; k < 10; k++) {
    cr_assert_eq(count_at(m, "train", k) + count_at(m, "val", k), 10, "class %d: both members decoded", k);
    cr_assert_eq(count_at(m, "test", k), 1);
  }
  json_decref(m);
  fake_fashion_split(dir, names[2], names[3], 10, "JUNKJUNK");
  cr_assert_eq(prepare_in(dir, "fashion-mnist --force", reg, &out), 1, "trailing garbage accepted: %s", out);
  cr_assert(strstr(out, "t10k-images-idx3-ubyte.gz: trailing bytes after the last gzip member at byte offset"), "%s", out);
  free(out);
  free(reg);
  rm_rf(dir);
  free(dir);
}

// tokenize makes a fresh --out folder, and an output it cannot create is named as asked for.
Test(prepare, tokenize_creates_its_output_folder) {
  char *dir = test_tmpdir("prep-tok"), *out;
  cr_assert_eq(igpt_in(dir, "prepare synthetic --n-train 100 --n-test 10 --size 16", &out), 0, "%s", out);
  free(out);
  float clusters[4 * 3] = {-1, -1, -1, 1, 1, 1, -1, 1, -1, 1, -1, 1};
  char *pal = xasprintf("%s/palette.safetensors", dir);
  st_writer *w = st_writer_new();
  st_writer_add(w, "clusters", ST_F32, 2, (int64_t[]){4, 3}, clusters);
  cr_assert_eq(st_writer_save(w, pal), 0, "%s", igpt_errmsg());
  st_writer_free(w);
  char *args = xasprintf("tokenize --palette %s --images %s/prepared/synthetic-16/test.safetensors --out %s/new/sub/t.safetensors",
                         pal, dir, dir);
  cr_assert_eq(igpt_in(dir, args, &out), 0, "%s", out);
  free(out);
  free(args);
  char *made = xasprintf("%s/new/sub/t.safetensors", dir), *longname = xmalloc(251);
  cr_assert(path_exists(made));
  memset(longname, 'n', 250);  // a name the file system takes, but not with ".tmp.PID" after it
  longname[250] = 0;
  args = xasprintf("tokenize --palette %s --images %s/prepared/synthetic-16/test.safetensors --out %s/%s", pal, dir, dir,
                   longname);
  cr_assert_eq(igpt_in(dir, args, &out), 1, "%s", out);
  char *want = xasprintf("%s/%s: cannot create", dir, longname);
  cr_assert(strstr(out, want) && !strstr(out, ".tmp."), "%s", out);
  free(out); free(args); free(want); free(made); free(longname); free(pal);
  rm_rf(dir);
  free(dir);
}

// Per-class counts straight from an IDX label file (gzip): the reference for the split's counts.
static void idx_label_counts(const char *path, int64_t counts[10], int64_t *n) {
  uint8_t *gz, *raw;
  size_t glen, len;
  cr_assert_eq(file_read_all(path, &gz, &glen), 0, "%s", igpt_errmsg());
  cr_assert_eq(gunzip_buf(gz, glen, path, 1 << 24, &raw, &len), 0, "%s", igpt_errmsg());
  cr_assert(len > 8 && raw[3] == 0x01, "%s: not an IDX label file", path);
  memset(counts, 0, 10 * sizeof(int64_t));
  for (size_t i = 8; i < len; i++) counts[raw[i]]++;
  *n = (int64_t)len - 8;
  free(gz);
  free(raw);
}

// With no network: `igpt fetch` takes Debian's dataset-fashion-mnist files through the registry's
// file:// mirror, `igpt prepare` decodes them; the counts agree with the IDX label files.
Test(prepare, fashion_mnist_fetch_then_prepare_offline, .timeout = 120) {
  const char *deb = "/usr/share/datasets/fashion-mnist";
  char *probe = xasprintf("%s/train-labels-idx1-ubyte.gz", deb);
  if (!path_exists(probe)) { free(probe); cr_skip_test("dataset-fashion-mnist is not installed (%s)", deb); }
  char *dir = test_tmpdir("prep-fm"), *out, *reg = repo_path("datasets/registry.json");
  char *args = xasprintf("fetch fashion-mnist --no-progress --registry %s", reg);
  int rc = igpt_in(dir, args, &out);
  cr_assert_eq(rc, 0, "igpt fetch: %s", out);
  free(out);
  rc = igpt_in(dir, "prepare fashion-mnist --json", &out);
  cr_assert_eq(rc, 0, "igpt prepare: %s", out);
  free(out);
  int64_t train[10], test[10], ntr, nte;
  idx_label_counts(probe, train, &ntr);
  char *t10k = xasprintf("%s/t10k-labels-idx1-ubyte.gz", deb);
  idx_label_counts(t10k, test, &nte);
  cr_assert_eq(ntr, 60000);
  cr_assert_eq(nte, 10000);
  json_t *m = load_meta(dir, "fashion-mnist-32");
  cr_assert_eq(json_integer_value(json_object_get(json_object_get(m, "n"), "val")), 6000);
  for (int k = 0; k < 10; k++) {
    cr_assert_eq(train[k], 6000, "the IDX file has %lld of class %d", (long long)train[k], k);
    cr_assert_eq(count_at(m, "train", k) + count_at(m, "val", k), train[k], "class %d", k);
    cr_assert_eq(count_at(m, "val", k), 600);
    cr_assert_eq(count_at(m, "test", k), test[k]);
  }
  json_t *src = json_array_get(json_object_get(m, "sources"), 0);
  cr_assert_str_eq(json_string_value(json_object_get(src, "file")), "train-images-idx3-ubyte.gz");
  cr_assert_not_null(json_object_get(src, "content_sha256"));
  json_decref(m);
  rm_rf(dir);
  free(t10k);
  free(args);
  free(reg);
  free(probe);
  free(dir);
}

// The official pre-quantised arrays keep their split and become tokens files.
// Split s of the official arrays: n rows of T tokens, one-hot labels of C classes.
static void write_igpt_split(const char *dl, int s, int n, int T, int C) {
  const char *code[3] = {"tr", "va", "te"};
  int64_t *x = xmalloc(sizeof(int64_t) * (size_t)(n * T + 1));
  float *y = xcalloc((size_t)n * C + 1, sizeof(float));
  for (int i = 0; i < n * T; i++) x[i] = (i * 37 + s) % 512;
  for (int i = 0; i < n; i++) y[i * C + (i + s) % C] = 1;
  char *px = xasprintf("%s/cifar10_%sX.npy", dl, code[s]), *py = xasprintf("%s/cifar10_%sY.npy", dl, code[s]);
  cr_assert_eq(npy_write(px, ST_I64, 2, (int64_t[]){n, T}, x), 0, "%s", igpt_errmsg());
  cr_assert_eq(npy_write(py, ST_F32, 2, (int64_t[]){n, C}, y), 0, "%s", igpt_errmsg());
  free(x); free(y); free(px); free(py);
}

Test(prepare, igpt_npy_to_tokens_files) {
  char *dir = test_tmpdir("prep-npy"), *out;
  char *dl = xasprintf("%s/downloads/igpt-cifar10", dir);
  cr_assert_eq(mkdir_p(dl), 0);
  int n[3] = {6, 3, 4};
  for (int s = 0; s < 3; s++) write_igpt_split(dl, s, n[s], 1024, 10);
  int rc = igpt_in(dir, "prepare igpt-cifar10 --json", &out);
  cr_assert_eq(rc, 0, "%s", out);
  free(out);
  char *p = xasprintf("%s/prepared/igpt-cifar10-32/val.safetensors", dir);
  st_file f;
  cr_assert_eq(st_open(&f, p), 0, "%s", igpt_errmsg());
  const st_tensor *t = st_expect(&f, "tokens", ST_U16, 2, (int64_t[]){3, 1024});
  const st_tensor *l = st_expect(&f, "labels", ST_I32, 1, (int64_t[]){3});
  cr_assert(t && l, "%s", igpt_errmsg());
  const uint16_t *tok = t->data;
  const int32_t *lab = l->data;
  for (int i = 0; i < 3 * 1024; i++) cr_assert_eq(tok[i], (i * 37 + 1) % 512);
  for (int i = 0; i < 3; i++) cr_assert_eq(lab[i], (i + 1) % 10);
  st_close(&f);
  json_t *m = load_meta(dir, "igpt-cifar10-32");
  cr_assert_str_eq(json_string_value(json_object_get(m, "kind")), "tokens");
  cr_assert_eq(json_integer_value(json_object_get(json_object_get(m, "n"), "test")), 4);
  json_decref(m);
  free(p);
  free(dl);
  rm_rf(dir);
  free(dir);
}

// igpt-cifar10 is 32x32 images (T = 1024) of 10 classes in every split: other shapes, a split of
// another width, other label widths and empty splits are refused, naming the file.
Test(prepare, igpt_tokens_shapes_checked_against_the_data_set) {
  char *dir = test_tmpdir("prep-npy-bad"), *out;
  char *dl = xasprintf("%s/downloads/igpt-cifar10", dir);
  cr_assert_eq(mkdir_p(dl), 0);
  static const struct { int s, n, T, C; const char *frag; } bad[] = {
      {0, 6, 256, 10, "cifar10_trX.npy: sequences of 256 tokens, expected 1024"},   // 16x16 everywhere
      {2, 4, 1023, 10, "cifar10_teX.npy: sequences of 1023 tokens, expected 1024"},  // one split narrower
      {1, 3, 1024, 12, "cifar10_vaY.npy: one-hot labels of 12 classes, expected 10"},
      {1, 0, 1024, 10, "cifar10_vaX.npy: no sequences: the val split is empty"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    for (int s = 0; s < 3; s++) write_igpt_split(dl, s, 3 + s, 1024, 10);
    write_igpt_split(dl, bad[k].s, bad[k].n, bad[k].T, bad[k].C);
    cr_assert_eq(igpt_in(dir, "prepare igpt-cifar10 --force", &out), 1, "case %zu accepted: %s", k, out);
    cr_assert(strstr(out, bad[k].frag), "case %zu: no '%s' in: %s", k, bad[k].frag, out);
    free(out);
  }
  expect_unpublished(dir, "igpt-cifar10-32");
  free(dl);
  rm_rf(dir);
  free(dir);
}

// The smoke scale's options: --size 16 (area resize down), and --n-train/--n-test keeping the
// first N images of a fetched set's train and test files (a settings change, so a rebuild).
Test(prepare, size16_and_first_n_images_of_a_fetched_set) {
  char *dir = test_tmpdir("prep-n16"), *out;
  char *reg = fake_cifar10(dir);  // 100 train, 20 test, labels i % 10
  int rc = prepare_in(dir, "cifar10 --size 16 --n-train 50 --n-test 10 --json", reg, &out);
  cr_assert_eq(rc, 0, "%s", out);
  free(out);
  json_t *m = load_meta(dir, "cifar10-16");
  for (int k = 0; k < 10; k++) {
    cr_assert_eq(count_at(m, "train", k) + count_at(m, "val", k), 5, "class %d: the first 50 are 5 per class", k);
    cr_assert_eq(count_at(m, "test", k), 1);
  }
  json_t *sub = json_object_get(m, "subset");  // --n-train counts before the split, and says so
  cr_assert_eq(json_integer_value(json_object_get(sub, "n_train")), 50);
  cr_assert(strstr(json_string_value(json_object_get(sub, "counted")), "before the validation split"));
  json_decref(m);
  char *p = xasprintf("%s/prepared/cifar10-16/test.safetensors", dir);
  image_set t;
  cr_assert_eq(images_load(&t, p), 0, "%s", igpt_errmsg());
  cr_assert(t.n == 10 && t.h == 16 && t.w == 16);
  for (int i = 0; i < t.n; i++)  // constant images stay constant through 32 -> 16
    cr_assert_eq(t.pixels[(size_t)i * 16 * 16 * 3 + 100], t.labels[i] * 20 + 5);
  image_set_free(&t);
  free(p);
  rc = prepare_in(dir, "cifar10 --size 16 --json", reg, &out);  // all images: other settings, rebuilt
  cr_assert_eq(rc, 0, "%s", out);
  cr_assert(!strstr(out, "already prepared"), "%s", out);
  free(out);
  cr_assert_eq(igpt_in(dir, "prepare cifar10 --size 8", &out), 2, "%s", out);
  free(out);
  cr_assert_eq(igpt_in(dir, "prepare synthetic --size 16 --n-train 100 --n-test 10", &out), 0, "%s", out);
  free(out);
  free(reg);
  rm_rf(dir);
  free(dir);
}
