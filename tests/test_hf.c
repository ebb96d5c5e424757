// hf: the official layout survives export -> import --drop-zero-biases exactly, and malformed
// HuggingFace directories (config.json fields, missing or misshapen tensors) get clear errors.
#include "testutil.h"
#include "interop/hf.h"
#include "engine/model.h"
#include "base/safetensors.h"

static model *tiny_official(void) {
  model_config c;
  model_config_default(&c);
  c.n_layer = 2, c.n_embd = 16, c.n_head = 2, c.n_ctx = 8, c.n_vocab = 7;
  model *m = model_new(&c);
  model_init(m, 1);
  for (size_t i = 0; i < m->info[P_WTET].numel; i++) m->param[P_WTET][i] = 0.01f * (float)i;
  return m;
}

Test(hf, official_layout_round_trip) {
  char *dir = test_tmpdir("hfrt");
  model *m = tiny_official();
  cr_assert_eq(hf_export(m, dir), 0, "%s", igpt_errmsg());
  model *k = hf_import(dir, false);  // keeps HF's (zero) biases
  cr_assert_not_null(k, "%s", igpt_errmsg());
  cr_expect(k->cfg.bias);
  model *o = hf_import(dir, true);   // drops them: the official layout again
  cr_assert_not_null(o, "%s", igpt_errmsg());
  cr_expect(!o->cfg.bias);
  cr_expect_eq(memcmp(&o->cfg, &m->cfg, sizeof m->cfg), 0);
  cr_expect_eq(memcmp(o->params, m->params, m->n_params * sizeof(float)), 0);
  // the same logits with and without the zero biases
  uint16_t tok[8] = {1, 2, 3, 4, 5, 6, 0, 1};
  model_batch b = {.tokens = tok, .B = 1, .T = 8, .head = true};
  cr_assert_eq(model_forward(m, &b), 0);
  float l0 = m->loss;
  cr_assert_eq(model_forward(k, &b), 0);
  cr_expect_eq(l0, k->loss);
  // nonzero biases cannot be dropped
  k->param[P_FC_B][3] = 0.5f;
  cr_assert_eq(hf_export(k, dir), 0, "%s", igpt_errmsg());
  cr_expect_null(hf_import(dir, true));
  cr_expect(strstr(igpt_errmsg(), "not all zero"), "%s", igpt_errmsg());
  model_free(m), model_free(k), model_free(o);
  rm_rf(dir);
  free(dir);
}

// Exports a tiny model, applies `sed` to its config.json (or drops/retypes a tensor), then
// expects hf_import to fail with a message holding `needle`.
static void import_fails(const char *sed, const char *drop, const char *needle) {
  char *dir = test_tmpdir("hfbad");
  model *m = tiny_official();
  cr_assert_eq(hf_export(m, dir), 0, "%s", igpt_errmsg());
  if (sed) {
    char *cmd = xasprintf("sed -i '%s' %s/config.json", sed, dir);
    cr_assert_eq(run_cmd(cmd), 0);
    free(cmd);
  }
  if (drop) {  // rewrite model.safetensors without `drop` and with an F64 ln_f
    char *p = xasprintf("%s/model.safetensors", dir);
    st_file f;
    cr_assert_eq(st_open(&f, p), 0);
    st_writer *w = st_writer_new();
    double g64[16] = {0};
    for (int i = 0; i < f.n; i++) {
      st_tensor *t = &f.tensors[i];
      if (!strcmp(t->name, drop)) continue;
      if (!strcmp(t->name, "transformer.ln_f.weight") && !strcmp(drop, "f64"))
        st_writer_add(w, t->name, ST_F64, t->ndim, t->shape, g64);
      else st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
    }
    cr_assert_eq(st_writer_save(w, p), 0);
    st_writer_free(w);
    st_close(&f);
    free(p);
  }
  model *b = hf_import(dir, false);
  cr_expect_null(b, "imported a bad directory (%s)", needle);
  cr_expect(strstr(igpt_errmsg(), dir) && strstr(igpt_errmsg(), needle), "message lacks dir or '%s': %s", needle,
            igpt_errmsg());
  model_free(b);
  model_free(m);
  rm_rf(dir);
  free(dir);
}

Test(hf, malformed_directories) {
  import_fails("s/quick_gelu/gelu_new/", NULL, "activation_function");
  import_fails("s/\"n_head\": 2/\"n_head\": 3/", NULL, "divisible");
  import_fails("/n_positions/d", NULL, "'n_positions' is missing");
  import_fails("s/\"vocab_size\": 8/\"vocab_size\": \"8\"/", NULL, "'vocab_size' must be an integer");
  import_fails("s/\"n_layer\": 2/\"n_layer\": 3/", NULL, "transformer.h.2");
  import_fails("s/\"vocab_size\": 8/\"vocab_size\": 9/", NULL, "'transformer.wte.weight' has shape [8,16], expected [9,16]");
  import_fails("1s/^/[/", NULL, "config.json");
  import_fails(NULL, "lm_head.weight", "'lm_head.weight' is missing");
  import_fails(NULL, "f64", "dtype F64");
}
