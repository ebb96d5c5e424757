// verify: size, magic and digests of downloaded files, gzip content, pins. See verify.h.
#include "datasets/verify.h"
#include "base/util.h"
#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

bool looks_like_html(const void *head, size_t n) {
  const unsigned char *p = head, *e = p + n;
  if (n >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) p += 3;
  while (p < e && isspace(*p)) p++;
  size_t k = (size_t)(e - p);
  static const char *const starts[] = {"<!doctype html", "<html", "<head", "<body", "<?xml", "<title", NULL};
  for (int i = 0; starts[i]; i++) {
    size_t l = strlen(starts[i]);
    if (k >= l && !strncasecmp((const char *)p, starts[i], l)) return true;
  }
  return false;
}

static void hexdump(const unsigned char *p, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) sprintf(out + 3 * i, "%02x ", p[i]);
  out[n ? 3 * n - 1 : 0] = 0;
}

int check_magic(reg_format fmt, const void *head, size_t n, const char *what) {
  static const struct { reg_format f; const char *magic; size_t len; const char *name; } m[] = {
      {FMT_GZIP, "\x1f\x8b", 2, "gzip"},
      {FMT_TAR_GZ, "\x1f\x8b", 2, "gzip"},
      {FMT_NPY, "\x93NUMPY", 6, "NumPy .npy"},
      {FMT_ZIP, "PK\x03\x04", 4, "zip"},
  };
  for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
    if (m[i].f != fmt) continue;
    if (n >= m[i].len && !memcmp(head, m[i].magic, m[i].len)) return 0;
    char want[32], got[32];
    hexdump((const unsigned char *)m[i].magic, m[i].len, want);
    hexdump(head, n < m[i].len ? n : m[i].len, got);
    return igpt_err("%s: not a %s file: expected the magic bytes %s, found %s%s", what, m[i].name, want,
                    n ? got : "an empty file", looks_like_html(head, n) ? " (an HTML page)" : "");
  }
  return 0;
}

typedef struct {
  EVP_MD_CTX *sha, *md5;
} digests;

static void dg_init(digests *d) {
  d->sha = EVP_MD_CTX_new();
  d->md5 = EVP_MD_CTX_new();
  EVP_DigestInit_ex(d->sha, EVP_sha256(), NULL);
  EVP_DigestInit_ex(d->md5, EVP_md5(), NULL);
}
static void dg_update(digests *d, const void *p, size_t n) {
  EVP_DigestUpdate(d->sha, p, n);
  EVP_DigestUpdate(d->md5, p, n);
}
static void to_hex(const unsigned char *d, unsigned n, char *out) {
  for (unsigned i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", d[i]);
  out[2 * n] = 0;
}
static void dg_final(digests *d, char sha[65], char md5[33]) {
  unsigned char b[EVP_MAX_MD_SIZE];
  unsigned n;
  EVP_DigestFinal_ex(d->sha, b, &n);
  to_hex(b, n, sha);
  EVP_DigestFinal_ex(d->md5, b, &n);
  to_hex(b, n, md5);
  EVP_MD_CTX_free(d->sha);
  EVP_MD_CTX_free(d->md5);
}

// Compares a measured size/sha256/md5 with what is wanted: the size first, then sha256, then md5.
// "what" names the bytes in the message. Sets how to the strongest check that passed.
static int compare(const reg_digest *want, int64_t size, const char *sha, const char *md5, const char *what,
                   char *how, size_t how_len) {
  if (want->size >= 0 && want->size != size)
    return igpt_err("%s: size %lld bytes, expected %lld (%s)", what, (long long)size, (long long)want->size,
                    size < want->size ? "truncated" : "longer than expected");
  if (want->sha256[0] && strcmp(want->sha256, sha))
    return igpt_err("%s: sha256 mismatch: expected %s, got %s", what, want->sha256, sha);
  if (want->md5[0] && strcmp(want->md5, md5))
    return igpt_err("%s: md5 mismatch: expected %s, got %s", what, want->md5, md5);
  if (how) snprintf(how, how_len, "%s", want->sha256[0] ? "sha256" : want->md5[0] ? "md5" : "size only");
  return 0;
}

// Reads a pin ("<sha256>  name"); 1 when present, 0 when absent, -1 on a malformed pin.
static int read_pin(const char *pin_path, char sha[65]) {
  FILE *f = fopen(pin_path, "r");
  if (!f) return 0;
  char line[256] = {0};
  bool ok = fgets(line, sizeof line, f) != NULL;
  fclose(f);
  if (!ok || strlen(line) < 64) return igpt_err("%s: malformed pin (expected a sha256sum line)", pin_path);
  for (int i = 0; i < 64; i++)
    if (!isxdigit((unsigned char)line[i])) return igpt_err("%s: malformed pin (expected a sha256sum line)", pin_path);
  memcpy(sha, line, 64);
  sha[64] = 0;
  return 1;
}

int verify_file(const reg_file *f, const char *path, const char *origin, const char *pin_path, bool write_pin,
                verify_info *info) {
  verify_info local;
  if (!info) info = &local;
  memset(info, 0, sizeof *info);
  char *what = origin ? xasprintf("%s (from %s)", path, origin) : xstrdup(path);
  int rc = -1;
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    igpt_err("%s: cannot open: %s", what, strerror(errno));
    free(what);
    return -1;
  }
  struct stat st;
  fstat(fileno(fp), &st);
  if (S_ISDIR(st.st_mode)) {
    igpt_err("%s: a directory, expected the file itself", what);
    fclose(fp);
    free(what);
    return -1;
  }
  info->size = st.st_size;
  unsigned char head[512];
  size_t hn = fread(head, 1, sizeof head, fp);
  // An HTML page first: a login wall or an error page is the likeliest wrong answer.
  if (looks_like_html(head, hn)) {
    igpt_err("%s: got an HTML page (%lld bytes) where %s data was expected; the mirror answered with a web page "
             "(login wall, error or moved file)", what, (long long)info->size, reg_format_name(f->format));
    goto out;
  }
  bool content = f->has_decompressed;
  if (!content && f->want.size >= 0 && f->want.size != info->size) {
    compare(&f->want, info->size, "", "", what, NULL, 0);
    goto out;
  }
  if (check_magic(f->format, head, hn, what)) goto out;
  rewind(fp);
  digests file_dg, cont_dg;
  dg_init(&file_dg);
  dg_init(&cont_dg);
  z_stream z;
  memset(&z, 0, sizeof z);
  bool zbad = false;
  int64_t cont_size = 0;
  if (content) inflateInit2(&z, 16 + MAX_WBITS);
  size_t bufsz = 1 << 20;
  unsigned char *buf = xmalloc(bufsz), *out = content ? xmalloc(bufsz) : NULL;
  size_t n;
  int64_t off = 0;
  int zr = Z_OK;
  while (!zbad && (n = fread(buf, 1, bufsz, fp)) > 0) {
    dg_update(&file_dg, buf, n);
    if (content) {
      z.next_in = buf;
      z.avail_in = (uInt)n;
      bool more = true;
      while (more && !zbad) {
        if (zr == Z_STREAM_END) {
          if (z.avail_in == 0) break;
          if (z.next_in[0] != 0x1f || (z.avail_in > 1 && z.next_in[1] != 0x8b)) {  // not another member
            igpt_err("%s: trailing bytes after the last gzip member at byte offset %lld (not a gzip member): a "
                     "damaged file", what, (long long)(off + (int64_t)(n - z.avail_in)));
            zbad = true;
            break;
          }
          inflateReset(&z);  // concatenated gzip members are one stream (gzip -d's rule)
        }
        z.next_out = out;
        z.avail_out = (uInt)bufsz;
        zr = inflate(&z, Z_NO_FLUSH);
        size_t got = bufsz - z.avail_out;
        dg_update(&cont_dg, out, got);
        cont_size += (int64_t)got;
        if (zr != Z_OK && zr != Z_STREAM_END && !(zr == Z_BUF_ERROR && z.avail_in == 0)) {
          igpt_err("%s: corrupt gzip data near compressed byte %lld: %s", what,
                   (long long)(off + (int64_t)(n - z.avail_in)), z.msg ? z.msg : zError(zr));
          zbad = true;
        } else if (f->decompressed.size >= 0 && cont_size > f->decompressed.size) {
          igpt_err("%s: decompresses to more than the expected %lld bytes", what, (long long)f->decompressed.size);
          zbad = true;
        }
        // Go on while input is left or the output buffer came back full (more may be pending).
        more = z.avail_in > 0 || z.avail_out == 0;
      }
    }
    off += (int64_t)n;
  }
  bool rerr = ferror(fp);
  char fsha[65], fmd5[33], csha[65], cmd5[33];
  dg_final(&file_dg, fsha, fmd5);
  dg_final(&cont_dg, csha, cmd5);
  if (content) inflateEnd(&z);
  free(buf);
  free(out);
  memcpy(info->sha256, fsha, 65);
  if (zbad) goto out;
  if (rerr) { igpt_err("%s: read error", what); goto out; }
  if (content) {
    if (zr != Z_STREAM_END) {
      igpt_err("%s: gzip stream ends early after %lld decompressed bytes (truncated file)", what, (long long)cont_size);
      goto out;
    }
    char *cw = xasprintf("%s, decompressed", what);
    int c = compare(&f->decompressed, cont_size, csha, cmd5, cw, NULL, 0);
    free(cw);
    if (c) goto out;
    bool same_bytes = (f->want.sha256[0] && !strcmp(f->want.sha256, fsha)) || (f->want.md5[0] && !strcmp(f->want.md5, fmd5));
    snprintf(info->how, sizeof info->how, "decompressed content %s%s",
             f->decompressed.sha256[0] ? "sha256" : f->decompressed.md5[0] ? "md5" : "size",
             same_bytes ? " and the published file digest" : reg_digest_known(&f->want) ? " (a re-compressed copy)" : "");
    rc = 0;
    goto out;
  }
  if (f->want.sha256[0] || f->want.md5[0]) {
    rc = compare(&f->want, info->size, fsha, fmd5, what, info->how, sizeof info->how);
    goto out;
  }
  // Nothing published beyond perhaps a size: pin the sha256 on first use.
  if (!pin_path) {
    snprintf(info->how, sizeof info->how, "%s", f->want.size >= 0 ? "size only (no digest published)" : "nothing published");
    rc = 0;
    goto out;
  }
  char pin[65];
  int pr = read_pin(pin_path, pin);
  if (pr < 0) goto out;
  if (pr == 1) {
    if (strcmp(pin, fsha)) {
      igpt_err("%s: sha256 mismatch with the pin recorded at first download (%s): expected %s, got %s", what, pin_path,
               pin, fsha);
      goto out;
    }
    snprintf(info->how, sizeof info->how, "pinned sha256 (no digest published)");
    rc = 0;
    goto out;
  }
  if (!write_pin) {
    igpt_err("%s: no digest is published and no pin was recorded (%s absent): cannot verify; "
             "fetch it again to record one", what, pin_path);
    goto out;
  }
  char *base = strrchr(f->name, '/');
  char *line = xasprintf("%s  %s\n", fsha, base ? base + 1 : f->name);
  rc = file_write_atomic(pin_path, line, strlen(line));
  free(line);
  if (rc == 0) {
    info->pinned_now = true;
    snprintf(info->how, sizeof info->how, "sha256 pinned now (no digest published)");
    log_warn("%s: no digest is published; recorded its sha256 %s in %s", f->name, fsha, pin_path);
  }
out:
  fclose(fp);
  free(what);
  return rc;
}

int verify_bytes_file(const reg_digest *want, const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return igpt_err("%s: missing: %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode))
    return igpt_err("%s: %s, expected a file", path, S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
  if (want->size >= 0 && want->size != st.st_size) return compare(want, st.st_size, "", "", path, NULL, 0);
  if (!want->sha256[0] && !want->md5[0]) return 0;
  char sha[65] = "", md5[33] = "";
  if (want->sha256[0] && sha256_file(path, sha)) return -1;
  if (want->md5[0] && md5_file(path, md5)) return -1;
  return compare(want, st.st_size, sha, md5, path, NULL, 0);
}
