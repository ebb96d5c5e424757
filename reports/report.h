// report: results.json -> report.json (reports/report.schema.json) -> report.html.
// report.json is the source of truth: per row the published value, ours as mean ± std over the
// seeds that produced a number, the difference, the rule and the verdict (judged only at the
// paper and released scales), per-layer probe accuracies, loss curves, jobs and environment.
#pragma once
#include <jansson.h>

#define REPORT_FORMAT "igpt-report/1"

// Builds the report object from checked results (results_load). dir holds results.json and the
// PNGs it names (their size and digest go into the report). NULL with an error.
json_t *report_build(const json_t *results, const char *dir);
// Reads dir/results.json, writes dir/report.json and dir/report.html, each atomically.
// *summary (may be NULL) receives a new reference to the report (caller decrefs).
int report_render_dir(const char *dir, json_t **report_out);
// The current UTC time as RFC 3339 ("2026-11-27T16:00:00Z"); caller frees.
char *report_utc_now(void);
