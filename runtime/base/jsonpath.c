// jsonpath: typed JSON member access with file + JSON path in every error. See jsonpath.h.
#include "base/jsonpath.h"
#include "base/util.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

json_t *jp_load_file(const char *path) {
  // Jansson reports a file it cannot open as "line -1 column -1": say it in words instead.
  struct stat st;
  if (stat(path, &st) != 0) return igpt_err("%s: cannot read: %s", path, strerror(errno)), NULL;
  if (S_ISDIR(st.st_mode)) return igpt_err("%s: is a directory, not a JSON file", path), NULL;
  json_error_t e;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
  if (root) return root;
  if (e.line < 1) igpt_err("%s: cannot read: %s", path, e.text);
  else if (strstr(e.text, "duplicate object key"))
    igpt_err("%s: line %d column %d: %s: a key given twice is ambiguous; keep one", path, e.line,
             e.column, e.text);
  else igpt_err("%s: line %d column %d: %s", path, e.line, e.column, e.text);
  return NULL;
}

static void set_path(jp *c, int n) {
  if (n >= (int)sizeof c->path) strcpy(c->path + sizeof c->path - 4, "...");  // deep paths end in "..."
}

jp jp_root(jp_doc *d, const json_t *root) { return jp_at(d, "$", root); }

jp jp_at(jp_doc *d, const char *path, const json_t *v) {
  jp c = {.doc = d, .v = v};
  set_path(&c, snprintf(c.path, sizeof c.path, "%s", path));
  return c;
}

jp jp_key(const jp *c, const char *key) {
  jp k = {.doc = c->doc, .v = json_is_object(c->v) ? json_object_get(c->v, key) : NULL};
  set_path(&k, snprintf(k.path, sizeof k.path, "%s.%s", c->path, key));
  return k;
}

jp jp_index(const jp *c, size_t i) {
  jp e = {.doc = c->doc, .v = json_array_get(c->v, i)};  // NULL for a non-array or past the end
  set_path(&e, snprintf(e.path, sizeof e.path, "%s[%zu]", c->path, i));
  return e;
}

bool jp_failed(const jp *c) { return c->doc->errors > 0; }

int jp_fail(const jp *c, const char *fmt, ...) {
  if (c->doc->errors++) return -1;  // the first error is the one reported
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return igpt_err("%s: %s: %s", c->doc->file, c->path, msg);
}

const char *jp_type_name(const json_t *v) {
  if (!v) return "nothing";
  switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
  }
  return "?";
}

// A scalar as JSON, cut to 40 characters; caller frees.
static char *show(const json_t *v) {
  char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
  if (!s) return xstrdup("?");
  if (strlen(s) > 40) strcpy(s + 37, "...");
  return s;
}

int jp_expected(const jp *c, const char *want) {
  const json_t *v = c->v;
  if (!v) return jp_fail(c, "missing; expected %s", want);
  if (json_is_array(v) || json_is_object(v)) {
    bool empty = json_is_array(v) ? !json_array_size(v) : !json_object_size(v);
    return jp_fail(c, "expected %s, found %s", want,
                   !empty ? jp_type_name(v) : json_is_array(v) ? "an empty array" : "an empty object");
  }
  if (json_is_null(v)) return jp_fail(c, "expected %s, found null", want);
  char *s = show(v);
  int rc = jp_fail(c, "expected %s, found %s (%s)", want, jp_type_name(v), s);
  free(s);
  return rc;
}

static bool type_ok(const json_t *v, int types) {
  switch (json_typeof(v)) {
    case JSON_OBJECT: return types & JP_OBJECT;
    case JSON_ARRAY: return types & JP_ARRAY;
    case JSON_STRING: return types & JP_STRING;
    case JSON_INTEGER: return types & (JP_INTEGER | JP_NUMBER);
    case JSON_REAL: return types & JP_NUMBER;
    case JSON_TRUE: case JSON_FALSE: return types & JP_BOOL;
    case JSON_NULL: return false;
  }
  return false;
}

// "a string or null", "a non-empty array", ...: what the types and flags admit.
static void describe(char *buf, size_t n, int types, int flags) {
  static const char *const names[] = {"string", "number", "integer", "boolean", "array", "object"};
  static const char *const articles[] = {"a ", "a ", "an ", "a ", "an ", "an "};
  buf[0] = 0;
  for (int b = 0; b < 6; b++) {
    if (!(types & (1 << b)) || (b == 2 && (types & JP_NUMBER))) continue;
    bool nonempty = (flags & JP_NONEMPTY) && (b == 0 || b == 4);
    size_t len = strlen(buf);
    snprintf(buf + len, n - len, "%s%s%s", len ? " or " : "", nonempty ? "a non-empty " : articles[b], names[b]);
  }
  if (flags & JP_NULLABLE) strncat(buf, " or null", n - strlen(buf) - 1);
}

json_t *jp_value(const jp *c, int types, int flags) {
  const json_t *v = c->v;
  if (!v && !(flags & JP_REQUIRED)) return NULL;
  if (json_is_null(v) && (flags & JP_NULLABLE)) return NULL;
  bool empty = (json_is_string(v) && !json_string_length(v)) || (json_is_array(v) && !json_array_size(v));
  if (v && type_ok(v, types) && !((flags & JP_NONEMPTY) && empty)) return (json_t *)v;
  char want[256];
  describe(want, sizeof want, types, flags);
  jp_expected(c, want);
  return NULL;
}

json_t *jp_get(const jp *c, const char *key, int types, int flags) {
  jp k = jp_key(c, key);
  return jp_value(&k, types, flags);
}

const char *jp_string(const jp *c, const char *key, int flags) {
  return json_string_value(jp_get(c, key, JP_STRING, flags));
}

json_t *jp_int(const jp *c, const char *key, int flags, json_int_t lo, json_int_t hi) {
  jp k = jp_key(c, key);
  json_t *v = jp_value(&k, JP_INTEGER, flags);
  if (!v) return NULL;
  json_int_t x = json_integer_value(v);
  if (x >= lo && x <= hi) return v;
  if (hi == JP_NO_MAX)
    jp_fail(&k, "expected an integer >= %" JSON_INTEGER_FORMAT ", found %" JSON_INTEGER_FORMAT, lo, x);
  else
    jp_fail(&k, "expected an integer in [%" JSON_INTEGER_FORMAT ", %" JSON_INTEGER_FORMAT "], found %" JSON_INTEGER_FORMAT,
            lo, hi, x);
  return NULL;
}

// `"a", "b", "c"`: names for messages, cut to fit n.
static void list_names(char *buf, size_t n, const char *const *names, const char *quote) {
  buf[0] = 0;
  for (int i = 0; names[i]; i++) {
    size_t len = strlen(buf);
    snprintf(buf + len, n - len, "%s%s%s%s", i ? ", " : "", quote, names[i], quote);
  }
}

int jp_enum(const jp *c, const char *key, int flags, const char *const *names) {
  jp k = jp_key(c, key);
  if (!k.v && !(flags & JP_REQUIRED)) return -1;
  if (json_is_null(k.v) && (flags & JP_NULLABLE)) return -1;
  const char *s = json_string_value(k.v);
  for (int i = 0; s && names[i]; i++)
    if (!strcmp(s, names[i])) return i;
  char want[512] = "one of ";
  list_names(want + 7, sizeof want - 7, names, "\"");
  if (s) {
    char *shown = show(k.v);
    jp_fail(&k, "expected %s, found %s", want, shown);
    free(shown);
  } else {
    jp_expected(&k, want);
  }
  return -1;
}

int jp_keys(const jp *c, const char *const *allowed) {
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)c->v, key, v) {
    bool ok = false;
    for (int i = 0; allowed[i] && !ok; i++) ok = !strcmp(key, allowed[i]);
    if (ok) continue;
    char list[512];
    list_names(list, sizeof list, allowed, "");
    jp k = jp_key(c, key);
    return jp_fail(&k, "unknown key (allowed: %s)", list);
  }
  return 0;
}
