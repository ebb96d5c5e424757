// palette_io: palette files (safetensors `clusters`, or an official .npy) and PNG grids (libpng).
#include "datasets/palette.h"
#include "base/npy.h"
#include "base/safetensors.h"
#include "base/util.h"
#include <png.h>
#include <stdlib.h>
#include <string.h>

int palette_load(const char *path, float **centres, int *K) {
  *centres = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return igpt_err("%s: cannot open palette: %m", path);
  unsigned char magic[6] = {0};
  size_t got = fread(magic, 1, sizeof magic, f);
  fclose(f);
  int64_t shape[NPY_MAX_DIMS] = {0};
  if (got == 6 && memcmp(magic, "\x93NUMPY", 6) == 0) {
    float *c = npy_load(path, ST_F32, 2, shape, NULL);
    if (!c) return -1;
    if (shape[1] != 3 || shape[0] < 1 || shape[0] > PALETTE_MAX_K) {
      free(c);
      return igpt_err("%s: palette array has shape (%lld, %lld); expected (K, 3) with K in 1..%d",
                      path, (long long)shape[0], (long long)shape[1], PALETTE_MAX_K);
    }
    if (palette_check(c, (int)shape[0], path) != 0) {
      free(c);
      return -1;
    }
    *centres = c;
    *K = (int)shape[0];
    return 0;
  }
  st_file sf;
  if (st_open(&sf, path) != 0) return igpt_err_prefix("palette (neither .npy nor safetensors)");
  const st_tensor *t = st_expect(&sf, "clusters", ST_F32, 2, (int64_t[]){-1, 3});
  if (t && (t->shape[0] < 1 || t->shape[0] > PALETTE_MAX_K)) {
    igpt_err("%s: `clusters` has %lld rows; expected 1..%d", path, (long long)t->shape[0], PALETTE_MAX_K);
    t = NULL;
  }
  if (!t || palette_check(t->data, (int)t->shape[0], path) != 0) {
    st_close(&sf);
    return -1;
  }
  *K = (int)t->shape[0];
  *centres = xmalloc(sizeof(float) * 3 * (size_t)*K);
  memcpy(*centres, t->data, sizeof(float) * 3 * (size_t)*K);
  st_close(&sf);
  return 0;
}

int palette_save(const char *path, const float *centres, int K, const char *const *meta) {
  st_writer *w = st_writer_new();
  st_writer_add(w, "clusters", ST_F32, 2, (int64_t[]){K, 3}, centres);
  for (int i = 0; meta && meta[i]; i += 2) st_writer_meta(w, meta[i], meta[i + 1]);
  int rc = st_writer_save(w, path);
  st_writer_free(w);
  return rc;
}

int palette_png_grid(const char *path, const uint8_t *rgb, int n, int h, int w, int cols) {
  const int gap = 2;
  if (n < 1 || cols < 1) return igpt_err("%s: no images for the grid", path);
  int rows = (n + cols - 1) / cols;
  if (cols > n) cols = n;
  size_t W = (size_t)cols * (w + gap) + gap, H = (size_t)rows * (h + gap) + gap;
  uint8_t *img = xmalloc(W * H * 3);
  memset(img, 255, W * H * 3);
  for (int i = 0; i < n; i++) {
    size_t y0 = gap + (size_t)(i / cols) * (h + gap), x0 = gap + (size_t)(i % cols) * (w + gap);
    for (int y = 0; y < h; y++)
      memcpy(img + ((y0 + y) * W + x0) * 3, rgb + (((size_t)i * h + y) * w) * 3, (size_t)w * 3);
  }
  atomic_file a;
  if (atomic_open(&a, path) != 0) { free(img); return -1; }
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  png_bytep *rowp = xmalloc(sizeof(png_bytep) * H);
  for (size_t y = 0; y < H; y++) rowp[y] = img + y * W * 3;
  if (!png || !info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    atomic_abort(&a);
    free(rowp);
    free(img);
    return igpt_err("%s: libpng failed to write the grid", path);
  }
  png_init_io(png, a.f);
  png_set_IHDR(png, info, (png_uint_32)W, (png_uint_32)H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rowp);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  free(rowp);
  free(img);
  return atomic_commit(&a);
}
