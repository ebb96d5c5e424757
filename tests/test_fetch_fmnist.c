// End to end, no network: `igpt fetch fashion-mnist` takes Debian's dataset-fashion-mnist files
// through the file:// mirror, verifies them by their decompressed content (Debian re-compressed
// them, so upstream's published .gz md5 does not match) and `igpt verify` re-checks the cache.
#include "testutil.h"
#include <jansson.h>
#include <zlib.h>

#define DEBIAN_DIR "/usr/share/datasets/fashion-mnist"

// Counts of each label in a gzipped IDX1 label file (magic 0x00000801, big-endian count).
static void label_counts(const char *path, int expect_n, int counts[10]) {
  gzFile g = gzopen(path, "rb");
  cr_assert_not_null(g, "%s", path);
  unsigned char h[8];
  cr_assert_eq(gzread(g, h, 8), 8);
  cr_assert(h[0] == 0 && h[1] == 0 && h[2] == 8 && h[3] == 1, "%s: not an IDX1 label file", path);
  int n = (h[4] << 24) | (h[5] << 16) | (h[6] << 8) | h[7];
  cr_assert_eq(n, expect_n);
  unsigned char *l = xmalloc((size_t)n);
  cr_assert_eq(gzread(g, l, (unsigned)n), n);
  gzclose(g);
  memset(counts, 0, 10 * sizeof *counts);
  for (int i = 0; i < n; i++) {
    cr_assert(l[i] < 10, "%s: label %d at %d", path, l[i], i);
    counts[l[i]]++;
  }
  free(l);
}

Test(fetch_fmnist, offline_from_debian_package, .timeout = 60) {
  if (!path_exists(DEBIAN_DIR "/train-images-idx3-ubyte.gz"))
    cr_skip_test("%s is absent (Debian package dataset-fashion-mnist not installed)", DEBIAN_DIR);
  char *tmp = test_tmpdir("fmnist"), *bin = igpt_bin();
  char *out = xasprintf("%s/out.json", tmp), *err = xasprintf("%s/err.txt", tmp);
  // Proxies pointing nowhere: the fetch must not need the network at all.
  char *env = xasprintf("http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 IGPT_FETCH_RETRIES=0 "
                        "IGPT_REGISTRY=%s/datasets/registry.json", test_root());
  char *cmd = xasprintf("%s %s fetch fashion-mnist --data %s/data --json >%s 2>%s", env, bin, tmp, out, err);
  int rc = run_cmd(cmd);
  uint8_t *text = NULL, *etext = NULL;
  size_t n;
  file_read_all(err, &etext, &n);
  cr_assert_eq(rc, 0, "igpt fetch failed: %s", etext);
  cr_assert_eq(file_read_all(out, &text, &n), 0);
  json_t *j = json_loads((char *)text, 0, NULL);
  cr_assert_not_null(j, "not JSON: %s", text);
  json_t *files = json_object_get(json_object_get(json_object_get(j, "datasets"), "fashion-mnist"), "files");
  cr_assert_eq(json_array_size(files), 4);
  for (size_t i = 0; i < 4; i++) {
    json_t *f = json_array_get(files, i);
    const char *how = json_string_value(json_object_get(f, "verified_by"));
    cr_assert(how && strstr(how, "decompressed content sha256"), "%s", how ? how : "(none)");
    cr_assert(!strncmp(json_string_value(json_object_get(f, "url")), "file://" DEBIAN_DIR, 7 + strlen(DEBIAN_DIR)));
  }
  json_decref(j);
  free(text);
  free(etext);
  free(cmd);
  // The label counts match the IDX files: Fashion-MNIST is balanced, 6000 / 1000 per class.
  int counts[10];
  char *p = xasprintf("%s/data/downloads/fashion-mnist/train-labels-idx1-ubyte.gz", tmp);
  label_counts(p, 60000, counts);
  for (int c = 0; c < 10; c++) cr_assert_eq(counts[c], 6000, "class %d", c);
  free(p);
  p = xasprintf("%s/data/downloads/fashion-mnist/t10k-labels-idx1-ubyte.gz", tmp);
  label_counts(p, 10000, counts);
  for (int c = 0; c < 10; c++) cr_assert_eq(counts[c], 1000, "class %d", c);
  free(p);
  // verify and an offline fetch both accept the cache; a damaged file is caught.
  cmd = xasprintf("%s %s verify fashion-mnist --data %s/data >/dev/null 2>%s", env, bin, tmp, err);
  cr_assert_eq(run_cmd(cmd), 0);
  free(cmd);
  cmd = xasprintf("%s %s fetch fashion-mnist --offline --data %s/data >/dev/null 2>%s", env, bin, tmp, err);
  cr_assert_eq(run_cmd(cmd), 0);
  free(cmd);
  p = xasprintf("%s/data/downloads/fashion-mnist/t10k-labels-idx1-ubyte.gz", tmp);
  FILE *f = fopen(p, "r+b");
  fseek(f, 100, SEEK_SET);
  fputc(0x55, f);
  fclose(f);
  cmd = xasprintf("%s %s verify fashion-mnist --data %s/data >/dev/null 2>%s", env, bin, tmp, err);
  cr_assert_eq(run_cmd(cmd), 1);
  cr_assert_eq(file_read_all(err, &etext, &n), 0);
  cr_assert(strstr((char *)etext, "t10k-labels-idx1-ubyte.gz"), "%s", etext);
  free(etext);
  free(cmd);
  free(p);
  rm_rf(tmp);
  free(tmp); free(bin); free(out); free(err); free(env);
}
