// train: `igpt train` end to end, run as a subprocess (IGPT_BIN): a killed run resumes
// bit-identically, the loss falls on a learnable token set, bad inputs get clear errors.
// Tiny configs (2 layers, d 32, T 32, vocab 16) keep each run to a fraction of a second.
#include "testutil.h"
#include "base/safetensors.h"
#include "base/rng.h"
#include "cli/cli.h"
#include <cblas.h>

#define T_CTX 32
#define VOCAB 16
#define NROWS 64

// A tokens file of NROWS sequences: a fixed cycle of period 4 at a random phase. Position 0
// (after sos) can only guess the phase (ln 4 nats); every later token follows from the previous.
static char *write_tokens(const char *dir, const char *name, st_dtype dt, int64_t T, int bad_value) {
  char *path = xasprintf("%s/%s", dir, name);
  static const uint16_t cycle[4] = {1, 5, 2, 7};
  uint16_t *tok = xmalloc(NROWS * T * sizeof *tok);
  rng_t r;
  rng_seed(&r, 11);
  for (int n = 0; n < NROWS; n++) {
    uint32_t phase = rng_below(&r, 4);
    for (int t = 0; t < T; t++) tok[n * T + t] = cycle[(phase + t) % 4];
  }
  if (bad_value) tok[3 * T + 5] = (uint16_t)bad_value;  // row 3, column 5
  st_writer *w = st_writer_new();
  st_writer_add(w, "tokens", dt, 2, (int64_t[]){NROWS, dt == ST_U16 ? T : T / 2}, tok);
  cr_assert_eq(st_writer_save(w, path), 0, "%s", igpt_errmsg());
  st_writer_free(w);
  free(tok);
  return path;
}

static char *write_text(const char *dir, const char *name, const char *text) {
  char *path = xasprintf("%s/%s", dir, name);
  cr_assert_eq(file_write_atomic(path, text, strlen(text)), 0);
  return path;
}

#define CONFIG "{\"n_layer\":2,\"n_embd\":32,\"n_head\":4,\"n_ctx\":32,\"n_vocab\":16,"

typedef struct { char *dir, *tokens, *config; } fixture;

static fixture setup(const char *tag, const char *train_section) {
  fixture f;
  f.dir = test_tmpdir(tag);
  f.tokens = write_tokens(f.dir, "tokens.safetensors", ST_U16, T_CTX, 0);
  char *cfg = xasprintf(CONFIG "\"train\":{%s}}", train_section);
  f.config = write_text(f.dir, "config.json", cfg);
  free(cfg);
  return f;
}

static void teardown(fixture *f) {
  rm_rf(f->dir);
  free(f->dir);
  free(f->tokens);
  free(f->config);
}

// Runs `env igpt train --config C --tokens T --out DIR/out extra`, stderr to DIR/err; exit status.
static int train(const fixture *f, const char *out, const char *env, const char *extra) {
  char *bin = igpt_bin();
  // Same thread count for every run: bits depend on it (the promise is "same threads"). Passive
  // waiting: test binaries run in parallel on few cores, where spinning threads starve each other.
  char *cmd = xasprintf("env OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE %s %s train --config %s "
                        "--tokens %s --out %s/%s --quiet %s 2>%s/err", env, bin, f->config,
                        f->tokens, f->dir, out, extra, f->dir);
  int rc = run_cmd(cmd);
  free(cmd);
  free(bin);
  return rc;
}

static char *read_file(const fixture *f, const char *rel, size_t *len) {
  char *p = xasprintf("%s/%s", f->dir, rel);
  uint8_t *d = NULL;
  size_t n = 0;
  cr_assert_eq(file_read_all(p, &d, &n), 0, "%s", igpt_errmsg());
  d = xrealloc(d, n + 1);
  d[n] = 0;
  if (len) *len = n;
  free(p);
  return (char *)d;
}

static void assert_same_file(const fixture *f, const char *a, const char *b) {
  size_t la, lb;
  char *da = read_file(f, a, &la), *db = read_file(f, b, &lb);
  cr_assert(la == lb && memcmp(da, db, la) == 0, "%s and %s differ (%zu vs %zu bytes)", a, b, la, lb);
  free(da);
  free(db);
}

// Straight run vs a run killed at `at` after step 6 of 8 (checkpoints every 2), then resumed.
// 12 sequences a step over 64 rows: step 6 ends 8 rows into the second epoch, so the resumed run
// must rebuild that epoch's order from the saved RNG state.
static void check_resume(const char *train_section, const char *extra, const char *at) {
  fixture f = setup("resume", train_section);
  cr_assert_eq(train(&f, "straight", "", extra), 0, "%s", read_file(&f, "err", NULL));
  char *env = xasprintf("IGPT_TEST_KILL_AFTER_STEP=6 IGPT_TEST_KILL_AT=%s", at);
  int rc = train(&f, "killed", env, extra);
  free(env);
  cr_assert_eq(rc, 128 + 9, "the run was to die by SIGKILL at %s, exit status %d", at, rc);
  cr_assert_eq(train(&f, "killed", "", extra), 1, "without --resume the checkpoint is kept");
  char *resume = xasprintf("%s --resume", extra);
  cr_assert_eq(train(&f, "killed", "", resume), 0, "%s", read_file(&f, "err", NULL));
  free(resume);
  assert_same_file(&f, "straight/model.safetensors", "killed/model.safetensors");
  assert_same_file(&f, "straight/state.safetensors", "killed/state.safetensors");
  // The loss log holds each step once, with the same losses.
  char *la = read_file(&f, "straight/log.jsonl", NULL), *lb = read_file(&f, "killed/log.jsonl", NULL);
  char *pa = la, *pb = lb;
  for (int s = 1; s <= 8; s++) {
    long long sa, sb;
    double xa, xb;
    cr_assert_eq(sscanf(pa, "{\"step\":%lld,\"loss\":%lf", &sa, &xa), 2);
    cr_assert_eq(sscanf(pb, "{\"step\":%lld,\"loss\":%lf", &sb, &xb), 2, "log line %d: %.60s", s, pb);
    cr_assert(sa == s && sb == s && xa == xb, "log step %d: %lld %g vs %lld %g", s, sa, xa, sb, xb);
    pa = strchr(pa, '\n') + 1;
    pb = strchr(pb, '\n') + 1;
  }
  cr_assert_eq(*pb, 0, "extra log lines after step 8: %.80s", pb);
  free(la);
  free(lb);
  teardown(&f);
}

#define RESUME_TRAIN "\"steps\":8,\"batch\":12,\"lr\":0.003,\"warmup\":2,\"checkpoint_every\":2"

Test(train, resume_after_checkpoint_is_bit_identical, .timeout = 60) {
  check_resume(RESUME_TRAIN, "", "checkpoint");
}
Test(train, resume_after_kill_mid_step_is_bit_identical, .timeout = 60) {
  check_resume(RESUME_TRAIN, "", "step");
}
Test(train, resume_after_kill_between_weights_and_state, .timeout = 60) {
  // The weights of step 6 are written, the state is not: resume must use the step-4 pair.
  check_resume(RESUME_TRAIN, "", "between");
}
Test(train, resume_bert_with_accumulation_and_clipping, .timeout = 60) {
  // BERT draws masks (their own RNG stream, saved); accumulation and clipping change the path.
  check_resume(RESUME_TRAIN, "--objective bert --accum 2 --clip 0.5 --weight-decay 0.01", "step");
}

Test(train, refuses_resume_with_changed_options, .timeout = 60) {
  fixture f = setup("refuse", RESUME_TRAIN);
  cr_assert_eq(train(&f, "o", "IGPT_TEST_KILL_AFTER_STEP=2", ""), 128 + 9);
  static const struct { const char *flags, *named; } cases[] = {
      {"--lr 0.002", "--lr"}, {"--seed 1", "--seed"}, {"--steps 9", "--steps"},
      {"--batch 8", "--batch"}, {"--accum 3", "--micro-batch/--accum"},
      {"--objective bert", "--objective"}, {"--clip 1", "--clip"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *extra = xasprintf("--resume %s", cases[i].flags);
    cr_assert_eq(train(&f, "o", "", extra), 1, "%s", cases[i].flags);
    char *err = read_file(&f, "err", NULL);
    cr_assert(strstr(err, cases[i].named) && strstr(err, "cannot resume"),
              "resume with %s: %s", cases[i].flags, err);
    free(err);
    free(extra);
  }
  // Another tokens file (same shape, other contents) is refused too.
  free(write_tokens(f.dir, "tokens.safetensors", ST_U16, T_CTX, 9));
  cr_assert_eq(train(&f, "o", "", "--resume"), 1);
  char *err = read_file(&f, "err", NULL);
  cr_assert(strstr(err, "--tokens"), "%s", err);
  free(err);
  teardown(&f);
}

Test(train, loss_falls_on_a_learnable_token_set, .timeout = 60) {
  // The head starts at zero, so the first loss is exactly ln V (uniform logits). A model that
  // learns only how often each token occurs reaches ln 4 (four tokens, equally frequent); one that
  // uses the context reaches ln(4)/T (only position 0 is uncertain). Demanding a final loss below
  // ln(4)/4 therefore needs the attention to work, with a wide margin on both sides.
  fixture f = setup("loss", "\"steps\":200,\"batch\":8,\"lr\":0.003,\"warmup\":10,\"checkpoint_every\":0");
  cr_assert_eq(train(&f, "o", "OMP_NUM_THREADS=1", ""), 0, "%s", read_file(&f, "err", NULL));
  char *lines = read_file(&f, "o/log.jsonl", NULL);
  double first = NAN, last = NAN, x;
  long long s;
  for (char *p = lines; *p; p = strchr(p, '\n') + 1) {
    cr_assert_eq(sscanf(p, "{\"step\":%lld,\"loss\":%lf", &s, &x), 2, "%.60s", p);
    if (s == 1) first = x;
    last = x;
  }
  cr_assert_eq(s, 200);
  // log.jsonl prints 6 decimals: half a unit in the last place.
  cr_assert(fabs(first - log(VOCAB)) <= 5e-7, "first loss %.6f, expected ln %d = %.6f", first,
            VOCAB, log(VOCAB));
  cr_assert(last < log(4.0) / 4, "final loss %.4f not below ln(4)/4 = %.4f (start %.4f)", last,
            log(4.0) / 4, first);
  free(lines);
  teardown(&f);
}

// Expects exit status `want` and stderr containing each of the NULL-terminated fragments.
static void expect_error(const fixture *f, const char *extra, int want, ...) {
  int rc = train(f, "o", "", extra);
  char *err = read_file(f, "err", NULL);
  cr_assert_eq(rc, want, "%s: exit %d, stderr: %s", extra, rc, err);
  va_list ap;
  va_start(ap, want);
  for (const char *frag; (frag = va_arg(ap, const char *));)
    cr_assert(strstr(err, frag), "%s: stderr lacks '%s': %s", extra, frag, err);
  va_end(ap);
  cr_assert(!strstr(err, "Sanitizer") && !strstr(err, "runtime error"), "%s", err);
  free(err);
}

Test(train, bad_inputs_get_clear_errors, .timeout = 60) {
  fixture f = setup("bad", "\"steps\":2");
  char *cfg;
  // Config files.
  cfg = write_text(f.dir, "c1.json", "{\"n_layer\":2,");
  char *x = xasprintf("--config %s", cfg);
  expect_error(&f, x, 1, "c1.json: line 1", NULL);
  free(x); free(cfg);
  cfg = write_text(f.dir, "c2.json", CONFIG "\"train\":{\"stpes\":3}}");
  x = xasprintf("--config %s", cfg);
  expect_error(&f, x, 1, "c2.json", "train.stpes", NULL);
  free(x); free(cfg);
  cfg = write_text(f.dir, "c3.json", CONFIG "\"train\":{\"lr\":\"big\"}}");
  x = xasprintf("--config %s", cfg);
  expect_error(&f, x, 1, "c3.json", "train.lr", NULL);
  free(x); free(cfg);
  cfg = write_text(f.dir, "c4.json", "{\"n_embd\":32,\"n_head\":4,\"n_ctx\":32,\"n_vocab\":16}");
  x = xasprintf("--config %s", cfg);
  expect_error(&f, x, 1, "c4.json", "n_layer", NULL);
  free(x); free(cfg);
  // A key given twice (issue 15: the last value used to win silently), in the train section and
  // in the model's fields.
  cfg = write_text(f.dir, "c5.json", CONFIG "\"train\":{\"lr\":0.1,\"steps\":2,\"lr\":0.2}}");
  x = xasprintf("--config %s", cfg);
  expect_error(&f, x, 1, "c5.json", "duplicate", "lr", NULL);
  free(x); free(cfg);
  cfg = write_text(f.dir, "c6.json", "{\"n_layer\":2,\"n_layer\":3,\"n_embd\":32,\"n_head\":4,\"n_ctx\":32,\"n_vocab\":16}");
  x = xasprintf("--config %s", cfg);
  expect_error(&f, x, 1, "c6.json", "duplicate", "n_layer", NULL);
  free(x); free(cfg);
  x = xasprintf("--config %s", f.dir);
  expect_error(&f, x, 1, "is a directory", NULL);
  free(x);
  // A config field's error names the field, not the flag it mirrors (issue 15); a flag that
  // overrides it is named as the flag.
  cfg = write_text(f.dir, "c7.json", CONFIG "\"train\":{\"steps\":2,\"batch\":6,\"micro_batch\":4}}");
  x = xasprintf("--config %s", cfg);
  expect_error(&f, x, 1, "train.micro_batch (", "c7.json", "4 must divide train.batch", NULL);
  free(x);
  x = xasprintf("--config %s --batch 10", cfg);
  expect_error(&f, x, 1, "train.micro_batch (", "must divide --batch 10", NULL);
  free(x);
  x = xasprintf("--config %s --micro-batch 4 --batch 10", cfg);
  expect_error(&f, x, 2, "--micro-batch 4 must divide --batch 10", NULL);
  free(x); free(cfg);
  x = xasprintf("--config %s/absent.json", f.dir);
  expect_error(&f, x, 1, "absent.json", NULL);
  free(x);
  // Tokens files.
  char *t;
  t = write_tokens(f.dir, "t1.safetensors", ST_U16, 16, 0);  // T 16 but n_ctx 32
  x = xasprintf("--tokens %s", t);
  expect_error(&f, x, 1, "t1.safetensors", "n_ctx", NULL);
  free(x); free(t);
  t = write_tokens(f.dir, "t2.safetensors", ST_U16, T_CTX, 16);  // 16 >= n_vocab
  x = xasprintf("--tokens %s", t);
  expect_error(&f, x, 1, "t2.safetensors", "tokens[3, 5] = 16", "n_vocab 16", NULL);
  free(x); free(t);
  t = write_tokens(f.dir, "t3.safetensors", ST_I32, T_CTX, 0);  // wrong dtype
  x = xasprintf("--tokens %s", t);
  expect_error(&f, x, 1, "t3.safetensors", "tokens", "U16", NULL);
  free(x); free(t);
  {  // labels that do not match the rows (issue 15: train used to ignore them)
    uint16_t tok[NROWS * T_CTX] = {0};
    int32_t lab[NROWS - 1] = {0};
    st_writer *w = st_writer_new();
    st_writer_add(w, "tokens", ST_U16, 2, (int64_t[]){NROWS, T_CTX}, tok);
    st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){NROWS - 1}, lab);
    t = xasprintf("%s/t5.safetensors", f.dir);
    cr_assert_eq(st_writer_save(w, t), 0, "%s", igpt_errmsg());
    st_writer_free(w);
    x = xasprintf("--tokens %s", t);
    expect_error(&f, x, 1, "t5.safetensors", "'labels'", "64 rows", NULL);
    free(x); free(t);
  }
  t = write_text(f.dir, "t4.safetensors", "\x10\0\0\0\0\0\0\0{\"tokens\":");  // truncated
  x = xasprintf("--tokens %s", t);
  expect_error(&f, x, 1, "t4.safetensors", NULL);
  free(x); free(t);
  // Usage errors.
  char *bin = igpt_bin();
  char *cmd = xasprintf("%s train --config %s --tokens %s 2>/dev/null", bin, f.config, f.tokens);
  cr_assert_eq(run_cmd(cmd), 2, "--out missing is a usage error");
  free(cmd);
  free(bin);
  expect_error(&f, "--batch 6 --accum 4", 2, "--accum 4 must divide --batch 6", NULL);
  expect_error(&f, "--objective gpt", 2, "--objective", NULL);
  expect_error(&f, "--lr -1", 2, "--lr", NULL);
  teardown(&f);
}

Test(train, help_documents_the_config_schema) {
  char *bin = igpt_bin();
  char *dir = test_tmpdir("help");
  char *cmd = xasprintf("%s train --help >%s/out", bin, dir);
  cr_assert_eq(run_cmd(cmd), 0);
  char *p = xasprintf("%s/out", dir);
  uint8_t *d;
  size_t n;
  cr_assert_eq(file_read_all(p, &d, &n), 0);
  d = xrealloc(d, n + 1);
  d[n] = 0;
  for (const char *k = "\"train\"\0--resume\0micro_batch\0checkpoint_every\0--accum\0"; *k; k += strlen(k) + 1)
    cr_assert(strstr((char *)d, k), "help lacks %s", k);
  free(d); free(p); free(cmd); free(bin);
  rm_rf(dir);
  free(dir);
}

// Accumulation as train.c does it (micro-batch gradients summed, then scaled by 1/k) against the
// gradient of the whole batch in one pass, with the real model.
#include "engine/adamw.h"
#include "engine/model.h"
Test(train, accumulated_gradient_equals_full_batch) {
  model_config c;
  model_config_default(&c);
  c.n_layer = 2; c.n_embd = 32; c.n_head = 4; c.n_ctx = T_CTX; c.n_vocab = VOCAB;
  model *m = model_new(&c);
  cr_assert_not_null(m, "%s", igpt_errmsg());
  model_init(m, 5);
  // A nonzero head, so every tensor gets a gradient (wtet starts at zero).
  rng_t r;
  rng_seed(&r, 9);
  for (size_t i = 0; i < m->info[P_WTET].numel; i++) m->param[P_WTET][i] = 0.02f * rng_normal(&r);
  enum { B = 4 };
  uint16_t tok[B * T_CTX];
  for (int i = 0; i < B * T_CTX; i++) tok[i] = (uint16_t)rng_below(&r, VOCAB);
  model_zero_grad(m);
  model_batch full = {.tokens = tok, .B = B, .T = T_CTX, .grad = true, .head = true};
  cr_assert_eq(model_forward(m, &full), 0, "%s", igpt_errmsg());
  cr_assert_eq(model_backward(m), 0, "%s", igpt_errmsg());
  double *want = xmalloc(m->n_params * sizeof *want);
  for (size_t i = 0; i < m->n_params; i++) want[i] = m->grads[i];
  model_zero_grad(m);
  for (int k = 0; k < 2; k++) {
    model_batch half = {.tokens = tok + k * 2 * T_CTX, .B = 2, .T = T_CTX, .grad = true, .head = true};
    cr_assert_eq(model_forward(m, &half), 0, "%s", igpt_errmsg());
    cr_assert_eq(model_backward(m), 0, "%s", igpt_errmsg());
  }
  grad_scale(m->grads, m->n_params, 0.5f);
  // Same arithmetic, other grouping of the sums over the B*T = 128 rows: float32 rounding,
  // about sqrt(128) * 2^-24 ~ 1e-6 relative; 1e-5 is the engine's float32 tolerance.
  double e = rel_err_f32_f64(m->grads, want, m->n_params);
  cr_assert(e < 1e-5, "accumulated gradient differs from the full batch's: rel err %.3g", e);
  // And not trivially: the gradient is not zero.
  cr_assert(grad_global_norm(m->grads, m->n_params) > 0);
  free(want);
  model_free(m);
}

Test(train, sigterm_writes_a_checkpoint_and_resumes, .timeout = 60) {
  // A scheduler's preemption: SIGTERM mid-run finishes the step, checkpoints, exits 1; --resume
  // then ends where an uninterrupted run ends.
  fixture f = setup("term", "\"steps\":400,\"batch\":4,\"lr\":0.003,\"checkpoint_every\":0");
  cr_assert_eq(train(&f, "straight", "", ""), 0, "%s", read_file(&f, "err", NULL));
  char *rel = igpt_bin(), *bin = realpath(rel, NULL);
  cr_assert_not_null(bin, "%s not found", rel);
  free(rel);
  char *cmd = xasprintf(
      "cd %s || exit 9; env OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE %s train "
      "--config %s --tokens %s --out t --quiet 2>err & pid=$!; "
      "for i in $(seq 1000); do [ -s t/log.jsonl ] || ! kill -0 $pid 2>/dev/null && break; "
      "sleep 0.01; done; "
      "kill -TERM $pid 2>/dev/null; wait $pid", f.dir, bin, f.config, f.tokens);
  int rc = run_cmd(cmd);
  free(cmd);
  free(bin);
  char *err = read_file(&f, "err", NULL);
  if (rc == 0) {
    free(err);
    teardown(&f);
    cr_skip_test("the run finished before SIGTERM arrived (a very fast or very idle machine)");
  }
  cr_assert_eq(rc, 1, "exit %d: %s", rc, err);
  cr_assert(strstr(err, "stopped by") && strstr(err, "--resume"), "%s", err);
  free(err);
  cr_assert_eq(train(&f, "t", "", "--resume"), 0, "%s", read_file(&f, "err", NULL));
  assert_same_file(&f, "straight/model.safetensors", "t/model.safetensors");
  teardown(&f);
}

Test(train, resume_survives_two_kills_between_weights_and_state, .timeout = 60) {
  // After resuming from model.prev.safetensors (kill between the writes at step 4: the state is
  // step 2's), the next checkpoint (step 4 again) must not drop those weights before its state is
  // written: kill at the same place again.
  fixture f = setup("twice", RESUME_TRAIN);
  cr_assert_eq(train(&f, "straight", "", ""), 0, "%s", read_file(&f, "err", NULL));
  cr_assert_eq(train(&f, "k", "IGPT_TEST_KILL_AFTER_STEP=4 IGPT_TEST_KILL_AT=between", ""), 128 + 9);
  cr_assert_eq(train(&f, "k", "IGPT_TEST_KILL_AFTER_STEP=4 IGPT_TEST_KILL_AT=between", "--resume"),
               128 + 9, "%s", read_file(&f, "err", NULL));
  cr_assert_eq(train(&f, "k", "", "--resume"), 0, "%s", read_file(&f, "err", NULL));
  assert_same_file(&f, "straight/model.safetensors", "k/model.safetensors");
  assert_same_file(&f, "straight/state.safetensors", "k/state.safetensors");
  teardown(&f);
}

Test(train, corrupt_checkpoints_get_clear_errors, .timeout = 60) {
  fixture f = setup("corrupt", "\"steps\":4,\"batch\":2,\"checkpoint_every\":2");
  cr_assert_eq(train(&f, "o", "IGPT_TEST_KILL_AFTER_STEP=2", ""), 128 + 9);
  size_t n;
  char *state = read_file(&f, "o/state.safetensors", &n);
  char *sp = xasprintf("%s/o/state.safetensors", f.dir), *mp = xasprintf("%s/o/model.safetensors", f.dir);
  // A truncated state file.
  cr_assert_eq(file_write_atomic(sp, state, n / 2), 0);
  expect_error(&f, "--resume", 1, "state.safetensors", NULL);
  // A whole state file but other weights beside it (digest mismatch).
  cr_assert_eq(file_write_atomic(sp, state, n), 0);
  size_t mn;
  char *weights = read_file(&f, "o/model.safetensors", &mn);
  weights[mn - 1] ^= 1;  // one bit of the last parameter
  cr_assert_eq(file_write_atomic(mp, weights, mn), 0);
  expect_error(&f, "--resume", 1, "model_sha256", "model.safetensors", NULL);
  // The intact pair resumes.
  weights[mn - 1] ^= 1;
  cr_assert_eq(file_write_atomic(mp, weights, mn), 0);
  expect_error(&f, "--resume", 0, NULL);
  // Weights without a state (an imported model, say) are not overwritten unasked.
  cr_assert_eq(unlink(sp), 0);
  expect_error(&f, "", 1, "model.safetensors but no training state", NULL);
  free(state); free(weights); free(sp); free(mp);
  teardown(&f);
}

// The effective spin count libgomp reports (OMP_DISPLAY_ENV=verbose; the last report is the one of
// the process that runs, after igpt executes itself again), or -1 when it reports none.
static long long spin_count(const char *env) {
  char *bin = igpt_bin();
  char *cmd = xasprintf("env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT %s OMP_DISPLAY_ENV=verbose %s --version 2>&1 | "
                        "sed -n \"s/.*GOMP_SPINCOUNT = '\\([0-9]*\\)'.*/\\1/p\" | tail -n 1", env, bin);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  long long n = -1;
  if (fscanf(p, "%lld", &n) != 1) n = -1;
  pclose(p);
  free(cmd);
  free(bin);
  return n;
}

// Issue 15: on a busy machine spinning OpenMP threads made a small model's step up to 100x slower
// (ci/bench-load.sh). igpt makes its threads sleep when they wait (spin count 0, the passive policy)
// unless the user chose a policy or a spin count, which it keeps.
Test(train, openmp_threads_sleep_unless_the_user_chose) {
  long long dflt = spin_count("");
  if (dflt < 0) cr_skip_test("this OpenMP runtime does not report GOMP_SPINCOUNT (not libgomp)");
  cr_assert_eq(dflt, 0, "igpt's OpenMP threads spin %lld times before they sleep", dflt);
  cr_assert_gt(spin_count("OMP_WAIT_POLICY=active"), 1000000, "the user's OMP_WAIT_POLICY=active was overridden");
  cr_assert_eq(spin_count("GOMP_SPINCOUNT=12345"), 12345, "the user's GOMP_SPINCOUNT was overridden");
}

// The OpenBLAS kernel set `igpt --version` names for the process that runs, under env (after
// env -u OPENBLAS_CORETYPE), into buf; empty when it names none.
static void blas_kernels(const char *env, char *buf, size_t n) {
  char *bin = igpt_bin();
  char *cmd = xasprintf("env -u OPENBLAS_CORETYPE %s %s --version 2>/dev/null | "
                        "sed -n 's/^blas: .*(kernels: \\(.*\\))$/\\1/p'", env, bin);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  if (!fgets(buf, (int)n, p)) buf[0] = 0;
  buf[strcspn(buf, "\n")] = 0;
  pclose(p);
  free(cmd);
  free(bin);
}

// Debian 12's OpenBLAS chose its Prescott (SSE3) kernels on an Emerald Rapids Xeon and a training
// step ran 3x slower (runtime/cli/blas_core.c). The decision: a set without AVX2 on a CPU with it is
// replaced by the best the CPU runs; a known set, a one-set build and an older CPU are left alone.
Test(train, blas_kernels_without_avx2_are_replaced_where_the_cpu_has_it) {
  const char *dyn = "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Prescott MAX_THREADS=64";
  blas_cpu_t spr = {1, 1, 1}, skx = {1, 1, 0}, hsw = {1, 0, 0}, old = {0, 0, 0};
  cr_assert_str_eq(blas_core_pick("Prescott", dyn, spr), "Cooperlake");
  cr_assert_str_eq(blas_core_pick("Prescott", dyn, skx), "SkylakeX");
  cr_assert_str_eq(blas_core_pick("Sandybridge", dyn, hsw), "Haswell");
  cr_assert_null(blas_core_pick("Prescott", dyn, old), "a CPU without AVX2 keeps the library's choice");
  cr_assert_null(blas_core_pick("Haswell", dyn, spr), "a set with AVX2 is the library's to choose");
  cr_assert_null(blas_core_pick("Zen", dyn, spr));
  cr_assert_null(blas_core_pick("skylakex", dyn, spr), "names compare without case");
  cr_assert_null(blas_core_pick("Prescott", "OpenBLAS 0.3.21 NO_LAPACKE Prescott MAX_THREADS=64", spr),
                 "a build with one kernel set ignores OPENBLAS_CORETYPE");
  // This machine, end to end: the process that runs has AVX2 kernels wherever the CPU has AVX2 and
  // the library can switch, and a user's OPENBLAS_CORETYPE stands.
  char set[64];
  blas_kernels("", set, sizeof set);
  cr_assert(set[0], "igpt --version names no OpenBLAS kernel set");
  cr_assert_null(blas_core_pick(set, openblas_get_config(), blas_cpu_now()),
                 "igpt runs OpenBLAS's %s kernels on a CPU with wider ones", set);
#if defined(__x86_64__)
  if (!strstr(openblas_get_config(), "DYNAMIC_ARCH")) return;  // one fixed set: nothing to force
  blas_kernels("OPENBLAS_CORETYPE=Prescott", set, sizeof set);
  cr_assert_str_eq(set, "Prescott", "the user's OPENBLAS_CORETYPE=Prescott was overridden");
#endif
}

// The ETA leaves out the first step (its allocations would inflate it): the first progress line
// has none, the second step's line gives the first.
Test(train, first_eta_leaves_out_the_first_step, .timeout = 60) {
  fixture f = setup("eta", "\"steps\":3,\"batch\":2,\"checkpoint_every\":0");
  char *bin = igpt_bin();
  char *cmd = xasprintf("%s train --config %s --tokens %s --out %s/o --log-every 1 2>%s/err", bin, f.config, f.tokens,
                        f.dir, f.dir);
  cr_assert_eq(run_cmd(cmd), 0, "%s", read_file(&f, "err", NULL));
  char *err = read_file(&f, "err", NULL);
  char *l1 = strstr(err, "step 1/3"), *l2 = strstr(err, "step 2/3");
  cr_assert(l1 && l2, "%s", err);
  cr_assert(strstr(l1, "ETA -\n") == strchr(l1, '\n') - 5, "first line: %.100s", l1);
  cr_assert(strstr(l2, "ETA ") && strstr(l2, "ETA ")[4] >= '0' && strstr(l2, "ETA ")[4] <= '9', "second line: %.100s", l2);
  free(err); free(cmd); free(bin);
  teardown(&f);
}
