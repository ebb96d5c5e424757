// backend: the engine's device code paths, run here without a GPU. A "staged" backend is the CPU
// table with host_memory false: the engine then keeps its own copies of everything (parameters
// pushed and pulled, batch inputs staged, loss weights committed, outputs downloaded, moments
// attached and synced, the decoder's tokens uploaded), exactly as it does for CUDA, while the
// arithmetic stays the CPU's. Every result must equal the plain CPU backend's bit for bit: a
// missed push, pull or staging copy shows as a difference (or as stale zeros).
#include "testutil.h"
#include "engine/device.h"
#include "engine/featurize.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/sample.h"
#include "base/rng.h"

static void *st_alloc(size_t n) { return xmalloc(n ? n : 1); }
static void st_zero(void *p, size_t n) { memset(p, 0, n); }
static void st_copy(void *d, const void *s, size_t n) { memcpy(d, s, n); }

static backend staged_backend(void) {
  backend b = *backend_cpu();
  b.name = "staged", b.detail = "CPU ops behind device-style copies", b.host_memory = false;
  b.alloc = st_alloc, b.release = free, b.zero = st_zero, b.upload = st_copy, b.download = st_copy;
  return b;
}

static model_config config(model_objective obj, int classes) {
  model_config c;
  model_config_default(&c);
  c.n_layer = 2, c.n_embd = 32, c.n_head = 4, c.n_ctx = 20, c.n_vocab = 12, c.objective = obj;
  c.n_classes = classes;
  return c;
}

// Trains 5 steps (accumulation of 2, clipping, decay); losses into loss[]; the model pulled.
static model *train(const backend *be, model_objective obj, int classes, float *loss) {
  model_config c = config(obj, classes);
  model *m = model_new_on(&c, be);
  cr_assert_not_null(m, "%s", igpt_errmsg());
  model_init(m, 5);
  float *hm = xcalloc(m->n_params, 4), *hv = xcalloc(m->n_params, 4);
  optim o;
  cr_assert_eq(optim_attach(&o, m, hm, hv), 0);
  enum { B = 3 };
  uint16_t tok[B * 20];
  uint8_t mask[B * 20];
  int32_t labels[B];
  rng_t r;
  rng_seed(&r, 8);
  adamw_opts ao = adamw_defaults();
  for (int s = 0; s < 5; s++) {
    model_zero_grad(m);
    loss[s] = 0;
    for (int k = 0; k < 2; k++) {
      for (int i = 0; i < B * c.n_ctx; i++) tok[i] = (uint16_t)rng_below(&r, c.n_vocab);
      for (int b = 0; b < B; b++) labels[b] = (int32_t)rng_below(&r, classes ? classes : 1);
      if (obj == OBJ_BERT) model_bert_mask(&r, mask, B, c.n_ctx, 0.3);
      model_batch mb = {.tokens = tok, .mask = obj == OBJ_BERT ? mask : NULL, .labels = classes ? labels : NULL,
                        .B = B, .T = c.n_ctx, .grad = true, .head = true};
      cr_assert_eq(model_forward(m, &mb), 0, "%s", igpt_errmsg());
      cr_assert_eq(model_backward(m), 0, "%s", igpt_errmsg());
      loss[s] += m->loss;
    }
    optim_scale(&o, 0.5f);
    optim_clip(&o, 0.5);
    optim_step(&o, s + 1, 1e-2, 0.1, &ao);
  }
  optim_sync(&o);
  optim_release(&o);
  free(hm), free(hv);
  return m;
}

Test(backend, training_through_device_copies_is_bit_identical) {
  backend st = staged_backend();
  const struct { model_objective obj; int classes; } cases[] = {{OBJ_AR, 0}, {OBJ_BERT, 0}, {OBJ_AR, 3}};
  for (int k = 0; k < 3; k++) {
    float lc[5], ls[5];
    model *a = train(backend_cpu(), cases[k].obj, cases[k].classes, lc);
    model *b = train(&st, cases[k].obj, cases[k].classes, ls);
    cr_expect_eq(memcmp(lc, ls, sizeof lc), 0, "case %d: the losses differ", k);
    cr_expect_eq(memcmp(a->params, b->params, a->n_params * 4), 0, "case %d: the trained weights differ", k);
    model_pull_grads(b);
    cr_expect_eq(memcmp(a->grads, b->grads, a->n_params * 4), 0, "case %d: the last gradients differ", k);
    model_free(a), model_free(b);
  }
}

Test(backend, features_decoding_and_sampling_through_device_copies_are_bit_identical) {
  backend st = staged_backend();
  for (int obj = 0; obj < 2; obj++) {
    model_config c = config(obj ? OBJ_BERT : OBJ_AR, 0);
    model *a = model_new_on(&c, backend_cpu()), *b = model_new_on(&c, &st);
    model_init(a, 2), model_init(b, 2);
    rng_t r;
    rng_seed(&r, 4);
    for (size_t i = 0; i < a->n_params; i++) a->params[i] = b->params[i] = a->params[i] + 0.1f * rng_normal(&r);
    enum { N = 7 };
    uint16_t tok[N * 20];
    for (int i = 0; i < N * 20; i++) tok[i] = (uint16_t)(i * 5 % c.n_vocab);
    features_opts o = {.batch = 3, .masks = obj ? 2 : 1, .seed = 1, .raw = 1};
    float **fa, **ra, **fb, **rb;
    cr_assert_eq(features_extract(a, tok, N, 20, &o, &fa, &ra), 0, "%s", igpt_errmsg());
    cr_assert_eq(features_extract(b, tok, N, 20, &o, &fb, &rb), 0, "%s", igpt_errmsg());
    size_t n = (size_t)o.masks * N * c.n_embd;
    for (int l = 0; l <= c.n_layer; l++) {
      cr_expect_eq(memcmp(fa[l], fb[l], n * 4), 0, "objective %d: layer %d features differ", obj, l);
      cr_expect_eq(memcmp(ra[l], rb[l], n * 4), 0, "objective %d: layer %d raw features differ", obj, l);
      free(fa[l]), free(ra[l]), free(fb[l]), free(rb[l]);
    }
    free(fa), free(ra), free(fb), free(rb);
    if (!obj) {  // sampling, with the KV cache and without
      for (int cache = 0; cache < 2; cache++) {
        uint16_t sa[4 * 20], sb[4 * 20];
        memcpy(sa, tok, sizeof sa), memcpy(sb, tok, sizeof sb);
        sample_opts so = {.temperature = 1.0, .top_k = 5, .seed = 9, .use_cache = cache};
        cr_assert_eq(sample_tokens(a, sa, 4, 20, 3, &so, NULL, NULL), 0, "%s", igpt_errmsg());
        cr_assert_eq(sample_tokens(b, sb, 4, 20, 3, &so, NULL, NULL), 0, "%s", igpt_errmsg());
        cr_expect_eq(memcmp(sa, sb, sizeof sa), 0, "samples differ (cache %d)", cache);
      }
    }
    model_free(a), model_free(b);
  }
}

Test(backend, host_changes_reach_the_backend_only_when_pushed) {
  backend st = staged_backend();
  model_config c = config(OBJ_AR, 0);
  model *m = model_new_on(&c, &st);
  model_init(m, 3);
  for (size_t i = 0; i < m->info[P_WTET].numel; i++) m->param[P_WTET][i] = 0.05f * (float)(i % 5);
  uint16_t tok[20];
  for (int i = 0; i < 20; i++) tok[i] = (uint16_t)(i % c.n_vocab);
  model_batch mb = {.tokens = tok, .B = 1, .T = 20, .head = true};
  cr_assert_eq(model_forward(m, &mb), 0);  // the first pass pushes the new, initialised model
  float first = m->loss;
  cr_expect(first != logf((float)c.n_vocab), "the pushed head should not be the zero init");
  for (size_t i = 0; i < m->info[P_WTET].numel; i++) m->param[P_WTET][i] = 0.0f;
  cr_assert_eq(model_forward(m, &mb), 0);
  cr_expect_eq(m->loss, first, "a host change after a pass reached the backend without model_push");
  model_push(m);
  cr_assert_eq(model_forward(m, &mb), 0);
  cr_expect(fabsf(m->loss - logf((float)c.n_vocab)) < 1e-5f, "after model_push the zero head gives ln V, got %g",
            m->loss);
  model_free(m);
}
