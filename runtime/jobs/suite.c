// suite: loading and validating the suite's JSON files. See suite.h.
// Validation walks each file with a jsonpath context (runtime/base/jsonpath.h), so every error names
// the file and where in it the wrong value sits ("$.tables.x.rows[2].rule.kind"). Each file is
// checked alone (types, ranges, unknown keys), then the files against each other and against
// what runs them (check_across): a bad suite fails when it loads, before any job runs.
#include "jobs/suite.h"
#include "datasets/registry.h"
#include "base/jsonpath.h"
#include "base/util.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// What jobs_expand.c's functions give each verb's jobs: a new parameter or input goes into both
// (the real-suite test checks every expanded job against this table).
static const job_vocab vocab[] = {
    {"fetch", (const char *const[]){NULL}, (const char *const[]){"dataset", NULL}},
    {"prepare", (const char *const[]){"download", NULL},
     (const char *const[]){"dataset", "image_size", "n_train", "n_test", NULL}},
    {"palette", (const char *const[]){"images", "file", NULL},
     (const char *const[]){"source", "k", "pixels", "iters", "seed", NULL}},
    {"tokenize", (const char *const[]){"images", "palette", NULL}, (const char *const[]){"dataset", "image_size", NULL}},
    {"pretrain", (const char *const[]){"tokens", NULL},
     (const char *const[]){"config", "steps", "batch", "lr", "warmup_steps", "checkpoint_every", "keep_every", "seed",
                           NULL}},
    {"import", (const char *const[]){"checkpoint", NULL}, (const char *const[]){"checkpoint", NULL}},
    {"standin", (const char *const[]){"model", NULL}, (const char *const[]){"checkpoint", "shards", NULL}},
    {"loss", (const char *const[]){"model", "tokens", NULL}, (const char *const[]){"batch", "seed", "checkpoint", NULL}},
    {"pixels", (const char *const[]){"images", NULL}, (const char *const[]){NULL}},
    {"samples", (const char *const[]){"model", "palette", "images", NULL},
     (const char *const[]){"n", "seed", "rows", "completions", NULL}},
    {"features", (const char *const[]){"model", "tokens", NULL},
     (const char *const[]){"batch", "seed", "masks", "train_masks", "checkpoint", NULL}},
    {"probe", (const char *const[]){"features", NULL},
     (const char *const[]){"seed", "labels_per_class", "subsets", "concat_layers", "concat", "layers", "masks", NULL}},
    {"finetune", (const char *const[]){"model", "tokens", "images", "palette", "features", NULL},
     (const char *const[]){"steps", "batch", "lr", "head_lr", "head_init", "no_augment", "loss", "warmup", "seed", "eval_every", "patience", NULL}},
    {"report", (const char *const[]){NULL}, (const char *const[]){"table", "scale", "definition", "scale_definition", NULL}},
};

const job_vocab *job_vocab_of(const char *verb) {
  for (size_t i = 0; i < sizeof vocab / sizeof vocab[0]; i++)
    if (!strcmp(vocab[i].verb, verb)) return &vocab[i];
  return NULL;
}

// rule: how reports/ judges the row against the published value (reports/results.schema.json);
// relation: for a row the paper prints no number for, how it must compare with another row.
static int check_rule(const jp *c) {
  static const char *const kinds[] = {"absolute", "sigma", "relative", NULL};
  static const char *const keys[] = {"kind", "tolerance", "floor", NULL};
  jp_keys(c, keys);
  jp_enum(c, "kind", JP_REQUIRED, kinds);
  jp_get(c, "tolerance", JP_NUMBER, JP_REQUIRED);
  jp_get(c, "floor", JP_NUMBER, JP_OPTIONAL);
  return jp_failed(c) ? -1 : 0;
}

static int check_relation(const jp *c, json_t *row_ids) {
  static const char *const rels[] = {"below", "above", "equal", "not_below", NULL};
  static const char *const keys[] = {"relation", "row", "min_gap", "tolerance", NULL};
  jp_keys(c, keys);
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
  static const char *const evals[] = {"probe", "finetune", "loss", NULL};
  static const char *const keys[] = {"id", "label", "dataset", "image_size", "model", "objective", "eval",
                                     "metric", "unit", "higher_is_better", "published", "published_std",
                                     "source", "published_model", "needs_manual_data", "masks", "probe",
                                     "rule", "relation", NULL};
  static const char *const probe_keys[] = {"labels_per_class", "subsets", "concat_layers", NULL};
  if (!jp_value(c, JP_OBJECT, JP_REQUIRED)) return -1;
  jp_keys(c, keys);
  jp_string(c, "id", JP_REQUIRED);
  jp_string(c, "label", JP_OPTIONAL);
  jp_string(c, "dataset", JP_REQUIRED);
  jp_int(c, "image_size", JP_OPTIONAL, 4, 1024);  // n_ctx = size^2 <= 2^20 (model_config)
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
    jp_keys(&probe, probe_keys);
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

// The baselines a row can get (jobs_expand.c) and a claim can compare with.
static const char *const baseline_kinds[] = {"pixels", "untrained", "probe", NULL};

// "claims": the paper's findings the table tests (reports/claims.c evaluates them): each names its
// test and what that test needs, rows by their ids in this table.
static int check_claims(const jp *tc, json_t *ids) {
  static const char *const tests[] = {"baseline", "best-layer-not-last", "rows", "increasing", "checkpoints", "gap", NULL};
  static const char *const keys[] = {"id", "test", "claim", "source", "baseline", "eval", "min_blocks", "one_layer", "rows",
                                     "a", "b", "c", "d", "relation", "tolerance", NULL};
  static const char *const directions[] = {"above", "below", NULL};
  static const char *const evals[] = {"probe", "finetune", NULL};
  static const char *const rels[] = {"below", "above", "equal", "not_below", NULL};
  jp cl = jp_key(tc, "claims");
  if (!cl.v) return 0;
  if (!jp_value(&cl, JP_ARRAY, JP_REQUIRED)) return -1;
  for (size_t i = 0; i < json_array_size(cl.v); i++) {
    jp c = jp_index(&cl, i);
    if (!jp_value(&c, JP_OBJECT, JP_REQUIRED) || jp_keys(&c, keys)) return -1;
    jp_string(&c, "id", JP_REQUIRED | JP_NONEMPTY);
    jp_string(&c, "claim", JP_REQUIRED | JP_NONEMPTY);
    jp_string(&c, "source", JP_REQUIRED);
    int ti = jp_enum(&c, "test", JP_REQUIRED, tests);
    if (jp_failed(&c) || ti < 0) return -1;
    const char *t = tests[ti];
    if (!strcmp(t, "baseline")) {  // of the rows of one kind: probe rows (the default) or fine-tune rows
      jp_enum(&c, "baseline", JP_REQUIRED, baseline_kinds);
      jp_enum(&c, "eval", JP_OPTIONAL, evals);
      jp_get(&c, "one_layer", JP_BOOL, JP_OPTIONAL);
    }
    if (!strcmp(t, "best-layer-not-last")) jp_int(&c, "min_blocks", JP_REQUIRED, 1, 1000);
    bool gap = !strcmp(t, "gap");  // (a - b) against (c - d)
    if (!strcmp(t, "rows") || gap) {
      if (gap) jp_enum(&c, "relation", JP_REQUIRED, directions);
      else {
        jp_enum(&c, "relation", JP_REQUIRED, rels);
        jp_get(&c, "tolerance", JP_NUMBER, JP_OPTIONAL);
      }
      const char *ab[] = {"a", "b", "c", "d"};
      for (int k = 0; k < (gap ? 4 : 2); k++) {
        const char *id = jp_string(&c, ab[k], JP_REQUIRED);
        if (id && !json_object_get(ids, id)) {
          jp e = jp_key(&c, ab[k]);
          return jp_fail(&e, "\"%s\" is no row of this table", id);
        }
      }
    }
    if (!strcmp(t, "increasing")) {
      jp r = jp_key(&c, "rows");
      if (!jp_value(&r, JP_ARRAY, JP_REQUIRED | JP_NONEMPTY)) return -1;
      for (size_t k = 0; k < json_array_size(r.v); k++) {
        jp e = jp_index(&r, k);
        const char *id = json_string_value(e.v);
        if (!id) return jp_expected(&e, "a row id");
        if (!json_object_get(ids, id)) return jp_fail(&e, "\"%s\" is no row of this table", id);
      }
    }
    if (jp_failed(&c)) return -1;
  }
  return 0;
}

// "context": the paper's numbers of other methods, shown beside ours as context (never judged).
static int check_context(const jp *tc) {
  static const char *const keys[] = {"method", "dataset", "value", "source", NULL};
  jp cx = jp_key(tc, "context");
  if (!cx.v) return 0;
  if (!jp_value(&cx, JP_ARRAY, JP_REQUIRED)) return -1;
  for (size_t i = 0; i < json_array_size(cx.v); i++) {
    jp e = jp_index(&cx, i);
    if (!jp_value(&e, JP_OBJECT, JP_REQUIRED) || jp_keys(&e, keys)) return -1;
    jp_string(&e, "method", JP_REQUIRED | JP_NONEMPTY);
    jp_string(&e, "dataset", JP_REQUIRED | JP_NONEMPTY);
    jp_get(&e, "value", JP_NUMBER, JP_REQUIRED);
    jp_string(&e, "source", JP_REQUIRED);
    if (jp_failed(&e)) return -1;
  }
  return 0;
}

static int check_tables(const jp *root, json_t *models) {
  static const char *const top[] = {"format", "about", "tables", NULL};
  static const char *const table_keys[] = {"title", "source", "rows", "claims", "context", "samples", NULL};
  if (jp_keys(root, top)) return -1;
  jp c = jp_key(root, "tables");
  json_t *tables = jp_value(&c, JP_OBJECT, JP_REQUIRED);
  if (!tables) return -1;
  const char *name; json_t *t;
  json_object_foreach(tables, name, t) {
    jp tc = jp_key(&c, name);
    if (!jp_value(&tc, JP_OBJECT, JP_REQUIRED)) return -1;
    jp_keys(&tc, table_keys);
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
    jp_get(&tc, "samples", JP_BOOL, JP_OPTIONAL);
    if (jp_failed(&tc) || check_claims(&tc, ids) || check_context(&tc)) { json_decref(ids); return -1; }
    json_decref(ids);
  }
  return 0;
}

static int check_models(const jp *root) {
  static const char *const top[] = {"format", "about", "models", NULL};
  static const char *const keys[] = {"n_layer", "n_embd", "n_head", "n_ctx", "n_vocab", "params_published",
                                     "source", NULL};
  if (jp_keys(root, top)) return -1;
  jp c = jp_key(root, "models");
  json_t *models = jp_value(&c, JP_OBJECT, JP_REQUIRED);
  if (!models) return -1;
  const char *name; json_t *m;
  json_object_foreach(models, name, m) {
    jp mc = jp_key(&c, name);
    if (!jp_value(&mc, JP_OBJECT, JP_REQUIRED)) return -1;
    jp_keys(&mc, keys);
    jp_string(&mc, "params_published", JP_OPTIONAL);
    jp_string(&mc, "source", JP_OPTIONAL);
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

// "prepare": {data set: {option: value}}, the options being prepare job parameters (n_train, ...).
static int check_prepare_options(const jp *prep) {
  if (!json_is_object(prep->v)) return jp_expected(prep, "an object {dataset: {option: value}}");
  const job_vocab *v = job_vocab_of("prepare");
  const char *ds; json_t *opts;
  json_object_foreach((json_t *)prep->v, ds, opts) {
    jp o = jp_key(prep, ds);
    if (!jp_value(&o, JP_OBJECT, JP_REQUIRED)) return -1;
    const char *k; json_t *x;
    json_object_foreach(opts, k, x) {
      jp e = jp_key(&o, k);
      // the data set and the image size come from the table row, the rest are options
      bool ok = false;
      char allowed[256] = "";
      for (int i = 0; v->params[i]; i++) {
        if (!strcmp(v->params[i], "dataset") || !strcmp(v->params[i], "image_size")) continue;
        ok |= !strcmp(v->params[i], k);
        snprintf(allowed + strlen(allowed), sizeof allowed - strlen(allowed), "%s%s", allowed[0] ? ", " : "",
                 v->params[i]);
      }
      if (!ok) return jp_fail(&e, "not a prepare option (allowed: %s)", allowed);
      if (!jp_value(&e, JP_INTEGER, JP_REQUIRED)) return -1;
    }
  }
  return 0;
}

// "slurm": per job verb (over "default") what a job asks a Slurm cluster for; jobs_slurm.c reads
// the values, checked here so that a bad entry fails before any job runs.
static int check_slurm(const jp *sc) {
  static const char *const fields[] = {"ranks", "gpus_per_rank", "cpus", "mem", "time", NULL};
  jp sl = jp_key(sc, "slurm");
  json_t *o = jp_value(&sl, JP_OBJECT, JP_REQUIRED);
  if (!o) return -1;
  const char *verb; json_t *v;
  json_object_foreach(o, verb, v) {
    jp e = jp_key(&sl, verb);
    if (!jp_value(&e, JP_OBJECT, JP_REQUIRED) || jp_keys(&e, fields)) return -1;
    jp_int(&e, "ranks", JP_OPTIONAL, 1, 100000);
    jp_int(&e, "gpus_per_rank", JP_OPTIONAL, 0, 64);
    jp_int(&e, "cpus", JP_OPTIONAL, 1, 4096);
    jp_string(&e, "mem", JP_OPTIONAL);
    jp_string(&e, "time", JP_OPTIONAL);
    if (jp_failed(&e)) return -1;
  }
  return 0;
}

static int check_scales(const jp *root, json_t *models) {
  static const char *const devices[] = {"cpu", "gpu", NULL};
  static const char *const palettes[] = {"kmeans", "official", NULL};
  static const char *const top[] = {"format", "about", "scales", NULL};
  static const char *const keys[] = {"about", "judged", "device", "image_size", "prepare", "datasets", "fallback",
                                     "pretrain_data", "released", "models", "palette", "pretrain", "finetune",
                                     "features", "probe", "seeds", "slurm", "standin", "baselines", NULL};
  static const char *const pal_keys[] = {"source", "k", "pixels", "iters", NULL};
  static const char *const pre_keys[] = {"steps", "batch", "lr", "warmup_steps", "checkpoint_every", "keep_every",
                                         NULL};
  static const char *const ft_keys[] = {"steps", "batch", "lr", "head_lr", "head_init", "augment", "loss", "warmup",
                                        "eval_every", "patience", NULL};
  static const char *const head_inits[] = {"zero", "probe", NULL};
  static const char *const ft_losses[] = {"joint", "clf", NULL};
  static const char *const feat_keys[] = {"batch", NULL};
  static const char *const probe_keys[] = {"max_labels_per_class", "concat_blocks", "checkpoint_every", NULL};
  if (jp_keys(root, top)) return -1;
  jp c = jp_key(root, "scales");
  json_t *scales = jp_value(&c, JP_OBJECT, JP_REQUIRED);
  if (!scales) return -1;
  const char *name; json_t *s;
  json_object_foreach(scales, name, s) {
    jp sc = jp_key(&c, name);
    if (!jp_value(&sc, JP_OBJECT, JP_REQUIRED)) return -1;
    jp_keys(&sc, keys);
    jp_string(&sc, "about", JP_REQUIRED);
    jp_get(&sc, "judged", JP_BOOL, JP_OPTIONAL);
    jp_get(&sc, "standin", JP_BOOL, JP_OPTIONAL);  // released-standin: checkpoints made here (jobs_expand.c)
    jp_enum(&sc, "device", JP_REQUIRED, devices);
    jp_int(&sc, "image_size", JP_REQUIRED, 4, 1024);  // n_ctx = size^2 <= 2^20 (model_config)
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
    if (prep.v && check_prepare_options(&prep)) return -1;
    if (json_object_get(s, "slurm") && check_slurm(&sc)) return -1;
    if (json_object_get(s, "released") && check_name_map(&sc, "released", NULL, NULL)) return -1;
    json_t *pd = jp_get(&sc, "pretrain_data", JP_STRING, JP_REQUIRED | JP_NULLABLE);
    if (jp_failed(&sc)) return -1;
    if (pd && !pre.v) return jp_fail(&sc, "pretrain_data is set, so a \"pretrain\" object is needed");
    if (!pd && !json_is_object(json_object_get(s, "released")))
      return jp_fail(&sc, "pretrain_data is null, so \"released\" must map models to checkpoints");
    jp_keys(&pal, pal_keys);
    if (pre.v) jp_keys(&pre, pre_keys);
    jp_keys(&ft, ft_keys);
    jp_keys(&feat, feat_keys);
    if (probe.v) jp_keys(&probe, probe_keys);
    if (jp_failed(&sc)) return -1;
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
    jp bl = jp_key(&sc, "baselines");  // the baselines every probe (fine-tune: probe) row gets (jobs_expand.c)
    jp_value(&bl, JP_ARRAY, JP_OPTIONAL);
    for (size_t b = 0; b < json_array_size(bl.v) && !jp_failed(&sc); b++) {
      jp e = jp_index(&bl, b);
      const char *k = json_string_value(e.v);
      bool known = false;
      for (int q = 0; k && baseline_kinds[q]; q++) known |= !strcmp(k, baseline_kinds[q]);
      if (!known) return jp_expected(&e, "\"pixels\", \"untrained\" or \"probe\"");
    }
    jp_int(&ft, "steps", JP_REQUIRED, 1, 1LL << 40);
    jp_int(&ft, "batch", JP_REQUIRED, 1, 1 << 20);
    jp_get(&ft, "lr", JP_NUMBER, JP_REQUIRED);
    jp_int(&ft, "eval_every", JP_OPTIONAL, 1, 1LL << 40);
    jp_int(&ft, "patience", JP_OPTIONAL, 1, 1LL << 30);
    jp_get(&ft, "head_lr", JP_NUMBER, JP_OPTIONAL);
    jp_enum(&ft, "head_init", JP_OPTIONAL, head_inits);
    jp_enum(&ft, "loss", JP_OPTIONAL, ft_losses);
    jp_int(&ft, "warmup", JP_OPTIONAL, 0, 1LL << 40);
    jp_get(&ft, "augment", JP_BOOL, JP_OPTIONAL);
    jp_int(&probe, "max_labels_per_class", JP_OPTIONAL, 1, 1000000);
    jp_get(&probe, "concat_blocks", JP_BOOL, JP_OPTIONAL);
    jp_int(&probe, "checkpoint_every", JP_OPTIONAL, 1, 1LL << 40);
    {  // the checkpoints "lower loss, better probe" probes: some of those the pretraining keeps
      json_t *pce = json_object_get(probe.v, "checkpoint_every"), *ke = json_object_get(pre.v, "keep_every");
      if (pce && !jp_failed(&probe) && (!ke || json_integer_value(pce) % json_integer_value(ke))) {
        jp e = jp_key(&probe, "checkpoint_every");
        return jp_fail(&e, "must be a multiple of pretrain.keep_every (%lld), the checkpoints that are kept",
                       ke ? (long long)json_integer_value(ke) : 0LL);
      }
    }
    jp_int(&feat, "batch", JP_REQUIRED, 1, 1 << 20);
    if (jp_failed(&sc)) return -1;
  }
  return 0;
}

static bool listed(const char *const *names, const char *s, size_t n) {
  for (int i = 0; names[i]; i++)
    if (strlen(names[i]) == n && !strncmp(names[i], s, n)) return true;
  return false;
}

static void join(char *out, size_t cap, const char *const *names) {
  out[0] = 0;
  for (int i = 0; names[i]; i++)
    snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? ", " : "", names[i]);
  if (!out[0]) snprintf(out, cap, "none");
}

// NAME of an {in:NAME} / {p:NAME} / {json:NAME} placeholder or an in:/p:/!p: condition (n bytes at
// s) among the job's inputs or parameters, else an error at c.
static int check_name(const jp *c, const job_vocab *v, bool input, const char *s, size_t n) {
  const char *const *names = input ? v->inputs : v->params;
  if (listed(names, s, n)) return 0;
  char known[512];
  join(known, sizeof known, names);
  return jp_fail(c, "the %s job has no %s \"%.*s\" (its %s: %s)", v->verb, input ? "input" : "parameter",
                 (int)n, s, input ? "inputs" : "parameters", known);
}

// The placeholders of one template string (job_argv fills them): {out} {suite} {igpt} {cache}
// {key} {device} {in:INPUT} {p:PARAM} {json:PARAM}. Braces around anything that is not a word (JSON text,
// shell code with spaces or quotes) are literal; a word that is no placeholder is an error.
static int check_template(const jp *c, const char *t, const job_vocab *v) {
  static const char *const fixed[] = {"out", "suite", "igpt", "cache", "key", "device", NULL};
  static const char *const word = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-:";
  for (const char *p = strchr(t, '{'); p; p = strchr(p + 1, '{')) {
    const char *name = p + 1, *close = strchr(name, '}');
    if (!close) break;
    size_t n = (size_t)(close - name);
    if (!n || strspn(name, word) != n) continue;
    if (listed(fixed, name, n)) continue;
    if (n > 3 && !strncmp(name, "in:", 3)) { if (check_name(c, v, true, name + 3, n - 3)) return -1; continue; }
    if (n > 2 && !strncmp(name, "p:", 2)) { if (check_name(c, v, false, name + 2, n - 2)) return -1; continue; }
    if (n > 5 && !strncmp(name, "json:", 5)) { if (check_name(c, v, false, name + 5, n - 5)) return -1; continue; }
    return jp_fail(c, "{%.*s} is not a placeholder (known: {out}, {suite}, {igpt}, {cache}, {key}, {device}, {in:INPUT}, "
                   "{p:PARAM}, {json:PARAM})", (int)n, name);
  }
  return 0;
}

// An argv template: strings, and {"if": COND, "args": [...]} with COND resume, p:NAME, !p:NAME or in:NAME.
static int check_argv(const jp *argv, const job_vocab *v) {
  static const char *const keys[] = {"if", "args", NULL};
  for (size_t j = 0; j < json_array_size(argv->v); j++) {
    jp a = jp_index(argv, j), args = jp_key(&a, "args"), cond = jp_key(&a, "if");
    if (json_is_string(a.v)) {
      if (check_template(&a, json_string_value(a.v), v)) return -1;
      continue;
    }
    if (!json_is_object(a.v) || !json_is_string(cond.v)) return jp_expected(&a, "a string or {\"if\", \"args\"}");
    if (jp_keys(&a, keys)) return -1;
    if (!json_is_array(args.v)) return jp_expected(&args, "an array of strings");
    const char *k = json_string_value(cond.v);
    size_t n = strlen(k);
    if (!strcmp(k, "resume")) {}
    else if (!strncmp(k, "in:", 3)) { if (check_name(&cond, v, true, k + 3, n - 3)) return -1; }
    else if (!strncmp(k, "p:", 2)) { if (check_name(&cond, v, false, k + 2, n - 2)) return -1; }
    else if (!strncmp(k, "!p:", 3)) { if (check_name(&cond, v, false, k + 3, n - 3)) return -1; }
    else return jp_fail(&cond, "\"%s\" is not a condition (known: resume, p:PARAM, !p:PARAM, in:INPUT)", k);
    if (check_argv(&args, v)) return -1;
  }
  return 0;
}

// {name: template} (env, links): every value a template string.
static int check_template_map(const jp *m, const job_vocab *v) {
  if (!m->v) return 0;
  if (!json_is_object(m->v)) return jp_expected(m, "an object of strings");
  const char *k; json_t *x;
  json_object_foreach((json_t *)m->v, k, x) {
    jp e = jp_key(m, k);
    if (!jp_value(&e, JP_STRING, JP_REQUIRED) || check_template(&e, json_string_value(x), v)) return -1;
  }
  return 0;
}

static int check_commands(const jp *root) {
  static const char *const res[] = {"cpu", "gpu", "none", NULL};
  static const char *const metrics[] = {"none", "stdout", NULL};
  static const char *const needed[] = {"fetch", "prepare", "palette", "tokenize", "pretrain", "features",
                                       "probe", "finetune", "report", NULL};
  static const char *const top[] = {"format", "about", "embedded_datasets", "verbs", NULL};
  static const char *const keys[] = {"version", "resources", "metrics", "resumable", "retries", "builtin",
                                     "resume_if", "run", "env", "links", "transient_exit", "metric_paths",
                                     "metric_scale", NULL};
  if (jp_keys(root, top)) return -1;
  jp c = jp_key(root, "verbs"), emb = jp_key(root, "embedded_datasets");
  json_t *verbs = jp_value(&c, JP_OBJECT, JP_REQUIRED);
  if (!verbs) return -1;
  if (emb.v && !json_is_array(emb.v)) return jp_expected(&emb, "an array of strings");
  for (size_t i = 0; i < json_array_size(emb.v); i++) {
    jp e = jp_index(&emb, i);
    if (!jp_value(&e, JP_STRING, JP_REQUIRED | JP_NONEMPTY)) return -1;
  }
  for (int i = 0; needed[i]; i++)
    if (!json_object_get(verbs, needed[i])) return jp_fail(&c, "the job verb \"%s\" has no entry", needed[i]);
  const char *name; json_t *v;
  json_object_foreach(verbs, name, v) {
    jp vc = jp_key(&c, name);
    const job_vocab *voc = job_vocab_of(name);
    if (!voc) {
      char known[512] = "";
      for (size_t i = 0; i < sizeof vocab / sizeof vocab[0]; i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", vocab[i].verb);
      return jp_fail(&vc, "not a job verb (the table's graph has these jobs: %s)", known);
    }
    if (!jp_value(&vc, JP_OBJECT, JP_REQUIRED)) return -1;
    jp_keys(&vc, keys);
    jp_int(&vc, "version", JP_REQUIRED, 0, 1 << 30);
    jp_enum(&vc, "resources", JP_REQUIRED, res);
    jp_enum(&vc, "metrics", JP_OPTIONAL, metrics);
    jp_get(&vc, "resumable", JP_BOOL, JP_OPTIONAL);
    jp_int(&vc, "retries", JP_OPTIONAL, 0, 100);
    jp_string(&vc, "builtin", JP_OPTIONAL);
    jp_string(&vc, "resume_if", JP_OPTIONAL);
    jp_get(&vc, "metric_paths", JP_OBJECT, JP_OPTIONAL);
    jp_get(&vc, "metric_scale", JP_OBJECT, JP_OPTIONAL);
    if (jp_failed(&vc)) return -1;
    if (json_object_get(v, "builtin")) continue;
    jp run = jp_key(&vc, "run");
    if (!json_is_array(run.v) || !json_array_size(run.v)) return jp_expected(&run, "a non-empty array of argv arrays");
    for (size_t i = 0; i < json_array_size(run.v); i++) {
      jp argv = jp_index(&run, i);
      if (!json_is_array(argv.v) || !json_array_size(argv.v)) return jp_expected(&argv, "a non-empty argv array");
      if (check_argv(&argv, voc)) return -1;
    }
    jp env = jp_key(&vc, "env"), links = jp_key(&vc, "links"), te = jp_key(&vc, "transient_exit");
    if (check_template_map(&env, voc) || check_template_map(&links, voc)) return -1;
    if (te.v && !json_is_array(te.v)) return jp_expected(&te, "an array of exit codes");
  }
  return 0;
}

// ---- the files against each other and against what runs them ----------------------------------

// Does the verb's every command run an igpt verb (a first word without '/', as job_argv reads it)?
// Then the suite's data set names and image sizes must be ones igpt itself takes; a suite whose
// fetch or prepare is another program (the orchestrator tests' stand-ins) names its own.
static bool runs_igpt(json_t *verbs, const char *verb) {
  json_t *run = json_object_get(json_object_get(verbs, verb), "run");
  size_t i; json_t *argv;
  json_array_foreach(run, i, argv) {
    const char *w = json_string_value(json_array_get(argv, 0));
    if (!w || strchr(w, '/') || w[0] == '{') return false;
  }
  return json_array_size(run) > 0;
}

static bool embedded_set(json_t *embedded, const char *name) {
  size_t i; json_t *v;
  json_array_foreach(embedded, i, v) if (!strcmp(json_string_value(v), name)) return true;
  return false;
}

typedef struct {
  json_t *models, *tables, *scales, *verbs, *embedded;
  const char *models_file, *tables_file, *scales_file;
  registry reg;      // loaded when fetch is igpt's own
  bool have_reg;
} cross;

// A data set a scale names (datasets, fallback, pretrain_data, released, prepare) must be one
// `igpt fetch` knows (datasets/registry.json) or one the suite embeds.
static int check_known_dataset(cross *x, const jp *at, const char *name) {
  if (!x->have_reg || embedded_set(x->embedded, name) || registry_find(&x->reg, name)) return 0;
  return jp_fail(at, "%s (nor in commands.json's embedded_datasets)", igpt_errmsg());
}

static int check_scale_datasets(cross *x, const jp *sc) {
  static const char *const maps[] = {"datasets", "fallback", "released", "prepare", NULL};
  for (int i = 0; maps[i]; i++) {
    jp m = jp_key(sc, maps[i]);
    const char *k; json_t *v;
    json_object_foreach((json_t *)m.v, k, v) {
      jp e = jp_key(&m, k);
      if (i == 1 && check_known_dataset(x, &e, k)) return -1;  // the fallback's key runs too
      if (i == 3 && check_known_dataset(x, &e, k)) return -1;
      if (json_is_string(v) && check_known_dataset(x, &e, json_string_value(v))) return -1;
    }
  }
  jp pd = jp_key(sc, "pretrain_data");
  if (json_is_string(pd.v) && check_known_dataset(x, &pd, json_string_value(pd.v))) return -1;
  return 0;
}

// The scale's palette is the vocabulary of every model it runs: k colours, n_vocab tokens.
static int check_palette_vocab(cross *x, const jp *sc) {
  json_t *pal = json_object_get(sc->v, "palette");
  bool official = !strcmp(json_string_value(json_object_get(pal, "source")), "official");
  json_int_t k = official ? 512 : json_integer_value(json_object_get(pal, "k"));  // kmeans_centers.npy: 512
  jp m = jp_key(sc, "models");
  const char *paper; json_t *run;
  json_object_foreach((json_t *)m.v, paper, run) {
    if (!json_is_string(run)) continue;
    json_int_t V = json_integer_value(json_object_get(json_object_get(x->models, json_string_value(run)), "n_vocab"));
    jp e = jp_key(&m, paper);
    if (V != k)
      return jp_fail(&e, "model \"%s\" has n_vocab %" JSON_INTEGER_FORMAT " (%s), but the scale's palette has %"
                     JSON_INTEGER_FORMAT " colours (%s): the tokens would not fit the model", json_string_value(run), V,
                     x->models_file, k, official ? "the official kmeans_centers.npy" : "palette.k");
  }
  return 0;
}

// Every row's data set is one each scale maps (to what runs, or to null where it does not run:
// an unmapped one would silently drop the row), and the image size it runs at fits its model.
static int check_row_at_scales(cross *x, const jp *row) {
  static const int prepare_sizes[] = {16, 32, 48, 64};  // igpt prepare --size (datasets/prepare.c)
  const char *ds = json_string_value(json_object_get(row->v, "dataset"));
  const char *model = json_string_value(json_object_get(row->v, "model"));
  json_t *row_size = json_object_get(row->v, "image_size");
  bool igpt_prepare = runs_igpt(x->verbs, "prepare");
  const char *scale; json_t *s;
  json_object_foreach(x->scales, scale, s) {
    json_t *map = json_object_get(s, "datasets");
    jp d = jp_key(row, "dataset");
    if (!json_object_get(map, ds))
      return jp_fail(&d, "\"%s\" is not in %s's $.scales.%s.datasets: map it there to the data set that runs "
                     "(null where none does)", ds, x->scales_file, scale);
    json_t *ds_run = json_object_get(map, ds), *m_run = json_object_get(json_object_get(s, "models"), model);
    if (!json_is_string(ds_run) || !json_is_string(m_run)) continue;  // skipped at this scale, with the reason
    json_int_t size = row_size ? json_integer_value(row_size) : json_integer_value(json_object_get(s, "image_size"));
    jp at = row_size ? jp_key(row, "image_size") : jp_key(row, "id");
    const char *run_ds = json_string_value(ds_run);
    if (igpt_prepare && !embedded_set(x->embedded, run_ds)) {
      bool ok = false;
      for (size_t i = 0; i < sizeof prepare_sizes / sizeof *prepare_sizes; i++) ok |= size == prepare_sizes[i];
      if (!ok)
        return jp_fail(&at, "runs %s at %" JSON_INTEGER_FORMAT "x%" JSON_INTEGER_FORMAT " at the %s scale (%s %s's "
                       "$.scales.%s.image_size), but igpt prepare makes 16, 32, 48 or 64 pixel images", run_ds, size,
                       size, scale, row_size ? "the row's image_size, not" : "its", x->scales_file, scale);
    }
    // An imported checkpoint keeps its n_ctx; a pretrained model gets n_ctx = size^2 (jobs_expand).
    json_t *released = json_object_get(s, "released");
    json_int_t n_ctx = json_integer_value(json_object_get(json_object_get(x->models, json_string_value(m_run)), "n_ctx"));
    if (released && n_ctx != size * size)
      return jp_fail(&at, "runs the imported %s (n_ctx %" JSON_INTEGER_FORMAT ") at the %s scale on %" JSON_INTEGER_FORMAT
                     "x%" JSON_INTEGER_FORMAT " images (%" JSON_INTEGER_FORMAT " positions): map its data set to null "
                     "in %s's $.scales.%s.datasets, or give the row the checkpoint's image size",
                     json_string_value(m_run), n_ctx, scale, size, size, size * size, x->scales_file, scale);
  }
  return 0;
}

static int check_across(cross *x, jp_doc *tables_doc, jp_doc *scales_doc) {
  int rc = 0;
  if (runs_igpt(x->verbs, "fetch")) {
    char *path = registry_default_path();
    if (registry_load(&x->reg, path) < 0) rc = igpt_err_prefix("the suite's data sets are checked against %s", path);
    else x->have_reg = true;
    free(path);
  }
  jp sroot = jp_at(scales_doc, "$.scales", x->scales);
  const char *name; json_t *s;
  json_object_foreach(x->scales, name, s) {
    if (rc) break;
    jp sc = jp_key(&sroot, name);
    rc = check_scale_datasets(x, &sc) || check_palette_vocab(x, &sc) ? -1 : 0;
  }
  jp troot = jp_at(tables_doc, "$.tables", x->tables);
  json_t *t;
  json_object_foreach(x->tables, name, t) {
    if (rc) break;
    jp tc = jp_key(&troot, name), rows = jp_key(&tc, "rows");
    for (size_t i = 0; i < json_array_size(rows.v) && !rc; i++) {
      jp row = jp_index(&rows, i);
      rc = check_row_at_scales(x, &row);
    }
  }
  if (x->have_reg) registry_free(&x->reg);
  return rc;
}

// Parses path and checks its "format" (1, the one this build reads); NULL with igpt_err.
static json_t *load_file(const char *path) {
  json_t *root = jp_load_file(path);
  if (!root) {
    if (!path_exists(path))
      igpt_err_prefix("a suite directory holds models.json, tables.json, scales.json and commands.json");
    return NULL;
  }
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
  char *files[4] = {0};
  json_t *roots[4] = {0};
  jp_doc docs[4];
  int rc = 0;
  for (int i = 0; i < 4 && rc == 0; i++) {
    files[i] = xasprintf("%s/%s", abs, names[i]);
    docs[i] = (jp_doc){.file = files[i]};
    roots[i] = load_file(files[i]);
    if (!roots[i]) rc = -1;
    else {
      jp c = jp_root(&docs[i], roots[i]);
      json_t *models = roots[0] ? json_object_get(roots[0], "models") : NULL;
      switch (i) {
        case 0: rc = check_models(&c); break;
        case 1: rc = check_tables(&c, models); break;
        case 2: rc = check_scales(&c, models); break;
        case 3: rc = check_commands(&c); break;
      }
    }
  }
  if (rc == 0) {
    s->models = json_incref(json_object_get(roots[0], "models"));
    s->tables = json_incref(json_object_get(roots[1], "tables"));
    s->scales = json_incref(json_object_get(roots[2], "scales"));
    s->commands = json_incref(json_object_get(roots[3], "verbs"));
    json_t *emb = json_object_get(roots[3], "embedded_datasets");
    s->embedded = emb ? json_incref(emb) : json_array();
    cross x = {.models = s->models, .tables = s->tables, .scales = s->scales, .verbs = s->commands,
               .embedded = s->embedded, .models_file = files[0], .tables_file = files[1], .scales_file = files[2]};
    rc = check_across(&x, &docs[1], &docs[2]);
  }
  for (int i = 0; i < 4; i++) { json_decref(roots[i]); free(files[i]); }
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
