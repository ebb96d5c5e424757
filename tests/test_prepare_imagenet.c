// prepare imagenet32: `igpt prepare` end to end on tiny zips written by Python (the real layout:
// Imagenet32_train.zip holding Imagenet32_train/train_data_batch_1..10 pickled with protocols
// 2 to 5, stored out of order; Imagenet32_val.zip holding val_data), then an incomplete download
// and a damaged batch.
#include "testutil.h"
#include "datasets/decode.h"
#include <jansson.h>

#define PER 5    // images per train batch
#define NVAL 5   // images in val_data

// Pixel of train image g (batch order) or val image g + 1000, as the Python side writes it.
static uint8_t pix(int g, int c, int y, int x) { return (uint8_t)((g * 7 + c * 50 + y * 3 + x) & 255); }

// Writes DIR/downloads/imagenet32/{Imagenet32_train,Imagenet32_val}.zip; skip leaves out that
// train batch, bad_label writes label 1001 into batch 3. NULL when numpy is missing.
static char *make_zips(int skip, int bad_label) {
  if (run_cmd("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) return NULL;
  char *dir = test_tmpdir("prep-inet");
  char *cmd = xasprintf(
      "/usr/bin/python3 -c \"\n"
      "import numpy as np, pickle, zipfile, os\n"
      "d = '%s/downloads/imagenet32'; os.makedirs(d)\n"
      "c, y, x = np.meshgrid(np.arange(3), np.arange(32), np.arange(32), indexing='ij')\n"
      "def img(g): return ((g * 7 + c * 50 + y * 3 + x) & 255).astype(np.uint8).reshape(-1)\n"
      "def batch(gs, p, lab): return pickle.dumps({'data': np.stack([img(g) for g in gs]), 'labels': lab,\n"
      "                                            'mean': np.zeros(3072)}, protocol=p)\n"
      "with zipfile.ZipFile(d + '/Imagenet32_train.zip', 'w') as z:\n"
      "  for k in (10, 3, 1, 2, 4, 5, 6, 7, 8, 9):\n"
      "    if k == %d: continue\n"
      "    gs = range((k - 1) * %d, k * %d)\n"
      "    lab = [g %% 2 * 999 + 1 for g in gs]\n"
      "    if %d and k == 3: lab[1] = 1001\n"
      "    z.writestr('Imagenet32_train/train_data_batch_%%d' %% k, batch(gs, 2 + k %% 4, lab))\n"
      "with zipfile.ZipFile(d + '/Imagenet32_val.zip', 'w') as z:\n"
      "  z.writestr('Imagenet32_val/val_data', batch(range(1000, 1000 + %d), 4, [7] * %d))\n"
      "\"", dir, skip, PER, PER, bad_label, NVAL, NVAL);
  int rc = run_cmd(cmd);
  free(cmd);
  cr_assert_eq(rc, 0, "the numpy side failed");
  return dir;
}

static int same_image(const image_set *s, int64_t i, int g) {
  for (int y = 0; y < 32; y++)
    for (int x = 0; x < 32; x++)
      for (int c = 0; c < 3; c++)
        if (s->pixels[(((size_t)i * 32 + y) * 32 + x) * 3 + c] != pix(g, c, y, x)) return 0;
  return 1;
}

static image_set load_split(const char *dir, const char *split) {
  char *p = xasprintf("%s/prepared/imagenet32-32/%s.safetensors", dir, split);
  image_set s;
  cr_assert_eq(images_load(&s, p), 0, "%s", igpt_errmsg());
  free(p);
  return s;
}

Test(prepare_imagenet, end_to_end_batch_order_and_split) {
  char *dir = make_zips(0, 0), *out;
  if (!dir) cr_skip_test("numpy (Debian python3-numpy in /usr/bin/python3) not installed");
  int rc = igpt_in(dir, "prepare imagenet32 --json", &out);
  cr_assert_eq(rc, 0, "%s", out);
  free(out);
  image_set tr = load_split(dir, "train"), va = load_split(dir, "val"), te = load_split(dir, "test");
  // 25 images in each of classes 0 and 999: round(4%) = 1 of each held out
  cr_assert_eq(tr.n, 10 * PER - 2);
  cr_assert_eq(va.n, 2);
  cr_assert_eq(te.n, NVAL);
  for (int i = 0; i < NVAL; i++) {
    cr_assert(same_image(&te, i, 1000 + i), "test image %d", i);
    cr_assert_eq(te.labels[i], 6);
  }
  // train and val keep the source order (batches 1..10, whatever the zip's order): each is an
  // ordered subsequence of it, labels following the images, and together they are all of it.
  int used[10 * PER] = {0};
  const image_set *parts[2] = {&tr, &va};
  for (int p = 0; p < 2; p++) {
    int g = 0;
    for (int64_t i = 0; i < parts[p]->n; i++) {
      while (g < 10 * PER && !same_image(parts[p], i, g)) g++;
      cr_assert_lt(g, 10 * PER, "part %d image %lld is no source image in order", p, (long long)i);
      cr_assert_eq(parts[p]->labels[i], g % 2 * 999, "part %d image %lld (source %d)", p, (long long)i, g);
      used[g]++;
    }
  }
  for (int g = 0; g < 10 * PER; g++) cr_assert_eq(used[g], 1, "source image %d used %d times", g, used[g]);
  image_set_free(&tr);
  image_set_free(&va);
  image_set_free(&te);
  char *mp = xasprintf("%s/prepared/imagenet32-32/meta.json", dir);
  json_t *m = json_load_file(mp, 0, NULL);
  cr_assert_not_null(m);
  cr_assert_eq(json_array_size(json_object_get(m, "classes")), 1000);
  cr_assert_eq(json_array_size(json_object_get(m, "sources")), 11, "one entry per decoded batch");
  json_decref(m);
  free(mp);
  rm_rf(dir);
  free(dir);
}

Test(prepare_imagenet, incomplete_and_damaged) {
  char *dir = make_zips(7, 0), *out;
  if (!dir) cr_skip_test("numpy (Debian python3-numpy in /usr/bin/python3) not installed");
  cr_assert_eq(igpt_in(dir, "prepare imagenet32", &out), 1);
  cr_assert(strstr(out, "no member train_data_batch_7"), "%s", out);
  free(out);
  rm_rf(dir);
  free(dir);
  dir = make_zips(0, 1);
  cr_assert_eq(igpt_in(dir, "prepare imagenet32", &out), 1);
  cr_assert(strstr(out, "Imagenet32_train.zip:Imagenet32_train/train_data_batch_3: byte offset"), "%s", out);
  cr_assert(strstr(out, "label 1001 of image 1 outside 1..1000"), "%s", out);
  free(out);
  char *prep = xasprintf("%s/prepared/imagenet32-32", dir);
  cr_assert(!path_exists(prep), "no output after a failure");
  free(prep);
  rm_rf(dir);
  free(dir);
}
