// prepare: reads a fetched data set's members from $IGPT_DATA/downloads/<name>/, decodes them,
// centre-crops and area-resizes to the chosen size, splits a class-stratified validation set off
// train, and writes $IGPT_DATA/prepared/<name>-<size>/{train,val,test}.safetensors + meta.json,
// built under a temporary name and renamed into place. The official iGPT .npy sets keep their own
// split and become tokens files. `synthetic` is generated, nothing read. Every file read is held
// to what the registry knows of it (size, sha256), so a member cut at a record boundary, which
// decodes, is still refused; an empty split is refused.
#include "datasets/prepare.h"
#include "datasets/decode.h"
#include "datasets/registry.h"
#include "datasets/synthetic.h"
#include "datasets/unpack.h"
#include "base/util.h"
#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#define MAX_GZ_OUT (1u << 30)  // decompressed IDX members stay well below this

typedef struct {
  const char *name;
  char *src_dir;      // downloads/<name>
  json_t *sources;    // [{file, bytes, sha256}]
  int64_t n_train, n_test;  // synthetic: the set sizes; others: keep the first N (0: all)
  uint64_t seed;
  int size;           // synthetic: drawn at this size
  int unlabeled;      // stl10: also unlabeled_X.bin (100000 images) into unlabeled.safetensors
  const reg_dataset *reg;  // what the registry knows of the files (NULL: synthetic)
  const char *reg_path;
} prep_ctx;

// What the registry knows of downloads/<name>/rel: a member of an archive, or a file itself
// (for a gzip file with authoritative content, the decompressed bytes: *content is set).
static const reg_digest *registry_digest(const prep_ctx *c, const char *rel, bool *content) {
  *content = false;
  for (int i = 0; c->reg && i < c->reg->n_files; i++) {
    const reg_file *f = &c->reg->files[i];
    for (int k = 0; k < f->n_members; k++)
      if (!strcmp(f->members[k].path, rel)) return &f->members[k].want;
    if (!strcmp(f->name, rel)) {
      *content = f->has_decompressed;
      return f->has_decompressed ? &f->decompressed : &f->want;
    }
  }
  return NULL;
}

// Holds len bytes of sha256 hex to the registry's size and sha256 of rel (content: the
// decompressed bytes of a gzip file). 0, or -1 naming the file, the registry and what to do.
static int check_source(const prep_ctx *c, const char *rel, bool content, size_t len, const char *hex) {
  bool is_content;
  const reg_digest *d = registry_digest(c, rel, &is_content);
  if (!d || is_content != content) return 0;
  const char *what = content ? " decompressed" : "";
  if (d->size >= 0 && (int64_t)len != d->size)
    return igpt_err("%s/%s:%s %zu bytes, the registry (%s) expects %lld (%s); run `igpt fetch %s` again", c->src_dir, rel,
                    what, len, c->reg_path, (long long)d->size, (int64_t)len < d->size ? "truncated" : "too long", c->name);
  if (d->sha256[0] && strcmp(d->sha256, hex))
    return igpt_err("%s/%s:%s sha256 %s, the registry (%s) expects %s; run `igpt fetch %s` again", c->src_dir, rel, what,
                    hex, c->reg_path, d->sha256, c->name);
  return 0;
}

// Reads DIR/rel whole, records its size and digest in ctx->sources.
static int read_member(prep_ctx *c, const char *rel, uint8_t **buf, size_t *len) {
  char *path = xasprintf("%s/%s", c->src_dir, rel);
  if (!path_exists(path)) {
    int rc = igpt_err("%s: missing; run `igpt fetch %s` first (or pass --data DIR)", path, c->name);
    free(path);
    return rc;
  }
  log_info("prepare %s: reading %s", c->name, rel);
  int rc = file_read_all(path, buf, len);
  free(path);
  if (rc != 0) return -1;
  char hex[65];
  sha256_hex(*buf, *len, hex);
  if (check_source(c, rel, false, *len, hex) != 0) {
    free(*buf);
    return -1;
  }
  json_array_append_new(c->sources, json_pack("{s:s, s:I, s:s}", "file", rel, "bytes", (json_int_t)*len,
                                              "sha256", hex));
  return 0;
}

// Names from a text file in the archive (one a line) when present, else the built-in list.
static json_t *class_names(prep_ctx *c, const char *rel, const char *const *builtin, int n) {
  json_t *names = json_array();
  char *path = rel ? xasprintf("%s/%s", c->src_dir, rel) : NULL;
  uint8_t *buf;
  size_t len;
  if (path && path_exists(path) && file_read_all(path, &buf, &len) == 0) {
    char *save, *line = strtok_r((char *)buf, "\r\n", &save);
    for (; line; line = strtok_r(NULL, "\r\n", &save))
      if (*line) json_array_append_new(names, json_string(line));
    free(buf);
    if ((int)json_array_size(names) != n) {
      log_warn("%s: %zu class names, expected %d; using the built-in names", path, json_array_size(names), n);
      json_array_clear(names);
    }
  }
  free(path);
  if (!json_array_size(names))
    for (int i = 0; i < n; i++) json_array_append_new(names, json_string(builtin[i]));
  return names;
}

static const char *const cifar10_names[10] = {"airplane", "automobile", "bird", "cat", "deer",
                                              "dog", "frog", "horse", "ship", "truck"};
static const char *const stl10_names[10] = {"airplane", "bird", "car", "cat", "deer",
                                            "dog", "horse", "monkey", "ship", "truck"};
static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
static const char *const cifar100_names[100] = {
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm"};

typedef int (*decode_fn)(const uint8_t *, size_t, const char *, image_set *);

// Decodes each listed member with fn and concatenates them.
static int load_members(prep_ctx *c, const char *const *rels, int n, decode_fn fn, image_set *out) {
  memset(out, 0, sizeof *out);
  for (int i = 0; i < n; i++) {
    uint8_t *buf;
    size_t len;
    image_set part;
    if (read_member(c, rels[i], &buf, &len) != 0) goto fail;
    int rc = fn(buf, len, rels[i], &part);
    free(buf);
    if (rc != 0) goto fail;
    rc = image_set_append(out, &part);
    image_set_free(&part);
    if (rc != 0) goto fail;
  }
  return 0;
fail:
  image_set_free(out);
  return -1;
}

static int load_cifar10(prep_ctx *c, image_set *train, image_set *test, json_t **names) {
  static const char *const tr[] = {"cifar-10-batches-bin/data_batch_1.bin", "cifar-10-batches-bin/data_batch_2.bin",
                                   "cifar-10-batches-bin/data_batch_3.bin", "cifar-10-batches-bin/data_batch_4.bin",
                                   "cifar-10-batches-bin/data_batch_5.bin"};
  static const char *const te[] = {"cifar-10-batches-bin/test_batch.bin"};
  if (load_members(c, tr, 5, decode_cifar10, train) != 0) return -1;
  if (load_members(c, te, 1, decode_cifar10, test) != 0) { image_set_free(train); return -1; }
  *names = class_names(c, "cifar-10-batches-bin/batches.meta.txt", cifar10_names, 10);
  return 0;
}

static int cifar100_fine(const uint8_t *buf, size_t len, const char *name, image_set *out) {
  return decode_cifar100(buf, len, name, out, NULL);
}

static int load_cifar100(prep_ctx *c, image_set *train, image_set *test, json_t **names) {
  static const char *const tr[] = {"cifar-100-binary/train.bin"}, *const te[] = {"cifar-100-binary/test.bin"};
  if (load_members(c, tr, 1, cifar100_fine, train) != 0) return -1;
  if (load_members(c, te, 1, cifar100_fine, test) != 0) { image_set_free(train); return -1; }
  *names = class_names(c, "cifar-100-binary/fine_label_names.txt", cifar100_names, 100);
  return 0;
}

static int load_stl10_split(prep_ctx *c, const char *xrel, const char *yrel, image_set *out) {
  uint8_t *buf;
  size_t len;
  if (read_member(c, xrel, &buf, &len) != 0) return -1;
  int rc = decode_stl10_images(buf, len, xrel, out);
  free(buf);
  if (rc != 0) return -1;
  if (read_member(c, yrel, &buf, &len) != 0 || (rc = decode_stl10_labels(buf, len, yrel, out), free(buf), rc) != 0) {
    image_set_free(out);
    return -1;
  }
  return 0;
}

static int load_stl10(prep_ctx *c, image_set *train, image_set *test, json_t **names) {
  if (load_stl10_split(c, "stl10_binary/train_X.bin", "stl10_binary/train_y.bin", train) != 0) return -1;
  if (load_stl10_split(c, "stl10_binary/test_X.bin", "stl10_binary/test_y.bin", test) != 0) {
    image_set_free(train);
    return -1;
  }
  *names = class_names(c, "stl10_binary/class_names.txt", stl10_names, 10);
  return 0;
}

// Reads and gunzips one IDX member; the decompressed content's digest is recorded too, since
// differently compressed copies (Debian's, upstream's) hold the same bytes.
static int read_gz_member(prep_ctx *c, const char *rel, uint8_t **out, size_t *out_len) {
  uint8_t *gz;
  size_t gz_len;
  if (read_member(c, rel, &gz, &gz_len) != 0) return -1;
  int rc = gunzip_buf(gz, gz_len, rel, MAX_GZ_OUT, out, out_len);
  free(gz);
  if (rc != 0) return -1;
  char hex[65];
  sha256_hex(*out, *out_len, hex);
  if (check_source(c, rel, true, *out_len, hex) != 0) {
    free(*out);
    return -1;
  }
  json_object_set_new(json_array_get(c->sources, json_array_size(c->sources) - 1), "content_sha256", json_string(hex));
  return 0;
}

static int load_idx_pair(prep_ctx *c, const char *xrel, const char *yrel, image_set *out) {
  uint8_t *buf;
  size_t len;
  if (read_gz_member(c, xrel, &buf, &len) != 0) return -1;
  int rc = decode_idx_images(buf, len, xrel, out);
  free(buf);
  if (rc != 0) return -1;
  if (read_gz_member(c, yrel, &buf, &len) != 0 || (rc = decode_idx_labels(buf, len, yrel, out, 10), free(buf), rc) != 0) {
    image_set_free(out);
    return -1;
  }
  return 0;
}

static int load_fashion(prep_ctx *c, image_set *train, image_set *test, json_t **names) {
  if (load_idx_pair(c, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", train) != 0) return -1;
  if (load_idx_pair(c, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", test) != 0) {
    image_set_free(train);
    return -1;
  }
  *names = class_names(c, NULL, fashion_names, 10);
  return 0;
}

static int load_synthetic(prep_ctx *c, image_set *train, image_set *test, json_t **names) {
  log_info("prepare synthetic: generating %lld train and %lld test images (seed %llu)",
           (long long)c->n_train, (long long)c->n_test, (unsigned long long)c->seed);
  synthetic_generate(train, c->n_train, c->size, c->seed, 1);  // drawn at the output size
  synthetic_generate(test, c->n_test, c->size, c->seed, 2);
  *names = class_names(c, NULL, synthetic_class_names, SYNTH_CLASSES);
  return 0;
}

// Downsampled ImageNet (Chrabaszcz et al. 2017): the pickled batches train_data_batch_1..10 and
// val_data are read straight out of the manually downloaded zips (3 to 16 GB unpacked, never
// written to disk), decoded one at a time (decode_pickle.c), and joined in batch order; val_data
// is the test split. Its labels 1..1000 (map_clsloc.txt's order) become classes 0..999.
#define IMAGENET_MEMBER_MAX ((size_t)8 << 30)  // a 64x64 batch is about 1.6 GB (3 GB as protocol-2 text)
typedef struct {
  prep_ctx *c;
  const char *zip;
  int px;
  image_set batch[11];  // [0]: val_data, [k]: train_data_batch_k
  int have[11];
} imagenet_ctx;

static int imagenet_slot(const char *entry) {
  const char *b = strrchr(entry, '/');
  b = b ? b + 1 : entry;
  if (!strcmp(b, "val_data")) return 0;
  if (strncmp(b, "train_data_batch_", 17) || !b[17]) return -1;
  char *end;
  long k = strtol(b + 17, &end, 10);
  return !*end && k >= 1 && k <= 10 ? (int)k : -1;
}

static int imagenet_want(void *ctx, const char *entry) { (void)ctx; return imagenet_slot(entry) >= 0; }

static int imagenet_member(void *ctx, const char *entry, const uint8_t *buf, size_t len) {
  imagenet_ctx *x = ctx;
  int k = imagenet_slot(entry);
  if (x->have[k]) return igpt_err("%s: %s appears a second time (the zips overlap?)", x->zip, entry);
  char *name = xasprintf("%s:%s", x->zip, entry), hex[65];
  log_info("prepare %s: decoding %s (%.0f MB)", x->c->name, name, len / 1e6);
  sha256_hex(buf, len, hex);
  json_array_append_new(x->c->sources, json_pack("{s:s, s:I, s:s}", "file", name, "bytes", (json_int_t)len, "sha256", hex));
  int rc = decode_imagenet_batch(buf, len, name, x->px, &x->batch[k]);
  free(name);
  if (rc == 0) x->have[k] = 1;
  return rc;
}

// Moves slots [from, to] into one set, freeing each as it is copied (one allocation, so the
// peak is the joined set plus what is not yet copied).
static void imagenet_join(imagenet_ctx *x, int from, int to, image_set *out) {
  int64_t n = 0;
  for (int k = from; k <= to; k++) n += x->batch[k].n;
  image_set_alloc(out, n, x->px, x->px, 1000);
  size_t per = (size_t)x->px * x->px * 3;
  int64_t at = 0;
  for (int k = from; k <= to; k++) {
    image_set *b = &x->batch[k];
    memcpy(out->pixels + (size_t)at * per, b->pixels, (size_t)b->n * per);
    memcpy(out->labels + at, b->labels, (size_t)b->n * sizeof(int32_t));
    at += b->n;
    image_set_free(b);
    x->have[k] = 0;
  }
}

static int load_imagenet(prep_ctx *c, int px, const char *const *zips, int nz, image_set *train, image_set *test,
                         json_t **names) {
  imagenet_ctx x = {.c = c, .px = px};
  int rc = 0;
  for (int i = 0; i < nz && rc == 0; i++) {
    char *path = xasprintf("%s/%s", c->src_dir, zips[i]);
    x.zip = zips[i];
    if (!path_exists(path))
      rc = igpt_err("%s: missing; %s is a manual download (`igpt fetch %s` says how)", path, c->name, c->name);
    else
      rc = unpack_each_member(path, IMAGENET_MEMBER_MAX, imagenet_want, imagenet_member, &x);
    free(path);
  }
  for (int k = 0; k <= 10 && rc == 0; k++)
    if (!x.have[k]) {
      char what[32];
      snprintf(what, sizeof what, k ? "train_data_batch_%d" : "val_data", k);
      rc = igpt_err("%s: no member %s in the zips (%s...): incomplete download?", c->src_dir, what, zips[0]);
    }
  if (rc == 0) {
    imagenet_join(&x, 1, 10, train);
    imagenet_join(&x, 0, 0, test);
    *names = json_array();
    for (int k = 1; k <= 1000; k++) json_array_append_new(*names, json_sprintf("%d", k));  // map_clsloc.txt's index
  }
  for (int k = 0; k <= 10; k++) if (x.have[k]) image_set_free(&x.batch[k]);
  return rc;
}

static int load_imagenet32(prep_ctx *c, image_set *train, image_set *test, json_t **names) {
  static const char *const zips[] = {"Imagenet32_train.zip", "Imagenet32_val.zip"};
  return load_imagenet(c, 32, zips, 2, train, test, names);
}

static int load_imagenet64(prep_ctx *c, image_set *train, image_set *test, json_t **names) {
  static const char *const zips[] = {"Imagenet64_train_part1.zip", "Imagenet64_train_part2.zip", "Imagenet64_val.zip"};
  return load_imagenet(c, 64, zips, 3, train, test, names);
}

typedef struct {
  const char *name;
  int (*load)(prep_ctx *, image_set *, image_set *, json_t **);
  double val_fraction;  // REFERENCE.md section 3
} image_dataset;

static const image_dataset image_sets[] = {
    {"cifar10", load_cifar10, 0.10},   {"cifar100", load_cifar100, 0.10},
    {"stl10", load_stl10, 0.10},       {"fashion-mnist", load_fashion, 0.10},
    {"synthetic", load_synthetic, 0.10},
    {"imagenet32", load_imagenet32, 0.04}, {"imagenet64", load_imagenet64, 0.04},  // REFERENCE.md section 2
};
#define N_IMAGE_SETS (int)(sizeof image_sets / sizeof image_sets[0])

// The official pre-quantised sets: <prefix>_{tr,va,te}{X,Y}.npy, their own split; 32x32 images
// (T = 1024 tokens) of n_classes classes in every split (openai/image-gpt's run.py).
typedef struct {
  const char *name, *prefix;
  int px, n_classes;
} token_dataset;
static const token_dataset token_sets[] = {{"igpt-cifar10", "cifar10", 32, 10}, {"igpt-imagenet", "imagenet", 32, 1000}};
#define N_TOKEN_SETS (int)(sizeof token_sets / sizeof token_sets[0])

static json_t *counts_json(const int32_t *labels, int64_t n, int n_classes) {
  int64_t *cnt = label_counts(labels, n, n_classes);
  json_t *a = json_array();
  for (int k = 0; k < n_classes; k++) json_array_append_new(a, json_integer(cnt[k]));
  free(cnt);
  return a;
}

// Moves the finished temporary directory into place, replacing an older output.
static int publish_dir(const char *tmp, const char *final) {
  char *old = NULL;
  if (path_exists(final)) {
    old = xasprintf("%s.old.%d", final, (int)getpid());
    if (rename(final, old) != 0) {
      free(old);
      return igpt_err("%s: cannot move the old output aside: %m", final);
    }
  }
  if (rename(tmp, final) != 0) {
    int rc = igpt_err("%s: cannot rename %s into place: %m", final, tmp);
    if (old) rename(old, final);
    free(old);
    return rc;
  }
  if (old) rm_rf(old);
  free(old);
  return 0;
}

// Removes FINAL.tmp.PID directories left by interrupted runs whose process is gone.
static void remove_stale_tmp(const char *final) {
  char *pat = xasprintf("%s.tmp.*", final);
  glob_t g;
  if (glob(pat, GLOB_NOSORT, NULL, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; i++) {
      long pid = strtol(strrchr(g.gl_pathv[i], '.') + 1, NULL, 10);
      if (pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
        log_info("prepare: removing %s, left by an interrupted run", g.gl_pathv[i]);
        rm_rf(g.gl_pathv[i]);
      }
    }
    globfree(&g);
  }
  free(pat);
}

// The settings that decide the output; a rerun with the same ones finds the work done.
static json_t *settings_json(const char *name, int size, uint64_t seed, double frac, prep_ctx *c) {
  json_t *s = json_pack("{s:s, s:i, s:I, s:f, s:i}", "name", name, "size", size, "seed", (json_int_t)seed,
                        "val_fraction", frac, "format", 1);
  if (c->unlabeled) json_object_set_new(s, "unlabeled", json_true());
  if (!strcmp(name, "synthetic") || c->n_train > 0 || c->n_test > 0)
    json_object_update_new(s, json_pack("{s:I, s:I}", "n_train", (json_int_t)c->n_train, "n_test", (json_int_t)c->n_test));
  return s;
}

static json_t *result_json(const json_t *meta, const char *out) {
  json_t *r = json_pack("{s:s, s:O, s:O, s:O, s:O}", "out", out, "name", json_object_get(meta, "name"),
                        "size", json_object_get(meta, "size"), "n", json_object_get(meta, "n"),
                        "label_counts", json_object_get(meta, "label_counts"));
  json_object_set(r, "split", json_object_get(meta, "split"));
  return r;
}

// STL-10's unlabeled_X.bin is 2.7 GB: mapped, decoded and resized a chunk at a time, so only
// the resized images are held. Labels are -1.
static int prepare_stl10_unlabeled(prep_ctx *c, int size, const char *tmp, json_t *n_json) {
  const char *rel = "stl10_binary/unlabeled_X.bin";
  const size_t rec = 3 * STL10_PX * STL10_PX, chunk = 1000;
  char *path = xasprintf("%s/%s", c->src_dir, rel);
  int rc = -1, fd = open(path, O_RDONLY);
  struct stat st;
  uint8_t *map = MAP_FAILED;
  image_set out = {0};
  if (fd < 0 || fstat(fd, &st) != 0) {
    igpt_err("%s: cannot open (%m); run `igpt fetch stl10` first or leave out --unlabeled", path);
    goto done;
  }
  size_t len = (size_t)st.st_size;
  if (len == 0 || len % rec != 0) {
    igpt_err("%s: %zu bytes is not a whole number of %zu-byte STL-10 images (%zu bytes left over from byte "
             "offset %zu): the file is truncated; fetch it again", rel, len, rec, len % rec, len - len % rec);
    goto done;
  }
  map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) { igpt_err("%s: cannot map: %m", path); goto done; }
  char hex[65];
  log_info("prepare %s: hashing %s (%.1f GB)", c->name, rel, len / 1e9);
  sha256_hex(map, len, hex);
  if (check_source(c, rel, false, len, hex) != 0) goto done;
  json_array_append_new(c->sources, json_pack("{s:s, s:I, s:s}", "file", rel, "bytes", (json_int_t)len, "sha256", hex));
  int64_t n = (int64_t)(len / rec);
  image_set_alloc(&out, n, size, size, 10);
  size_t out_px = (size_t)size * size * 3;
  double t0 = now_seconds(), last = t0;
  for (int64_t i = 0; i < n; i += (int64_t)chunk) {
    size_t k = (size_t)(n - i) < chunk ? (size_t)(n - i) : chunk;
    image_set part, small;
    if (decode_stl10_images(map + (size_t)i * rec, k * rec, rel, &part) != 0) goto done;
    image_set_square_resize(&part, size, &small);
    memcpy(out.pixels + (size_t)i * out_px, small.pixels, k * out_px);
    image_set_free(&part);
    image_set_free(&small);
    double now = now_seconds(), rate = (double)(i + (int64_t)k) / (now - t0 > 1e-9 ? now - t0 : 1e-9);
    if (now - last > 2 || i + (int64_t)k == n) {
      log_info("prepare %s: unlabeled %lld/%lld (%.0f images/s, ETA %.0f s)", c->name, (long long)(i + (int64_t)k),
               (long long)n, rate, (double)(n - i - (int64_t)k) / rate);
      last = now;
    }
  }
  for (int64_t i = 0; i < n; i++) out.labels[i] = -1;
  char *p = xasprintf("%s/unlabeled.safetensors", tmp);
  rc = images_save(&out, p);
  free(p);
  json_object_set_new(n_json, "unlabeled", json_integer(n));
done:
  if (map != MAP_FAILED) munmap(map, (size_t)st.st_size);
  if (fd >= 0) close(fd);
  image_set_free(&out);
  free(path);
  return rc;
}

static int prepare_images(const image_dataset *ds, prep_ctx *c, int size, double frac, const char *tmp,
                          json_t *meta) {
  image_set raw_train, raw_test, all, test, train, val;
  json_t *names = NULL;
  double t0 = now_seconds();
  if (ds->load(c, &raw_train, &raw_test, &names) != 0) return -1;
  if (strcmp(c->name, "synthetic") && (c->n_train > 0 || c->n_test > 0)) {  // a prefix of the source files
    if (c->n_train > 0 && c->n_train < raw_train.n) raw_train.n = c->n_train;
    if (c->n_test > 0 && c->n_test < raw_test.n) raw_test.n = c->n_test;
    log_info("prepare %s: keeping the first %lld train and %lld test images (--n-train, --n-test)", c->name,
             (long long)raw_train.n, (long long)raw_test.n);
  }
  log_info("prepare %s: loaded %lld train and %lld test images of %dx%d in %.1f s", c->name,
           (long long)raw_train.n, (long long)raw_test.n, raw_train.h, raw_train.w, now_seconds() - t0);
  t0 = now_seconds();
  image_set_square_resize(&raw_train, size, &all);
  image_set_square_resize(&raw_test, size, &test);
  double dt = now_seconds() - t0;
  log_info("prepare %s: resized to %dx%d in %.1f s (%.0f images/s)", c->name, size, size, dt,
           (double)(raw_train.n + raw_test.n) / (dt > 1e-9 ? dt : 1e-9));
  int src_h = raw_train.h, src_w = raw_train.w;
  image_set_free(&raw_train);
  image_set_free(&raw_test);
  int K = (int)json_array_size(names);
  all.n_classes = test.n_classes = K;
  split_stratified(&all, frac, c->seed, &train, &val);
  image_set_free(&all);
  const image_set *parts[3] = {&train, &val, &test};
  const char *pn[3] = {"train", "val", "test"};
  json_t *n = json_object(), *counts = json_object();
  int rc = 0;
  for (int i = 0; i < 3 && rc == 0; i++)  // an empty val is what --val-fraction 0 asks for
    if (parts[i]->n == 0 && !(i == 1 && frac == 0))
      rc = igpt_err("prepare %s: the %s split is empty (%lld train and %lld test images%s): nothing to %s", c->name, pn[i],
                    (long long)(train.n + val.n), (long long)test.n,
                    c->n_train > 0 || c->n_test > 0 ? " after --n-train/--n-test" : "",
                    i == 0 ? "train on" : i == 1 ? "choose by" : "evaluate on");
  for (int i = 0; i < 3 && rc == 0; i++) {
    char *p = xasprintf("%s/%s.safetensors", tmp, pn[i]);
    log_info("prepare %s: writing %s (%lld images)", c->name, p, (long long)parts[i]->n);
    rc = images_save(parts[i], p);
    free(p);
    json_object_set_new(n, pn[i], json_integer(parts[i]->n));
    json_object_set_new(counts, pn[i], counts_json(parts[i]->labels, parts[i]->n, K));
  }
  for (int i = 0; i < 3; i++) image_set_free((image_set *)parts[i]);
  if (rc == 0 && c->unlabeled) rc = prepare_stl10_unlabeled(c, size, tmp, n);
  json_object_set_new(meta, "kind", json_string("images"));
  json_object_set_new(meta, "source_size", json_pack("[i,i]", src_h, src_w));
  json_object_set_new(meta, "resize", json_string(
      src_h == size && src_w == size ? "none" : "centre crop to a square, then area (box) weights, exact "
                                                "integer arithmetic, rounded half up"));
  json_object_set_new(meta, "classes", names);
  json_object_set_new(meta, "n_classes", json_integer(K));
  json_object_set_new(meta, "split", json_pack("{s:s, s:f, s:I, s:s}", "method", "class-stratified random",
                                               "val_fraction", frac, "seed", (json_int_t)c->seed, "from", "train"));
  if (strcmp(c->name, "synthetic") && (c->n_train > 0 || c->n_test > 0))
    json_object_set_new(meta, "subset", json_pack("{s:I, s:I, s:s}", "n_train", (json_int_t)c->n_train, "n_test",
                                                  (json_int_t)c->n_test, "counted",
                                                  "the first n_train images of the source train files, before the "
                                                  "validation split is taken out of them (train + val = n_train); "
                                                  "the first n_test of the test files; 0: all"));
  json_object_set_new(meta, "n", n);
  json_object_set_new(meta, "label_counts", counts);
  return rc;
}

static int prepare_tokens(const token_dataset *ds, prep_ctx *c, const char *tmp, json_t *meta) {
  const char *pn[3] = {"train", "val", "test"}, *code[3] = {"tr", "va", "te"};
  json_t *n = json_object(), *counts = json_object();
  json_object_set_new(meta, "n", n);
  json_object_set_new(meta, "label_counts", counts);
  const int64_t T = (int64_t)ds->px * ds->px;
  const int K = ds->n_classes;
  for (int i = 0; i < 3; i++) {
    char *xr = xasprintf("%s_%sX.npy", ds->prefix, code[i]), *yr = xasprintf("%s_%sY.npy", ds->prefix, code[i]);
    uint8_t *buf;
    size_t len;
    token_set ts;
    int rc = read_member(c, xr, &buf, &len);
    if (rc == 0) { rc = decode_igpt_tokens(buf, len, xr, 512, &ts); free(buf); }
    if (rc == 0 && (ts.t != T || ts.n == 0)) {  // every split: the data set's images, so one width
      rc = ts.n == 0 ? igpt_err("%s/%s: no sequences: the %s split is empty", c->src_dir, xr, pn[i])
                     : igpt_err("%s/%s: sequences of %lld tokens, expected %lld (%s is %dx%d images, in every split)",
                                c->src_dir, xr, (long long)ts.t, (long long)T, c->name, ds->px, ds->px);
      token_set_free(&ts);
    }
    if (rc == 0) {
      rc = read_member(c, yr, &buf, &len);
      if (rc == 0) { rc = decode_igpt_labels(buf, len, yr, &ts); free(buf); }
      if (rc == 0 && (ts.n_classes > K || (ts.label_width && ts.label_width != K)))
        rc = ts.label_width ? igpt_err("%s/%s: one-hot labels of %d classes, expected %d (%s, in every split)", c->src_dir,
                                       yr, ts.label_width, K, c->name)
                            : igpt_err("%s/%s: class %d, expected 0..%d (%s)", c->src_dir, yr, ts.n_classes - 1, K - 1,
                                       c->name);
      if (rc == 0) {
        char *p = xasprintf("%s/%s.safetensors", tmp, pn[i]);
        log_info("prepare %s: writing %s (%lld sequences of %lld tokens)", c->name, p, (long long)ts.n, (long long)ts.t);
        rc = tokens_save(&ts, p);
        free(p);
        json_object_set_new(n, pn[i], json_integer(ts.n));
        json_object_set_new(counts, pn[i], counts_json(ts.labels, ts.n, K));
      }
      token_set_free(&ts);
    }
    free(xr);
    free(yr);
    if (rc != 0) return -1;
  }
  json_object_set_new(meta, "kind", json_string("tokens"));
  json_object_set_new(meta, "palette", json_string("official kmeans_centers.npy (512 colours)"));
  json_object_set_new(meta, "n_classes", json_integer(K));
  json_object_set_new(meta, "split", json_pack("{s:s}", "method", "official (trX/vaX/teX as published)"));
  return 0;
}

prepare_kind prepare_kind_of(const char *name) {
  for (int i = 0; i < N_IMAGE_SETS; i++) if (!strcmp(name, image_sets[i].name)) return PREPARE_IMAGES;
  for (int i = 0; i < N_TOKEN_SETS; i++) if (!strcmp(name, token_sets[i].name)) return PREPARE_TOKENS;
  return PREPARE_UNKNOWN;
}

int prepare_dataset(const prepare_opts *o, json_t **result) {
  const char *name = o->name, *data = o->data && *o->data ? o->data : "data";
  const image_dataset *ids = NULL;
  const token_dataset *tds = NULL;
  for (int i = 0; i < N_IMAGE_SETS; i++) if (!strcmp(name, image_sets[i].name)) ids = &image_sets[i];
  for (int i = 0; i < N_TOKEN_SETS; i++) if (!strcmp(name, token_sets[i].name)) tds = &token_sets[i];
  if (!ids && !tds) return igpt_err("unknown data set '%s'", name);
  int64_t n_train = o->n_train, n_test = o->n_test;
  int size = o->size;
  uint64_t seed = o->seed;
  if (!strcmp(name, "synthetic")) {  // the synthetic set's sizes
    if (!n_train) n_train = 5000;
    if (!n_test) n_test = 1000;
  }
  double frac = o->val_fraction < 0 ? (ids ? ids->val_fraction : 0) : o->val_fraction;
  *result = NULL;

  prep_ctx c = {.name = name, .src_dir = xasprintf("%s/downloads/%s", data, name), .sources = json_array(),
                .n_train = n_train, .n_test = n_test, .seed = seed, .unlabeled = o->unlabeled, .size = size};
  char *final = o->out ? xstrdup(o->out) : xasprintf("%s/prepared/%s-%d", data, name, size);
  char *meta_path = xasprintf("%s/meta.json", final);
  json_t *settings = settings_json(name, size, seed, frac, &c);
  int rc = -1;
  char *tmp = NULL, *reg_path = NULL;
  json_t *meta = NULL;
  registry reg = {0};

  if (!o->force && path_exists(meta_path)) {  // resume: the same settings were prepared already
    json_t *old = json_load_file(meta_path, JSON_REJECT_DUPLICATES, NULL);
    if (old && json_equal(json_object_get(old, "settings"), settings)) {
      log_info("prepare %s: %s is already prepared with these settings (--force rebuilds)", name, final);
      *result = result_json(old, final);
      json_object_set_new(*result, "skipped", json_true());
      json_decref(old);
      rc = 0;
      goto done;
    }
    json_decref(old);
  }
  remove_stale_tmp(final);
  tmp = xasprintf("%s.tmp.%d", final, (int)getpid());
  if (rm_rf(tmp) != 0 || mkdir_p(tmp) != 0) goto done;
  if (strcmp(name, "synthetic")) {
    reg_path = o->registry ? xstrdup(o->registry) : registry_default_path();
    if (registry_load(&reg, reg_path) != 0 || !(c.reg = registry_find(&reg, name))) { rm_rf(tmp); goto done; }
    c.reg_path = reg_path;
  }
  meta = json_pack("{s:s, s:i}", "name", name, "size", size);
  int ok = ids ? prepare_images(ids, &c, size, frac, tmp, meta) : prepare_tokens(tds, &c, tmp, meta);
  if (ok != 0) { rm_rf(tmp); goto done; }
  json_object_set(meta, "sources", c.sources);
  if (!strcmp(name, "synthetic"))
    json_object_set_new(meta, "generator", json_pack("{s:s, s:I, s:I, s:I}", "name", "datasets/synthetic.c v1",
                                                     "seed", (json_int_t)seed, "n_train", (json_int_t)n_train,
                                                     "n_test", (json_int_t)n_test));
  json_object_set(meta, "settings", settings);
  char *mp = xasprintf("%s/meta.json", tmp), *js = json_dumps(meta, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
  ok = file_write_atomic(mp, js, strlen(js));
  free(mp);
  free(js);
  if (ok != 0 || publish_dir(tmp, final) != 0) { rm_rf(tmp); goto done; }
  log_info("prepare %s: done, %s", name, final);
  *result = result_json(meta, final);
  rc = 0;
done:
  json_decref(meta);
  json_decref(settings);
  json_decref(c.sources);
  free(c.src_dir);
  free(final);
  free(meta_path);
  free(tmp);
  registry_free(&reg);
  free(reg_path);
  return rc;
}
