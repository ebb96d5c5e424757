// jobs: the job graph, canonical specs and keys, DOT output. See jobs.h.
#include "jobs/jobs.h"
#include "base/util.h"
#include <stdlib.h>
#include <string.h>

void graph_init(graph_t *g, const suite_t *s) {
  memset(g, 0, sizeof *g);
  g->suite = s;
  g->rows = json_array();
}

static void job_free(job_t *j) {
  free(j->verb);
  json_decref(j->params);
  for (int i = 0; i < j->n_inputs; i++) free(j->input_names[i]);
  free(j->spec); free(j->label); free(j->why);
  json_decref(j->done);
  free(j);
}

void graph_free(graph_t *g) {
  for (int i = 0; i < g->n; i++) job_free(g->jobs[i]);
  free(g->jobs);
  json_decref(g->rows);
  memset(g, 0, sizeof *g);
}

job_t *graph_find(const graph_t *g, const char *prefix) {
  size_t n = strlen(prefix);
  for (int i = 0; i < g->n; i++)
    if (!strncmp(g->jobs[i]->key, prefix, n)) return g->jobs[i];
  return NULL;
}

job_t *graph_add(graph_t *g, const char *verb, json_t *params, int n, const char *const *names,
                 job_t *const *inputs, const char *label) {
  if (n > JOBS_MAX_INPUTS) igpt_die("job %s: %d inputs, at most %d", verb, n, JOBS_MAX_INPUTS);
  json_t *cmd = json_object_get(g->suite->commands, verb);
  if (!cmd) igpt_die("job verb %s has no entry in commands.json", verb);  // checked on load
  json_t *in = json_object();
  for (int i = 0; i < n; i++) json_object_set_new(in, names[i], json_string(inputs[i]->key));
  json_t *spec = json_pack("{s:s, s:O, s:O, s:o}", "verb", verb, "version", json_object_get(cmd, "version"),
                           "params", params, "inputs", in);
  char *canon = json_dumps(spec, JSON_SORT_KEYS | JSON_COMPACT);
  json_decref(spec);
  char key[65];
  sha256_hex(canon, strlen(canon), key);
  for (int i = 0; i < g->n; i++)
    if (!strcmp(g->jobs[i]->key, key)) {
      free(canon);
      json_decref(params);
      return g->jobs[i];
    }
  job_t *j = xcalloc(1, sizeof *j);
  j->verb = xstrdup(verb);
  j->params = params;
  j->n_inputs = n;
  for (int i = 0; i < n; i++) { j->input_names[i] = xstrdup(names[i]); j->inputs[i] = inputs[i]; }
  memcpy(j->key, key, sizeof key);
  j->spec = canon;
  j->label = xstrdup(label);
  j->lock_fd = -1;
  j->pid = -1;
  j->gpu = -1;
  if (g->n == g->cap) {
    g->cap = g->cap ? 2 * g->cap : 32;
    g->jobs = xrealloc(g->jobs, (size_t)g->cap * sizeof *g->jobs);
  }
  j->index = g->n;
  g->jobs[g->n++] = j;
  return j;
}

static void dot_escape(FILE *out, const char *s) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', out);
    fputc(*s, out);
  }
}

int graph_write_dot(const graph_t *g, FILE *out) {
  static const struct { const char *verb, *color; } colors[] = {
      {"fetch", "lightgrey"}, {"prepare", "lightgrey"}, {"palette", "wheat"}, {"tokenize", "wheat"},
      {"pretrain", "lightpink"}, {"features", "lightblue"}, {"probe", "palegreen"},
      {"finetune", "palegreen"}, {"report", "gold"}};
  fprintf(out, "digraph \"%s@%s\" {\n  rankdir=LR;\n  node [shape=box, style=filled, fontname=\"monospace\"];\n",
          g->table, g->scale);
  for (int i = 0; i < g->n; i++) {
    const job_t *j = g->jobs[i];
    const char *color = "white";
    for (size_t c = 0; c < sizeof colors / sizeof colors[0]; c++)
      if (!strcmp(colors[c].verb, j->verb)) color = colors[c].color;
    fprintf(out, "  \"%.12s\" [label=\"", j->key);
    dot_escape(out, j->label);
    fprintf(out, "\\n%.12s\", fillcolor=%s];\n", j->key, color);
  }
  for (int i = 0; i < g->n; i++) {
    const job_t *j = g->jobs[i];
    for (int k = 0; k < j->n_inputs; k++)
      fprintf(out, "  \"%.12s\" -> \"%.12s\" [label=\"%s\"];\n", j->inputs[k]->key, j->key, j->input_names[k]);
  }
  fprintf(out, "}\n");
  return ferror(out) ? igpt_err("writing DOT failed") : 0;
}
