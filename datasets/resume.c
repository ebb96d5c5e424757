// resume: the validator kept beside a .part (JSON through base/jsonpath.h). See resume.h.
#include "datasets/resume.h"
#include "base/jsonpath.h"
#include "base/util.h"
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void copy_field(char *dst, size_t n, const char *s) { snprintf(dst, n, "%s", s ? s : ""); }

int validator_read(const char *path, part_validator *v) {
  memset(v, 0, sizeof *v);
  if (!path_exists(path)) return 0;
  json_t *root = jp_load_file(path);
  if (!root) return igpt_err_prefix("a damaged validator");
  static const char *const keys[] = {"url", "etag", "last_modified", NULL};
  jp_doc doc = {.file = path};
  jp c = jp_root(&doc, root);
  if (jp_value(&c, JP_OBJECT, JP_REQUIRED) && !jp_keys(&c, keys)) {
    copy_field(v->url, sizeof v->url, jp_string(&c, "url", JP_REQUIRED | JP_NONEMPTY));
    copy_field(v->etag, sizeof v->etag, jp_string(&c, "etag", JP_OPTIONAL | JP_NULLABLE));
    copy_field(v->last_modified, sizeof v->last_modified, jp_string(&c, "last_modified", JP_OPTIONAL | JP_NULLABLE));
  }
  json_decref(root);
  if (jp_failed(&c)) {
    memset(v, 0, sizeof *v);
    return -1;
  }
  return 1;
}

int validator_write(const char *path, const part_validator *v) {
  if (!v->etag[0] && !v->last_modified[0]) {
    unlink(path);
    return 0;
  }
  json_t *j = json_pack("{s:s, s:s?, s:s?}", "url", v->url, "etag", v->etag[0] ? v->etag : NULL, "last_modified",
                        v->last_modified[0] ? v->last_modified : NULL);
  char *s = json_dumps(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
  int rc = file_write_atomic(path, s, strlen(s));
  free(s);
  json_decref(j);
  return rc;
}

const char *validator_if_range(const part_validator *v, const char *url) {
  if (v->etag[0] == '"') return v->etag;  // strong (a weak W/"..." is not allowed in If-Range)
  if (v->last_modified[0] && !strcmp(v->url, url)) return v->last_modified;
  return NULL;
}

void validator_from_header(part_validator *v, const char *line, size_t len) {
  static const struct { const char *name; size_t off, cap; } h[] = {
      {"ETag:", offsetof(part_validator, etag), sizeof v->etag},
      {"Last-Modified:", offsetof(part_validator, last_modified), sizeof v->last_modified},
  };
  for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
    size_t k = strlen(h[i].name);
    if (len <= k || strncasecmp(line, h[i].name, k)) continue;
    const char *s = line + k, *e = line + len;
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t')) e--;
    size_t n = (size_t)(e - s) < h[i].cap - 1 ? (size_t)(e - s) : h[i].cap - 1;
    char *dst = (char *)v + h[i].off;
    memcpy(dst, s, n);
    dst[n] = 0;
  }
}
