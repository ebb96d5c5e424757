// The rooms check (ci/layers.py) on the real tree, and on small trees with a planted upward
// include, a cycle and an include that names no room: each must fail and name the file and line.
#include "testutil.h"
#include <sys/stat.h>
#include <sys/wait.h>

// Runs ci/layers.py over ROOT, returns its exit status; its output goes to *out (caller frees).
static int run_layers(const char *root, char **out) {
  char *script = repo_path("ci/layers.py"), *log = xasprintf("%s.log", root);
  char *cmd = xasprintf("python3 '%s' '%s' >'%s' 2>&1", script, root, log);
  int st = system(cmd);
  uint8_t *data = NULL;
  size_t len = 0;
  cr_assert(file_read_all(log, &data, &len) == 0, "cannot read %s", log);
  *out = xrealloc(data, len + 1);
  (*out)[len] = 0;
  unlink(log);
  free(script), free(log), free(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void put(const char *root, const char *rel, const char *text) {
  char *p = xasprintf("%s/%s", root, rel);
  char *dir = xstrdup(p);
  *strrchr(dir, '/') = 0;
  cr_assert(mkdir_p(dir) == 0);
  cr_assert(file_write_atomic(p, text, strlen(text)) == 0);
  free(p), free(dir);
}

// A two-room tree: base below engine.
static char *tiny_tree(void) {
  char *t = test_tmpdir("layers");
  put(t, "ci/rooms.txt", "base runtime/base\nengine runtime/engine\n");
  put(t, "runtime/base/util.h", "#pragma once\n");
  put(t, "runtime/base/util.c", "#include \"base/util.h\"\n");
  put(t, "runtime/engine/model.h", "#pragma once\n#include \"base/util.h\"\n");
  put(t, "runtime/engine/model.c", "#include \"engine/model.h\"\n");
  return t;
}

Test(layers, real_tree_passes) {
  char *out, *root = xstrdup(test_root());
  int rc = run_layers(root, &out);
  cr_assert_eq(rc, 0, "the checkout breaks its rooms:\n%s", out);
  cr_assert(strstr(out, "no cycle"), "%s", out);
  free(out), free(root);
}

Test(layers, tiny_tree_passes) {
  char *t = tiny_tree(), *out;
  cr_assert_eq(run_layers(t, &out), 0, "%s", out);
  free(out), rm_rf(t), free(t);
}

Test(layers, upward_include_fails_naming_file_and_line) {
  char *t = tiny_tree(), *out;
  put(t, "runtime/base/util.c", "#include \"base/util.h\"\n#include \"engine/model.h\"\n");
  cr_assert_eq(run_layers(t, &out), 1, "%s", out);
  cr_assert(strstr(out, "runtime/base/util.c:2: #include \"engine/model.h\" goes up from room base to room engine"), "%s", out);
  free(out), rm_rf(t), free(t);
}

Test(layers, cycle_fails) {
  char *t = tiny_tree(), *out;
  put(t, "runtime/engine/train.h", "#pragma once\n#include \"engine/model.h\"\n");
  put(t, "runtime/engine/model.h", "#pragma once\n#include \"engine/train.h\"\n");
  cr_assert_eq(run_layers(t, &out), 1, "%s", out);
  cr_assert(strstr(out, "cycle between modules"), "%s", out);
  cr_assert(strstr(out, "runtime/engine/model.h:2"), "%s", out);
  free(out), rm_rf(t), free(t);
}

Test(layers, include_without_room_or_outside_rooms_fails) {
  char *t = tiny_tree(), *out;
  put(t, "runtime/base/util.c", "#include \"util.h\"\n");
  put(t, "runtime/engine/model.c", "#include \"tests/helper.h\"\n");
  put(t, "tests/helper.h", "#pragma once\n");
  cr_assert_eq(run_layers(t, &out), 1, "%s", out);
  cr_assert(strstr(out, "runtime/base/util.c:1: #include \"util.h\" names no room: write \"base/util.h\""), "%s", out);
  cr_assert(strstr(out, "runtime/engine/model.c:1: #include \"tests/helper.h\" reaches tests/helper.h, which is in no room"), "%s", out);
  free(out), rm_rf(t), free(t);
}
