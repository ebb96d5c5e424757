// augment: reflect-pad, random crop, horizontal flip; see augment.h.
#include "engine/augment.h"
#include <string.h>

void augment_image(const uint8_t *img, int H, int W, int pad, int dy, int dx, int flip, uint8_t *out) {
  for (int y = 0; y < H; y++) {
    int sy = augment_reflect(y + dy - pad, H);
    for (int x = 0; x < W; x++) {
      int cx = flip ? W - 1 - x : x;
      int sx = augment_reflect(cx + dx - pad, W);
      memcpy(out + ((size_t)y * W + x) * 3, img + ((size_t)sy * W + sx) * 3, 3);
    }
  }
}

void augment_random(const uint8_t *img, int H, int W, int pad, rng_t *r, uint8_t *out) {
  int dy = (int)rng_below(r, 2 * pad + 1), dx = (int)rng_below(r, 2 * pad + 1);
  int flip = (int)rng_below(r, 2);
  augment_image(img, H, W, pad, dy, dx, flip, out);
}
