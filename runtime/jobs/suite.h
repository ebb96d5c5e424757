// suite: loads and validates the suite's data files (suite/tables.json, models.json, scales.json,
// commands.json). After suite_load succeeds every field the orchestrator reads is present and of
// the right type, so the rest of the code reads the JSON without re-checking. A wrong field is an
// error naming the file and the JSON path ("suite/tables.json: $.tables.fine-tune.rows[1].published:
// expected a number or null, found a string ("80")"), worded by runtime/base/jsonpath.h.
#pragma once
#include <jansson.h>

typedef struct {
  char *dir;         // the suite directory (absolute)
  json_t *tables;    // tables.json "tables": {name: {title, source, rows: [...]}}
  json_t *models;    // models.json "models": {name: {n_layer, n_embd, n_head, n_ctx, n_vocab}}
  json_t *scales;    // scales.json "scales": {name: {...}}
  json_t *commands;  // commands.json "verbs": {verb: {version, resources, run, ...}}
  json_t *embedded;  // commands.json "embedded_datasets": data sets that need no fetch
} suite_t;

// dir NULL: $IGPT_SUITE, else $IGPT_ROOT/suite, else ./suite. 0 or -1 with igpt_err.
int suite_load(suite_t *s, const char *dir);
void suite_free(suite_t *s);

// Lookups (borrowed); NULL with igpt_err listing what exists.
json_t *suite_table(const suite_t *s, const char *name);
json_t *suite_scale(const suite_t *s, const char *name);
json_t *suite_model(const suite_t *s, const char *name);
json_t *suite_command(const suite_t *s, const char *verb);

// What graph_expand (jobs_expand.c) gives the jobs of a verb: the names of their inputs and of
// their parameters (NULL-terminated; a scale's "prepare" options are prepare parameters). The
// templates of commands.json are checked against them when the suite loads. NULL for a verb
// graph_expand makes no job of.
typedef struct { const char *verb; const char *const *inputs, *const *params; } job_vocab;
const job_vocab *job_vocab_of(const char *verb);
