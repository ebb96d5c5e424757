// npy reader/writer: round trips, byte orders and versions, numpy interop, hostile headers.
#include "testutil.h"
#include "base/npy.h"

// An npy file of the given version with header text h (padded with spaces and '\n' like numpy)
// followed by n data bytes. Caller frees.
static uint8_t *make_npy(int major, const char *h, const void *data, size_t n, size_t *len) {
  size_t pre = major == 1 ? 10 : 12, hl = strlen(h) + 1;
  hl += (64 - (pre + hl) % 64) % 64;
  uint8_t *b = xcalloc(1, pre + hl + n + 1);
  memcpy(b, "\x93NUMPY", 6);
  b[6] = (uint8_t)major;
  for (size_t k = 0; k < pre - 8; k++) b[8 + k] = (uint8_t)(hl >> (8 * k));
  memset(b + pre, ' ', hl);
  memcpy(b + pre, h, strlen(h));
  b[pre + hl - 1] = '\n';
  if (n) memcpy(b + pre + hl, data, n);
  *len = pre + hl + n;
  return b;
}

// Parses and returns 0 or -1; the error stays in igpt_errmsg().
static int try_parse(int major, const char *h, const void *data, size_t n) {
  size_t len;
  uint8_t *b = make_npy(major, h, data, n, &len);
  npy_array a;
  int rc = npy_parse(&a, b, len, "t.npy");
  if (rc == 0) npy_close(&a);
  free(b);
  return rc;
}

#define REJECTS(major, h, data, n, needle)                                                  \
  do {                                                                                      \
    cr_assert_eq(try_parse(major, h, data, n), -1, "accepted: %s", h);                      \
    cr_assert(strstr(igpt_errmsg(), needle) != NULL, "'%s' lacks '%s'", igpt_errmsg(), needle); \
    cr_assert(strstr(igpt_errmsg(), "t.npy") != NULL, "%s", igpt_errmsg());                \
  } while (0)

Test(npy, round_trip_every_dtype) {
  st_dtype dts[] = {ST_U8, ST_I8, ST_U16, ST_I16, ST_U32, ST_I32, ST_U64, ST_I64, ST_F32, ST_F64};
  for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
    uint8_t src[6 * 8];
    for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)(i * 37 + k);
    uint8_t *buf;
    size_t len;
    cr_assert_eq(npy_encode(dts[k], 2, (int64_t[]){2, 3}, src, &buf, &len), 0);
    cr_assert_eq((len - 6 * st_dtype_size(dts[k])) % 64, 0, "header not padded to 64");
    npy_array a;
    cr_assert_eq(npy_parse(&a, buf, len, "rt.npy"), 0, "%s", igpt_errmsg());
    cr_assert_eq(a.dtype, dts[k]);
    cr_assert_eq(a.ndim, 2);
    cr_assert_eq(a.shape[0], 2);
    cr_assert_eq(a.shape[1], 3);
    uint8_t out[6 * 8];
    cr_assert_eq(npy_convert(&a, dts[k], out), 0);
    cr_assert_eq(memcmp(out, src, 6 * st_dtype_size(dts[k])), 0);
    npy_close(&a);
    free(buf);
  }
}

Test(npy, scalar_and_empty_shapes) {
  float x = 2.5f;
  size_t len;
  uint8_t *b = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", &x, 4, &len);
  npy_array a;
  cr_assert_eq(npy_parse(&a, b, len, "s.npy"), 0, "%s", igpt_errmsg());
  cr_assert_eq(a.ndim, 0);
  cr_assert_eq(a.numel, 1);
  npy_close(&a);
  free(b);
  cr_assert_eq(try_parse(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", NULL, 0), 0,
               "%s", igpt_errmsg());
}

Test(npy, big_endian_and_versions) {
  // >i2 [-2, 258], >f8 [1.5], in format versions 1, 2 and 3
  uint8_t be_i2[] = {0xff, 0xfe, 0x01, 0x02};
  uint8_t be_f8[] = {0x3f, 0xf8, 0, 0, 0, 0, 0, 0};
  for (int v = 1; v <= 3; v++) {
    size_t len;
    uint8_t *b = make_npy(v, "{'descr': '>i2', 'fortran_order': False, 'shape': (2,), }", be_i2, 4, &len);
    npy_array a;
    cr_assert_eq(npy_parse(&a, b, len, "be.npy"), 0, "v%d: %s", v, igpt_errmsg());
    cr_assert_eq(a.major, v);
    int32_t out[2];
    cr_assert_eq(npy_convert(&a, ST_I32, out), 0, "%s", igpt_errmsg());
    cr_assert_eq(out[0], -2);
    cr_assert_eq(out[1], 258);
    npy_close(&a);
    free(b);
    b = make_npy(v, "{\"shape\": (1,), \"fortran_order\": False, \"descr\": \">f8\"}", be_f8, 8, &len);
    cr_assert_eq(npy_parse(&a, b, len, "be.npy"), 0, "v%d: %s", v, igpt_errmsg());
    float f;
    cr_assert_eq(npy_convert(&a, ST_F32, &f), 0);
    cr_assert_eq(f, 1.5f);
    npy_close(&a);
    free(b);
  }
}

Test(npy, conversions_are_range_checked) {
  int64_t v[3] = {0, 511, 70000};
  size_t len;
  uint8_t *b = make_npy(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", v, 24, &len);
  npy_array a;
  cr_assert_eq(npy_parse(&a, b, len, "c.npy"), 0);
  uint16_t u[3];
  cr_assert_eq(npy_convert(&a, ST_U16, u), -1);
  cr_assert(strstr(igpt_errmsg(), "element 2 is 70000") != NULL, "%s", igpt_errmsg());
  char want[32];
  snprintf(want, sizeof want, "offset %zu", a.data_offset + 16);
  cr_assert(strstr(igpt_errmsg(), want) != NULL, "%s", igpt_errmsg());
  double d[3];
  cr_assert_eq(npy_convert(&a, ST_F64, d), 0);
  cr_assert_eq(d[2], 70000.0);
  npy_close(&a);
  free(b);
  double f[2] = {3.0, 1.5};
  b = make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", f, 16, &len);
  cr_assert_eq(npy_parse(&a, b, len, "c.npy"), 0);
  int32_t i[2];
  cr_assert_eq(npy_convert(&a, ST_I32, i), -1);
  cr_assert(strstr(igpt_errmsg(), "element 1 is 1.5") != NULL, "%s", igpt_errmsg());
  npy_close(&a);
  free(b);
  int8_t neg = -1;
  b = make_npy(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (1,), }", &neg, 1, &len);
  cr_assert_eq(npy_parse(&a, b, len, "c.npy"), 0);
  uint8_t u8;
  cr_assert_eq(npy_convert(&a, ST_U8, &u8), -1);
  npy_close(&a);
  free(b);
}

Test(npy, rejects_malformed_headers) {
  float d[8] = {0};  // room for the trailing-bytes case
  const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  cr_assert_eq(try_parse(1, ok, d, 24), 0, "%s", igpt_errmsg());
  REJECTS(1, ok, d, 20, "truncated file");
  REJECTS(1, ok, d, 24 + 1, "trailing bytes");
  REJECTS(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", d, 24, "fortran_order is True");
  REJECTS(1, "{'descr': '|O', 'fortran_order': False, 'shape': (2, 3), }", d, 24, "pickles");
  REJECTS(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 3), }", d, 24, "structured");
  REJECTS(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", d, 24, "not supported");
  REJECTS(1, "{'descr': '|f4', 'fortran_order': False, 'shape': (2, 3), }", d, 24, "byte order");
  REJECTS(1, "{'descr': '<f4', 'shape': (2, 3), }", d, 24, "missing 'fortran_order'");
  REJECTS(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", d, 24, "unexpected key");
  REJECTS(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", d, 24, "shape");
  REJECTS(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6), }", d, 24, "1-tuple");
  REJECTS(1, "{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }", d, 24, "tuple");
  REJECTS(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } junk", d, 24, "after");
  REJECTS(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", d, 24, "twice");
  REJECTS(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, "
             "99999999999), }", d, 24, "overflow");
  REJECTS(1, "{'descr': '<f4, 'fortran_order': False}", d, 24, "expected");
  REJECTS(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), \xe9}", d, 24, "non-ASCII");
  // the offset names the byte where the header went wrong: 10 + position of 'True'
  const char *h = "{'descr': '<f4', 'fortran_order': True, 'shape': (6,), }";
  cr_assert_eq(try_parse(1, h, d, 24), -1);
  char want[32];
  snprintf(want, sizeof want, "offset %zu", 10 + (size_t)(strstr(h, "True") - h));
  cr_assert(strstr(igpt_errmsg(), want) != NULL, "%s lacks %s", igpt_errmsg(), want);
  // framing: magic, version, header length
  uint8_t bad[64] = "\x93NUMPX\x01\x00\x10\x00";
  npy_array a;
  cr_assert_eq(npy_parse(&a, bad, sizeof bad, "t.npy"), -1);
  cr_assert(strstr(igpt_errmsg(), "magic"), "%s", igpt_errmsg());
  memcpy(bad, "\x93NUMPY\x04\x00", 8);
  cr_assert_eq(npy_parse(&a, bad, sizeof bad, "t.npy"), -1);
  cr_assert(strstr(igpt_errmsg(), "version 4.0"), "%s", igpt_errmsg());
  memcpy(bad, "\x93NUMPY\x01\x00\xff\x7f", 10);
  cr_assert_eq(npy_parse(&a, bad, sizeof bad, "t.npy"), -1);
  cr_assert(strstr(igpt_errmsg(), "truncated"), "%s", igpt_errmsg());
  memcpy(bad, "\x93NUMPY\x02\x00\xff\xff\xff\x7f", 12);
  cr_assert_eq(npy_parse(&a, bad, sizeof bad, "t.npy"), -1);
  cr_assert(strstr(igpt_errmsg(), "limit"), "%s", igpt_errmsg());
  cr_assert_eq(npy_parse(&a, bad, 5, "t.npy"), -1);
  cr_assert_eq(npy_open(&a, "/nonexistent/x.npy"), -1);
  cr_assert(strstr(igpt_errmsg(), "/nonexistent/x.npy"), "%s", igpt_errmsg());
}

// Every prefix of a valid file is rejected (a truncated download), never read past its end.
Test(npy, every_truncation_rejected) {
  uint16_t d[4] = {1, 2, 3, 4};
  uint8_t *buf;
  size_t len;
  cr_assert_eq(npy_encode(ST_U16, 2, (int64_t[]){2, 2}, d, &buf, &len), 0);
  for (size_t n = 0; n < len; n++) {
    uint8_t *cut = xmalloc(n + 1);  // exact-size copy so ASan sees any overread
    memcpy(cut, buf, n);
    npy_array a;
    cr_assert_eq(npy_parse(&a, cut, n, "cut.npy"), -1, "prefix of %zu bytes accepted", n);
    free(cut);
  }
  free(buf);
}

// numpy writes what we read (versions 1-3, both byte orders) and reads what we write.
Test(npy, numpy_interop) {
  if (run_cmd("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0)
    cr_skip_test("numpy (Debian python3-numpy in /usr/bin/python3) not installed");
  char *dir = test_tmpdir("npy");
  int32_t mine[6] = {-5, 0, 7, 1 << 20, -(1 << 30), 42};
  char *mp = xasprintf("%s/mine.npy", dir);
  cr_assert_eq(npy_write(mp, ST_I32, 2, (int64_t[]){3, 2}, mine), 0, "%s", igpt_errmsg());
  char *cmd = xasprintf(
      "/usr/bin/python3 -c \"\n"
      "import numpy as np, numpy.lib.format as f\n"
      "m = np.load('%s/mine.npy')\n"
      "assert m.dtype == np.int32 and m.shape == (3, 2), (m.dtype, m.shape)\n"
      "assert m.tolist() == [[-5, 0], [7, 1 << 20], [-(1 << 30), 42]], m\n"
      "x = (np.arange(24).reshape(2, 3, 4) * 1.25 - 7).astype('>f8')\n"
      "for v in (1, 2, 3):\n"
      "    with open('%s/v%%d.npy' %% v, 'wb') as fh: f.write_array(fh, x, version=(v, 0))\n"
      "np.save('%s/u1.npy', np.arange(256, dtype=np.uint8))\n"
      "np.save('%s/fo.npy', np.asfortranarray(np.ones((2, 3))))\n"
      "np.save('%s/ob.npy', np.array([1, 'a'], dtype=object), allow_pickle=True)\n"
      "\"", dir, dir, dir, dir, dir);
  cr_assert_eq(run_cmd(cmd), 0, "numpy side failed");
  for (int v = 1; v <= 3; v++) {
    char *p = xasprintf("%s/v%d.npy", dir, v);
    int64_t shape[NPY_MAX_DIMS];
    int nd;
    float *x = npy_load(p, ST_F32, 3, shape, &nd);
    cr_assert_not_null(x, "%s", igpt_errmsg());
    cr_assert_eq(nd, 3);
    cr_assert(shape[0] == 2 && shape[1] == 3 && shape[2] == 4);
    for (int i = 0; i < 24; i++) cr_assert_eq(x[i], i * 1.25f - 7, "v%d element %d", v, i);
    free(x);
    free(p);
  }
  char *p = xasprintf("%s/u1.npy", dir);
  int64_t shape[NPY_MAX_DIMS];
  uint16_t *u = npy_load(p, ST_U16, 1, shape, NULL);
  cr_assert_not_null(u, "%s", igpt_errmsg());
  for (int i = 0; i < 256; i++) cr_assert_eq(u[i], i);
  free(u);
  cr_assert_null(npy_load(p, ST_U16, 2, shape, NULL));
  cr_assert(strstr(igpt_errmsg(), "expected 2"), "%s", igpt_errmsg());
  free(p);
  p = xasprintf("%s/fo.npy", dir);
  cr_assert_null(npy_load(p, ST_F32, -1, shape, NULL));
  cr_assert(strstr(igpt_errmsg(), "fortran_order"), "%s", igpt_errmsg());
  free(p);
  p = xasprintf("%s/ob.npy", dir);
  cr_assert_null(npy_load(p, ST_F32, -1, shape, NULL));
  cr_assert(strstr(igpt_errmsg(), "pickle"), "%s", igpt_errmsg());
  free(p);
  rm_rf(dir);
  free(cmd);
  free(mp);
  free(dir);
}
