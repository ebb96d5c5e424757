// jcheck: typed JSON member access with file + JSON path in errors. See jcheck.h.
#include "jcheck.h"
#include "util.h"
#include <string.h>

const char *jc_type_name(const json_t *v) {
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

static bool type_ok(const json_t *v, int mask) {
  switch (json_typeof(v)) {
    case JSON_OBJECT: return mask & JC_OBJECT;
    case JSON_ARRAY: return mask & JC_ARRAY;
    case JSON_STRING: return mask & JC_STRING;
    case JSON_INTEGER: return mask & (JC_INTEGER | JC_NUMBER);
    case JSON_REAL: return mask & JC_NUMBER;
    case JSON_TRUE: case JSON_FALSE: return mask & JC_BOOL;
    case JSON_NULL: return mask & JC_NULL;
  }
  return false;
}

static void expected(char *buf, size_t n, int mask) {
  static const char *names[] = {"a string", "a number", "an integer", "a boolean", "null",
                                "an array", "an object"};
  buf[0] = 0;
  int first = 1;
  for (int b = 0; b < 7; b++)
    if (mask & (1 << b)) {
      if (b == 2 && (mask & JC_NUMBER)) continue;
      strncat(buf, first ? "" : " or ", n - strlen(buf) - 1);
      strncat(buf, names[b], n - strlen(buf) - 1);
      first = 0;
    }
}

json_t *jc_get(const json_t *obj, const char *key, int mask, bool required, const char *file,
               const char *path, int *err) {
  json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
  char want[128];
  expected(want, sizeof want, mask);
  if (!v) {
    if (required) {
      if (!*err) igpt_err("%s: %s%s%s: missing; expected %s", file, path, *path ? "." : "", key, want);
      *err = 1;
    }
    return NULL;
  }
  if (!type_ok(v, mask)) {
    if (!*err) igpt_err("%s: %s%s%s: expected %s, found %s", file, path, *path ? "." : "", key, want,
             jc_type_name(v));
    *err = 1;
    return NULL;
  }
  return v;
}

bool jc_item_ok(const json_t *arr, size_t i, int mask, const char *file, const char *path) {
  const json_t *v = json_array_get(arr, i);
  if (v && type_ok(v, mask)) return true;
  char want[128];
  expected(want, sizeof want, mask);
  igpt_err("%s: %s[%zu]: expected %s, found %s", file, path, i, want, jc_type_name(v));
  return false;
}
