// jobs_slurm: the Slurm side of the executor (igpt run --executor slurm). A job becomes one batch
// script running its commands in order; sbatch submits it (--parsable, --requeue) with the CPUs,
// GPUs, memory and time the scale asks for (suite/scales.json "slurm"), and a job of several ranks
// (one per GPU) runs its data-parallel commands under srun inside the script. sacct reports the
// state, squeue when the cluster keeps no accounting; final states map to done, retry (preempted,
// node failure, cancelled from outside) or failure (time limit, out of memory), the state named.
// Slurm writes the job's stdout and stderr into its directory. The job id is kept there too
// (slurm.id) so a rerun after the runner died adopts the job still queued or running instead of
// submitting it twice. Extra sbatch options come from $IGPT_SBATCH_ARGS (after ours, so they win).
#include "jobs/jobs.h"
#include "base/jsonpath.h"
#include "base/util.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

// Appends s to the script, single-quoted for sh.
static void quote(FILE *f, const char *s) {
  fputc('\'', f);
  for (; *s; s++) {
    if (*s == '\'') fputs("'\\''", f);
    else fputc(*s, f);
  }
  fputc('\'', f);
}

// Runs argv, its stdout into out (at most n bytes), its stderr to ours or (quiet) nowhere; the
// exit status or -1.
static int capture(char *const argv[], char *out, size_t n, bool quiet) {
  int fd[2];
  if (pipe(fd) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd[1], 1);
    if (quiet) {
      int null = open("/dev/null", O_WRONLY);
      if (null >= 0) dup2(null, 2);
    }
    close(fd[0]); close(fd[1]);
    execvp(argv[0], argv);
    _exit(127);
  }
  close(fd[1]);
  size_t got = 0;
  ssize_t k;
  while (got + 1 < n && (k = read(fd[0], out + got, n - 1 - got)) > 0) got += (size_t)k;
  out[got] = 0;
  char sink[256];
  while (read(fd[0], sink, sizeof sink) > 0) {}
  close(fd[0]);
  int st;
  if (pid < 0 || waitpid(pid, &st, 0) < 0) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// The verbs that run as data-parallel ranks (engine/comm.h) when a job has several.
static bool data_parallel_verb(const char *verb) {
  return !strcmp(verb, "train") || !strcmp(verb, "finetune") || !strcmp(verb, "features");
}

int slurm_resources(const json_t *scale, const char *scale_name, const char *verb, bool gpu, slurm_res *res) {
  *res = (slurm_res){.ntasks = 1, .gpus_per_task = gpu ? 1 : 0, .cpus = 2};
  jp_doc doc = {.file = "suite/scales.json"};
  char path[256];
  snprintf(path, sizeof path, "$.scales.%s.slurm", scale_name);
  jp sl = jp_at(&doc, path, json_object_get(scale, "slurm"));
  if (!jp_value(&sl, JP_OBJECT, JP_OPTIONAL) && jp_failed(&sl)) return -1;
  static const char *const fields[] = {"ranks", "gpus_per_rank", "cpus", "mem", "time", NULL};
  const char *names[2] = {"default", verb};  // the verb's entry over the default
  for (int i = 0; i < 2 && sl.v; i++) {
    jp e = jp_key(&sl, names[i]);
    if (!e.v) continue;
    if (!jp_value(&e, JP_OBJECT, JP_REQUIRED) || jp_keys(&e, fields)) return -1;
    json_t *v;
    if ((v = jp_int(&e, "ranks", JP_OPTIONAL, 1, 100000))) res->ntasks = (int)json_integer_value(v);
    if ((v = jp_int(&e, "gpus_per_rank", JP_OPTIONAL, 0, 64)) && gpu) res->gpus_per_task = (int)json_integer_value(v);
    if ((v = jp_int(&e, "cpus", JP_OPTIONAL, 1, 4096))) res->cpus = (int)json_integer_value(v);
    const char *m = jp_string(&e, "mem", JP_OPTIONAL), *t = jp_string(&e, "time", JP_OPTIONAL);
    if (jp_failed(&e)) return -1;
    if (m) snprintf(res->mem, sizeof res->mem, "%s", m);
    if (t) snprintf(res->time, sizeof res->time, "%s", t);
  }
  const char *cpus = getenv("IGPT_SLURM_CPUS");
  if (cpus && atoi(cpus) > 0) res->cpus = atoi(cpus);
  return 0;
}

long slurm_submit(const char *wd, const char *name, json_t *runs, json_t *env, const slurm_res *res) {
  char *script = xasprintf("%s/slurm.sh", wd);
  FILE *f = fopen(script, "w");
  if (!f) { igpt_err("%s: cannot write: %s", script, strerror(errno)); free(script); return -1; }
  fprintf(f, "#!/bin/sh\n# written by igpt run: the job's commands, in order\nset -e\n");
  const char *k; json_t *v;
  json_object_foreach(env, k, v) {
    fprintf(f, "export %s=", k);
    quote(f, json_string_value(v));
    fputc('\n', f);
  }
  char cwd[4096];
  if (getcwd(cwd, sizeof cwd)) { fputs("cd ", f); quote(f, cwd); fputc('\n', f); }
  size_t i; json_t *argv;
  json_array_foreach(runs, i, argv) {
    // several ranks: the data-parallel commands run once per rank under srun (ranks from
    // SLURM_PROCID, MPI through the cluster's PMIx); the rest once, in the batch step
    const char *prog = json_string_value(json_array_get(argv, 0)), *verb = json_string_value(json_array_get(argv, 1));
    const char *base = prog ? strrchr(prog, '/') : NULL;
    bool igpt = prog && !strcmp(base ? base + 1 : prog, "igpt");
    if (res->ntasks > 1 && igpt && verb && data_parallel_verb(verb)) {
      const char *mpi = getenv("IGPT_SRUN_MPI");
      fprintf(f, "srun --mpi=%s --kill-on-bad-exit=1 --ntasks=%d --cpus-per-task=%d ", mpi ? mpi : "pmix",
              res->ntasks, res->cpus);
    }
    size_t a; json_t *w;
    json_array_foreach(argv, a, w) { if (a) fputc(' ', f); quote(f, json_string_value(w)); }
    fputc('\n', f);
  }
  fclose(f);
  char *av[72];
  int n = 0;
  char *out = xasprintf("--output=%s/stdout.log", wd), *err = xasprintf("--error=%s/stderr.log", wd);
  char *jn = xasprintf("--job-name=%s", name), *cp = xasprintf("--cpus-per-task=%d", res->cpus);
  char *nt = xasprintf("--ntasks=%d", res->ntasks), *mem = xasprintf("--mem=%s", res->mem);
  char *tl = xasprintf("--time=%s", res->time);
  const char *gres_env = getenv("IGPT_SLURM_GRES");
  // one GPU per rank wherever the ranks land (cons_tres); $IGPT_SLURM_GRES for clusters without it
  char *gres = gres_env ? xasprintf("--gres=%s", gres_env) : xasprintf("--gpus-per-task=%d", res->gpus_per_task);
  // --requeue: a node failure or a preemption puts the job back in the queue (a resumable verb
  // continues from its checkpoint); --open-mode=append keeps the logs of every attempt
  av[n++] = "sbatch"; av[n++] = "--parsable"; av[n++] = "--requeue"; av[n++] = "--open-mode=append";
  av[n++] = out; av[n++] = err; av[n++] = jn; av[n++] = nt; av[n++] = cp;
  if (res->gpus_per_task > 0) av[n++] = gres;
  if (res->mem[0]) av[n++] = mem;
  if (res->time[0]) av[n++] = tl;
  char *extra = xstrdup(getenv("IGPT_SBATCH_ARGS") ? getenv("IGPT_SBATCH_ARGS") : ""), *save = NULL;
  for (char *t = strtok_r(extra, " ", &save); t && n < 68; t = strtok_r(NULL, " ", &save)) av[n++] = t;
  av[n++] = script;
  av[n] = NULL;
  char reply[256];
  int rc = capture(av, reply, sizeof reply, false);
  long id = rc == 0 ? strtol(reply, NULL, 10) : -1;  // --parsable: "id" or "id;cluster"
  if (id <= 0) igpt_err("sbatch %s failed (exit %d): %s", script, rc, reply);
  else {
    char *idp = xasprintf("%s/slurm.id", wd), text[32];
    snprintf(text, sizeof text, "%ld\n", id);
    file_write_atomic(idp, text, strlen(text));
    free(idp);
  }
  free(out); free(err); free(jn); free(cp); free(nt); free(mem); free(tl); free(gres); free(extra); free(script);
  return id;
}

// A final state's exit status: the job's own code when it ran to its end, 75 (EX_TEMPFAIL, retried)
// when the cluster stopped it (preemption, node failure, a cancel from outside: the runner's own
// cancels happen only when it stops), 124 for a time limit (as timeout(1)), 1 for the rest.
static int final_status(const char *state, int code) {
  if (!strcmp(state, "COMPLETED")) return code;
  static const char *const transient[] = {"PREEMPTED", "NODE_FAIL", "BOOT_FAIL", "CANCELLED", NULL};
  for (int i = 0; transient[i]; i++)
    if (!strncmp(state, transient[i], strlen(transient[i]))) return 75;
  if (!strncmp(state, "FAILED", 6)) return code ? code : 1;
  if (!strncmp(state, "TIMEOUT", 7) || !strncmp(state, "DEADLINE", 8)) return 124;
  return 1;  // OUT_OF_MEMORY, and any state this code does not know
}

// Still queued or running (or between two attempts).
static bool live_state(const char *state) {
  static const char *const live[] = {"PENDING", "RUNNING", "REQUEUED", "SUSPENDED", "CONFIGURING", "COMPLETING",
                                     "RESIZING", "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT",
                                     "STOPPED", NULL};
  for (int i = 0; live[i]; i++)
    if (!strncmp(state, live[i], strlen(live[i]))) return true;
  return false;
}

int slurm_poll(long id, int *status, char *state, size_t n) {
  char ids[32], reply[512], st[64] = "";
  int code = 0;
  snprintf(ids, sizeof ids, "%ld", id);
  // A cluster without accounting makes sacct fail ("accounting storage is disabled"): squeue
  // from then on, without asking sacct every second.
  static bool no_sacct;
  char *sacct[] = {"sacct", "-j", ids, "-n", "-P", "-X", "-o", "State,ExitCode", NULL};
  if (!no_sacct) {
    if (capture(sacct, reply, sizeof reply, true) == 0) {
      int sig = 0;
      if (sscanf(reply, "%63[^|]|%d:%d", st, &code, &sig) < 1) st[0] = 0;  // not in the accounting yet
    } else {
      no_sacct = true;
    }
  }
  if (!st[0]) {
    // no accounting (sacct fails: "accounting storage is disabled"), or not there yet: squeue
    // knows a job until MinJobAge after its end; exit_code is the wait status
    char *squeue[] = {"squeue", "-h", "-j", ids, "-t", "all", "-O", "State:32,exit_code:16", NULL};
    int rc = capture(squeue, reply, sizeof reply, true);
    if (rc != 0) return 0;  // the controller is busy or restarting: ask again later
    int raw = 0;
    if (sscanf(reply, "%63s %d", st, &raw) < 1) {
      snprintf(state, n, "LOST");  // neither knows the job: gone without a final state
      *status = 75;
      return 1;
    }
    code = raw >> 8 & 0xff;
  }
  if (live_state(st)) return 0;
  st[strcspn(st, " ")] = 0;  // "CANCELLED by 0"
  snprintf(state, n, "%s", st);
  *status = final_status(st, code);
  return 1;
}

void slurm_cancel(long id) {
  char ids[32], reply[64];
  snprintf(ids, sizeof ids, "%ld", id);
  char *av[] = {"scancel", ids, NULL};
  capture(av, reply, sizeof reply, false);
}

long slurm_adopt(const char *wd) {
  char *p = xasprintf("%s/slurm.id", wd);
  uint8_t *data; size_t len;
  long id = 0;
  if (path_exists(p) && file_read_all(p, &data, &len) == 0) {
    id = strtol((char *)data, NULL, 10);
    free(data);
    int status;
    char state[32];
    if (id > 0 && slurm_poll(id, &status, state, sizeof state) != 0) id = 0;  // finished (or gone): not to adopt
  }
  free(p);
  return id;
}
