// fuzz replay: every input kept under tests/fixtures/fuzz/<harness>/ (seeds and inputs that once
// crashed a decoder) goes through the same entry points as the libFuzzer harnesses, so `make test`
// (under ASan+UBSan with SAN=1) guards the fixes without clang.
#include "testutil.h"
#include "fuzz/fuzz_decode.h"
#include <dirent.h>

static int replay_dir(const char *harness, int (*one)(const uint8_t *, size_t)) {
  char *rel = xasprintf("tests/fixtures/fuzz/%s", harness), *dir = repo_path(rel);
  free(rel);
  DIR *d = opendir(dir);
  cr_assert_not_null(d, "%s: cannot open the fuzz fixtures", dir);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char *p = xasprintf("%s/%s", dir, e->d_name);
    uint8_t *buf;
    size_t len;
    cr_assert_eq(file_read_all(p, &buf, &len), 0, "%s", igpt_errmsg());
    one(buf, len);  // aborts (fails the test) on a violated property; ASan catches the rest
    free(buf);
    free(p);
    n++;
  }
  closedir(d);
  free(dir);
  return n;
}

Test(fuzz_replay, cifar) { cr_assert_gt(replay_dir("cifar", fuzz_cifar_one), 0); }
Test(fuzz_replay, stl10) { cr_assert_gt(replay_dir("stl10", fuzz_stl10_one), 0); }
Test(fuzz_replay, idx) { cr_assert_gt(replay_dir("idx", fuzz_idx_one), 0); }
Test(fuzz_replay, npy) { cr_assert_gt(replay_dir("npy", fuzz_npy_one), 0); }
Test(fuzz_replay, safetensors) { cr_assert_gt(replay_dir("safetensors", fuzz_safetensors_one), 10); }
Test(fuzz_replay, pickle) { cr_assert_gt(replay_dir("pickle", fuzz_pickle_one), 0); }
