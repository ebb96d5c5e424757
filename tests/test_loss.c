// igpt loss: on the HF oracle's sequences it reproduces HF's loss (1e-5 relative, the oracle's
// float32 bound), independent of the batch size; bits = nats / ln 2; bad input is an error.
// igpt features --loss measures the same loss in its forward pass (BERT: over the masked positions
// of the features' own masks).
#include "testutil.h"
#include "interop/hf.h"
#include "engine/featurize.h"
#include "engine/model.h"
#include "base/safetensors.h"
#include <jansson.h>

// Runs cmd and parses its one line of JSON on stdout (NULL when it fails).
static json_t *run_json(const char *cmd) {
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  char buf[4096] = {0};
  size_t n = fread(buf, 1, sizeof buf - 1, p);
  int st = pclose(p);
  buf[n] = 0;
  if (st != 0) return NULL;
  return json_loads(buf, 0, NULL);
}

Test(loss, reproduces_hf_oracle_loss) {
  char *dir = oracle_path("hf-imagegpt-tiny"), *tmp = test_tmpdir("loss");
  model *m = hf_import(dir, false);
  cr_assert_not_null(m, "%s", igpt_errmsg());
  char *mp = xasprintf("%s/m.safetensors", tmp), *tp = xasprintf("%s/tokens.safetensors", tmp);
  cr_assert_eq(model_save(m, mp), 0, "%s", igpt_errmsg());
  // HF's loss scores input_ids[:, 1:] given sos: our tokens are exactly those 63 per row
  char *io = oracle_path("hf-imagegpt-tiny/io.safetensors");
  st_file f;
  cr_assert_eq(st_open(&f, io), 0, "%s", igpt_errmsg());
  const st_tensor *ids = st_expect(&f, "input_ids", ST_I64, 2, NULL);
  cr_assert_not_null(ids);
  int B = (int)ids->shape[0], T = (int)ids->shape[1] - 1;
  uint16_t *tok = xmalloc((size_t)B * T * 2);
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      int64_t x;
      memcpy(&x, (const char *)ids->data + 8 * ((size_t)b * (T + 1) + t + 1), 8);
      tok[b * T + t] = (uint16_t)x;
    }
  double ref;
  memcpy(&ref, st_get(&f, "loss")->data, 8);
  st_writer *w = st_writer_new();
  st_writer_add(w, "tokens", ST_U16, 2, (int64_t[]){B, T}, tok);
  cr_assert_eq(st_writer_save(w, tp), 0, "%s", igpt_errmsg());
  st_writer_free(w);
  char *bin = igpt_bin();
  for (int batch = 1; batch <= 2; batch++) {
    char *cmd = xasprintf("%s loss --model %s --tokens %s --batch %d --json 2>/dev/null", bin, mp, tp, batch);
    json_t *r = run_json(cmd);
    cr_assert_not_null(r, "%s failed", cmd);
    double nats = json_number_value(json_object_get(r, "nats_per_token"));
    double bits = json_number_value(json_object_get(r, "bits_per_dim"));
    cr_expect(fabs(nats - ref) / ref < 1e-5, "batch %d: %.8f nats/token, HF %.8f", batch, nats, ref);
    cr_expect(fabs(bits - nats / log(2.0)) < 1e-9);
    cr_expect_eq(json_integer_value(json_object_get(r, "n_tokens")), B * T);
    json_decref(r);
    free(cmd);
    // the features pass's loss (--loss: what a table's checkpoints report) is the same number,
    // from the same forward; the features file still appears
    cmd = xasprintf("%s features --model %s --tokens %s --out %s/f.safetensors --batch %d --loss --json --quiet "
                    "2>/dev/null", bin, mp, tp, tmp, batch);
    r = run_json(cmd);
    cr_assert_not_null(r, "%s failed", cmd);
    nats = json_number_value(json_object_get(r, "nats_per_token"));
    cr_expect(fabs(nats - ref) / ref < 1e-5, "features --loss, batch %d: %.8f nats/token, HF %.8f", batch, nats, ref);
    cr_expect_eq(json_integer_value(json_object_get(r, "n_tokens")), B * T);
    cr_expect_str_eq(json_string_value(json_object_get(r, "objective")), "ar");
    json_decref(r);
    free(cmd);
  }
  // sequences longer than the model's context are an error naming the file
  uint16_t *longer = xcalloc((size_t)(m->cfg.n_ctx + 1), 2);
  w = st_writer_new();
  st_writer_add(w, "tokens", ST_U16, 2, (int64_t[]){1, m->cfg.n_ctx + 1}, longer);
  cr_assert_eq(st_writer_save(w, tp), 0);
  st_writer_free(w);
  char *cmd = xasprintf("%s loss --model %s --tokens %s 2>&1 | grep -q 'n_ctx 64'", bin, mp, tp);
  cr_expect_eq(run_cmd(cmd), 0, "no clear error for over-long sequences");
  free(cmd);
  cmd = xasprintf("%s loss --model %s --tokens %s >/dev/null 2>&1", bin, mp, tp);
  cr_expect_eq(run_cmd(cmd), 1);
  free(cmd);
  cmd = xasprintf("%s loss --batch 0 --model %s --tokens %s >/dev/null 2>&1", bin, mp, tp);
  cr_expect_eq(run_cmd(cmd), 2);
  free(cmd);
  cmd = xasprintf("%s loss --help | grep -q 'nats per token'", bin);
  cr_expect_eq(run_cmd(cmd), 0);
  free(cmd);
  free(longer);
  st_close(&f);
  model_free(m);
  rm_rf(tmp);
  free(tok), free(bin), free(io), free(mp), free(tp), free(tmp), free(dir);
}

// Issue 15: labels that do not match the rows, a NaN weight (named with its tensor and layer) and
// finite weights whose activations overflow (named with the sequence) are errors, not a number.
Test(loss, refuses_mismatched_labels_nonfinite_weights_and_outputs) {
  model_config c;
  model_config_default(&c);
  c.n_layer = 2, c.n_embd = 16, c.n_head = 2, c.n_ctx = 8, c.n_vocab = 9;
  model *m = model_new(&c);
  cr_assert_not_null(m, "%s", igpt_errmsg());
  model_init(m, 3);
  char *dir = test_tmpdir("loss-bad");
  char *mp = xasprintf("%s/m.safetensors", dir), *tp = xasprintf("%s/t.safetensors", dir);
  uint16_t tok[4 * 8];
  for (int i = 0; i < 32; i++) tok[i] = (uint16_t)(i % 9);
  int32_t lab[3] = {0, 1, 2};
  st_writer *w = st_writer_new();
  st_writer_add(w, "tokens", ST_U16, 2, (int64_t[]){4, 8}, tok);
  st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){3}, lab);  // 3 labels for 4 rows
  cr_assert_eq(st_writer_save(w, tp), 0);
  st_writer_free(w);
  cr_assert_eq(model_save(m, mp), 0, "%s", igpt_errmsg());
  char *bin = igpt_bin();
  char *cmd = xasprintf("%s loss --model %s --tokens %s >/dev/null 2>%s/err", bin, mp, tp, dir);
  char *ep = xasprintf("%s/err", dir);
  uint8_t *err;
  size_t n;
  cr_assert_eq(run_cmd(cmd), 1);
  cr_assert_eq(file_read_all(ep, &err, &n), 0);
  cr_assert(strstr((char *)err, "labels") && strstr((char *)err, "4 rows"), "%s", err);
  free(err);
  w = st_writer_new();
  st_writer_add(w, "tokens", ST_U16, 2, (int64_t[]){4, 8}, tok);
  cr_assert_eq(st_writer_save(w, tp), 0);
  st_writer_free(w);
  cr_assert_eq(run_cmd(cmd), 0, "the intact model's loss failed");
  const model_tensor_info *g = &m->info[P_LN1_G];
  m->param[P_LN1_G][g->numel / 2 + 3] = INFINITY;  // layer 1
  cr_assert_eq(model_save(m, mp), 0, "%s", igpt_errmsg());
  cr_assert_eq(run_cmd(cmd), 1);
  cr_assert_eq(file_read_all(ep, &err, &n), 0);
  cr_assert(strstr((char *)err, g->name) && strstr((char *)err, "layer 1") && strstr((char *)err, "not finite"), "%s",
            err);
  free(err);
  m->param[P_LN1_G][g->numel / 2 + 3] = 1;
  for (size_t i = 0; i < m->info[P_WTE].numel; i++) m->param[P_WTE][i] = 3e38f;  // wte + wpe overflows
  for (size_t i = 0; i < m->info[P_WPE].numel; i++) m->param[P_WPE][i] = 3e38f;
  cr_assert_eq(model_save(m, mp), 0, "%s", igpt_errmsg());
  cr_assert_eq(run_cmd(cmd), 1);
  cr_assert_eq(file_read_all(ep, &err, &n), 0);
  cr_assert(strstr((char *)err, "sequence 0") && strstr((char *)err, "not finite"), "%s", err);
  free(err);
  rm_rf(dir);
  free(cmd); free(ep); free(bin); free(mp); free(tp); free(dir);
  model_free(m);
}

// BERT under features --loss: only the masked positions count, the masks are the features' own
// (seeded per image, so the batch size changes nothing but float summation order: 1e-6 relative,
// float32 losses summed in double), and --pixels refuses --loss.
Test(loss, features_loss_of_bert_counts_the_masked_positions) {
  model_config c;
  model_config_default(&c);
  c.n_layer = 2, c.n_embd = 16, c.n_head = 2, c.n_ctx = 16, c.n_vocab = 9, c.objective = OBJ_BERT;
  model *m = model_new(&c);
  cr_assert_not_null(m, "%s", igpt_errmsg());
  model_init(m, 5);
  for (size_t i = 0; i < m->info[P_WTET].numel; i++) m->param[P_WTET][i] = 0.01f * (float)(i % 7);  // not all-zero logits
  char *dir = test_tmpdir("loss-bert");
  char *mp = xasprintf("%s/m.safetensors", dir), *tp = xasprintf("%s/t.safetensors", dir);
  enum { N = 12, T = 16 };
  uint16_t tok[N * T];
  for (int i = 0; i < N * T; i++) tok[i] = (uint16_t)((i * 5 + i / 7) % 9);
  st_writer *w = st_writer_new();
  st_writer_add(w, "tokens", ST_U16, 2, (int64_t[]){N, T}, tok);
  cr_assert_eq(st_writer_save(w, tp), 0);
  st_writer_free(w);
  cr_assert_eq(model_save(m, mp), 0, "%s", igpt_errmsg());
  char *bin = igpt_bin();
  double first = 0;
  for (int batch = 1; batch <= 5; batch += 4) {
    char *cmd = xasprintf("%s features --model %s --tokens %s --out %s/f.safetensors --batch %d --masks 2 --loss "
                          "--json --quiet 2>/dev/null", bin, mp, tp, dir, batch);
    json_t *r = run_json(cmd);
    cr_assert_not_null(r, "%s failed", cmd);
    json_int_t counted = json_integer_value(json_object_get(r, "n_tokens"));
    int64_t masked = 0;  // the positions the features' two masks mask: what the loss counts
    uint8_t mask[T];
    for (int k = 0; k < 2; k++)
      for (int i = 0; i < N; i++) {
        features_mask(0, k, i, c.mask_prob, mask, T);
        for (int t = 0; t < T; t++) masked += mask[t];
      }
    cr_expect_eq(counted, masked, "batch %d: %lld tokens counted, %lld masked", batch, (long long)counted,
                 (long long)masked);
    cr_expect(masked > 0 && masked < 2 * N * T);
    cr_expect_str_eq(json_string_value(json_object_get(r, "objective")), "bert");
    double nats = json_number_value(json_object_get(r, "nats_per_token"));
    cr_expect(isfinite(nats) && nats > 0);
    if (batch == 1) first = nats;
    else cr_expect(fabs(nats - first) <= 1e-6 * first, "batch %d: %.9f, batch 1: %.9f", batch, nats, first);
    json_decref(r);
    free(cmd);
  }
  char *cmd = xasprintf("%s features --pixels %s --out %s/p.safetensors --loss 2>&1 | grep -q -- '--loss'", bin, tp, dir);
  cr_expect_eq(run_cmd(cmd), 0, "--pixels --loss was not refused by name");
  free(cmd);
  rm_rf(dir);
  free(bin); free(mp); free(tp); free(dir);
  model_free(m);
}
