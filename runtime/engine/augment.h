// augment: the paper's CIFAR fine-tuning augmentation on u8 images before tokenizing: reflect-pad
// by `pad` pixels, a random crop back to H x W, a random horizontal flip (probability 1/2).
#pragma once
#include <stdint.h>
#include "base/rng.h"

// Reflect padding as numpy's mode='reflect' (the edge pixel is not repeated): index -1 -> 1,
// H -> H-2. Valid for pad < H and pad < W.
static inline int augment_reflect(int i, int n) {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

// out[y, x] = padded[y + dy, x' + dx] with x' = W-1-x when flipped; (dy, dx) in [0, 2 pad].
void augment_image(const uint8_t *img, int H, int W, int pad, int dy, int dx, int flip, uint8_t *out);
// Draws dy, dx, flip from r (in that order) and applies them.
void augment_random(const uint8_t *img, int H, int W, int pad, rng_t *r, uint8_t *out);
