// igpt run: a paper table (or several) at a scale, as a graph of cached jobs; writes
// results/<table>/<scale>/results.json. See runtime/jobs/jobs.h for the cache and DESIGN.md "Jobs".
#include "cli/cli.h"
#include "jobs/jobs.h"
#include "base/util.h"
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void usage(void) {
  printf("usage: igpt run TABLE... [--scale S] [--jobs N] [--gpus LIST] [--keep-going] [--dry-run [--explain]]\n"
         "                [--cache DIR] [--suite DIR] [--results DIR] [--limit-images N] [--quiet] [--json]\n\n"
         "Runs a paper table (suite/tables.json: linear-probe, fine-tune, low-data-cifar, bert-comparison,\n"
         "generative-loss, linear-probe-sizes; 'all' for every table) at a scale (suite/scales.json: smoke\n"
         "(default), cpu, mini, paper, released, released-standin) as a graph of jobs, each a process `igpt VERB ...`\n"
         "whose argv comes from suite/commands.json. Jobs are cached in DIR/<key>/ (key = SHA-256 of the job's\n"
         "canonical spec): a rerun skips verified jobs, rebuilds corrupted ones, resumes a killed pretraining\n"
         "from its checkpoint. Writes RESULTS/<table>/<scale>/results.json.\n\n"
         "  --scale S       smoke | cpu | mini | paper | released | released-standin (default smoke); released-standin\n"
         "                  runs the released pipeline offline on stand-in checkpoints (export --to tf of a\n"
         "                  smoke model), every row marked so\n"
         "  --jobs N        CPU job slots (default 1); each CPU job gets cores/N OpenMP threads (fixed by N, so a\n"
         "                  resumed training continues bit-identically when rerun with the same N)\n"
         "  --gpus LIST     GPU ids for GPU jobs, one job per GPU (default $CUDA_VISIBLE_DEVICES, else every\n"
         "                  /dev/nvidiaN; '' for none: GPU verbs then take CPU slots)\n"
         "  --executor E    local (default: processes on this machine) or slurm (sbatch each job with the ranks,\n"
         "                  GPUs, CPUs, memory and time of the scale's \"slurm\" object, data-parallel verbs\n"
         "                  under srun; poll sacct, else squeue; preempted, failed nodes and cancelled jobs\n"
         "                  retried, a time limit fails naming the state; --jobs caps the jobs in flight;\n"
         "                  $IGPT_SBATCH_ARGS adds sbatch options, e.g. a partition; a rerun adopts jobs\n"
         "                  still in the queue; docs/slurm.md)\n"
         "  --keep-going    after a failure, run every job that does not depend on it\n"
         "  --dry-run       print what would run; --explain adds why (built, corrupted, waiting on an input)\n"
         "  --cache DIR     the job cache (default $IGPT_CACHE or ./cache); two runs may share it safely\n"
         "  --suite DIR     the suite's JSON files (default $IGPT_SUITE or ./suite)\n"
         "  --results DIR   where results go (default ./results)\n"
         "  --limit-images N  cut every data set to its first N train and N test images (a quick look: new jobs,\n"
         "                  every row's note says so)\n"
         "  --json          print each table's results JSON on stdout\n\n"
         "Exit: 0 all done, 1 a job failed (its log path is printed), 2 usage error.\n");
}

// Copies the report job's results.json and the pictures it names into RESULTS/<table>/<scale>/
// (atomically).
static int publish(const runner_t *r, const graph_t *g, const char *results_dir, char **out_path) {
  char *src = xasprintf("%s/%s/results.json", r->dir, g->report->key);
  char *dir = xasprintf("%s/%s/%s", results_dir, g->table, g->scale);
  char *dst = xasprintf("%s/results.json", dir);
  uint8_t *data; size_t len;
  int rc = mkdir_p(dir);
  if (rc == 0) rc = file_read_all(src, &data, &len);
  json_t *res = NULL;
  if (rc == 0) {
    rc = file_write_atomic(dst, data, len);
    if (rc == 0 && !(res = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL)))
      rc = igpt_err("%s: not valid JSON", src);
    free(data);
  }
  size_t i; json_t *im;
  json_array_foreach(json_object_get(res, "images"), i, im) {  // the PNGs it names, beside it
    const char *rel = json_string_value(json_object_get(im, "path"));
    char *from = xasprintf("%s/%s/%s", r->dir, g->report->key, rel), *to = xasprintf("%s/%s", dir, rel);
    if (rc == 0) rc = file_read_all(from, &data, &len);
    if (rc == 0) { rc = file_write_atomic(to, data, len); free(data); }
    free(from); free(to);
  }
  json_decref(res);
  *out_path = dst;
  free(src); free(dir);
  return rc;
}

// Renders report.{json,html} with `igpt report` when this binary has it.
static int render(const runner_t *r, const char *results) {
  if (!cmd_report) return 0;
  char *dir = xstrdup(results);
  *strrchr(dir, '/') = 0;
  pid_t pid = fork();
  if (pid == 0) {
    execl(r->igpt, r->igpt, "report", "--results", dir, (char *)NULL);
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  free(dir);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) log_warn("igpt report on %s failed (exit %d)", results, WEXITSTATUS(st));
  return 0;
}

int cmd_run(int argc, char **argv) {
  static const struct option opts[] = {
      {"scale", required_argument, 0, 's'}, {"jobs", required_argument, 0, 'j'}, {"gpus", required_argument, 0, 'g'},
      {"keep-going", no_argument, 0, 'k'}, {"dry-run", no_argument, 0, 'n'}, {"explain", no_argument, 0, 'e'},
      {"cache", required_argument, 0, 'c'}, {"suite", required_argument, 0, 'S'}, {"results", required_argument, 0, 'r'},
      {"quiet", no_argument, 0, 'q'}, {"json", no_argument, 0, 'J'}, {"help", no_argument, 0, 'h'},
      {"executor", required_argument, 0, 'x'}, {"limit-images", required_argument, 0, 'L'}, {0, 0, 0, 0}};
  const char *executor = "local";
  const char *scale = "smoke", *cache = NULL, *suite_dir = NULL, *results_dir = "results", *gpus = NULL;
  long jobs = 0, limit = 0;
  bool keep = false, dry = false, expl = false, quiet = false, json = false;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "s:j:kne", opts, NULL)) != -1) {
    switch (c) {
      case 's': scale = optarg; break;
      case 'j': if (parse_long("run", "--jobs", optarg, 1, 1024, &jobs)) return EXIT_USAGE; break;
      case 'g': gpus = optarg; break;
      case 'k': keep = true; break;
      case 'n': dry = true; break;
      case 'e': expl = true; break;
      case 'c': cache = optarg; break;
      case 'S': suite_dir = optarg; break;
      case 'r': results_dir = optarg; break;
      case 'q': quiet = true; break;
      case 'J': json = true; break;
      case 'x': executor = optarg; break;
      case 'L': if (parse_long("run", "--limit-images", optarg, 1, 1L << 40, &limit)) return EXIT_USAGE; break;
      case 'h': usage(); return 0;
      default: return usage_error("run", "unknown option");
    }
  }
  if (optind >= argc) return usage_error("run", "name a table (suite/tables.json), e.g. igpt run linear-probe");
  if (expl && !dry) return usage_error("run", "--explain goes with --dry-run");
  if (strcmp(executor, "local") && strcmp(executor, "slurm"))
    return usage_error("run", "--executor wants local or slurm, got '%s'", executor);
  suite_t s;
  if (suite_load(&s, suite_dir) != 0) return fail("run");
  for (int i = optind; i < argc; i++)  // a table or scale that does not exist is a usage error
    if ((strcmp(argv[i], "all") && !suite_table(&s, argv[i])) || !suite_scale(&s, scale)) {
      int rc = usage_error("run", "%s", igpt_errmsg());
      suite_free(&s);
      return rc;
    }
  runner_t r;
  if (runner_init(&r, cache, (int)jobs, gpus) != 0) { suite_free(&s); return fail("run"); }
  r.keep_going = keep; r.dry_run = dry; r.explain = expl; r.quiet = quiet;
  r.slurm = !strcmp(executor, "slurm");
  // the tables named ("all": every table, in the file's order)
  int n_tables = 0;
  const char **tables = NULL;
  for (int i = optind; i < argc; i++) {
    if (!strcmp(argv[i], "all")) {
      const char *k; json_t *v;
      json_object_foreach(s.tables, k, v) {
        tables = xrealloc(tables, (size_t)(n_tables + 1) * sizeof *tables);
        tables[n_tables++] = k;
      }
    } else {
      tables = xrealloc(tables, (size_t)(n_tables + 1) * sizeof *tables);
      tables[n_tables++] = argv[i];
    }
  }
  int status = 0;
  for (int t = 0; t < n_tables && (status == 0 || keep); t++) {
    graph_t g;
    graph_init(&g, &s);
    g.limit_images = limit;
    if (graph_expand(&g, tables[t], scale) != 0) { status = fail("run"); graph_free(&g); break; }
    r.gpu_scale = !strcmp(json_string_value(json_object_get(suite_scale(&s, scale), "device")), "gpu");
    int rc = runner_run(&r, &g);
    if (rc < 0) status = fail("run");
    else if (rc > 0) status = 1;
    else if (!dry) {
      char *path;
      if (publish(&r, &g, results_dir, &path) != 0) status = fail("run");
      else {
        if (!quiet) fprintf(stderr, "results: %s\n", path);
        render(&r, path);
        if (json) {
          json_t *res = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
          if (res) print_json(res);
        }
      }
      free(path);
    }
    graph_free(&g);
  }
  free(tables);
  runner_free(&r);
  suite_free(&s);
  return status;
}
