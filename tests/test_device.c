// device: the engine verbs' --device and --precision on a machine with or without a GPU.
// Without a usable GPU: --device cuda fails with exit 1 and the reason on every engine verb,
// --device auto says so once on stderr and gives the CPU's result bit for bit; bad values are
// usage errors (exit 2). With a GPU the failure cases are skipped (test_cuda.c covers the GPU).
#include "testutil.h"
#include "base/safetensors.h"
#include "base/rng.h"
#include "kernels/backend.h"

static bool gpu_usable(char *why, size_t n) {
  const backend *be;
  return cuda_backend_open(false, 0, &be, why, n) == 0;
}

typedef struct { char *dir, *tokens, *config; } fixture;

static fixture setup(void) {
  fixture f = {.dir = test_tmpdir("device")};
  enum { N = 16, T = 16 };
  uint16_t tok[N * T];
  rng_t r;
  rng_seed(&r, 5);
  for (int i = 0; i < N * T; i++) tok[i] = (uint16_t)rng_below(&r, 8);
  f.tokens = xasprintf("%s/tokens.safetensors", f.dir);
  st_writer *w = st_writer_new();
  st_writer_add(w, "tokens", ST_U16, 2, (int64_t[]){N, T}, tok);
  cr_assert_eq(st_writer_save(w, f.tokens), 0, "%s", igpt_errmsg());
  st_writer_free(w);
  f.config = xasprintf("%s/config.json", f.dir);
  const char *cfg = "{\"n_layer\":1,\"n_embd\":16,\"n_head\":2,\"n_ctx\":16,\"n_vocab\":8}";
  cr_assert_eq(file_write_atomic(f.config, cfg, strlen(cfg)), 0);
  return f;
}

static void teardown(fixture *f) {
  rm_rf(f->dir);
  free(f->dir), free(f->tokens), free(f->config);
}

static char *train_args(const fixture *f, const char *out, const char *flags) {
  return xasprintf("train --config %s --tokens %s --out %s/%s --steps 3 --batch 4 --quiet %s", f->config,
                   f->tokens, f->dir, out, flags);
}

static size_t count(const char *s, const char *needle) {
  size_t n = 0;
  for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
  return n;
}

Test(device, cuda_without_a_gpu_fails_with_the_reason_on_every_engine_verb, .timeout = 60) {
  char why[512];
  if (gpu_usable(why, sizeof why)) cr_skip_test("a GPU is usable here: test_cuda covers --device cuda");
  fixture f = setup();
  char *tr = train_args(&f, "out", "--device cuda");
  const char *other[] = {
      "loss --model M --tokens T --device cuda",
      "features --model M --tokens T --out F --device cuda --precision fp32",
      "sample --model M --palette P --out G.png --device cuda",
      "finetune --model M --train T --val V --test T --out D --device cuda",
  };
  const char *args[5] = {tr, other[0], other[1], other[2], other[3]};
  for (int i = 0; i < 5; i++) {
    char *out;
    int rc = igpt_in(f.dir, args[i], &out);
    cr_expect_eq(rc, 1, "igpt %s: exit %d, want 1; output:\n%s", args[i], rc, out);
    // the reason the runtime gave (no driver, no device, ...) follows the verb's error line
    cr_expect(strstr(out, "--device cuda: no usable GPU: ") != NULL, "igpt %s: no reason given:\n%s", args[i], out);
    cr_expect(strstr(out, why) != NULL, "igpt %s: the reason '%s' is not in:\n%s", args[i], why, out);
    free(out);
  }
  char *model = xasprintf("%s/out/model.safetensors", f.dir);
  cr_expect_not(path_exists(model), "a failed --device cuda run wrote %s", model);
  free(model);
  free(tr);
  teardown(&f);
}

Test(device, auto_without_a_gpu_falls_back_once_and_matches_the_cpu, .timeout = 60) {
  char why[512];
  bool gpu = gpu_usable(why, sizeof why);
  if (gpu) cr_skip_test("a GPU is usable here: auto takes it (test_cuda compares it with the CPU)");
  fixture f = setup();
  char *a = train_args(&f, "auto", "--device auto"), *c = train_args(&f, "cpu", "--device cpu"), *out_a, *out_c;
  cr_assert_eq(igpt_in(f.dir, a, &out_a), 0, "%s", out_a);
  cr_assert_eq(igpt_in(f.dir, c, &out_c), 0, "%s", out_c);
  cr_expect_eq(count(out_a, "--device auto: no usable GPU"), 1, "want one fallback line, got:\n%s", out_a);
  cr_expect(strstr(out_a, "running on the CPU") != NULL, "%s", out_a);
  cr_expect_eq(count(out_c, "GPU"), 0, "--device cpu mentions a GPU:\n%s", out_c);
  uint8_t *ma, *mc;
  size_t la, lc;
  char *pa = xasprintf("%s/auto/model.safetensors", f.dir), *pc = xasprintf("%s/cpu/model.safetensors", f.dir);
  cr_assert_eq(file_read_all(pa, &ma, &la), 0);
  cr_assert_eq(file_read_all(pc, &mc, &lc), 0);
  cr_expect(la == lc && !memcmp(ma, mc, la), "auto's fallback differs from the CPU's model");
  free(ma), free(mc), free(pa), free(pc), free(a), free(c), free(out_a), free(out_c);
  teardown(&f);
}

Test(device, bad_values_are_usage_errors) {
  fixture f = setup();
  const char *bad[] = {"--device gpu", "--device", "--precision fp16", "--device cuda --precision half"};
  for (int i = 0; i < 4; i++) {
    char *args = train_args(&f, "bad", bad[i]), *out;
    int rc = igpt_in(f.dir, args, &out);
    cr_expect_eq(rc, 2, "%s: exit %d, want 2:\n%s", bad[i], rc, out);
    free(args), free(out);
  }
  teardown(&f);
}

Test(device, help_documents_the_flags) {
  const char *verbs[] = {"train", "loss", "features", "finetune", "sample"};
  for (int i = 0; i < 5; i++) {
    char *args = xasprintf("%s --help", verbs[i]), *out, *dir = test_tmpdir("devhelp");
    cr_expect_eq(igpt_in(dir, args, &out), 0);
    cr_expect(strstr(out, "--device D") && strstr(out, "--precision P"), "igpt %s --help:\n%s", verbs[i], out);
    rm_rf(dir);
    free(args), free(out), free(dir);
  }
}
