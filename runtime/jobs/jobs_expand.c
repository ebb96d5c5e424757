// jobs_expand: a paper table at a scale into its job graph (DESIGN.md "The data path"):
//   fetch -> prepare -> palette -> tokenize -> pretrain -> features -> probe | finetune -> report.
// The scale (suite/scales.json) maps each row's data set and model to what runs; a row whose data
// set or model is unavailable at the scale is kept in g->rows as skipped, with the reason. A data
// set in the scale's "fallback" map runs only where a local copy is present; else its stand-in runs
// and the row's note says so.
// Every probe row also gets the baselines its scale lists ("baselines": pixels, untrained) as jobs
// of the graph, on the same splits with the same probe: raw pixels (features --pixels of the
// prepared images) and the untrained model (pretraining for 0 steps: the same architecture and
// seed at initialisation). A fine-tune row gets "probe": the linear probe of the same model, on the
// same splits (fine-tuning should beat it). Shared by key like any job, so the seeds and rows that
// can share one do.
#include "jobs/jobs.h"
#include "datasets/registry.h"
#include "base/util.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
  graph_t *g;
  json_t *scale;
  const char *scale_name;
  int image_size;
  const char *pretrain_data;  // after the fallback
} ctx;

static json_t *jget(json_t *o, const char *k) { return json_object_get(o, k); }
static long jint(json_t *o, const char *k) { return (long)json_integer_value(json_object_get(o, k)); }

// Does the scale list this baseline ("baselines": ["pixels", "untrained"])?
static bool wants_baseline(const json_t *scale, const char *name) {
  size_t i; json_t *v;
  json_array_foreach(json_object_get(scale, "baselines"), i, v)
    if (json_is_string(v) && !strcmp(json_string_value(v), name)) return true;
  return false;
}

static bool embedded(const ctx *c, const char *ds) {
  size_t i; json_t *v;
  json_array_foreach(c->g->suite->embedded, i, v)
    if (!strcmp(json_string_value(v), ds)) return true;
  return false;
}

// Is every file of data set `name` at hand without the network: a file:// mirror in the registry
// that exists (Debian's dataset-fashion-mnist installs them)? *why says what is missing.
static bool locally_present(const char *name, char **why) {
  registry reg;
  char *path = registry_default_path();
  bool ok = registry_load(&reg, path) == 0;
  if (!ok) *why = xasprintf("%s cannot be read (%s)", path, igpt_errmsg());
  const reg_dataset *d = ok ? registry_find(&reg, name) : NULL;
  if (ok && !d) { ok = false; *why = xasprintf("%s is not in %s", name, path); }
  for (int f = 0; ok && f < d->n_files; f++) {
    bool here = false;
    for (int m = 0; m < d->files[f].n_mirrors && !here; m++)
      here = !strncmp(d->files[f].mirrors[m], "file://", 7) && path_exists(d->files[f].mirrors[m] + 7);
    if (!here) { ok = false; *why = xasprintf("%s has no local copy of %s", name, d->files[f].name); }
  }
  registry_free(&reg);  // empty when the load failed
  free(path);
  return ok;
}

// The data set that runs for `ds` at this scale: ds itself, or its fallback (scales.json) when ds
// has no local copy; then *note (caller frees) says why.
static const char *dataset_run(const ctx *c, const char *ds, char **note) {
  json_t *fb = jget(jget(c->scale, "fallback"), ds);
  char *why = NULL;
  *note = NULL;
  if (!json_is_string(fb) || locally_present(ds, &why)) return ds;
  *note = xasprintf("%s ran instead of %s: %s (on Debian: apt-get install dataset-%s; make test-deps installs it)",
                    json_string_value(fb), ds, why, ds);
  free(why);
  return json_string_value(fb);
}

static job_t *fetch_job(ctx *c, const char *name) {
  char *label = xasprintf("fetch %s", name);
  job_t *j = graph_add(c->g, "fetch", json_pack("{s:s}", "dataset", name), 0, NULL, NULL, label);
  free(label);
  return j;
}

static job_t *prepare_job(ctx *c, const char *ds, int size) {
  char *label = xasprintf("prepare %s %dx%d", ds, size, size);
  json_t *p = json_pack("{s:s, s:i}", "dataset", ds, "image_size", size);
  json_t *extra = jget(jget(c->scale, "prepare"), ds);  // e.g. the synthetic set's sizes
  if (json_is_object(extra)) json_object_update(p, extra);
  for (int k = 0; k < 2 && c->g->limit_images > 0; k++) {  // --limit-images: a quick look
    const char *key = k ? "n_test" : "n_train";
    json_t *have = jget(p, key);
    if (!have || json_integer_value(have) > c->g->limit_images)
      json_object_set_new(p, key, json_integer(c->g->limit_images));
  }
  job_t *j;
  if (embedded(c, ds)) j = graph_add(c->g, "prepare", p, 0, NULL, NULL, label);
  else {
    job_t *f = fetch_job(c, ds);
    j = graph_add(c->g, "prepare", p, 1, (const char *[]){"download"}, &f, label);
  }
  free(label);
  return j;
}

static job_t *palette_job(ctx *c) {
  json_t *pal = jget(c->scale, "palette");
  if (!strcmp(json_string_value(jget(pal, "source")), "official")) {
    job_t *f = fetch_job(c, "igpt-palette");
    return graph_add(c->g, "palette", json_pack("{s:s}", "source", "official"), 1, (const char *[]){"file"}, &f,
                     "palette (official kmeans_centers.npy)");
  }
  const char *pd = c->pretrain_data;
  job_t *img = prepare_job(c, pd ? pd : "synthetic", c->image_size);
  char *label = xasprintf("palette k-means %ld on %s", jint(pal, "k"), pd);
  job_t *j = graph_add(c->g, "palette",
                       json_pack("{s:s, s:I, s:I, s:I, s:i}", "source", "kmeans", "k", (json_int_t)jint(pal, "k"),
                                 "pixels", (json_int_t)jint(pal, "pixels"), "iters", (json_int_t)jint(pal, "iters"),
                                 "seed", 0),
                       1, (const char *[]){"images"}, &img, label);
  free(label);
  return j;
}

static job_t *tokenize_job(ctx *c, const char *ds) {
  job_t *in[2] = {prepare_job(c, ds, c->image_size), palette_job(c)};
  char *label = xasprintf("tokenize %s", ds);
  job_t *j = graph_add(c->g, "tokenize", json_pack("{s:s, s:i}", "dataset", ds, "image_size", c->image_size), 2,
                       (const char *[]){"images", "palette"}, in, label);
  free(label);
  return j;
}

// The model config as the engine reads it (issue 2): the shape, n_ctx from the image size.
static json_t *model_config(ctx *c, const char *model, const char *objective) {
  json_t *m = suite_model(c->g->suite, model);
  return json_pack("{s:I, s:I, s:I, s:I, s:I, s:b, s:s}", "n_layer", (json_int_t)jint(m, "n_layer"),
                   "n_embd", (json_int_t)jint(m, "n_embd"), "n_head", (json_int_t)jint(m, "n_head"),
                   "n_ctx", (json_int_t)c->image_size * c->image_size, "n_vocab", (json_int_t)jint(m, "n_vocab"),
                   "bias", 0, "objective", objective);
}

static job_t *pretrain_job(ctx *c, const char *model, const char *objective, int seed, bool untrained);

// A released checkpoint (scales.json "released": paper model -> registry name): fetched, or at a
// stand-in scale ("standin": true) the scale's own pretraining exported to the checkpoints' TF
// layout, then imported through the same `igpt import --from tf` either way.
static job_t *released_job(ctx *c, const char *paper_model, const char *model, const char *objective, int seed) {
  char which[128];  // a BERT row needs the model's "-bert" checkpoint
  snprintf(which, sizeof which, "%s%s", paper_model, strcmp(objective, "bert") ? "" : "-bert");
  json_t *ck = jget(jget(c->scale, "released"), which);
  if (!json_is_string(ck)) return NULL;
  const char *name = json_string_value(ck);
  job_t *src;
  if (json_is_true(jget(c->scale, "standin"))) {
    job_t *pre = pretrain_job(c, model, objective, seed, false);
    char *label = xasprintf("stand-in checkpoint %s (TF layout) from %s", name, pre->label);
    src = graph_add(c->g, "standin", json_pack("{s:s, s:i}", "checkpoint", name, "shards", 3), 1,
                    (const char *[]){"model"}, &pre, label);
    free(label);
  } else {
    src = fetch_job(c, name);
  }
  char *label = xasprintf("import %s%s", name, json_is_true(jget(c->scale, "standin")) ? " (stand-in)" : "");
  job_t *j = graph_add(c->g, "import", json_pack("{s:s}", "checkpoint", name), 1, (const char *[]){"checkpoint"},
                       &src, label);
  free(label);
  return j;
}

// The model a row evaluates: a released checkpoint imported, or pretrained here (untrained: the
// same run at step 0, the initialisation; a released scale has none).
static job_t *model_job(ctx *c, const char *paper_model, const char *model, const char *objective, int seed,
                        bool untrained) {
  if (jget(c->scale, "released")) return untrained ? NULL : released_job(c, paper_model, model, objective, seed);
  return pretrain_job(c, model, objective, seed, untrained);
}

static job_t *pretrain_job(ctx *c, const char *model, const char *objective, int seed, bool untrained) {
  json_t *pre = jget(c->scale, "pretrain");
  const char *pd = c->pretrain_data;
  job_t *tok = tokenize_job(c, pd);
  json_t *p = json_pack("{s:o, s:O, s:O, s:O, s:O, s:O, s:i}", "config", model_config(c, model, objective),
                        "steps", jget(pre, "steps"), "batch", jget(pre, "batch"), "lr", jget(pre, "lr"),
                        "warmup_steps", jget(pre, "warmup_steps"), "checkpoint_every", jget(pre, "checkpoint_every"),
                        "seed", seed);
  if (jget(pre, "keep_every") && !untrained) json_object_set(p, "keep_every", jget(pre, "keep_every"));
  if (untrained) {  // the initialisation the pretraining of this seed starts from
    json_object_set_new(p, "steps", json_integer(0));
    json_object_set_new(p, "warmup_steps", json_integer(0));
    json_object_set_new(p, "checkpoint_every", json_integer(0));
  }
  char *label = untrained ? xasprintf("untrained %s %s seed %d (step 0)", model, objective, seed)
                          : xasprintf("pretrain %s %s on %s seed %d", model, objective, pd, seed);
  job_t *j = graph_add(c->g, "pretrain", p, 1, (const char *[]){"tokens"}, &tok, label);
  free(label);
  return j;
}

// Does the scale's probe.concat_blocks apply to this row? A full-data row without probe settings
// of its own, on a model's features (the pixels have no blocks).
static bool scale_concat(const ctx *c, json_t *row, bool model) {
  json_t *rp = jget(row, "probe");
  return model && json_is_true(jget(jget(c->scale, "probe"), "concat_blocks")) && !jget(rp, "labels_per_class") &&
         !jget(rp, "concat_layers");
}

// A probe job's params: the seed, the scale's concatenation where it applies, the row's probe.
// The concatenation is of fixed layers (every block), so a probe whose only use is that number,
// the untrained baseline's or a checkpoint's (concat_only), skips the layer-by-layer sweep.
static json_t *probe_params(const ctx *c, json_t *row, bool model, bool concat_only, int seed) {
  json_t *pp = json_pack("{s:i}", "seed", seed);
  if (scale_concat(c, row, model)) {
    json_object_set_new(pp, "concat", json_string("blocks"));
    if (concat_only) json_object_set_new(pp, "layers", json_string("none"));
  }
  if (jget(row, "probe")) json_object_update(pp, jget(row, "probe"));
  return pp;
}

// The features of a model on a data set's splits (K evaluation masks for BERT): one job, shared by
// every probe of that model and a fine-tune's head started from the probe.
static job_t *features_job(ctx *c, const char *ds, job_t *model, int seed, bool bert, long masks, bool untrained) {
  json_t *fp = json_pack("{s:O, s:i}", "batch", jget(jget(c->scale, "features"), "batch"), "seed", seed);
  if (bert) json_object_set_new(fp, "masks", json_integer(masks));
  // the probe fits on mask 0 of the train split and ensembles only val and test (igpt probe), so
  // the train split's other masks would be computed and never read: 4/5 of a 5-mask job's work
  if (bert && masks > 1) json_object_set_new(fp, "train_masks", json_integer(1));
  job_t *in[2] = {model, tokenize_job(c, ds)};
  char *label = xasprintf("features %s%s%s", ds, masks > 1 ? " ensemble" : "", untrained ? " untrained" : "");
  job_t *feat = graph_add(c->g, "features", fp, 2, (const char *[]){"model", "tokens"}, in, label);
  free(label);
  return feat;
}

static job_t *eval_job(ctx *c, json_t *row, const char *ds, job_t *model, int seed) {
  const char *objective = json_string_value(jget(row, "objective"));
  long masks = jget(row, "masks") ? jint(row, "masks") : 1;
  bool bert = !strcmp(objective, "bert");
  if (!strcmp(json_string_value(jget(row, "eval")), "finetune")) {
    json_t *ft = jget(c->scale, "finetune");
    json_t *p = json_pack("{s:O, s:O, s:O, s:i}", "steps", jget(ft, "steps"), "batch", jget(ft, "batch"), "lr",
                          jget(ft, "lr"), "seed", seed);
    if (jget(ft, "eval_every")) json_object_set(p, "eval_every", jget(ft, "eval_every"));
    if (jget(ft, "patience")) json_object_set(p, "patience", jget(ft, "patience"));
    if (jget(ft, "head_lr")) json_object_set(p, "head_lr", jget(ft, "head_lr"));
    if (jget(ft, "head_init")) json_object_set(p, "head_init", jget(ft, "head_init"));
    if (jget(ft, "loss")) json_object_set(p, "loss", jget(ft, "loss"));
    if (jget(ft, "warmup")) json_object_set(p, "warmup", jget(ft, "warmup"));
    if (json_is_false(jget(ft, "augment"))) json_object_set_new(p, "no_augment", json_true());  // absent: augmented
    // a head started from the probe reads the final norm's features from the probe's features job
    // (igpt finetune --head-features) instead of a second forward over train and val
    bool from_probe = jget(ft, "head_init") && !strcmp(json_string_value(jget(ft, "head_init")), "probe");
    job_t *in[5] = {model, tokenize_job(c, ds), prepare_job(c, ds, c->image_size), palette_job(c),
                    from_probe ? features_job(c, ds, model, seed, bert, 1, false) : NULL};
    char *label = xasprintf("finetune %s from %s", ds, model->label + strcspn(model->label, " ") + 1);
    job_t *j = graph_add(c->g, "finetune", p, from_probe ? 5 : 4,
                         (const char *[]){"model", "tokens", "images", "palette", "features"}, in, label);
    free(label);
    return j;
  }
  if (!strcmp(json_string_value(jget(row, "eval")), "loss")) {  // the generative loss on the test split
    job_t *in[2] = {model, tokenize_job(c, ds)};
    char *label = xasprintf("loss %s from %s", ds, model->label + strcspn(model->label, " ") + 1);
    job_t *j = graph_add(c->g, "loss", json_pack("{s:O, s:i}", "batch", jget(jget(c->scale, "features"), "batch"), "seed", seed),
                         2, (const char *[]){"model", "tokens"}, in, label);
    free(label);
    return j;
  }
  job_t *feat;
  char *label;
  bool untrained = model && !strncmp(model->label, "untrained", 9);  // the step-0 baseline's model
  if (model) feat = features_job(c, ds, model, seed, bert, masks, untrained);
  else {  // the raw-pixel baseline: the prepared images are the features
    job_t *img = prepare_job(c, ds, c->image_size);
    label = xasprintf("pixels %s %dx%d", ds, c->image_size, c->image_size);
    feat = graph_add(c->g, "pixels", json_object(), 1, (const char *[]){"images"}, &img, label);
    free(label);
    masks = 1;
    bert = false;
  }
  json_t *pp = probe_params(c, row, model != NULL, untrained, seed);
  json_t *cap = jget(jget(c->scale, "probe"), "max_labels_per_class");
  if (cap && jget(pp, "labels_per_class") && jint(pp, "labels_per_class") > json_integer_value(cap))
    json_object_set(pp, "labels_per_class", cap);
  if (bert) json_object_set_new(pp, "masks", json_integer(masks));
  // the pixel baseline is deterministic but for the subsets a low-data probe draws from its seed
  if (!model && !jget(pp, "labels_per_class")) json_object_set_new(pp, "seed", json_integer(0));
  const char *of = !model ? " (raw pixels)" : untrained ? " (untrained)" : "";
  label = xasprintf("probe %s%s%s%s", ds, jget(pp, "labels_per_class") ? " low-data" : "", masks > 1 ? " ensemble" : "", of);
  if (jget(pp, "labels_per_class")) {
    free(label);
    label = xasprintf("probe %s %ld labels/class x %ld subsets%s", ds, jint(pp, "labels_per_class"),
                      jget(pp, "subsets") ? jint(pp, "subsets") : 1, of);
  }
  job_t *j = graph_add(c->g, "probe", pp, 1, (const char *[]){"features"}, &feat, label);
  free(label);
  return j;
}

// Does the table test a claim of this kind ("claims": [{"test": kind}])?
static bool table_claims(const json_t *t, const char *kind) {
  size_t i; json_t *c;
  json_array_foreach(json_object_get(t, "claims"), i, c)
    if (!strcmp(json_string_value(json_object_get(c, "test")) ?: "", kind)) return true;
  return false;
}

// "Lower loss, better probe": for seed 0 of a full-data probe row, the probe and the test loss at
// every checkpoint the pretraining keeps (scale pretrain.keep_every; probe.checkpoint_every, a
// multiple of it, probes fewer), at step 0 (the untrained baseline's probe) and at the end.
// The test loss comes from the probe's own features job (igpt features --loss on the test split:
// the same forward pass). Appends {step, probe, loss} keys to points, the jobs to add.
static void checkpoint_jobs(ctx *c, json_t *row, const char *ds, job_t *model, job_t *untrained_probe,
                            job_t *final_probe, json_t *points, job_t ***jobs, int *n) {
  json_t *pre = jget(c->scale, "pretrain");
  long every = jint(pre, "keep_every"), steps = jint(pre, "steps");
  json_t *pe = jget(jget(c->scale, "probe"), "checkpoint_every");
  if (pe) every = (long)json_integer_value(pe);  // suite.c: a multiple of keep_every
  if (every <= 0 || !untrained_probe) return;
  for (long k = 0; k <= steps; k += every) {
    job_t *pj, *lj;
    if (k == 0) pj = untrained_probe;
    else if (k == steps) pj = final_probe;
    else {
      char name[64];
      snprintf(name, sizeof name, "model-step%06ld.safetensors", k);
      json_t *fp = json_pack("{s:O, s:i, s:s}", "batch", jget(jget(c->scale, "features"), "batch"), "seed", 0,
                             "checkpoint", name);
      job_t *in[2] = {model, tokenize_job(c, ds)};
      char *label = xasprintf("features %s at step %ld", ds, k);
      job_t *feat = graph_add(c->g, "features", fp, 2, (const char *[]){"model", "tokens"}, in, label);
      free(label);
      json_t *pp = probe_params(c, row, true, true, 0);
      label = xasprintf("probe %s at step %ld", ds, k);
      pj = graph_add(c->g, "probe", pp, 1, (const char *[]){"features"}, &feat, label);
      free(label);
    }
    lj = pj->inputs[0];  // the probe's features, whose test pass measured the loss
    json_array_append_new(points, json_pack("{s:I, s:s, s:s}", "step", (json_int_t)k, "probe", pj->key, "loss", lj->key));
    *jobs = xrealloc(*jobs, (size_t)(*n + 2) * sizeof **jobs);
    (*jobs)[(*n)++] = pj;
    (*jobs)[(*n)++] = lj;
    if (k < steps && k + every > steps) k = steps - every;  // the last point is the end of training
  }
}

int graph_expand(graph_t *g, const char *table, const char *scale) {
  json_t *t = suite_table(g->suite, table), *s = suite_scale(g->suite, scale);
  if (!t || !s) return -1;
  g->table = table;
  g->scale = scale;
  char *pd_note = NULL;
  const char *pd = json_string_value(jget(s, "pretrain_data"));
  ctx c = {g, s, scale, (int)jint(s, "image_size"), pd ? dataset_run(&(ctx){.scale = s}, pd, &pd_note) : NULL};
  int seeds = (int)jint(s, "seeds");
  job_t **evals = NULL;
  char **names = NULL;
  int n_evals = 0;
  size_t i; json_t *row;
  json_array_foreach(jget(t, "rows"), i, row) {
    const char *ds_paper = json_string_value(jget(row, "dataset"));
    const char *m_paper = json_string_value(jget(row, "model"));
    json_t *ds = jget(jget(s, "datasets"), ds_paper), *m = jget(jget(s, "models"), m_paper);
    json_t *r = json_pack("{s:O, s:s, s:[]}", "row", row, "status", "planned", "jobs");
    char *reason = NULL;
    if (!json_is_string(ds))
      reason = json_is_true(jget(row, "needs_manual_data"))
                   ? xasprintf("needs the manual %s download (REFERENCE.md section 5); not part of the %s scale", ds_paper, scale)
                   : xasprintf("data set %s is not available at the %s scale", ds_paper, scale);
    else if (!json_is_string(m))
      reason = xasprintf("model %s has no stand-in at the %s scale", m_paper, scale);
    else if (json_is_null(jget(suite_model(g->suite, json_string_value(m)), "n_head")) && !jget(s, "released"))
      reason = xasprintf("model %s: head count unpublished, it can only be imported", json_string_value(m));
    if (reason) {
      json_object_set_new(r, "status", json_string("skipped"));
      json_object_set_new(r, "reason", json_string(reason));
      free(reason);
    } else {
      c.image_size = jget(row, "image_size") ? (int)jint(row, "image_size") : (int)jint(s, "image_size");
      char *fb_note = NULL;
      const char *ds_run = dataset_run(&c, json_string_value(ds), &fb_note);
      json_object_set_new(r, "dataset_run", json_string(ds_run));
      json_object_set_new(r, "model_run", json_copy(m));
      json_t *cap = jget(jget(s, "probe"), "max_labels_per_class");
      json_t *lpc = jget(jget(row, "probe"), "labels_per_class");
      if (cap && lpc && json_integer_value(lpc) > json_integer_value(cap)) {
        char *n = xasprintf("%lld labels per class capped at %lld at the %s scale (its training split is smaller)",
                            (long long)json_integer_value(lpc), (long long)json_integer_value(cap), scale);
        json_object_set_new(r, "note", json_string(n));
        free(n);
      }
      if (!strcmp(json_string_value(jget(row, "eval")), "finetune") && jget(row, "masks"))
        json_object_set_new(r, "note", json_string("igpt finetune evaluates with one mask: this row runs the same job "
                                                   "as the row without ensembling"));
      if (json_is_true(jget(s, "standin"))) {  // before anything else: the number is not about iGPT
        const char *old = json_string_value(jget(r, "note"));
        char *n = xasprintf("STAND-IN checkpoint, not OpenAI's: a %s model pretrained here, exported to the released "
                            "checkpoints' TF layout and imported from it (tests the import and evaluation path only)%s%s",
                            json_string_value(m), old ? "; " : "", old ? old : "");
        json_object_set_new(r, "note", json_string(n));
        free(n);
      }
      if (g->limit_images > 0) {
        const char *old = json_string_value(jget(r, "note"));
        char *n = xasprintf("--limit-images %ld: at most %ld train and %ld test images of each data set, a quick look, "
                            "not the evaluation%s%s", g->limit_images, g->limit_images, g->limit_images,
                            old ? "; " : "", old ? old : "");
        json_object_set_new(r, "note", json_string(n));
        free(n);
      }
      if (fb_note || pd_note) {  // the stand-in data set goes first: it says what the number means
        const char *old = json_string_value(jget(r, "note"));
        char *n = fb_note ? xasprintf("%s%s%s", fb_note, old ? "; " : "", old ? old : "")
                          : xasprintf("pretraining: %s%s%s", pd_note, old ? "; " : "", old ? old : "");
        json_object_set_new(r, "note", json_string(n));
        free(n);
      }
      free(fb_note);
      bool probe_row = !strcmp(json_string_value(jget(row, "eval")), "probe");
      if (!strcmp(json_string_value(jget(row, "eval")), "finetune")) {  // how it was fine-tuned, from the scale
        json_t *ft = jget(s, "finetune");
        const char *old = json_string_value(jget(r, "note")), *hi = json_string_value(jget(ft, "head_init"));
        const char *loss = json_string_value(jget(ft, "loss"));
        char warm[64] = "";
        if (jget(ft, "warmup")) snprintf(warm, sizeof warm, " (warmup %ld steps)", jint(ft, "warmup"));
        char *n = xasprintf("fine-tuned for at most %ld steps of batch %ld at lr %g%s, on %s, the head started from %s, "
                            "%s; early stop on validation%s%s", jint(ft, "steps"), jint(ft, "batch"),
                            json_number_value(jget(ft, "lr")), warm,
                            loss && !strcmp(loss, "clf") ? "L_clf alone" : "L_gen + L_clf",
                            hi && !strcmp(hi, "probe") ? "the linear probe's fit" : "zeros",
                            json_is_false(jget(ft, "augment")) ? "unaugmented" : "with random crops and flips",
                            old ? "; " : "", old ? old : "");
        json_object_set_new(r, "note", json_string(n));
        free(n);
      }
      if (probe_row && scale_concat(&c, row, true)) {  // the number is not one layer's: say so first
        const char *old = json_string_value(jget(r, "note"));
        json_t *cfg = model_config(&c, json_string_value(m), json_string_value(jget(row, "objective")));
        long L = jint(cfg, "n_layer");
        json_decref(cfg);
        char *n = xasprintf("a probe of every block's output concatenated (layers 1..%ld, %ld layers; the %s scale's "
                            "probe.concat_blocks, as the paper's Table 3 concatenates layers), and so are the untrained "
                            "baseline's and the checkpoints'; the raw pixels are one layer%s%s", L, L, scale,
                            old ? "; " : "", old ? old : "");
        json_object_set_new(r, "note", json_string(n));
        free(n);
      }
      json_t *bl = json_pack("{s:[], s:[], s:[]}", "pixels", "untrained", "probe"), *model_keys = json_array();
      json_object_set_new(r, "prepare_job", json_string(prepare_job(&c, ds_run, c.image_size)->key));
      for (int seed = 0; seed < seeds; seed++) {
        const char *objective = json_string_value(jget(row, "objective"));
        job_t *model = model_job(&c, m_paper, json_string_value(m), objective, seed, false);
        if (!model) {
          json_object_set_new(r, "status", json_string("skipped"));
          json_object_set_new(r, "reason", json_string("no released checkpoint for this model and objective in "
                                                        "datasets/registry.json"));
          break;
        }
        json_array_append_new(model_keys, json_string(model->key));
        job_t *e[4] = {eval_job(&c, row, ds_run, model, seed), NULL, NULL, NULL};
        json_array_append_new(jget(r, "jobs"), json_string(e[0]->key));
        if (probe_row) {  // the baselines; the untrained one where a model is trained here (not imported)
          if (wants_baseline(s, "pixels")) {
            e[1] = eval_job(&c, row, ds_run, NULL, seed);
            json_array_append_new(jget(bl, "pixels"), json_string(e[1]->key));
          }
          job_t *init = NULL;
          if (wants_baseline(s, "untrained") && !jget(s, "released")) {
            init = model_job(&c, m_paper, json_string_value(m), objective, seed, true);
            e[2] = eval_job(&c, row, ds_run, init, seed);
            json_array_append_new(jget(bl, "untrained"), json_string(e[2]->key));
          }
          if (seed == 0 && !jget(jget(row, "probe"), "labels_per_class") && table_claims(t, "checkpoints")) {
            json_t *points = json_array();
            job_t **cj = NULL;
            int ncj = 0;
            checkpoint_jobs(&c, row, ds_run, model, e[2], e[0], points, &cj, &ncj);
            for (int q = 0; q < ncj; q++) {
              evals = xrealloc(evals, (size_t)(n_evals + 1) * sizeof *evals);
              names = xrealloc(names, (size_t)(n_evals + 1) * sizeof *names);
              evals[n_evals] = cj[q];
              names[n_evals++] = xasprintf("%s.checkpoint%d", json_string_value(jget(row, "id")), q);
            }
            free(cj);
            if (json_array_size(points)) json_object_set_new(r, "checkpoint_jobs", points);
            else json_decref(points);
          }
        }
        if (!probe_row && wants_baseline(s, "probe")) {  // a fine-tune row: the linear probe of its model
          json_t *as_probe = json_deep_copy(row);
          json_object_set_new(as_probe, "eval", json_string("probe"));
          json_object_del(as_probe, "masks");  // igpt finetune evaluates with one mask
          e[3] = eval_job(&c, as_probe, ds_run, model, seed);
          json_decref(as_probe);
          json_array_append_new(jget(bl, "probe"), json_string(e[3]->key));
        }
        static const char *const what[4] = {"", ".pixels", ".untrained", ".probe"};
        for (int k = 0; k < 4; k++) {
          if (!e[k]) continue;
          evals = xrealloc(evals, (size_t)(n_evals + 1) * sizeof *evals);
          names = xrealloc(names, (size_t)(n_evals + 1) * sizeof *names);
          evals[n_evals] = e[k];
          names[n_evals++] = xasprintf("%s%s.seed%d", json_string_value(jget(row, "id")), what[k], seed);
        }
      }
      json_object_set_new(r, "model_jobs", model_keys);
      if (probe_row || json_array_size(jget(bl, "probe"))) json_object_set_new(r, "baseline_jobs", bl);
      else json_decref(bl);
    }
    json_array_append_new(g->rows, r);
  }
  // The paper's pictures from the table's first autoregressive model (seed 0): unconditional
  // samples and half-image completions of test images, when the table asks ("samples": true).
  json_t *first = NULL;
  json_array_foreach(g->rows, i, row)
    if (!first && json_array_size(jget(row, "model_jobs")) && !strcmp(json_string_value(jget(jget(row, "row"), "objective")), "ar"))
      first = row;
  if (first && json_is_true(jget(t, "samples"))) {
    job_t *model = graph_find(g, json_string_value(json_array_get(jget(first, "model_jobs"), 0)));
    const char *ds = json_string_value(jget(first, "dataset_run"));
    c.image_size = (int)jint(s, "image_size");
    job_t *in[3] = {model, palette_job(&c), prepare_job(&c, ds, c.image_size)};
    char *label = xasprintf("samples and completions from %s", model->label + strcspn(model->label, " ") + 1);
    job_t *sj = graph_add(g, "samples", json_pack("{s:i, s:i, s:i, s:i}", "n", 16, "rows", 4, "completions", 5, "seed", 0),
                          3, (const char *[]){"model", "palette", "images"}, in, label);
    free(label);
    json_object_set_new(first, "samples_job", json_string(sj->key));
    evals = xrealloc(evals, (size_t)(n_evals + 1) * sizeof *evals);
    names = xrealloc(names, (size_t)(n_evals + 1) * sizeof *names);
    evals[n_evals] = sj;
    names[n_evals++] = xstrdup("samples");
  }
  // The report's inputs are the distinct evaluation jobs (rows may share one).
  job_t *uniq[JOBS_MAX_INPUTS];
  const char *uniq_names[JOBS_MAX_INPUTS];
  int n = 0, rc = 0;
  for (int k = 0; k < n_evals; k++) {
    bool seen = false;
    for (int q = 0; q < n; q++) seen |= uniq[q] == evals[k];
    if (seen) continue;
    if (n == JOBS_MAX_INPUTS) { rc = igpt_err("table %s at %s: more than %d evaluation jobs", table, scale, JOBS_MAX_INPUTS); break; }
    uniq[n] = evals[k];
    uniq_names[n++] = names[k];
  }
  if (rc == 0) {
    char *label = xasprintf("report %s %s", table, scale);
    g->report = graph_add(g, "report", json_pack("{s:s, s:s, s:O, s:O}", "table", table, "scale", scale,
                                                 "definition", t, "scale_definition", s),
                          n, uniq_names, uniq, label);
    free(label);
  }
  for (int k = 0; k < n_evals; k++) free(names[k]);
  free(pd_note);
  free(names);
  free(evals);
  return rc;
}
