// hf_oracle: the HuggingFace ImageGPT oracle (../shared/oracles/hf-imagegpt-tiny) for the tests
// that check a backend against it (test_model_oracle on the CPU, test_cuda on the GPU): its
// tensors as doubles and its model with its batch (header-only).
#pragma once
#include "testutil.h"
#include "interop/hf.h"
#include "engine/model.h"
#include "base/safetensors.h"

// A tensor of the file as doubles (F64 or F32), checked for its element count; caller frees.
static inline double *read_f64(const st_file *f, const char *name, size_t n) {
  const st_tensor *t = st_get(f, name);
  cr_assert_not_null(t, "%s: no tensor %s", f->path, name);
  cr_assert_eq(st_numel(t), n, "%s: %s has %zu elements, expected %zu", f->path, name, st_numel(t), n);
  double *d = xmalloc(n * sizeof *d);
  for (size_t i = 0; i < n; i++) {
    if (t->dtype == ST_F64) memcpy(&d[i], (const char *)t->data + 8 * i, 8);
    else {
      float x;
      cr_assert_eq(t->dtype, ST_F32);
      memcpy(&x, (const char *)t->data + 4 * i, 4);
      d[i] = x;
    }
  }
  return d;
}

// The oracle's model and its batch: HF's input_ids hold sos (id 16) then 63 palette tokens, so
// our tokens are input_ids[:, 1:] with no target at the last position (HF's loss drops it).
static inline model *oracle_model(uint16_t **tokens, int *B, int *T) {
  char *dir = oracle_path("hf-imagegpt-tiny");
  model *m = hf_import(dir, false);
  cr_assert_not_null(m, "%s", igpt_errmsg());
  char *io = oracle_path("hf-imagegpt-tiny/io.safetensors");
  st_file f;
  cr_assert_eq(st_open(&f, io), 0, "%s", igpt_errmsg());
  const st_tensor *ids = st_expect(&f, "input_ids", ST_I64, 2, NULL);
  cr_assert_not_null(ids, "%s", igpt_errmsg());
  *B = (int)ids->shape[0], *T = (int)ids->shape[1];
  *tokens = xmalloc((size_t)*B * *T * sizeof **tokens);
  for (int b = 0; b < *B; b++)
    for (int t = 0; t < *T; t++) {
      int64_t x;
      memcpy(&x, (const char *)ids->data + 8 * ((size_t)b * *T + t), 8);
      if (t == 0) cr_assert_eq(x, m->cfg.n_vocab, "input_ids[%d,0] is not the sos id", b);
      else (*tokens)[(size_t)b * *T + t - 1] = (uint16_t)x;
    }
  for (int b = 0; b < *B; b++) (*tokens)[(size_t)b * *T + *T - 1] = MODEL_IGNORE;
  st_close(&f);
  free(io);
  free(dir);
  return m;
}

