// suite: loading and validating the suite's JSON files. See suite.h.
// Validation walks each file with a jsonpath context (runtime/base/jsonpath.h), so every error names
// the file and where in it the wrong value sits ("$.tables.x.rows[2].rule.kind").
#include "jobs/suite.h"
#include "base/jsonpath.h"
#include "base/util.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// rule: how reports/ judges the row against the published value (reports/results.schema.json);
// relation: for a row the paper prints no number for, how it must compare with another row.
static int check_rule(const jp *c) {
  static const char *const kinds[] = {"absolute", "sigma", "relative", NULL};
  jp_enum(c, "kind", JP_REQUIRED, kinds);
  jp_get(c, "tolerance", JP_NUMBER, JP_REQUIRED);
  jp_get(c, "floor", JP_NUMBER, JP_OPTIONAL);
  return jp_failed(c) ? -1 : 0;
}

static int check_relation(const jp *c, json_t *row_ids) {
  static const char *const rels[] = {"below", "above", "equal", "not_below", NULL};
  jp_enum(c, "relation", JP_REQUIRED, rels);
  const char *other = jp_string(c, "row", JP_REQUIRED);
  jp_get(c, "min_gap", JP_NUMBER, JP_OPTIONAL);
  jp_get(c, "tolerance", JP_NUMBER, JP_OPTIONAL);
  if (jp_failed(c)) return -1;
  jp row = jp_key(c, "row");
  if (!json_object_get(row_ids, other)) return jp_fail(&row, "names row \"%s\", which is not in this table", other);
  return 0;
}

static int check_row(const jp *c, json_t *models, json_t *ids) {
  static const char *const objectives[] = {"ar", "bert", NULL};
  static const char *const evals[] = {"probe", "finetune", NULL};
  if (!jp_value(c, JP_OBJECT, JP_REQUIRED)) return -1;
  jp_string(c, "id", JP_REQUIRED);
  jp_string(c, "label", JP_OPTIONAL);
  jp_string(c, "dataset", JP_REQUIRED);
  jp_int(c, "image_size", JP_OPTIONAL, 4, 4096);
  const char *model = jp_string(c, "model", JP_REQUIRED);
  jp_enum(c, "objective", JP_REQUIRED, objectives);
  jp_enum(c, "eval", JP_REQUIRED, evals);
  jp_string(c, "metric", JP_REQUIRED);
  jp_string(c, "unit", JP_OPTIONAL);
  jp_get(c, "higher_is_better", JP_BOOL, JP_REQUIRED);
  json_t *published = jp_get(c, "published", JP_NUMBER, JP_REQUIRED | JP_NULLABLE);
  jp_get(c, "published_std", JP_NUMBER, JP_OPTIONAL);
  jp_string(c, "source", JP_REQUIRED);
  jp_string(c, "published_model", JP_OPTIONAL);
  jp_get(c, "needs_manual_data", JP_BOOL, JP_OPTIONAL);
  jp_int(c, "masks", JP_OPTIONAL, 1, 64);
  if (jp_failed(c)) return -1;
  jp m = jp_key(c, "model");
  if (!json_object_get(models, model)) return jp_fail(&m, "\"%s\" is not in models.json", model);
  jp probe = jp_key(c, "probe"), rule = jp_key(c, "rule"), rel = jp_key(c, "relation");
  if (jp_value(&probe, JP_OBJECT, JP_OPTIONAL)) {
    jp_int(&probe, "labels_per_class", JP_OPTIONAL, 1, 1000000);
    jp_int(&probe, "subsets", JP_OPTIONAL, 1, 1000);
    jp_int(&probe, "concat_layers", JP_OPTIONAL, 1, 64);
  }
  jp_value(&rule, JP_OBJECT, JP_OPTIONAL);
  jp_value(&rel, JP_OBJECT, JP_OPTIONAL);
  if (jp_failed(c)) return -1;
  if (published && !rule.v) return jp_expected(&rule, "an object (the row has a published value)");
  if (!published && !rel.v) return jp_expected(&rel, "an object (the row has no published value)");
  if (rule.v && check_rule(&rule)) return -1;
  return rel.v ? check_relation(&rel, ids) : 0;
}

static int check_tables(const jp *root, json_t *models) {
  jp c = jp_key(root, "tables");
  json_t *tables = jp_value(&c, JP_OBJECT, JP_REQUIRED);
  if (!tables) return -1;
  const char *name; json_t *t;
  json_object_foreach(tables, name, t) {
    jp tc = jp_key(&c, name);
    if (!jp_value(&tc, JP_OBJECT, JP_REQUIRED)) return -1;
    jp_string(&tc, "title", JP_REQUIRED);
    jp_string(&tc, "source", JP_REQUIRED);
    jp_get(&tc, "rows", JP_ARRAY, JP_REQUIRED | JP_NONEMPTY);
    if (jp_failed(&tc)) return -1;
    jp rows = jp_key(&tc, "rows");
    json_t *ids = json_object();
    for (size_t i = 0; i < json_array_size(rows.v); i++) {  // ids first, so that relation rules may name later rows
      jp row = jp_index(&rows, i), id = jp_key(&row, "id");
      if (!json_is_string(id.v)) continue;
      if (json_object_get(ids, json_string_value(id.v))) {
        json_decref(ids);
        return jp_fail(&id, "\"%s\" appears twice in the table", json_string_value(id.v));
      }
      json_object_set_new(ids, json_string_value(id.v), json_true());
    }
    for (size_t i = 0; i < json_array_size(rows.v); i++) {
      jp row = jp_index(&rows, i);
      if (check_row(&row, models, ids)) { json_decref(ids); return -1; }
    }
    json_decref(ids);
  }
  return 0;
}

static int check_models(const jp *root) {
  jp c = jp_key(root, "models");
  json_t *models = jp_value(&c, JP_OBJECT, JP_REQUIRED);
  if (!models) return -1;
  const char *name; json_t *m;
  json_object_foreach(models, name, m) {
    jp mc = jp_key(&c, name);
    if (!jp_value(&mc, JP_OBJECT, JP_REQUIRED)) return -1;
    jp_int(&mc, "n_layer", JP_REQUIRED, 1, 1024);
    json_t *embd = jp_int(&mc, "n_embd", JP_REQUIRED, 1, 1 << 16);
    jp_int(&mc, "n_ctx", JP_REQUIRED, 1, 1 << 20);
    jp_int(&mc, "n_vocab", JP_REQUIRED, 2, 1 << 16);
    json_t *head = jp_int(&mc, "n_head", JP_REQUIRED | JP_NULLABLE, 1, 1024);
    if (jp_failed(&mc)) return -1;
    jp h = jp_key(&mc, "n_head");
    if (head && json_integer_value(embd) % json_integer_value(head))
      return jp_fail(&h, "n_embd (%" JSON_INTEGER_FORMAT ") must be a multiple of n_head (%" JSON_INTEGER_FORMAT ")",
                     json_integer_value(embd), json_integer_value(head));
  }
  return 0;
}

// A map whose values are strings naming entries of `in` (or null).
static int check_name_map(const jp *c, const char *f, json_t *in, const char *in_file) {
  jp m = jp_key(c, f);
  json_t *map = jp_value(&m, JP_OBJECT, JP_REQUIRED);
  if (!map) return -1;
  const char *k; json_t *v;
  json_object_foreach(map, k, v) {
    jp e = jp_key(&m, k);
    const char *name = json_string_value(jp_value(&e, JP_STRING, JP_REQUIRED | JP_NULLABLE));
    if (jp_failed(&e)) return -1;
    if (name && in && !json_object_get(in, name)) return jp_fail(&e, "\"%s\" is not in %s", name, in_file);
  }
  return 0;
}

static int check_scales(const jp *root, json_t *models) {
  static const char *const devices[] = {"cpu", "gpu", NULL};
  static const char *const palettes[] = {"kmeans", "official", NULL};
  jp c = jp_key(root, "scales");
  json_t *scales = jp_value(&c, JP_OBJECT, JP_REQUIRED);
  if (!scales) return -1;
  const char *name; json_t *s;
  json_object_foreach(scales, name, s) {
    jp sc = jp_key(&c, name);
    if (!jp_value(&sc, JP_OBJECT, JP_REQUIRED)) return -1;
    jp_string(&sc, "about", JP_REQUIRED);
    jp_get(&sc, "judged", JP_BOOL, JP_OPTIONAL);
    jp_enum(&sc, "device", JP_REQUIRED, devices);
    jp_int(&sc, "image_size", JP_REQUIRED, 4, 4096);
    jp_int(&sc, "seeds", JP_REQUIRED, 1, 100);
    if (jp_failed(&sc) || check_name_map(&sc, "datasets", NULL, NULL) ||
        check_name_map(&sc, "models", models, "models.json"))
      return -1;
    // "fallback": {data set: stand-in} for data sets run only where a local copy is present
    if (json_object_get(s, "fallback") && check_name_map(&sc, "fallback", NULL, NULL)) return -1;
    jp pal = jp_key(&sc, "palette"), pre = jp_key(&sc, "pretrain"), ft = jp_key(&sc, "finetune"),
       feat = jp_key(&sc, "features"), probe = jp_key(&sc, "probe"), prep = jp_key(&sc, "prepare");
    jp_value(&pal, JP_OBJECT, JP_REQUIRED);
    jp_value(&pre, JP_OBJECT, JP_OPTIONAL);
    jp_value(&ft, JP_OBJECT, JP_REQUIRED);
    jp_value(&feat, JP_OBJECT, JP_REQUIRED);
    jp_value(&probe, JP_OBJECT, JP_OPTIONAL);
    if (jp_failed(&sc)) return -1;
    if (prep.v && !json_is_object(prep.v)) return jp_expected(&prep, "an object {dataset: {option: value}}");
    json_t *pd = jp_get(&sc, "pretrain_data", JP_STRING, JP_REQUIRED | JP_NULLABLE);
    if (jp_failed(&sc)) return -1;
    if (pd && !pre.v) return jp_fail(&sc, "pretrain_data is set, so a \"pretrain\" object is needed");
    if (!pd && !json_is_object(json_object_get(s, "released")))
      return jp_fail(&sc, "pretrain_data is null, so \"released\" must map models to checkpoints");
    if (jp_enum(&pal, "source", JP_REQUIRED, palettes) == 0) {  // kmeans
      jp_int(&pal, "k", JP_REQUIRED, 2, 65536);
      jp_int(&pal, "pixels", JP_REQUIRED, 1, 1LL << 40);
      jp_int(&pal, "iters", JP_REQUIRED, 1, 10000);
    }
    if (pre.v) {
      jp_int(&pre, "steps", JP_REQUIRED, 1, 1LL << 40);
      jp_int(&pre, "batch", JP_REQUIRED, 1, 1 << 20);
      jp_get(&pre, "lr", JP_NUMBER, JP_REQUIRED);
      jp_int(&pre, "warmup_steps", JP_REQUIRED, 0, 1LL << 40);
      jp_int(&pre, "checkpoint_every", JP_REQUIRED, 1, 1LL << 40);
      jp_int(&pre, "keep_every", JP_OPTIONAL, 1, 1LL << 40);
    }
    jp bl = jp_key(&sc, "baselines");  // the baselines every probe row gets (jobs_expand.c)
    jp_value(&bl, JP_ARRAY, JP_OPTIONAL);
    for (size_t b = 0; b < json_array_size(bl.v) && !jp_failed(&sc); b++) {
      static const char *const kinds[] = {"pixels", "untrained", NULL};
      jp e = jp_index(&bl, b);
      const char *k = json_string_value(e.v);
      bool known = false;
      for (int q = 0; k && kinds[q]; q++) known |= !strcmp(k, kinds[q]);
      if (!known) return jp_expected(&e, "\"pixels\" or \"untrained\"");
    }
    jp_int(&ft, "steps", JP_REQUIRED, 1, 1LL << 40);
    jp_int(&ft, "batch", JP_REQUIRED, 1, 1 << 20);
    jp_get(&ft, "lr", JP_NUMBER, JP_REQUIRED);
    jp_int(&probe, "max_labels_per_class", JP_OPTIONAL, 1, 1000000);
    jp_int(&feat, "batch", JP_REQUIRED, 1, 1 << 20);
    if (jp_failed(&sc)) return -1;
  }
  return 0;
}

static int check_commands(const jp *root) {
  static const char *const res[] = {"cpu", "gpu", "none", NULL};
  static const char *const metrics[] = {"none", "stdout", NULL};
  static const char *const needed[] = {"fetch", "prepare", "palette", "tokenize", "pretrain", "features",
                                       "probe", "finetune", "report", NULL};
  jp c = jp_key(root, "verbs"), emb = jp_key(root, "embedded_datasets");
  json_t *verbs = jp_value(&c, JP_OBJECT, JP_REQUIRED);
  if (!verbs) return -1;
  if (emb.v && !json_is_array(emb.v)) return jp_expected(&emb, "an array of strings");
  for (int i = 0; needed[i]; i++)
    if (!json_object_get(verbs, needed[i])) return jp_fail(&c, "the job verb \"%s\" has no entry", needed[i]);
  const char *name; json_t *v;
  json_object_foreach(verbs, name, v) {
    jp vc = jp_key(&c, name);
    if (!jp_value(&vc, JP_OBJECT, JP_REQUIRED)) return -1;
    jp_int(&vc, "version", JP_REQUIRED, 0, 1 << 30);
    jp_enum(&vc, "resources", JP_REQUIRED, res);
    jp_enum(&vc, "metrics", JP_OPTIONAL, metrics);
    jp_get(&vc, "resumable", JP_BOOL, JP_OPTIONAL);
    jp_int(&vc, "retries", JP_OPTIONAL, 0, 100);
    jp_string(&vc, "builtin", JP_OPTIONAL);
    jp_string(&vc, "resume_if", JP_OPTIONAL);
    if (jp_failed(&vc)) return -1;
    if (json_object_get(v, "builtin")) continue;
    jp run = jp_key(&vc, "run");
    if (!json_is_array(run.v) || !json_array_size(run.v)) return jp_expected(&run, "a non-empty array of argv arrays");
    for (size_t i = 0; i < json_array_size(run.v); i++) {
      jp argv = jp_index(&run, i);
      if (!json_is_array(argv.v) || !json_array_size(argv.v)) return jp_expected(&argv, "a non-empty argv array");
      for (size_t j = 0; j < json_array_size(argv.v); j++) {
        jp a = jp_index(&argv, j), args = jp_key(&a, "args");
        if (json_is_string(a.v)) continue;
        if (!json_is_object(a.v) || !json_is_string(json_object_get(a.v, "if")))
          return jp_expected(&a, "a string or {\"if\", \"args\"}");
        if (!json_is_array(args.v)) return jp_expected(&args, "an array of strings");
      }
    }
    jp env = jp_key(&vc, "env"), te = jp_key(&vc, "transient_exit");
    if (env.v && !json_is_object(env.v)) return jp_expected(&env, "an object of strings");
    if (te.v && !json_is_array(te.v)) return jp_expected(&te, "an array of exit codes");
  }
  return 0;
}

// Parses path and checks its "format" (1, the one this build reads); NULL with igpt_err.
static json_t *load_file(const char *path) {
  json_error_t e;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
  if (!root) { igpt_err("%s: line %d column %d: %s", path, e.line, e.column, e.text); return NULL; }
  jp_doc d = {.file = path};
  jp c = jp_root(&d, root), fmt = jp_key(&c, "format");
  if (!jp_value(&c, JP_OBJECT, JP_REQUIRED) || !json_is_integer(fmt.v) || json_integer_value(fmt.v) != 1) {
    if (!jp_failed(&c)) jp_expected(&fmt, "1 (the format this build reads)");
    json_decref(root);
    return NULL;
  }
  return root;
}

int suite_load(suite_t *s, const char *dir) {
  memset(s, 0, sizeof *s);
  char *d;
  if (dir) d = xstrdup(dir);
  else if (getenv("IGPT_SUITE")) d = xstrdup(getenv("IGPT_SUITE"));
  else if (getenv("IGPT_ROOT")) d = xasprintf("%s/suite", getenv("IGPT_ROOT"));
  else d = xstrdup("suite");
  char *abs = realpath(d, NULL);
  if (!abs) { igpt_err("%s: suite directory not found (set --suite or IGPT_SUITE)", d); free(d); return -1; }
  free(d);
  s->dir = abs;
  const char *names[4] = {"models.json", "tables.json", "scales.json", "commands.json"};
  json_t *roots[4] = {0};
  int rc = 0;
  for (int i = 0; i < 4 && rc == 0; i++) {
    char *file = xasprintf("%s/%s", abs, names[i]);
    roots[i] = load_file(file);
    if (!roots[i]) rc = -1;
    else {
      jp_doc d = {.file = file};
      jp c = jp_root(&d, roots[i]);
      json_t *models = roots[0] ? json_object_get(roots[0], "models") : NULL;
      switch (i) {
        case 0: rc = check_models(&c); break;
        case 1: rc = check_tables(&c, models); break;
        case 2: rc = check_scales(&c, models); break;
        case 3: rc = check_commands(&c); break;
      }
    }
    free(file);
  }
  if (rc == 0) {
    s->models = json_incref(json_object_get(roots[0], "models"));
    s->tables = json_incref(json_object_get(roots[1], "tables"));
    s->scales = json_incref(json_object_get(roots[2], "scales"));
    s->commands = json_incref(json_object_get(roots[3], "verbs"));
    json_t *emb = json_object_get(roots[3], "embedded_datasets");
    s->embedded = emb ? json_incref(emb) : json_array();
  }
  for (int i = 0; i < 4; i++) json_decref(roots[i]);
  if (rc) suite_free(s);
  return rc;
}

void suite_free(suite_t *s) {
  json_decref(s->tables); json_decref(s->models); json_decref(s->scales);
  json_decref(s->commands); json_decref(s->embedded);
  free(s->dir);
  memset(s, 0, sizeof *s);
}

static json_t *lookup(json_t *o, const char *name, const char *what, const char *file) {
  json_t *v = json_object_get(o, name);
  if (v) return v;
  char list[1024] = "";
  const char *k; json_t *x;
  json_object_foreach(o, k, x) {
    if (list[0]) strncat(list, ", ", sizeof list - strlen(list) - 1);
    strncat(list, k, sizeof list - strlen(list) - 1);
  }
  igpt_err("no %s \"%s\" in %s (known: %s)", what, name, file, list);
  return NULL;
}
json_t *suite_table(const suite_t *s, const char *n) { return lookup(s->tables, n, "table", "suite/tables.json"); }
json_t *suite_scale(const suite_t *s, const char *n) { return lookup(s->scales, n, "scale", "suite/scales.json"); }
json_t *suite_model(const suite_t *s, const char *n) { return lookup(s->models, n, "model", "suite/models.json"); }
json_t *suite_command(const suite_t *s, const char *v) { return lookup(s->commands, v, "job verb", "suite/commands.json"); }
