// decode: crafted good and bad CIFAR, STL-10, IDX and NPY inputs (pixel order, error messages
// with file and offset), area resizing, the stratified split and the images file.
#include "testutil.h"
#include "datasets/decode.h"
#include "base/npy.h"
#include <zlib.h>

#define HAS(msg, s) cr_assert(strstr((msg), (s)) != NULL, "expected '%s' in: %s", (s), (msg))

// A value for (image, channel, row, col) that differs between neighbours in every index.
static uint8_t pix(int i, int c, int y, int x) { return (uint8_t)(i * 31 + c * 101 + y * 7 + x * 3); }

// CIFAR records: label byte(s) then R, G, B planes row-major.
static uint8_t *cifar_records(int n, int lbytes, const uint8_t *labels) {
  size_t rec = (size_t)lbytes + 3072;
  uint8_t *b = xmalloc(rec * n);
  for (int i = 0; i < n; i++) {
    uint8_t *r = b + rec * i;
    for (int l = 0; l < lbytes; l++) r[l] = labels[i * lbytes + l];
    for (int c = 0; c < 3; c++)
      for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) r[lbytes + c * 1024 + y * 32 + x] = pix(i, c, y, x);
  }
  return b;
}

static void check_pixels(const image_set *s, int n, int h, int w) {
  cr_assert_eq(s->n, n);
  cr_assert_eq(s->h, h);
  cr_assert_eq(s->w, w);
  for (int i = 0; i < n; i++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        for (int c = 0; c < 3; c++)
          cr_assert_eq(s->pixels[(((size_t)i * h + y) * w + x) * 3 + c], pix(i, c, y, x),
                       "image %d (%d,%d) channel %d", i, y, x, c);
}

Test(decode, cifar10_planes_to_hwc) {
  uint8_t labels[3] = {0, 9, 4};
  uint8_t *b = cifar_records(3, 1, labels);
  image_set s;
  cr_assert_eq(decode_cifar10(b, 3 * 3073, "batch.bin", &s), 0, "%s", igpt_errmsg());
  check_pixels(&s, 3, 32, 32);
  cr_assert_eq(s.labels[0], 0);
  cr_assert_eq(s.labels[1], 9);
  cr_assert_eq(s.labels[2], 4);
  image_set_free(&s);
  free(b);
}

Test(decode, cifar10_rejects_truncated_and_bad_labels) {
  uint8_t labels[3] = {1, 2, 3};
  uint8_t *b = cifar_records(3, 1, labels);
  image_set s;
  cr_assert_eq(decode_cifar10(b, 3 * 3073 - 100, "data_batch_1.bin", &s), -1);
  HAS(igpt_errmsg(), "data_batch_1.bin");
  HAS(igpt_errmsg(), "byte offset 6146");  // the partial third record starts there
  cr_assert_eq(decode_cifar10(b, 0, "empty.bin", &s), -1);
  HAS(igpt_errmsg(), "empty.bin");
  b[3073] = 10;  // second record's label
  cr_assert_eq(decode_cifar10(b, 3 * 3073, "data_batch_2.bin", &s), -1);
  HAS(igpt_errmsg(), "data_batch_2.bin: byte offset 3073");
  HAS(igpt_errmsg(), "label 10");
  free(b);
}

Test(decode, cifar100_fine_and_coarse) {
  uint8_t labels[4] = {19, 99, 0, 5};
  uint8_t *b = cifar_records(2, 2, labels);
  image_set s;
  int32_t *coarse = NULL;
  cr_assert_eq(decode_cifar100(b, 2 * 3074, "train.bin", &s, &coarse), 0, "%s", igpt_errmsg());
  check_pixels(&s, 2, 32, 32);
  cr_assert_eq(s.labels[0], 99);
  cr_assert_eq(s.labels[1], 5);
  cr_assert_eq(coarse[0], 19);
  cr_assert_eq(coarse[1], 0);
  cr_assert_eq(s.n_classes, 100);
  image_set_free(&s);
  free(coarse);
  b[3074 + 1] = 100;
  cr_assert_eq(decode_cifar100(b, 2 * 3074, "train.bin", &s, NULL), -1);
  HAS(igpt_errmsg(), "train.bin: byte offset 3075");
  b[3074 + 1] = 1;
  b[3074] = 20;
  cr_assert_eq(decode_cifar100(b, 2 * 3074, "train.bin", &s, NULL), -1);
  HAS(igpt_errmsg(), "coarse label 20");
  cr_assert_eq(decode_cifar100(b, 3073, "test.bin", &s, NULL), -1);  // a CIFAR-10 record size
  HAS(igpt_errmsg(), "test.bin");
  free(b);
}

// STL-10 stores each channel column-major: (row y, col x) at x * 96 + y.
Test(decode, stl10_column_major) {
  const size_t P = 96 * 96;
  uint8_t *b = xmalloc(2 * 3 * P);
  for (int i = 0; i < 2; i++)
    for (int c = 0; c < 3; c++)
      for (int y = 0; y < 96; y++)
        for (int x = 0; x < 96; x++) b[i * 3 * P + c * P + (size_t)x * 96 + y] = pix(i, c, y, x);
  image_set s;
  cr_assert_eq(decode_stl10_images(b, 2 * 3 * P, "train_X.bin", &s), 0, "%s", igpt_errmsg());
  check_pixels(&s, 2, 96, 96);
  uint8_t y[2] = {1, 10};
  cr_assert_eq(decode_stl10_labels(y, 2, "train_y.bin", &s), 0, "%s", igpt_errmsg());
  cr_assert_eq(s.labels[0], 0);
  cr_assert_eq(s.labels[1], 9);
  uint8_t bad[2] = {3, 11};
  cr_assert_eq(decode_stl10_labels(bad, 2, "train_y.bin", &s), -1);
  HAS(igpt_errmsg(), "train_y.bin: byte offset 1");
  bad[1] = 0;
  cr_assert_eq(decode_stl10_labels(bad, 2, "train_y.bin", &s), -1);
  HAS(igpt_errmsg(), "label 0");
  cr_assert_eq(decode_stl10_labels(y, 1, "short_y.bin", &s), -1);  // fewer labels than images
  HAS(igpt_errmsg(), "short_y.bin");
  image_set_free(&s);
  cr_assert_eq(decode_stl10_images(b, 2 * 3 * P - 1, "test_X.bin", &s), -1);
  HAS(igpt_errmsg(), "test_X.bin");
  HAS(igpt_errmsg(), "byte offset 27648");
  free(b);
}

static void be32(uint8_t *p, uint32_t v) {
  p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

// An IDX image file of n grey images h x w (value pix(i, 0, y, x)).
static uint8_t *idx_images(int n, int h, int w, size_t *len) {
  *len = 16 + (size_t)n * h * w;
  uint8_t *b = xmalloc(*len);
  be32(b, 0x803); be32(b + 4, n); be32(b + 8, h); be32(b + 12, w);
  for (int i = 0; i < n; i++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) b[16 + ((size_t)i * h + y) * w + x] = pix(i, 0, y, x);
  return b;
}

static uint8_t *gzip_buf(const uint8_t *in, size_t n, size_t *len) {
  z_stream z = {0};
  cr_assert_eq(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  size_t cap = deflateBound(&z, n) + 64;
  uint8_t *o = xmalloc(cap);
  z.next_in = (uint8_t *)in; z.avail_in = n; z.next_out = o; z.avail_out = cap;
  cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
  *len = z.total_out;
  deflateEnd(&z);
  return o;
}

Test(decode, idx_grey_to_rgb_and_labels) {
  size_t len, glen, ulen;
  uint8_t *raw = idx_images(3, 28, 28, &len);
  uint8_t *gz = gzip_buf(raw, len, &glen), *un;
  cr_assert_eq(gunzip_buf(gz, glen, "x.gz", 1 << 20, &un, &ulen), 0, "%s", igpt_errmsg());
  cr_assert_eq(ulen, len);
  cr_assert_eq(memcmp(un, raw, len), 0);
  image_set s;
  cr_assert_eq(decode_idx_images(un, ulen, "x", &s), 0, "%s", igpt_errmsg());
  cr_assert_eq(s.h, 28);
  for (int i = 0; i < 3; i++)
    for (int p = 0; p < 28 * 28; p++)
      for (int c = 0; c < 3; c++) cr_assert_eq(s.pixels[((size_t)i * 784 + p) * 3 + c], pix(i, 0, p / 28, p % 28));
  uint8_t lab[11] = {0};
  be32(lab, 0x801); be32(lab + 4, 3); lab[8] = 9; lab[9] = 0; lab[10] = 7;
  cr_assert_eq(decode_idx_labels(lab, 11, "y", &s, 10), 0, "%s", igpt_errmsg());
  cr_assert_eq(s.labels[0], 9);
  cr_assert_eq(s.labels[2], 7);
  lab[10] = 10;
  cr_assert_eq(decode_idx_labels(lab, 11, "y", &s, 10), -1);
  HAS(igpt_errmsg(), "y: byte offset 10");
  lab[10] = 1;
  cr_assert_eq(decode_idx_labels(lab, 10, "y", &s, 10), -1);  // truncated
  HAS(igpt_errmsg(), "truncated at byte offset 10");
  be32(lab + 4, 4);  // dims disagree with the image file
  cr_assert_eq(decode_idx_labels(lab, 11, "labels.idx", &s, 10), -1);
  HAS(igpt_errmsg(), "labels.idx: byte offset 4");
  cr_assert_eq(decode_idx_labels(raw, len, "labels.idx", &s, 10), -1);  // images file as labels
  HAS(igpt_errmsg(), "byte offset 0: bad IDX magic 0x00000803");
  image_set_free(&s);
  free(un);
  free(gz);
  free(raw);
}

Test(decode, idx_rejects_bad_headers_and_gzip) {
  size_t len, glen;
  uint8_t *raw = idx_images(2, 4, 5, &len);
  image_set s;
  cr_assert_eq(decode_idx_images(raw, len - 1, "imgs", &s), -1);
  HAS(igpt_errmsg(), "imgs: truncated at byte offset 55");
  cr_assert_eq(decode_idx_images(raw, 10, "imgs", &s), -1);
  HAS(igpt_errmsg(), "truncated IDX header at byte offset 10");
  cr_assert_eq(decode_idx_images(raw, 3, "imgs", &s), -1);
  raw[3] = 0x01;
  cr_assert_eq(decode_idx_images(raw, len, "imgs", &s), -1);
  HAS(igpt_errmsg(), "imgs: byte offset 0: bad IDX magic");
  raw[3] = 0x03;
  be32(raw + 4, 0x80000000u);
  cr_assert_eq(decode_idx_images(raw, len, "imgs", &s), -1);
  HAS(igpt_errmsg(), "byte offset 4");
  be32(raw + 4, 2);
  uint8_t *gz = gzip_buf(raw, len, &glen), *un;
  size_t ulen;
  cr_assert_eq(gunzip_buf(gz, glen / 2, "half.gz", 1 << 20, &un, &ulen), -1);
  HAS(igpt_errmsg(), "half.gz: truncated gzip stream");
  cr_assert_eq(gunzip_buf(gz, glen, "small.gz", 10, &un, &ulen), -1);  // decompression cap
  HAS(igpt_errmsg(), "more than 10 bytes");
  cr_assert_eq(gunzip_buf(raw, len, "plain", 1 << 20, &un, &ulen), -1);  // not gzip at all
  HAS(igpt_errmsg(), "plain: corrupt gzip data near byte offset");
  for (size_t i = 12; i < glen - 8; i++) gz[i] ^= 0x5a;
  cr_assert_eq(gunzip_buf(gz, glen, "bad.gz", 1 << 20, &un, &ulen), -1);
  HAS(igpt_errmsg(), "bad.gz");
  free(gz);
  free(raw);
}

// A multi-member gzip file (two members concatenated: valid gzip, gzip -d reads both) decodes
// whole, as verify reads it; bytes after the last member that start no member are an error
// naming the file and the offset where the last member ended.
Test(decode, gunzip_every_member_and_refuse_trailing_garbage) {
  size_t len, la, lb, ulen;
  uint8_t *raw = idx_images(4, 6, 5, &len), *un;
  size_t half = len / 2;
  uint8_t *a = gzip_buf(raw, half, &la), *b = gzip_buf(raw + half, len - half, &lb);
  uint8_t *two = xmalloc(la + lb + 8);
  memcpy(two, a, la);
  memcpy(two + la, b, lb);
  cr_assert_eq(gunzip_buf(two, la + lb, "two.gz", 1 << 20, &un, &ulen), 0, "%s", igpt_errmsg());
  cr_assert_eq(ulen, len, "decoded %zu of the %zu bytes of both members", ulen, len);
  cr_assert_eq(memcmp(un, raw, len), 0);
  free(un);
  memcpy(two + la + lb, "GARBAGE!", 8);
  cr_assert_eq(gunzip_buf(two, la + lb + 8, "junk.gz", 1 << 20, &un, &ulen), -1);
  char at[128];
  snprintf(at, sizeof at, "junk.gz: trailing bytes after the last gzip member at byte offset %zu", la + lb);
  HAS(igpt_errmsg(), at);
  cr_assert_eq(gunzip_buf(two, la + lb / 2, "cut.gz", 1 << 20, &un, &ulen), -1);  // the second member cut
  HAS(igpt_errmsg(), "cut.gz: truncated gzip stream");
  free(a); free(b); free(two); free(raw);
}

Test(decode, npy_tokens_and_one_hot_labels) {
  uint16_t tok[2 * 6] = {0, 1, 2, 509, 510, 511, 7, 7, 7, 7, 7, 7};
  uint8_t *b;
  size_t len;
  cr_assert_eq(npy_encode(ST_U16, 2, (int64_t[]){2, 6}, tok, &b, &len), 0, "%s", igpt_errmsg());
  token_set ts;
  cr_assert_eq(decode_igpt_tokens(b, len, "c_trX.npy", 512, &ts), 0, "%s", igpt_errmsg());
  cr_assert_eq(ts.n, 2);
  cr_assert_eq(ts.t, 6);
  cr_assert_eq(memcmp(ts.tokens, tok, sizeof tok), 0);
  float onehot[2 * 3] = {0, 0, 1, 1, 0, 0};
  uint8_t *yb;
  size_t ylen;
  cr_assert_eq(npy_encode(ST_F32, 2, (int64_t[]){2, 3}, onehot, &yb, &ylen), 0);
  cr_assert_eq(decode_igpt_labels(yb, ylen, "c_trY.npy", &ts), 0, "%s", igpt_errmsg());
  cr_assert_eq(ts.labels[0], 2);
  cr_assert_eq(ts.labels[1], 0);
  cr_assert_eq(ts.n_classes, 3);
  free(yb);
  onehot[4] = 1;  // two classes in row 1 at element 4
  cr_assert_eq(npy_encode(ST_F32, 2, (int64_t[]){2, 3}, onehot, &yb, &ylen), 0);
  cr_assert_eq(decode_igpt_labels(yb, ylen, "c_trY.npy", &ts), -1);
  HAS(igpt_errmsg(), "not one-hot");
  char off[64];
  snprintf(off, sizeof off, "byte offset %zu", ylen - 2 * 4);
  HAS(igpt_errmsg(), off);
  free(yb);
  int64_t idx[3] = {1, 2, 3};  // index labels, but 3 rows for 2 token rows
  cr_assert_eq(npy_encode(ST_I64, 1, (int64_t[]){3}, idx, &yb, &ylen), 0);
  cr_assert_eq(decode_igpt_labels(yb, ylen, "c_vaY.npy", &ts), -1);
  HAS(igpt_errmsg(), "c_vaY.npy");
  free(yb);
  cr_assert_eq(npy_encode(ST_I64, 1, (int64_t[]){2}, idx, &yb, &ylen), 0);
  cr_assert_eq(decode_igpt_labels(yb, ylen, "c_vaY.npy", &ts), 0, "%s", igpt_errmsg());
  cr_assert_eq(ts.labels[1], 2);
  free(yb);
  token_set_free(&ts);
  cr_assert_eq(decode_igpt_tokens(b, len - 3, "cut.npy", 512, &ts), -1);  // truncated
  HAS(igpt_errmsg(), "cut.npy");
  cr_assert_eq(decode_igpt_tokens(b, 7, "cut.npy", 512, &ts), -1);
  HAS(igpt_errmsg(), "cut.npy");
  cr_assert_eq(decode_igpt_tokens(b, len, "c_teX.npy", 510, &ts), -1);  // token 510 outside 0..509
  snprintf(off, sizeof off, "byte offset %zu (image 0, token 4)", len - 12 * 2 + 4 * 2);
  HAS(igpt_errmsg(), off);
  free(b);
  float f[2] = {1, 2};
  cr_assert_eq(npy_encode(ST_F32, 2, (int64_t[]){1, 2}, f, &b, &len), 0);
  cr_assert_eq(decode_igpt_tokens(b, len, "float.npy", 512, &ts), -1);
  HAS(igpt_errmsg(), "must be integers");
  free(b);
}

static uint8_t *random_image(int h, int w, uint64_t seed) {
  rng_t r;
  rng_seed(&r, seed);
  uint8_t *p = xmalloc((size_t)h * w * 3);
  for (size_t i = 0; i < (size_t)h * w * 3; i++) p[i] = (uint8_t)rng_below(&r, 256);
  return p;
}

Test(decode, resize_constant_stays_constant) {
  int sizes[][4] = {{96, 96, 32, 32}, {96, 96, 48, 48}, {28, 28, 32, 32}, {45, 45, 32, 32}, {64, 64, 48, 48},
                    {7, 13, 3, 5}, {5, 5, 64, 64}};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    int sh = sizes[k][0], sw = sizes[k][1], dh = sizes[k][2], dw = sizes[k][3];
    uint8_t *src = xmalloc((size_t)sh * sw * 3), *dst = xmalloc((size_t)dh * dw * 3);
    for (int i = 0; i < sh * sw; i++) { src[3 * i] = 0; src[3 * i + 1] = 137; src[3 * i + 2] = 255; }
    resize_area(src, sh, sw, dst, dh, dw);
    for (int i = 0; i < dh * dw; i++)
      cr_assert(dst[3 * i] == 0 && dst[3 * i + 1] == 137 && dst[3 * i + 2] == 255, "%dx%d -> %dx%d pixel %d",
                sh, sw, dh, dw, i);
    free(src);
    free(dst);
  }
}

// Integer factors are exact box means rounded half up: 4x4 -> 2x2 (2x2 boxes), 96 -> 32 (3x3).
Test(decode, resize_box_average_exact) {
  for (int f = 2; f <= 3; f++) {
    int dh = f == 2 ? 2 : 32, sh = dh * f;
    uint8_t *src = random_image(sh, sh, f), *dst = xmalloc((size_t)dh * dh * 3);
    resize_area(src, sh, sh, dst, dh, dh);
    for (int y = 0; y < dh; y++)
      for (int x = 0; x < dh; x++)
        for (int c = 0; c < 3; c++) {
          int sum = 0;
          for (int a = 0; a < f; a++)
            for (int b = 0; b < f; b++) sum += src[((y * f + a) * sh + x * f + b) * 3 + c];
          int want = (2 * sum + f * f) / (2 * f * f);
          cr_assert_eq(dst[(y * dh + x) * 3 + c], want, "factor %d (%d,%d,%d): sum %d", f, y, x, c, sum);
        }
    free(src);
    free(dst);
  }
  uint8_t two[2 * 2 * 3] = {0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1}, one[3];  // mean 0.5 rounds up
  resize_area(two, 2, 2, one, 1, 1);
  cr_assert_eq(one[0], 1);
}

// 96 -> 48 is 2x2 boxes; a 40x32 image is cropped to its middle 32 rows first.
Test(decode, square_resize_crops_centre) {
  image_set in;
  image_set_alloc(&in, 1, 40, 32, 1);
  in.labels[0] = 0;
  for (int y = 0; y < 40; y++)
    for (int x = 0; x < 32; x++)
      for (int c = 0; c < 3; c++) in.pixels[(y * 32 + x) * 3 + c] = (uint8_t)(y < 4 || y >= 36 ? 255 : y);
  image_set out;
  image_set_square_resize(&in, 32, &out);
  cr_assert_eq(out.h, 32);
  for (int y = 0; y < 32; y++) cr_assert_eq(out.pixels[(y * 32 + 5) * 3], y + 4);
  image_set_free(&out);
  image_set_free(&in);
}

// Tags each image with its index in its pixels so the split's parts can be traced back.
static void tagged_set(image_set *s, int64_t n, int K) {
  image_set_alloc(s, n, 2, 2, K);
  for (int64_t i = 0; i < n; i++) {
    memset(s->pixels + i * 12, 0, 12);
    memcpy(s->pixels + i * 12, &i, sizeof(int32_t));
    s->labels[i] = (int32_t)((i * 7) % K);
  }
}

Test(decode, split_stratified_deterministic_disjoint) {
  image_set all, tr, va, tr2, va2;
  tagged_set(&all, 1000, 10);
  split_stratified(&all, 0.1, 42, &tr, &va);
  cr_assert_eq(va.n, 100);
  cr_assert_eq(tr.n, 900);
  int64_t *cv = label_counts(va.labels, va.n, 10);
  for (int k = 0; k < 10; k++) cr_assert_eq(cv[k], 10, "class %d has %lld in val", k, (long long)cv[k]);
  free(cv);
  uint8_t *seen = xcalloc(1000, 1);
  int32_t prev = -1;
  for (int64_t i = 0; i < tr.n; i++) {
    int32_t id;
    memcpy(&id, tr.pixels + i * 12, 4);
    cr_assert(id > prev, "train keeps the source order");
    prev = id;
    cr_assert_eq(tr.labels[i], (id * 7) % 10);
    seen[id]++;
  }
  for (int64_t i = 0; i < va.n; i++) {
    int32_t id;
    memcpy(&id, va.pixels + i * 12, 4);
    seen[id]++;
  }
  for (int i = 0; i < 1000; i++) cr_assert_eq(seen[i], 1, "image %d in %d parts", i, seen[i]);
  split_stratified(&all, 0.1, 42, &tr2, &va2);
  cr_assert_eq(memcmp(va.pixels, va2.pixels, (size_t)va.n * 12), 0, "same seed, same split");
  image_set_free(&tr2);
  image_set_free(&va2);
  split_stratified(&all, 0.1, 43, &tr2, &va2);
  cr_assert_neq(memcmp(va.pixels, va2.pixels, (size_t)va.n * 12), 0, "another seed, another split");
  image_set_free(&tr2);
  image_set_free(&va2);
  free(seen);
  image_set_free(&tr);
  image_set_free(&va);
  image_set_free(&all);
}

Test(decode, images_file_round_trip) {
  image_set a, b;
  tagged_set(&a, 5, 3);
  a.labels[4] = -1;
  char *dir = test_tmpdir("img");
  char *p = xasprintf("%s/x.safetensors", dir);
  cr_assert_eq(images_save(&a, p), 0, "%s", igpt_errmsg());
  cr_assert_eq(images_load(&b, p), 0, "%s", igpt_errmsg());
  cr_assert_eq(b.n, 5);
  cr_assert_eq(b.h, 2);
  cr_assert_eq(memcmp(a.pixels, b.pixels, 60), 0);
  cr_assert_eq(memcmp(a.labels, b.labels, 20), 0);
  image_set_free(&a);
  image_set_free(&b);
  rm_rf(dir);
  free(p);
  free(dir);
}

// General factors against an independent float reference: the mean of the source over the
// output pixel's footprint [i*s/d, (i+1)*s/d) in each axis. Rounding may differ only where the
// reference sits within 1e-9 of a half (float error), so the tolerance is 0 elsewhere.
static double overlap(double a0, double a1, double b0, double b1) {
  double lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
  return hi > lo ? hi - lo : 0;
}

Test(decode, resize_general_factor_matches_reference) {
  int cases[][2] = {{45, 32}, {28, 32}, {96, 64}, {50, 48}};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int s = cases[k][0], d = cases[k][1];
    uint8_t *src = random_image(s, s, 100 + k), *dst = xmalloc((size_t)d * d * 3);
    resize_area(src, s, s, dst, d, d);
    double f = (double)s / d;
    for (int y = 0; y < d; y++)
      for (int x = 0; x < d; x++)
        for (int c = 0; c < 3; c++) {
          double acc = 0;
          for (int j = 0; j < s; j++) {
            double wy = overlap(y * f, (y + 1) * f, j, j + 1);
            if (wy == 0) continue;
            for (int i = 0; i < s; i++) acc += wy * overlap(x * f, (x + 1) * f, i, i + 1) * src[(j * s + i) * 3 + c];
          }
          double v = acc / (f * f);
          int want = (int)floor(v + 0.5), got = dst[(y * d + x) * 3 + c];
          if (fabs(v - floor(v) - 0.5) < 1e-9) cr_assert(abs(got - want) <= 1);
          else cr_assert_eq(got, want, "%d -> %d at (%d,%d,%d): reference %.6f", s, d, y, x, c, v);
        }
    free(src);
    free(dst);
  }
}
