// features: pooled per-layer features do not depend on the batch size, raw features are the
// residual stream's means, BERT evaluation masks are seeded per image and mask, and the verb
// writes a file the probe reads.
#include "testutil.h"
#include "engine/featurize.h"
#include "engine/model.h"
#include "eval/probe.h"
#include "base/safetensors.h"

static model *tiny(model_objective obj) {
  model_config c;
  model_config_default(&c);
  c.n_layer = 3, c.n_embd = 16, c.n_head = 2, c.n_ctx = 12, c.n_vocab = 9, c.objective = obj;
  model *m = model_new(&c);
  cr_assert_not_null(m, "%s", igpt_errmsg());
  model_init(m, 5);
  // gains away from 1 so that "gain included" is tested
  rng_t r;
  rng_seed(&r, 8);
  model_param_id g[] = {P_LN1_G, P_LNF_G};
  for (int k = 0; k < 2; k++)
    for (size_t i = 0; i < m->info[g[k]].numel; i++) m->param[g[k]][i] = 1 + 0.5f * rng_normal(&r);
  return m;
}

static uint16_t *random_tokens(int N, int T, int V, uint64_t seed) {
  uint16_t *t = xmalloc(sizeof(uint16_t) * N * T);
  rng_t r;
  rng_seed(&r, seed);
  for (int i = 0; i < N * T; i++) t[i] = (uint16_t)rng_below(&r, V);
  return t;
}

static void free_layers(float **f, int L) {
  if (!f) return;
  for (int l = 0; l <= L; l++) free(f[l]);
  free(f);
}

Test(features, batch_size_does_not_change_them_and_raw_is_the_stream_mean) {
  model *m = tiny(OBJ_AR);
  const int N = 7, T = 12, C = 16, L = 3;
  uint16_t *tok = random_tokens(N, T, 9, 1);
  float **a, **b, **ra, **rb;
  features_opts o = {.batch = 3, .masks = 1, .raw = 1};
  cr_assert_eq(features_extract(m, tok, N, T, &o, &a, &ra), 0, "%s", igpt_errmsg());
  o.batch = 1;
  cr_assert_eq(features_extract(m, tok, N, T, &o, &b, &rb), 0, "%s", igpt_errmsg());
  // batch 3 against batch 1: float32 sums in a different grouping; 1e-5 relative
  for (int l = 0; l <= L; l++) {
    double num = 0, den = 0;
    for (int i = 0; i < N * C; i++) {
      num += (a[l][i] - b[l][i]) * (a[l][i] - b[l][i]);
      den += (double)b[l][i] * b[l][i];
      cr_assert_float_eq(ra[l][i], rb[l][i], 1e-5 * (1 + fabsf(rb[l][i])));
    }
    cr_assert_lt(sqrt(num / den), 1e-5, "layer %d differs across batch sizes", l);
  }
  // raw_0 is the mean of h0: sos + wpe[0] at t = 0, wte[x[t-1]] + wpe[t] after
  const float *wte = m->param[P_WTE], *wpe = m->param[P_WPE], *sos = m->param[P_SOS];
  for (int i = 0; i < N; i++)
    for (int c = 0; c < C; c++) {
      double s = sos[c] + wpe[c];
      for (int t = 1; t < T; t++) s += wte[tok[i * T + t - 1] * C + c] + wpe[t * C + c];
      cr_assert_float_eq(ra[0][i * C + c], s / T, 1e-5, "raw_0[%d,%d]", i, c);
    }
  // layer_0 is the mean of norm(h0) * g: recompute for one image
  const float *g = m->param[P_LN1_G];
  for (int c = 0; c < C; c++) {
    double s = 0;
    for (int t = 0; t < T; t++) {
      double h[16], ms = 0;
      for (int j = 0; j < C; j++) {
        h[j] = (t ? wte[tok[t - 1] * C + j] : sos[j]) + wpe[t * C + j];
        ms += h[j] * h[j];
      }
      s += h[c] / sqrt(ms / C + 1e-5) * g[c];
    }
    cr_assert_float_eq(a[0][c], s / T, 1e-5, "layer_0[0,%d]", c);
  }
  free_layers(a, L); free_layers(b, L); free_layers(ra, L); free_layers(rb, L);
  free(tok);
  model_free(m);
}

Test(features, bert_masks_are_seeded_per_image_and_mask) {
  model *m = tiny(OBJ_BERT);
  const int N = 5, T = 12, C = 16, L = 3, K = 3;
  uint16_t *tok = random_tokens(N, T, 9, 2);
  float **a, **b;
  features_opts o = {.batch = 2, .masks = K, .seed = 11};
  cr_assert_eq(features_extract(m, tok, N, T, &o, &a, NULL), 0, "%s", igpt_errmsg());
  o.batch = 5;
  cr_assert_eq(features_extract(m, tok, N, T, &o, &b, NULL), 0, "%s", igpt_errmsg());
  for (int l = 0; l <= L; l++)
    for (int i = 0; i < K * N * C; i++) cr_assert_float_eq(a[l][i], b[l][i], 1e-5);
  free_layers(b, L);
  // one mask is mask 0 of K (a table's ensemble computes the train split, which the probe fits on
  // mask 0, with one mask)
  o.masks = 1;
  cr_assert_eq(features_extract(m, tok, N, T, &o, &b, NULL), 0, "%s", igpt_errmsg());
  for (int l = 0; l <= L; l++)
    for (int i = 0; i < N * C; i++) cr_assert_float_eq(a[l][i], b[l][i], 1e-5);
  // mask k of image i is features_mask(seed, k, i): a direct forward reproduces it
  uint8_t mask[12];
  features_mask(11, 2, 3, m->cfg.mask_prob, mask, T);
  model_batch mb = {.tokens = tok + 3 * T, .mask = mask, .B = 1, .T = T};
  cr_assert_eq(model_forward(m, &mb), 0, "%s", igpt_errmsg());
  for (int l = 0; l <= L; l++)
    for (int c = 0; c < C; c++)
      cr_assert_float_eq(a[l][(2 * N + 3) * C + c], model_features(m)[(size_t)l * C + c], 1e-5);
  // different masks give different features (p = 0.15 over 12 positions: identical masks for
  // all five images under two masks would be a broken stream)
  double diff = 0;
  for (int i = 0; i < N * C; i++) diff += fabs(a[L][i] - a[L][N * C + i]);
  cr_assert_gt(diff, 1e-4, "mask 0 and mask 1 gave the same features");
  free_layers(a, L); free_layers(b, L);
  free(tok);
  model_free(m);
}

Test(features, verb_writes_a_file_the_probe_reads) {
  model *m = tiny(OBJ_AR);
  char *dir = test_tmpdir("features");
  char *mp = xasprintf("%s/model.safetensors", dir), *tp = xasprintf("%s/tok.safetensors", dir),
       *fp = xasprintf("%s/feat.safetensors", dir);
  cr_assert_eq(model_save(m, mp), 0, "%s", igpt_errmsg());
  const int N = 6, T = 12;
  uint16_t *tok = random_tokens(N, T, 9, 3);
  int32_t lab[6] = {0, 1, 2, 0, 1, 2};
  st_writer *w = st_writer_new();
  st_writer_add(w, "tokens", ST_U16, 2, (int64_t[]){N, T}, tok);
  st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){N}, lab);
  cr_assert_eq(st_writer_save(w, tp), 0);
  st_writer_free(w);
  char *bin = igpt_bin();
  char *cmd = xasprintf("%s features --model %s --tokens %s --out %s --batch 4 --raw --quiet", bin, dir, tp, fp);
  cr_assert_eq(run_cmd(cmd), 0, "%s", cmd);
  features_file ff;
  cr_assert_eq(features_open(&ff, fp), 0, "%s", igpt_errmsg());
  cr_assert_eq(ff.n_layers, 4);
  cr_assert_eq(ff.n, N);
  cr_assert_eq(ff.masks, 1);
  cr_assert_eq(memcmp(ff.labels, lab, sizeof lab), 0);
  cr_assert_not_null(st_get(&ff.st, "raw_3"));
  features_close(&ff);
  free(cmd);
  // BERT masks asked of an autoregressive model: usage error; a token outside the palette: error
  cmd = xasprintf("%s features --model %s --tokens %s --out %s --masks 2 2>/dev/null", bin, mp, tp, fp);
  cr_assert_eq(run_cmd(cmd), 2);
  free(cmd);
  tok[5] = 9;
  w = st_writer_new();
  st_writer_add(w, "tokens", ST_U16, 2, (int64_t[]){N, T}, tok);
  cr_assert_eq(st_writer_save(w, tp), 0);
  st_writer_free(w);
  cmd = xasprintf("%s features --model %s --tokens %s --out %s.bad 2>%s/err", bin, mp, tp, fp, dir);
  cr_assert_eq(run_cmd(cmd), 1);
  char *errp = xasprintf("%s/err", dir);
  uint8_t *err;
  size_t len;
  cr_assert_eq(file_read_all(errp, &err, &len), 0);
  cr_assert(memmem(err, len, "tokens[0, 5]", 12), "%.*s", (int)len, err);
  free(err); free(errp); free(cmd); free(bin);
  rm_rf(dir);
  free(dir); free(mp); free(tp); free(fp); free(tok);
  model_free(m);
}

// Runs `igpt features` (or loss, with verb) on model mp and tokens tp; its exit status, stderr in *err.
static int run_verb(const char *dir, const char *args, char **err) {
  char *bin = igpt_bin();
  char *cmd = xasprintf("%s %s 2>%s/err.txt >/dev/null", bin, args, dir), *ep = xasprintf("%s/err.txt", dir);
  int rc = run_cmd(cmd);
  size_t len;
  uint8_t *buf = NULL;
  cr_assert_eq(file_read_all(ep, &buf, &len), 0);
  *err = (char *)buf;
  free(bin); free(cmd); free(ep);
  return rc;
}

// Issue 15: NaN weights and overflowing activations are refused, naming the tensor (and layer) or
// the layer and image, and nothing is written; labels that do not match the rows are refused.
Test(features, verb_refuses_nonfinite_weights_and_outputs_and_mismatched_labels) {
  model *m = tiny(OBJ_AR);
  char *dir = test_tmpdir("features-nan");
  char *mp = xasprintf("%s/model.safetensors", dir), *tp = xasprintf("%s/tok.safetensors", dir),
       *fp = xasprintf("%s/feat.safetensors", dir);
  const int N = 6, T = 12;
  uint16_t *tok = random_tokens(N, T, 9, 3);
  int32_t lab[5] = {0, 1, 2, 0, 1};
  st_writer *w = st_writer_new();
  st_writer_add(w, "tokens", ST_U16, 2, (int64_t[]){N, T}, tok);
  st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){5}, lab);  // 5 labels for 6 rows
  cr_assert_eq(st_writer_save(w, tp), 0);
  st_writer_free(w);
  cr_assert_eq(model_save(m, mp), 0, "%s", igpt_errmsg());
  char *args = xasprintf("features --model %s --tokens %s --out %s", mp, tp, fp), *err;
  cr_assert_eq(run_verb(dir, args, &err), 1, "%s", err);
  cr_assert(strstr(err, "labels") && strstr(err, "6 rows"), "%s", err);
  free(err);
  // one NaN in layer 2 of a per-layer tensor
  w = st_writer_new();
  st_writer_add(w, "tokens", ST_U16, 2, (int64_t[]){N, T}, tok);
  cr_assert_eq(st_writer_save(w, tp), 0);
  st_writer_free(w);
  const model_tensor_info *g = &m->info[P_LN1_G];
  size_t at = 2 * (g->numel / 3) + 1;
  m->param[P_LN1_G][at] = NAN;
  cr_assert_eq(model_save(m, mp), 0, "%s", igpt_errmsg());
  cr_assert_eq(run_verb(dir, args, &err), 1, "%s", err);
  cr_assert(strstr(err, g->name) && strstr(err, "layer 2") && strstr(err, "nan"), "%s", err);
  free(err);
  // finite weights whose sum overflows: the residual stream is inf, its norm NaN
  m->param[P_LN1_G][at] = 1;
  for (size_t i = 0; i < m->info[P_WTE].numel; i++) m->param[P_WTE][i] = 3e38f;
  for (size_t i = 0; i < m->info[P_WPE].numel; i++) m->param[P_WPE][i] = 3e38f;
  cr_assert_eq(model_save(m, mp), 0, "%s", igpt_errmsg());
  cr_assert_eq(run_verb(dir, args, &err), 1, "%s", err);
  cr_assert(strstr(err, "layer_0 of image") && strstr(err, "not finite"), "%s", err);
  cr_assert(!path_exists(fp), "a features file was written");
  free(err);
  rm_rf(dir);
  free(args); free(dir); free(mp); free(tp); free(fp); free(tok);
  model_free(m);
}
