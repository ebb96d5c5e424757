// suite: loading and validating the suite's JSON files. See suite.h.
// Validation walks each file with a path string ("$.tables.x.rows[2].rule.kind") so every error
// names the file and where in it the wrong value sits.
#include "suite.h"
#include "util.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct { const char *file; char path[512]; } vctx;

static const char *type_name(const json_t *v) {
  if (!v) return "nothing (missing)";
  switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
  }
}

static int bad(const vctx *c, const char *field, const char *want, const json_t *found) {
  return igpt_err("%s: %s%s%s: expected %s, found %s", c->file, c->path, field ? "." : "",
                  field ? field : "", want, type_name(found));
}

// A child context for field or index.
static vctx sub(const vctx *c, const char *field, int index) {
  vctx d = *c;
  int n = field ? snprintf(d.path, sizeof d.path, "%s.%s", c->path, field)
                : snprintf(d.path, sizeof d.path, "%s[%d]", c->path, index);
  if (n >= (int)sizeof d.path) strcpy(d.path + sizeof d.path - 4, "...");  // deep paths end in "..."
  return d;
}

enum { OPT = 0, REQ = 1 };

static int want_object(const vctx *c, json_t *o, const char *f, int req, json_t **out) {
  *out = NULL;
  json_t *v = json_object_get(o, f);
  if (!v && !req) { *out = NULL; return 0; }
  if (!json_is_object(v)) return bad(c, f, "an object", v);
  *out = v;
  return 0;
}
static int want_string(const vctx *c, json_t *o, const char *f, int req) {
  json_t *v = json_object_get(o, f);
  if (!v && !req) return 0;
  return json_is_string(v) ? 0 : bad(c, f, "a string", v);
}
static int want_enum(const vctx *c, json_t *o, const char *f, int req, const char *const *opts) {
  json_t *v = json_object_get(o, f);
  if (!v && !req) return 0;
  if (json_is_string(v))
    for (int i = 0; opts[i]; i++)
      if (!strcmp(opts[i], json_string_value(v))) return 0;
  char want[256] = "one of";
  for (int i = 0; opts[i]; i++) {
    strncat(want, i ? ", \"" : " \"", sizeof want - strlen(want) - 1);
    strncat(want, opts[i], sizeof want - strlen(want) - 1);
    strncat(want, "\"", sizeof want - strlen(want) - 1);
  }
  if (json_is_string(v))
    return igpt_err("%s: %s.%s: expected %s, found \"%s\"", c->file, c->path, f, want, json_string_value(v));
  return bad(c, f, want, v);
}
static int want_int(const vctx *c, json_t *o, const char *f, int req, long lo, long hi) {
  json_t *v = json_object_get(o, f);
  if (!v && !req) return 0;
  if (!json_is_integer(v)) return bad(c, f, "an integer", v);
  long x = (long)json_integer_value(v);
  if (x < lo || x > hi)
    return igpt_err("%s: %s.%s: expected an integer in [%ld, %ld], found %ld", c->file, c->path, f, lo, hi, x);
  return 0;
}
static int want_number(const vctx *c, json_t *o, const char *f, int req, int nullable) {
  json_t *v = json_object_get(o, f);
  if (!v && !req) return 0;
  if (json_is_number(v) || (nullable && json_is_null(v))) return 0;
  return bad(c, f, nullable ? "a number or null" : "a number", v);
}
static int want_bool(const vctx *c, json_t *o, const char *f) {
  json_t *v = json_object_get(o, f);
  return (!v || json_is_boolean(v)) ? 0 : bad(c, f, "a boolean", v);
}

// rule: how reports/ judges the row against the published value (reports/results.schema.json);
// relation: for a row the paper prints no number for, how it must compare with another row.
static int check_rule(const vctx *c, json_t *rule) {
  static const char *const kinds[] = {"absolute", "sigma", "relative", NULL};
  return want_enum(c, rule, "kind", REQ, kinds) || want_number(c, rule, "tolerance", REQ, 0) ||
                 want_number(c, rule, "floor", OPT, 0) ? -1 : 0;
}

static int check_relation(const vctx *c, json_t *rel, json_t *row_ids) {
  static const char *const rels[] = {"below", "above", "equal", "not_below", NULL};
  if (want_enum(c, rel, "relation", REQ, rels) || want_string(c, rel, "row", REQ) ||
      want_number(c, rel, "min_gap", OPT, 0) || want_number(c, rel, "tolerance", OPT, 0))
    return -1;
  const char *other = json_string_value(json_object_get(rel, "row"));
  if (!json_object_get(row_ids, other))
    return igpt_err("%s: %s.row: names row \"%s\", which is not in this table", c->file, c->path, other);
  return 0;
}

static int check_row(const vctx *c, json_t *row, json_t *models, json_t *ids) {
  static const char *const objectives[] = {"ar", "bert", NULL};
  static const char *const evals[] = {"probe", "finetune", NULL};
  if (!json_is_object(row)) return bad(c, NULL, "an object", row);
  if (want_string(c, row, "id", REQ) || want_string(c, row, "label", OPT) || want_string(c, row, "dataset", REQ) ||
      want_int(c, row, "image_size", OPT, 4, 4096) ||
      want_string(c, row, "model", REQ) || want_enum(c, row, "objective", REQ, objectives) ||
      want_enum(c, row, "eval", REQ, evals) || want_string(c, row, "metric", REQ) || want_string(c, row, "unit", OPT) ||
      want_bool(c, row, "higher_is_better") || want_number(c, row, "published", REQ, 1) ||
      want_number(c, row, "published_std", OPT, 0) || want_string(c, row, "source", REQ) ||
      want_string(c, row, "published_model", OPT) || want_bool(c, row, "needs_manual_data") ||
      want_int(c, row, "masks", OPT, 1, 64))
    return -1;
  if (!json_object_get(row, "higher_is_better")) return bad(c, "higher_is_better", "a boolean", NULL);
  const char *model = json_string_value(json_object_get(row, "model"));
  if (!json_object_get(models, model))
    return igpt_err("%s: %s.model: \"%s\" is not in models.json", c->file, c->path, model);
  json_t *probe = NULL, *rule = NULL, *rel = NULL;
  if (want_object(c, row, "probe", OPT, &probe)) return -1;
  if (probe) {
    vctx p = sub(c, "probe", 0);
    if (want_int(&p, probe, "labels_per_class", OPT, 1, 1000000) || want_int(&p, probe, "subsets", OPT, 1, 1000) ||
        want_int(&p, probe, "concat_layers", OPT, 1, 64))
      return -1;
  }
  if (want_object(c, row, "rule", OPT, &rule) || want_object(c, row, "relation", OPT, &rel)) return -1;
  bool published = json_is_number(json_object_get(row, "published"));
  if (published && !rule) return bad(c, "rule", "an object (the row has a published value)", NULL);
  if (!published && !rel) return bad(c, "relation", "an object (the row has no published value)", NULL);
  vctx r = sub(c, rule ? "rule" : "relation", 0);
  if (rule && check_rule(&r, rule)) return -1;
  r = sub(c, "relation", 0);
  return rel ? check_relation(&r, rel, ids) : 0;
}

static int check_tables(const vctx *c0, json_t *root, json_t *models) {
  json_t *tables;
  if (want_object(c0, root, "tables", REQ, &tables)) return -1;
  vctx c = sub(c0, "tables", 0);
  const char *name; json_t *t;
  json_object_foreach(tables, name, t) {
    vctx tc = sub(&c, name, 0);
    if (!json_is_object(t)) return bad(&c, name, "an object", t);
    if (want_string(&tc, t, "title", REQ) || want_string(&tc, t, "source", REQ)) return -1;
    json_t *rows = json_object_get(t, "rows");
    if (!json_is_array(rows) || json_array_size(rows) == 0) return bad(&tc, "rows", "a non-empty array", rows);
    json_t *ids = json_object();
    size_t i; json_t *row;
    json_array_foreach(rows, i, row) {  // ids first, so that relation rules may name later rows
      json_t *id = json_is_object(row) ? json_object_get(row, "id") : NULL;
      if (json_is_string(id)) {
        if (json_object_get(ids, json_string_value(id))) {
          json_decref(ids);
          return igpt_err("%s: %s.rows[%zu].id: \"%s\" appears twice in the table", c.file, tc.path, i,
                          json_string_value(id));
        }
        json_object_set_new(ids, json_string_value(id), json_true());
      }
    }
    vctx rc = sub(&tc, "rows", 0);
    json_array_foreach(rows, i, row) {
      vctx one = sub(&rc, NULL, (int)i);
      if (check_row(&one, row, models, ids)) { json_decref(ids); return -1; }
    }
    json_decref(ids);
  }
  return 0;
}

static int check_models(const vctx *c0, json_t *root) {
  json_t *models;
  if (want_object(c0, root, "models", REQ, &models)) return -1;
  vctx c = sub(c0, "models", 0);
  const char *name; json_t *m;
  json_object_foreach(models, name, m) {
    vctx mc = sub(&c, name, 0);
    if (!json_is_object(m)) return bad(&c, name, "an object", m);
    if (want_int(&mc, m, "n_layer", REQ, 1, 1024) || want_int(&mc, m, "n_embd", REQ, 1, 1 << 16) ||
        want_int(&mc, m, "n_ctx", REQ, 1, 1 << 20) || want_int(&mc, m, "n_vocab", REQ, 2, 1 << 16))
      return -1;
    json_t *h = json_object_get(m, "n_head");
    if (!json_is_null(h) && want_int(&mc, m, "n_head", REQ, 1, 1024)) return -1;
    if (json_is_integer(h) && json_integer_value(json_object_get(m, "n_embd")) % json_integer_value(h))
      return igpt_err("%s: %s.n_head: n_embd must be a multiple of n_head", c.file, mc.path);
  }
  return 0;
}

// A map whose values are strings naming entries of `in` (or null when nullable).
static int check_name_map(const vctx *c, json_t *o, const char *f, json_t *in, const char *in_file) {
  json_t *m;
  if (want_object(c, o, f, REQ, &m)) return -1;
  const char *k; json_t *v;
  json_object_foreach(m, k, v) {
    vctx d = sub(c, f, 0);
    if (json_is_null(v)) continue;
    if (!json_is_string(v)) return bad(&d, k, "a string or null", v);
    if (in && !json_object_get(in, json_string_value(v)))
      return igpt_err("%s: %s.%s: \"%s\" is not in %s", c->file, d.path, k, json_string_value(v), in_file);
  }
  return 0;
}

static int check_scales(const vctx *c0, json_t *root, json_t *models) {
  static const char *const devices[] = {"cpu", "gpu", NULL};
  static const char *const palettes[] = {"kmeans", "official", NULL};
  json_t *scales;
  if (want_object(c0, root, "scales", REQ, &scales)) return -1;
  vctx c = sub(c0, "scales", 0);
  const char *name; json_t *s;
  json_object_foreach(scales, name, s) {
    vctx sc = sub(&c, name, 0);
    if (!json_is_object(s)) return bad(&c, name, "an object", s);
    json_t *pal = NULL, *pre = NULL, *ft = NULL, *feat = NULL, *probe = NULL;
    if (want_string(&sc, s, "about", REQ) || want_bool(&sc, s, "judged") ||
        want_enum(&sc, s, "device", REQ, devices) || want_int(&sc, s, "image_size", REQ, 4, 4096) ||
        want_int(&sc, s, "seeds", REQ, 1, 100) || check_name_map(&sc, s, "datasets", NULL, NULL) ||
        check_name_map(&sc, s, "models", models, "models.json") ||
        want_object(&sc, s, "palette", REQ, &pal) || want_object(&sc, s, "pretrain", OPT, &pre) ||
        want_object(&sc, s, "finetune", REQ, &ft) || want_object(&sc, s, "features", REQ, &feat) ||
        want_object(&sc, s, "probe", OPT, &probe))
      return -1;
    // "fallback": {data set: stand-in} for data sets run only where a local copy is present
    if (json_object_get(s, "fallback") && check_name_map(&sc, s, "fallback", NULL, NULL)) return -1;
    json_t *prep = json_object_get(s, "prepare");
    if (prep && !json_is_object(prep)) return bad(&sc, "prepare", "an object {dataset: {option: value}}", prep);
    json_t *pd = json_object_get(s, "pretrain_data");
    if (!json_is_string(pd) && !json_is_null(pd)) return bad(&sc, "pretrain_data", "a string or null", pd);
    if (json_is_string(pd) && !pre)
      return igpt_err("%s: %s: pretrain_data is set, so a \"pretrain\" object is needed", c.file, sc.path);
    if (json_is_null(pd) && !json_is_object(json_object_get(s, "released")))
      return igpt_err("%s: %s: pretrain_data is null, so \"released\" must map models to checkpoints", c.file, sc.path);
    vctx p = sub(&sc, "palette", 0);
    if (want_enum(&p, pal, "source", REQ, palettes)) return -1;
    if (!strcmp(json_string_value(json_object_get(pal, "source")), "kmeans") &&
        (want_int(&p, pal, "k", REQ, 2, 65536) || want_int(&p, pal, "pixels", REQ, 1, 1L << 40) ||
         want_int(&p, pal, "iters", REQ, 1, 10000)))
      return -1;
    if (pre) {
      vctx q = sub(&sc, "pretrain", 0);
      if (want_int(&q, pre, "steps", REQ, 1, 1L << 40) || want_int(&q, pre, "batch", REQ, 1, 1 << 20) ||
          want_number(&q, pre, "lr", REQ, 0) || want_int(&q, pre, "warmup_steps", REQ, 0, 1L << 40) ||
          want_int(&q, pre, "checkpoint_every", REQ, 1, 1L << 40))
        return -1;
    }
    vctx f = sub(&sc, "finetune", 0);
    if (want_int(&f, ft, "steps", REQ, 1, 1L << 40) || want_int(&f, ft, "batch", REQ, 1, 1 << 20) ||
        want_number(&f, ft, "lr", REQ, 0))
      return -1;
    vctx pr = sub(&sc, "probe", 0);
    if (probe && want_int(&pr, probe, "max_labels_per_class", OPT, 1, 1000000)) return -1;
    vctx fe = sub(&sc, "features", 0);
    if (want_int(&fe, feat, "batch", REQ, 1, 1 << 20)) return -1;
  }
  return 0;
}

static int check_commands(const vctx *c0, json_t *root) {
  static const char *const res[] = {"cpu", "gpu", "none", NULL};
  static const char *const metrics[] = {"none", "stdout", NULL};
  json_t *verbs = NULL;
  if (want_object(c0, root, "verbs", REQ, &verbs)) return -1;
  json_t *emb = json_object_get(root, "embedded_datasets");
  if (emb && !json_is_array(emb)) return bad(c0, "embedded_datasets", "an array of strings", emb);
  vctx c = sub(c0, "verbs", 0);
  static const char *const needed[] = {"fetch", "prepare", "palette", "tokenize", "pretrain", "features",
                                       "probe", "finetune", "report", NULL};
  for (int i = 0; needed[i]; i++)
    if (!json_object_get(verbs, needed[i]))
      return igpt_err("%s: %s: the job verb \"%s\" has no entry", c.file, c.path, needed[i]);
  const char *name; json_t *v;
  json_object_foreach(verbs, name, v) {
    vctx vc = sub(&c, name, 0);
    if (!json_is_object(v)) return bad(&c, name, "an object", v);
    if (want_int(&vc, v, "version", REQ, 0, 1 << 30) || want_enum(&vc, v, "resources", REQ, res) ||
        want_enum(&vc, v, "metrics", OPT, metrics) || want_bool(&vc, v, "resumable") ||
        want_int(&vc, v, "retries", OPT, 0, 100) || want_string(&vc, v, "builtin", OPT) ||
        want_string(&vc, v, "resume_if", OPT))
      return -1;
    json_t *run = json_object_get(v, "run");
    if (json_object_get(v, "builtin")) continue;
    if (!json_is_array(run) || !json_array_size(run)) return bad(&vc, "run", "a non-empty array of argv arrays", run);
    size_t i; json_t *argv;
    json_array_foreach(run, i, argv) {
      vctx ac = sub(&vc, "run", 0);
      vctx one = sub(&ac, NULL, (int)i);
      if (!json_is_array(argv) || !json_array_size(argv)) return bad(&one, NULL, "a non-empty argv array", argv);
      size_t j; json_t *a;
      json_array_foreach(argv, j, a) {
        vctx e = sub(&one, NULL, (int)j);
        if (json_is_string(a)) continue;
        if (!json_is_object(a) || want_string(&e, a, "if", REQ)) return bad(&e, NULL, "a string or {\"if\", \"args\"}", a);
        json_t *args = json_object_get(a, "args");
        if (!json_is_array(args)) return bad(&e, "args", "an array of strings", args);
      }
    }
    json_t *env = json_object_get(v, "env");
    if (env && !json_is_object(env)) return bad(&vc, "env", "an object of strings", env);
    json_t *te = json_object_get(v, "transient_exit");
    if (te && !json_is_array(te)) return bad(&vc, "transient_exit", "an array of exit codes", te);
  }
  return 0;
}

static json_t *load_file(const char *dir, const char *name, char **file_out) {
  char *path = xasprintf("%s/%s", dir, name);
  json_error_t e;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
  if (!root) igpt_err("%s: line %d column %d: %s", path, e.line, e.column, e.text);
  else if (!json_is_object(root) || !json_is_integer(json_object_get(root, "format")) ||
           json_integer_value(json_object_get(root, "format")) != 1) {
    igpt_err("%s: $.format: expected 1 (the format this build reads)", path);
    json_decref(root);
    root = NULL;
  }
  *file_out = path;
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
    char *file;
    roots[i] = load_file(abs, names[i], &file);
    if (!roots[i]) rc = -1;
    else {
      vctx c = {file, "$"};
      json_t *models = roots[0] ? json_object_get(roots[0], "models") : NULL;
      switch (i) {
        case 0: rc = check_models(&c, roots[i]); break;
        case 1: rc = check_tables(&c, roots[i], models); break;
        case 2: rc = check_scales(&c, roots[i], models); break;
        case 3: rc = check_commands(&c, roots[i]); break;
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
