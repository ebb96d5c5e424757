// finetune: classifier fine-tuning with L_gen + L_clf, early stopping, resume; see finetune.h.
#include "engine/finetune.h"
#include "engine/adamw.h"
#include "engine/optim.h"
#include "engine/augment.h"
#include "engine/checkpoint.h"
#include "engine/comm.h"
#include "engine/data_parallel.h"
#include "engine/featurize.h"
#include "engine/model.h"
#include "datasets/palette.h"
#include "base/safetensors.h"
#include "engine/schedule.h"
#include "engine/train.h"
#include "base/fault.h"
#include "base/outcomes.h"
#include "base/util.h"
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void finetune_opts_default(finetune_opts *o) {
  memset(o, 0, sizeof *o);
  o->steps = 1000;
  o->batch = 8;
  o->lr = 1e-4;
  o->warmup = -1;
  o->eval_every = 50;
  o->patience = 5;
  o->eval_batch = 32;
  o->pad = 4;
}

// A labelled tokens file.
typedef struct {
  st_file f;
  const uint16_t *tokens;  // [N, T]
  const int32_t *labels;   // [N]
  int64_t N, T;
} labelled;

static finetune_set set_of(const labelled *d) {
  return (finetune_set){.tokens = d->tokens, .labels = d->labels, .N = d->N, .T = d->T};
}

static int open_labelled(labelled *d, const char *path, int n_vocab) {
  memset(d, 0, sizeof *d);
  if (st_open(&d->f, path)) return -1;
  const st_tensor *t = st_expect(&d->f, "tokens", ST_U16, 2, NULL);
  if (!t) goto fail;
  d->N = t->shape[0], d->T = t->shape[1];
  d->tokens = t->data;
  if (d->N < 1) { igpt_err("%s: no rows in 'tokens'", path); goto fail; }
  const st_tensor *l = st_get(&d->f, "labels");
  if (!l) { igpt_err("%s: no 'labels': fine-tuning needs labelled tokens", path); goto fail; }
  if (!st_expect(&d->f, "labels", ST_I32, 1, (int64_t[]){d->N})) goto fail;
  d->labels = l->data;
  for (int64_t i = 0; i < d->N; i++)
    if (d->labels[i] < 0) { igpt_err("%s: labels[%lld] = %d is negative", path, (long long)i, d->labels[i]); goto fail; }
  for (int64_t i = 0; i < d->N * d->T; i++)
    if (d->tokens[i] >= n_vocab) {
      igpt_err("%s: tokens[%lld, %lld] = %u is outside the palette (n_vocab %d)", path,
               (long long)(i / d->T), (long long)(i % d->T), d->tokens[i], n_vocab);
      goto fail;
    }
  return 0;
fail:
  st_close(&d->f);
  return -1;
}

// The pretrained model with a classifier head of K classes (zero-initialised, as the official code).
static model *with_head(model *src, int K) {
  if (src->cfg.n_classes == K) return src;
  model_config c = src->cfg;
  c.n_classes = K;
  model *m = model_new(&c);
  if (!m) return NULL;
  for (int p = 0; p < P_NTENSORS; p++)
    if (p != P_WCLF && src->info[p].numel)
      memcpy(m->param[p], src->param[p], src->info[p].numel * sizeof(float));
  model_free(src);
  return m;
}

// Classifier accuracy on a labelled set (BERT: evaluation mask 0 of features_mask, seeded). Data
// parallel: each rank counts its slice of the rows, the counts are summed. right_out (N entries, or
// NULL): each image's outcome, for paired tests against another classifier on the same images.
static double accuracy(model *m, const labelled *d, int eval_batch, uint64_t seed, const dp_shard *sh,
                       uint8_t *right_out) {
  const int T = (int)d->T, K = m->cfg.n_classes;
  const bool bert = m->cfg.objective == OBJ_BERT;
  uint8_t *mask = bert ? xmalloc((size_t)eval_batch * T) : NULL;
  int64_t right = 0;
  const int64_t lo = comm_slice_start(d->N, sh->rank, sh->size), hi = comm_slice_start(d->N, sh->rank + 1, sh->size);
  for (int64_t i0 = lo; i0 < hi; i0 += eval_batch) {
    int B = (int)(hi - i0 < eval_batch ? hi - i0 : eval_batch);
    if (bert)
      for (int b = 0; b < B; b++) features_mask(seed, 0, i0 + b, m->cfg.mask_prob, mask + (size_t)b * T, T);
    model_batch mb = {.tokens = d->tokens + i0 * T, .mask = mask, .B = B, .T = T};
    if (model_forward(m, &mb)) igpt_die("finetune: evaluation forward failed: %s", igpt_errmsg());
    const float *lg = model_clf_logits(m);
    for (int b = 0; b < B; b++) {
      int best = 0;
      for (int k = 1; k < K; k++)
        if (lg[(size_t)b * K + k] > lg[(size_t)b * K + best]) best = k;
      right += best == d->labels[i0 + b];
      if (right_out) right_out[i0 + b] = best == d->labels[i0 + b];
    }
  }
  free(mask);
  double sum = (double)right;  // counts are exact in a double
  if (comm_allreduce_sum_f64(&sum, 1)) igpt_die("finetune: evaluation: %s", igpt_errmsg());
  if (right_out && sh->size > 1) {  // every rank gets all outcomes: 0 outside its slice, summed
    double *r = xcalloc((size_t)d->N, sizeof(double));
    for (int64_t i = lo; i < hi; i++) r[i] = right_out[i];
    if (comm_allreduce_sum_f64(r, (size_t)d->N)) igpt_die("finetune: evaluation: %s", igpt_errmsg());
    for (int64_t i = 0; i < d->N; i++) right_out[i] = r[i] > 0.5;
    free(r);
  }
  return sum / (double)d->N;
}

// The test accuracy, and each test image's outcome as hex into *test_correct (replaced).
static double test_accuracy(model *m, const labelled *te, int eval_batch, uint64_t seed, const dp_shard *sh,
                            char **test_correct) {
  uint8_t *right = xcalloc((size_t)te->N, 1);
  double acc = accuracy(m, te, eval_batch, seed, sh, right);
  free(*test_correct);
  *test_correct = xmalloc((size_t)(te->N + 3) / 4 + 1);
  correct_hex(right, te->N, *test_correct);
  free(right);
  return acc;
}

static json_t *rng_json(const rng_t *r) {
  char s[4 * 17 + 1];
  snprintf(s, sizeof s, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, r->s[0], r->s[1],
           r->s[2], r->s[3]);
  return json_string(s);
}

static int rng_from_json(const json_t *j, rng_t *r) {
  const char *s = json_string_value(j);
  if (!s || strlen(s) != 64) return -1;
  for (int i = 0; i < 4; i++) {
    char w[17];
    memcpy(w, s + 16 * i, 16);
    w[16] = 0;
    char *end;
    r->s[i] = strtoull(w, &end, 16);
    if (*end) return -1;
  }
  return 0;
}

typedef struct {
  rng_t aug_rng;
  int64_t best_step;
  double best_val, test_acc;
  char *test_correct;  // each test image's outcome at the best step, hex (base/outcomes.h), owned
  int since_best;
  bool stopped_early;
  json_t *evals;   // [{step, val_acc}], owned
} ft_progress;

static json_t *progress_json(const ft_progress *p) {
  return json_pack("{s:o,s:I,s:f,s:f,s:s?,s:i,s:b,s:O}", "aug_rng", rng_json(&p->aug_rng), "best_step",
                   (json_int_t)p->best_step, "best_val_acc", p->best_val, "test_acc", p->test_acc,
                   "test_correct", p->test_correct, "since_best", p->since_best, "stopped_early",
                   p->stopped_early, "evals", p->evals);
}

static int progress_from_json(const json_t *j, ft_progress *p, const char *dir) {
  json_t *ev = json_object_get(j, "evals");
  if (!json_is_object(j) || rng_from_json(json_object_get(j, "aug_rng"), &p->aug_rng) || !json_is_array(ev))
    return igpt_err("%s/state.safetensors: the fine-tune progress record is missing or malformed; "
                    "is this a pretraining directory?", dir);
  p->best_step = json_integer_value(json_object_get(j, "best_step"));
  p->best_val = json_real_value(json_object_get(j, "best_val_acc"));
  p->test_acc = json_real_value(json_object_get(j, "test_acc"));
  const char *tc = json_string_value(json_object_get(j, "test_correct"));
  free(p->test_correct);
  p->test_correct = tc ? xstrdup(tc) : NULL;
  p->since_best = (int)json_integer_value(json_object_get(j, "since_best"));
  p->stopped_early = json_is_true(json_object_get(j, "stopped_early"));
  json_decref(p->evals);
  p->evals = json_deep_copy(ev);
  return 0;
}

int finetune_run(const finetune_opts *o, json_t **result) {
  int rc = -1;
  model *m = NULL;
  labelled tr = {0}, va = {0}, te = {0};
  st_file imf = {0};
  float *centres = NULL;
  palette_quantizer *q = NULL;
  train_state st = {0};
  optim opt = {0};
  ft_progress pr = {.evals = json_array(), .best_val = -1};
  uint16_t *tokens = NULL;
  uint8_t *mask = NULL, *aug = NULL;
  int32_t *labels = NULL;
  int64_t *rows = NULL;
  char *best_path = xasprintf("%s/best.safetensors", o->out_dir);
  json_t *fixed = NULL;
  const double t_start = now_seconds();

  if (!!o->train_images != !!o->palette) {
    igpt_err("augmentation needs both --train-images and --palette");
    goto out;
  }
  if (o->steps < 1 || o->batch < 1 || o->eval_every < 1 || o->patience < 1 || !(o->lr > 0)) {
    igpt_err("--steps, --batch, --eval-every, --patience and --lr must be positive");
    goto out;
  }
  // Data parallel: every rank runs the loop on its shard of each batch (data_parallel.h).
  dp_shard sh;
  if (dp_shard_of(o->batch, "--batch", &sh)) goto out;
  const bool lead = sh.rank == 0;  // writes the checkpoints and the best model, logs
  if (mkdir_p(o->out_dir)) goto out;
  char model_sha[65], train_sha[65];
  if (sha256_file(o->model_path, model_sha) || sha256_file(o->train, train_sha)) goto out;

  // the pretrained model, or the checkpoint of an interrupted run
  bool resuming = checkpoint_exists(o->out_dir);
  if (resuming && !o->resume) {
    igpt_err("%s already holds a fine-tune checkpoint; pass --resume to continue it or choose "
             "another --out", o->out_dir);
    goto out;
  }
  model *pre = model_load(o->model_path);
  if (!pre) goto out;
  int n_vocab = pre->cfg.n_vocab, n_ctx = pre->cfg.n_ctx;
  if (open_labelled(&tr, o->train, n_vocab) || open_labelled(&va, o->val, n_vocab) ||
      open_labelled(&te, o->test, n_vocab)) {
    model_free(pre);
    goto out;
  }
  if (tr.T != va.T || tr.T != te.T || tr.T > n_ctx) {
    model_free(pre);
    igpt_err("sequence lengths differ or exceed n_ctx %d: train %lld, val %lld, test %lld", n_ctx,
             (long long)tr.T, (long long)va.T, (long long)te.T);
    goto out;
  }
  int K = 0;
  for (int64_t i = 0; i < tr.N; i++) K = tr.labels[i] + 1 > K ? tr.labels[i] + 1 : K;
  if (pre->cfg.n_classes > K) K = pre->cfg.n_classes;
  for (int s = 0; s < 2; s++) {
    const labelled *d = s ? &te : &va;
    for (int64_t i = 0; i < d->N; i++)
      if (d->labels[i] >= K) {
        model_free(pre);
        igpt_err("%s: label %d at row %lld, but the training set has classes 0..%d", s ? o->test : o->val,
                 d->labels[i], (long long)i, K - 1);
        goto out;
      }
  }
  if (K < 2) { model_free(pre); igpt_err("%s: a single class; nothing to fine-tune on", o->train); goto out; }
  int H = 0, W = 0;
  const uint8_t *images = NULL;
  if (o->train_images) {
    if (st_open(&imf, o->train_images)) { model_free(pre); goto out; }
    const st_tensor *it = st_expect(&imf, "images", ST_U8, 4, (int64_t[]){tr.N, -1, -1, 3});
    if (!it) { model_free(pre); igpt_err_prefix("(aligned with %s)", o->train); goto out; }
    H = (int)it->shape[1], W = (int)it->shape[2];
    images = it->data;
    if ((int64_t)H * W != tr.T || o->pad >= H || o->pad >= W) {
      model_free(pre);
      igpt_err("%s: images of %dx%d give %d tokens, the tokens have %lld (and the padding %d must be "
               "below both sides)", o->train_images, H, W, H * W, (long long)tr.T, o->pad);
      goto out;
    }
    int Kp;
    if (palette_load(o->palette, &centres, &Kp)) { model_free(pre); goto out; }
    if (Kp > n_vocab) {
      model_free(pre);
      igpt_err("%s: %d colours, the model's palette has %d", o->palette, Kp, n_vocab);
      goto out;
    }
    if (!(q = palette_quantizer_new(centres, Kp, 0))) { model_free(pre); goto out; }
  }

  int64_t warmup = o->warmup >= 0 ? o->warmup : o->steps / 20;
  {
    char *c = model_config_dump(&pre->cfg);
    fixed = json_pack("{s:s,s:s,s:s,s:I,s:i,s:f,s:I,s:f,s:f,s:i,s:I,s:b,s:i,s:i}", "model_sha256", model_sha,
                      "train_sha256", train_sha, "config", c, "steps", (json_int_t)o->steps, "batch",
                      o->batch, "lr", o->lr, "warmup", (json_int_t)warmup, "weight_decay", o->weight_decay,
                      "clip", o->clip, "eval_every", o->eval_every, "seed", (json_int_t)o->seed,
                      "augment", o->train_images != NULL, "pad", o->pad, "classes", K);
    if (o->head_lr > 0) json_object_set_new(fixed, "head_lr", json_real(o->head_lr));  // absent: as before
    if (o->head_init) json_object_set_new(fixed, "head_init", json_string(o->head_init_name ? o->head_init_name : "custom"));
    if (o->clf_only) json_object_set_new(fixed, "loss", json_string("clf"));  // absent: joint, as before
    free(c);
  }
  if (resuming) {
    model_free(pre);
    if (!(m = checkpoint_load(o->out_dir, &st))) goto out;
    json_t *saved = json_object_get(st.options, "fixed");
    const char *key;
    json_t *v;
    json_object_foreach(fixed, key, v) {
      json_t *s = json_object_get(saved, key);
      if (!s || !json_equal(s, v)) {
        igpt_err("cannot resume %s: --%s differs from the checkpoint's (or the model/train file "
                 "changed); resume with the original value or use another --out", o->out_dir, key);
        goto out;
      }
    }
    json_object_foreach(saved, key, v)  // an option the checkpoint has and this run left out
      if (!json_object_get(fixed, key)) {
        igpt_err("cannot resume %s: --%s differs from the checkpoint's (it was given there, not here); "
                 "resume with the original value or use another --out", o->out_dir, key);
        goto out;
      }
    if (progress_from_json(json_object_get(st.options, "progress"), &pr, o->out_dir)) goto out;
    if (st.threads != omp_get_max_threads())
      log_warn("resuming with %d threads, the checkpoint was written with %d: the result is "
               "equivalent, not bit-identical", omp_get_max_threads(), st.threads);
    if (lead) log_info("finetune: resuming %s at step %lld", o->out_dir, (long long)st.step);
  } else {
    if (!(m = with_head(pre, K))) goto out;
    if (o->head_init) {
      finetune_set trs = set_of(&tr), vas = set_of(&va);
      if (o->head_init(m, &trs, &vas, o->head_init_ctx)) { igpt_err_prefix("the head's start"); goto out; }
      model_push(m);
    }
    st.n = m->n_params;
    st.m = xcalloc(st.n, sizeof(float));
    st.v = xcalloc(st.n, sizeof(float));
    rng_seed_stream(&st.data.order_rng, o->seed, 0x6261746368 /* "batch" */);
    rng_seed_stream(&st.data.mask_rng, o->seed, 0x6d61736b /* "mask" */);
    rng_seed_stream(&pr.aug_rng, o->seed, 0x617567 /* "aug" */);
  }
  st.threads = omp_get_max_threads();
  if (optim_attach(&opt, m, st.m, st.v)) goto out;
  if (o->head_lr > 0) opt.lr_scale[P_WCLF] = o->head_lr / o->lr;  // the head: the same schedule, scaled

  const int B = o->batch, T = (int)tr.T;
  const bool bert = m->cfg.objective == OBJ_BERT;
  tokens = xmalloc(sizeof(uint16_t) * B * T);
  mask = xmalloc((size_t)B * T);
  labels = xmalloc(sizeof(int32_t) * B);
  if (images) aug = xmalloc((size_t)B * H * W * 3);
  rows = xmalloc(sizeof(int64_t) * B);
  adamw_opts ao = adamw_defaults();
  ao.weight_decay = o->weight_decay;
  lr_schedule sch = {.lr = o->lr, .warmup = warmup, .total = o->steps};
  const bool tty = isatty(2);
  double last_print = 0, loss = NAN;
  const int64_t start = st.step;

  if (start == 0 && json_array_size(pr.evals) == 0) {
    // the head before any step as the baseline, recorded as step 0: chance level for a zero head,
    // the probe's accuracy for one started from the probe. It is the best so far, so a fine-tune
    // that only loses accuracy reports the start, not its first (worse) evaluation.
    double acc0 = accuracy(m, &va, o->eval_batch, o->seed, &sh, NULL);
    json_array_append_new(pr.evals, json_pack("{s:i,s:f}", "step", 0, "val_acc", acc0));
    pr.best_val = acc0;
    pr.best_step = 0;
    pr.test_acc = test_accuracy(m, &te, o->eval_batch, o->seed, &sh, &pr.test_correct);
    if (lead && model_save(m, best_path)) goto out;
    if (lead && o->progress) log_info("finetune: step 0 (the head's start)  val %.4f  test %.4f", acc0, pr.test_acc);
  }
  for (int64_t s = start; s < o->steps && !pr.stopped_early; s++) {
    // a batch drawn uniformly with replacement from its own stream (saved in the checkpoint)
    for (int b = 0; b < B; b++) {
      rows[b] = rng_below(&st.data.order_rng, (uint32_t)tr.N);
      labels[b] = tr.labels[rows[b]];
    }
    // every rank draws (and augments) the whole batch, so the streams stay alike, and trains on
    // its shard: rows [first, first + rows) of the batch
    const int first = sh.first, Bl = sh.rows;
    if (images) {
      for (int b = 0; b < B; b++)
        augment_random(images + rows[b] * H * W * 3, H, W, o->pad, &pr.aug_rng, aug + (size_t)b * H * W * 3);
      palette_quantize(q, aug + (size_t)first * H * W * 3, (size_t)Bl * H * W, tokens);
    } else {
      for (int b = 0; b < Bl; b++)
        memcpy(tokens + (size_t)b * T, tr.tokens + rows[first + b] * T, sizeof(uint16_t) * T);
    }
    if (bert) model_bert_mask(&st.data.mask_rng, mask, B, T, m->cfg.mask_prob);
    model_zero_grad(m);
    model_batch mb = {.tokens = tokens, .mask = bert ? mask + (size_t)first * T : NULL, .labels = labels + first,
                      .B = Bl, .T = T, .grad = true, .head = !o->clf_only};
    if (model_forward(m, &mb) || model_backward(m)) { igpt_err_prefix("step %lld", (long long)s + 1); goto out; }
    double losses[3] = {m->loss, m->loss_gen, m->loss_clf};  // the mean over ranks, as the gradients
    if (dp_average_grads(m) || dp_average(losses, 3)) goto out;
    loss = losses[0];  // the parts now: the evaluation forwards below overwrite the model's loss fields
    if (!isfinite(loss)) {
      igpt_err("the loss is %g at step %lld; lower --lr (the last checkpoint in %s is intact)", loss,
               (long long)s + 1, o->out_dir);
      goto out;
    }
    optim_clip(&opt, o->clip);
    fault_point("step", s);
    double lr = lr_at(&sch, s);
    optim_step(&opt, s + 1, lr, o->weight_decay, &ao);
    bool eval = (s + 1) % o->eval_every == 0 || s + 1 == o->steps;
    if (eval) {
      double acc = accuracy(m, &va, o->eval_batch, o->seed, &sh, NULL);
      json_array_append_new(pr.evals, json_pack("{s:I,s:f,s:f}", "step", (json_int_t)(s + 1), "val_acc",
                                                acc, "loss", loss));
      if (acc > pr.best_val) {
        pr.best_val = acc;
        pr.best_step = s + 1;
        pr.since_best = 0;
        pr.test_acc = test_accuracy(m, &te, o->eval_batch, o->seed, &sh, &pr.test_correct);
        if (lead && model_save(m, best_path)) goto out;
      } else if (++pr.since_best >= o->patience) {
        pr.stopped_early = true;
      }
      if (lead && o->progress) {
        char parts[64];
        if (o->clf_only) snprintf(parts, sizeof parts, "L_clf only");
        else snprintf(parts, sizeof parts, "gen %.4f, clf %.4f", losses[1], losses[2]);
        log_info("finetune: step %lld/%lld  loss %.4f (%s)  val %.4f  best %.4f at %lld%s", (long long)s + 1,
                 (long long)o->steps, loss, parts, acc, pr.best_val, (long long)pr.best_step,
                 pr.stopped_early ? "  (early stop)" : "");
      }
      st.step = s + 1;
      json_decref(st.options);
      st.options = json_pack("{s:O,s:o}", "fixed", fixed, "progress", progress_json(&pr));
      // every rank must hold rank 0's weights; the checkpoint exists once all ranks pass it
      optim_sync(&opt);
      if (dp_check_identical(m, &st, st.step) || (lead && checkpoint_save(o->out_dir, m, &st))) goto out;
      if (sh.size > 1 && comm_barrier()) goto out;
      fault_point("checkpoint", s + 1);
    } else if (lead && o->progress && now_seconds() - last_print > (tty ? 0.5 : 10)) {
      double rate = (s + 1 - start) / (now_seconds() - t_start);
      fprintf(stderr, "%sfinetune: step %lld/%lld  loss %.4f  %.2f steps/s%s", tty ? "\r" : "",
              (long long)s + 1, (long long)o->steps, loss, rate, tty ? "" : "\n");
      last_print = now_seconds();
    }
  }
  if (result)
    *result = json_pack("{s:I,s:f,s:f,s:s?,s:I,s:I,s:b,s:O,s:i,s:s,s:f,s:i}", "best_step", (json_int_t)pr.best_step,
                        "best_val_acc", pr.best_val, "test_acc", pr.test_acc, "test_correct", pr.test_correct,
                        "n_test", (json_int_t)te.N, "steps_done",
                        (json_int_t)st.step, "stopped_early", pr.stopped_early, "evaluations", pr.evals,
                        "classes", K, "best_model", best_path, "seconds", now_seconds() - t_start,
                        "world_size", sh.size);
  rc = 0;
out:
  free(rows);
  free(tokens); free(mask); free(labels); free(aug); free(centres); free(best_path);
  if (q) palette_quantizer_free(q);
  json_decref(fixed);
  json_decref(pr.evals);
  free(pr.test_correct);
  optim_release(&opt);
  train_state_free(&st);
  model_free(m);
  st_close(&tr.f); st_close(&va.f); st_close(&te.f); st_close(&imf);
  return rc;
}
