// results: loading and checking results.json. See results.h.
#include "results.h"
#include "jcheck.h"
#include "util.h"
#include "verdict.h"
#include <string.h>

static const struct { const char *name, *meaning; int judged; } scales[] = {
  {"smoke", "Smoke scale: tiny models on the embedded synthetic set, minutes on any CPU. These "
            "numbers show that the whole pipeline works and its trends only; they are not a "
            "reproduction of the published numbers and are not judged against them.", 0},
  {"mini", "Mini scale: small models (a few million parameters) on real CIFAR-10/100 and STL-10, "
           "one GPU, under an hour a table. They show the paper's trends on real data; the gap "
           "to the published numbers is shown, not judged: they are not a reproduction.", 0},
  {"paper", "Paper scale: the paper's models (iGPT-S/M/L) and data on many GPUs. Every row is "
            "judged against the published number by its rule.", 1},
  {"released", "Released scale: OpenAI's released checkpoints, imported and evaluated as the "
               "paper did, without pretraining. Every row is judged against the published "
               "number by its rule.", 1},
};

const char *scale_meaning(const char *scale) {
  for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++)
    if (!strcmp(scale, scales[i].name)) return scales[i].meaning;
  return NULL;
}

int scale_is_judged(const char *scale) {
  for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++)
    if (!strcmp(scale, scales[i].name)) return scales[i].judged;
  return 0;
}

#define GET(obj, key, mask, req) jc_get(obj, key, mask, req, file, path, &err)

static int check_run(const json_t *run, const char *file, const char *path) {
  int err = 0;
  if (!json_is_object(run)) return igpt_err("%s: %s: expected an object, found %s", file, path, jc_type_name(run));
  json_t *seed = GET(run, "seed", JC_INTEGER, true);
  GET(run, "value", JC_NUMBER | JC_NULL, true);
  GET(run, "status", JC_STRING, false);
  GET(run, "error", JC_STRING, false);
  GET(run, "job", JC_STRING, false);
  json_t *bl = GET(run, "best_layer", JC_INTEGER, false);
  json_t *la = GET(run, "layer_accuracy", JC_ARRAY, false);
  if (err) return -1;
  if (json_integer_value(seed) < 0) return igpt_err("%s: %s.seed: must be >= 0", file, path);
  if (bl && json_integer_value(bl) < 0) return igpt_err("%s: %s.best_layer: must be >= 0", file, path);
  if (la) {
    char *p = xasprintf("%s.layer_accuracy", path);
    for (size_t i = 0; i < json_array_size(la); i++)
      if (!jc_item_ok(la, i, JC_NUMBER | JC_NULL, file, p)) { free(p); return -1; }
    free(p);
  }
  return 0;
}

static int check_row(const json_t *row, const char *file, const char *path) {
  int err = 0;
  if (!json_is_object(row)) return igpt_err("%s: %s: expected an object, found %s", file, path, jc_type_name(row));
  json_t *id = GET(row, "id", JC_STRING, true);
  GET(row, "metric", JC_STRING, true);
  GET(row, "higher_is_better", JC_BOOL, true);
  json_t *runs = GET(row, "runs", JC_ARRAY, true);
  const char *opt[] = {"label", "dataset", "model", "unit", "note", "layer_split"};
  for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++) GET(row, opt[i], JC_STRING, false);
  json_t *pub = GET(row, "published", JC_OBJECT | JC_NULL, false);
  json_t *rule = GET(row, "rule", JC_OBJECT, false);
  if (err) return -1;
  if (!*json_string_value(id)) return igpt_err("%s: %s.id: must not be empty", file, path);
  if (json_is_object(pub)) {
    char *p = xasprintf("%s.published", path);
    const char *path_saved = path;
    path = p;
    GET(pub, "value", JC_NUMBER, true);
    GET(pub, "source", JC_STRING, true);
    GET(pub, "std", JC_NUMBER | JC_NULL, false);
    GET(pub, "model", JC_STRING, false);
    path = path_saved;
    free(p);
    if (err) return -1;
  }
  if (rule) {
    char *p = xasprintf("%s.rule", path);
    rule_t r;
    int rc = rule_from_json(rule, &r, file, p);
    free(p);
    if (rc) return -1;
  }
  for (size_t i = 0; i < json_array_size(runs); i++) {
    char *p = xasprintf("%s.runs[%zu]", path, i);
    int rc = check_run(json_array_get(runs, i), file, p);
    free(p);
    if (rc) return -1;
  }
  return 0;
}

static int check_curve(const json_t *c, const char *file, const char *path) {
  int err = 0;
  if (!json_is_object(c)) return igpt_err("%s: %s: expected an object, found %s", file, path, jc_type_name(c));
  GET(c, "name", JC_STRING, true);
  json_t *pts = GET(c, "points", JC_ARRAY, true);
  GET(c, "x", JC_STRING, false);
  GET(c, "y", JC_STRING, false);
  GET(c, "split", JC_STRING, false);
  if (err) return -1;
  for (size_t i = 0; i < json_array_size(pts); i++) {
    json_t *p = json_array_get(pts, i);
    if (!json_is_array(p) || json_array_size(p) != 2 || !json_is_number(json_array_get(p, 0)) ||
        !json_is_number(json_array_get(p, 1)))
      return igpt_err("%s: %s.points[%zu]: expected [x, y] (two numbers)", file, path, i);
  }
  return 0;
}

static int check_job(const json_t *j, const char *file, const char *path) {
  int err = 0;
  if (!json_is_object(j)) return igpt_err("%s: %s: expected an object, found %s", file, path, jc_type_name(j));
  GET(j, "key", JC_STRING, true);
  GET(j, "verb", JC_STRING, true);
  GET(j, "status", JC_STRING, true);
  GET(j, "duration_s", JC_NUMBER, false);
  GET(j, "device", JC_STRING, false);
  GET(j, "code_version", JC_STRING, false);
  GET(j, "started", JC_STRING, false);
  GET(j, "log", JC_STRING, false);
  return err ? -1 : 0;
}

static int check_image(const json_t *im, const char *file, const char *path) {
  int err = 0;
  if (!json_is_object(im)) return igpt_err("%s: %s: expected an object, found %s", file, path, jc_type_name(im));
  GET(im, "kind", JC_STRING, true);
  json_t *p = GET(im, "path", JC_STRING, true);
  GET(im, "title", JC_STRING, false);
  GET(im, "caption", JC_STRING, false);
  GET(im, "model", JC_STRING, false);
  if (err) return -1;
  const char *s = json_string_value(p);
  size_t n = strlen(s);
  if (s[0] == '/' || strstr(s, "..") || n < 5 || strcmp(s + n - 4, ".png"))
    return igpt_err("%s: %s.path: '%s' must be a .png path inside the results directory "
                    "(relative, no '..')", file, path, s);
  return 0;
}

// Checks each element of root[key] (an optional array) with fn.
static int check_array(const json_t *root, const char *key, bool required, const char *file,
                       int (*fn)(const json_t *, const char *, const char *)) {
  int err = 0;
  const char *path = "";
  json_t *a = GET(root, key, JC_ARRAY, required);
  if (err) return -1;
  for (size_t i = 0; i < json_array_size(a); i++) {
    char *p = xasprintf("%s[%zu]", key, i);
    int rc = fn(json_array_get(a, i), file, p);
    free(p);
    if (rc) return -1;
  }
  return 0;
}

int results_check(const json_t *root, const char *file) {
  int err = 0;
  const char *path = "";
  if (!json_is_object(root)) return igpt_err("%s: expected a JSON object, found %s", file, jc_type_name(root));
  json_t *fmt = GET(root, "format", JC_STRING, true);
  json_t *scale = GET(root, "scale", JC_STRING, true);
  GET(root, "table", JC_STRING, true);
  GET(root, "title", JC_STRING, false);
  GET(root, "created", JC_STRING, false);
  GET(root, "code_version", JC_STRING, false);
  GET(root, "environment", JC_OBJECT, false);
  GET(root, "notes", JC_ARRAY, false);
  if (err) return -1;
  if (strcmp(json_string_value(fmt), RESULTS_FORMAT))
    return igpt_err("%s: format: expected \"%s\", found \"%s\" (written by another version?)", file,
                    RESULTS_FORMAT, json_string_value(fmt));
  if (!scale_meaning(json_string_value(scale)))
    return igpt_err("%s: scale: expected smoke, mini, paper or released, found \"%s\"", file,
                    json_string_value(scale));
  if (check_array(root, "rows", true, file, check_row) || check_array(root, "loss_curves", false, file, check_curve) ||
      check_array(root, "jobs", false, file, check_job) || check_array(root, "images", false, file, check_image))
    return -1;
  json_t *rows = json_object_get(root, "rows");
  for (size_t i = 0; i < json_array_size(rows); i++)
    for (size_t j = 0; j < i; j++)
      if (!strcmp(json_string_value(json_object_get(json_array_get(rows, i), "id")),
                  json_string_value(json_object_get(json_array_get(rows, j), "id"))))
        return igpt_err("%s: rows[%zu].id: '%s' repeats rows[%zu].id; row ids must be unique", file, i,
                        json_string_value(json_object_get(json_array_get(rows, i), "id")), j);
  json_t *notes = json_object_get(root, "notes");
  for (size_t i = 0; i < json_array_size(notes); i++)
    if (!jc_item_ok(notes, i, JC_STRING, file, "notes")) return -1;
  return 0;
}

json_t *results_load(const char *path) {
  json_error_t e;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
  if (!root) {
    igpt_err("%s: line %d column %d: %s", path, e.line, e.column, e.text);
    return NULL;
  }
  if (results_check(root, path)) { json_decref(root); return NULL; }
  return root;
}
