// dist: data-parallel `igpt train` over Open MPI (mpirun -np N --oversubscribe, as CI runs it): the
// same loss curve and weights as one process with the same global batch, also across a kill and a
// resume with another world size; a diverged rank stops the run; a batch the world size does not
// divide is refused. The features verb across ranks writes the file one process writes.
//
// Exactness: a rank sums the gradients of its rows, then the ranks' means are averaged, where one
// process sums all rows at once: the same terms in another order. Float addition is not
// associative, so each gradient differs by a few ulps (relative ~1e-7 for sums of a few hundred
// terms), and Adam, which divides by sqrt(v), passes that on to the weights without growing it
// much over a few dozen steps. The loss (printed with 6 decimals, ~2e-7 relative at 2.7 nats)
// must agree to 1e-5 relative, the bound, and the weights to 1e-5 relative in L2 norm; a
// bug (a rank reading the wrong rows, a missing average) moves both by 1e-2 or more.
#include "testutil.h"
#include "base/rng.h"
#include "base/safetensors.h"
#include "engine/model.h"

#define T_CTX 32
#define VOCAB 16
#define NROWS 96

typedef struct { char *dir, *tokens, *config; } fixture;

// NROWS sequences of a period-3 cycle at a random phase with one random token in eight, so the
// loss falls but never to 0 and the gradients stay non-trivial; the label is the phase.
static fixture setup(const char *tag) {
  fixture f = {.dir = test_tmpdir(tag)};
  f.tokens = xasprintf("%s/tokens.safetensors", f.dir);
  uint16_t *tok = xmalloc(NROWS * T_CTX * sizeof *tok);
  int32_t labels[NROWS];
  rng_t r;
  rng_seed(&r, 5);
  for (int n = 0; n < NROWS; n++) {
    uint32_t phase = rng_below(&r, 3);
    labels[n] = (int32_t)phase;
    for (int t = 0; t < T_CTX; t++)
      tok[n * T_CTX + t] = rng_below(&r, 8) ? (uint16_t)(3 + (phase + t) % 3) : (uint16_t)rng_below(&r, VOCAB);
  }
  st_writer *w = st_writer_new();
  st_writer_add(w, "tokens", ST_U16, 2, (int64_t[]){NROWS, T_CTX}, tok);
  st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){NROWS}, labels);
  cr_assert_eq(st_writer_save(w, f.tokens), 0, "%s", igpt_errmsg());
  st_writer_free(w);
  free(tok);
  f.config = xasprintf("%s/config.json", f.dir);
  const char *cfg = "{\"n_layer\":2,\"n_embd\":32,\"n_head\":4,\"n_ctx\":32,\"n_vocab\":16}";
  cr_assert_eq(file_write_atomic(f.config, cfg, strlen(cfg)), 0);
  return f;
}

static void teardown(fixture *f) {
  rm_rf(f->dir);
  free(f->dir); free(f->tokens); free(f->config);
}

static bool have_mpirun(void) { return run_cmd("command -v mpirun >/dev/null 2>&1") == 0; }

// The launcher prefix for np ranks (0: one plain process, no mpirun). One OpenMP thread a rank:
// the ranks share the machine's cores, and bits depend on the thread count. A world that hangs
// (ranks waiting in different collectives) is ended by timeout(1) after 45 s, whose SIGTERM
// mpirun passes on, rather than outliving the test as orphans. Each world keeps its session
// directory in the test's own folder (TMPDIR): Criterion runs the tests in parallel, and two
// mpiruns creating the shared /tmp/ompi.HOST.UID at once fail one of them with "File exists".
static char *launcher(const char *dir, int np) {
  if (!np) return xstrdup("");
  return xasprintf("env TMPDIR=%s timeout -k 5 45 mpirun -np %d --oversubscribe --allow-run-as-root --bind-to none",
                   dir, np);
}

// `igpt VERB args` under np ranks, stderr into DIR/err; the exit status.
static int igpt_np(const fixture *f, int np, const char *env, const char *verb, const char *args) {
  char *bin = igpt_bin(), *l = launcher(f->dir, np);
  // ASan's leak check would report Open MPI's own allocations at exit.
  char *cmd = xasprintf("env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE "
                        "ASAN_OPTIONS=detect_leaks=0 %s %s %s %s %s >%s/out 2>%s/err </dev/null",
                        env, l, bin, verb, args, f->dir, f->dir);
  int rc = run_cmd(cmd);
  free(cmd); free(bin); free(l);
  return rc;
}

#define TRAIN "--steps 24 --batch 12 --lr 0.003 --warmup 3 --checkpoint-every 6 --quiet"

static int train(const fixture *f, int np, const char *env, const char *out, const char *extra) {
  char *args = xasprintf("--config %s --tokens %s --out %s/%s " TRAIN " %s", f->config, f->tokens,
                         f->dir, out, extra);
  int rc = igpt_np(f, np, env, "train", args);
  free(args);
  return rc;
}

static char *slurp(const fixture *f, const char *rel) {
  char *p = xasprintf("%s/%s", f->dir, rel);
  uint8_t *d = NULL;
  size_t n = 0;
  if (file_read_all(p, &d, &n)) d = (uint8_t *)xstrdup("");
  else { d = xrealloc(d, n + 1); d[n] = 0; }
  free(p);
  return (char *)d;
}

// The losses of DIR/out/log.jsonl, steps 1..n in order (n asserted).
static void losses(const fixture *f, const char *out, double *loss, int n) {
  char *rel = xasprintf("%s/log.jsonl", out), *text = slurp(f, rel), *p = text;
  for (int s = 1; s <= n; s++) {
    long long step;
    cr_assert_eq(sscanf(p, "{\"step\":%lld,\"loss\":%lf", &step, &loss[s - 1]), 2, "%s line %d: %.60s", rel, s, p);
    cr_assert_eq(step, s, "%s: line %d is step %lld", rel, s, step);
    p = strchr(p, '\n') + 1;
  }
  cr_assert_eq(*p, 0, "%s: lines after step %d: %.60s", rel, n, p);
  free(text); free(rel);
}

// The run in `out` has the loss curve and the weights of the run in `ref` (see the top comment).
static void assert_same_run(const fixture *f, const char *ref, const char *out) {
  double a[24], b[24];
  losses(f, ref, a, 24);
  losses(f, out, b, 24);
  for (int s = 0; s < 24; s++)
    cr_assert(fabs(a[s] - b[s]) <= 1e-5 * fabs(a[s]), "step %d: loss %.6f (%s) vs %.6f (%s)", s + 1, a[s], ref,
              b[s], out);
  char *pa = xasprintf("%s/%s/model.safetensors", f->dir, ref), *pb = xasprintf("%s/%s/model.safetensors", f->dir, out);
  model *ma = model_load(pa), *mb = model_load(pb);
  cr_assert(ma && mb, "%s", igpt_errmsg());
  cr_assert_eq(ma->n_params, mb->n_params);
  double num = 0, den = 0;
  for (size_t i = 0; i < ma->n_params; i++) {
    double d = (double)ma->params[i] - mb->params[i];
    num += d * d;
    den += (double)ma->params[i] * ma->params[i];
  }
  cr_assert(sqrt(num / den) <= 1e-5, "weights of %s and %s differ by %.3g relative (L2)", ref, out, sqrt(num / den));
  model_free(ma); model_free(mb);
  free(pa); free(pb);
}

Test(dist, two_ranks_match_one_process, .timeout = 60) {
  if (!have_mpirun()) cr_skip_test("mpirun not found (Debian's openmpi-bin; make test-deps installs it)");
  fixture f = setup("dist-same");
  cr_assert_eq(train(&f, 0, "", "one", ""), 0, "%s", slurp(&f, "err"));
  cr_assert_eq(train(&f, 2, "", "two", "--json"), 0, "%s", slurp(&f, "err"));
  assert_same_run(&f, "one", "two");
  // one summary (rank 0's), saying the world size
  char *out = slurp(&f, "out");
  cr_assert(strstr(out, "\"world_size\":2"), "%s", out);
  cr_assert_eq(strchr(out, '{'), strrchr(out, '{'), "more than one summary on stdout: %s", out);
  free(out);
  // micro-batches within each rank's 6 rows (3 + 3) give the same numbers too
  cr_assert_eq(train(&f, 2, "", "two-accum", "--micro-batch 3"), 0, "%s", slurp(&f, "err"));
  assert_same_run(&f, "one", "two-accum");
  teardown(&f);
}

Test(dist, kill_and_resume_with_another_world_size, .timeout = 60) {
  if (!have_mpirun()) cr_skip_test("mpirun not found (Debian's openmpi-bin; make test-deps installs it)");
  fixture f = setup("dist-resume");
  cr_assert_eq(train(&f, 0, "", "one", ""), 0, "%s", slurp(&f, "err"));
  // two ranks killed after step 12's checkpoint, resumed by four ranks, then ...
  int rc = train(&f, 2, "IGPT_TEST_KILL_AFTER_STEP=12", "a", "");
  cr_assert_neq(rc, 0, "the 2-rank run was to be killed after step 12");
  cr_assert_eq(train(&f, 4, "", "a", "--resume"), 0, "%s", slurp(&f, "err"));
  assert_same_run(&f, "one", "a");
  // ... one process killed mid-step 19 (after backward), resumed by three ranks from step 18
  cr_assert_eq(train(&f, 0, "IGPT_TEST_KILL_AFTER_STEP=18 IGPT_TEST_KILL_AT=step", "b", ""), 128 + 9);
  cr_assert_eq(train(&f, 3, "", "b", "--resume"), 0, "%s", slurp(&f, "err"));
  assert_same_run(&f, "one", "b");
  teardown(&f);
}

Test(dist, a_diverged_rank_stops_the_run, .timeout = 60) {
  if (!have_mpirun()) cr_skip_test("mpirun not found (Debian's openmpi-bin; make test-deps installs it)");
  fixture f = setup("dist-diverge");
  int rc = train(&f, 2, "IGPT_TEST_KILL_AFTER_STEP=12 IGPT_TEST_KILL_AT=diverge", "o", "");
  char *err = slurp(&f, "err");
  cr_assert_neq(rc, 0, "a rank's changed weights went unnoticed: %s", err);
  cr_assert(strstr(err, "the ranks diverged") && strstr(err, "weights after step 12 of rank 1"), "%s", err);
  free(err);
  // the step-6 checkpoint is the last one written, intact and resumable
  cr_assert_eq(train(&f, 2, "", "o", "--resume"), 0, "%s", slurp(&f, "err"));
  teardown(&f);
}

Test(dist, a_signal_to_one_rank_stops_every_rank_at_one_step, .timeout = 60) {
  if (!have_mpirun()) cr_skip_test("mpirun not found (Debian's openmpi-bin; make test-deps installs it)");
  fixture f = setup("dist-signal");
  cr_assert_eq(train(&f, 0, "", "one", ""), 0, "%s", slurp(&f, "err"));
  // SIGTERM reaches rank 1 alone in step 9: both ranks finish step 9, rank 0 checkpoints it
  // (without the agreement rank 0 would wait for rank 1 in step 10's all-reduce until the timeout)
  int rc = train(&f, 2, "IGPT_TEST_KILL_AFTER_STEP=9 IGPT_TEST_KILL_AT=term", "o", "");
  char *err = slurp(&f, "err");
  cr_assert_neq(rc, 0);
  cr_assert(strstr(err, "after step 9 of 24") && strstr(err, "continue with --resume"), "%s", err);
  free(err);
  char *log = slurp(&f, "o/log.jsonl");
  cr_assert(strstr(log, "{\"step\":9,") && !strstr(log, "{\"step\":10,"), "%s", log);
  free(log);
  cr_assert_eq(train(&f, 2, "", "o", "--resume"), 0, "%s", slurp(&f, "err"));
  assert_same_run(&f, "one", "o");
  teardown(&f);
}

Test(dist, a_batch_the_world_does_not_divide_is_refused, .timeout = 60) {
  if (!have_mpirun()) cr_skip_test("mpirun not found (Debian's openmpi-bin; make test-deps installs it)");
  fixture f = setup("dist-divide");
  cr_assert_neq(train(&f, 5, "", "o", ""), 0);
  char *err = slurp(&f, "err");
  cr_assert(strstr(err, "--batch 12 is not divisible by the world size 5"), "%s", err);
  free(err);
  teardown(&f);
}

// An initialised (untrained) model of the fixture's shape saved as DIR/name.
static char *save_model(const fixture *f, const char *name, model_objective obj) {
  model_config c;
  model_config_default(&c);
  c.n_layer = 2, c.n_embd = 32, c.n_head = 4, c.n_ctx = T_CTX, c.n_vocab = VOCAB, c.objective = obj;
  model *m = model_new(&c);
  model_init(m, 3);
  char *p = xasprintf("%s/%s", f->dir, name);
  cr_assert_eq(model_save(m, p), 0, "%s", igpt_errmsg());
  model_free(m);
  return p;
}

// Every tensor of two safetensors files, compared within rel (relative L2 over the tensor).
static void assert_same_tensors(const char *a, const char *b, double rel) {
  st_file fa, fb;
  cr_assert_eq(st_open(&fa, a), 0, "%s", igpt_errmsg());
  cr_assert_eq(st_open(&fb, b), 0, "%s", igpt_errmsg());
  cr_assert_eq(fa.n, fb.n, "%s has %d tensors, %s %d", a, fa.n, b, fb.n);
  for (int i = 0; i < fa.n; i++) {
    const st_tensor *ta = &fa.tensors[i], *tb = st_get(&fb, ta->name);
    cr_assert(tb && tb->end - tb->begin == ta->end - ta->begin && tb->dtype == ta->dtype, "%s: tensor %s differs in shape", b, ta->name);
    if (ta->dtype != ST_F32) {
      cr_assert_eq(memcmp(ta->data, tb->data, ta->end - ta->begin), 0, "%s: %s differs", b, ta->name);
      continue;
    }
    const float *x = ta->data, *y = tb->data;
    double num = 0, den = 0;
    for (size_t k = 0; k < st_numel(ta); k++) {
      num += ((double)x[k] - y[k]) * ((double)x[k] - y[k]);
      den += (double)x[k] * x[k];
    }
    cr_assert(num <= rel * rel * den, "%s: %s differs from %s's by %.3g relative", b, ta->name, a, sqrt(num / den));
  }
  st_close(&fa);
  st_close(&fb);
}

Test(dist, features_across_ranks_match_one_process, .timeout = 60) {
  if (!have_mpirun()) cr_skip_test("mpirun not found (Debian's openmpi-bin; make test-deps installs it)");
  fixture f = setup("dist-features");
  // a BERT model with two evaluation masks: each image's masks follow its row in the whole set;
  // 5 ranks take uneven slices (19 or 20 of 96 images) in batches of 8
  char *bert = save_model(&f, "bert.safetensors", OBJ_BERT);
  char *args = xasprintf("--model %s --tokens %s --masks 2 --batch 8 --raw --quiet --out %s/", bert, f.tokens, f.dir);
  char *one = xasprintf("%sone.safetensors", args), *five = xasprintf("%sfive.safetensors --json", args);
  cr_assert_eq(igpt_np(&f, 0, "", "features", one), 0, "%s", slurp(&f, "err"));
  cr_assert_eq(igpt_np(&f, 5, "", "features", five), 0, "%s", slurp(&f, "err"));
  char *out = slurp(&f, "out");
  cr_assert(strstr(out, "\"world_size\":5") && strchr(out, '{') == strrchr(out, '{'), "%s", out);
  // A row's features do not depend on the other rows of its batch (rows are independent in the
  // forward pass) except through how BLAS blocks a matrix product: 1e-6 relative is a few ulps.
  char *pa = xasprintf("%s/one.safetensors", f.dir), *pb = xasprintf("%s/five.safetensors", f.dir);
  assert_same_tensors(pa, pb, 1e-6);
  free(out); free(pa); free(pb); free(one); free(five); free(args); free(bert);
  teardown(&f);
}

Test(dist, finetune_over_two_ranks_matches_one_process, .timeout = 60) {
  if (!have_mpirun()) cr_skip_test("mpirun not found (Debian's openmpi-bin; make test-deps installs it)");
  fixture f = setup("dist-finetune");
  char *pre = save_model(&f, "pre.safetensors", OBJ_AR);
  char *args = xasprintf("--model %s --train %s --val %s --test %s --steps 12 --batch 8 --lr 0.003 --eval-every 4 "
                         "--eval-batch 16 --json --quiet --out %s/", pre, f.tokens, f.tokens, f.tokens, f.dir);
  char *one = xasprintf("%sone", args), *two = xasprintf("%stwo", args);
  cr_assert_eq(igpt_np(&f, 0, "", "finetune", one), 0, "%s", slurp(&f, "err"));
  char *out1 = slurp(&f, "out");
  cr_assert_eq(igpt_np(&f, 2, "", "finetune", two), 0, "%s", slurp(&f, "err"));
  char *out2 = slurp(&f, "out");
  json_t *a = json_loads(out1, 0, NULL), *b = json_loads(out2, 0, NULL);
  cr_assert(a && b, "one summary each: %s / %s", out1, out2);
  cr_assert_eq(json_integer_value(json_object_get(b, "world_size")), 2);
  // the same validation accuracy at every evaluation (counts over 96 images) and the same losses
  json_t *ea = json_object_get(a, "evaluations"), *eb = json_object_get(b, "evaluations");
  cr_assert_eq(json_array_size(ea), json_array_size(eb));
  for (size_t i = 0; i < json_array_size(ea); i++) {
    json_t *x = json_array_get(ea, i), *y = json_array_get(eb, i);
    double va = json_real_value(json_object_get(x, "val_acc")), vb = json_real_value(json_object_get(y, "val_acc"));
    cr_assert(va == vb, "evaluation %zu: val_acc %g vs %g", i, va, vb);
    double la = json_number_value(json_object_get(x, "loss")), lb = json_number_value(json_object_get(y, "loss"));
    cr_assert(fabs(la - lb) <= 1e-5 * fabs(la), "evaluation %zu: loss %.7f vs %.7f", i, la, lb);
  }
  char *ba = xasprintf("%s/one/best.safetensors", f.dir), *bb = xasprintf("%s/two/best.safetensors", f.dir);
  assert_same_tensors(ba, bb, 1e-5);
  json_decref(a); json_decref(b);
  free(ba); free(bb); free(out1); free(out2); free(one); free(two); free(args); free(pre);
  teardown(&f);
}
