// results: loading and checking results.json. See results.h.
#include "reports/results.h"
#include "base/jsonpath.h"
#include "base/util.h"
#include "reports/verdict.h"
#include <string.h>

static const struct { const char *name, *meaning; int judged; } scales[] = {
  {"smoke", "Smoke scale: tiny models on the embedded synthetic set, minutes on any CPU. These "
            "numbers show that the whole pipeline works and its trends only; they are not a "
            "reproduction of the published numbers and are not judged against them.", 0},
  {"cpu", "CPU scale: a 6-block d 128 model on real 16x16 Fashion-MNIST, under 45 minutes on two CPU "
          "cores: the paper's trends on real data, each claim decided at a stated significance; not a "
          "reproduction of the published numbers and not judged against them.", 0},
  {"mini", "Mini scale: small models (a few million parameters) on real CIFAR-10/100 and STL-10, "
           "one GPU, under an hour a table. They show the paper's trends on real data; the gap "
           "to the published numbers is shown, not judged: they are not a reproduction.", 0},
  {"paper", "Paper scale: the paper's models (iGPT-S/M/L) and data on many GPUs. Every row is "
            "judged against the published number by its rule.", 1},
  {"released", "Released scale: OpenAI's released checkpoints, imported and evaluated as the "
               "paper did, without pretraining. Every row is judged against the published "
               "number by its rule.", 1},
  {"released-standin", "Released-standin scale: STAND-IN checkpoints, not OpenAI's: a tiny model "
                       "pretrained here, exported to the released checkpoints' TensorFlow layout and "
                       "imported from it, on any CPU in minutes. These numbers show that the import and "
                       "evaluation path of the released scale runs; they say nothing about iGPT and are "
                       "not judged.", 0},
};

const char *dataset_title(const char *name) {
  static const char *const titles[][2] = {
    {"cifar10", "CIFAR-10"}, {"cifar100", "CIFAR-100"}, {"stl10", "STL-10"}, {"fashion-mnist", "Fashion-MNIST"},
    {"synthetic", "the embedded synthetic set"}, {"imagenet32", "ImageNet 32x32"}, {"imagenet48", "ImageNet 48x48"},
    {"imagenet64", "ImageNet 64x64"}, {"igpt-cifar10", "CIFAR-10 (OpenAI's split)"}, {"igpt-imagenet", "ImageNet (OpenAI's split)"}};
  for (size_t i = 0; name && i < sizeof titles / sizeof titles[0]; i++)
    if (!strcmp(name, titles[i][0])) return titles[i][1];
  return name ? name : "?";
}

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

static int check_run(const jp *c) {
  if (!jp_value(c, JP_OBJECT, JP_REQUIRED)) return -1;
  jp_int(c, "seed", JP_REQUIRED, 0, JP_NO_MAX);
  jp_get(c, "value", JP_NUMBER, JP_REQUIRED | JP_NULLABLE);
  jp_string(c, "status", JP_OPTIONAL);
  jp_string(c, "error", JP_OPTIONAL);
  jp_string(c, "job", JP_OPTIONAL);
  jp_int(c, "best_layer", JP_OPTIONAL, 0, JP_NO_MAX);
  jp_string(c, "test_correct", JP_OPTIONAL);
  jp_int(c, "n_test", JP_OPTIONAL, 1, JP_NO_MAX);
  jp_int(c, "concat_layers", JP_OPTIONAL, 1, JP_NO_MAX);
  jp la = jp_key(c, "layer_accuracy");
  jp_value(&la, JP_ARRAY, JP_OPTIONAL);
  for (size_t i = 0; i < json_array_size(la.v) && !jp_failed(c); i++) {
    jp acc = jp_index(&la, i);
    jp_value(&acc, JP_NUMBER, JP_REQUIRED | JP_NULLABLE);
  }
  return jp_failed(c) ? -1 : 0;
}

static int check_row(const jp *c) {
  if (!jp_value(c, JP_OBJECT, JP_REQUIRED)) return -1;
  jp_string(c, "id", JP_REQUIRED | JP_NONEMPTY);
  jp_string(c, "metric", JP_REQUIRED);
  jp_get(c, "higher_is_better", JP_BOOL, JP_REQUIRED);
  jp_get(c, "runs", JP_ARRAY, JP_REQUIRED);
  const char *opt[] = {"label", "dataset", "model", "unit", "note", "layer_split"};
  for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++) jp_string(c, opt[i], JP_OPTIONAL);
  jp pub = jp_key(c, "published"), rule = jp_key(c, "rule"), runs = jp_key(c, "runs");
  if (jp_value(&pub, JP_OBJECT, JP_OPTIONAL | JP_NULLABLE)) {
    jp_get(&pub, "value", JP_NUMBER, JP_REQUIRED);
    jp_string(&pub, "source", JP_REQUIRED);
    jp_get(&pub, "std", JP_NUMBER, JP_OPTIONAL | JP_NULLABLE);
    jp_string(&pub, "model", JP_OPTIONAL);
  }
  jp_value(&rule, JP_OBJECT, JP_OPTIONAL);
  if (jp_failed(c)) return -1;
  rule_t r;
  if (rule.v && rule_from_json(rule.v, &r, c->doc->file, rule.path)) return -1;
  for (size_t i = 0; i < json_array_size(runs.v); i++) {
    jp run = jp_index(&runs, i);
    if (check_run(&run)) return -1;
  }
  jp sf = jp_key(c, "stands_in_for"), bl = jp_key(c, "baselines");
  jp_value(&sf, JP_ARRAY, JP_OPTIONAL);
  for (size_t i = 0; i < json_array_size(sf.v) && !jp_failed(c); i++) {
    jp e = jp_index(&sf, i);
    if (jp_value(&e, JP_OBJECT, JP_REQUIRED)) jp_string(&e, "id", JP_REQUIRED | JP_NONEMPTY);
  }
  if (jp_value(&bl, JP_OBJECT, JP_OPTIONAL)) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)bl.v, k, v) {
      jp b = jp_key(&bl, k), br = jp_key(&b, "runs");
      if (!jp_value(&b, JP_OBJECT, JP_REQUIRED) || !jp_value(&br, JP_ARRAY, JP_REQUIRED)) return -1;
      jp_string(&b, "label", JP_OPTIONAL);
      for (size_t i = 0; i < json_array_size(br.v); i++) {
        jp run = jp_index(&br, i);
        if (check_run(&run)) return -1;
      }
    }
  }
  jp_int(c, "labels_per_class", JP_OPTIONAL, 1, JP_NO_MAX);
  jp_int(c, "concat_layers", JP_OPTIONAL, 1, JP_NO_MAX);
  return jp_failed(c) ? -1 : 0;
}

// A claim of the table (claims.h reads these) and a row not run at this scale.
static int check_claim(const jp *c) {
  if (!jp_value(c, JP_OBJECT, JP_REQUIRED)) return -1;
  jp_string(c, "id", JP_REQUIRED | JP_NONEMPTY);
  jp_string(c, "test", JP_REQUIRED | JP_NONEMPTY);
  const char *opt[] = {"claim", "source", "baseline", "eval", "a", "b", "relation"};
  for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++) jp_string(c, opt[i], JP_OPTIONAL);
  jp_get(c, "one_layer", JP_BOOL, JP_OPTIONAL);
  jp rows = jp_key(c, "rows");
  jp_value(&rows, JP_ARRAY, JP_OPTIONAL);
  for (size_t i = 0; i < json_array_size(rows.v) && !jp_failed(c); i++) {
    jp e = jp_index(&rows, i);
    jp_value(&e, JP_STRING, JP_REQUIRED);
  }
  return jp_failed(c) ? -1 : 0;
}

static int check_not_run(const jp *c) {
  if (!jp_value(c, JP_OBJECT, JP_REQUIRED)) return -1;
  jp_string(c, "id", JP_REQUIRED | JP_NONEMPTY);
  jp_string(c, "reason", JP_REQUIRED | JP_NONEMPTY);
  return jp_failed(c) ? -1 : 0;
}

static int check_curve(const jp *c) {
  if (!jp_value(c, JP_OBJECT, JP_REQUIRED)) return -1;
  jp_string(c, "name", JP_REQUIRED);
  jp_get(c, "points", JP_ARRAY, JP_REQUIRED);
  jp_string(c, "x", JP_OPTIONAL);
  jp_string(c, "y", JP_OPTIONAL);
  jp_string(c, "split", JP_OPTIONAL);
  if (jp_failed(c)) return -1;
  jp pts = jp_key(c, "points");
  for (size_t i = 0; i < json_array_size(pts.v); i++) {
    jp p = jp_index(&pts, i);
    if (!json_is_array(p.v) || json_array_size(p.v) != 2 || !json_is_number(json_array_get(p.v, 0)) ||
        !json_is_number(json_array_get(p.v, 1)))
      return jp_expected(&p, "[x, y] (two numbers)");
  }
  return 0;
}

static int check_job(const jp *c) {
  if (!jp_value(c, JP_OBJECT, JP_REQUIRED)) return -1;
  jp_string(c, "key", JP_REQUIRED);
  jp_string(c, "verb", JP_REQUIRED);
  jp_string(c, "status", JP_REQUIRED);
  jp_get(c, "duration_s", JP_NUMBER, JP_OPTIONAL);
  jp_string(c, "device", JP_OPTIONAL);
  jp_string(c, "code_version", JP_OPTIONAL);
  jp_string(c, "started", JP_OPTIONAL);
  jp_string(c, "log", JP_OPTIONAL);
  return jp_failed(c) ? -1 : 0;
}

static int check_image(const jp *c) {
  if (!jp_value(c, JP_OBJECT, JP_REQUIRED)) return -1;
  jp_string(c, "kind", JP_REQUIRED);
  const char *s = jp_string(c, "path", JP_REQUIRED);
  jp_string(c, "title", JP_OPTIONAL);
  jp_string(c, "caption", JP_OPTIONAL);
  jp_string(c, "model", JP_OPTIONAL);
  if (jp_failed(c)) return -1;
  size_t n = strlen(s);
  jp p = jp_key(c, "path");
  if (s[0] == '/' || strstr(s, "..") || n < 5 || strcmp(s + n - 4, ".png"))
    return jp_fail(&p, "'%s' must be a .png path inside the results directory (relative, no '..')", s);
  return 0;
}

// Checks each element of root[key] (an array) with fn.
static int check_array(const jp *root, const char *key, int flags, int (*fn)(const jp *)) {
  jp a = jp_key(root, key);
  if (!jp_value(&a, JP_ARRAY, flags)) return jp_failed(root) ? -1 : 0;
  for (size_t i = 0; i < json_array_size(a.v); i++) {
    jp e = jp_index(&a, i);
    if (fn(&e)) return -1;
  }
  return 0;
}

int results_check(const json_t *root, const char *file) {
  jp_doc doc = {.file = file};
  jp c = jp_root(&doc, root), fmt = jp_key(&c, "format"), scale = jp_key(&c, "scale"), notes = jp_key(&c, "notes");
  if (!jp_value(&c, JP_OBJECT, JP_REQUIRED)) return -1;
  jp_value(&fmt, JP_STRING, JP_REQUIRED);
  jp_value(&scale, JP_STRING, JP_REQUIRED);
  jp_string(&c, "table", JP_REQUIRED);
  jp_string(&c, "title", JP_OPTIONAL);
  jp_string(&c, "created", JP_OPTIONAL);
  jp_string(&c, "code_version", JP_OPTIONAL);
  jp_get(&c, "environment", JP_OBJECT, JP_OPTIONAL);
  jp_value(&notes, JP_ARRAY, JP_OPTIONAL);
  if (jp_failed(&c)) return -1;
  if (strcmp(json_string_value(fmt.v), RESULTS_FORMAT))
    return jp_fail(&fmt, "expected \"%s\", found \"%s\" (written by another version?)", RESULTS_FORMAT,
                   json_string_value(fmt.v));
  if (!scale_meaning(json_string_value(scale.v)))
    return jp_fail(&scale, "expected smoke, cpu, mini, paper or released, found \"%s\"", json_string_value(scale.v));
  if (check_array(&c, "rows", JP_REQUIRED, check_row) || check_array(&c, "loss_curves", JP_OPTIONAL, check_curve) ||
      check_array(&c, "jobs", JP_OPTIONAL, check_job) || check_array(&c, "images", JP_OPTIONAL, check_image) ||
      check_array(&c, "claims", JP_OPTIONAL, check_claim) || check_array(&c, "not_run", JP_OPTIONAL, check_not_run))
    return -1;
  jp rows = jp_key(&c, "rows");
  for (size_t i = 0; i < json_array_size(rows.v); i++) {
    jp row = jp_index(&rows, i), id = jp_key(&row, "id");
    for (size_t j = 0; j < i; j++)
      if (!strcmp(json_string_value(id.v), json_string_value(json_object_get(json_array_get(rows.v, j), "id"))))
        return jp_fail(&id, "'%s' repeats rows[%zu].id; row ids must be unique", json_string_value(id.v), j);
  }
  for (size_t i = 0; i < json_array_size(notes.v); i++) {
    jp note = jp_index(&notes, i);
    if (!jp_value(&note, JP_STRING, JP_REQUIRED)) return -1;
  }
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
