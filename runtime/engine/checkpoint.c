// checkpoint: the weights + state pair of a training run, kill-safe. See checkpoint.h.
#include "engine/checkpoint.h"
#include "base/safetensors.h"
#include "base/fault.h"
#include "base/util.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATE_FORMAT "igpt-train-state-1"

static char *path_in(const char *dir, const char *name) { return xasprintf("%s/%s", dir, name); }

bool checkpoint_exists(const char *dir) {
  char *p = path_in(dir, "state.safetensors");
  bool e = path_exists(p);
  free(p);
  return e;
}

int checkpoint_save(const char *dir, const model *m, train_state *s) {
  char *model_p = path_in(dir, "model.safetensors"), *prev_p = path_in(dir, "model.prev.safetensors");
  char *state_p = path_in(dir, "state.safetensors");
  int rc = -1;
  // Keep the weights the current state belongs to reachable until the new state is written:
  // model.safetensors, linked as model.prev.safetensors, unless prev already holds them (a run
  // resumed after a kill between the two writes, whose model.safetensors is an orphan).
  if (!s->weights_in_prev) {
    unlink(prev_p);
    if (path_exists(model_p) && link(model_p, prev_p) < 0) {
      igpt_err("cannot link %s to %s: %s", model_p, prev_p, strerror(errno));
      goto out;
    }
  }
  if (model_save_at(m, model_p, (long long)s->step) < 0) goto out;
  char digest[65];
  if (sha256_file(model_p, digest) < 0) goto out;
  fault_point("between", s->step);

  uint64_t position[3] = {(uint64_t)s->step, s->data.epoch, s->data.pos};
  uint64_t rngs[8];
  memcpy(rngs, s->data.order_rng.s, sizeof s->data.order_rng.s);
  memcpy(rngs + 4, s->data.mask_rng.s, sizeof s->data.mask_rng.s);
  char *opts = json_dumps(s->options, JSON_COMPACT | JSON_SORT_KEYS);
  char threads[16];
  snprintf(threads, sizeof threads, "%d", s->threads);
  st_writer *w = st_writer_new();
  st_writer_add(w, "adam.m", ST_F32, 1, (int64_t[]){(int64_t)m->n_params}, s->m);
  st_writer_add(w, "adam.v", ST_F32, 1, (int64_t[]){(int64_t)m->n_params}, s->v);
  st_writer_add(w, "position", ST_U64, 1, (int64_t[]){3}, position);  // step, epoch, row
  st_writer_add(w, "rng", ST_U64, 2, (int64_t[]){2, 4}, rngs);         // order, mask
  st_writer_meta(w, "format", STATE_FORMAT);
  st_writer_meta(w, "model_sha256", digest);
  st_writer_meta(w, "options", opts);
  st_writer_meta(w, "threads", threads);
  free(opts);
  int wrc = st_writer_save(w, state_p);
  st_writer_free(w);
  if (wrc < 0) goto out;
  unlink(prev_p);
  s->weights_in_prev = false;
  rc = 0;
out:
  free(model_p);
  free(prev_p);
  free(state_p);
  return rc;
}

void train_state_free(train_state *s) {
  free(s->m);
  free(s->v);
  json_decref(s->options);
  memset(s, 0, sizeof *s);
}

// Reads the state file into s (moments checked against n_params later, by the caller's model).
static int state_read(const char *path, train_state *s, char digest[65]) {
  st_file f;
  if (st_open(&f, path) < 0) return -1;
  int rc = -1;
  const char *fmt = st_meta(&f, "format"), *dg = st_meta(&f, "model_sha256");
  const char *opts = st_meta(&f, "options"), *thr = st_meta(&f, "threads");
  if (!fmt || strcmp(fmt, STATE_FORMAT)) {
    igpt_err("%s: __metadata__.format is '%s', expected '%s' (not a training state file, or "
             "from another version)", path, fmt ? fmt : "(absent)", STATE_FORMAT);
    goto out;
  }
  if (!dg || strlen(dg) != 64 || !opts || !thr) {
    igpt_err("%s: __metadata__ lacks model_sha256, options or threads", path);
    goto out;
  }
  json_error_t je;
  s->options = json_loads(opts, JSON_REJECT_DUPLICATES, &je);
  if (!json_is_object(s->options)) {
    igpt_err("%s: __metadata__.options is not a JSON object (%s)", path, je.text);
    goto out;
  }
  s->threads = atoi(thr);
  const st_tensor *pos = st_expect(&f, "position", ST_U64, 1, (int64_t[]){3});
  const st_tensor *rng = st_expect(&f, "rng", ST_U64, 2, (int64_t[]){2, 4});
  const st_tensor *m = st_expect(&f, "adam.m", ST_F32, 1, (int64_t[]){-1});
  const st_tensor *v = m ? st_expect(&f, "adam.v", ST_F32, 1, (int64_t[]){m->shape[0]}) : NULL;
  if (!pos || !rng || !m || !v) goto out;
  uint64_t p[3], r[8];
  memcpy(p, pos->data, sizeof p);
  memcpy(r, rng->data, sizeof r);
  s->step = (int64_t)p[0];
  s->data.epoch = p[1];
  s->data.pos = p[2];
  memcpy(s->data.order_rng.s, r, 4 * sizeof *r);
  memcpy(s->data.mask_rng.s, r + 4, 4 * sizeof *r);
  size_t n = s->n = st_numel(m);
  s->m = xmalloc(n * sizeof(float) + 1);
  s->v = xmalloc(n * sizeof(float) + 1);
  memcpy(s->m, m->data, n * sizeof(float));
  memcpy(s->v, v->data, n * sizeof(float));
  memcpy(digest, dg, 65);
  rc = 0;
out:
  st_close(&f);
  if (rc < 0) train_state_free(s);
  return rc;
}

model *checkpoint_load(const char *dir, train_state *s) {
  char *model_p = path_in(dir, "model.safetensors"), *prev_p = path_in(dir, "model.prev.safetensors");
  char *state_p = path_in(dir, "state.safetensors");
  model *m = NULL;
  char want[65], got[65] = "";
  memset(s, 0, sizeof *s);
  if (state_read(state_p, s, want) < 0) goto out;
  // The weights the state belongs to: the current file, or the previous one when a kill came
  // between writing the new weights and the new state.
  const char *use = NULL;
  if (path_exists(model_p) && sha256_file(model_p, got) == 0 && !strcmp(got, want)) use = model_p;
  else if (path_exists(prev_p) && sha256_file(prev_p, got) == 0 && !strcmp(got, want)) use = prev_p;
  if (!use) {
    igpt_err("%s: no weights file in %s matches the state's model_sha256 %.12s... (model.safetensors "
             "%s); the checkpoint is incomplete, start again without --resume in a new directory",
             state_p, dir, want, got[0] ? "differs" : "is missing");
    goto fail;
  }
  s->weights_in_prev = use == prev_p;
  if (use == prev_p) log_warn("resuming from %s: the run was stopped while writing a checkpoint", prev_p);
  m = model_load(use);
  if (!m) goto fail;
  if (s->n != m->n_params) {
    igpt_err("%s: adam.m has %zu entries but the model in %s has %zu parameters", state_p, s->n,
             use, m->n_params);
    model_free(m);
    m = NULL;
    goto fail;
  }
  goto out;
fail:
  train_state_free(s);
out:
  free(model_p);
  free(prev_p);
  free(state_p);
  return m;
}
