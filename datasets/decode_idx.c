// decode_idx: the IDX format of (Fashion-)MNIST, as gzip files: big-endian magic 0x00000803
// (u8 images [n, rows, cols]) or 0x00000801 (u8 labels [n]), then big-endian int32 dims, then data.
#include "datasets/decode.h"
#include "base/util.h"
#include <string.h>
#include <stdlib.h>
#include <zlib.h>

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

// Checks the magic and reads ndim dims; 0 and *data_off on success.
static int idx_header(const uint8_t *buf, size_t len, const char *name, uint32_t magic, int ndim,
                      uint32_t *dims, size_t *data_off) {
  size_t hdr = 4 + 4 * (size_t)ndim;
  if (len < 4)
    return igpt_err("%s: %zu bytes, too short for an IDX magic number (truncated at byte offset %zu)",
                    name, len, len);
  uint32_t m = be32(buf);
  if (m != magic)
    return igpt_err("%s: byte offset 0: bad IDX magic 0x%08x, expected 0x%08x (%s): wrong file or "
                    "not decompressed", name, m, magic, magic == 0x803 ? "u8 images, 3 dims" : "u8 labels, 1 dim");
  if (len < hdr)
    return igpt_err("%s: truncated IDX header at byte offset %zu (expected %zu header bytes)", name, len, hdr);
  for (int d = 0; d < ndim; d++) {
    dims[d] = be32(buf + 4 + 4 * d);
    if (dims[d] > 0x7fffffffu)
      return igpt_err("%s: byte offset %d: dimension %d is %u, negative as int32", name, 4 + 4 * d, d, dims[d]);
  }
  *data_off = hdr;
  return 0;
}

int decode_idx_images(const uint8_t *buf, size_t len, const char *name, image_set *out) {
  uint32_t d[3];
  size_t off;
  if (idx_header(buf, len, name, 0x803, 3, d, &off) != 0) return -1;
  if (d[1] == 0 || d[2] == 0 || d[1] > 4096 || d[2] > 4096)
    return igpt_err("%s: byte offset 8: image size %ux%u outside 1..4096", name, d[1], d[2]);
  uint64_t want = (uint64_t)d[0] * d[1] * d[2];
  if (len - off != want)
    return igpt_err("%s: %s at byte offset %zu: the header says %u images of %ux%u (%llu data bytes), "
                    "the file holds %zu", name, len - off < want ? "truncated" : "trailing bytes",
                    len - off < want ? len : off + (size_t)want, d[0], d[1], d[2],
                    (unsigned long long)want, len - off);
  image_set_alloc(out, d[0], (int)d[1], (int)d[2], 0);
  const uint8_t *src = buf + off;
  for (uint64_t i = 0; i < want; i++) memset(out->pixels + 3 * i, src[i], 3);  // grey -> RGB
  for (uint32_t i = 0; i < d[0]; i++) out->labels[i] = -1;
  return 0;
}

int decode_idx_labels(const uint8_t *buf, size_t len, const char *name, image_set *s, int n_classes) {
  uint32_t n;
  size_t off;
  if (idx_header(buf, len, name, 0x801, 1, &n, &off) != 0) return -1;
  if ((int64_t)n != s->n)
    return igpt_err("%s: byte offset 4: %u labels but the images file has %lld images: the two files "
                    "do not belong together", name, n, (long long)s->n);
  if (len - off != n)
    return igpt_err("%s: %s at byte offset %zu: the header says %u labels, the file holds %zu bytes of them",
                    name, len - off < n ? "truncated" : "trailing bytes", len - off < n ? len : off + n,
                    n, len - off);
  for (uint32_t i = 0; i < n; i++)
    if (buf[off + i] >= n_classes)
      return igpt_err("%s: byte offset %zu: label %d outside 0..%d", name, off + i, buf[off + i], n_classes - 1);
  for (uint32_t i = 0; i < n; i++) s->labels[i] = buf[off + i];
  s->n_classes = n_classes;
  return 0;
}

// Every member of a multi-member file, as gzip -d and verify.c read it: after a member's end the
// next bytes must start another member (1f 8b); anything else is trailing garbage, an error.
int gunzip_buf(const uint8_t *buf, size_t len, const char *name, size_t max_out, uint8_t **out,
               size_t *out_len) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return igpt_err("%s: zlib init failed", name);
  size_t cap = len * 4 + 1024, n = 0;
  if (cap > max_out + 1) cap = max_out + 1;
  uint8_t *o = xmalloc(cap);
  int rc = Z_OK;
  size_t fed = 0, member_at = 0;  // compressed bytes given to zlib; where the current member starts
  for (;;) {
    if (z.avail_in == 0 && fed < len) {  // feed in chunks below UINT_MAX
      size_t chunk = len - fed > (1u << 30) ? (1u << 30) : len - fed;
      z.next_in = (uint8_t *)buf + fed;
      z.avail_in = (uInt)chunk;
      fed += chunk;
    }
    if (n == cap) {
      if (cap > max_out) break;
      cap = cap * 2 > max_out + 1 ? max_out + 1 : cap * 2;
      o = xrealloc(o, cap);
    }
    z.next_out = o + n;
    z.avail_out = (uInt)(cap - n > (1u << 30) ? (1u << 30) : cap - n);
    uInt before = z.avail_out;
    rc = inflate(&z, Z_NO_FLUSH);
    n += before - z.avail_out;
    if (rc == Z_STREAM_END) {
      size_t end = fed - z.avail_in;  // the member's last byte + 1
      if (end == len) break;
      if (len - end < 2 || buf[end] != 0x1f || buf[end + 1] != 0x8b) {
        inflateEnd(&z);
        free(o);
        return igpt_err("%s: trailing bytes after the last gzip member at byte offset %zu (%zu of them, not a gzip "
                        "member): a damaged file; fetch it again", name, end, len - end);
      }
      member_at = end;
      inflateReset(&z);
      continue;
    }
    if (rc == Z_BUF_ERROR && z.avail_in == 0 && fed == len) break;  // input ended early
    if (rc != Z_OK && rc != Z_BUF_ERROR) break;
  }
  size_t at = fed - z.avail_in;
  const char *msg = z.msg;
  inflateEnd(&z);
  if (rc == Z_STREAM_END && n <= max_out) {
    *out = o;
    *out_len = n;
    return 0;
  }
  free(o);
  if (n > max_out)
    return igpt_err("%s: decompresses to more than %zu bytes (stopped at compressed byte offset %zu): "
                    "not the expected file", name, max_out, at);
  if (rc == Z_BUF_ERROR || rc == Z_OK)
    return igpt_err("%s: truncated gzip stream at byte offset %zu (of %zu; the member from byte offset %zu is cut): "
                    "fetch it again", name, at, len, member_at);
  return igpt_err("%s: corrupt gzip data near byte offset %zu: %s", name, at, msg ? msg : "inflate error");
}
