// jobs: a paper table as a graph of cached jobs. Owns the job graph and its keys (jobs.c), the
// expansion of a table at a scale (jobs_expand.c), the cache (jobs_cache.c), the local executor
// and its live view (jobs_exec.c) and the results a table run writes (jobs_results.c).
//
// A job is one verb with parameters and named inputs (other jobs). It runs as processes
// `igpt VERB ...` whose argv suite/commands.json builds from the spec (DESIGN.md's `--spec job.json`
// became this: the verbs keep their ordinary flags; the spec is still written to job.json in the
// job's directory, for people and for the record). Its key is the SHA-256 of its
// canonical spec {"verb", "version", "params", "inputs": {name: key}} dumped by Jansson with
// JSON_SORT_KEYS|JSON_COMPACT, so any change of a parameter, an input or the verb's format version
// (suite/commands.json) changes the key of the job and of everything downstream. Adding a job whose
// key is already in the graph returns the existing one: shared jobs run once.
//
// Cache layout (DIR = --cache, default $IGPT_CACHE or ./cache):
//   DIR/<key>/         a finished job: its outputs, job.json (the spec), stdout.log, stderr.log,
//                      events.jsonl, and done.json (written last: output digests, metrics, timings,
//                      device). It is built as DIR/<key>.work/ and renamed into place.
//   DIR/<key>.work/    a job being built; a resumable job (pretraining) keeps it across runs and is
//                      restarted with its resume arguments when its checkpoint is there.
//   DIR/locks/<key>.lock  flock'd while a run builds the job (inherited by the job's process, so a
//                      runner killed with -9 leaves no running orphan holding it: the job also dies
//                      through PR_SET_PDEATHSIG). Two runs on one cache build different jobs; one
//                      finding a job locked waits for it and then uses its result.
//   DIR/runs/<table>.<scale>.json  the latest state of a table's run, for `igpt status`.
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>
#include "jobs/suite.h"

#define JOBS_MAX_INPUTS 64

typedef enum { JOB_WAITING, JOB_RUNNING, JOB_DONE, JOB_FAILED, JOB_BLOCKED } job_state;

typedef struct job {
  char *verb;             // fetch, prepare, palette, tokenize, pretrain, features, probe, finetune, report
  json_t *params;         // owned
  int n_inputs;
  char *input_names[JOBS_MAX_INPUTS];
  struct job *inputs[JOBS_MAX_INPUTS];
  char key[65];
  char *spec;             // canonical spec JSON (owned)
  char *label;            // for people: "pretrain smoke ar seed 0"
  int index;              // position in the graph (inputs come first)
  // executor state
  job_state state;
  bool cached;            // found done in the cache (no work this run)
  bool waiting_lock;      // another run holds its lock
  int attempt, cmd_index, lock_fd;
  int gpu;                // index into runner_t.gpus while running on one, else -1
  pid_t pid;
  long slurm_id;          // its Slurm job while it runs under --executor slurm (else 0)
  char slurm_state[32];   // the last Slurm job's final state ("" when none), for messages
  double polled;          // when sacct was last asked about it
  double started, finished, retry_at;
  int exit_status;        // last command's exit status (or 128+signal)
  char *why;              // --explain: why it runs (or not)
  json_t *done;           // done.json once finished (owned)
} job_t;

typedef struct {
  job_t **jobs;
  int n, cap;
  const suite_t *suite;
  const char *table, *scale;  // names (borrowed)
  json_t *rows;               // per table row: {row, status, reason, jobs: [keys]} (owned)
  job_t *report;              // the table's final job
  long limit_images;          // > 0: every data set cut to its first N train and N test images
} graph_t;

// jobs.c: the graph and keys
void graph_init(graph_t *g, const suite_t *s);
void graph_free(graph_t *g);
// Adds (or finds) the job verb(params, inputs); params is stolen. label is copied.
job_t *graph_add(graph_t *g, const char *verb, json_t *params, int n, const char *const *names,
                 job_t *const *inputs, const char *label);
job_t *graph_find(const graph_t *g, const char *key_prefix);
int graph_write_dot(const graph_t *g, FILE *out);

// jobs_expand.c: table at a scale into g (with rows filled). 0 or -1 with igpt_err.
int graph_expand(graph_t *g, const char *table, const char *scale);

// jobs_cache.c
typedef struct {
  char *dir;     // absolute
  int jobs_cpu;  // CPU slots; a CPU job runs with cores / jobs_cpu OpenMP threads
  int n_gpus;    // GPU slots (CUDA_VISIBLE_DEVICES entries, or --gpus)
  char **gpus;   // device ids
  bool keep_going, dry_run, explain, quiet;
  bool slurm;        // --executor slurm: jobs go to sbatch, jobs_cpu jobs in flight at most
  bool gpu_scale;    // the scale runs on GPUs: GPU verbs ask Slurm for one
  const char *igpt;  // the igpt binary run for a job
  double backoff;    // first retry delay in seconds (doubles each time)
} runner_t;

char *cache_job_dir(const runner_t *r, const job_t *j);   // DIR/<key>; caller frees
char *cache_work_dir(const runner_t *r, const job_t *j);  // DIR/<key>.work; caller frees
// Loads DIR/<key>/done.json and checks every output digest. 1 verified, 0 absent or broken
// (*why says which: "not built", "stderr.log digest mismatch"...), never -1. *done is owned.
int cache_verify(const runner_t *r, const job_t *j, json_t **done, char **why);
// Takes the job's lock without waiting: 1 taken (fd in j->lock_fd), 0 held elsewhere, -1 error.
int cache_lock(const runner_t *r, job_t *j);
void cache_unlock(job_t *j);
// Digests of every regular file under dir except done.json, as {relpath: {sha256, bytes}}.
json_t *cache_digest_dir(const char *dir);
// Appends one event line {"time", "event", ...fields} to path (fields stolen).
void cache_event(const char *path, const char *event, json_t *fields);

// jobs_exec.c: runs the graph. 0 all done, 1 some job failed (messages printed), -1 error.
int runner_run(runner_t *r, graph_t *g);
// The command lines of a job (array of argv arrays, placeholders filled), its env object.
json_t *job_argv(const runner_t *r, const graph_t *g, const job_t *j, const char *out, bool resume);

// jobs_results.c: the table's results JSON from its finished rows (the report job's output).
// Its "images" carry a "source" (the PNG in a job's directory) that the runner copies beside
// results.json and then drops.
json_t *results_build(const runner_t *r, const graph_t *g);

// jobs_cache.c: a runner for cache (NULL: $IGPT_CACHE or ./cache, created), jobs CPU slots
// (<= 0: one; each CPU job gets cores/jobs OpenMP threads, a number fixed by --jobs so that a
// resumed training stays bit-identical), gpus a comma list (NULL: $CUDA_VISIBLE_DEVICES, else the
// /dev/nvidiaN present; "" none).
int runner_init(runner_t *r, const char *cache, int jobs, const char *gpus);
void runner_free(runner_t *r);

// jobs_slurm.c: what a job asks Slurm for, from the scale's "slurm" object: {"default": {...},
// VERB: {...}} with ranks (tasks; the data-parallel commands run on all of them under srun),
// gpus_per_rank (GPU jobs of GPU scales; default 1), cpus (per rank), mem and time (sbatch syntax);
// $IGPT_SLURM_CPUS overrides cpus. 0, or -1 naming the bad field.
typedef struct {
  int ntasks, gpus_per_task, cpus;
  char mem[32], time[32];  // "" when the scale does not say (the cluster's default)
} slurm_res;
int slurm_resources(const json_t *scale, const char *scale_name, const char *verb, bool gpu, slurm_res *res);
// The job's commands as one batch script in wd, submitted with sbatch. The Slurm job id (also
// written to wd/slurm.id), or -1 with igpt_err.
long slurm_submit(const char *wd, const char *name, json_t *runs, json_t *env, const slurm_res *res);
// 0 queued or running; 1 finished: *status the exit status (75: the cluster stopped it, retried;
// 124: its time limit), state the Slurm state ("COMPLETED", "TIMEOUT", ...).
int slurm_poll(long id, int *status, char *state, size_t n);
void slurm_cancel(long id);
// The id in wd/slurm.id when that job is still queued or running (a rerun adopts it), else 0.
long slurm_adopt(const char *wd);
