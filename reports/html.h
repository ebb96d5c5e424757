// html: report.json -> report.html, one self-contained file: inline CSS, inline SVG charts,
// PNG grids as data: URIs, no script and no external asset (a Content-Security-Policy meta tag
// forbids any fetch). It opens with the scale and what its numbers mean. Every string taken from
// the report is HTML-escaped.
#pragma once
#include <jansson.h>
#include <stddef.h>

// Renders report (reports/report.schema.json); PNG paths are relative to dir. *html malloc'd.
int html_render(const json_t *report, const char *dir, char **html, size_t *len);
