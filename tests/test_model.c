// model: finite-difference gradient checks (BERT objective, classifier loss), config JSON, model
// files (round trip, malformed files get clear errors), batch validation, BERT masks.
#include "testutil.h"
#include "engine/model.h"
#include "base/safetensors.h"

static model_config tiny(model_objective obj, bool bias, int n_classes) {
  model_config c;
  model_config_default(&c);
  c.n_layer = 2, c.n_embd = 16, c.n_head = 2, c.n_ctx = 8, c.n_vocab = 7;
  c.objective = obj, c.bias = bias, c.n_classes = n_classes;
  return c;
}

// Random parameters of a size where every path carries gradient (the official init zeroes the
// heads, which would leave most gradients zero).
static void randomize(model *m, uint64_t seed) {
  rng_t r;
  rng_seed(&r, seed);
  for (size_t i = 0; i < m->n_params; i++) m->params[i] = 0.3f * rng_normal(&r);
  model_param_id gains[] = {P_LN1_G, P_LN2_G, P_LNF_G};
  for (int g = 0; g < 3; g++)
    for (size_t i = 0; i < m->info[gains[g]].numel; i++) m->param[gains[g]][i] += 1.0f;
}

static double loss_at(model *m, const model_batch *b) {
  cr_assert_eq(model_forward(m, b), 0, "%s", igpt_errmsg());
  return m->loss;
}

// For every parameter tensor, the directional derivative along a random unit direction d:
// analytic g.d against the central difference (L(p + e d) - L(p - e d)) / 2e, Richardson-
// extrapolated from e = 2e-2 and 1e-2 (truncation O(e^4), about 1e-8 here).
// Tolerance: the forward is float32, so L carries a rounding error of about 1e-6 |L| (a few ulps
// through a few dozen ops), which the difference quotient amplifies to ~1e-6 |L| / e = 1e-4 |L|;
// we allow 3e-4 |L| + 1e-3 |g.d|. A wrong gradient term is off by O(|g.d|) and fails.
static void gradcheck(model *m, const model_batch *b, const char *what) {
  model_batch bg = *b;
  bg.grad = true;
  double L0 = loss_at(m, &bg);
  model_zero_grad(m);
  cr_assert_eq(model_backward(m), 0, "%s", igpt_errmsg());
  rng_t r;
  rng_seed(&r, 99);
  int checked = 0;
  for (int p = 0; p < P_NTENSORS; p++) {
    size_t n = m->info[p].numel;
    if (!n) continue;
    float *x = m->param[p], *g = m->grad[p];
    float *x0 = xmalloc(n * sizeof *x0);
    double *d = xmalloc(n * sizeof *d), norm = 0, ana = 0;
    memcpy(x0, x, n * sizeof *x0);
    for (size_t i = 0; i < n; i++) d[i] = rng_normal(&r), norm += d[i] * d[i];
    norm = sqrt(norm);
    for (size_t i = 0; i < n; i++) d[i] /= norm, ana += (double)g[i] * d[i];
    double D[2];
    for (int k = 0; k < 2; k++) {
      double e = k ? 1e-2 : 2e-2, f[2];
      for (int s = 0; s < 2; s++) {
        for (size_t i = 0; i < n; i++) x[i] = (float)(x0[i] + (s ? -e : e) * d[i]);
        f[s] = loss_at(m, b);
      }
      D[k] = (f[0] - f[1]) / (2 * e);
    }
    memcpy(x, x0, n * sizeof *x0);
    double num = (4 * D[1] - D[0]) / 3;
    double tol = 3e-4 * fabs(L0) + 1e-3 * fabs(ana);
    cr_expect(fabs(num - ana) <= tol, "%s: %s: analytic %.8g vs numeric %.8g (tolerance %.2g)", what,
              m->info[p].name, ana, num, tol);
    if (getenv("IGPT_TEST_VERBOSE"))
      fprintf(stderr, "%s %-18s ana %+.6e num %+.6e diff %.1e\n", what, m->info[p].name, ana, num, fabs(num - ana));
    checked++;
    free(x0);
    free(d);
  }
  cr_assert_gt(checked, 8);
}

Test(model, gradcheck_bert) {
  model_config c = tiny(OBJ_BERT, false, 0);
  model *m = model_new(&c);
  cr_assert_null(m->param[P_SOS], "the official BERT model has no sos vector");
  randomize(m, 1);
  enum { B = 3, T = 8 };
  uint16_t tok[B * T];
  uint8_t mask[B * T];
  rng_t r;
  rng_seed(&r, 2);
  for (int i = 0; i < B * T; i++) tok[i] = (uint16_t)rng_below(&r, (uint32_t)c.n_vocab);
  model_bert_mask(&r, mask, B, T, 0.4);
  for (int t = 0; t < T; t++) mask[2 * T + t] = 0;  // an example without masks: not counted
  mask[0] = 1, mask[T] = 1;                           // the others have at least one
  model_batch b = {.tokens = tok, .mask = mask, .B = B, .T = T, .head = true};
  gradcheck(m, &b, "bert");
  // the loss is the per-example mean over masked positions, averaged over examples 0 and 1
  loss_at(m, &b);
  double want = 0;
  for (int i = 0; i < 2; i++) {
    double s = 0;
    int nm = 0;
    for (int t = 0; t < T; t++)
      if (mask[i * T + t]) s += m->acts.losses[i * T + t], nm++;
    want += s / nm / 2;
  }
  cr_expect(fabs(m->loss_gen - want) < 1e-5 * want, "BERT loss %.7g, expected %.7g", m->loss_gen, want);
  model_free(m);
}

Test(model, gradcheck_classifier) {
  for (int head = 0; head < 2; head++) {
    model_config c = tiny(OBJ_AR, head, 3);  // with a head: biases too (the HF layout)
    model *m = model_new(&c);
    randomize(m, 3 + head);
    enum { B = 3, T = 6 };
    uint16_t tok[B * T];
    int32_t labels[B] = {2, 0, 1};
    rng_t r;
    rng_seed(&r, 4);
    for (int i = 0; i < B * T; i++) tok[i] = (uint16_t)rng_below(&r, (uint32_t)c.n_vocab);
    model_batch b = {.tokens = tok, .labels = labels, .B = B, .T = T, .head = head};
    gradcheck(m, &b, head ? "ar+clf" : "clf");
    loss_at(m, &b);
    cr_expect(m->loss_clf > 0 && fabs(m->loss - m->loss_gen - m->loss_clf) < 1e-6);
    if (!head) cr_expect_eq(m->loss_gen, 0.0f);
    model_free(m);
  }
}

Test(model, init_is_official_and_deterministic) {
  model_config c = tiny(OBJ_AR, false, 2);
  c.n_embd = 64, c.n_layer = 4, c.n_ctx = 64;
  model *a = model_new(&c), *b = model_new(&c);
  model_init(a, 7);
  model_init(b, 7);
  cr_assert_eq(memcmp(a->params, b->params, a->n_params * sizeof(float)), 0);
  // sample std of each tensor against the official value (n >= 256 draws: within 15%)
  struct { model_param_id p; double std; } want[] = {
      {P_WTE, 0.02}, {P_WPE, 0.01}, {P_QKV_W, 1 / sqrt(64.0)}, {P_ATTPROJ_W, 1 / sqrt(64.0 * 4)},
      {P_FC_W, 0.02}, {P_FCPROJ_W, 0.02}};
  for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
    double s = 0;
    size_t n = a->info[want[k].p].numel;
    for (size_t i = 0; i < n; i++) s += (double)a->param[want[k].p][i] * a->param[want[k].p][i];
    double std = sqrt(s / n);
    cr_expect(fabs(std / want[k].std - 1) < 0.15, "%s: std %g, official %g", a->info[want[k].p].name, std, want[k].std);
  }
  for (size_t i = 0; i < a->info[P_LN1_G].numel; i++) cr_assert_eq(a->param[P_LN1_G][i], 1.0f);
  for (size_t i = 0; i < a->info[P_WTET].numel; i++) cr_assert_eq(a->param[P_WTET][i], 0.0f);
  for (size_t i = 0; i < a->info[P_WCLF].numel; i++) cr_assert_eq(a->param[P_WCLF][i], 0.0f);
  // zero head: every logit 0, so the loss is log V
  uint16_t tok[2 * 64] = {0};
  model_batch bt = {.tokens = tok, .B = 2, .T = 64, .head = true};
  cr_assert_eq(model_forward(a, &bt), 0, "%s", igpt_errmsg());
  cr_expect(fabs(a->loss_gen - log(c.n_vocab)) < 1e-5);
  model_free(a);
  model_free(b);
}

// Features and logits do not depend on whether the forward kept activations for backward.
Test(model, forward_without_grad_matches) {
  model_config c = tiny(OBJ_AR, true, 0);
  model *m = model_new(&c);
  randomize(m, 5);
  uint16_t tok[2 * 8] = {1, 2, 3, 4, 5, 6, 0, 1, 6, 5, 4, 3, 2, 1, 0, 6};
  model_batch b = {.tokens = tok, .B = 2, .T = 8, .head = true, .grad = true};
  cr_assert_eq(model_forward(m, &b), 0, "%s", igpt_errmsg());
  size_t nf = 3 * 2 * 16, nl = 2 * 8 * 7;
  float *f = xmalloc(nf * 4), *lg = xmalloc(nl * 4), loss = m->loss;
  memcpy(f, model_features(m), nf * 4);
  memcpy(lg, model_logits(m), nl * 4);
  b.grad = false;
  cr_assert_eq(model_forward(m, &b), 0, "%s", igpt_errmsg());
  cr_expect_eq(memcmp(f, model_features(m), nf * 4), 0);
  cr_expect_eq(memcmp(lg, model_logits(m), nl * 4), 0);
  cr_expect_eq(loss, m->loss);
  cr_expect_eq(model_backward(m), -1, "backward after a forward without grad must fail");
  // layer-0 feature: the mean over positions of the first norm's output, gain included
  float want0 = 0;
  b.grad = true;
  cr_assert_eq(model_forward(m, &b), 0, "%s", igpt_errmsg());
  for (int t = 0; t < 8; t++) want0 += m->acts.ln1[(size_t)t * 16 + 3] / 8;
  cr_expect(fabs(model_features(m)[3] - want0) < 1e-6);
  free(f);
  free(lg);
  model_free(m);
}

Test(model, rejects_bad_batches) {
  model_config c = tiny(OBJ_AR, false, 2);
  model *m = model_new(&c);
  uint16_t tok[9] = {0, 1, 2, 3, 4, 5, 6, 7, 0};
  model_batch b = {.tokens = tok, .B = 1, .T = 8, .head = true};
  cr_expect_eq(model_forward(m, &b), -1);
  cr_expect(strstr(igpt_errmsg(), "token 7 at [0, 7]") != NULL, "%s", igpt_errmsg());
  tok[7] = MODEL_IGNORE;  // a missing last target is fine
  cr_expect_eq(model_forward(m, &b), 0, "%s", igpt_errmsg());
  tok[3] = MODEL_IGNORE;  // but not as an input
  cr_expect_eq(model_forward(m, &b), -1);
  tok[3] = 3;
  b.T = 9;
  cr_expect_eq(model_forward(m, &b), -1);
  cr_expect(strstr(igpt_errmsg(), "n_ctx") != NULL, "%s", igpt_errmsg());
  b.T = 8;
  int32_t lab = 2;
  b.labels = &lab;
  cr_expect_eq(model_forward(m, &b), -1);
  cr_expect(strstr(igpt_errmsg(), "label 2") != NULL, "%s", igpt_errmsg());
  uint8_t mask[8] = {0};
  b.labels = NULL, b.mask = mask;
  cr_expect_eq(model_forward(m, &b), -1);
  model_free(m);
}

Test(model, bert_mask_rate) {
  rng_t r;
  rng_seed(&r, 11);
  enum { N = 200000 };
  uint8_t *mask = xmalloc(N);
  model_bert_mask(&r, mask, 1, N, 0.15);
  size_t k = 0;
  for (int i = 0; i < N; i++) k += mask[i];
  // binomial std sqrt(p(1-p)/N) = 8e-4; allow 5 of them
  cr_expect(fabs((double)k / N - 0.15) < 4e-3, "mask rate %g", (double)k / N);
  free(mask);
}

// ---------------------------------------------------------------- config JSON

static void cfg_fails(const char *json, const char *needle) {
  model_config c;
  cr_expect_eq(model_config_parse(json, "cfg.json", &c), -1, "accepted %s", json);
  cr_expect(strstr(igpt_errmsg(), "cfg.json") && strstr(igpt_errmsg(), needle), "'%s' lacks '%s': %s", json,
            needle, igpt_errmsg());
}

Test(model, config_json) {
  model_config c, d;
  const char *ok = "{\"n_layer\":2,\"n_embd\":16,\"n_head\":2,\"n_ctx\":8,\"n_vocab\":7}";
  cr_assert_eq(model_config_parse(ok, "cfg.json", &c), 0, "%s", igpt_errmsg());
  cr_expect(!c.bias && c.objective == OBJ_AR && c.mask_prob == 0.15 && c.n_classes == 0);
  c.objective = OBJ_BERT, c.bias = true, c.n_classes = 10, c.mask_prob = 0.25;
  char *s = model_config_dump(&c);
  cr_assert_eq(model_config_parse(s, "dump", &d), 0, "%s", igpt_errmsg());
  cr_expect_eq(memcmp(&c, &d, sizeof c), 0, "round trip of %s", s);
  cr_expect(strstr(s, "\"mask_prob\":0.25"), "%s", s);
  free(s);
  cfg_fails("{\"n_layer\":2,\"n_embd\":16,\"n_head\":2,\"n_ctx\":8}", "'n_vocab' is missing");
  cfg_fails("{\"n_layer\":2,\"n_embd\":16,\"n_head\":3,\"n_ctx\":8,\"n_vocab\":7}", "divisible");
  cfg_fails("{\"n_layer\":\"2\",\"n_embd\":16,\"n_head\":2,\"n_ctx\":8,\"n_vocab\":7}", "'n_layer' must be an integer");
  cfg_fails("{\"n_layer\":2,\"n_embd\":16,\"n_head\":2,\"n_ctx\":8,\"n_vocab\":7,\"objective\":\"mlm\"}", "objective");
  cfg_fails("{\"n_layer\":2,\"n_embd\":16,\"n_head\":2,\"n_ctx\":8,\"n_vocab\":7,\"dropout\":0.1}", "unknown config field 'dropout'");
  cfg_fails("{\"n_layer\":2,\"n_embd\":16,\"n_head\":2,\"n_ctx\":8,\"n_vocab\":70000}", "'n_vocab'");
  cfg_fails("{\"n_layer\":2,\"n_embd\":16,\"n_head\":2,\"n_ctx\":8,\"n_vocab\":7,\"mask_prob\":1.5}", "mask_prob");
  cfg_fails("{\"n_layer\":0,\"n_embd\":16,\"n_head\":2,\"n_ctx\":8,\"n_vocab\":7}", "'n_layer' is 0");
  cfg_fails("{\"n_layer\":2,", "not valid JSON");
  cfg_fails("[1]", "JSON object");
}

// ---------------------------------------------------------------- model files

Test(model, save_load_round_trip) {
  char *dir = test_tmpdir("model");
  char *p = xasprintf("%s/m.safetensors", dir);
  for (int k = 0; k < 2; k++) {
    model_config c = tiny(k ? OBJ_BERT : OBJ_AR, k, 3 * k);
    model *m = model_new(&c);
    model_init(m, 3);
    randomize(m, 4);
    cr_assert_eq(model_save(m, p), 0, "%s", igpt_errmsg());
    model *l = model_load(p);
    cr_assert_not_null(l, "%s", igpt_errmsg());
    cr_expect_eq(memcmp(&l->cfg, &m->cfg, sizeof c), 0);
    cr_assert_eq(l->n_params, m->n_params);
    cr_expect_eq(memcmp(l->params, m->params, m->n_params * sizeof(float)), 0);
    model_free(m);
    model_free(l);
  }
  rm_rf(dir);
  free(p);
  free(dir);
}

// Writes a model file from a model's tensors with one change, then expects load to fail naming
// the file and `needle`.
static void load_fails(const char *dir, const char *config, const char *skip, const char *extra,
                       st_dtype wte_dtype, const char *needle) {
  model_config c = tiny(OBJ_AR, false, 0);
  model *m = model_new(&c);
  char *p = xasprintf("%s/bad.safetensors", dir);
  st_writer *w = st_writer_new();
  double wte64[7 * 16] = {0};
  for (int i = 0; i < P_NTENSORS; i++) {
    model_tensor_info *t = &m->info[i];
    if (!t->numel || (skip && !strcmp(skip, t->name))) continue;
    if (i == P_WTE && wte_dtype == ST_F64) st_writer_add(w, t->name, ST_F64, t->ndim, t->shape, wte64);
    else st_writer_add(w, t->name, ST_F32, t->ndim, t->shape, m->param[i]);
  }
  if (extra) st_writer_add(w, extra, ST_F32, 1, (int64_t[]){4}, m->params);
  if (config) st_writer_meta(w, "config", config);
  cr_assert_eq(st_writer_save(w, p), 0, "%s", igpt_errmsg());
  st_writer_free(w);
  model *l = model_load(p);
  cr_expect_null(l, "loaded a bad file (%s)", needle);
  cr_expect(strstr(igpt_errmsg(), p) && strstr(igpt_errmsg(), needle), "message lacks the file or '%s': %s",
            needle, igpt_errmsg());
  model_free(l);
  model_free(m);
  free(p);
}

Test(model, malformed_files_give_clear_errors) {
  char *dir = test_tmpdir("badmodel");
  const char *good = "{\"n_layer\":2,\"n_embd\":16,\"n_head\":2,\"n_ctx\":8,\"n_vocab\":7}";
  load_fails(dir, good, NULL, NULL, ST_F64, "tensor 'wte' has dtype F64");
  load_fails(dir, good, "h.mlp.c_fc.w", NULL, ST_F32, "'h.mlp.c_fc.w' is missing");
  load_fails(dir, good, NULL, "h.attn.c_attn.b", ST_F32, "'h.attn.c_attn.b' is present");
  load_fails(dir, good, NULL, "extra", ST_F32, "unexpected tensor 'extra'");
  load_fails(dir, "{\"n_layer\":2,\"n_embd\":16,\"n_head\":2,\"n_ctx\":8,\"n_vocab\":9}", NULL, NULL, ST_F32,
             "'wte' has shape [7,16], expected [9,16]");
  load_fails(dir, "{\"n_layer\":3,\"n_embd\":16,\"n_head\":2,\"n_ctx\":8,\"n_vocab\":7}", NULL, NULL, ST_F32,
             "expected [3,16]");
  load_fails(dir, "{\"n_layer\":2,\"n_embd\":16", NULL, NULL, ST_F32, "not valid JSON");
  load_fails(dir, "{\"n_layer\":2,\"n_embd\":16,\"n_head\":5,\"n_ctx\":8,\"n_vocab\":7}", NULL, NULL, ST_F32,
             "divisible");
  load_fails(dir, NULL, NULL, NULL, ST_F32, "not a native model file");
  rm_rf(dir);
  free(dir);
}

// Decoding one position at a time with the KV cache gives the forward's logits at every position
// (within 1e-5 relative: the same float32 math summed in a different order), HF layout and official.
Test(model, decode_matches_forward) {
  for (int bias = 0; bias < 2; bias++) {
    model_config c = tiny(OBJ_AR, bias, 0);
    model *m = model_new(&c);
    randomize(m, 8 + bias);
    enum { B = 3, T = 8 };
    uint16_t tok[B * T];
    rng_t r;
    rng_seed(&r, 9);
    for (int i = 0; i < B * T; i++) tok[i] = (uint16_t)rng_below(&r, (uint32_t)c.n_vocab);
    model_batch b = {.tokens = tok, .B = B, .T = T, .head = true};
    cr_assert_eq(model_forward(m, &b), 0, "%s", igpt_errmsg());
    model_kv *kv = model_kv_new(m, B);
    float lg[B * 7];
    double ref[B * 7];
    uint16_t prev[B];
    for (int t = 0; t < T; t++) {
      for (int i = 0; i < B; i++) prev[i] = t ? tok[i * T + t - 1] : 0;
      cr_assert_eq(model_decode(m, kv, prev, lg), 0, "%s", igpt_errmsg());
      for (int i = 0; i < B; i++)
        for (int v = 0; v < 7; v++) ref[i * 7 + v] = model_logits(m)[((size_t)i * T + t) * 7 + v];
      double e = rel_err_f32_f64(lg, ref, B * 7);
      cr_expect(e < 1e-5, "bias %d position %d: relative error %.3g", bias, t, e);
    }
    cr_expect_eq(model_decode(m, kv, prev, lg), -1, "decoding past n_ctx must fail");
    cr_expect(strstr(igpt_errmsg(), "full"), "%s", igpt_errmsg());
    model_kv_reset(kv);
    prev[0] = 7;
    cr_expect_eq(model_decode(m, kv, prev, lg), 0, "position 0 reads no token");
    cr_expect_eq(model_decode(m, kv, prev, lg), -1, "token 7 is outside the palette");
    model_kv_free(kv);
    model_free(m);
  }
}
