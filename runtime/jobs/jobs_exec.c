// jobs_exec: the local executor. Runs a graph's jobs as processes `igpt VERB ...` (argv from
// suite/commands.json), independent ones in parallel within CPU and GPU slots; keeps each job's
// stdout.log, stderr.log and events.jsonl in its directory; retries transient failures with
// backoff; shows a live view on a terminal (plain lines otherwise). See jobs.h for the cache.
#include "jobs/jobs.h"
#include "base/version.h"
#include "base/util.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { interrupted = sig; }

static json_t *verb_def(const graph_t *g, const job_t *j) { return json_object_get(g->suite->commands, j->verb); }

// ---- argv templates -------------------------------------------------------------------------

// A number as the shortest text that reads back to the same double.
static char *number_text(json_t *v) {
  if (json_is_integer(v)) return xasprintf("%lld", (long long)json_integer_value(v));
  double x = json_real_value(v);
  for (int prec = 6; prec <= 17; prec++) {
    char *s = xasprintf("%.*g", prec, x);
    if (strtod(s, NULL) == x) return s;
    free(s);
  }
  return xasprintf("%.17g", x);
}

static char *value_text(json_t *v) {
  if (json_is_string(v)) return xstrdup(json_string_value(v));
  if (json_is_number(v)) return number_text(v);
  if (json_is_boolean(v)) return xstrdup(json_is_true(v) ? "1" : "0");
  return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
}

typedef struct { const runner_t *r; const graph_t *g; const job_t *j; const char *out; bool resume, relative; } tctx;

// Fills {out} {in:NAME} {p:NAME} {json:NAME} {suite} {igpt} {cache} {key} {device} in t. NULL on error.
// {device}: the engine verbs' --device: cuda for a job holding one of the local GPUs, cpu for a
// local job without, auto under Slurm (the node decides).
static char *subst(const tctx *c, const char *t) {
  size_t cap = strlen(t) + 256, n = 0;
  char *s = xmalloc(cap);
  while (*t) {
    const char *close = *t == '{' ? strchr(t, '}') : NULL;
    char *val = NULL;
    if (close) {
      char name[256];
      size_t len = (size_t)(close - t - 1);
      if (len >= sizeof name) len = sizeof name - 1;
      memcpy(name, t + 1, len);
      name[len] = 0;
      if (!strcmp(name, "out")) val = xstrdup(c->out);
      else if (!strcmp(name, "suite")) val = xstrdup(c->g->suite->dir);
      else if (!strcmp(name, "igpt")) val = xstrdup(c->r->igpt);
      else if (!strcmp(name, "cache")) val = xstrdup(c->r->dir);
      else if (!strcmp(name, "key")) val = xstrdup(c->j->key);
      else if (!strcmp(name, "device")) val = xstrdup(c->r->slurm ? "auto" : c->j->gpu >= 0 ? "cuda" : "cpu");
      else if (!strncmp(name, "in:", 3)) {
        for (int i = 0; i < c->j->n_inputs; i++)
          if (!strcmp(c->j->input_names[i], name + 3))
            val = c->relative ? xasprintf("../%s", c->j->inputs[i]->key) : cache_job_dir(c->r, c->j->inputs[i]);
        if (!val) { igpt_err("job %s: template names input \"%s\", which it does not have", c->j->verb, name + 3); free(s); return NULL; }
      } else if (!strncmp(name, "p:", 2) || !strncmp(name, "json:", 5)) {
        const char *pn = strchr(name, ':') + 1;
        json_t *v = json_object_get(c->j->params, pn);
        if (!v) { igpt_err("job %s: template names parameter \"%s\", which it does not have", c->j->verb, pn); free(s); return NULL; }
        if (name[0] == 'p') val = value_text(v);
        else {
          val = xasprintf("%s/%s.json", c->out, pn);
          if (json_dump_file(v, val, JSON_INDENT(1) | JSON_SORT_KEYS) != 0) {
            igpt_err("%s: cannot write", val); free(val); free(s); return NULL;
          }
        }
      }
    }
    if (!val) {  // a literal character
      if (n + 2 > cap) s = xrealloc(s, cap *= 2);
      s[n++] = *t++;
      continue;
    }
    size_t vl = strlen(val);
    while (n + vl + 1 > cap) s = xrealloc(s, cap *= 2);
    memcpy(s + n, val, vl);
    n += vl;
    free(val);
    t = close + 1;
  }
  s[n] = 0;
  return s;
}

static bool cond_true(const tctx *c, const char *cond) {
  if (!strcmp(cond, "resume")) return c->resume;
  if (!strncmp(cond, "p:", 2)) {
    json_t *v = json_object_get(c->j->params, cond + 2);
    return v && !json_is_false(v) && !json_is_null(v);
  }
  if (!strncmp(cond, "!p:", 3)) return !json_object_get(c->j->params, cond + 3);
  if (!strncmp(cond, "in:", 3))
    for (int i = 0; i < c->j->n_inputs; i++)
      if (!strcmp(c->j->input_names[i], cond + 3)) return true;
  return false;
}

static int append_args(const tctx *c, json_t *out, json_t *tmpl) {
  size_t i; json_t *a;
  json_array_foreach(tmpl, i, a) {
    if (json_is_object(a)) {
      if (cond_true(c, json_string_value(json_object_get(a, "if"))) &&
          append_args(c, out, json_object_get(a, "args")) != 0)
        return -1;
      continue;
    }
    char *s = subst(c, json_string_value(a));
    if (!s) return -1;
    // The first word is an igpt verb unless it is a path or a placeholder.
    if (json_array_size(out) == 0 && i == 0 && !strchr(s, '/') && json_string_value(a)[0] != '{')
      json_array_append_new(out, json_string(c->r->igpt));
    json_array_append_new(out, json_string(s));
    free(s);
  }
  return 0;
}

json_t *job_argv(const runner_t *r, const graph_t *g, const job_t *j, const char *out, bool resume) {
  tctx c = {r, g, j, out, resume, false};
  json_t *def = verb_def(g, j), *res = json_pack("{s:[], s:{}, s:{}}", "run", "env", "links");
  size_t i; json_t *cmd;
  json_array_foreach(json_object_get(def, "run"), i, cmd) {
    json_t *argv = json_array();
    if (append_args(&c, argv, cmd) != 0) { json_decref(argv); json_decref(res); return NULL; }
    json_array_append_new(json_object_get(res, "run"), argv);
  }
  const char *k; json_t *v;
  json_object_foreach(json_object_get(def, "env"), k, v) {
    char *s = json_is_string(v) ? subst(&c, json_string_value(v)) : NULL;
    if (!s) { json_decref(res); return NULL; }
    json_object_set_new(json_object_get(res, "env"), k, json_string(s));
    free(s);
  }
  c.relative = true;
  json_object_foreach(json_object_get(def, "links"), k, v) {
    char *s = json_is_string(v) ? subst(&c, json_string_value(v)) : NULL;
    if (!s) { json_decref(res); return NULL; }
    json_object_set_new(json_object_get(res, "links"), k, json_string(s));
    free(s);
  }
  return res;
}

// ---- the run state, for `igpt status` and people ------------------------------------------------

typedef struct {
  runner_t *r;
  graph_t *g;
  char *state_path, *events_path;
  double t0;
  int cpu_busy, gpu_busy;
  bool *gpu_used;
  bool tty, stopping;
  int view_lines;
  double last_plain, last_draw;
} run_t;

static const char *state_name(const job_t *j) {
  switch (j->state) {
    case JOB_WAITING: return j->retry_at > 0 ? "retrying" : j->waiting_lock ? "locked" : "waiting";
    case JOB_RUNNING: return "running";
    case JOB_DONE: return j->cached ? "cached" : "done";
    case JOB_FAILED: return "failed";
    default: return "blocked";
  }
}

static void write_state(run_t *x, const char *overall) {
  json_t *jobs = json_array();
  int counts[5] = {0};
  for (int i = 0; i < x->g->n; i++) {
    job_t *j = x->g->jobs[i];
    counts[j->state]++;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i}", "key", j->key, "verb", j->verb, "label", j->label,
                          "state", state_name(j), "attempt", j->attempt);
    if (j->finished > 0) json_object_set_new(o, "seconds", json_real(j->finished - j->started));
    else if (j->state == JOB_RUNNING) json_object_set_new(o, "seconds", json_real(now_seconds() - j->started));
    json_array_append_new(jobs, o);
  }
  json_t *s = json_pack("{s:s, s:s, s:s, s:i, s:f, s:{s:i, s:i, s:i, s:i, s:i}, s:o}", "table", x->g->table,
                        "scale", x->g->scale, "state", overall, "pid", (int)getpid(), "elapsed", now_seconds() - x->t0,
                        "counts", "waiting", counts[JOB_WAITING], "running", counts[JOB_RUNNING], "done",
                        counts[JOB_DONE], "failed", counts[JOB_FAILED], "blocked", counts[JOB_BLOCKED], "jobs", jobs);
  char *text = json_dumps(s, JSON_INDENT(1) | JSON_SORT_KEYS);
  json_decref(s);
  file_write_atomic(x->state_path, text, strlen(text));
  free(text);
}

// The last non-empty line of a job's stderr (its progress line), at most max chars.
static void last_line(const char *path, char *out, size_t max) {
  out[0] = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  char buf[4096];
  off_t size = lseek(fd, 0, SEEK_END);
  off_t from = size > (off_t)sizeof buf - 1 ? size - (off_t)sizeof buf + 1 : 0;
  ssize_t n = pread(fd, buf, sizeof buf - 1, from);
  close(fd);
  if (n <= 0) return;
  buf[n] = 0;
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) buf[--n] = 0;
  char *s = buf + n;
  while (s > buf && s[-1] != '\n' && s[-1] != '\r') s--;
  size_t k = strlen(s) < max - 1 ? strlen(s) : max - 1;
  memcpy(out, s, k);
  out[k] = 0;
  for (char *p = out; *p; p++) if ((unsigned char)*p < 32) *p = ' ';
}

static void fmt_secs(double s, char *out, size_t n) {
  if (s < 0 || !isfinite(s)) snprintf(out, n, "?");
  else if (s < 60) snprintf(out, n, "%.0fs", s);
  else if (s < 3600) snprintf(out, n, "%dm%02ds", (int)s / 60, (int)s % 60);
  else snprintf(out, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

// The "ETA 1m20s" a verb's progress line ends with, in seconds (-1 when there is none).
static double progress_eta(run_t *x, job_t *j) {
  char *wd = cache_work_dir(x->r, j), *p = xasprintf("%s/stderr.log", wd), line[512];
  last_line(p, line, sizeof line);
  free(wd); free(p);
  char *e = strstr(line, "ETA ");
  if (!e) return -1;
  double total = 0, v;
  int n;
  for (e += 4; sscanf(e, "%lf%n", &v, &n) == 1; ) {
    e += n;
    char u = *e;
    total += u == 'h' ? 3600 * v : u == 'm' ? 60 * v : v;
    if (u == 'h' || u == 'm' || u == 's') e++;
    else break;
  }
  return total;
}

static double job_seconds(const job_t *j) {
  if (!j->cached) return j->finished - j->started;
  json_t *s = json_object_get(j->done, "seconds");  // a cached job: how long it took when built
  return json_is_number(s) ? json_number_value(s) : -1;
}

// ETA: each job left estimated by the mean duration of finished jobs of its verb (cached ones
// count with the time they took when built), a running job by what its progress line says when it
// says; spread over the slots. *partial: some job had no estimate (the figure is a lower bound).
static double eta(run_t *x, bool *partial) {
  double left = 0;
  *partial = false;
  for (int i = 0; i < x->g->n; i++) {
    job_t *j = x->g->jobs[i];
    if (j->state != JOB_WAITING && j->state != JOB_RUNNING) continue;
    if (json_object_get(verb_def(x->g, j), "builtin")) continue;  // the results: instant
    double said = j->state == JOB_RUNNING ? progress_eta(x, j) : -1;
    if (said >= 0) { left += said; continue; }
    double sum = 0;
    int n = 0;
    for (int k = 0; k < x->g->n; k++) {
      job_t *o = x->g->jobs[k];
      double t = o->state == JOB_DONE ? job_seconds(o) : -1;
      if (t >= 0 && !strcmp(o->verb, j->verb)) { sum += t; n++; }
    }
    if (!n) { *partial = true; continue; }
    double est = sum / n;
    left += j->state == JOB_RUNNING ? fmax(0, est - (now_seconds() - j->started)) : est;
  }
  int slots = x->r->jobs_cpu + x->r->n_gpus;
  return left / (slots > 0 ? slots : 1);
}

static void view(run_t *x, bool force) {
  if (x->r->quiet) return;
  int c[5] = {0};
  for (int i = 0; i < x->g->n; i++) c[x->g->jobs[i]->state]++;
  char e[40], el[32];
  bool partial;
  double left = eta(x, &partial);
  fmt_secs(partial && left < 1 ? -1 : left, e + 1, sizeof e - 1);
  e[0] = partial && left >= 1 ? '>' : ' ';  // a lower bound: some job left has no estimate yet
  fmt_secs(now_seconds() - x->t0, el, sizeof el);
  if (!x->tty) {
    if (!force && now_seconds() - x->last_plain < 30) return;
    x->last_plain = now_seconds();
    fprintf(stderr, "[%s %s] %d/%d done, %d running, %d waiting%s%s, elapsed %s, ETA%s\n", x->g->table, x->g->scale,
            c[JOB_DONE], x->g->n, c[JOB_RUNNING], c[JOB_WAITING], c[JOB_FAILED] ? ", failures" : "",
            c[JOB_BLOCKED] ? ", blocked jobs" : "", el, e);
    for (int i = 0; i < x->g->n && !force; i++) {
      job_t *j = x->g->jobs[i];
      if (j->state != JOB_RUNNING) continue;
      char *wd = cache_work_dir(x->r, j), *p = xasprintf("%s/stderr.log", wd), line[160];
      last_line(p, line, sizeof line);
      fprintf(stderr, "  %s: %s\n", j->label, line);
      free(wd); free(p);
    }
    return;
  }
  if (!force && now_seconds() - x->last_draw < 0.5) return;  // redraw twice a second at most
  x->last_draw = now_seconds();
  for (int i = 0; i < x->view_lines; i++) fputs("\033[1A\033[2K", stderr);
  x->view_lines = 0;
  fprintf(stderr, "\033[2K[%s %s] %d/%d done, %d running, %d waiting, %d failed, elapsed %s, ETA%s\n", x->g->table,
          x->g->scale, c[JOB_DONE], x->g->n, c[JOB_RUNNING], c[JOB_WAITING], c[JOB_FAILED], el, e);
  x->view_lines++;
  for (int i = 0; i < x->g->n; i++) {
    job_t *j = x->g->jobs[i];
    if (j->state != JOB_RUNNING) continue;
    char *wd = cache_work_dir(x->r, j), *p = xasprintf("%s/stderr.log", wd), line[100], t[32];
    last_line(p, line, sizeof line);
    fmt_secs(now_seconds() - j->started, t, sizeof t);
    fprintf(stderr, "\033[2K  %-40.40s %6s  %s\n", j->label, t, line);
    x->view_lines++;
    free(wd); free(p);
  }
}

// Prints a line above the live view (or plainly).
static void say(run_t *x, const char *fmt, ...) IGPT_PRINTF(2, 3);
static void say(run_t *x, const char *fmt, ...) {
  if (x->r->quiet) return;
  if (x->tty) {
    for (int i = 0; i < x->view_lines; i++) fputs("\033[1A\033[2K", stderr);
    x->view_lines = 0;
  }
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  if (x->tty) view(x, true);
}

// ---- launching and finishing jobs ---------------------------------------------------------------

static bool uses_gpu(run_t *x, job_t *j) {
  return x->r->n_gpus > 0 && !strcmp(json_string_value(json_object_get(verb_def(x->g, j), "resources")), "gpu");
}
static bool uses_cpu(run_t *x, job_t *j) {
  return !uses_gpu(x, j) && strcmp(json_string_value(json_object_get(verb_def(x->g, j), "resources")), "none");
}

static void release_slot(run_t *x, job_t *j) {
  if (uses_gpu(x, j)) {
    x->gpu_busy--;
    if (j->gpu >= 0) x->gpu_used[j->gpu] = false;
    j->gpu = -1;
  } else if (uses_cpu(x, j)) x->cpu_busy--;
}

static void block_dependents(run_t *x, job_t *failed) {
  for (int i = failed->index + 1; i < x->g->n; i++) {
    job_t *j = x->g->jobs[i];
    if (j->state != JOB_WAITING) continue;
    for (int k = 0; k < j->n_inputs; k++)
      if (j->inputs[k]->state == JOB_FAILED || j->inputs[k]->state == JOB_BLOCKED) { j->state = JOB_BLOCKED; break; }
  }
}

static char *job_events(run_t *x, job_t *j) {
  char *wd = cache_work_dir(x->r, j), *p = xasprintf("%s/events.jsonl", wd);
  free(wd);
  return p;
}

// Starts command j->cmd_index of j. 0 started (or finished, for a builtin), -1 on error.
static int start_command(run_t *x, job_t *j, int gpu) {
  char *wd = cache_work_dir(x->r, j);
  json_t *def = verb_def(x->g, j);
  // A resumable job is started with its resume arguments (its verb starts fresh when there is
  // nothing to resume), or only when its "resume_if" file exists for verbs that refuse that.
  const char *resume_if = json_string_value(json_object_get(def, "resume_if"));
  bool resume = json_is_true(json_object_get(def, "resumable"));
  if (resume && resume_if) {
    char *p = xasprintf("%s/%s", wd, resume_if);
    resume = path_exists(p);
    free(p);
  }
  json_t *cmd = job_argv(x->r, x->g, j, wd, resume);
  if (!cmd) { free(wd); return -1; }
  json_t *argv = json_array_get(json_object_get(cmd, "run"), (size_t)j->cmd_index);
  if (j->cmd_index == 0) {
    const char *k; json_t *v;
    json_object_foreach(json_object_get(cmd, "links"), k, v) {
      char *l = xasprintf("%s/%s", wd, k);
      unlink(l);
      if (symlink(json_string_value(v), l) != 0) log_warn("%s: cannot link: %s", l, strerror(errno));
      free(l);
    }
  }
  char *ev = job_events(x, j);
  if (x->r->slurm) {  // one batch script runs every command of the job
    bool gpu_verb = !strcmp(json_string_value(json_object_get(def, "resources")), "gpu");
    slurm_res res;
    if (slurm_resources(suite_scale(x->g->suite, x->g->scale), x->g->scale, j->verb, gpu_verb && x->r->gpu_scale,
                        &res)) {
      json_decref(cmd);
      free(ev); free(wd);
      return -1;
    }
    json_t *env = json_deep_copy(json_object_get(cmd, "env"));
    json_object_set_new(env, "OMP_NUM_THREADS", json_sprintf("%d", res.cpus));
    json_object_set_new(env, "IGPT_JOB_KEY", json_string(j->key));
    char *name = xasprintf("igpt-%s-%.12s", j->verb, j->key);
    j->slurm_state[0] = 0;
    long id = slurm_submit(wd, name, json_object_get(cmd, "run"), env, &res);
    free(name);
    json_decref(env);
    if (id > 0)
      cache_event(ev, "submit", json_pack("{s:i, s:I, s:O, s:b, s:i, s:i, s:i, s:s, s:s}", "attempt", j->attempt,
                                          "slurm_id", (json_int_t)id, "run", json_object_get(cmd, "run"), "resume",
                                          resume, "ranks", res.ntasks, "gpus_per_rank", res.gpus_per_task, "cpus",
                                          res.cpus, "mem", res.mem, "time", res.time));
    json_decref(cmd);
    free(ev); free(wd);
    if (id <= 0) return -1;
    j->slurm_id = id;
    j->polled = now_seconds();
    j->cmd_index = (int)json_array_size(json_object_get(def, "run")) - 1;
    return 0;
  }
  json_t *fields = json_pack("{s:i, s:i, s:O, s:b}", "attempt", j->attempt, "command", j->cmd_index, "argv", argv,
                             "resume", resume);
  if (gpu >= 0) json_object_set_new(fields, "gpu", json_string(x->r->gpus[gpu]));
  int n = (int)json_array_size(argv);
  char **av = xcalloc((size_t)n + 1, sizeof *av);
  for (int i = 0; i < n; i++) av[i] = xstrdup(json_string_value(json_array_get(argv, (size_t)i)));
  json_t *env = json_incref(json_object_get(cmd, "env"));
  json_decref(cmd);
  char *out = xasprintf("%s/stdout.log", wd), *err = xasprintf("%s/stderr.log", wd);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  int threads = (int)(ncpu / (x->r->jobs_cpu > 0 ? x->r->jobs_cpu : 1));
  pid_t parent = getpid();
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // the runner killed: the job dies too (and frees its lock)
    if (getppid() != parent) _exit(137);
    if (j->lock_fd >= 0) fcntl(j->lock_fd, F_SETFD, 0);  // the job holds its lock while it lives
    int fo = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644), fe = open(err, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int fi = open("/dev/null", O_RDONLY);
    if (fo < 0 || fe < 0 || fi < 0) _exit(126);
    dup2(fi, 0); dup2(fo, 1); dup2(fe, 2);
    char th[16];
    snprintf(th, sizeof th, "%d", threads < 1 ? 1 : threads);
    if (!getenv("OMP_NUM_THREADS") || x->r->jobs_cpu > 1) setenv("OMP_NUM_THREADS", th, 1);
    setenv("IGPT_JOB_KEY", j->key, 1);
    if (gpu >= 0) setenv("CUDA_VISIBLE_DEVICES", x->r->gpus[gpu], 1);
    else if (x->r->n_gpus > 0) setenv("CUDA_VISIBLE_DEVICES", "", 1);  // CPU jobs keep off the GPUs
    const char *k; json_t *v;
    json_object_foreach(env, k, v) setenv(k, json_string_value(v), 1);
    execv(av[0], av);
    fprintf(stderr, "igpt run: cannot execute %s: %s\n", av[0], strerror(errno));
    _exit(127);
  }
  json_decref(env);
  for (int i = 0; i < n; i++) free(av[i]);
  free(av); free(out); free(err); free(wd);
  if (pid < 0) { json_decref(fields); free(ev); return igpt_err("fork failed: %s", strerror(errno)); }
  json_object_set_new(fields, "pid", json_integer(pid));
  cache_event(ev, "start", fields);
  free(ev);
  j->pid = pid;
  return 0;
}

static int finish_job(run_t *x, job_t *j);

// Takes a ready job: the lock, a fresh (or kept, when resumable) work directory, the first command.
static void launch(run_t *x, job_t *j) {
  char *wd = cache_work_dir(x->r, j);
  json_t *def = verb_def(x->g, j);
  bool resumable = json_is_true(json_object_get(def, "resumable"));
  long adopt = x->r->slurm && j->attempt == 0 ? slurm_adopt(wd) : 0;
  if (adopt > 0) {  // submitted by a run that died: still queued or running, so follow it
    j->slurm_id = adopt;
    j->polled = 0;
    j->attempt = 1;
    j->cmd_index = (int)json_array_size(json_object_get(def, "run")) - 1;
    j->started = now_seconds();
    j->finished = 0;
    j->state = JOB_RUNNING;
    if (uses_cpu(x, j)) x->cpu_busy++;
    else if (uses_gpu(x, j)) x->gpu_busy++;
    say(x, "adopt  %.12s %s: Slurm job %ld from an earlier run", j->key, j->label, adopt);
    free(wd);
    return;
  }
  if (j->attempt == 0 || !resumable) {
    if (!resumable || !path_exists(wd)) rm_rf(wd);
    mkdir_p(wd);
  }
  // A kept work directory may hold what a killed run was writing (a checkpoint's PATH.tmp.PID):
  // not an output, and as large as one.
  int stale = resumable ? atomic_sweep_dir(wd) : 0;
  if (stale) say(x, "clean  %.12s %s: removed %d partial file%s a killed run left", j->key, j->label, stale,
                 stale > 1 ? "s" : "");
  char *spec = xasprintf("%s/job.json", wd);
  json_t *sj = json_loads(j->spec, JSON_REJECT_DUPLICATES, NULL);
  json_dump_file(sj, spec, JSON_INDENT(1) | JSON_SORT_KEYS);
  json_decref(sj);
  free(spec);
  j->attempt++;
  j->cmd_index = 0;
  j->started = now_seconds();
  j->finished = 0;
  j->retry_at = 0;
  j->state = JOB_RUNNING;
  j->exit_status = 0;
  const char *builtin = json_string_value(json_object_get(def, "builtin"));
  if (builtin) {  // runs in the runner: the results of the table
    json_t *res = results_build(x->r, x->g);
    int rc = 0;
    size_t k; json_t *im;
    json_array_foreach(json_object_get(res, "images"), k, im) {  // the pictures go beside results.json
      uint8_t *data; size_t len;
      char *dst = xasprintf("%s/%s", wd, json_string_value(json_object_get(im, "path")));
      if (rc == 0 && file_read_all(json_string_value(json_object_get(im, "source")), &data, &len) == 0) {
        rc = file_write_atomic(dst, data, len);
        free(data);
      } else rc = -1;
      free(dst);
      json_object_del(im, "source");
    }
    char *p = xasprintf("%s/results.json", wd);
    if (rc == 0) rc = json_dump_file(res, p, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(res);
    free(p);
    free(wd);
    j->pid = -1;
    if (rc != 0 || finish_job(x, j) != 0) {
      j->state = JOB_FAILED;
      say(x, "failed %s: %s", j->label, igpt_errmsg());
      block_dependents(x, j);
      cache_unlock(j);
    }
    return;
  }
  int gpu = -1;
  if (uses_gpu(x, j)) {
    for (int i = 0; i < x->r->n_gpus; i++) if (!x->gpu_used[i]) { gpu = i; break; }
    x->gpu_used[gpu] = true;
    x->gpu_busy++;
    j->gpu = gpu;
  } else if (uses_cpu(x, j)) x->cpu_busy++;
  say(x, "%s %.12s %s%s", x->r->slurm ? "submit" : "start ", j->key, j->label, j->attempt > 1 ? " (retry)" : "");
  if (start_command(x, j, gpu) != 0) {
    say(x, "failed %s: %s", j->label, igpt_errmsg());
    release_slot(x, j);
    j->state = JOB_FAILED;
    block_dependents(x, j);
    cache_unlock(j);
    if (!x->r->keep_going) x->stopping = true;
  }
  free(wd);
}

// The job's metrics: the last line of stdout that parses as a JSON object (the verb's --json).
static json_t *stdout_metrics(const char *wd) {
  char *p = xasprintf("%s/stdout.log", wd);
  uint8_t *data; size_t len;
  json_t *m = NULL;
  if (file_read_all(p, &data, &len) == 0) {
    char *s = (char *)data, *save = NULL;
    for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
      json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
      if (json_is_object(o)) { json_decref(m); m = o; }
      else json_decref(o);
    }
    free(data);
  }
  free(p);
  return m ? m : json_object();
}

static int finish_job(run_t *x, job_t *j) {
  char *wd = cache_work_dir(x->r, j), *final = cache_job_dir(x->r, j);
  json_t *def = verb_def(x->g, j);
  j->finished = now_seconds();
  atomic_sweep_dir(wd);  // the job's processes have exited: a temporary left now is no output
  json_t *outs = cache_digest_dir(wd);
  const char *mk = json_string_value(json_object_get(def, "metrics"));
  json_t *metrics = mk && !strcmp(mk, "stdout") ? stdout_metrics(wd) : json_object();
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  const char *gpu = NULL;
  if (j->gpu >= 0) gpu = x->r->gpus[j->gpu];
  json_t *done = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:f, s:i, s:{s:s, s:s, s:s}, s:s}", "key", j->key, "verb",
                           j->verb, "label", j->label, "spec", json_loads(j->spec, JSON_REJECT_DUPLICATES, NULL), "outputs", outs, "metrics",
                           metrics, "seconds", j->finished - j->started, "attempts", j->attempt, "device", "kind",
                           gpu ? "gpu" : "cpu", "id", gpu ? gpu : "", "host", host, "code_version", IGPT_VERSION);
  char *dp = xasprintf("%s/done.json", wd);
  char *text = json_dumps(done, JSON_INDENT(1) | JSON_SORT_KEYS);
  char *ev = job_events(x, j);
  cache_event(ev, "done", json_pack("{s:f}", "seconds", j->finished - j->started));
  free(ev);
  // events.jsonl changed after digesting: digest it again so verification sees the final bytes
  char hex[65];
  char *evp = xasprintf("%s/events.jsonl", wd);
  struct stat st;
  if (sha256_file(evp, hex) == 0 && stat(evp, &st) == 0)
    json_object_set_new(json_object_get(done, "outputs"), "events.jsonl",
                        json_pack("{s:s, s:I}", "sha256", hex, "bytes", (json_int_t)st.st_size));
  free(evp);
  free(text);
  text = json_dumps(done, JSON_INDENT(1) | JSON_SORT_KEYS);
  int rc = file_write_atomic(dp, text, strlen(text));
  free(text); free(dp);
  if (rc == 0) {
    if (path_exists(final)) rm_rf(final);  // a stale or corrupted copy
    if (rename(wd, final) != 0) rc = igpt_err("%s: cannot rename into %s: %s", wd, final, strerror(errno));
  }
  free(wd); free(final);
  if (rc != 0) { json_decref(done); return -1; }
  json_decref(j->done);
  j->done = done;
  j->state = JOB_DONE;
  j->pid = -1;
  cache_unlock(j);
  char t[32];
  fmt_secs(j->finished - j->started, t, sizeof t);
  say(x, "done   %.12s %s (%s)", j->key, j->label, t);
  cache_event(x->events_path, "done", json_pack("{s:s, s:s, s:f}", "key", j->key, "label", j->label, "seconds",
                                               j->finished - j->started));
  return 0;
}

static bool transient(run_t *x, job_t *j, int status) {
  json_t *te = json_object_get(verb_def(x->g, j), "transient_exit");
  size_t i; json_t *v;
  json_array_foreach(te, i, v) if (json_integer_value(v) == status) return true;
  // EX_TEMPFAIL (sysexits.h) always; a job killed from outside (preemption, OOM killer) too
  return status == 75 || (status == 128 + SIGKILL && !interrupted);
}

// A job's command ended with status (exit code, 128 + signal): its next command, its end, a
// retry or its failure.
static void reaped(run_t *x, job_t *j, int status) {
  char *ev = job_events(x, j);
  cache_event(ev, "exit", json_pack("{s:i, s:i, s:i}", "status", status, "attempt", j->attempt, "command", j->cmd_index));
  free(ev);
  j->pid = -1;
  int n_cmds = (int)json_array_size(json_object_get(verb_def(x->g, j), "run"));
  if (status == 0 && j->cmd_index + 1 < n_cmds) {
    j->cmd_index++;
    if (start_command(x, j, j->gpu) == 0) return;
    status = 126;
  }
  if (status == 0) {
    if (finish_job(x, j) == 0) { release_slot(x, j); return; }
    say(x, "failed %s: %s", j->label, igpt_errmsg());
    status = 1;
  }
  release_slot(x, j);
  j->exit_status = status;
  long retries = json_integer_value(json_object_get(verb_def(x->g, j), "retries"));
  if (!json_object_get(verb_def(x->g, j), "retries")) retries = 2;
  char *wd = cache_work_dir(x->r, j);
  char slurm[64] = "";  // the Slurm state behind the status, under --executor slurm
  if (j->slurm_state[0]) snprintf(slurm, sizeof slurm, " (Slurm state %s)", j->slurm_state);
  if (status != 0 && transient(x, j, status) && j->attempt <= retries && !interrupted) {
    double delay = x->r->backoff * pow(2, j->attempt - 1);
    j->state = JOB_WAITING;
    j->retry_at = now_seconds() + delay;
    say(x, "retry  %.12s %s: exit %d%s looks transient, again in %.1fs (attempt %d of %ld)", j->key, j->label, status,
        slurm, delay, j->attempt + 1, retries + 1);
  } else {
    j->state = JOB_FAILED;
    cache_unlock(j);
    char line[300];
    char *p = xasprintf("%s/stderr.log", wd);
    last_line(p, line, sizeof line);
    say(x, "FAILED %.12s %s: exit %d%s; log: %s\n       %s", j->key, j->label, status, slurm, p, line);
    free(p);
    cache_event(x->events_path, "failed", json_pack("{s:s, s:s, s:i}", "key", j->key, "label", j->label, "status", status));
    block_dependents(x, j);
    if (!x->r->keep_going) x->stopping = true;
  }
  free(wd);
}

static bool inputs_done(const job_t *j) {
  for (int k = 0; k < j->n_inputs; k++)
    if (j->inputs[k]->state != JOB_DONE) return false;
  return true;
}

// --dry-run --explain: what would run and why.
static void explain(run_t *x) {
  int would = 0;
  for (int i = 0; i < x->g->n; i++) {
    job_t *j = x->g->jobs[i];
    bool run = j->state != JOB_DONE;
    if (!run)
      for (int k = 0; k < j->n_inputs; k++) run |= j->inputs[k]->state != JOB_DONE;
    if (run && j->state == JOB_DONE) {  // an input reruns: the key is the same, the output is kept
      run = false;
    }
    would += run;
    printf("%-6s %.12s  %-44s", run ? "run" : "skip", j->key, j->label);
    if (x->r->explain) {
      if (run && j->state != JOB_DONE && !strcmp(j->why, "not built yet")) {
        const char *dep = NULL;
        for (int k = 0; k < j->n_inputs && !dep; k++) if (j->inputs[k]->state != JOB_DONE) dep = j->inputs[k]->label;
        printf("  %s%s%s", j->why, dep ? "; waits for " : "", dep ? dep : "");
      } else printf("  %s", j->why);
    }
    printf("\n");
  }
  printf("%d of %d jobs would run\n", would, x->g->n);
}

int runner_run(runner_t *r, graph_t *g) {
  run_t x = {.r = r, .g = g, .t0 = now_seconds(), .tty = isatty(2) && !getenv("IGPT_PLAIN")};
  char *runs = xasprintf("%s/runs", r->dir);
  if (mkdir_p(runs) != 0) { free(runs); return -1; }
  x.state_path = xasprintf("%s/%s.%s.json", runs, g->table, g->scale);
  x.events_path = xasprintf("%s/%s.%s.events.jsonl", runs, g->table, g->scale);
  free(runs);
  x.gpu_used = xcalloc((size_t)r->n_gpus + 1, sizeof(bool));
  x.last_plain = x.t0;  // plain progress lines every 30 s, not at once
  int cached = 0;
  for (int i = 0; i < g->n; i++) {
    job_t *j = g->jobs[i];
    json_t *done;
    if (cache_verify(r, j, &done, &j->why)) {
      j->state = JOB_DONE; j->cached = true; j->done = done; cached++;
    } else j->state = JOB_WAITING;
  }
  if (r->dry_run) {
    explain(&x);
    free(x.state_path); free(x.events_path); free(x.gpu_used);
    return 0;
  }
  for (int i = 0; i < g->n; i++)
    if (g->jobs[i]->state == JOB_WAITING && strcmp(g->jobs[i]->why, "not built yet"))
      say(&x, "rebuild %.12s %s: %s", g->jobs[i]->key, g->jobs[i]->label, g->jobs[i]->why);
  cache_event(x.events_path, "run", json_pack("{s:i, s:i, s:i}", "jobs", g->n, "cached", cached, "pid", (int)getpid()));
  if (!r->quiet) fprintf(stderr, "igpt run %s --scale %s: %d jobs, %d already done (cache %s)\n", g->table, g->scale, g->n,
                         cached, r->dir);
  struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  interrupted = 0;
  write_state(&x, "running");
  double last_state = now_seconds();
  for (;;) {
    int ws;
    pid_t pid;
    bool changed = false;
    while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
      for (int i = 0; i < g->n; i++)
        if (g->jobs[i]->pid == pid && g->jobs[i]->state == JOB_RUNNING) {
          reaped(&x, g->jobs[i], WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws));
          break;
        }
      changed = true;
    }
    for (int i = 0; i < g->n; i++) {
      job_t *j = g->jobs[i];
      int st;
      if (j->slurm_id <= 0 || j->state != JOB_RUNNING || now_seconds() - j->polled < 1.0) continue;
      j->polled = now_seconds();
      if (slurm_poll(j->slurm_id, &st, j->slurm_state, sizeof j->slurm_state)) {
        char *ev = job_events(&x, j);
        cache_event(ev, "slurm", json_pack("{s:I, s:s, s:i}", "slurm_id", (json_int_t)j->slurm_id, "state",
                                          j->slurm_state, "status", st));
        free(ev);
        j->slurm_id = 0;
        reaped(&x, j, st);
        changed = true;
      }
    }
    if (interrupted) {
      for (int i = 0; i < g->n; i++) {
        if (g->jobs[i]->pid > 0) kill(-g->jobs[i]->pid, SIGTERM);
        if (g->jobs[i]->slurm_id > 0 && g->jobs[i]->state == JOB_RUNNING) {
          slurm_cancel(g->jobs[i]->slurm_id);
          g->jobs[i]->slurm_id = 0;
          g->jobs[i]->state = JOB_FAILED;
          release_slot(&x, g->jobs[i]);
        }
      }
      x.stopping = true;
    }
    int running = 0, lockwait = 0, pending = 0;
    for (int i = 0; i < g->n; i++) {
      job_t *j = g->jobs[i];
      if (j->state == JOB_RUNNING) { running++; continue; }
      if (j->state != JOB_WAITING) continue;
      pending++;
      if (x.stopping || !inputs_done(j) || (j->retry_at > 0 && now_seconds() < j->retry_at)) continue;
      bool gpu = uses_gpu(&x, j), cpu = uses_cpu(&x, j);
      if ((gpu && x.gpu_busy >= r->n_gpus) || (cpu && x.cpu_busy >= r->jobs_cpu)) continue;
      if (j->lock_fd < 0) {
        int got = cache_lock(r, j);
        if (got < 0) { say(&x, "lock: %s", igpt_errmsg()); j->state = JOB_FAILED; block_dependents(&x, j); continue; }
        if (got == 0) {
          if (!j->waiting_lock) say(&x, "wait   %.12s %s: another run is building it", j->key, j->label);
          j->waiting_lock = true;
          lockwait++;
          continue;
        }
        json_t *done;
        char *why;
        if (cache_verify(r, j, &done, &why)) {  // another run built it meanwhile
          j->state = JOB_DONE; j->cached = true; j->done = done;
          cache_unlock(j);
          say(&x, "reuse  %.12s %s (built by another run)", j->key, j->label);
          free(why);
          changed = true;
          continue;
        }
        free(why);
        j->waiting_lock = false;
      }
      launch(&x, j);
      changed = true;
      if (j->state == JOB_RUNNING) running++;
    }
    if (changed || now_seconds() - last_state > 5) { write_state(&x, "running"); last_state = now_seconds(); }
    if (running == 0 && (x.stopping || pending == 0)) break;
    if (running == 0 && lockwait == 0) {
      bool retrying = false;
      for (int i = 0; i < g->n; i++) retrying |= g->jobs[i]->state == JOB_WAITING && g->jobs[i]->retry_at > 0;
      bool ready = false;
      for (int i = 0; i < g->n; i++) ready |= g->jobs[i]->state == JOB_WAITING && inputs_done(g->jobs[i]);
      if (!retrying && !ready) break;  // everything left is blocked
    }
    view(&x, false);
    usleep(running ? 100000 : 200000);
  }
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  int failed = 0, left = 0;
  for (int i = 0; i < g->n; i++) {
    failed += g->jobs[i]->state == JOB_FAILED || g->jobs[i]->state == JOB_BLOCKED;
    left += g->jobs[i]->state != JOB_DONE;
    cache_unlock(g->jobs[i]);
  }
  const char *overall = interrupted ? "interrupted" : left ? "failed" : "done";
  write_state(&x, overall);
  if (x.tty) view(&x, true);
  cache_event(x.events_path, overall, json_pack("{s:f}", "seconds", now_seconds() - x.t0));
  char el[32];
  fmt_secs(now_seconds() - x.t0, el, sizeof el);
  if (!r->quiet) fprintf(stderr, "igpt run %s --scale %s: %s in %s (%d jobs, %d were cached, %d not done)\n", g->table,
                         g->scale, overall, el, g->n, cached, left);
  free(x.state_path); free(x.events_path); free(x.gpu_used);
  if (interrupted) return igpt_err("interrupted by signal %d", (int)interrupted);
  return left ? 1 : 0;
}
