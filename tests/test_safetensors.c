// safetensors reader/writer: reads the HF oracle, round-trips, and rejects malformed files.
#include "testutil.h"
#include "base/safetensors.h"

Test(safetensors, reads_hf_oracle) {
  char *p = oracle_path("hf-imagegpt-tiny/model.safetensors");
  st_file f;
  cr_assert_eq(st_open(&f, p), 0, "%s", igpt_errmsg());
  const st_tensor *wte = st_expect(&f, "transformer.wte.weight", ST_F32, 2, (int64_t[]){17, 64});
  cr_assert_not_null(wte, "%s", igpt_errmsg());
  cr_assert_null(st_expect(&f, "transformer.wte.weight", ST_F64, 2, NULL));
  cr_assert(strstr(igpt_errmsg(), "dtype F32") != NULL, "%s", igpt_errmsg());
  st_close(&f);
  free(p);
}

Test(safetensors, round_trip_with_metadata) {
  char *dir = test_tmpdir("st");
  char *path = xasprintf("%s/a.safetensors", dir);
  float x[6] = {1, 2, 3, 4, 5, 6};
  uint16_t tok[3] = {7, 8, 511};
  st_writer *w = st_writer_new();
  st_writer_add(w, "x", ST_F32, 2, (int64_t[]){2, 3}, x);
  st_writer_add(w, "tokens", ST_U16, 1, (int64_t[]){3}, tok);
  st_writer_meta(w, "config", "{\"n_layer\":2}");
  cr_assert_eq(st_writer_save(w, path), 0, "%s", igpt_errmsg());
  st_writer_free(w);
  st_file f;
  cr_assert_eq(st_open(&f, path), 0, "%s", igpt_errmsg());
  const st_tensor *t = st_expect(&f, "x", ST_F32, 2, (int64_t[]){2, 3});
  cr_assert_not_null(t);
  cr_assert_eq(memcmp(t->data, x, sizeof x), 0);
  t = st_expect(&f, "tokens", ST_U16, 1, (int64_t[]){3});
  cr_assert_eq(memcmp(t->data, tok, sizeof tok), 0);
  cr_assert_str_eq(st_meta(&f, "config"), "{\"n_layer\":2}");
  cr_assert_eq(((uintptr_t)t->data - (uintptr_t)f.map) % 2, 0);
  st_close(&f);
  rm_rf(dir);
  free(path);
  free(dir);
}

static int parse_str(const char *json, size_t data_len) {
  size_t jl = strlen(json);
  size_t n = 8 + jl + data_len;
  uint8_t *buf = calloc(1, n);
  for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)jl >> (8 * i));
  memcpy(buf + 8, json, jl);
  st_file f = {0};
  int rc = st_parse(&f, buf, n, "test");
  if (rc == 0) st_close(&f);
  free(buf);
  return rc;
}

Test(safetensors, rejects_malformed) {
  cr_assert_eq(parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), 0, "%s", igpt_errmsg());
  cr_assert_eq(parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4), -1);  // truncated
  cr_assert(strstr(igpt_errmsg(), "past the data section"), "%s", igpt_errmsg());
  cr_assert_eq(parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), -1);  // shape
  cr_assert_eq(parse_str("{\"a\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), -1);   // dtype
  cr_assert_eq(parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), -1);  // overlap
  cr_assert(strstr(igpt_errmsg(), "overlap"), "%s", igpt_errmsg());
  cr_assert_eq(parse_str("{\"a\":{\"dtype\":\"U8\",\"shape\":[100],\"data_offsets\":[0,100]},"
                         "\"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[10,10]},"
                         "\"b\":{\"dtype\":\"U8\",\"shape\":[10],\"data_offsets\":[50,60]}}", 100), -1);  // nested
  cr_assert_eq(parse_str("[1,2]", 0), -1);
  cr_assert_eq(parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0), -1);
  cr_assert_eq(parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8), -1);
  cr_assert_eq(parse_str("{\"__metadata__\":{\"k\":3}}", 0), -1);
  uint8_t huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
  st_file f;
  cr_assert_eq(st_parse(&f, huge, sizeof huge, "huge"), -1);
  cr_assert(strstr(igpt_errmsg(), "limit"), "%s", igpt_errmsg());
}

