// Orchestrator tests on a fixture suite of cheap shell jobs (tests/fixtures/jobs: fake-verb.sh
// stands in for every verb), so they do not depend on the real verbs: keys, shared jobs, reruns,
// kill -9 then resume, corrupted artifacts, two runs on one cache, retries, failures, and the
// validation of suite JSON. The real suite (suite/) is loaded and expanded at every scale too.
#include "testutil.h"
#include "jobs/jobs.h"
#include "jobs/suite.h"
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char *fixture(void) { return repo_path("tests/fixtures/jobs"); }

typedef struct { char *dir, *cache, *results, *log; } env_t;

static env_t env_new(const char *tag) {
  env_t e;
  e.dir = test_tmpdir(tag);
  e.cache = xasprintf("%s/cache", e.dir);
  e.results = xasprintf("%s/results", e.dir);
  e.log = xasprintf("%s/log", e.dir);
  return e;
}
static void env_free(env_t *e) {
  rm_rf(e->dir);
  free(e->dir); free(e->cache); free(e->results); free(e->log);
}

// igpt run TABLES on the fixture suite in e; extra is prepended to the environment. Exit status.
static int run_tables(const env_t *e, const char *extra, const char *tables) {
  char *bin = igpt_bin(), *fx = fixture();
  char *cmd = xasprintf("env FAKE_LOG=%s FAKE_STATE=%s IGPT_PLAIN=1 IGPT_RETRY_BACKOFF=0.05 %s %s run %s --suite %s "
                        "--cache %s --results %s --jobs 2 2>>%s/runner.err",
                        e->log, e->dir, extra ? extra : "", bin, tables, fx, e->cache, e->results, e->dir);
  int rc = run_cmd(cmd);
  free(cmd); free(bin); free(fx);
  return rc;
}

// Lines of the fake verbs' log that start with prefix (a verb, "resume", or "VERB KEY").
static int log_count(const env_t *e, const char *prefix) {
  FILE *f = fopen(e->log, "r");
  if (!f) return 0;
  char line[512];
  int n = 0;
  while (fgets(line, sizeof line, f)) n += !strncmp(line, prefix, strlen(prefix));
  fclose(f);
  return n;
}
static int log_lines(const env_t *e) { return log_count(e, ""); }

// Every "VERB KEY" start line appears once: no job ran twice.
static void assert_each_job_once(const env_t *e) {
  FILE *f = fopen(e->log, "r");
  cr_assert_not_null(f);
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (!strncmp(line, "resume", 6)) continue;
    line[strcspn(line, "\n")] = 0;
    cr_assert_eq(log_count(e, line), 1, "job ran %d times: %s", log_count(e, line), line);
  }
  fclose(f);
}

// The row values of a results file, as one compact JSON string (caller frees).
static char *row_values(const char *results, const char *table) {
  char *p = xasprintf("%s/%s/smoke/results.json", results, table);
  json_error_t err;
  json_t *r = json_load_file(p, 0, &err);
  cr_assert_not_null(r, "%s: %s", p, err.text);
  json_t *vals = json_array();
  size_t i; json_t *row;
  json_array_foreach(json_object_get(r, "rows"), i, row) {
    size_t k; json_t *run;
    json_array_foreach(json_object_get(row, "runs"), k, run)
      json_array_append(vals, json_object_get(run, "value"));
  }
  char *s = json_dumps(vals, JSON_COMPACT);
  json_decref(vals); json_decref(r); free(p);
  return s;
}

static job_t *find_label(graph_t *g, const char *prefix) {
  for (int i = 0; i < g->n; i++)
    if (!strncmp(g->jobs[i]->label, prefix, strlen(prefix))) return g->jobs[i];
  return NULL;
}

// A PID that no process has now: a child that has exited and been reaped.
static long dead_pid(void) {
  pid_t p = fork();
  if (p == 0) _exit(0);
  int st;
  waitpid(p, &st, 0);
  return (long)p;
}

// atomic_open removes the temporaries of its path that a killed writer left, not those of live
// writers or of other paths; atomic_sweep_dir does the same for a folder tree.
Test(jobs, stale_atomic_temporaries_are_removed) {
  char *dir = test_tmpdir("atomic-stale");
  long dead = dead_pid(), alive = (long)getppid();
  char *stale = xasprintf("%s/out.bin.tmp.%ld", dir, dead), *live = xasprintf("%s/out.bin.tmp.%ld", dir, alive);
  char *other = xasprintf("%s/other.bin.tmp.%ld", dir, dead), *path = xasprintf("%s/out.bin", dir);
  char *sub = xasprintf("%s/sub", dir), *deep = xasprintf("%s/sub/x.tmp.%ld", dir, dead);
  cr_assert_eq(mkdir_p(sub), 0);
  const char *names[] = {stale, live, other, deep};
  for (int i = 0; i < 4; i++) {
    FILE *f = fopen(names[i], "w");
    cr_assert_not_null(f);
    fputs("partial", f);
    fclose(f);
  }
  cr_assert_eq(file_write_atomic(path, "whole", 5), 0, "%s", igpt_errmsg());
  cr_assert(!path_exists(stale), "the dead writer's temporary of out.bin is still there");
  cr_assert(path_exists(live), "a live writer's temporary was removed");
  cr_assert(path_exists(other), "another path's temporary was removed by out.bin's writer");
  cr_assert_eq(atomic_sweep_dir(dir), 2, "other.bin's and sub/x's temporaries");
  cr_assert(!path_exists(other) && !path_exists(deep) && path_exists(live) && path_exists(path));
  long pid = 0;
  cr_assert(atomic_tmp_name("model.safetensors.tmp.123", &pid) && pid == 123);
  cr_assert(!atomic_tmp_name("model.tmp.x", NULL) && !atomic_tmp_name("ckpt.tmp", NULL) && !atomic_tmp_name(".tmp.5", NULL));
  rm_rf(dir);
  free(dir); free(stale); free(live); free(other); free(path); free(sub); free(deep);
}

Test(jobs, keys_stable_and_change_with_any_input) {
  char *fx = fixture();
  suite_t s;
  cr_assert_eq(suite_load(&s, fx), 0, "%s", igpt_errmsg());
  graph_t a, b;
  graph_init(&a, &s); graph_init(&b, &s);
  cr_assert_eq(graph_expand(&a, "alpha", "smoke"), 0, "%s", igpt_errmsg());
  cr_assert_eq(graph_expand(&b, "alpha", "smoke"), 0, "%s", igpt_errmsg());
  cr_assert_eq(a.n, b.n);
  for (int i = 0; i < a.n; i++) cr_assert_str_eq(a.jobs[i]->key, b.jobs[i]->key);
  // the key is the SHA-256 of the canonical spec
  char hex[65];
  sha256_hex(a.jobs[0]->spec, strlen(a.jobs[0]->spec), hex);
  cr_assert_str_eq(hex, a.jobs[0]->key);
  // shared pretraining: two probe rows, one pretrain job
  int pretrains = 0;
  for (int i = 0; i < a.n; i++) pretrains += !strcmp(a.jobs[i]->verb, "pretrain");
  cr_assert_eq(pretrains, 1);
  // a3 needs manual data: skipped with the reason
  json_t *r3 = json_array_get(a.rows, 2);
  cr_assert_str_eq(json_string_value(json_object_get(r3, "status")), "skipped");
  cr_assert(strstr(json_string_value(json_object_get(r3, "reason")), "manual"));

  // change one pretraining parameter: pretrain and everything after it change, nothing before
  json_t *pre = json_object_get(json_object_get(s.scales, "smoke"), "pretrain");
  json_object_set_new(pre, "steps", json_integer(7));
  graph_t c;
  graph_init(&c, &s);
  cr_assert_eq(graph_expand(&c, "alpha", "smoke"), 0);
  const char *before[] = {"fetch", "prepare set-a", "palette", "tokenize set-a"};
  for (size_t i = 0; i < 4; i++)
    cr_assert_str_eq(find_label(&a, before[i])->key, find_label(&c, before[i])->key, "%s", before[i]);
  const char *after[] = {"pretrain", "features set-a", "probe set-a", "report"};
  for (size_t i = 0; i < 4; i++)
    cr_assert_str_neq(find_label(&a, after[i])->key, find_label(&c, after[i])->key, "%s", after[i]);
  // a verb's format version: only that verb and its dependents change
  json_object_set_new(json_object_get(s.commands, "palette"), "version", json_integer(2));
  graph_t d;
  graph_init(&d, &s);
  cr_assert_eq(graph_expand(&d, "alpha", "smoke"), 0);
  cr_assert_str_eq(find_label(&c, "prepare set-a")->key, find_label(&d, "prepare set-a")->key);
  cr_assert_str_neq(find_label(&c, "palette")->key, find_label(&d, "palette")->key);
  cr_assert_str_neq(find_label(&c, "tokenize set-b")->key, find_label(&d, "tokenize set-b")->key);
  graph_free(&a); graph_free(&b); graph_free(&c); graph_free(&d);
  suite_free(&s);
  free(fx);
}

// The scale's probe.concat_blocks (the cpu scale's): every block concatenated in the model's probe,
// the untrained baseline's and the checkpoints', not in the raw pixels' (no blocks); only the
// model's probe sweeps the layers one by one (the depth curve), the others probe the concatenation
// alone; and the row's note says the number is a concatenation.
Test(jobs, scale_concat_reaches_model_probes_not_pixels) {
  char *dir = repo_path("suite");
  suite_t s;
  cr_assert_eq(suite_load(&s, dir), 0, "%s", igpt_errmsg());
  json_t *k = json_object_get(json_object_get(json_object_get(s.scales, "cpu"), "probe"), "concat_blocks");
  cr_assert(json_is_true(k), "the cpu scale concatenates the blocks");
  const char *want = "\"concat\":\"blocks\"", *alone = "\"layers\":\"none\"";
  graph_t g;
  graph_init(&g, &s);
  cr_assert_eq(graph_expand(&g, "linear-probe", "cpu"), 0, "%s", igpt_errmsg());
  int model_probes = 0, pixel_probes = 0, sweeps = 0;
  for (int i = 0; i < g.n; i++) {
    if (strcmp(g.jobs[i]->verb, "probe")) continue;
    const char *l = g.jobs[i]->label;
    bool pixels = strstr(l, "raw pixels") != NULL, baseline = strstr(l, "untrained") || strstr(l, " at step ");
    bool concat = strstr(g.jobs[i]->spec, want) != NULL, concat_only = strstr(g.jobs[i]->spec, alone) != NULL;
    cr_assert(pixels ? !concat : concat, "%s: %s", l, g.jobs[i]->spec);
    cr_assert_eq(concat_only, baseline, "%s: %s", l, g.jobs[i]->spec);
    pixels ? pixel_probes++ : model_probes++;
    sweeps += concat && !concat_only;
  }
  cr_assert(model_probes >= 3 && pixel_probes == 1, "%d model, %d pixel probes", model_probes, pixel_probes);
  cr_assert_eq(sweeps, 1, "only the pretrained model's probe sweeps each layer");
  // probe.checkpoint_every: only the checkpoints at its multiples are probed
  json_t *pce = json_object_get(json_object_get(json_object_get(s.scales, "cpu"), "probe"), "checkpoint_every");
  json_t *ke = json_object_get(json_object_get(json_object_get(s.scales, "cpu"), "pretrain"), "keep_every");
  if (pce && ke && json_integer_value(pce) > json_integer_value(ke)) {
    char *kept = xasprintf("probe fashion-mnist at step %lld", (long long)json_integer_value(ke));
    char *probed = xasprintf("probe fashion-mnist at step %lld", (long long)json_integer_value(pce));
    bool seen_kept = false, seen_probed = false;
    for (int i = 0; i < g.n; i++) {
      seen_kept |= !strcmp(g.jobs[i]->label, kept);
      seen_probed |= !strcmp(g.jobs[i]->label, probed);
    }
    cr_assert(!seen_kept && seen_probed, "%s: %d, %s: %d", kept, seen_kept, probed, seen_probed);
    free(kept); free(probed);
  }
  const char *note = json_string_value(json_object_get(json_array_get(g.rows, 0), "note"));
  cr_assert(note && strstr(note, "concatenated"), "%s", note ? note : "(no note)");
  graph_free(&g);
  suite_free(&s);
  free(dir);
}

Test(jobs, shared_jobs_run_once_and_rerun_does_no_work) {
  env_t e = env_new("jobs-share");
  cr_assert_eq(run_tables(&e, NULL, "alpha"), 0);
  int after_alpha = log_lines(&e);
  cr_assert_eq(log_count(&e, "pretrain"), 1);
  cr_assert_eq(run_tables(&e, NULL, "beta"), 0);
  // beta shares set-a's data, palette, AR pretraining, features and probe with alpha
  cr_assert_eq(log_count(&e, "pretrain"), 2, "beta adds only its BERT pretraining");
  cr_assert_eq(log_count(&e, "prepare"), 2);
  assert_each_job_once(&e);
  int after_beta = log_lines(&e);
  cr_assert_gt(after_beta, after_alpha);
  char *v1 = row_values(e.results, "alpha");
  cr_assert_eq(run_tables(&e, NULL, "alpha beta"), 0);
  cr_assert_eq(log_lines(&e), after_beta, "a rerun did work");
  char *v2 = row_values(e.results, "alpha");
  cr_assert_str_eq(v1, v2);
  free(v1); free(v2);
  env_free(&e);
}

// Waits until a file exists with at least min_step in it (the fake pretraining's checkpoint).
static bool wait_step(const char *cache, int min_step, double timeout) {
  double t0 = now_seconds();
  while (now_seconds() - t0 < timeout) {
    char *cmd = xasprintf("cat %s/*.work/ckpt 2>/dev/null | sort -n | tail -1", cache);
    FILE *p = popen(cmd, "r");
    free(cmd);
    int step = 0;
    if (p) { if (fscanf(p, "%d", &step) != 1) step = 0; pclose(p); }
    if (step >= min_step) return true;
    usleep(50000);
  }
  return false;
}

static pid_t spawn_run(const env_t *e, const char *extra, const char *tables) {
  char *bin = igpt_bin(), *fx = fixture();
  char *cmd = xasprintf("exec env FAKE_LOG=%s FAKE_STATE=%s IGPT_PLAIN=1 %s %s run %s --suite %s --cache %s "
                        "--results %s --jobs 2 --quiet 2>>%s/runner.err",
                        e->log, e->dir, extra, bin, tables, fx, e->cache, e->results, e->dir);
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  free(cmd); free(bin); free(fx);
  return pid;
}

Test(jobs, kill9_mid_table_then_rerun_resumes_and_matches, .timeout = 60) {
  env_t ref = env_new("jobs-ref"), e = env_new("jobs-kill");
  cr_assert_eq(run_tables(&ref, NULL, "alpha"), 0);
  char *want = row_values(ref.results, "alpha");
  pid_t pid = spawn_run(&e, "FAKE_STEP_SLEEP=0.2", "alpha");
  cr_assert(wait_step(e.cache, 2, 20), "pretraining never reached step 2");
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  usleep(300000);  // the job itself dies through PR_SET_PDEATHSIG
  cr_assert_eq(log_count(&e, "pretrain"), 1);
  // what a kill -9 inside an atomic write leaves in the kept work directory (issue 15)
  long dead = dead_pid();
  char *cmd = xasprintf("for d in %s/*.work; do head -c 100000 /dev/zero > $d/model.safetensors.tmp.%ld; done", e.cache, dead);
  cr_assert_eq(run_cmd(cmd), 0);
  free(cmd);
  int done_before = log_count(&e, "prepare") + log_count(&e, "palette") + log_count(&e, "tokenize");
  cr_assert_eq(run_tables(&e, "FAKE_STEP_SLEEP=0.01", "alpha"), 0);
  cr_assert_eq(log_count(&e, "resume"), 1, "pretraining did not resume from its checkpoint");
  cr_assert_eq(log_count(&e, "prepare") + log_count(&e, "palette") + log_count(&e, "tokenize"), done_before,
               "jobs finished before the kill ran again");
  char *got = row_values(e.results, "alpha");
  cr_assert_str_eq(got, want);
  // the resumed checkpoint started past step 1
  FILE *f = fopen(e.log, "r");
  char line[512];
  int from = -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "resume", 6)) from = atoi(strrchr(line, ' ') + 1);
  fclose(f);
  cr_assert_geq(from, 2);
  // the partial file is gone, not kept as an output of the finished job
  cmd = xasprintf("ls %s/*/model.safetensors.tmp.* 2>/dev/null | grep -q . || grep -rq 'safetensors.tmp' %s/*/done.json",
                  e.cache, e.cache);
  cr_assert_neq(run_cmd(cmd), 0, "a stale temporary survived the rerun or is listed as an output");
  free(cmd);
  free(want); free(got);
  env_free(&ref); env_free(&e);
}

Test(jobs, corrupted_artifact_is_rebuilt) {
  env_t e = env_new("jobs-corrupt");
  cr_assert_eq(run_tables(&e, NULL, "alpha"), 0);
  char *want = row_values(e.results, "alpha");
  char *fx = fixture();
  suite_t s;
  cr_assert_eq(suite_load(&s, fx), 0);
  graph_t g;
  graph_init(&g, &s);
  cr_assert_eq(graph_expand(&g, "alpha", "smoke"), 0);
  job_t *feat = find_label(&g, "features set-a");
  char *path = xasprintf("%s/%s/out.txt", e.cache, feat->key);
  FILE *f = fopen(path, "r+");
  cr_assert_not_null(f);
  fputc('X', f);  // same size, other bytes
  fclose(f);
  char *feat_line = xasprintf("features %s", feat->key);
  cr_assert_eq(log_count(&e, feat_line), 1);
  cr_assert_eq(run_tables(&e, NULL, "alpha"), 0);
  cr_assert_eq(log_count(&e, feat_line), 2, "the corrupted features were not rebuilt");
  cr_assert_eq(log_count(&e, "probe"), 2, "the probes, whose outputs were intact, reran");
  char *got = row_values(e.results, "alpha");
  cr_assert_str_eq(got, want);
  // and a deleted done.json is a job to rebuild too
  char *done = xasprintf("%s/%s/done.json", e.cache, feat->key);
  cr_assert_eq(unlink(done), 0);
  cr_assert_eq(run_tables(&e, NULL, "alpha"), 0);
  cr_assert_eq(log_count(&e, feat_line), 3);
  free(done); free(got); free(want); free(feat_line); free(path); free(fx);
  graph_free(&g);
  suite_free(&s);
  env_free(&e);
}

Test(jobs, two_runs_on_one_cache_do_not_collide, .timeout = 60) {
  env_t e = env_new("jobs-two");
  pid_t a = spawn_run(&e, "FAKE_STEP_SLEEP=0.1", "alpha");
  pid_t b = spawn_run(&e, "FAKE_STEP_SLEEP=0.1", "beta");
  pid_t c = spawn_run(&e, "FAKE_STEP_SLEEP=0.1", "alpha");
  int sa, sb, sc;
  waitpid(a, &sa, 0); waitpid(b, &sb, 0); waitpid(c, &sc, 0);
  cr_assert(WIFEXITED(sa) && WEXITSTATUS(sa) == 0);
  cr_assert(WIFEXITED(sb) && WEXITSTATUS(sb) == 0);
  cr_assert(WIFEXITED(sc) && WEXITSTATUS(sc) == 0);
  assert_each_job_once(&e);
  cr_assert_eq(log_count(&e, "pretrain"), 2);
  int lines = log_lines(&e);
  cr_assert_eq(run_tables(&e, NULL, "alpha beta"), 0);
  cr_assert_eq(log_lines(&e), lines);
  env_free(&e);
}

Test(jobs, transient_failure_retries_and_failure_blocks_dependents) {
  env_t e = env_new("jobs-retry");
  cr_assert_eq(run_tables(&e, "FAKE_FLAKY=palette", "alpha"), 0);
  cr_assert_eq(log_count(&e, "palette"), 2, "the transient failure was not retried once");
  env_free(&e);
  env_t f = env_new("jobs-fail");
  cr_assert_eq(run_tables(&f, "FAKE_FAIL=features", "alpha"), 1);
  cr_assert_eq(log_count(&f, "probe"), 0, "a probe ran without its features");
  char *err = xasprintf("%s/runner.err", f.dir);
  env_free(&f);
  free(err);
  // --keep-going: both features jobs are tried, each failing, and nothing downstream runs
  env_t k = env_new("jobs-keep");
  cr_assert_eq(run_tables(&k, "FAKE_FAIL=features", "alpha --keep-going"), 1);
  cr_assert_eq(log_count(&k, "features"), 2);
  cr_assert_eq(log_count(&k, "probe"), 0);
  env_free(&k);
}

Test(jobs, dry_run_explains_and_does_nothing) {
  env_t e = env_new("jobs-dry");
  char *bin = igpt_bin(), *fx = fixture();
  char *cmd = xasprintf("env FAKE_LOG=%s %s run alpha --suite %s --cache %s --dry-run --explain > %s/out", e.log, bin, fx,
                        e.cache, e.dir);
  cr_assert_eq(run_cmd(cmd), 0);
  cr_assert_eq(log_lines(&e), 0);
  char *out = xasprintf("%s/out", e.dir);
  uint8_t *text; size_t n;
  cr_assert_eq(file_read_all(out, &text, &n), 0);
  cr_assert(strstr((char *)text, "12 of 12 jobs would run"), "%s", text);
  cr_assert(strstr((char *)text, "waits for"), "%s", text);
  free(text);
  cr_assert_eq(run_tables(&e, NULL, "alpha"), 0);
  cr_assert_eq(run_cmd(cmd), 0);
  cr_assert_eq(file_read_all(out, &text, &n), 0);
  cr_assert(strstr((char *)text, "0 of 12 jobs would run"), "%s", text);
  free(text); free(out); free(cmd); free(bin); free(fx);
  env_free(&e);
}

// Copies the suite in src into dir, then replaces from with to in file.
static void broken_suite_from(const char *src, const char *dir, const char *file, const char *from, const char *to) {
  char *fx = xstrdup(src);
  char *cmd = xasprintf("cp %s/*.json %s/ && /usr/bin/python3 -c \"import sys; p=sys.argv[1]; s=open(p).read(); "
                        "assert sys.argv[2] in s; open(p,'w').write(s.replace(sys.argv[2], sys.argv[3], 1))\" %s/%s '%s' '%s'",
                        fx, dir, dir, file, from, to);
  cr_assert_eq(run_cmd(cmd), 0, "%s", cmd);
  free(cmd); free(fx);
}

// The fixture suite into dir, from replaced with to in file.
static void broken_suite(const char *dir, const char *file, const char *from, const char *to) {
  char *fx = fixture();
  broken_suite_from(fx, dir, file, from, to);
  free(fx);
}

static void expect_error_in(const char *src, const char *file, const char *from, const char *to, const char *want1,
                            const char *want2) {
  char *dir = test_tmpdir("suite");
  broken_suite_from(src, dir, file, from, to);
  suite_t s;
  cr_assert_eq(suite_load(&s, dir), -1, "%s: %s -> %s loaded", file, from, to);
  cr_assert(strstr(igpt_errmsg(), file), "no file name in: %s", igpt_errmsg());
  cr_assert(strstr(igpt_errmsg(), want1), "no '%s' in: %s", want1, igpt_errmsg());
  if (want2) cr_assert(strstr(igpt_errmsg(), want2), "no '%s' in: %s", want2, igpt_errmsg());
  rm_rf(dir);
  free(dir);
}

static void expect_error(const char *file, const char *from, const char *to, const char *want1, const char *want2) {
  char *fx = fixture();
  expect_error_in(fx, file, from, to, want1, want2);
  free(fx);
}

Test(jobs, malformed_suite_json_names_file_and_path) {
  expect_error("tables.json", "\"published\": 80.0", "\"published\": \"80\"", "$.tables.alpha.rows[1].published",
               "expected a number or null, found a string");
  expect_error("tables.json", "\"objective\": \"bert\"", "\"objective\": \"gpt\"", "$.tables.beta.rows[1].objective",
               "\"gpt\"");
  expect_error("tables.json", "\"row\": \"b1\"", "\"row\": \"b9\"", "$.tables.beta.rows[1].relation.row", "b9");
  expect_error("tables.json", "\"model\": \"big\"", "\"model\": \"huge\"", "$.tables.alpha.rows[0].model", "huge");
  expect_error("scales.json", "\"steps\": 6", "\"steps\": -6", "$.scales.smoke.pretrain.steps", "found -6");
  expect_error("scales.json", "\"big\": \"tiny\"", "\"big\": \"small\"", "$.scales.smoke.models.big", "small");
  expect_error("models.json", "\"n_head\": 2", "\"n_head\": 3", "$.models.big.n_head", "multiple");
  expect_error("commands.json", "\"version\": 1, \"resources\": \"gpu\", \"resumable\"",
               "\"version\": \"1\", \"resources\": \"gpu\", \"resumable\"", "$.verbs.pretrain.version", "an integer");
  expect_error("models.json", "\"n_vocab\": 16}", "\"n_vocab\": 16,}", "line 2", NULL);  // a syntax error: line, column
}

// Issue 15: what used to load and then misbehave (a row silently dropped, a job failing after
// others ran) is refused when the suite loads, naming the file and the path.
Test(jobs, suite_is_validated_completely_when_it_loads) {
  // a row's data set that a scale does not map: the row used to vanish as "not available"
  expect_error("tables.json", "\"dataset\": \"set-b\"", "\"dataset\": \"set-c\"", "$.tables.alpha.rows[1].dataset",
               "not in");
  // unknown keys: in a row, in a row's rule, at a scale, in a verb
  expect_error("tables.json", "\"eval\": \"probe\"", "\"eval\": \"probe\", \"evl\": 1", "$.tables.alpha.rows[0].evl",
               "unknown key");
  expect_error("tables.json", "\"tolerance\": 1.0}", "\"tolerance\": 1.0, \"tol\": 2}", "rule.tol", "unknown key");
  expect_error("scales.json", "\"seeds\": 1", "\"seeds\": 1, \"seed\": 1", "$.scales.smoke.seed", "unknown key");
  expect_error("commands.json", "\"resumable\": true", "\"resumable\": true, \"resumeable\": true",
               "$.verbs.pretrain.resumeable", "unknown key");
  // command templates: an unknown parameter, input or placeholder, a bad condition
  expect_error("commands.json", "steps={p:steps}", "steps={p:stpes}", "$.verbs.pretrain.run[0][4]", "\"stpes\"");
  expect_error("commands.json", "in={in:features}", "in={in:feature}", "$.verbs.probe.run[0][4]", "no input \"feature\"");
  expect_error("commands.json", "\"{suite}/fake-verb.sh\", \"fetch\"", "\"{suit}/fake-verb.sh\", \"fetch\"",
               "$.verbs.fetch.run[0][1]", "{suit} is not a placeholder");
  expect_error("commands.json", "\"if\": \"resume\"", "\"if\": \"resumed\"", "$.verbs.pretrain.run[0][8].if",
               "not a condition");
  expect_error("commands.json", "\"if\": \"p:masks\"", "\"if\": \"p:mask\"", "$.verbs.features.run[0][6].if",
               "no parameter \"mask\"");
  // the palette is the models' vocabulary
  expect_error("scales.json", "\"k\": 16", "\"k\": 8", "$.scales.smoke.models.big", "n_vocab 16");
  // a scale's prepare options are prepare's
  expect_error("scales.json", "\"seeds\": 1", "\"seeds\": 1, \"prepare\": {\"set-a\": {\"n_trian\": 5}}",
               "$.scales.smoke.prepare.set-a.n_trian", "not a prepare option");
  // the checkpoints probed are some of those kept; a fine-tune's loss is one of two
  expect_error("scales.json", "\"checkpoint_every\": 1}", "\"checkpoint_every\": 1, \"keep_every\": 2}, "
               "\"probe\": {\"checkpoint_every\": 3}", "$.scales.smoke.probe.checkpoint_every", "multiple of pretrain.keep_every");
  expect_error("scales.json", "\"lr\": 0.001}", "\"lr\": 0.001, \"loss\": \"gen\"}", "$.scales.smoke.finetune.loss",
               "\"gen\"");
}

// The real suite runs igpt's own fetch and prepare: its data sets are the registry's and its image
// sizes igpt prepare's; an imported checkpoint takes the image size its n_ctx was trained at.
Test(jobs, real_suite_data_sets_and_image_sizes_are_checked) {
  char *real = repo_path("suite");
  expect_error_in(real, "scales.json", "\"image_size\": 16", "\"image_size\": 20", "tables.json",
                  "igpt prepare makes 16, 32, 48 or 64");
  expect_error_in(real, "scales.json", "\"imagenet48\": \"imagenet64\"", "\"imagenet48\": \"imagenet48\"",
                  "$.scales.paper.datasets.imagenet48", "no data set named 'imagenet48'");
  expect_error_in(real, "scales.json", "\"imagenet32\": \"imagenet32\", \"imagenet48\": null",
                  "\"imagenet32\": \"imagenet32\", \"imagenet48\": \"imagenet64\"", "image_size",
                  "n_ctx 1024) at the released scale on 48x48");
  free(real);
}

// A gap claim names four rows of its table and a direction: a fifth-row typo or an "equal" (which
// a difference of differences has no tolerance for) is refused at load, naming the path.
Test(jobs, gap_claims_are_checked_when_the_suite_loads) {
  char *real = repo_path("suite");
  expect_error_in(real, "tables.json", "\"d\": \"cifar10-probe-ar\"", "\"d\": \"cifar10-probe-arr\"", "claims[5].d",
                  "\"cifar10-probe-arr\" is no row of this table");
  expect_error_in(real, "tables.json", "\"test\": \"gap\",\n     \"a\": \"cifar10-finetune-bert\",\n     \"b\": \"cifar10-finetune-ar\",\n     \"relation\": \"above\"",
                  "\"test\": \"gap\",\n     \"a\": \"cifar10-finetune-bert\",\n     \"b\": \"cifar10-finetune-ar\",\n     \"relation\": \"equal\"",
                  "claims[5].relation", "\"equal\"");
  free(real);
}

// A missing suite file says so, not Jansson's "line -1 column -1"; a duplicate key is refused.
Test(jobs, missing_suite_file_and_duplicate_keys) {
  char *dir = test_tmpdir("suite-missing");
  broken_suite(dir, "scales.json", "\"seeds\": 1", "\"seeds\": 1");
  char *p = xasprintf("%s/scales.json", dir);
  cr_assert_eq(unlink(p), 0);
  suite_t s;
  cr_assert_eq(suite_load(&s, dir), -1);
  cr_assert(strstr(igpt_errmsg(), "scales.json") && strstr(igpt_errmsg(), "No such file"), "%s", igpt_errmsg());
  cr_assert_null(strstr(igpt_errmsg(), "line -1"), "%s", igpt_errmsg());
  free(p);
  rm_rf(dir);
  free(dir);
  expect_error("scales.json", "\"seeds\": 1", "\"seeds\": 1, \"seeds\": 2", "duplicate", "line 6");
}

Test(jobs, real_suite_expands_every_table_at_every_scale) {
  char *dir = repo_path("suite");
  suite_t s;
  cr_assert_eq(suite_load(&s, dir), 0, "%s", igpt_errmsg());
  const char *table; json_t *t;
  json_object_foreach(s.tables, table, t) {
    const char *scale; json_t *sc;
    json_object_foreach(s.scales, scale, sc) {
      graph_t g;
      graph_init(&g, &s);
      cr_assert_eq(graph_expand(&g, table, scale), 0, "%s at %s: %s", table, scale, igpt_errmsg());
      cr_assert_not_null(g.report);
      cr_assert_eq(json_array_size(g.rows), json_array_size(json_object_get(t, "rows")));
      // every job's command line fills all its placeholders
      runner_t r;
      cr_assert_eq(runner_init(&r, "/tmp", 1, ""), 0);
      for (int i = 0; i < g.n; i++) {
        // every job's parameters and inputs are the ones its verb's templates are checked against
        const job_vocab *v = job_vocab_of(g.jobs[i]->verb);
        cr_assert_not_null(v, "%s", g.jobs[i]->verb);
        const char *pk; json_t *pv;
        json_object_foreach(g.jobs[i]->params, pk, pv) {
          bool found = false;
          for (int q = 0; v->params[q]; q++) found |= !strcmp(v->params[q], pk);
          cr_assert(found, "%s job parameter %s is not in job_vocab_of", g.jobs[i]->verb, pk);
        }
        for (int q = 0; q < g.jobs[i]->n_inputs && strcmp(g.jobs[i]->verb, "report"); q++) {
          bool found = false;
          for (int w = 0; v->inputs[w]; w++) found |= !strcmp(v->inputs[w], g.jobs[i]->input_names[q]);
          cr_assert(found, "%s job input %s is not in job_vocab_of", g.jobs[i]->verb, g.jobs[i]->input_names[q]);
        }
        json_t *cmd = job_argv(&r, &g, g.jobs[i], "/nonexistent-out", false);
        if (strcmp(g.jobs[i]->verb, "report") && !strcmp(g.jobs[i]->verb, "pretrain")) {
          cr_assert_null(cmd, "pretrain writes its config file: the out dir must exist");
          continue;
        }
        cr_assert_not_null(cmd, "%s %s: %s", table, scale, igpt_errmsg());
        char *text = json_dumps(cmd, 0);
        cr_assert_null(strstr(text, "{p:"), "%s", text);
        cr_assert_null(strstr(text, "{in:"), "%s", text);
        cr_assert_null(strstr(text, "{device}"), "%s", text);
        free(text);
        json_decref(cmd);
      }
      runner_free(&r);
      graph_free(&g);
    }
  }
  // the smoke scale runs every table's rows on data it has (ImageNet rows are skipped, with reason)
  graph_t g;
  graph_init(&g, &s);
  cr_assert_eq(graph_expand(&g, "linear-probe", "smoke"), 0);
  size_t i; json_t *row;
  int skipped = 0;
  json_array_foreach(g.rows, i, row)
    if (!strcmp(json_string_value(json_object_get(row, "status")), "skipped")) {
      skipped++;
      cr_assert(strstr(json_string_value(json_object_get(row, "reason")), "manual"));
    }
  cr_assert_eq(skipped, 6);
  graph_free(&g);
  suite_free(&s);
  free(dir);
}

// --executor slurm against stand-ins for sbatch/sacct/scancel (tests/fixtures/jobs/slurm): the
// results equal the local executor's, and a rerun after kill -9 adopts the job still running.
Test(jobs, slurm_executor_matches_local_and_adopts_after_kill, .timeout = 60) {
  env_t ref = env_new("jobs-slurm-ref"), e = env_new("jobs-slurm");
  cr_assert_eq(run_tables(&ref, NULL, "alpha"), 0);
  char *want = row_values(ref.results, "alpha");
  char *fx = fixture();
  char *extra = xasprintf("PATH=%s/slurm:$PATH FAKE_SLURM=%s FAKE_STEP_SLEEP=0.3", fx, e.dir);
  char *tables = xstrdup("alpha --executor slurm");
  pid_t pid = spawn_run(&e, extra, tables);
  cr_assert(wait_step(e.cache, 2, 20), "pretraining never reached step 2");
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  cr_assert_eq(run_tables(&e, extra, tables), 0);
  cr_assert_eq(log_count(&e, "pretrain"), 1, "the pretraining was submitted again instead of adopted");
  cr_assert_eq(log_count(&e, "resume"), 0);
  char *err = xasprintf("grep -q 'adopt' %s/runner.err", e.dir);
  cr_assert_eq(run_cmd(err), 0, "the rerun did not say it adopted the Slurm job");
  assert_each_job_once(&e);
  char *got = row_values(e.results, "alpha");
  cr_assert_str_eq(got, want);
  free(err); free(got); free(want); free(extra); free(tables); free(fx);
  env_free(&ref); env_free(&e);
}

// The results igpt run writes follow reports/results.schema.json (checked with python3-jsonschema,
// as the reports tests do).
Test(jobs, results_follow_the_reports_schema) {
  if (run_cmd("/usr/bin/python3 -c 'import jsonschema' 2>/dev/null") != 0) cr_skip_test("python3-jsonschema is not installed");
  char *schema = repo_path("reports/results.schema.json");
  if (!path_exists(schema)) { free(schema); cr_skip_test("reports/results.schema.json is not in this tree"); }
  env_t e = env_new("jobs-schema");
  cr_assert_eq(run_tables(&e, NULL, "alpha beta"), 0);
  const char *tables[] = {"alpha", "beta"};
  for (int t = 0; t < 2; t++) {
    char *cmd = xasprintf("/usr/bin/python3 -c \"import json, jsonschema, sys; "
                          "jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))\" "
                          "%s/%s/smoke/results.json %s", e.results, tables[t], schema);
    cr_assert_eq(run_cmd(cmd), 0, "%s does not validate", tables[t]);
    free(cmd);
  }
  free(schema);
  env_free(&e);
}

// What a job asks Slurm for comes from the scale's "slurm" object (the verb's entry over
// "default"); a multi-rank job runs its data-parallel igpt commands under srun and the others
// plainly; a wrong field is named with its file and path.
Test(jobs, slurm_resources_from_the_scale_and_srun_for_ranks) {
  json_t *scale = json_loads("{\"slurm\": {\"default\": {\"cpus\": 3, \"mem\": \"4G\", \"time\": \"1:00:00\"},"
                             " \"pretrain\": {\"ranks\": 4, \"gpus_per_rank\": 1, \"time\": \"2-00:00:00\"}}}", 0, NULL);
  slurm_res res;
  unsetenv("IGPT_SLURM_CPUS");
  cr_assert_eq(slurm_resources(scale, "s", "pretrain", true, &res), 0, "%s", igpt_errmsg());
  cr_assert(res.ntasks == 4 && res.gpus_per_task == 1 && res.cpus == 3, "%d %d %d", res.ntasks, res.gpus_per_task, res.cpus);
  cr_assert_str_eq(res.mem, "4G");
  cr_assert_str_eq(res.time, "2-00:00:00");
  cr_assert_eq(slurm_resources(scale, "s", "probe", false, &res), 0);
  cr_assert(res.ntasks == 1 && res.gpus_per_task == 0 && !strcmp(res.time, "1:00:00"));
  json_t *bad = json_loads("{\"slurm\": {\"features\": {\"ranks\": \"eight\"}}}", 0, NULL);
  cr_assert_eq(slurm_resources(bad, "paper", "features", true, &res), -1);
  cr_assert(strstr(igpt_errmsg(), "suite/scales.json") && strstr(igpt_errmsg(), "$.scales.paper.slurm.features.ranks"),
            "%s", igpt_errmsg());
  // a stand-in sbatch that records its arguments
  char *dir = test_tmpdir("jobs-sbatch"), *sb = xasprintf("%s/sbatch", dir);
  char *text = xasprintf("#!/bin/sh\necho \"$*\" > %s/args\necho 42\n", dir);
  cr_assert_eq(file_write_atomic(sb, text, strlen(text)), 0);
  chmod(sb, 0755);
  char *path = xasprintf("%s:%s", dir, getenv("PATH"));
  setenv("PATH", path, 1);
  unsetenv("IGPT_SBATCH_ARGS");
  unsetenv("IGPT_SLURM_GRES");
  cr_assert_eq(slurm_resources(scale, "s", "pretrain", true, &res), 0);
  json_t *runs = json_pack("[[s, s, s], [s, s]]", "/opt/bin/igpt", "train", "--resume", "/bin/true", "train");
  cr_assert_eq(slurm_submit(dir, "igpt-pretrain-x", runs, json_object(), &res), 42, "%s", igpt_errmsg());
  char *ap = xasprintf("%s/args", dir), *sp = xasprintf("%s/slurm.sh", dir);
  uint8_t *args, *script;
  size_t n;
  cr_assert_eq(file_read_all(ap, &args, &n), 0);
  args = xrealloc(args, n + 1), args[n] = 0;
  cr_assert_eq(file_read_all(sp, &script, &n), 0);
  script = xrealloc(script, n + 1), script[n] = 0;
  const char *want[] = {"--parsable", "--requeue", "--ntasks=4", "--cpus-per-task=3", "--gpus-per-task=1", "--mem=4G",
                        "--time=2-00:00:00"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    cr_assert(strstr((char *)args, want[i]), "sbatch got %s, without %s", args, want[i]);
  cr_assert(strstr((char *)script, "srun --mpi=pmix --kill-on-bad-exit=1 --ntasks=4 --cpus-per-task=3 '/opt/bin/igpt' 'train'"),
            "%s", script);
  cr_assert(strstr((char *)script, "\n'/bin/true' 'train'\n"), "a command that is not igpt's runs once: %s", script);
  json_decref(runs); json_decref(scale); json_decref(bad);
  free(args); free(script); free(ap); free(sp); free(path); free(text); free(sb);
  rm_rf(dir);
  free(dir);
}

// One forward pass per model and split serves several jobs: a fine-tune whose head starts from the
// probe reads the final norm's features from the very features job its probe baseline reads
// (igpt finetune --head-features), and the linear-probe table's checkpoint points take their test
// loss from their probes' features jobs (igpt features --loss), so no loss job runs there.
Test(jobs, finetune_head_and_checkpoint_losses_share_the_features_pass) {
  char *dir = repo_path("suite");
  suite_t s;
  cr_assert_eq(suite_load(&s, dir), 0, "%s", igpt_errmsg());
  const char *scales[] = {"smoke", "cpu"};
  for (int q = 0; q < 2; q++) {
    graph_t g;
    graph_init(&g, &s);
    cr_assert_eq(graph_expand(&g, "fine-tune", scales[q]), 0, "%s", igpt_errmsg());
    int finetunes = 0;
    for (int i = 0; i < g.n; i++) {
      job_t *f = g.jobs[i];
      if (strcmp(f->verb, "finetune")) continue;
      finetunes++;
      job_t *feat = NULL, *model = NULL;
      for (int k = 0; k < f->n_inputs; k++) {
        if (!strcmp(f->input_names[k], "features")) feat = f->inputs[k];
        if (!strcmp(f->input_names[k], "model")) model = f->inputs[k];
      }
      cr_assert_not_null(feat, "%s at %s: a head from the probe without the probe's features", f->label, scales[q]);
      cr_assert_str_eq(feat->verb, "features");
      cr_assert_eq(feat->inputs[0], model, "%s: the features are of another model", f->label);
      bool shared = false;  // a probe of the same graph reads that job
      for (int j = 0; j < g.n; j++)
        shared |= !strcmp(g.jobs[j]->verb, "probe") && g.jobs[j]->inputs[0] == feat;
      cr_assert(shared, "%s at %s: no probe reads its features job", f->label, scales[q]);
    }
    cr_assert_geq(finetunes, 1, "the fine-tune table at %s has no fine-tune", scales[q]);
    graph_free(&g);
    graph_init(&g, &s);
    cr_assert_eq(graph_expand(&g, "linear-probe", scales[q]), 0, "%s", igpt_errmsg());
    for (int i = 0; i < g.n; i++)
      cr_assert_str_neq(g.jobs[i]->verb, "loss", "%s at %s: a second pass for a loss", g.jobs[i]->label, scales[q]);
    graph_free(&g);
  }
  suite_free(&s);
  free(dir);
}

// The argument after `flag` in one command line of a job (NULL: absent).
static const char *arg_after(json_t *argv, const char *flag) {
  for (size_t i = 0; i + 1 < json_array_size(argv); i++)
    if (!strcmp(json_string_value(json_array_get(argv, i)), flag)) return json_string_value(json_array_get(argv, i + 1));
  return NULL;
}

// A BERT ensemble's features job computes its K masks on val and test only: igpt probe fits on
// mask 0 of the train split, which is mask 0 of the same seed whatever K is. Single-mask jobs keep
// the argv (and so the cache entries) they had.
Test(jobs, ensemble_features_mask_train_once) {
  char *dir = repo_path("suite");
  suite_t s;
  cr_assert_eq(suite_load(&s, dir), 0, "%s", igpt_errmsg());
  graph_t g;
  graph_init(&g, &s);
  cr_assert_eq(graph_expand(&g, "bert-comparison", "cpu"), 0, "%s", igpt_errmsg());
  runner_t r;
  cr_assert_eq(runner_init(&r, "/tmp", 1, ""), 0);
  int ensembles = 0, single = 0;
  for (int i = 0; i < g.n; i++) {
    job_t *j = g.jobs[i];
    json_t *m = json_object_get(j->params, "masks");
    if (strcmp(j->verb, "features") || !m) continue;
    json_t *argv = job_argv(&r, &g, j, "/nonexistent-out", false), *cmd = json_object_get(argv, "run");
    cr_assert_eq(json_array_size(cmd), 3, "%s: train, val and test", j->label);
    const char *tr = arg_after(json_array_get(cmd, 0), "--masks"), *va = arg_after(json_array_get(cmd, 1), "--masks"),
               *te = arg_after(json_array_get(cmd, 2), "--masks");
    cr_assert(tr && va && te, "%s: a split without --masks", j->label);
    char k[16];
    snprintf(k, sizeof k, "%lld", (long long)json_integer_value(m));
    cr_assert_str_eq(va, k, "%s", j->label);
    cr_assert_str_eq(te, k, "%s", j->label);
    cr_assert_str_eq(tr, "1", "%s: the train split's masks beyond mask 0 are never read", j->label);
    for (int q = 0; q < 3; q++)
      cr_assert_str_eq(arg_after(json_array_get(cmd, q), "--seed"), arg_after(json_array_get(cmd, 1), "--seed"),
                       "%s: one mask seed on every split", j->label);
    if (json_integer_value(m) > 1) {
      ensembles++;
      cr_assert_not_null(json_object_get(j->params, "train_masks"));
    } else {
      single++;
      cr_assert_null(json_object_get(j->params, "train_masks"), "%s: a single-mask job's key would change", j->label);
    }
    json_decref(argv);
  }
  cr_assert_geq(ensembles, 2, "the model's and the untrained baseline's ensembles");
  cr_assert_geq(single, 1);
  runner_free(&r);
  graph_free(&g);
  suite_free(&s);
  free(dir);
}
