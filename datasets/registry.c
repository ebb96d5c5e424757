// registry: loads and validates datasets/registry.json. See registry.h.
// Every field is checked against its type; unknown keys are refused (a typo must not silently
// drop a checksum). "shards": N expands a file whose name and mirrors hold "{shard}" into N files
// numbered %05d (TensorFlow checkpoint bundles).
#include "registry.h"
#include "util.h"
#include <ctype.h>
#include <jansson.h>
#include <libgen.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

typedef struct {
  const char *file;
  char path[512];  // JSON path of the value being checked
} vctx;

static int bad(const vctx *c, const char *fmt, const char *got) {
  return igpt_err("%s: %s: %s%s%s", c->file, c->path, fmt, got ? ", got " : "", got ? got : "");
}

// A short rendering of a JSON value for messages; caller frees.
static char *show(const json_t *v) {
  char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
  if (!s) return xstrdup("?");
  if (strlen(s) > 80) strcpy(s + 77, "...");
  return s;
}

static int bad_v(const vctx *c, const char *want, const json_t *v) {
  char *s = v ? show(v) : xstrdup("nothing (missing)");
  int rc = bad(c, want, s);
  free(s);
  return rc;
}

// Child context: path + suffix.
static vctx sub(const vctx *c, const char *fmt, const char *key, int idx) {
  vctx s = *c;
  char tail[256];
  if (key) snprintf(tail, sizeof tail, fmt, key);
  else snprintf(tail, sizeof tail, fmt, idx);
  size_t n = strlen(c->path);
  if (n < sizeof s.path - 1) snprintf(s.path + n, sizeof s.path - n, "%.*s", (int)(sizeof s.path - 1 - n), tail);
  return s;
}

static int check_keys(const vctx *c, json_t *obj, const char *const *allowed) {
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    bool ok = false;
    for (int i = 0; allowed[i]; i++) ok |= !strcmp(k, allowed[i]);
    if (!ok) {
      char msg[600];
      size_t n = 0;
      for (int i = 0; allowed[i]; i++) n += snprintf(msg + n, sizeof msg - n, "%s%s", i ? ", " : "", allowed[i]);
      vctx s = sub(c, ".%s", k, 0);
      return igpt_err("%s: %s: unknown key (allowed: %s)", c->file, s.path, msg);
    }
  }
  return 0;
}

static int get_string(const vctx *c, json_t *obj, const char *key, bool required, char **out) {
  vctx s = sub(c, ".%s", key, 0);
  json_t *v = json_object_get(obj, key);
  *out = NULL;
  if (!v && !required) return 0;
  if (!json_is_string(v) || json_string_length(v) == 0) return bad_v(&s, "expected a non-empty string", v);
  *out = xstrdup(json_string_value(v));
  return 0;
}

// size: a non-negative integer or null (unknown); the key itself must be present.
static int get_size(const vctx *c, json_t *obj, int64_t *out) {
  vctx s = sub(c, ".%s", "size", 0);
  json_t *v = json_object_get(obj, "size");
  *out = -1;
  if (!v) return bad(&s, "missing (write null when unknown)", NULL);
  if (json_is_null(v)) return 0;
  if (!json_is_integer(v) || json_integer_value(v) < 0)
    return bad_v(&s, "expected a byte count (integer >= 0) or null for unknown", v);
  *out = json_integer_value(v);
  return 0;
}

static int get_hex(const vctx *c, json_t *obj, const char *key, size_t len, char *out) {
  vctx s = sub(c, ".%s", key, 0);
  json_t *v = json_object_get(obj, key);
  out[0] = 0;
  if (!v) return bad(&s, "missing (write null when unknown)", NULL);
  if (json_is_null(v)) return 0;
  char want[96];
  snprintf(want, sizeof want, "expected %zu lowercase hex digits or null for unknown", len);
  if (!json_is_string(v) || json_string_length(v) != len) return bad_v(&s, want, v);
  const char *h = json_string_value(v);
  for (size_t i = 0; i < len; i++)
    if (!isxdigit((unsigned char)h[i]) || isupper((unsigned char)h[i])) return bad_v(&s, want, v);
  memcpy(out, h, len + 1);
  return 0;
}

static int get_digest(const vctx *c, json_t *obj, bool md5_key, reg_digest *d) {
  if (get_size(c, obj, &d->size) || get_hex(c, obj, "sha256", 64, d->sha256)) return -1;
  // Missing keys are refused: unknown must be said (null), not implied.
  if (md5_key && get_hex(c, obj, "md5", 32, d->md5)) return -1;
  return 0;
}

bool reg_digest_known(const reg_digest *d) { return d->size >= 0 || d->sha256[0] || d->md5[0]; }

static const char *const fmt_names[] = {"binary", "gzip", "tar.gz", "npy", "zip"};
const char *reg_format_name(reg_format f) { return fmt_names[f]; }

// Replaces every "{shard}" in s by the 5-digit shard number; caller frees.
static char *expand_shard(const char *s, int shard) {
  char num[16];
  snprintf(num, sizeof num, "%05d", shard);
  char *out = xmalloc(strlen(s) * 2 + 16);
  char *o = out;
  while (*s) {
    if (!strncmp(s, "{shard}", 7)) { o = stpcpy(o, num); s += 7; }
    else *o++ = *s++;
  }
  *o = 0;
  return out;
}

static void file_free(reg_file *f) {
  free(f->name);
  for (int i = 0; i < f->n_mirrors; i++) free(f->mirrors[i]);
  free(f->mirrors);
  for (int i = 0; i < f->n_members; i++) free(f->members[i].path);
  free(f->members);
  free(f->unpack);
  free(f->note);
  memset(f, 0, sizeof *f);
}

static reg_file file_copy_shard(const reg_file *t, int shard) {
  reg_file f = *t;
  f.name = expand_shard(t->name, shard);
  f.mirrors = xcalloc(t->n_mirrors, sizeof *f.mirrors);
  for (int i = 0; i < t->n_mirrors; i++) f.mirrors[i] = expand_shard(t->mirrors[i], shard);
  f.members = NULL;
  f.n_members = 0;
  f.unpack = NULL;
  f.note = t->note ? xstrdup(t->note) : NULL;
  return f;
}

// A relative path without "..", absolute parts or empty components.
static bool safe_relpath(const char *p) {
  if (!*p || *p == '/') return false;
  for (const char *s = p; *s;) {
    const char *e = strchr(s, '/');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return false;
    s += n + (e ? 1 : 0);
  }
  return true;
}

static int parse_file(const vctx *c, json_t *o, reg_file *f, int *shards) {
  static const char *const keys[] = {"name", "mirrors", "size", "sha256", "md5", "format", "decompressed",
                                     "unpack", "members", "note", "shards", NULL};
  memset(f, 0, sizeof *f);
  *shards = 0;
  if (!json_is_object(o)) return bad_v(c, "expected an object", o);
  if (check_keys(c, o, keys) || get_string(c, o, "name", true, &f->name)) return -1;
  if (strchr(f->name, '/') || !strcmp(f->name, ".") || !strcmp(f->name, "..")) {
    vctx s = sub(c, ".%s", "name", 0);
    return bad(&s, "expected a plain file name (no '/')", f->name);
  }
  vctx sm = sub(c, ".%s", "mirrors", 0);
  json_t *ms = json_object_get(o, "mirrors");
  if (!json_is_array(ms)) return bad_v(&sm, "expected an array of URLs", ms);
  f->n_mirrors = (int)json_array_size(ms);
  f->mirrors = xcalloc(f->n_mirrors, sizeof *f->mirrors);
  for (int i = 0; i < f->n_mirrors; i++) {
    vctx s = sub(&sm, "[%d]", NULL, i);
    json_t *u = json_array_get(ms, i);
    const char *us = json_string_value(u);
    if (!us || (strncmp(us, "http://", 7) && strncmp(us, "https://", 8) && strncmp(us, "file:///", 8)))
      return bad_v(&s, "expected an http://, https:// or file:/// URL", u);
    f->mirrors[i] = xstrdup(us);
  }
  if (get_digest(c, o, true, &f->want)) return -1;
  char *fmt = NULL;
  if (get_string(c, o, "format", true, &fmt)) return -1;
  int fi = -1;
  for (int i = 0; i < 5; i++)
    if (!strcmp(fmt, fmt_names[i])) fi = i;
  if (fi < 0) {
    vctx s = sub(c, ".%s", "format", 0);
    bad(&s, "expected one of binary, gzip, tar.gz, npy, zip", fmt);
    free(fmt);
    return -1;
  }
  free(fmt);
  f->format = (reg_format)fi;
  if (get_string(c, o, "note", false, &f->note)) return -1;
  json_t *dz = json_object_get(o, "decompressed");
  if (dz) {
    vctx s = sub(c, ".%s", "decompressed", 0);
    static const char *const dkeys[] = {"size", "sha256", "md5", NULL};
    if (f->format != FMT_GZIP) return bad(&s, "only a gzip file has decompressed content", NULL);
    if (!json_is_object(dz)) return bad_v(&s, "expected an object {size, sha256, md5}", dz);
    if (check_keys(&s, dz, dkeys) || get_digest(&s, dz, true, &f->decompressed)) return -1;
    if (!reg_digest_known(&f->decompressed)) return bad(&s, "knows nothing: give the size or a digest", NULL);
    f->has_decompressed = true;
  }
  if (get_string(c, o, "unpack", false, &f->unpack)) return -1;
  if (f->unpack && (f->format != FMT_TAR_GZ && f->format != FMT_ZIP)) {
    vctx s = sub(c, ".%s", "unpack", 0);
    return bad(&s, "only an archive (tar.gz, zip) can be unpacked; format is", reg_format_name(f->format));
  }
  if (f->unpack && !safe_relpath(f->unpack)) {
    vctx s = sub(c, ".%s", "unpack", 0);
    return bad(&s, "expected a relative directory name without '..'", f->unpack);
  }
  json_t *mem = json_object_get(o, "members");
  if (mem) {
    vctx s = sub(c, ".%s", "members", 0);
    if (!f->unpack) return bad(&s, "members need \"unpack\"", NULL);
    if (!json_is_array(mem)) return bad_v(&s, "expected an array of {path, size, sha256}", mem);
    f->n_members = (int)json_array_size(mem);
    f->members = xcalloc(f->n_members, sizeof *f->members);
    for (int i = 0; i < f->n_members; i++) {
      static const char *const mkeys[] = {"path", "size", "sha256", NULL};
      vctx si = sub(&s, "[%d]", NULL, i);
      json_t *m = json_array_get(mem, i);
      if (!json_is_object(m)) return bad_v(&si, "expected an object {path, size, sha256}", m);
      if (check_keys(&si, m, mkeys) || get_string(&si, m, "path", true, &f->members[i].path) ||
          get_digest(&si, m, false, &f->members[i].want))
        return -1;
      const char *p = f->members[i].path;
      size_t ul = strlen(f->unpack);
      if (!safe_relpath(p) || strncmp(p, f->unpack, ul) || p[ul] != '/') {
        vctx sp = sub(&si, ".%s", "path", 0);
        return bad(&sp, "expected a relative path under the unpack directory, without '..'", p);
      }
    }
  }
  json_t *sh = json_object_get(o, "shards");
  if (sh) {
    vctx s = sub(c, ".%s", "shards", 0);
    if (!json_is_integer(sh) || json_integer_value(sh) < 1 || json_integer_value(sh) > 100000)
      return bad_v(&s, "expected a shard count in [1, 100000]", sh);
    if (!strstr(f->name, "{shard}")) return bad(&s, "needs \"{shard}\" in the name", f->name);
    if (reg_digest_known(&f->want)) return bad(&s, "sharded files cannot share one size or digest", NULL);
    *shards = (int)json_integer_value(sh);
  } else if (strchr(f->name, '{')) {
    vctx s = sub(c, ".%s", "name", 0);
    return bad(&s, "holds '{' but the file has no \"shards\"", f->name);
  }
  return 0;
}

static void dataset_free(reg_dataset *d) {
  free(d->name);
  free(d->description);
  free(d->instructions);
  for (int i = 0; i < d->n_files; i++) file_free(&d->files[i]);
  free(d->files);
  memset(d, 0, sizeof *d);
}

static int parse_dataset(const vctx *c, const char *name, json_t *o, reg_dataset *d) {
  static const char *const keys[] = {"kind", "description", "instructions", "files", NULL};
  memset(d, 0, sizeof *d);
  d->name = xstrdup(name);
  if (!json_is_object(o)) return bad_v(c, "expected an object", o);
  if (check_keys(c, o, keys) || get_string(c, o, "description", true, &d->description)) return -1;
  char *kind = NULL;
  if (get_string(c, o, "kind", true, &kind)) return -1;
  vctx sk = sub(c, ".%s", "kind", 0);
  if (!strcmp(kind, "download")) d->kind = REG_DOWNLOAD;
  else if (!strcmp(kind, "manual")) d->kind = REG_MANUAL;
  else if (!strcmp(kind, "embedded")) d->kind = REG_EMBEDDED;
  else {
    bad(&sk, "expected download, manual or embedded", kind);
    free(kind);
    return -1;
  }
  free(kind);
  if (get_string(c, o, "instructions", d->kind == REG_MANUAL, &d->instructions)) return -1;
  vctx sf = sub(c, ".%s", "files", 0);
  json_t *fs = json_object_get(o, "files");
  if (!json_is_array(fs)) return bad_v(&sf, "expected an array of files", fs);
  if (d->kind == REG_EMBEDDED && json_array_size(fs)) return bad(&sf, "an embedded set has no files", NULL);
  if (d->kind != REG_EMBEDDED && !json_array_size(fs)) return bad(&sf, "expected at least one file", NULL);
  int cap = 0;
  for (size_t i = 0; i < json_array_size(fs); i++) {
    vctx si = sub(&sf, "[%d]", NULL, (int)i);
    reg_file f;
    int shards;
    if (parse_file(&si, json_array_get(fs, i), &f, &shards)) { file_free(&f); return -1; }
    if (d->kind == REG_DOWNLOAD && f.n_mirrors == 0) {
      vctx s = sub(&si, ".%s", "mirrors", 0);
      file_free(&f);
      return bad(&s, "a download needs at least one mirror", NULL);
    }
    int n = shards ? shards : 1;
    if (d->n_files + n > cap) {
      cap = (d->n_files + n) * 2;
      d->files = xrealloc(d->files, (size_t)cap * sizeof *d->files);
    }
    if (!shards) d->files[d->n_files++] = f;
    else {
      for (int k = 0; k < shards; k++) d->files[d->n_files++] = file_copy_shard(&f, k);
      file_free(&f);
    }
  }
  for (int i = 0; i < d->n_files; i++)
    for (int j = 0; j < i; j++)
      if (!strcmp(d->files[i].name, d->files[j].name)) return bad(&sf, "names a file twice", d->files[i].name);
  return 0;
}

static bool safe_set_name(const char *s) {
  if (!*s || *s == '.') return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.') return false;
  return true;
}

int registry_load(registry *r, const char *path) {
  memset(r, 0, sizeof *r);
  json_error_t je;
  if (!path_exists(path))
    return igpt_err("%s: no such registry (run from the checkout, or set IGPT_REGISTRY or --registry)", path);
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (!root)
    return igpt_err("%s:%d:%d: not valid JSON: %s", path, je.line, je.column, je.text);
  vctx c = {.file = path, .path = "$"};
  static const char *const keys[] = {"format", "comment", "datasets", NULL};
  int rc = -1;
  if (!json_is_object(root)) { bad_v(&c, "expected an object", root); goto out; }
  if (check_keys(&c, root, keys)) goto out;
  json_t *fmt = json_object_get(root, "format");
  if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "igpt-registry/1")) {
    vctx s = sub(&c, ".%s", "format", 0);
    bad_v(&s, "expected \"igpt-registry/1\"", fmt);
    goto out;
  }
  vctx sd = sub(&c, ".%s", "datasets", 0);
  json_t *ds = json_object_get(root, "datasets");
  if (!json_is_object(ds)) { bad_v(&sd, "expected an object of data sets", ds); goto out; }
  r->sets = xcalloc(json_object_size(ds), sizeof *r->sets);
  const char *name;
  json_t *v;
  json_object_foreach(ds, name, v) {
    vctx s = sub(&sd, ".%s", name, 0);
    if (!safe_set_name(name)) { bad(&s, "a data set name is letters, digits, '-', '_', '.'", name); goto out; }
    int k = r->n_sets++;
    if (parse_dataset(&s, name, v, &r->sets[k])) goto out;
  }
  r->path = xstrdup(path);
  rc = 0;
out:
  json_decref(root);
  if (rc) registry_free(r);
  return rc;
}

void registry_free(registry *r) {
  for (int i = 0; i < r->n_sets; i++) dataset_free(&r->sets[i]);
  free(r->sets);
  free(r->path);
  memset(r, 0, sizeof *r);
}

const reg_dataset *registry_find(const registry *r, const char *name) {
  for (int i = 0; i < r->n_sets; i++)
    if (!strcmp(r->sets[i].name, name)) return &r->sets[i];
  char known[2048];
  size_t n = 0;
  known[0] = 0;
  for (int i = 0; i < r->n_sets && n < sizeof known - 64; i++)
    n += snprintf(known + n, sizeof known - n, "%s%s", i ? ", " : "", r->sets[i].name);
  igpt_err("%s: no data set named '%s' (known: %s)", r->path ? r->path : "registry", name, known);
  return NULL;
}

char *registry_default_path(void) {
  const char *e = getenv("IGPT_REGISTRY");
  if (e && *e) return xstrdup(e);
  const char *root = getenv("IGPT_ROOT");
  if (root && *root) return xasprintf("%s/datasets/registry.json", root);
  if (path_exists("datasets/registry.json")) return xstrdup("datasets/registry.json");
  // The checkout the running binary was built in (build/igpt -> ../datasets/registry.json).
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = 0;
    char *d = dirname(exe);
    char *p = xasprintf("%s/../datasets/registry.json", d);
    if (path_exists(p)) return p;
    free(p);
  }
  return xstrdup("datasets/registry.json");
}
