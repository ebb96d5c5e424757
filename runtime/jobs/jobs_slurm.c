// jobs_slurm: the Slurm side of the executor (igpt run --executor slurm). A job becomes one batch
// script running its commands in order; sbatch submits it (--parsable), sacct reports its state.
// The job id is kept in the job's directory (slurm.id) so a rerun after the runner died adopts the
// job still queued or running instead of submitting it twice. Extra sbatch options (partition,
// account, time) come from $IGPT_SBATCH_ARGS; GPU jobs ask for $IGPT_SLURM_GRES (default gpu:1).
#include "jobs/jobs.h"
#include "base/util.h"
#include <errno.h>
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

// Runs argv, its stdout into out (at most n bytes); the exit status or -1.
static int capture(char *const argv[], char *out, size_t n) {
  int fd[2];
  if (pipe(fd) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd[1], 1);
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

long slurm_submit(const char *wd, const char *name, json_t *runs, json_t *env, bool gpu, int cpus) {
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
    size_t a; json_t *w;
    json_array_foreach(argv, a, w) { if (a) fputc(' ', f); quote(f, json_string_value(w)); }
    fputc('\n', f);
  }
  fclose(f);
  char *av[64];
  int n = 0;
  char *out = xasprintf("--output=%s/stdout.log", wd), *err = xasprintf("--error=%s/stderr.log", wd);
  char *jn = xasprintf("--job-name=%s", name), *cp = xasprintf("--cpus-per-task=%d", cpus);
  const char *gres_env = getenv("IGPT_SLURM_GRES");
  char *gres = xasprintf("--gres=%s", gres_env ? gres_env : "gpu:1");
  av[n++] = "sbatch"; av[n++] = "--parsable"; av[n++] = "--open-mode=append";
  av[n++] = out; av[n++] = err; av[n++] = jn; av[n++] = cp;
  if (gpu) av[n++] = gres;
  char *extra = xstrdup(getenv("IGPT_SBATCH_ARGS") ? getenv("IGPT_SBATCH_ARGS") : ""), *save = NULL;
  for (char *t = strtok_r(extra, " ", &save); t && n < 60; t = strtok_r(NULL, " ", &save)) av[n++] = t;
  av[n++] = script;
  av[n] = NULL;
  char reply[256];
  int rc = capture(av, reply, sizeof reply);
  long id = rc == 0 ? strtol(reply, NULL, 10) : -1;  // --parsable: "id" or "id;cluster"
  if (id <= 0) igpt_err("sbatch %s failed (exit %d): %s", script, rc, reply);
  else {
    char *idp = xasprintf("%s/slurm.id", wd), text[32];
    snprintf(text, sizeof text, "%ld\n", id);
    file_write_atomic(idp, text, strlen(text));
    free(idp);
  }
  free(out); free(err); free(jn); free(cp); free(gres); free(extra); free(script);
  return id;
}

int slurm_poll(long id, int *status) {
  char ids[32], reply[512];
  snprintf(ids, sizeof ids, "%ld", id);
  char *av[] = {"sacct", "-j", ids, "-n", "-P", "-X", "-o", "State,ExitCode", NULL};
  if (capture(av, reply, sizeof reply) != 0) return 0;  // sacct hiccup: ask again later
  char state[64] = "";
  int code = 0, sig = 0;
  if (sscanf(reply, "%63[^|]|%d:%d", state, &code, &sig) < 1 || !state[0]) return 0;  // not in the accounting yet
  static const char *const live[] = {"PENDING", "RUNNING", "REQUEUED", "SUSPENDED", "CONFIGURING", "COMPLETING",
                                     "RESIZING", "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT", NULL};
  for (int i = 0; live[i]; i++)
    if (!strncmp(state, live[i], strlen(live[i]))) return 0;
  if (!strcmp(state, "COMPLETED")) *status = code;
  else if (!strncmp(state, "PREEMPTED", 9) || !strncmp(state, "NODE_FAIL", 9) || !strncmp(state, "BOOT_FAIL", 9))
    *status = 75;  // the cluster's doing: transient
  else if (!strncmp(state, "FAILED", 6)) *status = code ? code : 1;
  else *status = sig ? 128 + sig : 137;  // CANCELLED, TIMEOUT, OUT_OF_MEMORY, DEADLINE
  return 1;
}

void slurm_cancel(long id) {
  char ids[32], reply[64];
  snprintf(ids, sizeof ids, "%ld", id);
  char *av[] = {"scancel", ids, NULL};
  capture(av, reply, sizeof reply);
}

long slurm_adopt(const char *wd) {
  char *p = xasprintf("%s/slurm.id", wd);
  uint8_t *data; size_t len;
  long id = 0;
  if (path_exists(p) && file_read_all(p, &data, &len) == 0) {
    id = strtol((char *)data, NULL, 10);
    free(data);
    int status;
    if (id > 0 && slurm_poll(id, &status) != 0) id = 0;  // finished (or gone): not to adopt
  }
  free(p);
  return id;
}
