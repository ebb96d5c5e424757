// The model against HuggingFace's ImageGPT (../shared/oracles/hf-imagegpt-tiny, float64 outputs of
// the same float32 weights): logits, every hidden state, the loss, every parameter gradient and
// the classifier logits, each within 1e-5 relative error (the oracle README's bound for a float32
// implementation). Also the HF import/export round trip, bit for bit.
#include "testutil.h"
#include "hf_oracle.h"
#include "interop/hf.h"
#include "engine/model.h"
#include "base/safetensors.h"

#define TOL 1e-5

static void expect_close(const char *what, const float *a, const double *ref, size_t n) {
  double e = rel_err_f32_f64(a, ref, n);
  cr_expect(e < TOL, "%s: relative error %.3g exceeds %g", what, e, TOL);
  if (getenv("IGPT_TEST_VERBOSE")) fprintf(stderr, "%-40s rel err %.2e\n", what, e);
}

Test(model_oracle, forward_loss_and_every_gradient) {
  int B, T;
  uint16_t *tok;
  model *m = oracle_model(&tok, &B, &T);
  int C = m->cfg.n_embd, V = m->cfg.n_vocab;
  model_batch b = {.tokens = tok, .B = B, .T = T, .grad = true, .head = true};
  cr_assert_eq(model_forward(m, &b), 0, "%s", igpt_errmsg());

  char *io = oracle_path("hf-imagegpt-tiny/io.safetensors");
  st_file f;
  cr_assert_eq(st_open(&f, io), 0, "%s", igpt_errmsg());
  size_t BTC = (size_t)B * T * C;
  double *ref = read_f64(&f, "logits", (size_t)B * T * V);
  expect_close("logits", model_logits(m), ref, (size_t)B * T * V);
  free(ref);
  const float *hidden[3] = {m->acts.encoded, m->acts.res3, m->acts.lnf};  // L = 2
  cr_assert_eq(m->cfg.n_layer, 2);
  for (int i = 0; i < 3; i++) {
    char name[32];
    snprintf(name, sizeof name, "hidden_%d", i);
    ref = read_f64(&f, name, BTC);
    expect_close(name, hidden[i], ref, BTC);
    free(ref);
  }
  ref = read_f64(&f, "loss", 1);
  float loss = m->loss_gen;
  expect_close("loss", &loss, ref, 1);
  cr_expect_eq(m->n_targets, B * (T - 1));
  free(ref);
  st_close(&f);
  free(io);

  model_zero_grad(m);
  cr_assert_eq(model_backward(m), 0, "%s", igpt_errmsg());
  char *gp = oracle_path("hf-imagegpt-tiny/grads.safetensors");
  cr_assert_eq(st_open(&f, gp), 0, "%s", igpt_errmsg());
  hf_tensor *t;
  int n = hf_tensors(&m->cfg, &t);
  cr_assert_eq(n, f.n, "the oracle has %d gradients, the HF mapping %d", f.n, n);
  for (int i = 0; i < n; i++) {
    size_t numel = (size_t)t[i].shape[0] * (t[i].ndim == 2 ? (size_t)t[i].shape[1] : 1);
    float *g = xmalloc(numel * sizeof *g);
    hf_tensor_get(m, true, &t[i], g);
    ref = read_f64(&f, t[i].name, numel);
    expect_close(t[i].name, g, ref, numel);
    free(ref);
    free(g);
  }
  free(t);
  st_close(&f);
  free(gp);
  free(tok);
  model_free(m);
}

Test(model_oracle, classifier_logits) {
  int B, T;
  uint16_t *tok;
  model *m = oracle_model(&tok, &B, &T);
  char *cp = oracle_path("hf-imagegpt-tiny/classify.safetensors");
  st_file f;
  cr_assert_eq(st_open(&f, cp), 0, "%s", igpt_errmsg());
  const st_tensor *w = st_expect(&f, "score_weight", ST_F32, 2, (int64_t[]){-1, m->cfg.n_embd});
  cr_assert_not_null(w, "%s", igpt_errmsg());
  model_config c = m->cfg;
  c.n_classes = (int)w->shape[0];
  model *mc = model_new(&c);
  // the classifier is the last tensor: the model without it is a prefix of the one with it
  cr_assert_eq(mc->info[P_WCLF].offset, m->n_params);
  memcpy(mc->params, m->params, m->n_params * sizeof(float));
  memcpy(mc->param[P_WCLF], w->data, mc->info[P_WCLF].numel * sizeof(float));
  model_batch b = {.tokens = tok, .B = B, .T = T};
  cr_assert_eq(model_forward(mc, &b), 0, "%s", igpt_errmsg());
  double *ref = read_f64(&f, "logits", (size_t)B * c.n_classes);
  expect_close("classifier logits", model_clf_logits(mc), ref, (size_t)B * c.n_classes);
  free(ref);
  st_close(&f);
  free(cp);
  free(tok);
  model_free(m);
  model_free(mc);
}

// import -> native file -> load -> export gives back the HF tensors bit for bit.
Test(model_oracle, hf_round_trip_exact) {
  char *dir = oracle_path("hf-imagegpt-tiny");
  char *tmp = test_tmpdir("hf");
  char *native = xasprintf("%s/m.safetensors", tmp), *out = xasprintf("%s/hf", tmp);
  char *cmd = xasprintf("%s import --from hf %s --out %s && %s export --to hf %s --out %s",
                        igpt_bin(), dir, native, igpt_bin(), native, out);
  cr_assert_eq(run_cmd(cmd), 0, "%s failed", cmd);
  char *a = xasprintf("%s/model.safetensors", dir), *b = xasprintf("%s/model.safetensors", out);
  st_file fa, fb;
  cr_assert_eq(st_open(&fa, a), 0, "%s", igpt_errmsg());
  cr_assert_eq(st_open(&fb, b), 0, "%s", igpt_errmsg());
  cr_assert_eq(fa.n, fb.n);
  for (int i = 0; i < fa.n; i++) {
    const st_tensor *ta = &fa.tensors[i], *tb = st_get(&fb, ta->name);
    cr_assert_not_null(tb, "export lacks %s", ta->name);
    cr_assert_eq(ta->end - ta->begin, tb->end - tb->begin, "%s size", ta->name);
    cr_expect_eq(memcmp(ta->data, tb->data, ta->end - ta->begin), 0, "%s differs", ta->name);
  }
  model_config ca, cb;
  cr_assert_eq(hf_config_load(dir, &ca), 0, "%s", igpt_errmsg());
  cr_assert_eq(hf_config_load(out, &cb), 0, "%s", igpt_errmsg());
  cr_expect_eq(memcmp(&ca, &cb, sizeof ca), 0, "config.json differs after the round trip");
  st_close(&fa);
  st_close(&fb);
  rm_rf(tmp);
  free(a), free(b), free(cmd), free(native), free(out), free(tmp), free(dir);
}
