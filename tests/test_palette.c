// palette: the HF oracle's quantisation exactly, the exact rule on adversarial near-ties, the grid
// and colour table against brute force, k-means determinism and recovery, round trips, the verbs.
#include "testutil.h"
#include "base/npy.h"
#include "datasets/palette.h"
#include "base/rng.h"
#include "base/safetensors.h"
#include <omp.h>

// HF ImageGPTImageProcessor's own output for its 8x8 image and 16 clusters.
Test(palette, reproduces_hf_oracle_exactly) {
  char *p = oracle_path("hf-imagegpt-tiny/quantize.safetensors");
  st_file f;
  cr_assert_eq(st_open(&f, p), 0, "%s", igpt_errmsg());
  const st_tensor *c = st_expect(&f, "clusters", ST_F32, 2, (int64_t[]){16, 3});
  const st_tensor *img = st_expect(&f, "image", ST_U8, 3, (int64_t[]){8, 8, 3});
  const st_tensor *ids = st_expect(&f, "input_ids", ST_I64, 1, (int64_t[]){64});
  cr_assert(c && img && ids, "%s", igpt_errmsg());
  uint16_t tok[64];
  cr_assert_eq(palette_tokenize(c->data, 16, img->data, 64, tok), 0);
  const int64_t *want = ids->data;
  for (int i = 0; i < 64; i++) cr_assert_eq(tok[i], want[i], "pixel %d: %u, HF %lld", i, tok[i], (long long)want[i]);
  // the colour-table path gives the same
  palette_quantizer *q = palette_quantizer_new(c->data, 16, 1);
  uint16_t tok2[64];
  palette_quantize(q, img->data, 64, tok2);
  palette_quantizer_free(q);
  cr_assert_eq(memcmp(tok, tok2, sizeof tok), 0);

  // and through the verbs: palette file and images file in, tokens file out
  char *dir = test_tmpdir("pal-oracle");
  char *pp = xasprintf("%s/p.safetensors", dir), *ip = xasprintf("%s/i.safetensors", dir),
       *tp = xasprintf("%s/t.safetensors", dir), *np = xasprintf("%s/c.npy", dir);
  cr_assert_eq(palette_save(pp, c->data, 16, NULL), 0);
  cr_assert_eq(npy_write(np, ST_F32, 2, (int64_t[]){16, 3}, c->data), 0);
  st_writer *w = st_writer_new();
  st_writer_add(w, "images", ST_U8, 4, (int64_t[]){1, 8, 8, 3}, img->data);
  cr_assert_eq(st_writer_save(w, ip), 0);
  st_writer_free(w);
  char *bin = igpt_bin();
  const char *pals[2] = {pp, np};  // a palette file, or the .npy as is
  for (int k = 0; k < 2; k++) {
    char *cmd = xasprintf("%s tokenize --quiet --palette %s --images %s --out %s", bin, pals[k], ip, tp);
    cr_assert_eq(run_cmd(cmd), 0, "%s", cmd);
    st_file tf;
    cr_assert_eq(st_open(&tf, tp), 0, "%s", igpt_errmsg());
    const st_tensor *tt = st_expect(&tf, "tokens", ST_U16, 2, (int64_t[]){1, 64});
    cr_assert_not_null(tt, "%s", igpt_errmsg());
    cr_assert_eq(memcmp(tt->data, tok, sizeof tok), 0);
    st_close(&tf);
    free(cmd);
  }
  rm_rf(dir);
  free(bin); free(pp); free(ip); free(tp); free(np); free(dir);
  st_close(&f);
  free(p);
}

// Brute force of the rule in palette.h, written out here independently.
static int brute(const float *c, int K, const uint8_t px[3]) {
  double best = INFINITY;
  int bi = -1;
  for (int k = 0; k < K; k++) {
    double d = 0;
    for (int j = 0; j < 3; j++) {
      double t = (double)(float)(px[j] / 127.5 - 1.0) - (double)c[3 * k + j];
      d += t * t;
    }
    if (d < best) { best = d; bi = k; }
  }
  return bi;
}

// The float a^2 - 2ab + b^2 expansion (what sgemm-based quantisers compute).
static int expanded_f32(const float *c, int K, const uint8_t px[3]) {
  float x[3], a2 = 0, best = INFINITY;
  int bi = -1;
  for (int j = 0; j < 3; j++) { x[j] = palette_pixel(px[j]); a2 += x[j] * x[j]; }
  for (int k = 0; k < K; k++) {
    float b2 = 0, ab = 0;
    for (int j = 0; j < 3; j++) { b2 += c[3 * k + j] * c[3 * k + j]; ab += x[j] * c[3 * k + j]; }
    float d = a2 - 2 * ab + b2;
    if (d < best) { best = d; bi = k; }
  }
  return bi;
}

Test(palette, exact_rule_on_adversarial_ties) {
  // Exact ties: two centres mirrored about a pixel value, in both index orders, and duplicated
  // centres: the first index wins. x0 = 100/127.5-1 lies in [-0.25,-0.125), where floats are
  // multiples of 2^-26, so x0 +- h (h = 2^-8, staying in that range) is exact: a true tie.
  uint8_t px[3] = {100, 37, 201};
  float x[3], h = 1.0f / 256;
  for (int j = 0; j < 3; j++) x[j] = palette_pixel(px[j]);
  cr_assert((x[0] + h) - x[0] == x[0] - (x[0] - h), "offsets not exact: the tie is not a tie");
  float cs[4 * 3] = {5, 5, 5, x[0] + h, x[1], x[2], x[0] - h, x[1], x[2], x[0] + h, x[1], x[2]};
  uint16_t t;
  cr_assert_eq(palette_tokenize(cs, 4, px, 1, &t), 0);
  cr_assert_eq(t, 1, "mirrored tie: got %u, want the first index 1", t);
  float cs2[3 * 3] = {x[0] - h, x[1], x[2], x[0] + h, x[1], x[2], x[0], x[1] + h, x[2]};
  cr_assert_eq(palette_tokenize(cs2, 3, px, 1, &t), 0);
  cr_assert_eq(t, 0);
  // One ulp nearer wins even at a later index.
  float far = x[0] + h, near = nextafterf(far, x[0]);
  float cs3[2 * 3] = {far, x[1], x[2], near, x[1], x[2]};
  cr_assert_eq(palette_tokenize(cs3, 2, px, 1, &t), 0);
  cr_assert_eq(t, 1, "a centre one ulp nearer must win");

  // Near-ties that the float expansion gets wrong: centres a hair apart around random pixels.
  // Every case is checked against the brute-force rule; count how often the expansion differs,
  // to show these cases really are adversarial.
  rng_t r;
  rng_seed(&r, 11);
  int K = 64, disagree = 0, cases = 2000;
  float *c = xmalloc(sizeof(float) * 3 * K);
  for (int n = 0; n < cases; n++) {
    uint8_t p[3] = {(uint8_t)rng_below(&r, 256), (uint8_t)rng_below(&r, 256), (uint8_t)rng_below(&r, 256)};
    for (int k = 0; k < K; k++) {
      // all centres on a sphere of radius ~0.1 around the pixel, radii differing in the last bits
      float dir[3] = {rng_normal(&r), rng_normal(&r), rng_normal(&r)};
      float nrm = sqrtf(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]);
      float rad = 0.1f + (float)rng_below(&r, 8) * 1e-8f;
      for (int j = 0; j < 3; j++) c[3 * k + j] = palette_pixel(p[j]) + rad * dir[j] / nrm;
    }
    uint16_t tk;
    cr_assert_eq(palette_tokenize(c, K, p, 1, &tk), 0);
    int want = brute(c, K, p);
    cr_assert_eq(tk, want, "case %d: got %u, exact rule %d", n, tk, want);
    if (n % 50 == 0) {  // and through the grid (a build per case would be slow)
      palette_quantizer *q = palette_quantizer_new(c, K, 0);
      palette_quantize(q, p, 1, &tk);
      palette_quantizer_free(q);
      cr_assert_eq(tk, want, "case %d: grid %u, exact rule %d", n, tk, want);
    }
    double d;
    float xf[3] = {palette_pixel(p[0]), palette_pixel(p[1]), palette_pixel(p[2])};
    cr_assert_eq(palette_nearest_brute(c, K, xf, &d), want);
    if (expanded_f32(c, K, p) != want) disagree++;
  }
  cr_assert_gt(disagree, cases / 20, "only %d of %d near-ties fool the float expansion: not adversarial",
               disagree, cases);
  free(c);
}

// The grid and the colour table agree with brute force: every colour for a small palette, a
// strided subset for a 512-colour one (in clusters, and with duplicates and outliers outside [-1,1]).
Test(palette, grid_and_table_match_brute_force) {
  rng_t r;
  rng_seed(&r, 5);
  int Ks[2] = {13, 512};
  for (int v = 0; v < 2; v++) {
    int K = Ks[v];
    float *c = xmalloc(sizeof(float) * 3 * K);
    for (int k = 0; k < K; k++)
      for (int j = 0; j < 3; j++) c[3 * k + j] = (float)(rng_uniform(&r) * 2.2 - 1.1);
    if (K > 20) {
      memcpy(c + 3 * 20, c + 3 * 7, 3 * sizeof(float));  // a duplicate: index 7 must win
      for (int k = 100; k < 140; k++)  // a tight clump
        for (int j = 0; j < 3; j++) c[3 * k + j] = 0.3f + (float)(rng_uniform(&r) * 1e-3);
    }
    // the colour table (all 2^24 colours) only for the small palette: it is palette_nearest
    // precomputed, so indexing is what there is to test
    palette_quantizer *q = palette_quantizer_new(c, K, K < 64), *g = palette_quantizer_new(c, K, 0);
    size_t step = K < 64 ? 5 : 4099;  // odd strides: every channel value is visited
    uint8_t px[3];
    for (size_t col = 0; col < (1u << 24); col += step) {
      px[0] = (uint8_t)(col >> 16); px[1] = (uint8_t)(col >> 8); px[2] = (uint8_t)col;
      uint16_t a, b;
      palette_quantize(q, px, 1, &a);
      palette_quantize(g, px, 1, &b);
      int want = brute(c, K, px);
      cr_assert_eq(a, want, "K %d colour %06zx: table %u, brute %d", K, col, a, want);
      cr_assert_eq(b, want, "K %d colour %06zx: grid %u, brute %d", K, col, b, want);
    }
    palette_quantizer_free(q);
    palette_quantizer_free(g);
    free(c);
  }
}

// Pixels drawn around 8 well-separated colours (the cube's corners pulled inwards, +-6 levels).
static uint8_t *separated(size_t n, rng_t *r, int *truth) {
  uint8_t *px = xmalloc(3 * n);
  for (size_t i = 0; i < n; i++) {
    int k = (int)rng_below(r, 8);
    truth[i] = k;
    for (int j = 0; j < 3; j++) px[3 * i + j] = (uint8_t)((k >> j & 1 ? 200 : 50) + (int)rng_below(r, 13) - 6);
  }
  return px;
}

Test(palette, kmeans_recovers_separated_clusters) {
  rng_t r;
  rng_seed(&r, 3);
  size_t n = 20000;
  int *truth = xmalloc(sizeof(int) * n);
  uint8_t *px = separated(n, &r, truth);
  float c[8 * 3];
  kmeans_stats st;
  cr_assert_eq(kmeans_fit(px, n, 8, 20, 1, c, &st, 0), 0, "%s", igpt_errmsg());
  // Each true cluster maps to one centre, which is its exact mean (float rounding, 1e-6).
  double sum[8][3] = {{0}};
  int cnt[8] = {0};
  for (size_t i = 0; i < n; i++) {
    cnt[truth[i]]++;
    for (int j = 0; j < 3; j++) sum[truth[i]][j] += px[3 * i + j];
  }
  int used[8] = {0};
  for (int k = 0; k < 8; k++) {
    float m[3];
    for (int j = 0; j < 3; j++) m[j] = (float)(sum[k][j] / cnt[k] / 127.5 - 1);
    double d;
    int at = palette_nearest_brute(c, 8, m, &d);
    cr_assert_lt(d, 1e-12, "cluster %d: nearest centre %d is %g away", k, at, sqrt(d));
    cr_assert_eq(used[at]++, 0, "two clusters share centre %d", at);
  }
  cr_assert_lt(st.iters_run, 20, "well-separated data should converge early");
  free(px);
  free(truth);
}

Test(palette, kmeans_is_deterministic_across_runs_and_threads) {
  rng_t r;
  rng_seed(&r, 9);
  size_t n = 30000;
  uint8_t *px = xmalloc(3 * n);
  for (size_t i = 0; i < 3 * n; i++) px[i] = (uint8_t)(rng_below(&r, 256) / 2 + (i % 3) * 40);
  int K = 48;
  float *a = xmalloc(sizeof(float) * 3 * K), *b = xmalloc(sizeof(float) * 3 * K),
        *c = xmalloc(sizeof(float) * 3 * K), *d = xmalloc(sizeof(float) * 3 * K);
  kmeans_stats sa, sb, sc, sd;
  int nt = omp_get_max_threads();
  omp_set_num_threads(1);
  cr_assert_eq(kmeans_fit(px, n, K, 8, 42, a, &sa, 0), 0);
  omp_set_num_threads(3);
  cr_assert_eq(kmeans_fit(px, n, K, 8, 42, b, &sb, 0), 0);
  cr_assert_eq(kmeans_fit(px, n, K, 8, 42, c, &sc, 0), 0);
  omp_set_num_threads(nt);
  cr_assert_eq(kmeans_fit(px, n, K, 8, 43, d, &sd, 0), 0);
  cr_assert_eq(memcmp(a, b, sizeof(float) * 3 * K), 0, "1 vs 3 threads differ");
  cr_assert_eq(memcmp(b, c, sizeof(float) * 3 * K), 0, "two runs differ");
  cr_assert_eq(sa.inertia, sb.inertia);
  cr_assert_neq(memcmp(a, d, sizeof(float) * 3 * K), 0, "another seed gave the same centres");
  // Lloyd iterations improve on the k-means++ centres.
  cr_assert_lt(sa.inertia, sa.inertia_init);
  free(a); free(b); free(c); free(d); free(px);
}

// Fewer distinct colours than centres: empty clusters, no crash, every pixel exactly on a centre.
Test(palette, kmeans_more_centres_than_colours) {
  uint8_t px[4 * 3 * 50];
  for (int i = 0; i < 200; i++)
    for (int j = 0; j < 3; j++) px[3 * i + j] = (uint8_t)((i % 4) * 60 + j);
  float c[16 * 3];
  kmeans_stats st;
  cr_assert_eq(kmeans_fit(px, 200, 16, 10, 0, c, &st, 0), 0, "%s", igpt_errmsg());
  cr_assert_eq(st.inertia, 0.0);
  cr_assert_eq(palette_check(c, 16, "c"), 0);
}

// Palette colours survive tokenize -> detokenize exactly, in memory and through the verbs.
Test(palette, round_trip_on_palette_colours) {
  rng_t r;
  rng_seed(&r, 21);
  int K = 512;
  float *c = xmalloc(sizeof(float) * 3 * K);
  uint8_t *cols = xmalloc(3 * (size_t)K);
  for (int k = 0; k < K; k++)
    for (int j = 0; j < 3; j++) {
      cols[3 * k + j] = (uint8_t)rng_below(&r, 256);
      c[3 * k + j] = palette_pixel(cols[3 * k + j]);
    }
  for (int k = 0; k < K; k++) cols[3 * k] = (uint8_t)(k / 2), c[3 * k] = palette_pixel(cols[3 * k]);
  int N = 3, H = 16, W = 12;
  size_t n = (size_t)N * H * W;
  uint8_t *img = xmalloc(3 * n), *back = xmalloc(3 * n);
  uint16_t *tok = xmalloc(2 * n);
  for (size_t i = 0; i < n; i++) memcpy(img + 3 * i, cols + 3 * rng_below(&r, (uint32_t)K), 3);
  cr_assert_eq(palette_tokenize(c, K, img, n, tok), 0);
  cr_assert_eq(palette_detokenize(c, K, tok, n, back), 0);
  cr_assert_eq(memcmp(img, back, 3 * n), 0, "round trip changed a palette colour");
  for (int p = 0; p < 256; p++) cr_assert_eq(palette_unpixel(palette_pixel((uint8_t)p)), p);
  tok[5] = (uint16_t)K;
  cr_assert_eq(palette_detokenize(c, K, tok, n, back), -1);
  cr_assert(strstr(igpt_errmsg(), "position 5"), "%s", igpt_errmsg());

  char *dir = test_tmpdir("pal-rt");
  char *pp = xasprintf("%s/p.safetensors", dir), *ip = xasprintf("%s/i.safetensors", dir),
       *tp = xasprintf("%s/t.safetensors", dir), *bp = xasprintf("%s/b.safetensors", dir),
       *gp = xasprintf("%s/g.png", dir);
  cr_assert_eq(palette_save(pp, c, K, NULL), 0);
  int32_t labels[3] = {4, 0, 9};
  st_writer *w = st_writer_new();
  st_writer_add(w, "images", ST_U8, 4, (int64_t[]){N, H, W, 3}, img);
  st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){N}, labels);
  cr_assert_eq(st_writer_save(w, ip), 0);
  st_writer_free(w);
  char *bin = igpt_bin();
  char *cmd = xasprintf("%s tokenize --quiet --palette %s --images %s --out %s && "
                        "%s detokenize --quiet --palette %s --tokens %s --out %s --png %s --n 2",
                        bin, pp, ip, tp, bin, pp, tp, bp, gp);
  cr_assert_eq(run_cmd(cmd), 0, "%s", cmd);
  st_file f;
  cr_assert_eq(st_open(&f, bp), 0, "%s", igpt_errmsg());
  const st_tensor *bi = st_expect(&f, "images", ST_U8, 4, (int64_t[]){N, H, W, 3});
  const st_tensor *bl = st_expect(&f, "labels", ST_I32, 1, (int64_t[]){N});
  cr_assert(bi && bl, "%s", igpt_errmsg());
  cr_assert_eq(memcmp(bi->data, img, 3 * n), 0);
  cr_assert_eq(memcmp(bl->data, labels, sizeof labels), 0);
  st_close(&f);
  uint8_t *png;
  size_t plen;
  cr_assert_eq(file_read_all(gp, &png, &plen), 0);
  cr_assert(plen > 8 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0, "not a PNG");
  free(png);
  rm_rf(dir);
  free(cmd); free(bin); free(pp); free(ip); free(tp); free(bp); free(gp); free(dir);
  free(c); free(cols); free(img); free(back); free(tok);
}

Test(palette, sample_is_deterministic_and_without_replacement) {
  size_t total = 5000, n = 1234;
  uint8_t *px = xmalloc(3 * total), *a = xmalloc(3 * n), *b = xmalloc(3 * total);
  for (size_t i = 0; i < total; i++) {  // each pixel encodes its index
    px[3 * i] = (uint8_t)(i >> 8); px[3 * i + 1] = (uint8_t)i; px[3 * i + 2] = 0;
  }
  cr_assert_eq(palette_sample(px, total, n, 7, a), n);
  cr_assert_eq(palette_sample(px, total, n, 7, b), n);
  cr_assert_eq(memcmp(a, b, 3 * n), 0);
  long prev = -1;
  for (size_t i = 0; i < n; i++) {
    long idx = a[3 * i] << 8 | a[3 * i + 1];
    cr_assert_gt(idx, prev, "sample not strictly increasing (repeat or disorder) at %zu", i);
    prev = idx;
  }
  cr_assert_eq(palette_sample(px, total, 99999, 7, b), total);  // more than there are: all
  free(px); free(a); free(b);
}

// The palette verb end to end, --from-npy, and its errors.
Test(palette, verbs_and_errors) {
  char *dir = test_tmpdir("pal-verb");
  rng_t r;
  rng_seed(&r, 1);
  size_t n = 6 * 16 * 16;
  int truth[6 * 16 * 16];
  uint8_t *img = separated(n, &r, truth);
  char *ip = xasprintf("%s/i.safetensors", dir), *pp = xasprintf("%s/p.safetensors", dir),
       *p2 = xasprintf("%s/p2.safetensors", dir), *np = xasprintf("%s/c.npy", dir),
       *bad = xasprintf("%s/bad.npy", dir);
  st_writer *w = st_writer_new();
  st_writer_add(w, "images", ST_U8, 4, (int64_t[]){6, 16, 16, 3}, img);
  cr_assert_eq(st_writer_save(w, ip), 0);
  st_writer_free(w);
  char *bin = igpt_bin();
  char *cmd = xasprintf("%s palette --quiet --images %s --k 8 --pixels 1000 --seed 4 --out %s", bin, ip, pp);
  cr_assert_eq(run_cmd(cmd), 0, "%s", cmd);
  float *c;
  int K;
  cr_assert_eq(palette_load(pp, &c, &K), 0, "%s", igpt_errmsg());
  cr_assert_eq(K, 8);
  double ck[8 * 3];
  for (int i = 0; i < 24; i++) ck[i] = c[i];
  cr_assert_eq(npy_write(np, ST_F64, 2, (int64_t[]){8, 3}, ck), 0);
  free(cmd);
  cmd = xasprintf("%s palette --quiet --from-npy %s --out %s", bin, np, p2);
  cr_assert_eq(run_cmd(cmd), 0, "%s", cmd);
  float *c2;
  cr_assert_eq(palette_load(p2, &c2, &K), 0, "%s", igpt_errmsg());
  cr_assert_eq(memcmp(c, c2, sizeof(float) * 24), 0);
  free(cmd);
  ck[4] = NAN;
  cr_assert_eq(npy_write(bad, ST_F64, 2, (int64_t[]){8, 3}, ck), 0);
  cr_assert_eq(palette_load(bad, &c2 /* untouched on failure */, &K), -1);
  cr_assert(strstr(igpt_errmsg(), "not finite") && strstr(igpt_errmsg(), "bad.npy"), "%s", igpt_errmsg());
  cr_assert_eq(npy_write(bad, ST_F32, 2, (int64_t[]){4, 6}, c), 0);
  cr_assert_eq(palette_load(bad, &c2, &K), -1);
  cr_assert(strstr(igpt_errmsg(), "expected (K, 3)"), "%s", igpt_errmsg());
  free(c2);
  cmd = xasprintf("%s palette --images %s --out %s/x 2>/dev/null", bin, bad, dir);
  cr_assert_eq(run_cmd(cmd), 1, "a non-images file must fail with 1");
  free(cmd);
  cmd = xasprintf("%s palette --images %s 2>/dev/null", bin, ip);
  cr_assert_eq(run_cmd(cmd), 2, "a missing --out is a usage error");
  free(cmd);
  cmd = xasprintf("%s tokenize --help >/dev/null && %s detokenize --help >/dev/null && "
                  "%s palette --help >/dev/null", bin, bin, bin);
  cr_assert_eq(run_cmd(cmd), 0);
  char *xp = xasprintf("%s/x", dir);
  cr_assert(!path_exists(xp), "a failed verb left an output");
  rm_rf(dir);
  free(xp); free(cmd); free(bin); free(c); free(img); free(ip); free(pp); free(p2); free(np); free(bad); free(dir);
}
