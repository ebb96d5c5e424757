// torch_bin: the HF oracle (../shared/oracles/hf-imagegpt-tiny) round-trips through a
// pytorch_model.bin: written by Debian's python3-torch (torch.save of its state dict) when that
// is installed, and always by tests/torch_bin_writer.py, which imitates torch's zip and pickle
// with Python's zipfile and pickle (python3-torch pulls in about 1 GB of libraries, too much for
// CI's test packages). Both give the weights of the safetensors import bit for bit and the
// oracle's logits. Hostile files (a disallowed global, a storage shorter than declared, a tensor
// past its storage, a shape that overflows) are refused naming the file.
#include "testutil.h"
#include "fuzz/fuzz_torch.h"
#include "base/safetensors.h"
#include "engine/model.h"
#include "interop/hf.h"
#include "interop/torch_bin.h"
#include <dirent.h>

// DIR/pytorch_model.bin written by the writer in `mode`, DIR/config.json the oracle's; NULL when
// the writer cannot run (mode torch without torch). Caller removes DIR and frees.
static char *write_bin(const char *mode, char **dir_out) {
  char *dir = test_tmpdir("torchbin"), *oracle = oracle_path("hf-imagegpt-tiny");
  char *py = repo_path("tests/torch_bin_writer.py");
  char *cmd = xasprintf("cp %s/config.json %s/ && /usr/bin/python3 %s %s %s %s/pytorch_model.bin 2>%s/err.txt", oracle,
                        dir, py, mode, oracle, dir, dir);
  int rc = run_cmd(cmd);
  free(cmd), free(py), free(oracle);
  *dir_out = dir;
  if (rc != 0) return NULL;
  return xasprintf("%s/pytorch_model.bin", dir);
}

static void expect_oracle_model(model *m) {
  char *dir = oracle_path("hf-imagegpt-tiny");
  model *h = hf_import(dir, false);
  cr_assert_not_null(h, "%s", igpt_errmsg());
  cr_assert_eq(memcmp(&m->cfg, &h->cfg, sizeof m->cfg), 0, "configs differ");
  cr_expect_eq(memcmp(m->params, h->params, m->n_params * sizeof(float)), 0, "weights differ from the safetensors import");
  // the oracle's logits for its input_ids (sos, then 63 tokens): within its README's 1e-5
  char *io = oracle_path("hf-imagegpt-tiny/io.safetensors");
  st_file f;
  cr_assert_eq(st_open(&f, io), 0, "%s", igpt_errmsg());
  const st_tensor *ids = st_expect(&f, "input_ids", ST_I64, 2, NULL), *ref = st_expect(&f, "logits", ST_F64, 3, NULL);
  cr_assert(ids && ref, "%s", igpt_errmsg());
  int B = (int)ids->shape[0], T = (int)ids->shape[1], V = m->cfg.n_vocab;
  uint16_t *tok = xmalloc((size_t)B * T * sizeof *tok);
  for (int b = 0; b < B; b++) {
    for (int t = 1; t < T; t++) {
      int64_t x;
      memcpy(&x, (const char *)ids->data + 8 * ((size_t)b * T + t), 8);
      tok[(size_t)b * T + t - 1] = (uint16_t)x;
    }
    tok[(size_t)b * T + T - 1] = MODEL_IGNORE;
  }
  model_batch batch = {.tokens = tok, .B = B, .T = T, .head = true};
  cr_assert_eq(model_forward(m, &batch), 0, "%s", igpt_errmsg());
  double *r = xmalloc((size_t)B * T * V * sizeof *r);
  memcpy(r, ref->data, (size_t)B * T * V * sizeof *r);
  double e = rel_err_f32_f64(model_logits(m), r, (size_t)B * T * V);
  cr_expect(e < 1e-5, "logits: relative error %.3g above the oracle's 1e-5", e);
  free(r), free(tok);
  st_close(&f);
  free(io), free(dir);
  model_free(h);
}

Test(torch_bin, oracle_through_torch_save, .timeout = 120) {
  if (run_cmd("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
    cr_skip_test("Debian's python3-torch is not installed (the imitating writer's test still runs)");
  char *dir, *bin = write_bin("torch", &dir);
  cr_assert_not_null(bin, "torch_bin_writer.py torch failed (see %s/err.txt)", dir);
  model *m = torch_import(bin, false);
  cr_assert_not_null(m, "%s", igpt_errmsg());
  expect_oracle_model(m);
  model_free(m);
  rm_rf(dir);
  free(dir), free(bin);
}

Test(torch_bin, oracle_through_the_imitating_writer) {
  char *dir, *bin = write_bin("imitate", &dir);
  cr_assert_not_null(bin, "torch_bin_writer.py imitate failed (see %s/err.txt)", dir);
  model *m = torch_import(bin, false);
  cr_assert_not_null(m, "%s", igpt_errmsg());
  expect_oracle_model(m);
  model_free(m);
  // the command too
  char *out, *args = xasprintf("import --from torch %s --out %s/m.safetensors --json", bin, dir);
  cr_expect_eq(igpt_in(dir, args, &out), 0, "%s", out);
  cr_expect(strstr(out, "\"n_params\""), "%s", out);
  free(out), free(args);
  rm_rf(dir);
  free(dir), free(bin);
}

static void refused(const char *mode, const char *needle) {
  char *dir, *bin = write_bin(mode, &dir);
  cr_assert_not_null(bin, "torch_bin_writer.py %s failed (see %s/err.txt)", mode, dir);
  model *m = torch_import(bin, false);
  cr_expect_null(m, "%s: a hostile file was imported", mode);
  cr_expect(strstr(igpt_errmsg(), bin) && strstr(igpt_errmsg(), needle), "%s: message lacks the file or '%s': %s", mode,
            needle, igpt_errmsg());
  model_free(m);
  rm_rf(dir);
  free(dir), free(bin);
}

Test(torch_bin, hostile_files_refused) {
  refused("hostile-global", "global posix.system is not allowed");  // os.system pickles as posix.system
  refused("hostile-storage", "holds 4092 bytes but data.pkl declares 1024 elements");
  refused("hostile-offset", "at offset 1 runs past its storage of 1024");
  refused("hostile-shape", "tensor shape overflows");
}

Test(torch_bin, not_a_torch_zip) {
  char *dir = test_tmpdir("torchnot"), *bin = xasprintf("%s/pytorch_model.bin", dir);
  cr_assert_eq(file_write_atomic(bin, "not a zip at all", 16), 0);
  cr_expect_null(torch_import(bin, false));
  cr_expect(strstr(igpt_errmsg(), bin), "%s", igpt_errmsg());
  char *cmd = xasprintf("cd %s && printf 3 > version && zip -q x.bin version 2>/dev/null", dir);
  if (run_cmd(cmd) == 0) {  // a zip without data.pkl
    char *x = xasprintf("%s/x.bin", dir);
    cr_expect_null(torch_import(x, false));
    cr_expect(strstr(igpt_errmsg(), "no ARCHIVE/data.pkl"), "%s", igpt_errmsg());
    free(x);
  }
  rm_rf(dir);
  free(dir), free(bin), free(cmd);
}

// Every input kept under tests/fixtures/fuzz/torch_pickle/ (seeds: data.pkl of the writers'
// files; and what the fuzzer found) through the harness's entry point.
Test(torch_bin, fuzz_inputs_replay) {
  cr_expect_gt(fuzz_replay_dir("torch_pickle", fuzz_torch_pickle_one), 3);
}
