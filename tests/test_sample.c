// sample: the KV-cached incremental forward gives the full forward's logits at every position
// (random model with every tensor perturbed, and the HF oracle model), the same seed gives the
// same samples with and without the cache, top-k and temperature behave, and bad input fails.
#include "testutil.h"
#include "interop/hf.h"
#include "engine/model.h"
#include "engine/sample.h"
#include "reports/pngio.h"
#include "base/safetensors.h"

// A small model whose every parameter is random, so no tensor can be skipped by mistake
// (official init leaves wtet zero and gains one).
static model *random_model(bool bias) {
  model_config c;
  model_config_default(&c);
  c.n_layer = 2; c.n_embd = 32; c.n_head = 4; c.n_ctx = 24; c.n_vocab = 16; c.bias = bias;
  model *m = model_new(&c);
  cr_assert_not_null(m, "%s", igpt_errmsg());
  model_init(m, 7);
  rng_t r;
  rng_seed(&r, 11);
  for (size_t i = 0; i < m->n_params; i++) m->params[i] += 0.1f * rng_normal(&r);
  return m;
}

// ||kv - full|| / ||full|| over all positions. Both are float32 with different summation orders
// (one row through sgemm vs the batched sgemm, scalar attention vs blocked), so they differ by
// rounding only: a few float32 ulps per dot product, ~1e-6 relative after the layers. 1e-5 is the
// budget the project uses for float32 against float64 oracles; a wrong cache row or mask is O(1).
static double kv_vs_full(model *m, int B) {
  const int T = m->cfg.n_ctx, V = m->cfg.n_vocab;
  uint16_t *tok = xmalloc((size_t)B * T * sizeof *tok);
  rng_t r;
  rng_seed(&r, 3);
  for (int i = 0; i < B * T; i++) tok[i] = (uint16_t)rng_below(&r, V);
  model_batch mb = {.tokens = tok, .B = B, .T = T, .head = true};
  cr_assert_eq(model_forward(m, &mb), 0, "%s", igpt_errmsg());
  float *full = xmalloc((size_t)B * T * V * sizeof *full);
  memcpy(full, model_logits(m), (size_t)B * T * V * sizeof *full);
  model_kv *kv = model_kv_new(m, B);
  float *lg = xmalloc((size_t)B * V * sizeof *lg);
  double num = 0, den = 0;
  uint16_t *prev = xmalloc(B * sizeof *prev);
  for (int t = 0; t < T; t++) {
    for (int b = 0; b < B; b++) prev[b] = t ? tok[b * T + t - 1] : 0;
    cr_assert_eq(model_decode(m, kv, prev, lg), 0, "%s", igpt_errmsg());
    for (int b = 0; b < B; b++)
      for (int v = 0; v < V; v++) {
        double ref = full[((size_t)b * T + t) * V + v], d = lg[b * V + v] - ref;
        num += d * d;
        den += ref * ref;
      }
  }
  cr_assert_eq(model_decode(m, kv, prev, lg), -1, "a step past n_ctx must fail");
  model_kv_free(kv);
  free(lg);
  free(prev); free(full); free(tok);
  return sqrt(num / den);
}

Test(sample, kv_cache_matches_full_forward) {
  for (int bias = 0; bias < 2; bias++) {
    model *m = random_model(bias);
    double e = kv_vs_full(m, 3);
    cr_log_info("bias %d: rel err %g", bias, e);
    cr_assert(e < 1e-5, "bias %d: KV-cache logits differ from the full forward: rel err %g", bias, e);
    model_free(m);
  }
}

Test(sample, kv_cache_matches_full_forward_on_hf_oracle) {
  char *dir = oracle_path("hf-imagegpt-tiny");
  model *m = hf_import(dir, false);
  cr_assert_not_null(m, "%s", igpt_errmsg());
  double e = kv_vs_full(m, 2);
  cr_assert(e < 1e-5, "rel err %g", e);
  model_free(m);
  free(dir);
}

Test(sample, same_seed_same_samples) {
  model *m = random_model(false);
  const int B = 3, T = m->cfg.n_ctx, given = 10;
  uint16_t *a = xcalloc((size_t)B * T, 2), *b = xcalloc((size_t)B * T, 2), *c = xcalloc((size_t)B * T, 2);
  for (int i = 0; i < B; i++)
    for (int t = 0; t < given; t++) a[i * T + t] = b[i * T + t] = c[i * T + t] = (uint16_t)((i + t) % 16);
  sample_opts o = {.temperature = 1.0, .top_k = 0, .seed = 5, .use_cache = true};
  cr_assert_eq(sample_tokens(m, a, B, T, given, &o, NULL, NULL), 0, "%s", igpt_errmsg());
  cr_assert_eq(sample_tokens(m, b, B, T, given, &o, NULL, NULL), 0);
  cr_assert_eq(memcmp(a, b, (size_t)B * T * 2), 0, "same seed, different samples");
  for (int i = 0; i < B; i++)
    for (int t = 0; t < given; t++) cr_assert_eq(a[i * T + t], (i + t) % 16, "a given token changed");
  // without the cache: same draws unless a logit differs across a sampling boundary by rounding,
  // which a 1e-6 relative difference makes vanishingly unlikely over these few draws
  o.use_cache = false;
  cr_assert_eq(sample_tokens(m, c, B, T, given, &o, NULL, NULL), 0, "%s", igpt_errmsg());
  cr_assert_eq(memcmp(a, c, (size_t)B * T * 2), 0, "the cached and uncached samplers disagree");
  o.use_cache = true;
  o.seed = 6;
  cr_assert_eq(sample_tokens(m, b, B, T, given, &o, NULL, NULL), 0);
  cr_assert_neq(memcmp(a, b, (size_t)B * T * 2), 0, "another seed gave the same samples");
  free(a); free(b); free(c);
  model_free(m);
}

Test(sample, top_k_and_temperature) {
  float logits[6] = {0.1f, 3.0f, -1.0f, 2.5f, 0.0f, 2.9f};
  rng_t r;
  rng_seed(&r, 1);
  int counts[6] = {0};
  for (int i = 0; i < 3000; i++) counts[sample_token(logits, 6, 1.0, 2, &r)]++;
  cr_assert(counts[1] + counts[5] == 3000, "top-2 drew outside the two largest");
  cr_assert(counts[1] > counts[5], "the larger logit should be drawn more often");
  for (int i = 0; i < 200; i++) cr_assert_eq(sample_token(logits, 6, 1e-4, 0, &r), 1, "near-zero temperature is argmax");
}

Test(sample, bad_input) {
  model *m = random_model(false);
  uint16_t tok[24] = {0};
  tok[3] = 99;  // outside the palette of 16
  sample_opts o = {.temperature = 1.0, .seed = 1, .use_cache = true};
  cr_assert_eq(sample_tokens(m, tok, 1, 24, 5, &o, NULL, NULL), -1);
  cr_assert(strstr(igpt_errmsg(), "outside the palette"), "%s", igpt_errmsg());
  cr_assert_eq(sample_tokens(m, tok, 1, 25, 0, &o, NULL, NULL), -1);  // longer than n_ctx
  o.temperature = 0;
  tok[3] = 0;
  cr_assert_eq(sample_tokens(m, tok, 1, 24, 0, &o, NULL, NULL), -1);
  model_free(m);
}

// igpt sample end to end on the imported HF oracle model (8x8 images, 16 colours): the same seed
// writes the same PNG; a completion grid has r rows of original, given half and n completions,
// and every completion keeps the given top half.
Test(sample, cli_grids) {
  char *dir = test_tmpdir("samplecli"), *bin = igpt_bin(), *hf = oracle_path("hf-imagegpt-tiny");
  char *mp = xasprintf("%s/model.safetensors", dir), *pp = xasprintf("%s/palette.safetensors", dir);
  char *ip = xasprintf("%s/images.safetensors", dir);
  char *cmd = xasprintf("'%s' import --from hf '%s' --out '%s' >/dev/null 2>&1", bin, hf, mp);
  cr_assert_eq(run_cmd(cmd), 0, "import failed");
  free(cmd);
  st_file q;
  char *qp = oracle_path("hf-imagegpt-tiny/quantize.safetensors");
  cr_assert_eq(st_open(&q, qp), 0, "%s", igpt_errmsg());
  const st_tensor *cl = st_expect(&q, "clusters", ST_F32, 2, (int64_t[]){16, 3});
  cr_assert_not_null(cl);
  st_writer *w = st_writer_new();
  st_writer_add(w, "clusters", ST_F32, 2, (int64_t[]){16, 3}, cl->data);
  cr_assert_eq(st_writer_save(w, pp), 0);
  st_writer_free(w);
  uint8_t img[2 * 8 * 8 * 3];
  for (size_t i = 0; i < sizeof img; i++) img[i] = (uint8_t)(i * 37);
  w = st_writer_new();
  st_writer_add(w, "images", ST_U8, 4, (int64_t[]){2, 8, 8, 3}, img);
  cr_assert_eq(st_writer_save(w, ip), 0);
  st_writer_free(w);

  char *base = xasprintf("'%s' sample --model '%s' --palette '%s' 2>/dev/null", bin, mp, pp);
  char *c1 = xasprintf("%s --n 4 --seed 9 --out '%s/a.png'", base, dir);
  char *c2 = xasprintf("%s --n 4 --seed 9 --out '%s/b.png'", base, dir);
  cr_assert_eq(run_cmd(c1), 0);
  cr_assert_eq(run_cmd(c2), 0);
  char *pa = xasprintf("%s/a.png", dir), *pb = xasprintf("%s/b.png", dir);
  char ha[65], hb[65];
  cr_assert_eq(sha256_file(pa, ha), 0);
  cr_assert_eq(sha256_file(pb, hb), 0);
  cr_assert_str_eq(ha, hb, "same seed, different grid");

  char *c3 = xasprintf("%s --n 3 --complete '%s' --rows 2 --seed 1 --out '%s/c.png' --save-tokens '%s/c.safetensors'",
                       base, ip, dir, dir);
  cr_assert_eq(run_cmd(c3), 0);
  char *pc = xasprintf("%s/c.png", dir), *tc = xasprintf("%s/c.safetensors", dir);
  uint8_t *rgb;
  int W, H;
  cr_assert_eq(pngio_read(pc, &rgb, &W, &H), 0, "%s", igpt_errmsg());
  const int cell = 8 * 8, pad = 2;  // 8x8 images scaled by 64/8 = 8
  cr_assert_eq(W, 5 * (cell + pad) + pad, "width %d: want 5 columns (original, given, 3 completions)", W);
  cr_assert_eq(H, 2 * (cell + pad) + pad);
  free(rgb);
  st_file t;
  cr_assert_eq(st_open(&t, tc), 0, "%s", igpt_errmsg());
  const st_tensor *tk = st_expect(&t, "tokens", ST_U16, 2, (int64_t[]){6, 64});
  cr_assert_not_null(tk, "%s", igpt_errmsg());
  const uint16_t *tt = tk->data;
  for (int b = 0; b < 6; b++)  // completions of one image share its top half (32 tokens)
    cr_assert_eq(memcmp(tt + b * 64, tt + (b / 3) * 3 * 64, 32 * 2), 0, "completion %d changed the given half", b);
  st_close(&t);
  char *bad = xasprintf("%s --n 2 --out '%s/x.png' --top-k -1", base, dir);
  cr_assert_eq(run_cmd(bad), 2, "a negative top-k must be a usage error");
  st_close(&q);
  rm_rf(dir);
  free(bad); free(pc); free(tc); free(c3); free(pa); free(pb); free(c1); free(c2); free(base);
  free(qp); free(ip); free(pp); free(mp); free(hf); free(bin); free(dir);
}
