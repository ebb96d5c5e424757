// decode_pickle: downsampled-ImageNet batches pickled by Python's own pickle (protocols 2, 4, 5
// of the real {'data', 'labels', 'mean'} structure) decode pixel for pixel and label for label;
// hand-written Python-2-style pickles too; hostile ones (foreign globals, truncations at every
// offset, huge declared lengths, bad labels, a wrong size) are refused with file and offset.
#include "testutil.h"
#include "datasets/decode.h"

#define HAS(msg, s) cr_assert(strstr((msg), (s)) != NULL, "expected '%s' in: %s", (s), (msg))

#define S 4   // fixture image size
#define N 3   // fixture images
static const int fixture_labels[N] = {1, 1000, 500};

// The value of (image, channel, row, col), as the Python side writes it.
static uint8_t pix(int i, int c, int y, int x) { return (uint8_t)((i * 31 + c * 101 + y * 7 + x * 3) & 255); }

static void check_batch(const image_set *s, const char *what) {
  cr_assert_eq(s->n, N, "%s", what);
  cr_assert(s->h == S && s->w == S && s->n_classes == 1000, "%s", what);
  for (int i = 0; i < N; i++) {
    cr_assert_eq(s->labels[i], fixture_labels[i] - 1, "%s: label of image %d", what, i);
    for (int y = 0; y < S; y++)
      for (int x = 0; x < S; x++)
        for (int c = 0; c < 3; c++)
          cr_assert_eq(s->pixels[(((size_t)i * S + y) * S + x) * 3 + c], pix(i, c, y, x),
                       "%s: image %d (%d,%d) channel %d", what, i, y, x, c);
  }
}

// Writes DIR/p{2,4,5}.pkl (the real structure), DIR/core2.pkl (numpy._core's name), DIR/lab0.pkl
// and DIR/lab1001.pkl (labels out of range), DIR/bkeys.pkl (bytes keys), DIR/evil.pkl (os.system).
static char *make_fixtures(void) {
  if (run_cmd("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) return NULL;
  char *dir = test_tmpdir("pickle");
  char *cmd = xasprintf(
      "/usr/bin/python3 -c \"\n"
      "import numpy as np, pickle, os\n"
      "S, N = %d, %d\n"
      "d = np.zeros((N, 3 * S * S), np.uint8)\n"
      "for i in range(N):\n"
      "  for c in range(3):\n"
      "    for y in range(S):\n"
      "      for x in range(S): d[i, c * S * S + y * S + x] = (i * 31 + c * 101 + y * 7 + x * 3) & 255\n"
      "lab = [1, 1000, 500]\n"
      "b = {'data': d, 'labels': lab, 'mean': d.mean(0)}\n"
      "def w(n, o, p=2):\n"
      "  open(os.path.join('%s', n), 'wb').write(o if isinstance(o, bytes) else pickle.dumps(o, protocol=p))\n"
      "for p in (2, 4, 5): w('p%%d.pkl' %% p, b, p)\n"
      "w('core2.pkl', pickle.dumps(b, protocol=2).replace(b'numpy.core.multiarray', b'numpy._core.multiarray'))\n"
      "w('lab0.pkl', dict(b, labels=[1, 0, 5]), 4)\n"
      "w('lab1001.pkl', dict(b, labels=[1, 1001, 5]), 4)\n"
      "w('labstr.pkl', dict(b, labels=[1, 'x', 5]), 4)\n"
      "w('short.pkl', dict(b, labels=[1, 2]), 4)\n"
      "w('f8.pkl', dict(b, data=d.astype(np.float64)), 4)\n"
      "w('bkeys.pkl', {k.encode(): v for k, v in b.items()}, 2)\n"
      "class E:\n"
      "  def __reduce__(self): return (os.system, ('true',))\n"
      "w('evil.pkl', {'data': E(), 'labels': lab}, 4)\n"
      "\"", S, N, dir);
  int rc = run_cmd(cmd);
  free(cmd);
  cr_assert_eq(rc, 0, "the numpy side failed");
  return dir;
}

static int decode_file(const char *dir, const char *file, int size, image_set *s, uint8_t **buf, size_t *len) {
  char *p = xasprintf("%s/%s", dir, file);
  cr_assert_eq(file_read_all(p, buf, len), 0, "%s", igpt_errmsg());
  free(p);
  return decode_imagenet_batch(*buf, *len, file, size, s);
}

Test(decode_pickle, python_protocols_2_4_5) {
  char *dir = make_fixtures();
  if (!dir) cr_skip_test("numpy (Debian python3-numpy in /usr/bin/python3) not installed");
  const char *files[] = {"p2.pkl", "p4.pkl", "p5.pkl", "core2.pkl", "bkeys.pkl"};
  for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
    image_set s;
    uint8_t *buf;
    size_t len;
    cr_assert_eq(decode_file(dir, files[k], S, &s, &buf, &len), 0, "%s", igpt_errmsg());
    check_batch(&s, files[k]);
    image_set_free(&s);
    free(buf);
  }
  rm_rf(dir);
  free(dir);
}

Test(decode_pickle, refuses_bad_batches) {
  char *dir = make_fixtures();
  if (!dir) cr_skip_test("numpy (Debian python3-numpy in /usr/bin/python3) not installed");
  struct { const char *file, *want; int size; } bad[] = {
      {"lab0.pkl", "label 0 of image 1 outside 1..1000", S},
      {"lab1001.pkl", "label 1001 of image 1 outside 1..1000", S},
      {"labstr.pkl", "label of image 1 is a str", S},
      {"short.pkl", "2 labels for 3 images", S},
      {"f8.pkl", "expected uint8", S},
      {"p4.pkl", "expected [N, 192] for 8x8 images", 8},  // a 4x4 batch read as 8x8
      {"evil.pkl", "global posix.system is not allowed", S},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    image_set s;
    uint8_t *buf;
    size_t len;
    cr_assert_eq(decode_file(dir, bad[k].file, bad[k].size, &s, &buf, &len), -1, "%s decoded", bad[k].file);
    HAS(igpt_errmsg(), bad[k].file);
    HAS(igpt_errmsg(), "byte offset");
    HAS(igpt_errmsg(), bad[k].want);
    free(buf);
  }
  rm_rf(dir);
  free(dir);
}

// Every proper prefix of a real pickle is refused with a message, never read past its end.
Test(decode_pickle, truncated_at_every_offset) {
  char *dir = make_fixtures();
  if (!dir) cr_skip_test("numpy (Debian python3-numpy in /usr/bin/python3) not installed");
  const char *files[] = {"p2.pkl", "p5.pkl"};
  for (size_t k = 0; k < 2; k++) {
    image_set s;
    uint8_t *buf;
    size_t len;
    cr_assert_eq(decode_file(dir, files[k], S, &s, &buf, &len), 0, "%s", igpt_errmsg());
    image_set_free(&s);
    for (size_t cut = 0; cut < len; cut++) {
      uint8_t *part = xmalloc(cut ? cut : 1);  // exact size, so ASan sees a read past the end
      memcpy(part, buf, cut);
      cr_assert_eq(decode_imagenet_batch(part, cut, "cut.pkl", S, &s), -1, "%s cut at %zu decoded", files[k], cut);
      HAS(igpt_errmsg(), "cut.pkl: byte offset");
      free(part);
    }
    free(buf);
  }
  rm_rf(dir);
  free(dir);
}

// A Python-2-style batch written by hand: BINSTRING keys and data, GLOBAL by name; one 1x1 image.
static const char py2[] =
    "\x80\x02}(U\x04" "data" "cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01" "b\x87R"
    "(K\x01K\x01K\x03\x86" "cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    "\x89U\x03" "abctbU\x06labels](K\x07" "eu.";

Test(decode_pickle, python2_binstring) {
  image_set s;
  cr_assert_eq(decode_imagenet_batch((const uint8_t *)py2, sizeof py2 - 1, "py2.pkl", 1, &s), 0, "%s", igpt_errmsg());
  cr_assert_eq(s.n, 1);
  cr_assert(s.pixels[0] == 'a' && s.pixels[1] == 'b' && s.pixels[2] == 'c');
  cr_assert_eq(s.labels[0], 6);
  image_set_free(&s);
}

#define B(lit) lit, sizeof(lit) - 1  // a literal and its length (it may hold NULs)
Test(decode_pickle, hostile_inputs) {
  struct { const char *in; size_t len; const char *want; } bad[] = {
      {B("\x80\x02" "cos\nsystem\nX\x04\x00\x00\x00true\x85R."), "global os.system is not allowed"},
      {B("\x80\x04\x8c\x08" "builtins\x8c\x04" "eval\x93."), "global builtins.eval is not allowed"},
      {B("\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f"), "declares 9223372036854775807 bytes but only 0 remain"},
      {B("\x80\x04X\xff\xff\xff\xff" "ab"), "declares 4294967295 bytes but only 2 remain"},
      {B("\x80\x04\x95\x00\x00\x00\x00\x00\x00\x01\x00}."), "FRAME declares"},
      {B("\x80\x02h\x05."), "memo index 5 was never stored"},
      {B("\x80\x02r\xff\xff\xff\x7f."), "memo store with an empty stack"},
      {B("\x80\x02N\x94r\xff\xff\xff\x7f."), "beyond the file's size"},
      {B("\x80\x02s."), "stack underflow"},
      {B("\x80\x02(K\x01K\x02u."), "no container below"},
      {B("\x80\x02]K\x01s."), "stack underflow"},
      {B("\x80\x02(."), "stack underflow"},
      {B("\x80\x02NN."), "STOP leaves 1 values"},
      {B("\x80\x02I1\n."), "opcode 0x49 is not supported"},
      {B("\x80\x07}."), "pickle protocol 7"},
      {B("}."), "no pickle PROTO opcode"},
      {B("\x80\x02K\x01."), "holds a int, expected a dict"},
      {B("\x80\x02}."), "the dict lacks 'data'"},
      {B("\x80\x02" "cnumpy\nndarray\n)R."), "numpy.ndarray cannot be called"},
      {B("\x80\x02" "cnumpy\ndtype\nX\x02\x00\x00\x00O8\x85R."), "unsupported dtype string"},
      {B("\x80\x02\x8a\x09" "123456789."), "LONG1 of 9 bytes"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    image_set s;
    uint8_t *in = xmalloc(bad[k].len);  // exact size for ASan
    memcpy(in, bad[k].in, bad[k].len);
    cr_assert_eq(decode_imagenet_batch(in, bad[k].len, "bad.pkl", 32, &s), -1, "case %zu decoded", k);
    HAS(igpt_errmsg(), "bad.pkl: byte offset");
    HAS(igpt_errmsg(), bad[k].want);
    free(in);
  }
}

// A file of nothing but EMPTY_LIST opcodes stops at the value limit, not at the memory's.
Test(decode_pickle, value_limit) {
  size_t len = (1 << 22) + 100;
  uint8_t *in = xmalloc(len);
  memset(in, ']', len);
  in[0] = 0x80;
  in[1] = 2;
  image_set s;
  cr_assert_eq(decode_imagenet_batch(in, len, "lists.pkl", 32, &s), -1);
  HAS(igpt_errmsg(), "lists.pkl: byte offset 4194306: more than 4194304 values");
  free(in);
}
