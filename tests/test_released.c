// released: the released scale from the shipped suite/: in its job graphs each
// row's model is a released checkpoint fetched and imported with `igpt import --from tf`, BERT
// rows take the -bert checkpoints; the stand-in scale builds its checkpoint by pretraining and
// `igpt export --to tf` and marks every row; --limit-images cuts every data set and says so; the
// registry lists every released checkpoint; a sharded checkpoint's rerun fetch keeps the shards
// already verified; a features job estimates its time after the first batch; the probe table
// with every model size.
#include "testutil.h"
#include "datasets/registry.h"
#include "engine/model.h"
#include "interop/tf_igpt.h"
#include "base/safetensors.h"
#include "jobs/jobs.h"
#include "jobs/suite.h"

static const job_t *find_verb(const graph_t *g, const char *verb, const char *label_part) {
  for (int i = 0; i < g->n; i++)
    if (!strcmp(g->jobs[i]->verb, verb) && (!label_part || strstr(g->jobs[i]->label, label_part))) return g->jobs[i];
  return NULL;
}

static void expand(suite_t *s, graph_t *g, const char *table, const char *scale, long limit) {
  char *dir = repo_path("suite");
  cr_assert_eq(suite_load(s, dir), 0, "%s", igpt_errmsg());
  graph_init(g, s);
  g->limit_images = limit;
  cr_assert_eq(graph_expand(g, table, scale), 0, "%s", igpt_errmsg());
  free(dir);
}

Test(released, checkpoints_fetched_and_imported) {
  suite_t s;
  graph_t g;
  expand(&s, &g, "bert-comparison", "released", 0);
  const job_t *ar = find_verb(&g, "import", "igpt-l-ckpt"), *bert = find_verb(&g, "import", "igpt-l-bert-ckpt");
  cr_assert(ar && bert, "the AR and BERT rows import igpt-l-ckpt and igpt-l-bert-ckpt");
  cr_expect_str_eq(ar->inputs[0]->verb, "fetch");
  cr_expect_str_eq(json_string_value(json_object_get(bert->inputs[0]->params, "dataset")), "igpt-l-bert-ckpt");
  cr_expect_null(find_verb(&g, "pretrain", NULL), "the released scale pretrains nothing");
  graph_free(&g);
  suite_free(&s);
}

Test(released, standin_scale_marks_every_row) {
  suite_t s;
  graph_t g;
  expand(&s, &g, "linear-probe", "released-standin", 0);
  const job_t *imp = find_verb(&g, "import", "stand-in");
  cr_assert_not_null(imp);
  const job_t *st = imp->inputs[0];
  cr_expect_str_eq(st->verb, "standin");
  cr_expect_str_eq(st->inputs[0]->verb, "pretrain");
  cr_expect_null(find_verb(&g, "fetch", "ckpt"), "a stand-in run downloads no checkpoint");
  size_t i;
  json_t *r;
  int run = 0;
  json_array_foreach(g.rows, i, r) {
    if (strcmp(json_string_value(json_object_get(r, "status")), "planned")) continue;
    run++;
    const char *note = json_string_value(json_object_get(r, "note"));
    cr_expect(note && strstr(note, "STAND-IN checkpoint, not OpenAI's"), "row %zu: %s", i, note ? note : "(no note)");
  }
  cr_expect_gt(run, 0);
  graph_free(&g);
  suite_free(&s);
}

Test(released, limit_images_cuts_every_data_set) {
  suite_t s;
  graph_t g;
  expand(&s, &g, "linear-probe", "released-standin", 50);
  int n = 0;
  for (int i = 0; i < g.n; i++) {
    if (strcmp(g.jobs[i]->verb, "prepare")) continue;
    n++;
    cr_expect_eq(json_integer_value(json_object_get(g.jobs[i]->params, "n_train")), 50, "%s", g.jobs[i]->label);
    cr_expect_eq(json_integer_value(json_object_get(g.jobs[i]->params, "n_test")), 50, "%s", g.jobs[i]->label);
  }
  cr_expect_gt(n, 0);
  size_t i;
  json_t *r;
  json_array_foreach(g.rows, i, r) {
    const char *note = json_string_value(json_object_get(r, "note"));
    if (!strcmp(json_string_value(json_object_get(r, "status")), "planned"))
      cr_expect(note && strstr(note, "--limit-images 50"), "row %zu: %s", i, note ? note : "(no note)");
  }
  graph_free(&g);
  suite_free(&s);
}

Test(released, registry_lists_every_released_checkpoint) {
  char *p = repo_path("datasets/registry.json");
  registry r;
  cr_assert_eq(registry_load(&r, p), 0, "%s", igpt_errmsg());
  static const struct { const char *name; int shards; } want[] = {
      {"igpt-s-ckpt", 32}, {"igpt-m-ckpt", 32}, {"igpt-l-ckpt", 64}, {"igpt-s-bert-ckpt", 32},
      {"igpt-m-bert-ckpt", 32}, {"igpt-l-bert-ckpt", 64}, {"igpt-s-ckpt-131000", 32}, {"igpt-m-ckpt-262000", 32},
      {"igpt-l-ckpt-524000", 64}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    const reg_dataset *d = registry_find(&r, want[i].name);
    cr_assert_not_null(d, "%s", igpt_errmsg());
    cr_expect_eq(d->n_files, want[i].shards + 2, "%s: shards + index + meta", want[i].name);  // download.py's files
    bool index = false;
    for (int f = 0; f < d->n_files; f++) index |= strstr(d->files[f].name, ".index") != NULL;
    cr_expect(index, "%s has no .index", want[i].name);
  }
  const reg_dataset *b = registry_find(&r, "igpt-l-bert-ckpt");
  cr_expect(strstr(b->files[0].mirrors[0], "/image-gpt/checkpoints/igpt-l-bert/1000000/model.ckpt-1000000.data-00000-of-00064"),
            "%s", b->files[0].mirrors[0]);
  registry_free(&r);
  free(p);
}

Test(released, generative_loss_rows) {
  suite_t s;
  graph_t g;
  expand(&s, &g, "generative-loss", "released", 0);
  for (const char *const *m = (const char *const[]){"igpt-s-ckpt", "igpt-m-ckpt", "igpt-l-ckpt", NULL}; *m; m++) {
    const job_t *loss = find_verb(&g, "loss", *m);
    cr_assert_not_null(loss, "no loss job for %s", *m);
    cr_expect_str_eq(loss->inputs[0]->verb, "import");
    cr_expect_str_eq(loss->inputs[1]->verb, "tokenize");
  }
  graph_free(&g);
  suite_free(&s);
  expand(&s, &g, "generative-loss", "released-standin", 0);  // no ImageNet at the stand-in scale
  size_t i;
  json_t *r;
  json_array_foreach(g.rows, i, r) cr_expect_str_eq(json_string_value(json_object_get(r, "status")), "skipped");
  graph_free(&g);
  suite_free(&s);
}

// A 3-shard checkpoint behind file:// mirrors, as the registry describes the released ones: a
// rerun after losing a shard fetches only that one (the others verified against the sha256
// pinned on first download), and the fetched directory imports.
Test(released, sharded_checkpoint_fetch_keeps_verified_shards, .timeout = 60) {
  char *dir = test_tmpdir("relfetch"), *prefix = xasprintf("%s/src/model.ckpt-1000000", dir);
  model_config c;
  model_config_default(&c);
  c.n_layer = 2, c.n_embd = 16, c.n_head = 2, c.n_ctx = 8, c.n_vocab = 7;
  model *m = model_new(&c);
  model_init(m, 3);
  cr_assert_eq(tf_export(m, prefix, 3, 1000000), 0, "%s", igpt_errmsg());
  char *reg = xasprintf("%s/registry.json", dir);
  char *json = xasprintf(
      "{\"format\": \"igpt-registry/1\", \"comment\": \"test\", \"datasets\": {\"ck\": {\"kind\": \"download\", "
      "\"description\": \"a sharded stand-in\", \"files\": ["
      "{\"name\": \"model.ckpt-1000000.data-{shard}-of-00003\", \"mirrors\": [\"file://%s.data-{shard}-of-00003\"], "
      "\"size\": null, \"sha256\": null, \"md5\": null, \"format\": \"binary\", \"shards\": 3, \"note\": \"test\"},"
      "{\"name\": \"model.ckpt-1000000.index\", \"mirrors\": [\"file://%s.index\"], \"size\": null, \"sha256\": null, "
      "\"md5\": null, \"format\": \"binary\", \"note\": \"test\"}]}}}", prefix, prefix);
  cr_assert_eq(file_write_atomic(reg, json, strlen(json)), 0);
  char *out, *args = xasprintf("fetch ck --registry %s --data %s/data --json", reg, dir);
  cr_assert_eq(igpt_in(dir, args, &out), 0, "%s", out);
  free(out);
  char *lost = xasprintf("%s/data/downloads/ck/model.ckpt-1000000.data-00001-of-00003", dir);
  cr_assert_eq(unlink(lost), 0);
  char *bin = igpt_bin(), *cmd = xasprintf("%s %s > %s/fetch.json 2>/dev/null", bin, args, dir);
  cr_assert_eq(run_cmd(cmd), 0, "%s", cmd);
  char *jp = xasprintf("%s/fetch.json", dir);
  json_t *r = json_load_file(jp, 0, NULL);
  cr_assert_not_null(r, "%s: not JSON", jp);
  free(bin), free(cmd), free(jp);
  json_t *files = json_object_get(json_object_get(json_object_get(r, "datasets"), "ck"), "files");
  cr_assert_eq(json_array_size(files), 4);
  for (size_t i = 0; i < 4; i++) {
    const char *st = json_string_value(json_object_get(json_array_get(files, i), "status"));
    cr_expect_str_eq(st, i == 1 ? "downloaded" : "cached", "file %zu", i);
  }
  json_decref(r);
  free(args);
  args = xasprintf("import --from tf %s/data/downloads/ck --out %s/m.safetensors", dir, dir);
  cr_expect_eq(igpt_in(dir, args, &out), 0, "%s", out);
  free(out), free(args);
  model_free(m);
  rm_rf(dir);
  free(dir), free(prefix), free(reg), free(json), free(lost);
}

// A features job says, after its first batch, how long the rest will take here (measured
// images/s times the images left), so a CPU user of the released scale knows what he chose.
Test(released, features_estimate_their_time) {
  char *dir = test_tmpdir("relfeat"), *mp = xasprintf("%s/m.safetensors", dir), *tp = xasprintf("%s/t.safetensors", dir);
  model_config c;
  model_config_default(&c);
  c.n_layer = 1, c.n_embd = 8, c.n_head = 2, c.n_ctx = 4, c.n_vocab = 5;
  model *m = model_new(&c);
  model_init(m, 1);
  cr_assert_eq(model_save(m, mp), 0, "%s", igpt_errmsg());
  uint16_t tok[12 * 4];
  int32_t lab[12];
  for (int i = 0; i < 48; i++) tok[i] = (uint16_t)(i % 5);
  for (int i = 0; i < 12; i++) lab[i] = i % 2;
  st_writer *w = st_writer_new();
  st_writer_add(w, "tokens", ST_U16, 2, (int64_t[]){12, 4}, tok);
  st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){12}, lab);
  cr_assert_eq(st_writer_save(w, tp), 0, "%s", igpt_errmsg());
  st_writer_free(w);
  char *out, *args = xasprintf("features --model %s --tokens %s --out %s/f.safetensors --batch 4", mp, tp, dir);
  cr_assert_eq(igpt_in(dir, args, &out), 0, "%s", out);
  cr_expect(strstr(out, "12 images x 1 masks at") && strstr(out, "measured on the first batch of 4") && strstr(out, "to go"),
            "no estimate after the first batch: %s", out);
  free(out), free(args);
  model_free(m);
  rm_rf(dir);
  free(dir), free(mp), free(tp);
}

Test(released, probe_table_with_every_model_size) {
  suite_t s;
  graph_t g;
  expand(&s, &g, "linear-probe-sizes", "released", 0);
  static const char *const ck[] = {"igpt-s-ckpt", "igpt-m-ckpt", "igpt-l-ckpt"};
  int features = 0;
  for (int i = 0; i < g.n; i++) features += !strcmp(g.jobs[i]->verb, "features");
  cr_expect_eq(features, 9, "3 models x 3 data sets");
  for (int k = 0; k < 3; k++) cr_expect_not_null(find_verb(&g, "import", ck[k]), "%s", ck[k]);
  cr_expect_not_null(find_verb(&g, "fetch", "igpt-palette"), "the official palette");
  graph_free(&g);
  suite_free(&s);
}
