// registry: the shipped registry loads; malformed registries are refused naming file and JSON path.
#include "testutil.h"
#include "datasets/registry.h"

Test(registry, shipped_registry_loads) {
  char *p = repo_path("datasets/registry.json");
  registry r;
  cr_assert_eq(registry_load(&r, p), 0, "%s", igpt_errmsg());
  const char *need[] = {"cifar10", "cifar100", "stl10", "fashion-mnist", "igpt-palette", "igpt-cifar10",
                        "igpt-imagenet", "igpt-s-ckpt", "igpt-m-ckpt", "igpt-l-ckpt", "imagenet32",
                        "imagenet64", "synthetic"};
  for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
    cr_assert_not_null(registry_find(&r, need[i]), "%s", igpt_errmsg());
  const reg_dataset *fm = registry_find(&r, "fashion-mnist");
  cr_assert_eq(fm->n_files, 4);
  for (int i = 0; i < 4; i++) {
    cr_assert(fm->files[i].has_decompressed);
    cr_assert_eq(strlen(fm->files[i].decompressed.sha256), 64);
    cr_assert(!strncmp(fm->files[i].mirrors[0], "file:///usr/share/datasets/fashion-mnist/", 41));
  }
  const reg_dataset *l = registry_find(&r, "igpt-l-ckpt");
  cr_assert_eq(l->n_files, 66);  // 64 shards + index + meta (download.py: l has 64 shards)
  cr_assert_str_eq(l->files[63].name, "model.ckpt-1000000.data-00063-of-00064");
  cr_assert(strstr(l->files[63].mirrors[0], "/igpt-l/1000000/model.ckpt-1000000.data-00063-of-00064"));
  const reg_dataset *c = registry_find(&r, "cifar10");
  cr_assert_str_eq(c->files[0].want.md5, "c32a1d4ab5d03f1284b67883e8d87530");
  cr_assert_eq(c->files[0].want.size, -1);
  const reg_dataset *in = registry_find(&r, "igpt-imagenet");
  cr_assert_eq(in->files[0].max_size, (int64_t)12 << 30, "imagenet_trX.npy (int64: 10.5 GB) passes the 4 GiB default cap");
  cr_assert_eq(in->files[1].max_size, -1);
  cr_assert_eq(registry_find(&r, "cifar11"), NULL);
  cr_assert(strstr(igpt_errmsg(), "known: cifar10"), "%s", igpt_errmsg());
  registry_free(&r);
  free(p);
}

// Writes json to a temporary registry, loads it, returns the load status (error in igpt_errmsg).
static int load_str(const char *json) {
  char *dir = test_tmpdir("reg");
  char *p = xasprintf("%s/registry.json", dir);
  cr_assert_eq(file_write_atomic(p, json, strlen(json)), 0);
  registry r;
  int rc = registry_load(&r, p);
  if (rc == 0) registry_free(&r);
  rm_rf(dir);
  free(p);
  free(dir);
  return rc;
}

#define FILE_OK "\"name\":\"a.bin\",\"mirrors\":[\"http://x/a\"],\"size\":3,\"sha256\":null,\"md5\":null,\"format\":\"binary\""
#define WRAP(files) "{\"format\":\"igpt-registry/1\",\"datasets\":{\"t\":{\"kind\":\"download\",\"description\":\"d\",\"files\":[" files "]}}}"

static void expect_err(const char *json, const char *path_part, const char *what) {
  cr_assert_eq(load_str(json), -1, "accepted: %s", json);
  cr_assert(strstr(igpt_errmsg(), "registry.json: "), "no file in: %s", igpt_errmsg());
  cr_assert(strstr(igpt_errmsg(), path_part), "no '%s' in: %s", path_part, igpt_errmsg());
  cr_assert(strstr(igpt_errmsg(), what), "no '%s' in: %s", what, igpt_errmsg());
}

Test(registry, refuses_malformed_with_json_path) {
  cr_assert_eq(load_str(WRAP("{" FILE_OK "}")), 0, "%s", igpt_errmsg());
  expect_err(WRAP("{" FILE_OK ",\"sha265\":null}"), "$.datasets.t.files[0].sha265", "unknown key");
  expect_err(WRAP("{\"name\":\"a\",\"mirrors\":[\"http://x/a\"],\"size\":-4,\"sha256\":null,\"md5\":null,\"format\":\"binary\"}"),
             "$.datasets.t.files[0].size", "found an integer (-4)");
  expect_err(WRAP("{\"name\":\"a\",\"mirrors\":[\"http://x/a\"],\"size\":1,\"sha256\":\"ABC\",\"md5\":null,\"format\":\"binary\"}"),
             "$.datasets.t.files[0].sha256", "64 lowercase hex");
  expect_err(WRAP("{\"name\":\"a\",\"mirrors\":[\"http://x/a\"],\"size\":1,\"md5\":null,\"format\":\"binary\"}"),
             "$.datasets.t.files[0].sha256", "missing (write null");
  expect_err(WRAP("{\"name\":\"a\",\"mirrors\":[\"ftp://x/a\"],\"size\":1,\"sha256\":null,\"md5\":null,\"format\":\"binary\"}"),
             "$.datasets.t.files[0].mirrors[0]", "URL");
  expect_err(WRAP("{" FILE_OK "},{" FILE_OK "}"), "$.datasets.t.files", "twice");
  expect_err(WRAP("{\"name\":\"a.tgz\",\"mirrors\":[\"http://x/a\"],\"size\":1,\"sha256\":null,\"md5\":null,"
                  "\"format\":\"tar.gz\",\"unpack\":\"d\",\"members\":[{\"path\":\"d/../../etc\",\"size\":1,\"sha256\":null}]}"),
             "$.datasets.t.files[0].members[0].path", "without '..'");
  expect_err(WRAP("{" FILE_OK ",\"decompressed\":{\"size\":1,\"sha256\":null,\"md5\":null}}"),
             "$.datasets.t.files[0].decompressed", "only a gzip");
  // max_size caps a file of unknown size only
  cr_assert_eq(load_str(WRAP("{\"name\":\"a\",\"mirrors\":[\"http://x/a\"],\"size\":null,\"sha256\":null,\"md5\":null,"
                             "\"format\":\"binary\",\"max_size\":1000}")), 0, "%s", igpt_errmsg());
  expect_err(WRAP("{" FILE_OK ",\"max_size\":1000}"), "$.datasets.t.files[0].max_size", "the size is known");
  expect_err(WRAP("{\"name\":\"a\",\"mirrors\":[\"http://x/a\"],\"size\":null,\"sha256\":null,\"md5\":null,"
                  "\"format\":\"binary\",\"max_size\":0}"), "$.datasets.t.files[0].max_size", "");
  expect_err("{\"format\":\"igpt-registry/2\",\"datasets\":{}}", "$.format", "igpt-registry/1");
  cr_assert_eq(load_str("{\"format\":"), -1);
  cr_assert(strstr(igpt_errmsg(), "not valid JSON"), "%s", igpt_errmsg());
}
