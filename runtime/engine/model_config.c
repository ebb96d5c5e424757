// model_config: the model's config as JSON (parse with validation, dump). See model.h.
#include "engine/model.h"
#include "base/util.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

void model_config_default(model_config *c) {
  memset(c, 0, sizeof *c);
  c->bias = false;
  c->objective = OBJ_AR;
  c->mask_prob = 0.15;
  c->n_classes = 0;
}

static int range(const char *where, const char *field, long v, long lo, long hi) {
  if (v < lo || v > hi)
    return igpt_err("%s: config field '%s' is %ld, expected an integer in [%ld, %ld]", where, field,
                    v, lo, hi);
  return 0;
}

int model_config_validate(const model_config *c, const char *where) {
  if (range(where, "n_layer", c->n_layer, 1, 4096) || range(where, "n_embd", c->n_embd, 1, 1 << 16) ||
      range(where, "n_head", c->n_head, 1, c->n_embd) || range(where, "n_ctx", c->n_ctx, 1, 1 << 16) ||
      // tokens are u16 and 0xFFFF is MODEL_IGNORE
      range(where, "n_vocab", c->n_vocab, 1, 0xFFFE) || range(where, "n_classes", c->n_classes, 0, 0xFFFE))
    return -1;
  if (c->n_embd % c->n_head)
    return igpt_err("%s: config field 'n_embd' (%d) must be divisible by 'n_head' (%d)", where,
                    c->n_embd, c->n_head);
  if (c->objective != OBJ_AR && c->objective != OBJ_BERT)
    return igpt_err("%s: config field 'objective' must be \"ar\" or \"bert\"", where);
  if (!(c->mask_prob > 0.0 && c->mask_prob < 1.0))
    return igpt_err("%s: config field 'mask_prob' is %g, expected a number in (0, 1)", where,
                    c->mask_prob);
  return 0;
}

static int get_int(json_t *root, const char *where, const char *key, bool required, int *out) {
  json_t *v = json_object_get(root, key);
  if (!v) return required ? igpt_err("%s: config field '%s' is missing", where, key) : 0;
  if (!json_is_integer(v)) return igpt_err("%s: config field '%s' must be an integer", where, key);
  json_int_t x = json_integer_value(v);
  if (x < -1000000000LL || x > 1000000000LL)
    return igpt_err("%s: config field '%s' is out of range (%lld)", where, key, (long long)x);
  *out = (int)x;
  return 0;
}

int model_config_parse(const char *json, const char *where, model_config *c) {
  static const char *known[] = {"n_layer", "n_embd", "n_head", "n_ctx", "n_vocab", "bias",
                                "objective", "mask_prob", "n_classes"};
  model_config_default(c);
  json_error_t e;
  json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &e);
  if (!root) return igpt_err("%s: config is not valid JSON: %s (line %d, column %d)", where, e.text, e.line, e.column);
  int rc = 0;
  if (!json_is_object(root)) {
    rc = igpt_err("%s: config must be a JSON object", where);
    goto out;
  }
  const char *key;
  json_t *val;
  json_object_foreach(root, key, val) {
    size_t i = 0;
    while (i < sizeof known / sizeof *known && strcmp(known[i], key)) i++;
    if (i == sizeof known / sizeof *known) {
      rc = igpt_err("%s: unknown config field '%s' (known: n_layer, n_embd, n_head, n_ctx, n_vocab, "
                    "bias, objective, mask_prob, n_classes)", where, key);
      goto out;
    }
  }
  if (get_int(root, where, "n_layer", true, &c->n_layer) || get_int(root, where, "n_embd", true, &c->n_embd) ||
      get_int(root, where, "n_head", true, &c->n_head) || get_int(root, where, "n_ctx", true, &c->n_ctx) ||
      get_int(root, where, "n_vocab", true, &c->n_vocab) ||
      get_int(root, where, "n_classes", false, &c->n_classes)) {
    rc = -1;
    goto out;
  }
  if ((val = json_object_get(root, "bias"))) {
    if (!json_is_boolean(val)) { rc = igpt_err("%s: config field 'bias' must be true or false", where); goto out; }
    c->bias = json_is_true(val);
  }
  if ((val = json_object_get(root, "objective"))) {
    const char *s = json_string_value(val);
    if (s && !strcmp(s, "ar")) c->objective = OBJ_AR;
    else if (s && !strcmp(s, "bert")) c->objective = OBJ_BERT;
    else { rc = igpt_err("%s: config field 'objective' must be \"ar\" or \"bert\"", where); goto out; }
  }
  if ((val = json_object_get(root, "mask_prob"))) {
    if (!json_is_number(val)) { rc = igpt_err("%s: config field 'mask_prob' must be a number", where); goto out; }
    c->mask_prob = json_number_value(val);
  }
  rc = model_config_validate(c, where);
out:
  json_decref(root);
  return rc;
}

int model_config_load(const char *path, model_config *c) {
  uint8_t *data;
  size_t len;
  if (file_read_all(path, &data, &len)) return -1;
  char *s = xmalloc(len + 1);
  memcpy(s, data, len);
  s[len] = 0;
  free(data);
  int rc = strlen(s) != len ? igpt_err("%s: config contains a NUL byte", path) : model_config_parse(s, path, c);
  free(s);
  return rc;
}

char *model_config_dump(const model_config *c) {
  json_t *o = json_object();
  json_object_set_new(o, "n_layer", json_integer(c->n_layer));
  json_object_set_new(o, "n_embd", json_integer(c->n_embd));
  json_object_set_new(o, "n_head", json_integer(c->n_head));
  json_object_set_new(o, "n_ctx", json_integer(c->n_ctx));
  json_object_set_new(o, "n_vocab", json_integer(c->n_vocab));
  json_object_set_new(o, "bias", json_boolean(c->bias));
  json_object_set_new(o, "objective", json_string(c->objective == OBJ_BERT ? "bert" : "ar"));
  json_object_set_new(o, "mask_prob", json_real(c->mask_prob));
  json_object_set_new(o, "n_classes", json_integer(c->n_classes));
  // 15 digits: a decimal mask_prob such as 0.15 prints as written (17 would print 0.14999..)
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
  json_decref(o);
  char *r = xstrdup(s);
  free(s);
  return r;
}
