// registry: loads and validates datasets/registry.json. See registry.h.
// Every field is checked against its type (runtime/base/jsonpath.h); unknown keys are refused (a typo
// must not silently drop a checksum). "shards": N expands a file whose name and mirrors hold
// "{shard}" into N files numbered %05d (TensorFlow checkpoint bundles).
#include "datasets/registry.h"
#include "base/jsonpath.h"
#include "base/util.h"
#include <ctype.h>
#include <jansson.h>
#include <libgen.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

// A required, non-empty string member, copied (caller frees *out; NULL when optional and absent).
static int dup_string(const jp *c, const char *key, int flags, char **out) {
  const char *s = jp_string(c, key, flags | JP_NONEMPTY);
  *out = s ? xstrdup(s) : NULL;
  return jp_failed(c) ? -1 : 0;
}

// A digest key must be written: unknown is said with null, never implied by leaving it out.
static bool present(const jp *k) {
  if (!k->v) jp_fail(k, "missing (write null when unknown)");
  return k->v != NULL;
}

// size: a non-negative integer or null (unknown).
static int get_size(const jp *c, int64_t *out) {
  jp k = jp_key(c, "size");
  *out = -1;
  if (!present(&k)) return -1;
  if (json_is_null(k.v)) return 0;
  if (!json_is_integer(k.v) || json_integer_value(k.v) < 0)
    return jp_expected(&k, "a byte count (integer >= 0) or null for unknown");
  *out = json_integer_value(k.v);
  return 0;
}

static int get_hex(const jp *c, const char *key, size_t len, char *out) {
  jp k = jp_key(c, key);
  out[0] = 0;
  if (!present(&k)) return -1;
  if (json_is_null(k.v)) return 0;
  char want[96];
  snprintf(want, sizeof want, "%zu lowercase hex digits or null for unknown", len);
  if (!json_is_string(k.v) || json_string_length(k.v) != len) return jp_expected(&k, want);
  const char *h = json_string_value(k.v);
  for (size_t i = 0; i < len; i++)
    if (!isxdigit((unsigned char)h[i]) || isupper((unsigned char)h[i])) return jp_expected(&k, want);
  memcpy(out, h, len + 1);
  return 0;
}

static int get_digest(const jp *c, bool md5_key, reg_digest *d) {
  if (get_size(c, &d->size) || get_hex(c, "sha256", 64, d->sha256)) return -1;
  if (md5_key && get_hex(c, "md5", 32, d->md5)) return -1;
  return 0;
}

bool reg_digest_known(const reg_digest *d) { return d->size >= 0 || d->sha256[0] || d->md5[0]; }

static const char *const fmt_names[] = {"binary", "gzip", "tar.gz", "npy", "zip", NULL};
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

static int parse_file(const jp *c, reg_file *f, int *shards) {
  static const char *const keys[] = {"name", "mirrors", "size", "sha256", "md5", "format", "decompressed",
                                     "unpack", "members", "note", "shards", "max_size", NULL};
  memset(f, 0, sizeof *f);
  *shards = 0;
  jp name = jp_key(c, "name"), sm = jp_key(c, "mirrors"), dz = jp_key(c, "decompressed"), un = jp_key(c, "unpack"),
     mem = jp_key(c, "members"), sh = jp_key(c, "shards"), mx = jp_key(c, "max_size");
  if (!jp_value(c, JP_OBJECT, JP_REQUIRED) || jp_keys(c, keys) || dup_string(c, "name", JP_REQUIRED, &f->name)) return -1;
  if (strchr(f->name, '/') || !strcmp(f->name, ".") || !strcmp(f->name, ".."))
    return jp_expected(&name, "a plain file name (no '/')");
  if (!json_is_array(sm.v)) return jp_expected(&sm, "an array of URLs");
  f->n_mirrors = (int)json_array_size(sm.v);
  f->mirrors = xcalloc(f->n_mirrors, sizeof *f->mirrors);
  for (int i = 0; i < f->n_mirrors; i++) {
    jp u = jp_index(&sm, i);
    const char *us = json_string_value(u.v);
    if (!us || (strncmp(us, "http://", 7) && strncmp(us, "https://", 8) && strncmp(us, "file:///", 8)))
      return jp_expected(&u, "an http://, https:// or file:/// URL");
    f->mirrors[i] = xstrdup(us);
  }
  if (get_digest(c, true, &f->want)) return -1;
  f->max_size = -1;
  if (mx.v) {  // raises (or lowers) the download cap of a file whose size nobody published
    json_t *n = jp_int(c, "max_size", JP_REQUIRED, 1, JP_NO_MAX);
    if (!n) return -1;
    if (f->want.size >= 0) return jp_fail(&mx, "the size is known (%lld): a cap applies only when it is null", (long long)f->want.size);
    f->max_size = json_integer_value(n);
  }
  int fi = jp_enum(c, "format", JP_REQUIRED, fmt_names);
  if (fi < 0) return -1;
  f->format = (reg_format)fi;
  if (dup_string(c, "note", JP_OPTIONAL, &f->note)) return -1;
  if (dz.v) {
    static const char *const dkeys[] = {"size", "sha256", "md5", NULL};
    if (f->format != FMT_GZIP) return jp_fail(&dz, "only a gzip file has decompressed content");
    if (!json_is_object(dz.v)) return jp_expected(&dz, "an object {size, sha256, md5}");
    if (jp_keys(&dz, dkeys) || get_digest(&dz, true, &f->decompressed)) return -1;
    if (!reg_digest_known(&f->decompressed)) return jp_fail(&dz, "knows nothing: give the size or a digest");
    f->has_decompressed = true;
  }
  if (dup_string(c, "unpack", JP_OPTIONAL, &f->unpack)) return -1;
  if (f->unpack && (f->format != FMT_TAR_GZ && f->format != FMT_ZIP))
    return jp_fail(&un, "only an archive (tar.gz, zip) can be unpacked; format is %s", reg_format_name(f->format));
  if (f->unpack && !safe_relpath(f->unpack)) return jp_expected(&un, "a relative directory name without '..'");
  if (mem.v) {
    if (!f->unpack) return jp_fail(&mem, "members need \"unpack\"");
    if (!json_is_array(mem.v)) return jp_expected(&mem, "an array of {path, size, sha256}");
    f->n_members = (int)json_array_size(mem.v);
    f->members = xcalloc(f->n_members, sizeof *f->members);
    for (int i = 0; i < f->n_members; i++) {
      static const char *const mkeys[] = {"path", "size", "sha256", NULL};
      jp m = jp_index(&mem, i), mp = jp_key(&m, "path");
      if (!json_is_object(m.v)) return jp_expected(&m, "an object {path, size, sha256}");
      if (jp_keys(&m, mkeys) || dup_string(&m, "path", JP_REQUIRED, &f->members[i].path) ||
          get_digest(&m, false, &f->members[i].want))
        return -1;
      const char *p = f->members[i].path;
      size_t ul = strlen(f->unpack);
      if (!safe_relpath(p) || strncmp(p, f->unpack, ul) || p[ul] != '/')
        return jp_expected(&mp, "a relative path under the unpack directory, without '..'");
    }
  }
  if (sh.v) {
    json_t *n = jp_int(c, "shards", JP_REQUIRED, 1, 100000);
    if (!n) return -1;
    if (!strstr(f->name, "{shard}")) return jp_fail(&sh, "needs \"{shard}\" in the name (\"%s\")", f->name);
    if (reg_digest_known(&f->want)) return jp_fail(&sh, "sharded files cannot share one size or digest");
    *shards = (int)json_integer_value(n);
  } else if (strchr(f->name, '{')) {
    return jp_fail(&name, "\"%s\" holds '{' but the file has no \"shards\"", f->name);
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

static int parse_dataset(const jp *c, const char *name, reg_dataset *d) {
  static const char *const keys[] = {"kind", "description", "instructions", "files", NULL};
  static const char *const kinds[] = {"download", "manual", "embedded", NULL};  // reg_kind's order
  memset(d, 0, sizeof *d);
  d->name = xstrdup(name);
  if (!jp_value(c, JP_OBJECT, JP_REQUIRED) || jp_keys(c, keys) ||
      dup_string(c, "description", JP_REQUIRED, &d->description))
    return -1;
  int kind = jp_enum(c, "kind", JP_REQUIRED, kinds);
  if (kind < 0) return -1;
  d->kind = (reg_kind)kind;
  if (dup_string(c, "instructions", d->kind == REG_MANUAL ? JP_REQUIRED : JP_OPTIONAL, &d->instructions)) return -1;
  jp fs = jp_key(c, "files");
  if (!json_is_array(fs.v)) return jp_expected(&fs, "an array of files");
  size_t n_fs = json_array_size(fs.v);
  if (d->kind == REG_EMBEDDED && n_fs) return jp_fail(&fs, "an embedded set has no files");
  if (d->kind != REG_EMBEDDED && !n_fs) return jp_expected(&fs, "at least one file");
  int cap = 0;
  for (size_t i = 0; i < n_fs; i++) {
    jp fc = jp_index(&fs, i), mirrors = jp_key(&fc, "mirrors");
    reg_file f;
    int shards;
    if (parse_file(&fc, &f, &shards)) { file_free(&f); return -1; }
    if (d->kind == REG_DOWNLOAD && f.n_mirrors == 0) {
      file_free(&f);
      return jp_fail(&mirrors, "a download needs at least one mirror");
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
      if (!strcmp(d->files[i].name, d->files[j].name))
        return jp_fail(&fs, "names the file \"%s\" twice", d->files[i].name);
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
  jp_doc doc = {.file = path};
  jp c = jp_root(&doc, root), fmt = jp_key(&c, "format"), ds = jp_key(&c, "datasets");
  static const char *const keys[] = {"format", "comment", "datasets", NULL};
  int rc = -1;
  if (!jp_value(&c, JP_OBJECT, JP_REQUIRED) || jp_keys(&c, keys)) goto out;
  if (!json_is_string(fmt.v) || strcmp(json_string_value(fmt.v), "igpt-registry/1")) {
    jp_expected(&fmt, "\"igpt-registry/1\"");
    goto out;
  }
  if (!json_is_object(ds.v)) { jp_expected(&ds, "an object of data sets"); goto out; }
  r->sets = xcalloc(json_object_size(ds.v), sizeof *r->sets);
  const char *name;
  json_t *v;
  json_object_foreach((json_t *)ds.v, name, v) {
    jp s = jp_key(&ds, name);
    if (!safe_set_name(name)) { jp_fail(&s, "a data set name is letters, digits, '-', '_', '.'"); goto out; }
    int k = r->n_sets++;
    if (parse_dataset(&s, name, &r->sets[k])) goto out;
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
