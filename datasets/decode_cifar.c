// decode_cifar: CIFAR-10 and CIFAR-100 binary batches (REFERENCE.md section 5): fixed-size
// records of label byte(s) then the R, G and B planes, each row-major 32x32.
#include "datasets/decode.h"
#include "base/util.h"
#include <string.h>

// Shared record walk: lbytes label bytes (the last is the class, the first the coarse one when
// there are two), n_classes the range of the last, n_coarse the range of the first.
static int decode_records(const uint8_t *buf, size_t len, const char *name, const char *what,
                          int lbytes, int n_classes, int n_coarse, image_set *out,
                          int32_t **coarse) {
  size_t rec = (size_t)lbytes + CIFAR_RECORD_PIXELS;
  if (len == 0) return igpt_err("%s: empty file, expected %s records of %zu bytes", name, what, rec);
  if (len % rec != 0)
    return igpt_err("%s: %zu bytes is not a whole number of %zu-byte %s records (%zu bytes left "
                    "over from byte offset %zu): the file is truncated or not %s binary; fetch it again",
                    name, len, rec, what, len % rec, len - len % rec, what);
  int64_t n = (int64_t)(len / rec);
  for (int64_t i = 0; i < n; i++) {  // validate every label before allocating anything
    const uint8_t *r = buf + (size_t)i * rec;
    if (r[lbytes - 1] >= n_classes)
      return igpt_err("%s: byte offset %zu (record %lld): label %d outside 0..%d: not %s binary",
                      name, (size_t)i * rec + lbytes - 1, (long long)i, r[lbytes - 1], n_classes - 1, what);
    if (lbytes == 2 && r[0] >= n_coarse)
      return igpt_err("%s: byte offset %zu (record %lld): coarse label %d outside 0..%d: not %s binary",
                      name, (size_t)i * rec, (long long)i, r[0], n_coarse - 1, what);
  }
  image_set_alloc(out, n, CIFAR_PX, CIFAR_PX, n_classes);
  if (coarse) *coarse = xmalloc((size_t)n * sizeof(int32_t));
  const int P = CIFAR_PX * CIFAR_PX;
  for (int64_t i = 0; i < n; i++) {
    const uint8_t *r = buf + (size_t)i * rec;
    const uint8_t *planes = r + lbytes;
    uint8_t *dst = out->pixels + (size_t)i * CIFAR_RECORD_PIXELS;
    out->labels[i] = r[lbytes - 1];
    if (coarse) (*coarse)[i] = r[0];
    for (int p = 0; p < P; p++)  // CHW planes -> HWC
      for (int c = 0; c < 3; c++) dst[3 * p + c] = planes[c * P + p];
  }
  return 0;
}

int decode_cifar10(const uint8_t *buf, size_t len, const char *name, image_set *out) {
  return decode_records(buf, len, name, "CIFAR-10", 1, 10, 0, out, NULL);
}

int decode_cifar100(const uint8_t *buf, size_t len, const char *name, image_set *out,
                    int32_t **coarse) {
  return decode_records(buf, len, name, "CIFAR-100", 2, 100, 20, out, coarse);
}
