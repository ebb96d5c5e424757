// train: the pretraining loop. See train.h.
#include "engine/train.h"
#include "engine/adamw.h"
#include "engine/optim.h"
#include "engine/batcher.h"
#include "engine/checkpoint.h"
#include "engine/comm.h"
#include "engine/data_parallel.h"
#include "engine/schedule.h"
#include "base/fault.h"
#include "base/util.h"
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void train_opts_default(train_opts *o) {
  *o = (train_opts){.steps = 1000, .batch = 8, .micro_batch = 0, .lr = 1e-3, .warmup = -1,
                    .clip = 0, .weight_decay = 0, .seed = 0, .checkpoint_every = 500,
                    .log_every = 10, .keep_every = 0};
}

int train_opts_from_json(const json_t *section, const char *where, train_opts *o) {
  if (!json_is_object(section)) return igpt_err("%s: \"train\" must be an object", where);
  o->config = where;
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)section, key, v) {
    int64_t *i64 = NULL;
    int *i32 = NULL;
    double *dbl = NULL;
    unsigned bit = 0;
    if (!strcmp(key, "steps")) i64 = &o->steps, bit = TRAIN_OPT_STEPS;
    else if (!strcmp(key, "warmup")) i64 = &o->warmup, bit = TRAIN_OPT_WARMUP;
    else if (!strcmp(key, "checkpoint_every")) i64 = &o->checkpoint_every, bit = TRAIN_OPT_CKPT;
    else if (!strcmp(key, "log_every")) i64 = &o->log_every, bit = TRAIN_OPT_LOGEV;
    else if (!strcmp(key, "keep_every")) i64 = &o->keep_every;
    else if (!strcmp(key, "batch")) i32 = &o->batch, bit = TRAIN_OPT_BATCH;
    else if (!strcmp(key, "micro_batch")) i32 = &o->micro_batch, bit = TRAIN_OPT_MICRO;
    else if (!strcmp(key, "lr")) dbl = &o->lr, bit = TRAIN_OPT_LR;
    else if (!strcmp(key, "clip")) dbl = &o->clip, bit = TRAIN_OPT_CLIP;
    else if (!strcmp(key, "weight_decay")) dbl = &o->weight_decay, bit = TRAIN_OPT_WD;
    else if (!strcmp(key, "seed")) {
      if (!json_is_integer(v) || json_integer_value(v) < 0)
        return igpt_err("%s: train.seed must be a non-negative integer", where);
      o->seed = (uint64_t)json_integer_value(v);
      continue;
    } else
      return igpt_err("%s: unknown key train.%s (known: steps, batch, micro_batch, lr, warmup, "
                      "clip, weight_decay, seed, checkpoint_every, log_every, keep_every)", where, key);
    o->from_config |= bit;
    if (dbl) {
      if (!json_is_number(v)) return igpt_err("%s: train.%s must be a number", where, key);
      *dbl = json_number_value(v);
    } else {
      if (!json_is_integer(v)) return igpt_err("%s: train.%s must be an integer", where, key);
      json_int_t x = json_integer_value(v);
      if (i32) {
        if (x < INT32_MIN || x > INT32_MAX) return igpt_err("%s: train.%s out of range", where, key);
        *i32 = (int)x;
      } else {
        *i64 = x;
      }
    }
  }
  return 0;
}

// An option as the user gave it: "--batch", or "train.batch (CONFIG)" when the config set it.
typedef struct { char text[600]; } opt_name;
static opt_name name_of(const train_opts *o, unsigned bit, int *blame) {
  static const struct { unsigned bit; const char *flag, *field; } names[] = {
      {TRAIN_OPT_STEPS, "--steps", "steps"}, {TRAIN_OPT_BATCH, "--batch", "batch"},
      {TRAIN_OPT_MICRO, "--micro-batch", "micro_batch"}, {TRAIN_OPT_LR, "--lr", "lr"},
      {TRAIN_OPT_WARMUP, "--warmup", "warmup"}, {TRAIN_OPT_CLIP, "--clip", "clip"},
      {TRAIN_OPT_WD, "--weight-decay", "weight_decay"}, {TRAIN_OPT_CKPT, "--checkpoint-every", "checkpoint_every"},
      {TRAIN_OPT_LOGEV, "--log-every", "log_every"}};
  opt_name n = {""};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (names[i].bit != bit) continue;
    if (o->from_config & bit) {
      snprintf(n.text, sizeof n.text, "train.%s (%s)", names[i].field, o->config ? o->config : "the config");
      *blame = -2;
    } else {
      snprintf(n.text, sizeof n.text, "%s", names[i].flag);
    }
  }
  return n;
}

int train_opts_finish(train_opts *o) {
  int rc = -1;  // -2 once a message names a config field
#define N(bit) name_of(o, bit, &rc).text
  if (o->steps < 0) return igpt_err("%s must be at least 0, got %lld", N(TRAIN_OPT_STEPS), (long long)o->steps), rc;
  if (o->batch < 1) return igpt_err("%s must be at least 1, got %d", N(TRAIN_OPT_BATCH), o->batch), rc;
  if (o->micro_batch == 0) o->micro_batch = o->batch;
  if (o->micro_batch < 1 || o->batch % o->micro_batch)
    return igpt_err("%s %d must divide %s %d", N(TRAIN_OPT_MICRO), o->micro_batch, N(TRAIN_OPT_BATCH), o->batch), rc;
  if (o->warmup < 0) o->warmup = o->steps / 20;
  if (o->warmup > o->steps)
    return igpt_err("%s %lld exceeds %s %lld", N(TRAIN_OPT_WARMUP), (long long)o->warmup, N(TRAIN_OPT_STEPS),
                    (long long)o->steps), rc;
  if (!(o->lr > 0 && o->lr < 10)) return igpt_err("%s must be in (0, 10), got %g", N(TRAIN_OPT_LR), o->lr), rc;
  if (!(o->clip >= 0)) return igpt_err("%s must be >= 0 (0: off), got %g", N(TRAIN_OPT_CLIP), o->clip), rc;
  if (!(o->weight_decay >= 0 && o->weight_decay < 1))
    return igpt_err("%s must be in [0, 1), got %g", N(TRAIN_OPT_WD), o->weight_decay), rc;
  if (o->checkpoint_every < 0) return igpt_err("%s must be >= 0", N(TRAIN_OPT_CKPT)), rc;
  if (o->log_every < 1) return igpt_err("%s must be >= 1", N(TRAIN_OPT_LOGEV)), rc;
  if (o->keep_every < 0) return igpt_err("--keep-every must be >= 0 (0: off)"), rc;
#undef N
  return 0;
}

// The options a resumed run must share with the run it continues: everything that changes the
// numbers. checkpoint_every and log_every may change.
static json_t *fixed_options(const model_config *cfg, const train_opts *o, const char *tokens_sha) {
  char *c = model_config_dump(cfg);
  json_t *config = json_loads(c, JSON_REJECT_DUPLICATES, NULL);
  free(c);
  return json_pack("{s:o, s:s, s:s, s:I, s:i, s:i, s:f, s:I, s:f, s:f, s:I}",
                   "config", config, "objective", cfg->objective == OBJ_BERT ? "bert" : "ar",
                   "tokens_sha256", tokens_sha, "steps", (json_int_t)o->steps,
                   "batch", o->batch, "micro_batch", o->micro_batch, "lr", o->lr,
                   "warmup", (json_int_t)o->warmup, "clip", o->clip,
                   "weight_decay", o->weight_decay, "seed", (json_int_t)o->seed);
}

// The flag a fixed option comes from, for the refusal message.
static const char *option_flag(const char *key) {
  static const struct { const char *key, *flag; } map[] = {
      {"objective", "--objective"}, {"config", "--config (the model config)"},
      {"tokens_sha256", "--tokens (the file's contents)"}, {"steps", "--steps"},
      {"batch", "--batch"}, {"micro_batch", "--micro-batch/--accum"}, {"lr", "--lr"},
      {"warmup", "--warmup"}, {"clip", "--clip"}, {"weight_decay", "--weight-decay"},
      {"seed", "--seed"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (!strcmp(map[i].key, key)) return map[i].flag;
  return key;
}

static int check_resume_options(const json_t *saved, const json_t *now, const char *dir) {
  // objective first, so a changed objective is named as such rather than as a config change.
  static const char *order[] = {"objective", "config", "tokens_sha256", "steps", "batch",
                                "micro_batch", "lr", "warmup", "clip", "weight_decay", "seed"};
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
    json_t *a = json_object_get(saved, order[i]), *b = json_object_get(now, order[i]);
    if (a && b && json_equal(a, b)) continue;
    const size_t fl = JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_REAL_PRECISION(12);
    char *sa = a ? json_dumps(a, fl) : xstrdup("(absent)");
    char *sb = json_dumps(b, fl);
    igpt_err("cannot resume %s: %s differs from the checkpoint's (now %s, checkpoint %s); resume "
             "with the original value or train into a new --out directory", dir,
             option_flag(order[i]), sb, sa);
    free(sa);
    free(sb);
    return -1;
  }
  return 0;
}

// SIGINT / SIGTERM (Ctrl-C, a scheduler's preemption) finish the current step, write a
// checkpoint and stop; a second signal kills at once (SA_RESETHAND).
static volatile sig_atomic_t stop_signal;
static void on_stop(int sig) { stop_signal = sig; }

// Keeps the log lines of steps <= upto (a resumed run rewrites the steps after its checkpoint).
static FILE *open_log(const char *dir, int64_t upto) {
  char *path = xasprintf("%s/log.jsonl", dir);
  FILE *f = NULL;
  if (upto > 0 && path_exists(path)) {
    uint8_t *data;
    size_t len;
    if (file_read_all(path, &data, &len) < 0) goto out;
    size_t keep = 0;
    for (size_t i = 0; i < len;) {
      size_t e = i;
      while (e < len && data[e] != '\n') e++;
      if (e == len) break;  // a torn last line
      long long s = -1;
      if (sscanf((char *)data + i, "{\"step\":%lld", &s) != 1 || s > upto) break;
      keep = i = e + 1;
    }
    int rc = file_write_atomic(path, data, keep);
    free(data);
    if (rc < 0) goto out;
  }
  f = fopen(path, upto > 0 ? "a" : "w");
  if (!f) igpt_err("cannot open %s for writing", path);
out:
  free(path);
  return f;
}

// CPU seconds of the process, all threads: a step's cost that a busy machine does not inflate
// as much as its wall time (benchmarks report both).
static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void fmt_duration(char *buf, size_t n, double s) {
  if (s < 60) snprintf(buf, n, "%.0fs", s);
  else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
  else snprintf(buf, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

// --keep-every: the checkpoint just written stays as DIR/model-step<N>.safetensors (a hard link: the
// next checkpoint replaces model.safetensors by a rename, so the kept name still holds these
// weights, which record their step in __metadata__).
static int keep_checkpoint(const char *dir, int64_t step) {
  char *src = xasprintf("%s/model.safetensors", dir), *dst = xasprintf("%s/model-step%06lld.safetensors", dir, (long long)step);
  unlink(dst);  // a resumed run rewrites the steps after its checkpoint
  int rc = link(src, dst) < 0 ? igpt_err("cannot keep %s as %s: %s", src, dst, strerror(errno)) : 0;
  free(src);
  free(dst);
  return rc;
}

int train_run(const model_config *cfg, const train_opts *o, const char *tokens_path,
              const char *out_dir, bool resume, json_t **result) {
  batcher data;
  model *m = NULL;
  train_state st = {0};
  optim opt = {0};
  FILE *log = NULL;
  uint16_t *tokens = NULL;
  uint8_t *mask = NULL;
  double *step_ms = NULL, *step_cpu_ms = NULL;
  json_t *fixed = NULL;
  int rc = -1;
  char tokens_sha[65];
  bool have_data = false, old_handlers = false;
  struct sigaction old_int, old_term;

  // Data parallel: every rank runs this loop on its shard of each global batch (data_parallel.h).
  dp_shard sh;
  if (dp_shard_of(o->batch, "--batch", &sh) < 0) return -1;
  const bool lead = sh.rank == 0;  // writes the checkpoints, the log and the progress
  // micro-batches are per rank: at most the rank's rows (the same rows as one process reads)
  const int B = o->micro_batch < sh.rows ? o->micro_batch : sh.rows, accum = sh.rows / B;
  if (sh.rows % B)
    return igpt_err("--micro-batch %d must divide the %d rows each of the %d ranks reads of "
                    "--batch %d", B, sh.rows, sh.size, o->batch);
  if (batcher_open(&data, tokens_path, cfg->n_ctx, cfg->n_vocab, o->seed) < 0) return -1;
  have_data = true;
  if (sha256_file(tokens_path, tokens_sha) < 0) goto out;
  fixed = fixed_options(cfg, o, tokens_sha);
  if (mkdir_p(out_dir) < 0) goto out;

  if (checkpoint_exists(out_dir)) {
    if (!resume) {
      igpt_err("%s already holds a training checkpoint; pass --resume to continue it or choose "
               "another --out", out_dir);
      goto out;
    }
    if (!(m = checkpoint_load(out_dir, &st))) goto out;
    if (check_resume_options(st.options, fixed, out_dir) < 0) goto out;
    if (batcher_restore(&data, &st.data) < 0) goto out;
    if (st.threads != omp_get_max_threads())
      log_warn("the checkpoint was written with %d threads, this run has %d: it continues "
               "correctly but not bit-identically to an uninterrupted run", st.threads,
               omp_get_max_threads());
    log_info("resuming %s at step %lld of %lld", out_dir, (long long)st.step, (long long)o->steps);
  } else {
    char *weights = xasprintf("%s/model.safetensors", out_dir);
    bool stray = path_exists(weights);
    free(weights);
    if (stray && !resume) {
      // Not ours to overwrite unasked (an imported model, another verb's output).
      igpt_err("%s already holds model.safetensors but no training state; choose another --out "
               "(or pass --resume to start this run there, replacing it)", out_dir);
      goto out;
    }
    if (resume) log_info("no checkpoint in %s yet: starting at step 0", out_dir);
    if (!(m = model_new(cfg))) goto out;
    model_init(m, o->seed);
    st.m = xcalloc(m->n_params, sizeof(float));
    st.v = xcalloc(m->n_params, sizeof(float));
    st.n = m->n_params;
  }
  json_decref(st.options);
  st.options = json_incref(fixed);
  st.threads = omp_get_max_threads();
  const int64_t start_step = st.step;
  if (start_step >= o->steps) {
    log_info("%s is already trained to step %lld", out_dir, (long long)st.step);
  }
  if (optim_attach(&opt, m, st.m, st.v) < 0) goto out;
  if (lead && start_step == 0 && !checkpoint_exists(out_dir) &&
      (o->steps == 0 || o->keep_every > 0)) {  // step 0: the initialised model, kept or asked for
    if (checkpoint_save(out_dir, m, &st) < 0) goto out;
    if (o->keep_every > 0 && keep_checkpoint(out_dir, 0) < 0) goto out;
  }
  if (lead && !(log = open_log(out_dir, start_step))) goto out;

  const int T = cfg->n_ctx;
  const bool bert = cfg->objective == OBJ_BERT;
  tokens = xmalloc((size_t)B * T * sizeof *tokens);
  mask = xmalloc((size_t)B * T);
  step_ms = xmalloc((size_t)(o->steps - start_step + 1) * sizeof *step_ms);
  step_cpu_ms = xmalloc((size_t)(o->steps - start_step + 1) * sizeof *step_cpu_ms);
  adamw_opts ao = adamw_defaults();
  ao.weight_decay = o->weight_decay;
  lr_schedule sch = {.lr = o->lr, .warmup = o->warmup, .total = o->steps};
  const bool tty = isatty(2);
  struct sigaction sa = {.sa_handler = on_stop, .sa_flags = SA_RESETHAND};
  sigemptyset(&sa.sa_mask);
  stop_signal = 0;
  sigaction(SIGINT, &sa, &old_int);
  if (old_int.sa_handler == SIG_IGN) sigaction(SIGINT, &old_int, NULL);  // nohup / background: keep
  sigaction(SIGTERM, &sa, &old_term);
  old_handlers = true;
  // A parent may hand down these signals blocked (a test harness does): unblock them.
  sigset_t stops;
  sigemptyset(&stops);
  sigaddset(&stops, SIGINT);
  sigaddset(&stops, SIGTERM);
  sigprocmask(SIG_UNBLOCK, &stops, NULL);
  const double t_start = now_seconds();
  double t_first = 0;  // elapsed at the end of this run's first step
  char ranks[32] = "";
  if (sh.size > 1) snprintf(ranks, sizeof ranks, "  %d ranks", sh.size);
  double last_print = 0, loss = NAN;
  int64_t n_timed = 0;

  for (int64_t s = start_step; s < o->steps; s++) {
    double t0 = now_seconds(), c0 = cpu_seconds();
    model_zero_grad(m);
    double loss_sum = 0;
    // this rank's rows of the global batch; the streams pass over the other ranks' rows
    batcher_skip(&data, sh.first);
    if (bert) batcher_mask_skip(&data, (size_t)sh.first * T);
    for (int k = 0; k < accum; k++) {
      batcher_next(&data, tokens, B);
      if (bert) batcher_mask(&data, mask, (size_t)B * T, cfg->mask_prob);
      model_batch mb = {.tokens = tokens, .mask = bert ? mask : NULL, .B = B, .T = T,
                        .grad = true, .head = true};
      if (model_forward(m, &mb) < 0 || model_backward(m) < 0) {
        igpt_err_prefix("step %lld", (long long)s + 1);
        goto out;
      }
      loss_sum += m->loss;
    }
    const int64_t after = o->batch - sh.first - sh.rows;
    batcher_skip(&data, after);
    if (bert) batcher_mask_skip(&data, (size_t)after * T);
    if (accum > 1) optim_scale(&opt, 1.0f / (float)accum);
    // the mean over ranks of the loss and the gradients; a stop signal on any rank stops all
    if (fault_armed("term", s + 1) && sh.rank == sh.size - 1) raise(SIGTERM);
    double agree[2] = {loss_sum / accum, stop_signal ? 1.0 : 0.0};
    if (dp_average_grads(m) < 0 || dp_average(agree, 2) < 0) goto out;
    loss = agree[0];
    const bool stop = agree[1] > 0;  // decided here, alike on every rank (a later signal: next step)
    const int stop_sig = stop_signal ? stop_signal : SIGTERM;
    if (!isfinite(loss)) {
      igpt_err("the loss is %g at step %lld; lower --lr or set --clip (the last checkpoint in %s "
               "is intact)", loss, (long long)s + 1, out_dir);
      goto out;
    }
    double gnorm = optim_clip(&opt, o->clip);
    fault_point("step", s);
    double lr = lr_at(&sch, s);
    optim_step(&opt, s + 1, lr, o->weight_decay, &ao);
    double ms = (now_seconds() - t0) * 1e3;
    step_cpu_ms[n_timed] = (cpu_seconds() - c0) * 1e3;
    step_ms[n_timed++] = ms;
    st.step = s + 1;
    st.data = data.st;

    double elapsed = now_seconds() - t_start;
    double epoch = (double)data.st.epoch + (double)data.st.pos / (double)data.N;
    if (lead) {
      fprintf(log, "{\"step\":%lld,\"loss\":%.6f,\"lr\":%.6e,\"grad_norm\":%.6e,\"epoch\":%.4f,"
                   "\"step_ms\":%.3f,\"elapsed_s\":%.3f}\n", (long long)st.step, loss, lr, gnorm, epoch,
              ms, elapsed);
      fflush(log);
    }

    bool last = st.step == o->steps;
    // The first step allocates the activations and warms the caches: the ETA counts from its end
    // (the first line has none; the second step's line gives the first).
    if (s == start_step) t_first = elapsed;
    bool print = tty ? (elapsed - last_print >= 0.2 || last || s <= start_step + 1)
                     : (st.step % o->log_every == 0 || last || s <= start_step + 1);
    if (lead && print && igpt_log_level >= 1) {
      char eta[32] = "-";
      if (s > start_step)
        fmt_duration(eta, sizeof eta, (elapsed - t_first) / (double)(s - start_step) * (double)(o->steps - st.step));
      // tokens/s over all ranks: the global batch per step
      fprintf(stderr, "%sstep %lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  %.1f ms/step%s  ETA %s%s",
              tty ? "\r" : "", (long long)st.step, (long long)o->steps, loss, lr,
              (double)o->batch * T / (ms / 1e3), ms, ranks, eta, tty ? "\033[K" : "\n");
      if (tty && last) fputc('\n', stderr);
      last_print = elapsed;
    }
    bool keep = o->keep_every > 0 && st.step % o->keep_every == 0;
    if (last || stop || keep || (o->checkpoint_every > 0 && st.step % o->checkpoint_every == 0)) {
      // every rank must hold rank 0's weights; the checkpoint exists once all ranks pass it
      optim_sync(&opt);
      if (fault_armed("diverge", st.step) && sh.rank == sh.size - 1) m->params[0] += 1e-3f;
      if (dp_check_identical(m, &st, st.step) < 0) goto out;
      if (lead && checkpoint_save(out_dir, m, &st) < 0) goto out;
      if (lead && keep && keep_checkpoint(out_dir, st.step) < 0) goto out;
      if (sh.size > 1 && comm_barrier() < 0) goto out;
      fault_point("checkpoint", st.step);
    }
    if (stop && !last) {
      if (tty) fputc('\n', stderr);
      igpt_err("stopped by %s after step %lld of %lld; the checkpoint in %s is written, continue "
               "with --resume", strsignal(stop_sig), (long long)st.step, (long long)o->steps,
               out_dir);
      goto out;
    }
  }

  if (result) {
    // The first step of a process allocates activations and warms caches: leave it out.
    int64_t skip = n_timed > 1 ? 1 : 0, nt = n_timed - skip;
    double med = NAN, med_cpu = NAN;
    if (nt > 0) {
      qsort(step_ms + skip, (size_t)nt, sizeof *step_ms, cmp_double);
      qsort(step_cpu_ms + skip, (size_t)nt, sizeof *step_cpu_ms, cmp_double);
      med = step_ms[skip + nt / 2];
      med_cpu = step_cpu_ms[skip + nt / 2];
    }
    *result = json_pack("{s:s, s:I, s:I, s:f, s:f, s:f, s:f, s:i, s:i}", "out", out_dir,
                        "step", (json_int_t)st.step, "resumed_from", (json_int_t)start_step,
                        "loss", isfinite(loss) ? loss : -1.0,
                        "median_step_ms", isfinite(med) ? med : -1.0,
                        "median_step_cpu_ms", isfinite(med_cpu) ? med_cpu : -1.0,
                        "tokens_per_s", isfinite(med) ? o->batch * (double)T / (med / 1e3) : -1.0,
                        "threads", omp_get_max_threads(), "world_size", sh.size);
  }
  rc = 0;
out:
  if (old_handlers) {
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
  }
  if (log) fclose(log);
  free(tokens);
  free(mask);
  free(step_ms);
  free(step_cpu_ms);
  json_decref(fixed);
  optim_release(&opt);
  train_state_free(&st);
  if (m) model_free(m);
  if (have_data) batcher_close(&data);
  return rc;
}
