// results: reading results/<table>/<scale>/results.json, the orchestrator's output and the
// reporter's input (format: reports/results.schema.json, example: tests/fixtures/reports/).
// The loader checks every field the reports and checks read, with errors naming the file and
// the JSON path, so a malformed file is refused before anything is rendered.
#pragma once
#include <jansson.h>

#define RESULTS_FORMAT "igpt-results/1"

// Parses and checks path; owned JSON or NULL with an error.
json_t *results_load(const char *path);
// The checks alone (file names the source in messages).
int results_check(const json_t *root, const char *file);
// Scale names and what their numbers mean (DESIGN.md, Scales); NULL for an unknown scale.
const char *scale_meaning(const char *scale);
// How people name a data set of the suite ("fashion-mnist" -> "Fashion-MNIST"); the name itself
// when the suite has no other.
const char *dataset_title(const char *name);
// Whether rows at this scale are judged against the published numbers (paper, released).
int scale_is_judged(const char *scale);
