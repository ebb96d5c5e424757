// pngio: PNG encode/decode through libpng's simplified API and image grids. See pngio.h.
#include "reports/pngio.h"
#include "base/util.h"
#include <png.h>
#include <stdlib.h>
#include <string.h>

int pngio_encode(const uint8_t *rgb, int w, int h, uint8_t **out, size_t *len) {
  png_image im;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  im.width = (png_uint_32)w;
  im.height = (png_uint_32)h;
  im.format = PNG_FORMAT_RGB;
  png_alloc_size_t n = 0;
  if (!png_image_write_to_memory(&im, NULL, &n, 0, rgb, 0, NULL))
    return igpt_err("png: cannot size a %dx%d image: %s", w, h, im.message);
  *out = xmalloc(n);
  if (!png_image_write_to_memory(&im, *out, &n, 0, rgb, 0, NULL)) {
    free(*out);
    *out = NULL;
    return igpt_err("png: cannot encode a %dx%d image: %s", w, h, im.message);
  }
  *len = n;
  return 0;
}

int pngio_write(const char *path, const uint8_t *rgb, int w, int h) {
  uint8_t *buf;
  size_t n;
  if (pngio_encode(rgb, w, h, &buf, &n)) return igpt_err_prefix("%s", path);
  int rc = file_write_atomic(path, buf, n);
  free(buf);
  return rc;
}

int pngio_read(const char *path, uint8_t **rgb, int *w, int *h) {
  png_image im;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&im, path))
    return igpt_err("%s: not a readable PNG: %s", path, im.message);
  im.format = PNG_FORMAT_RGB;
  *rgb = xmalloc(PNG_IMAGE_SIZE(im));
  if (!png_image_finish_read(&im, NULL, *rgb, 0, NULL)) {
    free(*rgb);
    *rgb = NULL;
    return igpt_err("%s: cannot decode PNG: %s", path, im.message);
  }
  *w = (int)im.width;
  *h = (int)im.height;
  return 0;
}

int pngio_size(const char *path, int *w, int *h) {
  png_image im;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&im, path))
    return igpt_err("%s: not a readable PNG: %s", path, im.message);
  *w = (int)im.width;
  *h = (int)im.height;
  png_image_free(&im);
  return 0;
}

void pngio_grid_init(pngio_grid *g, int rows, int cols, int ch, int cw, int pad, uint8_t bg) {
  *g = (pngio_grid){rows, cols, ch, cw, pad, cols * (cw + pad) + pad, rows * (ch + pad) + pad, NULL};
  g->rgb = xmalloc((size_t)g->w * g->h * 3);
  memset(g->rgb, bg, (size_t)g->w * g->h * 3);
}

void pngio_grid_put(pngio_grid *g, int r, int c, const uint8_t *img, int ih, int iw, int scale) {
  if (scale < 1) scale = 1;
  if (r < 0 || r >= g->rows || c < 0 || c >= g->cols || ih * scale > g->ch || iw * scale > g->cw)
    igpt_die("pngio_grid_put: cell (%d,%d) of %dx%d image x%d does not fit a %dx%d grid of %dx%d cells",
             r, c, ih, iw, scale, g->rows, g->cols, g->ch, g->cw);
  int y0 = g->pad + r * (g->ch + g->pad), x0 = g->pad + c * (g->cw + g->pad);
  for (int y = 0; y < ih * scale; y++)
    for (int x = 0; x < iw * scale; x++)
      memcpy(g->rgb + (((size_t)(y0 + y) * g->w) + x0 + x) * 3,
             img + ((size_t)(y / scale) * iw + x / scale) * 3, 3);
}

void pngio_grid_free(pngio_grid *g) {
  free(g->rgb);
  g->rgb = NULL;
}
