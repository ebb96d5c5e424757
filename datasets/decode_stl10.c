// decode_stl10: STL-10 binary (REFERENCE.md section 5): images 3 x 96 x 96 bytes, each channel
// plane column-major (Matlab order: pixel (row y, col x) at x * 96 + y); labels one byte 1..10.
#include "datasets/decode.h"
#include "base/util.h"

int decode_stl10_images(const uint8_t *buf, size_t len, const char *name, image_set *out) {
  const size_t P = STL10_PX * STL10_PX, rec = 3 * P;
  if (len == 0) return igpt_err("%s: empty file, expected STL-10 images of %zu bytes", name, rec);
  if (len % rec != 0)
    return igpt_err("%s: %zu bytes is not a whole number of %zu-byte STL-10 images (%zu bytes left "
                    "over from byte offset %zu): the file is truncated; fetch it again",
                    name, len, rec, len % rec, len - len % rec);
  int64_t n = (int64_t)(len / rec);
  image_set_alloc(out, n, STL10_PX, STL10_PX, 10);
  for (int64_t i = 0; i < n; i++) {
    const uint8_t *src = buf + (size_t)i * rec;
    uint8_t *dst = out->pixels + (size_t)i * rec;
    for (int c = 0; c < 3; c++)
      for (int x = 0; x < STL10_PX; x++)
        for (int y = 0; y < STL10_PX; y++)
          dst[3 * (y * STL10_PX + x) + c] = src[c * P + (size_t)x * STL10_PX + y];
    out->labels[i] = -1;
  }
  return 0;
}

int decode_stl10_labels(const uint8_t *buf, size_t len, const char *name, image_set *s) {
  if ((int64_t)len != s->n)
    return igpt_err("%s: %zu labels but the images file has %lld images (one label byte each); "
                    "the label file is truncated or belongs to another split", name, len, (long long)s->n);
  for (size_t i = 0; i < len; i++)
    if (buf[i] < 1 || buf[i] > 10)
      return igpt_err("%s: byte offset %zu: label %d outside 1..10: not an STL-10 label file",
                      name, i, buf[i]);
  for (size_t i = 0; i < len; i++) s->labels[i] = buf[i] - 1;
  s->n_classes = 10;
  return 0;
}
