// pngio: RGB images to PNG (libpng's simplified API), in memory for data: URIs or atomically to a
// file, the size of a PNG file, and grids of equally sized images for sample/completion figures.
#pragma once
#include <stddef.h>
#include <stdint.h>

// 8-bit RGB, row-major [h][w][3]. *out is malloc'd; caller frees.
int pngio_encode(const uint8_t *rgb, int w, int h, uint8_t **out, size_t *len);
int pngio_write(const char *path, const uint8_t *rgb, int w, int h);  // atomic
// Reads a PNG file as 8-bit RGB; *rgb malloc'd. Errors name the file.
int pngio_read(const char *path, uint8_t **rgb, int *w, int *h);
int pngio_size(const char *path, int *w, int *h);

// A grid canvas of rows x cols cells of ch x cw pixels each, pad pixels between and around,
// filled with bg. Cells are placed with pngio_grid_put. The canvas owns its pixels.
typedef struct { int rows, cols, ch, cw, pad, w, h; uint8_t *rgb; } pngio_grid;
void pngio_grid_init(pngio_grid *g, int rows, int cols, int ch, int cw, int pad, uint8_t bg);
// Copies an image of ih x iw (at most ch x cw) into cell (r, c), scaled up by an integer factor
// when scale > 1 (nearest neighbour, so pixels stay pixels).
void pngio_grid_put(pngio_grid *g, int r, int c, const uint8_t *img, int ih, int iw, int scale);
void pngio_grid_free(pngio_grid *g);
