// finetune: on a tiny model and separable synthetic tokens validation accuracy rises above chance;
// a run killed at a checkpoint or mid-step and resumed ends exactly as the straight run; the
// augmentation (reflect-pad, crop, flip) is the paper's.
#include "testutil.h"
#include "base/outcomes.h"
#include "engine/augment.h"
#include "engine/model.h"
#include "base/safetensors.h"
#include <jansson.h>

enum { SIDE = 4, T = SIDE * SIDE, V = 8 };

// Class c's images use colours 4c..4c+3 only: separable by the colour histogram.
static void write_set(const char *dir, const char *name, int N, uint64_t seed, int with_images) {
  uint16_t *tok = xmalloc(sizeof(uint16_t) * N * T);
  uint8_t *img = xmalloc((size_t)N * T * 3);
  int32_t *lab = xmalloc(sizeof(int32_t) * N);
  rng_t r;
  rng_seed(&r, seed);
  for (int i = 0; i < N; i++) {
    lab[i] = i % 2;
    for (int t = 0; t < T; t++) {
      int k = 4 * lab[i] + (int)rng_below(&r, 4);
      tok[i * T + t] = (uint16_t)k;
      for (int ch = 0; ch < 3; ch++) img[(i * T + t) * 3 + ch] = (k >> ch) & 1 ? 230 : 26;
    }
  }
  char *p = xasprintf("%s/%s.safetensors", dir, name);
  st_writer *w = st_writer_new();
  st_writer_add(w, "tokens", ST_U16, 2, (int64_t[]){N, T}, tok);
  st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){N}, lab);
  cr_assert_eq(st_writer_save(w, p), 0, "%s", igpt_errmsg());
  st_writer_free(w);
  free(p);
  if (with_images) {
    p = xasprintf("%s/%s-images.safetensors", dir, name);
    w = st_writer_new();
    st_writer_add(w, "images", ST_U8, 4, (int64_t[]){N, SIDE, SIDE, 3}, img);
    st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){N}, lab);
    cr_assert_eq(st_writer_save(w, p), 0, "%s", igpt_errmsg());
    st_writer_free(w);
    free(p);
  }
  free(tok); free(img); free(lab);
}

static char *setup(void) {
  char *dir = test_tmpdir("finetune");
  model_config c;
  model_config_default(&c);
  c.n_layer = 2, c.n_embd = 16, c.n_head = 2, c.n_ctx = T, c.n_vocab = V;
  model *m = model_new(&c);
  model_init(m, 1);
  char *p = xasprintf("%s/pre.safetensors", dir);
  cr_assert_eq(model_save(m, p), 0, "%s", igpt_errmsg());
  free(p);
  model_free(m);
  write_set(dir, "train", 64, 1, 1);
  write_set(dir, "val", 40, 2, 0);
  write_set(dir, "test", 40, 3, 0);
  // the palette of the images: colour k has channel ch at +0.8 when bit ch of k is set
  float cl[V * 3];
  for (int k = 0; k < V; k++)
    for (int ch = 0; ch < 3; ch++) cl[k * 3 + ch] = (k >> ch) & 1 ? 0.8f : -0.8f;
  p = xasprintf("%s/palette.safetensors", dir);
  st_writer *w = st_writer_new();
  st_writer_add(w, "clusters", ST_F32, 2, (int64_t[]){V, 3}, cl);
  cr_assert_eq(st_writer_save(w, p), 0);
  st_writer_free(w);
  free(p);
  return dir;
}

// Runs igpt finetune into DIR/out; returns the exit status, *res the JSON when it succeeded.
static int finetune(const char *dir, const char *out, const char *env, const char *extra, json_t **res) {
  char *bin = igpt_bin();
  char *cmd = xasprintf("OMP_NUM_THREADS=1 %s %s finetune --model %s/pre.safetensors --train %s/train.safetensors "
                        "--val %s/val.safetensors --test %s/test.safetensors --out %s/%s --steps 60 "
                        "--batch 8 --lr 0.003 --eval-every 10 --patience 100 --quiet --json %s > %s/%s.json 2>%s/%s.err",
                        env, bin, dir, dir, dir, dir, dir, out, extra, dir, out, dir, out);
  int rc = run_cmd(cmd);
  if (res) {
    *res = NULL;
    if (rc == 0) {
      char *jp = xasprintf("%s/%s.json", dir, out);
      json_error_t je;
      *res = json_load_file(jp, 0, &je);
      cr_assert_not_null(*res, "%s: %s", jp, je.text);
      free(jp);
    }
  }
  free(cmd); free(bin);
  return rc;
}

static void assert_same_file(const char *a, const char *b) {
  uint8_t *x, *y;
  size_t nx, ny;
  cr_assert_eq(file_read_all(a, &x, &nx), 0, "%s", igpt_errmsg());
  cr_assert_eq(file_read_all(b, &y, &ny), 0, "%s", igpt_errmsg());
  cr_assert(nx == ny && !memcmp(x, y, nx), "%s and %s differ", a, b);
  free(x); free(y);
}

Test(finetune, validation_accuracy_rises_above_chance) {
  char *dir = setup();
  json_t *r;
  cr_assert_eq(finetune(dir, "a", "", "", &r), 0, "see %s/a.err", dir);
  double best = json_real_value(json_object_get(r, "best_val_acc"));
  double first = json_real_value(json_object_get(json_array_get(json_object_get(r, "evaluations"), 0), "val_acc"));
  cr_log_info("first evaluation %.3f, best %.3f, test at best %.3f", first, best,
              json_real_value(json_object_get(r, "test_acc")));
  // step 0 is the untrained zero head: it predicts class 0 for all, chance (0.5) on balanced
  // classes; separable colours should be learned well past it
  cr_assert_eq(json_integer_value(json_object_get(json_array_get(json_object_get(r, "evaluations"), 0), "step")), 0);
  cr_assert_float_eq(first, 0.5, 1e-12, "untrained head accuracy %.3f", first);
  cr_assert_geq(best, 0.9, "best validation accuracy %.3f", best);
  cr_assert_geq(json_real_value(json_object_get(r, "test_acc")), 0.8);
  cr_assert_eq(json_integer_value(json_object_get(r, "steps_done")), 60);
  // each test image's outcome at the best step, for McNemar against the probe: as many right as
  // the accuracy says
  const char *tc = json_string_value(json_object_get(r, "test_correct"));
  int64_t n_test = json_integer_value(json_object_get(r, "n_test"));
  cr_assert(tc && n_test > 0 && (int64_t)strlen(tc) == (n_test + 3) / 4, "test_correct %s for %lld images",
            tc ? tc : "(absent)", (long long)n_test);
  int64_t right = 0;
  for (int64_t i = 0; i < n_test; i++) right += correct_bit(tc, i) == 1;
  cr_assert_float_eq((double)right / n_test, json_real_value(json_object_get(r, "test_acc")), 1e-12);
  char *bp = xasprintf("%s/a/best.safetensors", dir);
  model *m = model_load(bp);
  cr_assert_not_null(m, "%s", igpt_errmsg());
  cr_assert_eq(m->cfg.n_classes, 2);
  model_free(m);
  free(bp);
  json_decref(r);
  rm_rf(dir);
  free(dir);
}

static void killed_and_resumed(const char *at) {
  char *dir = setup();
  json_t *a, *b;
  cr_assert_eq(finetune(dir, "straight", "", "", &a), 0, "see %s/straight.err", dir);
  char *env = xasprintf("IGPT_TEST_KILL_AFTER_STEP=30 IGPT_TEST_KILL_AT=%s", at);
  int rc = finetune(dir, "killed", env, "", NULL);
  cr_assert_eq(rc, 128 + 9, "expected death by SIGKILL at %s, exit %d", at, rc);
  cr_assert_eq(finetune(dir, "killed", "", "", NULL), 1, "without --resume the checkpoint is kept");
  cr_assert_eq(finetune(dir, "killed", "", "--resume", &b), 0, "see %s/killed.err", dir);
  const char *keys[] = {"best_step", "best_val_acc", "test_acc", "test_correct", "steps_done", "evaluations"};
  for (int i = 0; i < 6; i++)
    cr_assert(json_equal(json_object_get(a, keys[i]), json_object_get(b, keys[i])), "%s differs", keys[i]);
  char *p1 = xasprintf("%s/straight/model.safetensors", dir), *p2 = xasprintf("%s/killed/model.safetensors", dir);
  assert_same_file(p1, p2);
  free(p1); free(p2);
  p1 = xasprintf("%s/straight/best.safetensors", dir), p2 = xasprintf("%s/killed/best.safetensors", dir);
  assert_same_file(p1, p2);
  free(p1); free(p2);
  // a changed option is refused on resume, by name
  cr_assert_eq(finetune(dir, "killed", "", "--resume --lr 0.02", NULL), 1);
  json_decref(a);
  json_decref(b);
  free(env);
  rm_rf(dir);
  free(dir);
}

Test(finetune, resume_after_kill_at_checkpoint_gives_the_same_result) { killed_and_resumed("checkpoint"); }
Test(finetune, resume_after_kill_mid_step_gives_the_same_result) { killed_and_resumed("step"); }

Test(finetune, augmentation_is_reflect_pad_crop_flip) {
  // 3x3 image, pixel value = 10*y + x in every channel
  uint8_t img[27], out[27];
  for (int y = 0; y < 3; y++)
    for (int x = 0; x < 3; x++) memset(img + (y * 3 + x) * 3, 10 * y + x, 3);
  augment_image(img, 3, 3, 1, 1, 1, 0, out);  // centred crop, no flip: identity
  cr_assert_eq(memcmp(img, out, 27), 0);
  augment_image(img, 3, 3, 1, 0, 0, 0, out);  // shifted by (-1,-1): reflect, edge not repeated
  cr_assert_eq(out[0], 11);                    // padded (-1,-1) -> (1,1)
  cr_assert_eq(out[(0 * 3 + 1) * 3], 10);      // (-1, 0) -> (1, 0)
  cr_assert_eq(out[(1 * 3 + 1) * 3], 0);       // (0, 0)
  augment_image(img, 3, 3, 1, 1, 1, 1, out);  // flip only
  for (int y = 0; y < 3; y++)
    for (int x = 0; x < 3; x++) cr_assert_eq(out[(y * 3 + x) * 3], 10 * y + (2 - x));
  // random draws cover every offset and both flips
  rng_t r;
  rng_seed(&r, 1);
  int seen[3][3][2] = {{{0}}};
  for (int i = 0; i < 400; i++) {
    rng_t c = r;
    int dy = (int)rng_below(&c, 3), dx = (int)rng_below(&c, 3), fl = (int)rng_below(&c, 2);
    augment_random(img, 3, 3, 1, &r, out);
    uint8_t want[27];
    augment_image(img, 3, 3, 1, dy, dx, fl, want);
    cr_assert_eq(memcmp(out, want, 27), 0);
    seen[dy][dx][fl] = 1;
  }
  for (int i = 0; i < 18; i++) cr_assert(((int *)seen)[i], "an offset/flip never drawn");
}

Test(finetune, augmented_run_learns_and_bad_inputs_fail_clearly) {
  char *dir = setup();
  json_t *r;
  char *extra = xasprintf("--train-images %s/train-images.safetensors --palette %s/palette.safetensors --pad 1", dir, dir);
  cr_assert_eq(finetune(dir, "aug", "", extra, &r), 0, "see %s/aug.err", dir);
  cr_assert_geq(json_real_value(json_object_get(r, "best_val_acc")), 0.9);
  json_decref(r);
  free(extra);
  // images not aligned with the tokens (val's images do not exist) / palette alone: errors
  extra = xasprintf("--train-images %s/nonexistent.safetensors --palette %s/palette.safetensors", dir, dir);
  cr_assert_eq(finetune(dir, "bad1", "", extra, NULL), 1);
  free(extra);
  extra = xasprintf("--palette %s/palette.safetensors", dir);
  cr_assert_eq(finetune(dir, "bad2", "", extra, NULL), 2);
  free(extra);
  rm_rf(dir);
  free(dir);
}

// The progress line at an evaluation shows the loss's two parts as trained, not as the
// evaluation's own forward passes (no labels: both zero) left them.
Test(finetune, progress_line_shows_the_loss_parts) {
  char *dir = setup(), *bin = igpt_bin();
  char *cmd = xasprintf("IGPT_PLAIN=1 OMP_NUM_THREADS=1 %s finetune --model %s/pre.safetensors --train %s/train.safetensors "
                        "--val %s/val.safetensors --test %s/test.safetensors --out %s/p --steps 20 --batch 8 --lr 0.003 "
                        "--eval-every 10 > /dev/null 2>%s/p.err", bin, dir, dir, dir, dir, dir, dir);
  cr_assert_eq(run_cmd(cmd), 0, "see %s/p.err", dir);
  char *ep = xasprintf("%s/p.err", dir);
  FILE *f = fopen(ep, "r");
  cr_assert_not_null(f);
  char line[512];
  int seen = 0;
  while (fgets(line, sizeof line, f)) {
    const char *g = strstr(line, "(gen ");
    if (!g) continue;
    double total, gen, clf;
    const char *l = strstr(line, "loss ");
    cr_assert(l && sscanf(l, "loss %lf (gen %lf, clf %lf)", &total, &gen, &clf) == 3, "line: %s", line);
    cr_assert_gt(gen, 0, "gen shown as %g beside a loss of %g: %s", gen, total, line);
    cr_assert_gt(clf, 0, "clf shown as %g: %s", clf, line);
    cr_assert_float_eq(gen + clf, total, 2e-4, "the parts %g + %g do not make the loss %g", gen, clf, total);  // 4 decimals printed
    seen++;
  }
  fclose(f);
  cr_assert_eq(seen, 2, "expected a progress line at steps 10 and 20, found %d", seen);
  rm_rf(dir);
  free(ep); free(cmd); free(bin); free(dir);
}

// --loss clf trains on L_clf alone: the generative head gets no gradient (its weights stay as
// pretrained), the run still learns, the progress line says so, and a resume must keep it.
Test(finetune, clf_only_loss_leaves_the_generative_head_and_learns) {
  char *dir = setup();
  json_t *r;
  cr_assert_eq(finetune(dir, "c", "", "--loss clf", &r), 0, "see %s/c.err", dir);
  cr_assert_geq(json_real_value(json_object_get(r, "best_val_acc")), 0.9, "L_clf alone learns the colours");
  char *pp = xasprintf("%s/pre.safetensors", dir), *cp = xasprintf("%s/c/model.safetensors", dir);
  model *pre = model_load(pp), *ft = model_load(cp);
  cr_assert(pre && ft, "%s", igpt_errmsg());
  size_t n = pre->info[P_WTET].numel;
  cr_assert_gt(n, 0);
  cr_assert(!memcmp(pre->param[P_WTET], ft->param[P_WTET], n * sizeof(float)),
            "the generative head moved without a generative loss");
  model_free(pre); model_free(ft);
  char *bin = igpt_bin();
  char *cmd = xasprintf("OMP_NUM_THREADS=1 %s finetune --model %s/pre.safetensors --train %s/train.safetensors "
                        "--val %s/val.safetensors --test %s/test.safetensors --out %s/c --steps 60 --batch 8 --lr 0.003 "
                        "--eval-every 10 --patience 100 --quiet --resume 2>%s/c2.err", bin, dir, dir, dir, dir, dir, dir);
  cr_assert_neq(run_cmd(cmd), 0, "a resume without --loss clf was accepted");
  char *log = xasprintf("grep -q -- '--loss differs' %s/c2.err", dir);
  cr_assert_eq(run_cmd(log), 0, "the refusal does not name loss (see %s/c2.err)", dir);
  free(cmd);
  cmd = xasprintf("IGPT_PLAIN=1 OMP_NUM_THREADS=1 %s finetune --model %s/pre.safetensors --train %s/train.safetensors "
                  "--val %s/val.safetensors --test %s/test.safetensors --out %s/c3 --steps 10 --batch 8 --lr 0.003 "
                  "--eval-every 10 --loss clf > /dev/null 2>%s/c3.err", bin, dir, dir, dir, dir, dir, dir);
  cr_assert_eq(run_cmd(cmd), 0, "see %s/c3.err", dir);
  free(log);
  log = xasprintf("grep -q 'step 10/10  loss [0-9.]* (L_clf only)' %s/c3.err", dir);
  cr_assert_eq(run_cmd(log), 0, "the progress line does not say L_clf only (see %s/c3.err)", dir);
  json_decref(r);
  rm_rf(dir);
  free(log); free(cmd); free(bin); free(pp); free(cp); free(dir);
}

// --head-lr is part of what a resume must not change (it changes the numbers).
Test(finetune, head_lr_is_fixed_for_a_resume) {
  char *dir = setup();
  cr_assert_eq(finetune(dir, "h", "", "--head-lr 0.03", NULL), 0, "see %s/h.err", dir);
  char *bin = igpt_bin();
  char *cmd = xasprintf("OMP_NUM_THREADS=1 %s finetune --model %s/pre.safetensors --train %s/train.safetensors "
                        "--val %s/val.safetensors --test %s/test.safetensors --out %s/h --steps 60 --batch 8 --lr 0.003 "
                        "--eval-every 10 --patience 100 --quiet --head-lr 0.01 --resume 2>%s/h2.err", bin, dir, dir, dir,
                        dir, dir, dir);
  cr_assert_neq(run_cmd(cmd), 0, "a resume with another --head-lr was accepted");
  char *log = xasprintf("grep -q -- '--head_lr differs' %s/h2.err", dir);
  cr_assert_eq(run_cmd(log), 0, "the refusal does not name head_lr (see %s/h2.err)", dir);
  rm_rf(dir);
  free(log); free(cmd); free(bin); free(dir);
}

// --head-init probe: the head starts from the probe's fit on the final norm's pooled features,
// so step 0 (before any step) already scores what the probe scored on validation (the same
// forward: the log line's accuracy is step 0's), far above the zero head's chance; the start is
// part of what a resume must not change.
Test(finetune, head_from_the_probe_starts_at_the_probe_accuracy) {
  char *dir = setup();
  json_t *r;
  char *bin = igpt_bin();
  char *cmd = xasprintf("OMP_NUM_THREADS=1 %s finetune --model %s/pre.safetensors --train %s/train.safetensors "
                        "--val %s/val.safetensors --test %s/test.safetensors --out %s/p --steps 20 --batch 8 "
                        "--lr 0.003 --eval-every 10 --patience 100 --head-init probe --json > %s/p.json 2>%s/p.err",
                        bin, dir, dir, dir, dir, dir, dir, dir);
  cr_assert_eq(run_cmd(cmd), 0, "see %s/p.err", dir);
  char *jp = xasprintf("%s/p.json", dir);
  json_error_t je;
  cr_assert_not_null(r = json_load_file(jp, 0, &je), "%s: %s", jp, je.text);
  json_t *e0 = json_array_get(json_object_get(r, "evaluations"), 0);
  double acc0 = json_real_value(json_object_get(e0, "val_acc"));
  cr_assert_eq(json_integer_value(json_object_get(e0, "step")), 0);
  cr_assert_geq(acc0, 0.9, "step 0 with the probe's head: %.3f (the zero head scores 0.5)", acc0);
  // the probe's own validation accuracy, as logged ("validation 0.xxxx"), is step 0's
  char *grep = xasprintf("grep -o 'validation [0-9.]*' %s/p.err | head -1 | cut -d' ' -f2 > %s/acc", dir, dir);
  cr_assert_eq(run_cmd(grep), 0);
  char *ap = xasprintf("%s/acc", dir);
  uint8_t *txt;
  size_t n;
  cr_assert_eq(file_read_all(ap, &txt, &n), 0);
  double logged = strtod((const char *)txt, NULL);
  cr_assert_float_eq(logged, acc0, 5e-5, "the probe logged %.4f, step 0 scored %.6f", logged, acc0);  // 4 decimals
  // the best is at least the start, with the test accuracy measured there
  cr_assert_geq(json_real_value(json_object_get(r, "best_val_acc")), acc0);
  cr_assert_geq(json_real_value(json_object_get(r, "test_acc")), 0.8);
  // a resume with the zero head is refused by name
  char *again = xasprintf("OMP_NUM_THREADS=1 %s finetune --model %s/pre.safetensors --train %s/train.safetensors "
                          "--val %s/val.safetensors --test %s/test.safetensors --out %s/p --steps 20 --batch 8 "
                          "--lr 0.003 --eval-every 10 --patience 100 --quiet --resume 2>%s/p2.err; "
                          "test $? -ne 0 && grep -q -- '--head_init differs' %s/p2.err",
                          bin, dir, dir, dir, dir, dir, dir, dir);
  cr_assert_eq(run_cmd(again), 0, "a resume without --head-init probe was not refused by name (see %s/p2.err)", dir);
  cr_assert_eq(finetune(dir, "z", "", "--head-init nope", NULL), 2, "a bad --head-init is a usage error");
  json_decref(r);
  free(txt); free(ap); free(grep); free(jp); free(cmd); free(again); free(bin);
  rm_rf(dir);
  free(dir);
}

// --head-features: the probe's start read from igpt features files of the same model (what a
// table's features job writes) is the start the fine-tune computes itself: at the same batch
// (--eval-batch, 32) the same run to the bit, results and best model. (A table's features job
// has its own batch, 64 at cpu, where OpenBLAS's blocking can round differently in the last bit.)
// Files of other rows are refused by name, and the option needs --head-init probe.
Test(finetune, head_from_features_files_is_the_same_start) {
  char *dir = setup(), *bin = igpt_bin();
  char *cmd = xasprintf("cd %s && mkdir -p feat bad && for s in train val test; do OMP_NUM_THREADS=1 %s features "
                        "--model pre.safetensors --tokens $s.safetensors --out feat/$s.safetensors --batch 32 --quiet "
                        "|| exit 1; done && cp feat/train.safetensors bad/ && cp feat/test.safetensors bad/val.safetensors",
                        dir, bin);
  cr_assert_eq(run_cmd(cmd), 0, "igpt features failed");
  json_t *a, *b;
  cr_assert_eq(finetune(dir, "own", "", "--head-init probe", &a), 0, "see %s/own.err", dir);
  char *extra = xasprintf("--head-init probe --head-features %s/feat", dir);
  cr_assert_eq(finetune(dir, "read", "", extra, &b), 0, "see %s/read.err", dir);
  // the runs' summaries differ only in their paths
  const char *keys[] = {"best_step", "best_val_acc", "test_acc", "test_correct", "evaluations"};
  for (int k = 0; k < 5; k++)
    cr_assert(json_equal(json_object_get(a, keys[k]), json_object_get(b, keys[k])), "%s differs", keys[k]);
  char *pa = xasprintf("%s/own/best.safetensors", dir), *pb = xasprintf("%s/read/best.safetensors", dir);
  assert_same_file(pa, pb);
  free(extra);
  extra = xasprintf("--head-init probe --head-features %s/bad", dir);
  cr_assert_eq(finetune(dir, "bad", "", extra, NULL), 1);
  char *grep = xasprintf("grep -q 'bad/val.safetensors: its first 32 rows differ' %s/bad.err", dir);
  cr_assert_eq(run_cmd(grep), 0, "features of the wrong rows were not refused by file (see %s/bad.err)", dir);
  free(extra);
  extra = xasprintf("--head-features %s/feat", dir);
  cr_assert_eq(finetune(dir, "noprobe", "", extra, NULL), 2, "--head-features without --head-init probe");
  json_decref(a); json_decref(b);
  free(extra); free(grep); free(pa); free(pb); free(cmd); free(bin);
  rm_rf(dir);
  free(dir);
}
